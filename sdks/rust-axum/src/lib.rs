//! Verify IdentSphere access tokens in an [axum] app.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use identsphere_axum::{Authenticated, IdentSphere};
//!
//! async fn me(Authenticated(claims): Authenticated) -> String {
//!     format!("hello {}", claims.sub)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = IdentSphere::builder("https://auth.example.com")
//!     .platform_api_key(std::env::var("IDENTSPHERE_PLATFORM_API_KEY")?)
//!     .build()
//!     .await?;
//! let app: Router = Router::new().route("/me", get(me)).layer(auth.layer());
//! # Ok(()) }
//! ```
//!
//! - [`IdentSphere`] is the verifier: build it once, add [`IdentSphere::layer`] to the router; clones
//!   share one JWKS cache and one revocation list.
//! - Extractors: [`Authenticated`], [`MaybeAuthenticated`], [`RequireAal2`], [`RequireOrg`] and
//!   [`OnlineAuthenticated`]. They read `Authorization: Bearer …`, else the `identsphere_at` cookie, and
//!   refuse with IdentSphere's own error envelope and status codes ([`AuthError`]).
//! - Verification is local and strict, as IdentSphere does it: header `alg: RS256` and `typ: JWT`, a
//!   `kid` of the JWKS, the signature, `iss`, claim `typ: access`, `exp` (no leeway by default), then the
//!   revocation list polled from `GET /v1/revocations`.

mod claims;
mod clock;
mod error;
mod extract;
mod http;
mod jwks;
mod online;
mod revocations;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use claims::{Aal, AuthMethod, Claims, TokenType};
pub use error::AuthError;
pub use extract::{Authenticated, MaybeAuthenticated, OnlineAuthenticated, RequireAal2, RequireOrg};
pub use online::{Session, SessionDetails, SessionOrganization, SessionUser};
pub use revocations::FeedStatus;

use crate::jwks::Jwks;
use crate::online::Online;
use crate::revocations::{Poller, Revocations};

/// Longest token accepted: anything larger is refused before any parsing, as IdentSphere does.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Why [`Builder::build`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The base URL is not an `http://` or `https://` URL.
    #[error("the IdentSphere base URL must start with http:// or https://: {0:?}")]
    BaseUrl(String),
    /// `build` was called outside a Tokio runtime (the poller and refreshes run on it).
    #[error("IdentSphere::builder(..).build() must run inside a Tokio runtime")]
    NoRuntime,
    /// The HTTP client could not be set up (TLS roots, …).
    #[error("setting up the HTTP client: {0}")]
    Http(String),
    /// Discovery was asked for and `/.well-known/openid-configuration` could not be read.
    #[error("reading the OpenID configuration: {0}")]
    Discovery(String),
}

/// Configures an [`IdentSphere`]; start with [`IdentSphere::builder`].
#[derive(Clone)]
#[must_use]
pub struct Builder {
    base_url: String,
    issuer: Option<String>,
    discovery: bool,
    platform_api_key: Option<String>,
    poll_interval: Duration,
    jwks_refetch_interval: Duration,
    http_timeout: Duration,
    leeway: u64,
    org_path_param: String,
    organization: Option<Uuid>,
    online_cache_ttl: Duration,
    allowed_origins: Vec<String>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The platform API key is a secret: never printed.
        f.debug_struct("Builder")
            .field("base_url", &self.base_url)
            .field("issuer", &self.issuer)
            .field("discovery", &self.discovery)
            .field("platform_api_key", &self.platform_api_key.as_ref().map(|_| "…"))
            .field("poll_interval", &self.poll_interval)
            .field("jwks_refetch_interval", &self.jwks_refetch_interval)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// The `iss` tokens must carry. Default: the base URL (or, with [`Builder::discovery`], the
    /// document's `issuer`). Set it when IdentSphere is reached at another address than its public one.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Reads `issuer` and `jwks_uri` from `<base>/.well-known/openid-configuration` at build time
    /// instead of deriving them from the base URL. `build` then fails if the document cannot be read.
    pub fn discovery(mut self) -> Self {
        self.discovery = true;
        self
    }

    /// The platform API key (`IDENTSPHERE_PLATFORM_API_KEY` on the server) that reads the revocation
    /// feed. Without it revoked tokens are accepted until they expire (a warning says so at build).
    pub fn platform_api_key(mut self, key: impl Into<String>) -> Self {
        self.platform_api_key = Some(key.into());
        self
    }

    /// How often the revocation feed is polled (default 5 s). A revoked token is refused within this
    /// interval plus one round trip.
    pub fn revocation_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(50));
        self
    }

    /// The least time between two JWKS fetches, whatever their cause (default 10 s): a flood of unknown
    /// `kid`s costs at most one fetch per interval.
    pub fn jwks_refetch_interval(mut self, every: Duration) -> Self {
        self.jwks_refetch_interval = every;
        self
    }

    /// Timeout of every call to IdentSphere (default 5 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Seconds a token is still accepted after its `exp`, for clock skew (default 0, as IdentSphere).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }

    /// The path parameter [`RequireOrg`] compares the token's `org` with (default `org_id`, as in
    /// `/orgs/{org_id}/…`).
    pub fn org_path_param(mut self, name: impl Into<String>) -> Self {
        self.org_path_param = name.into();
        self
    }

    /// A fixed organization [`RequireOrg`] requires, instead of a path parameter.
    pub fn organization(mut self, id: Uuid) -> Self {
        self.organization = Some(id);
        self
    }

    /// How long an answer of online mode ([`OnlineAuthenticated`]) is reused (default 1 s).
    pub fn online_cache_ttl(mut self, ttl: Duration) -> Self {
        self.online_cache_ttl = ttl;
        self
    }

    /// Origins (`https://app.example.com`) allowed to make cookie-authenticated unsafe requests
    /// (`POST`, `PUT`, `PATCH`, `DELETE`). Default: only the request's own `Host`.
    pub fn allowed_origins<I: IntoIterator<Item = S>, S: Into<String>>(mut self, origins: I) -> Self {
        self.allowed_origins = origins.into_iter().map(|o| o.into().trim_end_matches('/').to_owned()).collect();
        self
    }

    /// Builds the verifier: fetches the JWKS and a first page of the revocation feed (failures are
    /// logged, not fatal: IdentSphere may come up later) and starts the feed's poller.
    ///
    /// # Errors
    /// A base URL that is not `http(s)://`, no Tokio runtime, an HTTP client that cannot be set up, or
    /// (with [`Builder::discovery`]) a discovery document that cannot be read.
    pub async fn build(self) -> Result<IdentSphere, BuildError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let base = self.base_url.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(BuildError::BaseUrl(self.base_url));
        }
        let http = http::client(self.http_timeout)?;
        let (issuer, jwks_uri) = if self.discovery {
            let (issuer, jwks_uri) = discover(&http, &base).await?;
            (self.issuer.clone().unwrap_or(issuer), jwks_uri)
        } else {
            (self.issuer.clone().unwrap_or_else(|| base.clone()), format!("{base}/.well-known/jwks.json"))
        };
        let keys = Arc::new(Jwks::new(jwks_uri, http.clone(), self.jwks_refetch_interval, runtime));
        keys.fetch_if_allowed().await;

        let (revocations, poller) = match &self.platform_api_key {
            Some(key) => {
                let list = Arc::new(Revocations::default());
                let mut poller = Poller {
                    url: format!("{base}/v1/revocations"),
                    api_key: key.clone(),
                    http: http.clone(),
                    every: self.poll_interval,
                    cursor: None,
                };
                poller.poll(&list).await;
                let task = revocations::spawn(poller, &list);
                (Some(list), Some(task))
            }
            None => {
                tracing::warn!(
                    "no IdentSphere platform API key: the revocation feed is off, so a revoked token is accepted until it expires"
                );
                (None, None)
            }
        };
        let mut validation = Validation::new(Algorithm::RS256);
        // `exp` is compared after the signature, with the configured leeway (see `verify`).
        validation.validate_exp = false;
        validation.leeway = 0;
        validation.validate_aud = false;
        validation.required_spec_claims = ["exp", "iss", "sub"].into_iter().map(String::from).collect();
        validation.iss = Some(HashSet::from([issuer.clone()]));
        Ok(IdentSphere {
            inner: Arc::new(Inner {
                issuer,
                validation,
                leeway: i64::try_from(self.leeway).unwrap_or(i64::MAX),
                keys,
                revocations,
                poller,
                online: Online::new(format!("{base}/v1/auth/session"), http, self.online_cache_ttl),
                org_path_param: self.org_path_param,
                organization: self.organization,
                allowed_origins: self.allowed_origins,
            }),
        })
    }
}

/// `issuer` and `jwks_uri` of the OpenID configuration at `base`.
async fn discover(http: &reqwest::Client, base: &str) -> Result<(String, String), BuildError> {
    #[derive(serde::Deserialize)]
    struct Document {
        issuer: String,
        jwks_uri: String,
    }
    let url = format!("{base}/.well-known/openid-configuration");
    let response = http.get(&url).send().await.map_err(|e| BuildError::Discovery(e.to_string()))?;
    if !response.status().is_success() {
        return Err(BuildError::Discovery(format!("{url}: status {}", response.status())));
    }
    let document: Document = response.json().await.map_err(|e| BuildError::Discovery(e.to_string()))?;
    Ok((document.issuer, document.jwks_uri))
}

/// The verifier: a JWKS cache, the revocation list and its poller, shared by every clone.
///
/// Add it to a router with [`IdentSphere::layer`]; the extractors find it there. Dropping the last
/// clone stops the poller.
#[derive(Clone, Debug)]
pub struct IdentSphere {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    validation: Validation,
    leeway: i64,
    keys: Arc<Jwks>,
    revocations: Option<Arc<Revocations>>,
    poller: Option<JoinHandle<()>>,
    online: Online,
    org_path_param: String,
    organization: Option<Uuid>,
    allowed_origins: Vec<String>,
}

impl std::fmt::Debug for Inner {
    // Short on purpose: the revocation list and the online cache can be large.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentSphere")
            .field("issuer", &self.issuer)
            .field("jwks", &self.keys)
            .field("revocation_feed", &self.revocations.as_ref().map(|r| r.status()))
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(poller) = &self.poller {
            poller.abort();
        }
    }
}

impl IdentSphere {
    /// Starts configuring a verifier for the IdentSphere at `base_url` (e.g. `https://auth.example.com`).
    pub fn builder(base_url: impl Into<String>) -> Builder {
        Builder {
            base_url: base_url.into(),
            issuer: None,
            discovery: false,
            platform_api_key: None,
            poll_interval: Duration::from_secs(5),
            jwks_refetch_interval: Duration::from_secs(10),
            http_timeout: Duration::from_secs(5),
            leeway: 0,
            org_path_param: "org_id".to_owned(),
            organization: None,
            online_cache_ttl: Duration::from_secs(1),
            allowed_origins: Vec::new(),
        }
    }

    /// The layer that makes this verifier available to the extractors: `router.layer(auth.layer())`.
    pub fn layer(&self) -> axum::Extension<IdentSphere> {
        axum::Extension(self.clone())
    }

    /// The issuer tokens must carry.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// Verifies an access token locally: the checks of the extractors, for use outside axum.
    ///
    /// # Errors
    /// `TokenInvalid` for anything but a well-formed access token signed by a published key of this
    /// issuer; `TokenExpired` once `exp` (plus the leeway) has passed; `TokenRevoked` when the feed
    /// listed its `jti` or `sid`; `ServiceUnavailable` when no signing key could ever be fetched.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::TokenInvalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::TokenInvalid)?;
        if header.alg != Algorithm::RS256 || header.typ.as_deref() != Some("JWT") {
            return Err(AuthError::TokenInvalid);
        }
        let kid = header.kid.ok_or(AuthError::TokenInvalid)?;
        let mut keys = self.inner.keys.current();
        if keys.get(&kid).is_none() {
            keys = self.inner.keys.refetch_for(&kid).await;
        }
        let Some(key) = keys.get(&kid) else {
            return Err(if keys.loaded() { AuthError::TokenInvalid } else { AuthError::ServiceUnavailable });
        };
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.inner.validation)
            .map_err(|_| AuthError::TokenInvalid)?
            .claims;
        if claims.typ != TokenType::Access {
            return Err(AuthError::TokenInvalid);
        }
        let now = clock::unix_now();
        if now >= claims.exp.saturating_add(self.inner.leeway) {
            return Err(AuthError::TokenExpired);
        }
        if let Some(revocations) = &self.inner.revocations
            && revocations.is_revoked(&claims, now)
        {
            return Err(AuthError::TokenRevoked);
        }
        Ok(claims)
    }

    /// Verifies `token` locally, then asks IdentSphere whether its session is still live (online mode,
    /// cached for `online_cache_ttl`).
    ///
    /// # Errors
    /// Those of [`IdentSphere::verify`], IdentSphere's own refusal (`TokenRevoked`, `TokenExpired`,
    /// `AccountDisabled`, …), or `ServiceUnavailable` when IdentSphere cannot be reached.
    pub async fn verify_online(&self, token: &str) -> Result<(Claims, Arc<Session>), AuthError> {
        let claims = self.verify(token).await?;
        let key = claims.jti.map_or_else(|| token.to_owned(), |jti| jti.to_string());
        let session = self.inner.online.session(token, &key).await?;
        Ok((claims, session))
    }

    /// The state of the revocation feed, or `None` when it is off (no platform API key).
    #[must_use]
    pub fn revocation_feed(&self) -> Option<FeedStatus> {
        self.inner.revocations.as_ref().map(|r| r.status())
    }
}

/// The README's examples compile (they are the published front page).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
