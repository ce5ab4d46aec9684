//! The revocation feed: what IdentSphere has revoked (logouts, refresh-token reuse), polled from
//! `GET /v1/revocations` and kept in memory.
//!
//! Each entry names a session family (`sid`) or a token (`jti`) and carries the instant by which every
//! token it covers has expired; it is forgotten then, so the list stays as small as the set of
//! revoked-but-unexpired tokens. When the feed cannot be reached the poller keeps what it has, counts the
//! failure in `identsphere_sdk_revocation_feed_errors_total` and logs it (once when it starts failing,
//! once when it recovers). The poller stops when the last [`crate::IdentSphere`] handle is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use serde::Deserialize;
use uuid::Uuid;

use crate::claims::Claims;
use crate::clock::unix_now;

/// Entries per page asked for (the feed's maximum).
const PAGE: usize = 1000;
/// Pages read in one poll at most, so a huge backlog cannot starve the interval.
const MAX_PAGES: usize = 100;

/// What the SDK knows of the feed: for health checks and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedStatus {
    /// At least one poll has succeeded since start-up.
    pub synced: bool,
    /// Polls that failed in a row (0 when the last one succeeded).
    pub consecutive_failures: u64,
    /// Revocations held now (sessions and tokens).
    pub entries: usize,
}

#[derive(Debug, Default)]
struct Entries {
    sids: HashMap<Uuid, i64>,
    jtis: HashMap<Uuid, i64>,
}

/// The revocations known so far.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    entries: RwLock<Entries>,
    status: Mutex<FeedStatus>,
}

#[derive(Debug, Deserialize)]
struct Page {
    revocations: Vec<Entry>,
    cursor: String,
}

#[derive(Debug, Deserialize)]
struct Entry {
    kind: String,
    id: String,
    expires_at: i64,
}

impl Revocations {
    /// Whether the token's `jti` or its session `sid` is revoked at `now`.
    pub(crate) fn is_revoked(&self, claims: &Claims, now: i64) -> bool {
        let Ok(entries) = self.entries.read() else { return false };
        let hit = |map: &HashMap<Uuid, i64>, id: Option<Uuid>| {
            id.and_then(|id| map.get(&id)).is_some_and(|&until| until > now)
        };
        hit(&entries.jtis, claims.jti) || hit(&entries.sids, claims.sid)
    }

    /// Adds a page of entries and forgets those whose tokens have all expired at `now`.
    fn apply(&self, page: &[Entry], now: i64) {
        let Ok(mut entries) = self.entries.write() else { return };
        for entry in page {
            let Ok(id) = Uuid::parse_str(&entry.id) else { continue };
            let map = match entry.kind.as_str() {
                "sid" => &mut entries.sids,
                "jti" => &mut entries.jtis,
                _ => continue,
            };
            let until = map.entry(id).or_insert(entry.expires_at);
            *until = (*until).max(entry.expires_at);
        }
        entries.sids.retain(|_, until| *until > now);
        entries.jtis.retain(|_, until| *until > now);
        let held = entries.sids.len() + entries.jtis.len();
        metrics::gauge!("identsphere_sdk_revocations").set(held as f64);
        if let Ok(mut status) = self.status.lock() {
            status.entries = held;
        }
    }

    pub(crate) fn status(&self) -> FeedStatus {
        self.status.lock().map_or_else(|p| p.into_inner().clone(), |s| s.clone())
    }

    fn record(&self, outcome: &Result<(), String>) {
        let Ok(mut status) = self.status.lock() else { return };
        match outcome {
            Ok(()) => {
                if status.consecutive_failures > 0 {
                    tracing::info!(
                        failures = status.consecutive_failures,
                        "the IdentSphere revocation feed is reachable again"
                    );
                }
                status.synced = true;
                status.consecutive_failures = 0;
                metrics::gauge!("identsphere_sdk_revocation_feed_up").set(1.0);
            }
            Err(error) => {
                metrics::counter!("identsphere_sdk_revocation_feed_errors_total").increment(1);
                metrics::gauge!("identsphere_sdk_revocation_feed_up").set(0.0);
                if status.consecutive_failures == 0 {
                    tracing::warn!(
                        %error,
                        entries = status.entries,
                        "the IdentSphere revocation feed is unreachable; serving with the revocations known so far"
                    );
                } else {
                    tracing::debug!(%error, failures = status.consecutive_failures + 1, "revocation feed still unreachable");
                }
                status.consecutive_failures += 1;
            }
        }
    }
}

/// Polls the feed into a [`Revocations`]. No `Debug`: it holds the platform API key.
pub(crate) struct Poller {
    pub(crate) url: String,
    pub(crate) api_key: String,
    pub(crate) http: reqwest::Client,
    pub(crate) every: Duration,
    pub(crate) cursor: Option<String>,
}

impl Poller {
    /// Reads every new page once.
    pub(crate) async fn poll(&mut self, list: &Revocations) {
        let outcome = self.read_pages(list).await;
        list.record(&outcome);
    }

    async fn read_pages(&mut self, list: &Revocations) -> Result<(), String> {
        for _ in 0..MAX_PAGES {
            let mut request = self.http.get(&self.url).bearer_auth(&self.api_key).query(&[("limit", PAGE.to_string())]);
            if let Some(cursor) = &self.cursor {
                request = request.query(&[("after", cursor)]);
            }
            let response = request.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            if status == reqwest::StatusCode::BAD_REQUEST && self.cursor.is_some() {
                // The server no longer knows our cursor (its store was reset): start again from the oldest
                // entry still meaningful; entries are idempotent.
                tracing::info!("the revocation feed refused our cursor; reading it again from the start");
                self.cursor = None;
                continue;
            }
            if !status.is_success() {
                return Err(format!("status {status}"));
            }
            let page: Page = response.json().await.map_err(|e| format!("not a revocation page: {e}"))?;
            list.apply(&page.revocations, unix_now());
            self.cursor = Some(page.cursor);
            if page.revocations.len() < PAGE {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Polls every `every` until `list` is dropped.
    pub(crate) async fn run(mut self, list: Weak<Revocations>) {
        let mut ticks = tokio::time::interval(self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(list) = list.upgrade() else { return };
            self.poll(&list).await;
        }
    }
}

/// Spawns the poller; the task ends when `list` is dropped.
pub(crate) fn spawn(poller: Poller, list: &Arc<Revocations>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(poller.run(Arc::downgrade(list)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::TokenType;

    fn claims(jti: Uuid, sid: Uuid) -> Claims {
        serde_json::from_value(serde_json::json!({
            "sub": Uuid::new_v4(), "exp": 2_000, "iat": 1_000, "typ": "access", "jti": jti, "sid": sid
        }))
        .unwrap()
    }

    fn entry(kind: &str, id: Uuid, expires_at: i64) -> Entry {
        Entry { kind: kind.to_owned(), id: id.to_string(), expires_at }
    }

    #[test]
    fn a_revoked_session_or_token_is_refused_until_its_tokens_expire_then_forgotten() {
        let list = Revocations::default();
        let (jti, sid, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        list.apply(&[entry("sid", sid, 1_900), entry("jti", jti, 1_500), entry("future-kind", other, 9_999)], 1_000);
        assert!(list.is_revoked(&claims(other, sid), 1_000), "by sid");
        assert!(list.is_revoked(&claims(jti, other), 1_000), "by jti");
        assert!(!list.is_revoked(&claims(other, other), 1_000));
        assert_eq!(list.status().entries, 2, "an unknown kind is ignored");
        assert_eq!(claims(jti, sid).typ, TokenType::Access);

        list.apply(&[], 1_500);
        assert!(!list.is_revoked(&claims(jti, other), 1_500), "the jti entry has done its work");
        assert_eq!(list.status().entries, 1, "and is forgotten");
        list.apply(&[], 1_900);
        assert_eq!(list.status().entries, 0);
    }

    #[test]
    fn failures_are_counted_and_success_resets_them() {
        let list = Revocations::default();
        list.record(&Err("down".to_owned()));
        list.record(&Err("down".to_owned()));
        assert_eq!(list.status(), FeedStatus { synced: false, consecutive_failures: 2, entries: 0 });
        list.record(&Ok(()));
        assert_eq!(list.status(), FeedStatus { synced: true, consecutive_failures: 0, entries: 0 });
    }
}
