//! Talking to sign-in providers: OpenID Connect (discovery, the code exchange with PKCE, the ID token
//! validated against the provider's keys) and GitHub's OAuth 2 (no ID token: the user and the verified
//! primary address from its API).
//!
//! Every answer of a provider is untrusted input: what cannot be verified is `Refused`, a provider that
//! does not answer is `Unavailable`, and neither leaves anything stored.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use time::{Duration, OffsetDateTime};

use super::outbound::{self, PublicOnly};
use crate::config::{ProviderConfig, ProviderKind};

/// How long a discovery document or a key set is reused.
const CACHE_FOR: Duration = Duration::hours(1);
/// An unknown `kid` refetches the keys at most this often: a flood of forged kids costs one fetch.
const REFETCH_AT_MOST_EVERY: Duration = Duration::seconds(60);
/// Clock skew allowed on an ID token's `exp` and `iat`.
const LEEWAY: Duration = Duration::seconds(60);

/// Why a provider's answer was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// It did not answer, or answered with a server error.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// It answered with something we do not accept: an error, or a token that fails validation.
    #[error("the provider's answer was refused: {0}")]
    Refused(String),
}

/// Who the provider says signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderIdentity {
    /// The provider's stable id for the user (`sub`; GitHub's numeric id).
    pub subject: String,
    /// Their address, lower-cased as the provider gave it, if any.
    pub email: Option<String>,
    /// Whether the provider asserts the address is verified.
    pub email_verified: bool,
    /// Their name, if given.
    pub name: Option<String>,
}

/// What an authorization request carries besides the provider's own settings.
#[derive(Clone, Copy, Debug)]
pub struct Authorization<'a> {
    /// Our callback (`…/v1/auth/oauth/{provider}/callback`).
    pub callback: &'a str,
    /// The flow's `state`.
    pub state: &'a str,
    /// The ID token's expected `nonce`.
    pub nonce: &'a str,
    /// `base64url(SHA-256(verifier))`: PKCE S256 between us and the provider.
    pub code_challenge: &'a str,
}

/// The endpoints an OpenID Connect discovery document gives.
#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Cached<T> {
    value: T,
    fetched_at: OffsetDateTime,
}

/// The providers' HTTP client, with their discovery documents and keys cached.
pub struct ProviderClient {
    http: reqwest::Client,
    /// For organizations' connections: public addresses only (the same as `http` when not guarded).
    tenant_http: reqwest::Client,
    guard_tenants: bool,
    discovered: Mutex<HashMap<String, Cached<Discovery>>>,
    keys: Mutex<HashMap<String, Cached<JwkSet>>>,
}

impl std::fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderClient").finish_non_exhaustive()
    }
}

impl ProviderClient {
    /// A client with short timeouts: a slow provider must not hold a sign-in for long. With `guard_tenants`,
    /// organizations' connections reach public addresses only (`outbound`).
    ///
    /// # Errors
    /// When the TLS configuration cannot be built.
    pub fn new(guard_tenants: bool) -> anyhow::Result<Self> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(StdDuration::from_secs(5))
                .timeout(StdDuration::from_secs(10))
                .user_agent(concat!("IdentSphere/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
        };
        let http = builder().build()?;
        let tenant_http = if guard_tenants { builder().dns_resolver(PublicOnly).build()? } else { http.clone() };
        Ok(Self {
            http,
            tenant_http,
            guard_tenants,
            discovered: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// A request to `url` on behalf of `provider`.
    fn request(
        &self,
        provider: &ProviderConfig,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        if !provider.tenant {
            return Ok(self.http.request(method, url));
        }
        if self.guard_tenants {
            outbound::literal_allowed(url).map_err(ProviderError::Refused)?;
        }
        Ok(self.tenant_http.request(method, url))
    }

    /// Where to send the browser: the provider's authorization endpoint with our request.
    ///
    /// # Errors
    /// `Unavailable` when the provider's discovery document cannot be fetched; `Refused` when it is invalid.
    pub async fn authorize_url(
        &self,
        provider: &ProviderConfig,
        request: Authorization<'_>,
        now: OffsetDateTime,
    ) -> Result<String, ProviderError> {
        let endpoint = match &provider.kind {
            ProviderKind::Oidc { .. } => self.discovery(provider, now).await?.authorization_endpoint,
            ProviderKind::GitHub { web, .. } => format!("{web}/login/oauth/authorize"),
        };
        let scope = provider.scopes.join(" ");
        let mut query = vec![
            ("response_type", "code"),
            ("client_id", provider.client_id.as_str()),
            ("redirect_uri", request.callback),
            ("scope", scope.as_str()),
            ("state", request.state),
            ("code_challenge", request.code_challenge),
            ("code_challenge_method", "S256"),
        ];
        if matches!(provider.kind, ProviderKind::Oidc { .. }) {
            query.push(("nonce", request.nonce));
        }
        let url = reqwest::Url::parse_with_params(&endpoint, &query)
            .map_err(|e| ProviderError::Refused(format!("authorization endpoint: {e}")))?;
        Ok(url.into())
    }

    /// Exchanges the code the provider sent back and says who signed in.
    ///
    /// # Errors
    /// `Unavailable` when the provider does not answer; `Refused` for an error answer or an ID token that
    /// fails validation (signature, `iss`, `aud`, `azp`, `exp`, `nonce`).
    pub async fn identity(
        &self,
        provider: &ProviderConfig,
        code: &str,
        callback: &str,
        verifier: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<ProviderIdentity, ProviderError> {
        match &provider.kind {
            ProviderKind::Oidc { issuer, .. } => {
                let discovery = self.discovery(provider, now).await?;
                let form = [
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", callback),
                    ("code_verifier", verifier),
                    ("client_id", provider.client_id.as_str()),
                ];
                let request = self
                    .request(provider, reqwest::Method::POST, &discovery.token_endpoint)?
                    .basic_auth(&provider.client_id, Some(&provider.client_secret))
                    .form(&form);
                let answer: TokenAnswer = json(request).await?;
                let id_token = answer.id_token.ok_or_else(|| ProviderError::Refused("no id_token".to_owned()))?;
                self.validated(provider, issuer, &discovery.jwks_uri, &id_token, nonce, now).await
            }
            ProviderKind::GitHub { web, api } => {
                let form = [
                    ("client_id", provider.client_id.as_str()),
                    ("client_secret", provider.client_secret.as_str()),
                    ("code", code),
                    ("redirect_uri", callback),
                    ("code_verifier", verifier),
                ];
                let request = self
                    .request(provider, reqwest::Method::POST, &format!("{web}/login/oauth/access_token"))?
                    .header("Accept", "application/json")
                    .form(&form);
                let answer: TokenAnswer = json(request).await?;
                let token = answer.access_token.ok_or_else(|| {
                    ProviderError::Refused(format!("no access token: {}", answer.error.unwrap_or_default()))
                })?;
                let get = |path: &str| {
                    self.request(provider, reqwest::Method::GET, &format!("{api}{path}"))
                        .map(|r| r.bearer_auth(&token).header("Accept", "application/vnd.github+json"))
                };
                let user: GitHubUser = json(get("/user")?).await?;
                let emails: Vec<GitHubEmail> = json(get("/user/emails")?).await?;
                let primary = emails.into_iter().find(|e| e.primary);
                Ok(ProviderIdentity {
                    subject: user.id.to_string(),
                    email_verified: primary.as_ref().is_some_and(|e| e.verified),
                    email: primary.map(|e| e.email.to_ascii_lowercase()),
                    name: user.name.or(Some(user.login)),
                })
            }
        }
    }

    async fn discovery(&self, provider: &ProviderConfig, now: OffsetDateTime) -> Result<Discovery, ProviderError> {
        let ProviderKind::Oidc { issuer, discovery } = &provider.kind else {
            return Err(ProviderError::Refused("not an OpenID Connect provider".to_owned()));
        };
        if let Some(cached) = fresh(&self.discovered, discovery, now) {
            return Ok(cached);
        }
        let url = format!("{discovery}/.well-known/openid-configuration");
        let document: Discovery = json(self.request(provider, reqwest::Method::GET, &url)?).await?;
        // The issuer a provider publishes must be the one its tokens are checked against (OIDC Discovery
        // §4.3), or a document could point the sign-in at anyone's keys.
        if document.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(ProviderError::Refused(format!("discovery names issuer {}", document.issuer)));
        }
        keep(&self.discovered, discovery, document.clone(), now);
        Ok(document)
    }

    async fn key_set(
        &self,
        provider: &ProviderConfig,
        jwks_uri: &str,
        refetch: bool,
        now: OffsetDateTime,
    ) -> Result<JwkSet, ProviderError> {
        if let Some(keys) = fresh(&self.keys, jwks_uri, now) {
            let recently = self.keys.lock().ok().and_then(|k| k.get(jwks_uri).map(|c| now - c.fetched_at));
            if !refetch || recently.is_some_and(|age| age < REFETCH_AT_MOST_EVERY) {
                return Ok(keys);
            }
        }
        let keys: JwkSet = json(self.request(provider, reqwest::Method::GET, jwks_uri)?).await?;
        keep(&self.keys, jwks_uri, keys.clone(), now);
        Ok(keys)
    }

    /// Validates an ID token: an asymmetric signature by one of the provider's keys, `iss`, `aud` (and
    /// `azp` when there are several audiences), `exp` and `iat` within a minute of skew, and `nonce`.
    async fn validated(
        &self,
        provider: &ProviderConfig,
        issuer: &str,
        jwks_uri: &str,
        id_token: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<ProviderIdentity, ProviderError> {
        let refused = |what: &str| ProviderError::Refused(format!("id_token: {what}"));
        let header = jsonwebtoken::decode_header(id_token).map_err(|e| refused(&e.to_string()))?;
        let asymmetric = [
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
        ];
        if !asymmetric.contains(&header.alg) {
            return Err(refused("not signed with an asymmetric key"));
        }
        let kid = header.kid.ok_or_else(|| refused("no kid"))?;
        let mut keys = self.key_set(provider, jwks_uri, false, now).await?;
        if keys.find(&kid).is_none() {
            keys = self.key_set(provider, jwks_uri, true, now).await?;
        }
        let jwk = keys.find(&kid).ok_or_else(|| refused("unknown kid"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| refused(&e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&[&provider.client_id]);
        // `exp` against the service clock below, like our own tokens; `iss` below (Microsoft's issuer
        // depends on the token's tenant).
        validation.validate_exp = false;
        validation.required_spec_claims = ["sub", "aud"].iter().map(|c| (*c).to_owned()).collect();
        let claims =
            jsonwebtoken::decode::<IdClaims>(id_token, &key, &validation).map_err(|e| refused(&e.to_string()))?.claims;
        let expected_issuer = issuer.replace("{tenantid}", claims.tid.as_deref().unwrap_or("{tenantid}"));
        if claims.iss.trim_end_matches('/') != expected_issuer.trim_end_matches('/') {
            return Err(refused("wrong iss"));
        }
        let now_s = now.unix_timestamp();
        if claims.exp + LEEWAY.whole_seconds() < now_s || claims.iat - LEEWAY.whole_seconds() > now_s {
            return Err(refused("expired or issued in the future"));
        }
        if claims.aud.several() && claims.azp.as_deref() != Some(provider.client_id.as_str()) {
            return Err(refused("several audiences and azp is not us"));
        }
        let nonce_matches = claims
            .nonce
            .as_deref()
            .is_some_and(|n| aws_lc_rs::constant_time::verify_slices_are_equal(n.as_bytes(), nonce.as_bytes()).is_ok());
        if !nonce_matches {
            return Err(refused("nonce mismatch"));
        }
        Ok(ProviderIdentity {
            subject: claims.sub,
            email_verified: claims.email.is_some() && claims.email_verified.is_some_and(Verified::yes),
            email: claims.email.map(|e| e.to_ascii_lowercase()),
            name: claims.name,
        })
    }
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    iat: i64,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Verified>,
    #[serde(default)]
    name: Option<String>,
    /// Microsoft's tenant id.
    #[serde(default)]
    tid: Option<String>,
}

/// `aud`: one string or an array.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(#[allow(dead_code, reason = "checked by jsonwebtoken")] String),
    Many(Vec<String>),
}

impl Audience {
    fn several(&self) -> bool {
        matches!(self, Self::Many(all) if all.len() > 1)
    }
}

/// `email_verified`: a boolean, or the string `"true"` some providers send.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Verified {
    Flag(bool),
    Text(String),
}

impl Verified {
    fn yes(self) -> bool {
        match self {
            Self::Flag(flag) => flag,
            Self::Text(text) => text == "true",
        }
    }
}

#[derive(Debug, Deserialize)]
struct GitHubUser {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct GitHubEmail {
    email: String,
    primary: bool,
    verified: bool,
}

/// Sends `request` and reads a JSON answer: a network failure or a `5xx` is `Unavailable`, any other
/// non-success or an unreadable body `Refused`.
async fn json<T: serde::de::DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, ProviderError> {
    let response = request.send().await.map_err(|e| ProviderError::Unavailable(e.without_url().to_string()))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(ProviderError::Unavailable(format!("answered {status}")));
    }
    if !status.is_success() {
        return Err(ProviderError::Refused(format!("answered {status}")));
    }
    response.json().await.map_err(|e| ProviderError::Refused(e.without_url().to_string()))
}

fn fresh<T: Clone>(cache: &Mutex<HashMap<String, Cached<T>>>, key: &str, now: OffsetDateTime) -> Option<T> {
    let cache = cache.lock().ok()?;
    cache.get(key).filter(|c| now - c.fetched_at < CACHE_FOR).map(|c| c.value.clone())
}

fn keep<T>(cache: &Mutex<HashMap<String, Cached<T>>>, key: &str, value: T, now: OffsetDateTime) {
    if let Ok(mut cache) = cache.lock() {
        cache.insert(key.to_owned(), Cached { value, fetched_at: now });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection_at(issuer: String, tenant: bool) -> ProviderConfig {
        ProviderConfig {
            name: "sso:test".to_owned(),
            kind: ProviderKind::Oidc { discovery: issuer.clone(), issuer },
            client_id: "app".to_owned(),
            client_secret: "secret".to_owned(),
            scopes: vec!["openid".to_owned()],
            tenant,
        }
    }

    /// A guarded client does not call a connection's local address, by name or by IP literal; the operator's
    /// own provider at the same address is called (the listener sees the connection).
    #[actix_web::test]
    async fn a_guarded_client_calls_no_local_address_for_a_connection() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
        let client = ProviderClient::new(true).unwrap();
        let request = Authorization { callback: "https://a.example/cb", state: "s", nonce: "n", code_challenge: "c" };
        let now = crate::clock::Clock::system().now();
        let by_name =
            client.authorize_url(&connection_at(format!("http://localhost:{port}"), true), request, now).await;
        assert!(matches!(&by_name, Err(ProviderError::Unavailable(_))), "{by_name:?}");
        let by_ip = client.authorize_url(&connection_at(format!("http://127.0.0.1:{port}"), true), request, now).await;
        assert!(matches!(&by_ip, Err(ProviderError::Refused(e)) if e.contains("not a public address")), "{by_ip:?}");
        assert!(!accepted.is_finished(), "a connection's request reached the local listener");
        let operator = connection_at(format!("http://127.0.0.1:{port}"), false);
        drop(tokio::time::timeout(StdDuration::from_secs(2), client.authorize_url(&operator, request, now)).await);
        assert!(accepted.await.unwrap(), "the operator's provider was not called");
    }
}
