//! What several routes answer with or read alike: the token response and session cookies of every
//! sign-in, the user, session and organization shapes, display names, path parameters and schemas.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use identsphere_actors::{Aal, AuthMethod, FamilyRecord, Origin, UserProfile};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::client_ip::client_ip;
use crate::http::credentials::set_session_cookies;
use crate::model::{OrgPolicy, OrgRateLimits, OrgRef, Organization, Role, SessionInfo};
use crate::service::*;

/// Longest `User-Agent` kept with a session.
pub(crate) const MAX_USER_AGENT: usize = 512;
/// The characters `str::trim` removes (Unicode `White_Space`), as the inside of a regex class: the
/// patterns of the OpenAPI description spell them out, since `\s` differs between regex dialects.
macro_rules! white_space {
    () => {
        r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
    };
}
/// The characters `char::is_control` holds for, as the inside of a regex class.
macro_rules! control {
    () => {
        r"\x00-\x1F\x7F-\x9F"
    };
}
/// What `register_user` accepts as a display name: white space around at most `MAX_DISPLAY_NAME`
/// characters without control characters that start and end with neither.
#[rustfmt::skip]
pub(crate) const DISPLAY_NAME_PATTERN: &str = concat!(
    "^[", white_space!(), "]*",
    "(?:[^", control!(), white_space!(), "]",
    "(?:[^", control!(), "]{0,98}", // MAX_DISPLAY_NAME - 2: a test holds them together
    "[^", control!(), white_space!(), "])?)?",
    "[", white_space!(), "]*$",
);
/// What `org_ref` does not refuse as blank: anything but white space.
pub(crate) const NOT_BLANK_PATTERN: &str = concat!("[^", white_space!(), "]");

/// The user, as the token and session responses show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub(crate) struct UserJson<'a> {
    /// User id (`sub`).
    pub(crate) id: Uuid,
    /// The email as typed at registration.
    pub(crate) email: &'a str,
    pub(crate) email_verified: bool,
    #[schema(required = true)]
    pub(crate) display_name: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) created_at: OffsetDateTime,
}

impl<'a> From<&'a UserProfile> for UserJson<'a> {
    fn from(user: &'a UserProfile) -> Self {
        Self {
            id: user.id,
            email: &user.email,
            email_verified: user.email_verified,
            display_name: user.display_name.as_deref(),
            created_at: user.created_at,
        }
    }
}

/// A session family: one sign-in and its refreshes, in one organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub(crate) struct SessionJson {
    /// Session family id (`sid`), the same across refreshes.
    pub(crate) id: Uuid,
    pub(crate) organization_id: Uuid,
    /// Assurance level: `aal1` one factor, `aal2` a second factor verified.
    #[schema(schema_with = aal_schema)]
    pub(crate) aal: Aal,
    /// How the user originally authenticated.
    #[schema(schema_with = auth_method_schema)]
    pub(crate) auth_method: AuthMethod,
    /// When the user originally authenticated (Unix seconds).
    pub(crate) auth_time: i64,
    /// The family's absolute end: no refresh after it.
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) expires_at: OffsetDateTime,
}

pub(crate) fn display_name_schema() -> utoipa::openapi::Object {
    display_text_schema(true)
}

/// The schema of a display text as `display_text` reads it (a user's or an organization's name); `null` is
/// allowed where the field is optional.
pub(crate) fn display_text_schema(nullable: bool) -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type, schema::SchemaType};
    let types = if nullable { vec![Type::String, Type::Null] } else { vec![Type::String] };
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types))
        .description(Some(
            "Trimmed (Unicode white space), then at most 100 characters without control characters. Blank \
             means none.",
        ))
        .pattern(Some(DISPLAY_NAME_PATTERN))
        .build()
}

pub(crate) fn organization_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type, schema::SchemaType};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some("An organization id (UUID) or slug. Must not be blank."))
        .pattern(Some(NOT_BLANK_PATTERN))
        .build()
}

pub(crate) fn aal_schema() -> utoipa::openapi::Object {
    string_enum([Aal::Aal1, Aal::Aal2].map(Aal::as_str))
}

pub(crate) fn auth_method_schema() -> utoipa::openapi::Object {
    string_enum(AuthMethod::ALL.map(AuthMethod::as_str))
}

pub(crate) fn bearer_schema() -> utoipa::openapi::Object {
    string_enum([TOKEN_TYPE])
}

pub(crate) fn role_schema() -> utoipa::openapi::Object {
    string_enum([Role::Owner, Role::Admin, Role::Member].map(Role::as_str))
}

/// The `token_type` of every token response.
pub(crate) const TOKEN_TYPE: &str = "Bearer";

pub(crate) const SESSION_LINK: &str = "Read the session with the new access token.";
pub(crate) const REFRESH_LINK: &str = "Rotate the new refresh token.";
pub(crate) const LOGOUT_LINK: &str = "End the session with the new refresh token.";

impl From<&FamilyRecord> for SessionJson {
    fn from(family: &FamilyRecord) -> Self {
        Self {
            id: family.sid,
            organization_id: family.org_id,
            aal: family.aal,
            auth_method: family.auth_method,
            auth_time: family.auth_time.unix_timestamp(),
            expires_at: family.expires_at,
        }
    }
}

/// What a completed sign-in or refresh returns; the same response sets both session cookies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse<'a> {
    #[schema(schema_with = bearer_schema)]
    pub(crate) token_type: &'static str,
    /// An RS256 JWT (`typ: access`), verifiable with the JWKS.
    pub(crate) access_token: &'a str,
    /// Seconds until the access token expires.
    pub(crate) expires_in: i64,
    /// Opaque to clients: send it to `/v1/auth/refresh` or `/v1/auth/logout`.
    pub(crate) refresh_token: &'a str,
    pub(crate) user: UserJson<'a>,
    pub(crate) session: SessionJson,
    /// Only at a sign-up into an organization that takes the address's domain: the organization the
    /// account joins once its address is verified (the emailed link). Until then the session is in the
    /// account's new personal organization; after verifying, sign in or switch with `organization`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) pending_organization: Option<PendingOrganizationJson<'a>>,
}

/// An organization an account joins once its address is verified.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = PendingOrganization)]
pub(crate) struct PendingOrganizationJson<'a> {
    pub(crate) id: Uuid,
    pub(crate) slug: &'a str,
    pub(crate) name: &'a str,
    /// Always `email_verified`: what the membership waits for.
    #[schema(schema_with = joins_when_schema)]
    pub(crate) joins_when: &'static str,
}

pub(crate) fn joins_when_schema() -> utoipa::openapi::Object {
    string_enum(["email_verified"])
}

/// The organization of a session, with the user's role in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Organization)]
pub(crate) struct OrganizationJson<'a> {
    pub(crate) id: Uuid,
    pub(crate) slug: &'a str,
    pub(crate) name: &'a str,
    #[schema(schema_with = role_schema)]
    pub(crate) role: &'static str,
}

/// A second factor enrolled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Factor)]
pub(crate) struct FactorJson {
    /// The factor type.
    #[serde(rename = "type")]
    #[schema(schema_with = factor_type_schema)]
    pub(crate) kind: &'static str,
    /// When it was confirmed.
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) confirmed_at: OffsetDateTime,
}

pub(crate) fn factor_type_schema() -> utoipa::openapi::Object {
    string_enum(FACTORS)
}

impl<'a> From<&'a SignIn> for TokenResponse<'a> {
    fn from(sign_in: &'a SignIn) -> Self {
        Self {
            token_type: TOKEN_TYPE,
            access_token: &sign_in.access.token,
            expires_in: sign_in.access.expires_in,
            refresh_token: &sign_in.refresh_token,
            user: (&sign_in.user).into(),
            session: (&sign_in.family).into(),
            pending_organization: sign_in.pending.as_ref().map(|org| PendingOrganizationJson {
                id: org.id,
                slug: &org.slug,
                name: &org.name,
                joins_when: "email_verified",
            }),
        }
    }
}

/// `body` (the token response, or a response that contains it) with both session cookies.
pub(crate) fn with_session_cookies(
    status: StatusCode,
    sign_in: &SignIn,
    state: &AppState,
    body: impl Serialize,
) -> HttpResponse {
    let mut response = HttpResponseBuilder::new(status);
    set_session_cookies(&mut response, sign_in, &state.config.cookies);
    response.json(body)
}

/// The token response with both session cookies.
pub(crate) fn token_response(status: StatusCode, sign_in: &SignIn, state: &AppState) -> HttpResponse {
    with_session_cookies(status, sign_in, state, TokenResponse::from(sign_in))
}

pub(crate) fn origin(req: &HttpRequest, state: &AppState) -> Origin {
    Origin {
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        ip: client_ip(req, &state.config.trusted_proxies, state.config.client_ip_header).map(|ip| ip.to_string()),
    }
}

pub(crate) fn org_ref(organization: Option<String>) -> Result<Option<OrgRef>, ApiError> {
    match organization.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(ApiError::invalid_field("organization", "organization must not be empty")),
        Some(raw) => OrgRef::parse(raw).map(Some).ok_or(ApiError::OrganizationNotFound),
    }
}

/// One of the caller's sessions.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionItem<'a> {
    /// Session family id (`sid`).
    pub(crate) id: Uuid,
    pub(crate) organization_id: Uuid,
    /// `aal1` or `aal2`.
    pub(crate) aal: &'static str,
    /// `password`, `passkey` or `social_oauth`.
    pub(crate) auth_method: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) created_at: OffsetDateTime,
    /// The last refresh.
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) last_used_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) expires_at: OffsetDateTime,
    /// The `User-Agent` the sign-in came with.
    #[schema(required = true)]
    pub(crate) user_agent: Option<&'a str>,
    /// The client address the sign-in came from.
    #[schema(required = true)]
    pub(crate) ip: Option<&'a str>,
    /// The session of the access token that asked.
    pub(crate) current: bool,
}

impl<'a> SessionItem<'a> {
    /// `s` as listed, `current` when it is the session of the access token that asked.
    pub(crate) fn new(s: &'a SessionInfo, current: Option<Uuid>) -> Self {
        Self {
            id: s.sid,
            organization_id: s.org_id,
            aal: s.aal.as_str(),
            auth_method: s.auth_method.as_str(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent.as_deref(),
            ip: s.ip.as_deref(),
            current: Some(s.sid) == current,
        }
    }
}

/// Live sessions, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct SessionList<'a> {
    pub(crate) sessions: Vec<SessionItem<'a>>,
}

pub(crate) fn required_name_schema() -> utoipa::openapi::Object {
    display_text_schema(false)
}

pub(crate) fn path_org(raw: &str) -> Result<OrgRef, ApiError> {
    OrgRef::parse(raw).ok_or(ApiError::OrganizationNotFound)
}

pub(crate) fn path_uuid(raw: &str, missing: ApiError) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim()).map_err(|_| missing)
}

/// A string schema that takes only `values` (the wire names, from the code that writes them).
pub(crate) fn string_enum<const N: usize>(values: [&str; N]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).enum_values(Some(values)).build()
}

/// The answer to a sign-in: the token response with the session cookies, or the second-factor step
/// without any.
pub(crate) fn login_response(status: StatusCode, outcome: LoginOutcome, state: &AppState) -> HttpResponse {
    match outcome {
        LoginOutcome::SignedIn(sign_in) => {
            let body = LoginResponse::SignedIn(Box::new(TokenResponse::from(&*sign_in)));
            with_session_cookies(status, &sign_in, state, body)
        }
        LoginOutcome::MfaRequired { mfa_token, factors } => {
            HttpResponse::build(status).json(LoginResponse::MfaRequired(MfaRequired {
                mfa_required: true,
                mfa_token: &mfa_token,
                factors: factors.iter().map(|f| f.as_str()).collect(),
                enrollment_required: factors.is_empty(),
            }))
        }
    }
}

/// The password was right and a second factor is due: no session yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct MfaRequired<'a> {
    /// Always `true`.
    mfa_required: bool,
    /// An RS256 JWT (`typ: mfa`): send it with a code to `/v1/auth/mfa/verify` within 5 minutes; it works
    /// once.
    mfa_token: &'a str,
    /// The factor types the user can complete the sign-in with: `totp` (a recovery code works too),
    /// `passkey`; empty when the user has none yet.
    #[schema(schema_with = factors_schema)]
    factors: Vec<&'static str>,
    /// The organization requires a second factor and the user has none: enroll one with the mfa token
    /// (`/v1/auth/mfa/totp`, then `/v1/auth/mfa/totp/confirm`, which completes the sign-in).
    enrollment_required: bool,
}

/// What login answers with: a session, or the second-factor step.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum LoginResponse<'a> {
    SignedIn(Box<TokenResponse<'a>>),
    MfaRequired(MfaRequired<'a>),
}

pub(crate) fn factors_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new().items(string_enum(FACTORS)).unique_items(true).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MAX_DISPLAY_NAME;

    #[test]
    fn the_display_name_pattern_allows_max_display_name_characters() {
        assert!(DISPLAY_NAME_PATTERN.contains(&format!("]{{0,{}}}[", MAX_DISPLAY_NAME - 2)));
    }
}

/// An organization, with the caller's role in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationDetail)]
pub(crate) struct OrgJson<'a> {
    pub(crate) id: Uuid,
    pub(crate) slug: &'a str,
    pub(crate) name: &'a str,
    /// The caller's role.
    #[schema(schema_with = role_schema)]
    pub(crate) role: &'static str,
    pub(crate) disabled: bool,
    pub(crate) signup: SignupJson,
    pub(crate) policy: PolicyJson,
}

impl<'a> OrgJson<'a> {
    pub(crate) fn new(org: &'a Organization, role: Role) -> Self {
        let (mode, domains) = org.signup.columns();
        Self {
            id: org.id,
            slug: &org.slug,
            name: &org.name,
            role: role.as_str(),
            disabled: org.disabled,
            signup: SignupJson { mode: mode.to_owned(), domains },
            policy: PolicyJson::new(&org.policy),
        }
    }
}

/// Who may register straight into the organization.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignupJson {
    /// `closed`, `invite_only`, `open`, or `domains` (open to addresses at `domains`).
    #[schema(schema_with = signup_mode_schema)]
    pub(crate) mode: String,
    /// Lower-case domains, for `domains` only.
    #[serde(default)]
    pub(crate) domains: Vec<String>,
}

/// An organization's policy beyond sign-up, as shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PolicyJson {
    pub(crate) mfa_required: bool,
    #[schema(schema_with = auth_methods_schema)]
    pub(crate) auth_methods: Vec<&'static str>,
    /// Seconds; `null`: the server's.
    #[schema(required = true)]
    pub(crate) access_token_ttl: Option<i64>,
    /// Seconds; `null`: the server's.
    #[schema(required = true)]
    pub(crate) refresh_token_ttl: Option<i64>,
    #[schema(schema_with = rate_limits_schema)]
    pub(crate) rate_limits: OrgRateLimits,
}

impl PolicyJson {
    pub(crate) fn new(policy: &OrgPolicy) -> Self {
        Self {
            mfa_required: policy.sessions.mfa_required,
            auth_methods: policy.sessions.auth_methods.iter().map(|m| m.as_str()).collect(),
            access_token_ttl: policy.sessions.access_ttl.map(|t| t.whole_seconds()),
            refresh_token_ttl: policy.refresh_ttl.map(|t| t.whole_seconds()),
            rate_limits: policy.rate_limits,
        }
    }
}

/// The schema of `OrgRateLimits` (serialized by serde as `{"signin_ip": {"count", "period"}, …}`).
pub(crate) fn rate_limits_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::AdditionalProperties;
    use utoipa::openapi::{ObjectBuilder, Type};
    let positive = || ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).build();
    let rate = |description: &str| {
        ObjectBuilder::new()
            .description(Some(format!("{description}: at most `count` per `period` seconds")))
            .property("count", positive())
            .property("period", positive())
            .required("count")
            .required("period")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .build()
    };
    ObjectBuilder::new()
        .description(Some("Limits counted on top of the server's, for requests naming the organization"))
        .property("signin_ip", rate("Sign-in attempts per client address"))
        .property("register_ip", rate("Registrations per client address"))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .build()
}

pub(crate) fn signup_mode_schema() -> utoipa::openapi::Object {
    string_enum(["closed", "invite_only", "open", "domains"])
}

pub(crate) fn auth_methods_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(string_enum(AuthMethod::ALL.map(AuthMethod::as_str)))
        .min_items(Some(1))
        .unique_items(true)
        .build()
}
