//! The JWKS client: IdentSphere's public keys, fetched once and shared by every request.
//!
//! The key set is kept as long as the server's `Cache-Control: max-age` says, then refreshed in the
//! background while requests go on with the keys they have. A token whose `kid` is unknown may trigger
//! one refetch (a key rotation), but fetches of any cause are at most one per `min_interval`: a flood of
//! forged `kid`s costs one fetch per interval, the rest are refused at once without waiting. When
//! IdentSphere cannot be reached the last keys stay in use. It never verifies anything itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};

/// Used when the JWKS response has no usable `max-age`: IdentSphere's own value.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// Longest a key set is trusted without asking again, whatever the server says.
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// One fetched key set.
pub(crate) struct KeySet {
    keys: HashMap<String, DecodingKey>,
    /// When the server's `max-age` runs out; `None` before the first successful fetch.
    fresh_until: Option<Instant>,
}

impl KeySet {
    /// The RS256 key with this `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }

    /// Whether any fetch has succeeded yet.
    pub(crate) fn loaded(&self) -> bool {
        self.fresh_until.is_some()
    }
}

/// The shared JWKS cache.
pub(crate) struct Jwks {
    uri: String,
    http: reqwest::Client,
    min_interval: Duration,
    current: RwLock<Arc<KeySet>>,
    /// When the last fetch started, successful or not: the rate limit.
    last_attempt: Mutex<Option<Instant>>,
    /// Serializes fetches: concurrent requests for one new `kid` cost one fetch.
    fetching: tokio::sync::Mutex<()>,
    /// A background refresh is running.
    refreshing: AtomicBool,
    /// Where background refreshes run (the runtime `build` ran on).
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("uri", &self.uri).finish_non_exhaustive()
    }
}

impl Jwks {
    pub(crate) fn new(
        uri: String,
        http: reqwest::Client,
        min_interval: Duration,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            uri,
            http,
            min_interval,
            current: RwLock::new(Arc::new(KeySet { keys: HashMap::new(), fresh_until: None })),
            last_attempt: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            refreshing: AtomicBool::new(false),
            runtime,
        }
    }

    /// The keys in use now. If their `max-age` has run out, a refresh starts in the background.
    pub(crate) fn current(self: &Arc<Self>) -> Arc<KeySet> {
        let set = self.snapshot();
        let stale = set.fresh_until.is_some_and(|until| Instant::now() >= until);
        if stale && self.may_fetch() && !self.refreshing.swap(true, Ordering::AcqRel) {
            let jwks = Arc::clone(self);
            self.runtime.spawn(async move {
                jwks.fetch_if_allowed().await;
                jwks.refreshing.store(false, Ordering::Release);
            });
        }
        set
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current.read().map_or_else(|poisoned| Arc::clone(&poisoned.into_inner()), |set| Arc::clone(&set))
    }

    /// For a `kid` not in the current set: refetches if the rate limit allows, and returns the keys
    /// to use (the same ones when no fetch was allowed).
    pub(crate) async fn refetch_for(&self, kid: &str) -> Arc<KeySet> {
        if !self.may_fetch() {
            return self.snapshot();
        }
        let _turn = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let set = self.snapshot();
        if set.get(kid).is_some() || !self.may_fetch() {
            return set;
        }
        self.fetch_locked().await
    }

    /// Fetches now unless one was made within the interval (start-up, background refresh).
    pub(crate) async fn fetch_if_allowed(&self) -> Arc<KeySet> {
        let _turn = self.fetching.lock().await;
        if !self.may_fetch() {
            return self.snapshot();
        }
        self.fetch_locked().await
    }

    fn may_fetch(&self) -> bool {
        let last = self.last_attempt.lock().map_or_else(|p| *p.into_inner(), |l| *l);
        last.is_none_or(|at| at.elapsed() >= self.min_interval)
    }

    /// Fetches the JWKS (the caller holds `fetching`). On failure the keys in use stay.
    async fn fetch_locked(&self) -> Arc<KeySet> {
        if let Ok(mut last) = self.last_attempt.lock() {
            *last = Some(Instant::now());
        }
        match self.download().await {
            Ok(set) => {
                metrics::counter!("identsphere_sdk_jwks_fetches_total", "result" => "ok").increment(1);
                metrics::gauge!("identsphere_sdk_jwks_keys").set(set.keys.len() as f64);
                tracing::debug!(uri = %self.uri, keys = set.keys.len(), "fetched the IdentSphere JWKS");
                let set = Arc::new(set);
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::clone(&set);
                }
                set
            }
            Err(error) => {
                metrics::counter!("identsphere_sdk_jwks_fetches_total", "result" => "error").increment(1);
                tracing::warn!(uri = %self.uri, %error, "could not fetch the IdentSphere JWKS; keeping the keys in use");
                self.snapshot()
            }
        }
    }

    async fn download(&self) -> Result<KeySet, String> {
        let response = self.http.get(&self.uri).send().await.map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE)
            .min(MAX_MAX_AGE)
            .max(self.min_interval);
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS: {e}"))?;
        Ok(KeySet { keys: rs256_keys(&set), fresh_until: Some(Instant::now() + max_age) })
    }
}

/// The RS256 signing keys of a JWKS, by `kid`. Keys for another use or algorithm are left out.
fn rs256_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
        .filter(|jwk| matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)))
        .filter(|jwk| matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature)))
        .filter_map(|jwk| Some((jwk.common.key_id.clone()?, DecodingKey::from_jwk(jwk).ok()?)))
        .collect()
}

/// `max-age` of a `Cache-Control` value (`no-store`/`no-cache` count as zero).
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_follows_the_cache_control_header() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("Max-Age=5"), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=x"), None);
    }

    #[test]
    fn only_rsa_signing_keys_with_a_kid_are_kept() {
        let n = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";
        let rsa = |kid: Option<&str>, alg: &str, use_: &str| {
            let mut jwk = serde_json::json!({"kty": "RSA", "alg": alg, "use": use_, "n": n, "e": "AQAB"});
            if let Some(kid) = kid {
                jwk["kid"] = kid.into();
            }
            jwk
        };
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            rsa(Some("good"), "RS256", "sig"),
            rsa(Some("wrong-alg"), "RS512", "sig"),
            rsa(Some("encryption"), "RS256", "enc"),
            rsa(None, "RS256", "sig"),
            {"kty": "oct", "kid": "mac", "k": "c2VjcmV0"},
        ]}))
        .unwrap();
        let keys = rs256_keys(&set);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["good"]);
    }
}
