//! Storage: narrow traits over what the service needs, and their backends.
//!
//! Handlers and actors see only the traits; `postgres` (everything durable) with `redis` (the denylist)
//! implement them for production, `embedded` (one SQLite file) for a single node. Implementations hold
//! no business rules and map their failures to `StoreError` (unreachable = `Unavailable`, unique
//! violation = `Conflict`).

pub mod embedded;
pub mod postgres;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use identsphere_actors::AuthMethod;
pub use identsphere_actors::{Denylist, FamilyRecord, FamilyStore, SessionRules, StoreError, UserProfile};
use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::auth::keys::{KeyAlgorithm, KeyStore, StoredKey};
use crate::domain::{Email, OrgRef, Role};

/// Counts a failure of `store` (`postgres`, `redis`, `embedded`) and passes it on. Conflicts are not
/// counted: a taken email is a normal answer, not a store in trouble.
#[must_use]
pub(crate) fn counted(store: &'static str, err: StoreError) -> StoreError {
    let kind = match &err {
        StoreError::Unavailable(_) => Some("unavailable"),
        StoreError::Internal(_) => Some("internal"),
        StoreError::Conflict(_) => None,
    };
    if let Some(kind) = kind {
        metrics::counter!("identsphere_store_errors_total", "store" => store, "kind" => kind).increment(1);
    }
    err
}

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

/// A user with the password hash to check at sign-in.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user.
    pub user: UserProfile,
    /// Disabled users cannot sign in.
    pub disabled: bool,
    /// PHC string.
    pub password_hash: String,
}

/// The organization a new account joins.
#[derive(Clone, Debug)]
pub enum Joining {
    /// A new personal organization, owned by the new user.
    Personal {
        /// Its id.
        id: Uuid,
        /// Its slug.
        slug: String,
        /// Its name.
        name: String,
    },
    /// An existing organization that takes sign-ups, as a member.
    Existing(Uuid),
    /// The organization of an invitation, with its role; the invitation is spent in the same transaction.
    Invited {
        /// The organization.
        org_id: Uuid,
        /// The role invited to.
        role: Role,
        /// SHA-256 of the invitation's token.
        token_hash: SecretHash,
    },
    /// An organization an administrator adds the account to (admin API), with its audit entry.
    Added {
        /// The organization.
        org_id: Uuid,
        /// The role given.
        role: Role,
        /// Who added it: written in the same transaction.
        audit: Box<Audit>,
    },
}

/// Everything registering creates, in one transaction.
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// The user's id.
    pub user_id: Uuid,
    /// Their email.
    pub email: Email,
    /// Optional display name.
    pub display_name: Option<String>,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The organization joined.
    pub joining: Joining,
    /// The request's time.
    pub now: OffsetDateTime,
}

/// What `GET /v1/auth/session` shows, read in one go.
#[derive(Clone, Debug)]
pub struct SessionContext {
    /// The family.
    pub family: FamilyRecord,
    /// Its user.
    pub user: UserProfile,
    /// The user is disabled.
    pub user_disabled: bool,
    /// Its organization.
    pub organization: Organization,
    /// The user's role there; `None` if they left it since.
    pub role: Option<Role>,
    /// When the user's TOTP factor was confirmed; `None` without one.
    pub totp_confirmed_at: Option<OffsetDateTime>,
    /// The user's unused recovery codes (none without a confirmed factor).
    pub recovery_codes_left: u32,
}

/// Users, organizations, memberships and credentials.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Finds an organization by id or slug.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn find_org(&self, org: &OrgRef) -> Result<Option<Organization>, StoreError>;

    /// Creates the user, their password credential and their membership in one transaction.
    ///
    /// # Errors
    /// `StoreError::Conflict` when the email (or a personal slug) is taken.
    async fn create_account(&self, account: &NewAccount) -> Result<UserProfile, StoreError>;

    /// The user signing in with this (normalized) email, with their password hash.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn credentials(&self, email_normalized: &str) -> Result<Option<Credentials>, StoreError>;

    /// Replaces a password hash (re-hash with new parameters).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn set_password_hash(&self, user_id: Uuid, hash: &str, now: OffsetDateTime) -> Result<(), StoreError>;

    /// The user's role in `org_id`, if a member.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn role(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<Role>, StoreError>;

    /// The organization the user used most recently.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn most_recent_org(&self, user_id: Uuid) -> Result<Option<Organization>, StoreError>;

    /// Marks the membership as used now (login picks the most recent one).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn touch_membership(&self, user_id: Uuid, org_id: Uuid, now: OffsetDateTime) -> Result<(), StoreError>;

    /// A family with its user, organization and role.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn session_context(&self, sid: Uuid) -> Result<Option<SessionContext>, StoreError>;

    /// The user's live families, as `(sid, org_id)`.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn live_families(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<(Uuid, Uuid)>, StoreError>;
}

/// What `create_account` reports as its conflict when the invitation it was to spend no longer works.
pub const INVITATION_SPENT: &str = "invitation_spent";

/// Spends a waiting, unexpired invitation for the account with this email (the binding), once.
macro_rules! spend_invitation_sql {
    ($p:literal) => {
        concat!(
            "UPDATE invitations SET accepted_at = ",
            $p,
            "3, accepted_by = ",
            $p,
            "2 WHERE token_hash = ",
            $p,
            "1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ",
            $p,
            "3 AND email_normalized = ",
            $p,
            "4"
        )
    };
}
pub(crate) use spend_invitation_sql;

/// A user's TOTP factor as stored.
#[derive(Clone)]
pub struct TotpFactor {
    /// The shared secret, sealed under the key-encryption key and bound to the user id.
    pub sealed_secret: Vec<u8>,
    /// When enrollment started.
    pub created_at: OffsetDateTime,
    /// When the first code confirmed it; `None` while the enrollment waits for one.
    pub confirmed_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for TotpFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpFactor").field("confirmed_at", &self.confirmed_at).finish_non_exhaustive()
    }
}

/// SHA-256 of a high-entropy secret (a recovery code, a link token): what the stores keep instead.
pub type SecretHash = [u8; 32];

/// Second factors: TOTP, recovery codes, and single-use tokens.
#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    /// The user's TOTP factor, confirmed or waiting for its first code.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError>;

    /// Starts (or restarts) a TOTP enrollment with a new sealed secret. Returns `false`, changing
    /// nothing, when the user already has a confirmed factor.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn begin_totp(&self, user_id: Uuid, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError>;

    /// Confirms a waiting enrollment with the time step of its first code and replaces the user's
    /// recovery codes, in one transaction. Returns `false` when there was no enrollment waiting.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_codes: &[SecretHash],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Accepts time step `step` of a confirmed factor, once: `false` when it (or a later one) was
    /// accepted before, which is a replayed code.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError>;

    /// Spends one of the user's unused recovery codes: `false` when no unused code has this hash.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn spend_recovery_code(
        &self,
        user_id: Uuid,
        code: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Removes the user's TOTP factor and recovery codes: `false` when there was no factor.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError>;

    /// Marks the single-use token `jti` spent until `expires_at`: `false` when it was spent before.
    /// Entries that expired by `now` are dropped on the way.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn spend_once(&self, jti: Uuid, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError>;
}

/// What a lifecycle link does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Proves the user receives mail at an address.
    VerifyEmail,
    /// Lets the user set a new password.
    ResetPassword,
}

impl LinkPurpose {
    /// The stable name, in stores.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// A lifecycle link to store: only the hash of its token is kept.
#[derive(Clone, Debug)]
pub struct NewLink {
    /// SHA-256 of the token in the link.
    pub token_hash: SecretHash,
    /// Whose account.
    pub user_id: Uuid,
    /// What it does.
    pub purpose: LinkPurpose,
    /// The address it was sent to.
    pub email: String,
    /// When it was made.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// The account lifecycle: email verification, password reset and change.
#[async_trait]
pub trait LifecycleStore: Send + Sync + 'static {
    /// The user with this id, with their password hash.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn user(&self, user_id: Uuid) -> Result<Option<Credentials>, StoreError>;

    /// Stores a new link.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn add_link(&self, link: &NewLink) -> Result<(), StoreError>;

    /// Spends an unexpired, unused email-verification link and marks the address it was sent to
    /// verified, if it is still the user's. Returns the user, or `None` when the link does not work.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn verify_email(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Uuid>, StoreError>;

    /// Spends an unexpired, unused password-reset link, sets the new password hash and spends the user's
    /// other reset links, in one transaction. Returns the user, or `None` when the link does not work.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn reset_password(
        &self,
        token_hash: &SecretHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError>;

    /// Sets a new password hash chosen by the user and spends their outstanding reset links.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn change_password(&self, user_id: Uuid, password_hash: &str, now: OffsetDateTime) -> Result<(), StoreError>;
}

/// A member of an organization.
#[derive(Clone, Debug)]
pub struct Member {
    /// The user.
    pub user: UserProfile,
    /// Their role.
    pub role: Role,
    /// When they joined.
    pub joined_at: OffsetDateTime,
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

/// A change to one membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// Give the member this role.
    Role(Role),
    /// End the membership.
    Remove,
    /// End the membership and delete the account if it belongs to no other organization (admin API).
    Delete,
    /// Disable (`true`) or enable the membership (admin API): a disabled member is no member for
    /// signing in, switching or acting.
    Disable(bool),
}

impl MembershipChange {
    /// Whether the change takes an enabled owner away: refused for the organization's last one.
    #[must_use]
    pub const fn ends_ownership(self) -> bool {
        !matches!(self, Self::Role(Role::Owner) | Self::Disable(false))
    }
}

/// What a membership change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipOutcome {
    /// Applied.
    Done,
    /// The user is not a member.
    NotAMember,
    /// Refused: the organization would have no owner left.
    LastOwner,
}

/// One of a user's session families, as their session list shows it.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The family (`sid`).
    pub sid: Uuid,
    /// Its organization.
    pub org_id: Uuid,
    /// Its assurance level.
    pub aal: identsphere_actors::Aal,
    /// How the user signed in.
    pub auth_method: identsphere_actors::AuthMethod,
    /// When it started.
    pub created_at: OffsetDateTime,
    /// Its last refresh (or its start).
    pub last_used_at: OffsetDateTime,
    /// Its absolute end.
    pub expires_at: OffsetDateTime,
    /// The `User-Agent` it started with.
    pub user_agent: Option<String>,
    /// The client address it started from.
    pub ip: Option<String>,
}

/// An invitation waiting to be accepted.
#[derive(Clone, Debug)]
pub struct Invitation {
    /// Its id.
    pub id: Uuid,
    /// The organization it is into.
    pub org_id: Uuid,
    /// The invited address, as typed.
    pub email: String,
    /// The invited address, normalized: only this account may accept.
    pub email_normalized: String,
    /// The role it grants.
    pub role: Role,
    /// Who invited.
    pub invited_by: Option<Uuid>,
    /// When.
    pub created_at: OffsetDateTime,
    /// Until when it works.
    pub expires_at: OffsetDateTime,
}

/// Who acts on an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user.
    User(Uuid),
    /// An API key (server to server).
    Key(Uuid),
    /// The operator, on the command line (`identsphere admin create-key`).
    Operator,
}

impl Actor {
    /// The stored form: the user's id or the key's id (neither for the operator).
    #[must_use]
    pub const fn columns(self) -> (Option<Uuid>, Option<Uuid>) {
        match self {
            Self::User(id) => (Some(id), None),
            Self::Key(id) => (None, Some(id)),
            Self::Operator => (None, None),
        }
    }
}

/// Who changes an organization, for its audit log: written in the same transaction as the change.
#[derive(Clone, Debug)]
pub struct Audit {
    /// When.
    pub at: OffsetDateTime,
    /// Who acts.
    pub actor: Actor,
    /// From where (their client address).
    pub ip: Option<String>,
    /// What, as `subject.verb` (`member.removed`).
    pub action: &'static str,
    /// What on: a user or invitation id, or the fields changed.
    pub target: Option<String>,
}

/// One entry of an organization's audit log.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    /// Its id.
    pub id: Uuid,
    /// When.
    pub at: OffsetDateTime,
    /// The user who acted; `None` once deleted, or when a key acted.
    pub actor_id: Option<Uuid>,
    /// The API key that acted; `None` when a user did (or once the key is deleted).
    pub actor_key_id: Option<Uuid>,
    /// What.
    pub action: String,
    /// What on.
    pub target: Option<String>,
    /// From where.
    pub ip: Option<String>,
}

/// Organizations, their members, and users' session lists.
#[async_trait]
pub trait OrganizationStore: Send + Sync + 'static {
    /// Creates an organization with `owner` as its owner, in one transaction.
    ///
    /// # Errors
    /// `StoreError::Conflict("organizations_slug_key")` when the slug is taken.
    async fn create_org(&self, org: &Organization, owner: Uuid, audit: &Audit) -> Result<(), StoreError>;

    /// The organizations the user is a member of, with their role, by name.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn orgs_of(&self, user_id: Uuid) -> Result<Vec<(Organization, Role)>, StoreError>;

    /// Applies `update`; returns the organization afterwards, `None` if there is none with this id.
    ///
    /// # Errors
    /// `StoreError::Conflict("organizations_slug_key")` when the new slug is taken.
    async fn update_org(
        &self,
        org_id: Uuid,
        update: &OrgUpdate,
        audit: &Audit,
    ) -> Result<Option<Organization>, StoreError>;

    /// The members, owners first, then by join time.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn members(&self, org_id: Uuid) -> Result<Vec<Member>, StoreError>;

    /// Changes a membership, serialized per organization so that two concurrent changes cannot leave it
    /// without an owner.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn change_membership(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        change: MembershipChange,
        audit: &Audit,
    ) -> Result<MembershipOutcome, StoreError>;

    /// Stores a new invitation with the hash of its token.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn add_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &SecretHash,
        audit: &Audit,
    ) -> Result<(), StoreError>;

    /// The organization's invitations still waiting at `now`, oldest first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn invitations(&self, org_id: Uuid, now: OffsetDateTime) -> Result<Vec<Invitation>, StoreError>;

    /// Revokes a waiting invitation of the organization: `false` when there is none with this id.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn revoke_invitation(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError>;

    /// The waiting, unexpired invitation with this token.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn invitation(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Invitation>, StoreError>;

    /// Spends the waiting, unexpired invitation with this token for `user_id` and makes them a member with
    /// its role (an existing membership stays as it is), in one transaction (the audit entry's target is
    /// the invitation). `None` when the invitation does not work (any more).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn accept_invitation(
        &self,
        token_hash: &SecretHash,
        user_id: Uuid,
        audit: &Audit,
    ) -> Result<Option<Invitation>, StoreError>;

    /// Makes `user_id` a member of `org_id` because the organization takes sign-ups of the domain of
    /// their verified address, with `audit` in the same transaction. `false` when they already have a
    /// membership there (a disabled one included: that stays as the organization left it).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn join_by_domain(&self, user_id: Uuid, org_id: Uuid, audit: &Audit) -> Result<bool, StoreError>;

    /// The organization's audit log, newest first: at most `limit` entries older than `before` (an entry's
    /// time and id) when given.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn audit_events(
        &self,
        org_id: Uuid,
        before: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The user's live session families, newest first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionInfo>, StoreError>;
}

/// A secret API key as stored: the hash of its secret, never the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id, also the public part of the key.
    pub id: Uuid,
    /// The organization it acts for; `None` for a platform key (every organization).
    pub org_id: Option<Uuid>,
    /// What it is for, as its creator named it.
    pub name: String,
    /// SHA-256 of the secret part.
    pub secret_hash: SecretHash,
    /// Who created it (`None` for the command line, or once deleted).
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: OffsetDateTime,
    /// Its last use (kept to the minute).
    pub last_used_at: Option<OffsetDateTime>,
    /// Revoked keys authenticate nothing.
    pub revoked: bool,
}

/// A member as the admin API shows them.
#[derive(Clone, Debug)]
pub struct OrgUser {
    /// The user.
    pub user: UserProfile,
    /// Their role.
    pub role: Role,
    /// When they joined.
    pub joined_at: OffsetDateTime,
    /// An administrator disabled them in this organization.
    pub disabled: bool,
}

/// Which members a listing wants.
#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    /// Only emails containing this (lower-case) text.
    pub email_contains: Option<String>,
    /// Only emails after this normalized email (the cursor of the page before).
    pub after: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// The admin API's store: API keys and the users of an organization (membership changes go through
/// `OrganizationStore::change_membership`).
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Stores a new key, with the audit entry of its organization (none for a platform key).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn add_key(&self, key: &ApiKey, audit: Option<&Audit>) -> Result<(), StoreError>;

    /// The key with this id, revoked or not.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError>;

    /// The organization's keys, oldest first.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn keys(&self, org_id: Uuid) -> Result<Vec<ApiKey>, StoreError>;

    /// Revokes a live key of the organization: `false` when it has none with this id.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn revoke_key(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError>;

    /// Records an action that changes nothing stored (sessions ended) in the organization's audit log.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn record(&self, org_id: Uuid, audit: &Audit) -> Result<(), StoreError>;

    /// Records a use of the key at `now` (written at most once a minute).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn touch_key(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError>;

    /// A page of the organization's members by email.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn org_users(&self, org_id: Uuid, query: &UserQuery) -> Result<Vec<OrgUser>, StoreError>;

    /// One member of the organization.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn org_user(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<OrgUser>, StoreError>;
}

/// A rate: at most `count` events per `period`, in a burst or spread out (GCRA). Stored and shown as
/// `{"count": 5, "period": 60}` (seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RateSeconds", into = "RateSeconds")]
pub struct Rate {
    /// Events allowed per period.
    pub count: u32,
    /// The period.
    pub period: time::Duration,
}

/// The stored form of a [`Rate`].
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RateSeconds {
    count: u32,
    period: u32,
}

impl TryFrom<RateSeconds> for Rate {
    type Error = &'static str;

    fn try_from(rate: RateSeconds) -> Result<Self, Self::Error> {
        if rate.count == 0 || rate.period == 0 {
            return Err("a rate needs a count and a period of at least 1");
        }
        Ok(Self { count: rate.count, period: time::Duration::seconds(i64::from(rate.period)) })
    }
}

impl From<Rate> for RateSeconds {
    fn from(rate: Rate) -> Self {
        Self { count: rate.count, period: u32::try_from(rate.period.whole_seconds()).unwrap_or(u32::MAX) }
    }
}

impl Rate {
    /// The spacing of events at the sustained rate (the GCRA emission interval), in milliseconds.
    #[must_use]
    pub fn emission_ms(&self) -> i64 {
        i64::try_from(self.period.whole_milliseconds()).unwrap_or(i64::MAX) / i64::from(self.count.max(1))
    }

    /// How far ahead of now the theoretical arrival time may run: a full burst, in milliseconds.
    #[must_use]
    pub fn tolerance_ms(&self) -> i64 {
        i64::try_from(self.period.whole_milliseconds()).unwrap_or(i64::MAX) - self.emission_ms()
    }
}

/// Shared rate-limit counters (GCRA: one "theoretical arrival time" per key), the same for every replica.
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Whether an event for `key` is allowed at `now` under `rate`; counts it when `consume` and allowed.
    /// Returns `None` when allowed, or how long to wait.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn check(
        &self,
        key: &str,
        rate: Rate,
        consume: bool,
        now: OffsetDateTime,
    ) -> Result<Option<time::Duration>, StoreError>;
}

/// A backing service whose reachability `/readyz` reports.
#[async_trait]
pub trait Probe: Send + Sync + 'static {
    /// The name `/readyz` shows.
    fn name(&self) -> &'static str;

    /// Answers when the service does.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when it does not.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes its connections (at shutdown); later calls fail as unavailable.
    fn close(&self) {}
}

/// The backends of one running server.
#[derive(Clone)]
pub struct Stores {
    /// Users, organizations, memberships.
    pub accounts: Arc<dyn AccountStore>,
    /// Session families.
    pub families: Arc<dyn FamilyStore>,
    /// Organizations, members and session lists.
    pub organizations: Arc<dyn OrganizationStore>,
    /// Second factors and single-use tokens.
    pub factors: Arc<dyn FactorStore>,
    /// Email verification, password reset and change.
    pub lifecycle: Arc<dyn LifecycleStore>,
    /// Keys.
    pub keys: Arc<dyn KeyStore>,
    /// Access-token denylist.
    pub denylist: Arc<dyn Denylist>,
    /// Rate-limit counters.
    pub limiter: Arc<dyn RateLimiter>,
    /// API keys and the admin API's user management.
    pub admin: Arc<dyn AdminStore>,
    /// Everything `/readyz` checks.
    pub probes: Vec<Arc<dyn Probe>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probes: Vec<_> = self.probes.iter().map(|p| p.name()).collect();
        f.debug_struct("Stores").field("probes", &probes).finish_non_exhaustive()
    }
}
