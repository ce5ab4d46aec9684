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

/// The access-token denylist: checked wherever IdentSphere accepts an access token.
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

    /// Whether the token `jti` of family `sid` is denied at `now`.
    ///
    /// # Errors
    /// `StoreError` when the store fails.
    async fn is_denied(&self, jti: Uuid, sid: Uuid, now: OffsetDateTime) -> Result<bool, StoreError>;

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
