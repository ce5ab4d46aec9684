//! The storage seams the actors need: the durable family record and the access-token denylist.
//!
//! Backends (Postgres + Redis, or the embedded store) implement these traits; the actors never know which
//! one they talk to. Implementations hold no business rules: they apply what `family::decide` decided,
//! atomically, and report what they saw.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::family::{Aal, FamilyRecord, RefreshPointer, RevokeReason, Subject};

/// A failure of a backing store, small enough to clone to every waiter of a coalesced request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached (connection refused, pool exhausted, timed out): retry later.
    #[error("backing store unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness constraint refused the write; the constraint's name is kept.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    /// Anything else: a bug or a schema mismatch, never the client's doing.
    #[error("store failure: {0}")]
    Internal(String),
}

/// Where and how a family started, kept with the durable record for the user's session list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The `User-Agent` the sign-in came with, truncated.
    pub user_agent: Option<String>,
    /// The client address the sign-in came from.
    pub ip: Option<String>,
}

/// What a rotation changes besides the live refresh token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyChange {
    /// Raise the assurance level (a second factor was verified).
    pub aal: Option<Aal>,
    /// Move the family into this organization (the user switched).
    pub org_id: Option<Uuid>,
    /// End the family no later than this (the organization moved into has a shorter lifetime).
    pub expires_by: Option<OffsetDateTime>,
}

/// A family as read from the store, with its subject's current account state.
pub type LoadedFamily = (FamilyRecord, Subject);

/// The durable record of session families.
#[async_trait]
pub trait FamilyStore: Send + Sync + 'static {
    /// Records a new family.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn insert(&self, family: &FamilyRecord, origin: &Origin, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Reads one family and its subject; `None` if there is no such family. The subject's organization
    /// (whether it is disabled, its session rules) is `seen_from` when given — the organization a switch
    /// moves the family into — and the family's own otherwise.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn load(&self, sid: Uuid, seen_from: Option<Uuid>) -> Result<Option<LoadedFamily>, StoreError>;

    /// Compare and set: spends `expected` and makes `next` live (applying `change`), only while `expected`
    /// is the live token, the family is neither revoked nor expired at `now`, and its subject's standing
    /// (in the organization it ends up in, at the level it ends up at) allows it. Returns the new state, or `None` when the condition did not
    /// hold (the caller then loads and decides).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn rotate(
        &self,
        sid: Uuid,
        expected: Uuid,
        next: RefreshPointer,
        change: FamilyChange,
        now: OffsetDateTime,
    ) -> Result<Option<LoadedFamily>, StoreError>;

    /// Ends the families among `sids` that are still live; ended ones keep their first reason.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn revoke(&self, sids: &[Uuid], reason: RevokeReason, now: OffsetDateTime) -> Result<(), StoreError>;
}

/// What a revocation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// Every access token of a session family (`sid`).
    Family,
    /// One access token (`jti`).
    Token,
}

impl Revoked {
    /// The stable name, in stores and on the wire: the claim the revocation matches.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Family => "sid",
            Self::Token => "jti",
        }
    }

    /// Parses the stable name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Family, Self::Token].into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One entry of the revocation feed: resource servers drop tokens it covers until `expires_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// What it covers.
    pub kind: Revoked,
    /// The `sid` or the `jti`.
    pub id: Uuid,
    /// When the last token it covers expires; the entry means nothing after.
    pub expires_at: OffsetDateTime,
}

/// A page of the revocation feed, in the order the revocations happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationPage {
    /// The revocations after the cursor asked for, still meaningful now.
    pub revocations: Vec<Revocation>,
    /// Where to continue from: `<number>-<number>`, opaque to clients.
    pub cursor: String,
}

/// Whose cached views a change makes stale: the session read (`GET /v1/auth/session`) is served from a
/// replica's memory while none of its user, organization and family has changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Changed {
    /// The user's profile, factors, recovery codes or memberships.
    User(Uuid),
    /// The organization's name, slug, policy or state.
    Organization(Uuid),
    /// The family's organization, assurance level or end (a switch or a step-up).
    Family(Uuid),
}

/// The versions of an access token's user, organization and family when it was checked: a view cached
/// under one stamp is current as long as a later check returns the same stamp. Versions are opaque (not
/// ordered); an absent one reads as 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp(pub [u64; 3]);

/// Gives each of `changes` a new version (`Denylist::changed`) once they are durable. A failure is logged,
/// not returned: the change is made and its request must say so, and a view cached under the old version
/// is dropped within the view cache's bound on age anyway.
pub async fn mark_changed(denylist: &dyn Denylist, changes: &[Changed]) {
    if let Err(err) = denylist.changed(changes).await {
        tracing::warn!(error = %err, ?changes, "could not give the changed records new versions; cached session views of them expire by age");
    }
}

/// How long a version outlives its last change. A view cached longer than this could see a version it was
/// cached under come back (an expired version reads as 0 again): caches keep views for less.
pub const VERSION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a denial outlives the tokens it covers as the denying replica's clock sees them: the most the
/// clocks of two replicas may disagree. A token minted on a replica whose clock runs ahead expires later
/// than the replica that revokes it computes; the denylist and the feed keep it refused until then.
pub const CLOCK_SKEW_ALLOWANCE: time::Duration = time::Duration::seconds(60);

/// What the denylist answers for one access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// The token or its family is denied.
    pub denied: bool,
    /// The versions of its user, organization and family.
    pub stamp: Stamp,
}

/// The access token a check is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenRef {
    /// Token id.
    pub jti: Uuid,
    /// Its family.
    pub sid: Uuid,
    /// Its user.
    pub user: Uuid,
    /// Its organization.
    pub org: Uuid,
}

/// The access-token denylist: checked wherever IdentSphere accepts an access token. It also keeps the
/// versions of what cached session views depend on, so that one round trip answers both.
#[async_trait]
pub trait Denylist: Send + Sync + 'static {
    /// Denies every access token of these families until `until` (when the last of them expires).
    /// `now` lets a store without expiring keys drop entries that cover nothing any more.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn deny_families(&self, sids: &[Uuid], until: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Denies one access token until `until` (its own expiry).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn deny_token(&self, jti: Uuid, until: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError>;

    /// Whether `token` is denied at `now`, and the current stamp of its user, organization and family.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn check(&self, token: TokenRef, now: OffsetDateTime) -> Result<Check, StoreError>;

    /// Gives each of `changes` a new version, on every replica at once. Called after the change is durable:
    /// a view read before this call carries the old version and is not trusted after it.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn changed(&self, changes: &[Changed]) -> Result<(), StoreError>;

    /// The revocations recorded after `cursor` (from the start without one), at most `limit`, leaving out
    /// those that expired by `now`. `cursor` has the form `<number>-<number>` (checked by the caller).
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn revocations_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<RevocationPage, StoreError>;
}
