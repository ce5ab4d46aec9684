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
