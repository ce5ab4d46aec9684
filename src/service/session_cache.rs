//! The session read's cache: `GET /v1/auth/session` answered from memory while nothing it shows has changed.
//!
//! The read shows the family, its user (with factors and recovery codes) and its organization (with the
//! user's role). Every change to one of those gives it a new version in the denylist store once it is durable
//! (`Denylist::changed`), and the denylist check every access token already passes returns the current
//! versions in the same round trip (`Check::stamp`). A view cached under a stamp is used only while the
//! token's check returns that same stamp, so a change made on any replica is seen by the next read on every
//! replica, as the durable record would show it. Revocation does not depend on this: a revoked token or
//! family is refused by the denylist before the view is looked at.
//!
//! Views are also dropped after `MAX_AGE`, which bounds what a lost version change (the store failed after
//! the write was durable, and the writer's request failed with it) can leave stale.

use std::sync::Arc;

use identsphere_actors::{Stamp, VERSION_LIFETIME};
use quick_cache::sync::Cache;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::store::SessionContext;

/// The longest a view is trusted.
const MAX_AGE: Duration = Duration::seconds(30);
// A view must not outlive the versions it was cached under (an expired version reads as 0 again).
const _: () = assert!(MAX_AGE.whole_seconds() < VERSION_LIFETIME.as_secs().cast_signed());

/// Views kept at most: one per session family read recently, ~1 KB each.
const CAPACITY: usize = 100_000;

/// Session views by family id. Cheap to clone: the clones share the views.
#[derive(Clone)]
pub(crate) struct SessionCache(Arc<Cache<Uuid, Cached>>);

#[derive(Clone)]
struct Cached {
    context: Arc<SessionContext>,
    stamp: Stamp,
    read_at: OffsetDateTime,
}

impl SessionCache {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Cache::new(CAPACITY)))
    }

    /// The view of family `sid` if it was cached under `stamp` less than `MAX_AGE` before `now`.
    pub(crate) fn get(&self, sid: Uuid, stamp: Stamp, now: OffsetDateTime) -> Option<Arc<SessionContext>> {
        self.0
            .get(&sid)
            .filter(|cached| cached.stamp == stamp && now - cached.read_at < MAX_AGE)
            .map(|cached| cached.context)
    }

    /// Keeps `context`, read from the durable record at `now` after a check returned `stamp`.
    pub(crate) fn put(&self, sid: Uuid, context: Arc<SessionContext>, stamp: Stamp, now: OffsetDateTime) {
        self.0.insert(sid, Cached { context, stamp, read_at: now });
    }
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("len", &self.0.len()).finish()
    }
}
