//! Online mode: for endpoints that must be exact, ask IdentSphere itself (`GET /v1/auth/session`)
//! whether the session is still live, instead of trusting the revocation feed's few seconds of lag.
//!
//! Answers are cached per token for a short time (`online_cache_ttl`), so a burst of requests with one
//! token costs one round trip. When IdentSphere cannot be reached the request is refused with
//! `503 service_unavailable`: online mode fails closed, it never guesses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use uuid::Uuid;

use crate::error::AuthError;

/// Cached answers kept at most; beyond that, expired ones are dropped, and all if that is not enough.
const MAX_CACHED: usize = 10_000;

/// What IdentSphere says of a live session (`GET /v1/auth/session`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The user.
    pub user: SessionUser,
    /// The session (family) itself.
    pub session: SessionDetails,
    /// The organization of the session and the user's role in it.
    pub organization: SessionOrganization,
}

/// The user of a [`Session`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SessionUser {
    /// User id (the token's `sub`).
    pub id: Uuid,
    /// The email as typed at sign-up.
    pub email: String,
    /// Whether the email was verified.
    #[serde(default)]
    pub email_verified: bool,
    /// Display name, if the user set one.
    #[serde(default)]
    pub display_name: Option<String>,
}

/// The session part of a [`Session`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SessionDetails {
    /// Session family id (the token's `sid`).
    pub id: Uuid,
    /// Organization id (the token's `org`).
    pub organization_id: Uuid,
    /// `aal1` or `aal2`, as IdentSphere knows it now.
    pub aal: crate::Aal,
    /// How the user authenticated.
    pub auth_method: crate::AuthMethod,
    /// When the user authenticated, Unix seconds.
    pub auth_time: i64,
}

/// The organization part of a [`Session`].
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SessionOrganization {
    /// Organization id.
    pub id: Uuid,
    /// URL-safe name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// The user's role: `owner`, `admin` or `member`.
    pub role: String,
}

type Answer = Result<Arc<Session>, AuthError>;

/// The online checker and its cache.
#[derive(Debug)]
pub(crate) struct Online {
    url: String,
    http: reqwest::Client,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Answer)>>,
}

#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
}

impl Online {
    pub(crate) fn new(url: String, http: reqwest::Client, ttl: Duration) -> Self {
        Self { url, http, ttl, cache: Mutex::new(HashMap::new()) }
    }

    /// IdentSphere's answer for `token`, cached under `key` (the token's `jti`, else the token).
    pub(crate) async fn session(&self, token: &str, key: &str) -> Answer {
        if let Some(answer) = self.cached(key) {
            return answer;
        }
        let answer = self.ask(token).await;
        if answer != Err(AuthError::ServiceUnavailable)
            && let Ok(mut cache) = self.cache.lock()
        {
            if cache.len() >= MAX_CACHED {
                let ttl = self.ttl;
                cache.retain(|_, (at, _)| at.elapsed() < ttl);
                if cache.len() >= MAX_CACHED {
                    cache.clear();
                }
            }
            cache.insert(key.to_owned(), (Instant::now(), answer.clone()));
        }
        answer
    }

    fn cached(&self, key: &str) -> Option<Answer> {
        let cache = self.cache.lock().ok()?;
        let (at, answer) = cache.get(key)?;
        (at.elapsed() < self.ttl).then(|| answer.clone())
    }

    async fn ask(&self, token: &str) -> Answer {
        metrics::counter!("identsphere_sdk_online_checks_total").increment(1);
        let response = match self.http.get(&self.url).bearer_auth(token).send().await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%error, "online mode: IdentSphere could not be reached; refusing");
                return Err(AuthError::ServiceUnavailable);
            }
        };
        let status = response.status();
        if status.is_success() {
            return response.json::<Session>().await.map(Arc::new).map_err(|error| {
                tracing::warn!(%error, "online mode: unexpected session document; refusing");
                AuthError::ServiceUnavailable
            });
        }
        let code = response.json::<Envelope>().await.map(|e| e.error.code).unwrap_or_default();
        Err(match code.as_str() {
            "token_missing" | "token_invalid" => AuthError::TokenInvalid,
            "token_expired" => AuthError::TokenExpired,
            "token_revoked" => AuthError::TokenRevoked,
            "account_disabled" => AuthError::AccountDisabled,
            "not_a_member" => AuthError::NotAMember,
            _ => {
                tracing::warn!(%status, code, "online mode: IdentSphere did not answer the session check; refusing");
                AuthError::ServiceUnavailable
            }
        })
    }
}
