//! An organization and its policy: who may sign up, what it asks of sessions, its own limits.

use identsphere_actors::{AuthMethod, SessionRules};
use time::Duration;
use uuid::Uuid;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};

use super::{Email, Rate};
use crate::error::ApiError;

/// Who may register straight into an organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignupMode {
    /// Nobody: members are added by other means.
    Closed,
    /// Only with an invitation.
    InviteOnly,
    /// Anybody.
    Open,
    /// Addresses at these domains (lower-cased).
    Domains(Vec<String>),
}

impl SignupMode {
    /// The stored form: the mode's name and its domains (empty unless `Domains`).
    #[must_use]
    pub fn columns(&self) -> (&'static str, Vec<String>) {
        match self {
            Self::Closed => ("closed", Vec::new()),
            Self::InviteOnly => ("invite_only", Vec::new()),
            Self::Open => ("open", Vec::new()),
            Self::Domains(domains) => ("domains", domains.clone()),
        }
    }

    /// Reads the stored form back; `None` for an unknown mode.
    #[must_use]
    pub fn from_columns(mode: &str, domains: Vec<String>) -> Option<Self> {
        match mode {
            "closed" => Some(Self::Closed),
            "invite_only" => Some(Self::InviteOnly),
            "open" => Some(Self::Open),
            "domains" => Some(Self::Domains(domains)),
            _ => None,
        }
    }
}

/// Limits an organization adds for requests that name it, counted on top of the server-wide ones (so
/// an organization can only tighten them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgRateLimits {
    /// Sign-in attempts per client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signin_ip: Option<Rate>,
    /// Registrations per client address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register_ip: Option<Rate>,
}

/// An organization's policy beyond sign-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrgPolicy {
    /// What it asks of sessions: a second factor, the methods allowed, the access-token lifetime.
    pub sessions: SessionRules,
    /// Its session families' absolute lifetime, when it sets one.
    pub refresh_ttl: Option<time::Duration>,
    /// Its extra rate limits.
    pub rate_limits: OrgRateLimits,
}

/// Reads an organization's session rules from their stored form; `None` for a method this build
/// does not know.
#[must_use]
pub fn session_rules<S: AsRef<str>>(
    mfa_required: bool,
    auth_methods: &[S],
    access_ttl_seconds: Option<i64>,
) -> Option<SessionRules> {
    Some(SessionRules {
        mfa_required,
        auth_methods: auth_methods.iter().map(|m| AuthMethod::parse(m.as_ref())).collect::<Option<_>>()?,
        access_ttl: access_ttl_seconds.map(time::Duration::seconds),
    })
}

/// An organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// Id.
    pub id: Uuid,
    /// Unique, URL-safe name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Who may register into it.
    pub signup: SignupMode,
    /// Disabled organizations accept no sign-in.
    pub disabled: bool,
    /// Its policy beyond sign-up.
    pub policy: OrgPolicy,
}

/// What an organization update changes; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct OrgUpdate {
    /// A new display name.
    pub name: Option<String>,
    /// A new slug (validated, lower-case).
    pub slug: Option<String>,
    /// A new sign-up policy.
    pub signup: Option<SignupMode>,
    /// Disable (`true`) or enable it.
    pub disabled: Option<bool>,
    /// Policy fields to change.
    pub policy: PolicyUpdate,
}

/// What an organization update changes in its policy; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct PolicyUpdate {
    /// Require a second factor, or not.
    pub mfa_required: Option<bool>,
    /// The sign-in methods allowed (not empty).
    pub auth_methods: Option<Vec<AuthMethod>>,
    /// The access-token lifetime; `Some(None)` goes back to the server's.
    pub access_ttl: Option<Option<time::Duration>>,
    /// The families' absolute lifetime; `Some(None)` goes back to the server's.
    pub refresh_ttl: Option<Option<time::Duration>>,
    /// The extra rate limits, whole.
    pub rate_limits: Option<OrgRateLimits>,
}

impl PolicyUpdate {
    /// Whether the update touches the policy at all.
    #[must_use]
    pub const fn changes_anything(&self) -> bool {
        self.mfa_required.is_some()
            || self.auth_methods.is_some()
            || self.access_ttl.is_some()
            || self.refresh_ttl.is_some()
            || self.rate_limits.is_some()
    }

    /// The stored form of the methods, when they change.
    #[must_use]
    pub fn auth_method_names(&self) -> Option<Vec<&'static str>> {
        self.auth_methods.as_ref().map(|methods| methods.iter().map(|m| m.as_str()).collect())
    }

    /// The stored form of a lifetime change: whether it changes, and to what (seconds, `None` = the server's).
    #[must_use]
    pub fn ttl_columns(ttl: Option<Option<time::Duration>>) -> (bool, Option<i32>) {
        (ttl.is_some(), ttl.flatten().map(|d| i32::try_from(d.whole_seconds()).unwrap_or(i32::MAX)))
    }

    /// The stored form of the rate limits, when they change.
    #[must_use]
    pub fn rate_limits_json(&self) -> Option<serde_json::Value> {
        self.rate_limits.map(|limits| serde_json::to_value(limits).unwrap_or_default())
    }
}

/// What `parse_slug` accepts, for the OpenAPI description.
pub const SLUG_PATTERN: &str = "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$";

/// A slug as typed: 1 to 63 of `a-z0-9-`, not starting or ending with `-`, and not shaped like an id (an
/// organization is named by either, so a slug must never read as another's id).
///
/// # Errors
/// `InvalidRequest` naming `slug`.
pub fn parse_slug(raw: String) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let shaped = (1..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-');
    if !shaped || Uuid::parse_str(&raw).is_ok() {
        return Err(ApiError::invalid_field(
            "slug",
            "slug must be 1 to 63 of a-z, 0-9 and -, not starting or ending with -",
        ));
    }
    Ok(raw)
}

/// Longest list of sign-up domains kept.
const MAX_DOMAINS: usize = 100;

impl SignupMode {
    /// Reads a sign-up mode as a client sends it: a mode's name, and domains for `domains` only (at most
    /// 100 valid domain names, lower-cased).
    ///
    /// # Errors
    /// `InvalidRequest` naming `signup`.
    pub fn parse(mode: &str, domains: Vec<String>) -> Result<Self, ApiError> {
        let bad = |message: &str| ApiError::invalid_field("signup", message);
        let domains: Vec<String> = domains.iter().map(|d| d.trim().to_ascii_lowercase()).collect();
        if mode != "domains" && !domains.is_empty() {
            return Err(bad("domains are only for mode `domains`"));
        }
        let valid = |d: &String| email_address::EmailAddress::is_valid(&format!("a@{d}"));
        if domains.len() > MAX_DOMAINS || !domains.iter().all(valid) {
            return Err(bad("domains must be at most 100 valid domain names"));
        }
        match mode {
            "domains" if domains.is_empty() => Err(bad("mode `domains` needs at least one domain")),
            mode => Self::from_columns(mode, domains)
                .ok_or_else(|| bad("mode must be closed, invite_only, open or domains")),
        }
    }
}

/// The shortest access-token lifetime an organization may set, in seconds.
pub const ACCESS_TTL_FLOOR: i64 = 60;
/// The shortest session lifetime an organization may set, in seconds.
pub const REFRESH_TTL_FLOOR: i64 = 300;

/// A policy change as a client asks for it; `None` leaves a field as it is, `Some(None)` (lifetimes) goes
/// back to the server's.
#[derive(Debug, Default)]
pub struct PolicyAsked {
    /// Require a second factor.
    pub mfa_required: Option<bool>,
    /// The sign-in methods allowed, by name.
    pub auth_methods: Option<Vec<String>>,
    /// Access-token lifetime in seconds.
    pub access_ttl: Option<Option<u32>>,
    /// Session lifetime in seconds.
    pub refresh_ttl: Option<Option<u32>>,
    /// Extra limits.
    pub rate_limits: Option<OrgRateLimits>,
}

impl PolicyUpdate {
    /// The change asked for, within the server's bounds: lifetimes between their floor and the server's
    /// own (an organization may shorten them, not lengthen them), and at least one known method.
    ///
    /// # Errors
    /// `InvalidRequest` naming the field.
    pub fn within(asked: PolicyAsked, server_access: Duration, server_refresh: Duration) -> Result<Self, ApiError> {
        let methods = asked
            .auth_methods
            .map(|names| {
                let bad = || {
                    ApiError::invalid_field(
                        "policy.auth_methods",
                        "auth_methods must be a non-empty list of password, passkey and social_oauth",
                    )
                };
                let mut methods =
                    names.iter().map(|n| AuthMethod::parse(n.trim())).collect::<Option<Vec<_>>>().ok_or_else(bad)?;
                methods.sort_by_key(|m| m.as_str());
                methods.dedup();
                if methods.is_empty() { Err(bad()) } else { Ok(methods) }
            })
            .transpose()?;
        let ttl = |field: &'static str, value: Option<Option<u32>>, floor: i64, ceiling: Duration| {
            value
                .map(|seconds| {
                    seconds
                        .map(|s| {
                            let s = i64::from(s);
                            if (floor..=ceiling.whole_seconds()).contains(&s) {
                                Ok(Duration::seconds(s))
                            } else {
                                Err(ApiError::invalid_field(
                                    field,
                                    format!("{field} must be from {floor} to {} seconds", ceiling.whole_seconds()),
                                ))
                            }
                        })
                        .transpose()
                })
                .transpose()
        };
        Ok(Self {
            mfa_required: asked.mfa_required,
            auth_methods: methods,
            access_ttl: ttl("policy.access_token_ttl", asked.access_ttl, ACCESS_TTL_FLOOR, server_access)?,
            refresh_ttl: ttl("policy.refresh_token_ttl", asked.refresh_ttl, REFRESH_TTL_FLOOR, server_refresh)?,
            rate_limits: asked.rate_limits,
        })
    }
}

/// An organization named by a client: by id or by slug.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrgRef {
    /// By id.
    Id(Uuid),
    /// By slug (lower-cased).
    Slug(String),
}

impl OrgRef {
    /// Reads a client's `organization` field: a UUID is an id, anything else a slug. `None` when it
    /// cannot name any organization (slugs are 1 to 63 of `a-z`, `0-9` and `-`), so it is never sent to
    /// a store.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if let Ok(id) = Uuid::parse_str(raw) {
            return Some(Self::Id(id));
        }
        let slug = raw.to_ascii_lowercase();
        let valid = (1..=63).contains(&slug.len()) && slug.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        valid.then_some(Self::Slug(slug))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_references_are_ids_or_plausible_slugs() {
        let id = Uuid::new_v4();
        assert_eq!(OrgRef::parse(&format!(" {id} ")), Some(OrgRef::Id(id)));
        assert_eq!(OrgRef::parse("Acme-Corp"), Some(OrgRef::Slug("acme-corp".into())));
        for bad in ["", "a b", "a\0b", "acme/../x", "ünïcode", &"a".repeat(64)] {
            assert_eq!(OrgRef::parse(bad), None, "{bad:?}");
        }
    }
}

/// Refuses a sign-in into `org` with `method`: the organization is disabled, or its policy does not
/// allow the method.
pub fn admit(org: &Organization, method: AuthMethod) -> Result<(), ApiError> {
    if org.disabled {
        return Err(ApiError::AccountDisabled);
    }
    if !org.policy.sessions.auth_methods.contains(&method) {
        return Err(ApiError::AuthMethodNotAllowed);
    }
    Ok(())
}

/// Whether `org` takes sign-ups of the domain of `email`.
pub fn takes_domain(org: &Organization, email: &Email) -> bool {
    let domain = email.normalized().rsplit('@').next().unwrap_or_default();
    matches!(&org.signup, SignupMode::Domains(domains) if domains.iter().any(|d| d == domain))
}

/// `<local part, sanitized>-<8 random base32 characters>`: readable and unguessable enough to be unique.
pub fn personal_slug(email: &Email) -> Result<String, ApiError> {
    drawn_slug(email.local_part())
}

/// `<text, sanitized>-<8 random base32 characters>`, or `org-<…>` when nothing of `text` is URL-safe.
pub fn drawn_slug(text: &str) -> Result<String, ApiError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut base: String =
        text.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(32).collect();
    base = base.trim_matches('-').to_owned();
    if base.is_empty() {
        base.push_str("org");
    }
    let mut random = [0u8; 8];
    SystemRandom::new().fill(&mut random).map_err(|_| ApiError::Internal(anyhow::anyhow!("no randomness")))?;
    let suffix: String = random.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
    Ok(format!("{base}-{suffix}"))
}

#[cfg(test)]
mod slug_tests {
    use super::*;

    #[test]
    fn personal_slugs_are_url_safe_and_distinct() {
        let email = Email::parse("Jean-Luc.Picard+ent@example.com").unwrap();
        let a = personal_slug(&email).unwrap();
        let b = personal_slug(&email).unwrap();
        assert!(a.starts_with("jean-luc-picard-ent-"), "{a}");
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        let odd = personal_slug(&Email::parse("+++@example.com").unwrap()).unwrap();
        assert!(odd.starts_with("org-"), "{odd}");
    }
}
