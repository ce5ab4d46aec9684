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
//! Views are also dropped after `MAX_AGE`, which bounds what a lost version change can leave stale: the store
//! failed after the write was durable (the request still succeeds, since its change is made, and the failure
//! is logged), the replica died between the two, or the change was made outside the API. The views of
//! families nobody reads any more are swept out once they are that old, so memory follows the families read
//! in the last `MAX_AGE`, not every family ever read (the fault harness's 30-minute run saw a replica grow
//! by 0.4 MiB a minute while the cache filled towards its capacity).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use identsphere_actors::{Stamp, VERSION_LIFETIME};
use quick_cache::sync::Cache;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::model::SessionContext;

/// The longest a view is trusted.
const MAX_AGE: Duration = Duration::seconds(30);
// A view must not outlive the versions it was cached under (an expired version reads as 0 again).
const _: () = assert!(MAX_AGE.whole_seconds() < VERSION_LIFETIME.as_secs().cast_signed());

/// Views kept at most: one per session family read in the last `MAX_AGE`, ~1 KB each.
const CAPACITY: usize = 100_000;

/// Session views by family id. Cheap to clone: the clones share the views.
#[derive(Clone)]
pub(crate) struct SessionCache(Arc<Views>);

struct Views {
    cache: Cache<Uuid, Cached>,
    /// When (Unix seconds) the next `put` sweeps out the views older than `MAX_AGE`.
    next_sweep: AtomicI64,
}

#[derive(Clone)]
struct Cached {
    context: Arc<SessionContext>,
    stamp: Stamp,
    read_at: OffsetDateTime,
}

impl SessionCache {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Views { cache: Cache::new(CAPACITY), next_sweep: AtomicI64::new(i64::MIN) }))
    }

    /// The view of family `sid` if it was cached under `stamp` less than `MAX_AGE` before `now`.
    pub(crate) fn get(&self, sid: Uuid, stamp: Stamp, now: OffsetDateTime) -> Option<Arc<SessionContext>> {
        let found = self.0.cache.get(&sid);
        let result = match &found {
            None => "miss",
            Some(cached) if cached.stamp != stamp => "changed",
            Some(cached) if now - cached.read_at >= MAX_AGE => "expired",
            Some(_) => "hit",
        };
        metrics::counter!("identsphere_session_views_total", "result" => result).increment(1);
        found.filter(|_| result == "hit").map(|cached| cached.context)
    }

    /// Keeps `context`, read from the durable record at `now` after a check returned `stamp`.
    /// At most once per `MAX_AGE`, it also drops every view too old to be served.
    pub(crate) fn put(&self, sid: Uuid, context: Arc<SessionContext>, stamp: Stamp, now: OffsetDateTime) {
        let views = &self.0;
        views.cache.insert(sid, Cached { context, stamp, read_at: now });
        let due = views.next_sweep.load(Ordering::Relaxed);
        let next = now.unix_timestamp() + MAX_AGE.whole_seconds();
        // One caller sweeps; the others go on. A clock set back only delays the sweep until it is due again.
        if now.unix_timestamp() >= due
            && views.next_sweep.compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            views.cache.retain(|_, cached| now - cached.read_at < MAX_AGE);
        }
        metrics::gauge!("identsphere_session_views").set(views.cache.len() as f64);
    }
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache").field("len", &self.0.cache.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use identsphere_actors::{AuthMethod, FamilyRecord, UserProfile};

    use super::*;
    use crate::model::{OrgPolicy, Organization, SignupMode};

    fn context(now: OffsetDateTime) -> SessionContext {
        let (user, org) = (Uuid::new_v4(), Uuid::new_v4());
        SessionContext {
            family: FamilyRecord::start(user, org, AuthMethod::Password, now, Duration::days(30)),
            user: UserProfile {
                id: user,
                email: "ada@example.com".into(),
                email_verified: false,
                display_name: None,
                created_at: now,
            },
            user_disabled: false,
            organization: Organization {
                id: org,
                slug: "acme".into(),
                name: "Acme".into(),
                signup: SignupMode::Closed,
                disabled: false,
                policy: OrgPolicy::default(),
            },
            role: None,
            totp_confirmed_at: None,
            recovery_codes_left: 0,
        }
    }

    #[test]
    fn a_view_is_served_only_under_the_stamp_it_was_read_with_and_for_less_than_max_age() {
        let cache = SessionCache::new();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let view = Arc::new(context(now));
        let sid = view.family.sid;
        let stamp = Stamp([1, 2, 3]);
        assert!(cache.get(sid, stamp, now).is_none(), "nothing cached yet");
        cache.put(sid, Arc::clone(&view), stamp, now);
        assert!(Arc::ptr_eq(&cache.get(sid, stamp, now + MAX_AGE - Duration::milliseconds(1)).unwrap(), &view));
        for changed in [Stamp([9, 2, 3]), Stamp([1, 9, 3]), Stamp([1, 2, 9]), Stamp::default()] {
            assert!(cache.get(sid, changed, now).is_none(), "{changed:?}");
        }
        assert!(cache.get(sid, stamp, now + MAX_AGE).is_none(), "too old");
        assert!(cache.get(Uuid::new_v4(), stamp, now).is_none(), "another family");
    }

    #[test]
    fn views_too_old_to_be_served_are_swept_out_by_a_later_put() {
        let cache = SessionCache::new();
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let stamp = Stamp([1, 2, 3]);
        for _ in 0..100 {
            let view = Arc::new(context(start));
            cache.put(view.family.sid, view, stamp, start);
        }
        assert_eq!(cache.0.cache.len(), 100);
        let fresh = Arc::new(context(start + MAX_AGE - Duration::seconds(1)));
        cache.put(fresh.family.sid, Arc::clone(&fresh), stamp, start + MAX_AGE - Duration::seconds(1));
        assert_eq!(cache.0.cache.len(), 101, "not due yet: the first sweep was at the first put");
        let later = Arc::new(context(start + MAX_AGE));
        cache.put(later.family.sid, Arc::clone(&later), stamp, start + MAX_AGE);
        assert_eq!(cache.0.cache.len(), 2, "the hundred views read at the start are gone, the fresh one is kept");
        assert!(cache.get(fresh.family.sid, stamp, start + MAX_AGE).is_some());
    }
}
