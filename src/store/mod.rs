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
pub use identsphere_actors::{Denylist, FamilyRecord, FamilyStore, StoreError, UserProfile};
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
    /// An existing organization, as a member.
    Existing(Uuid),
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

    /// How many unused recovery codes the user has.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32, StoreError>;

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

/// A rate: at most `count` events per `period`, in a burst or spread out (GCRA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Events allowed per period.
    pub count: u32,
    /// The period.
    pub period: time::Duration,
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
    /// Everything `/readyz` checks.
    pub probes: Vec<Arc<dyn Probe>>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let probes: Vec<_> = self.probes.iter().map(|p| p.name()).collect();
        f.debug_struct("Stores").field("probes", &probes).finish_non_exhaustive()
    }
}
