//! Mock identity providers for the social login and SSO tests: an OpenID Connect provider (Core,
//! Discovery, RFC 7636 PKCE) and a GitHub-like OAuth 2 server (the URL layout of github.com and GitHub
//! Enterprise Server). Each is a real HTTP server on 127.0.0.1 signing with real RSA keys through
//! jsonwebtoken, so the server under test talks to it as to Google or GitHub, and a browser can follow
//! its plain 302s. Knobs make it fail the ways real providers, and attackers, do.
//!
//! Consent is automatic: the authorization endpoint answers at once as whoever `sign_in_as` named.
//! There is one client, and it may use any absolute http(s) redirect URI (no registration).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::dev::{ServerHandle, Service as _};
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::RsaKeyPair;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64URL};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header, get_current_timestamp};
use serde::Serialize;
use serde_json::{Map, Value, json};
use url::Url;

/// The person signed in at the OpenID Connect provider: the claims it vouches for.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The person signed in at GitHub.
#[derive(Clone, Debug)]
pub struct GitHubUser {
    pub id: u64,
    pub login: String,
    pub name: Option<String>,
    /// (address, primary, verified), as `/user/emails` lists them.
    pub emails: Vec<(String, bool, bool)>,
    /// The profile's public email, the `email` of `/user`. GitHub's default is none ("Keep my email
    /// addresses private"), so a client must read `/user/emails`.
    pub public_email: Option<String>,
}

/// How the next ID token is wrong; everything else about it stays right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misbehaviour {
    /// `nonce` is not the authorization request's: a token replayed from another sign-in.
    WrongNonce,
    /// Signed by another RSA key under the published key's `kid`: a forgery.
    OtherKey,
    /// `aud` is another client: a token minted for someone else.
    WrongAudience,
    /// `exp` ten minutes ago, beyond any clock-skew leeway.
    Expired,
    /// `alg: none` and no signature.
    AlgNone,
    /// `aud` is `[client_id, "other"]` without the `azp` that OpenID Connect Core §3.1.3.7 then expects.
    ExtraAudienceWithoutAzp,
    /// `iss` is another provider: the mix-up attack.
    WrongIssuer,
}

/// A running mock provider, stopped on drop.
pub struct Mock<U> {
    state: Arc<State<U>>,
    server: ServerHandle,
}

pub type MockProvider = Mock<User>;
pub type MockGitHub = Mock<GitHubUser>;

/// Query or form parameters (a repeated one, which RFC 6749 forbids, keeps its last value).
type Params = HashMap<String, String>;

/// What an authorization code or access token stands for: the authorization request that got it, and
/// who was signed in.
#[derive(Clone)]
struct Grant<U> {
    request: Params,
    user: U,
}

struct State<U> {
    /// `http://127.0.0.1:<port>`: the OpenID Connect issuer, or the GitHub base URL.
    address: String,
    client_id: String,
    client_secret: String,
    down: AtomicBool,
    token_requests: AtomicUsize,
    /// Nobody: the person at the browser declines (`access_denied`).
    user: Mutex<Option<U>>,
    /// One-time authorization codes.
    codes: Mutex<HashMap<String, Grant<U>>>,
    access_tokens: Mutex<HashMap<String, Grant<U>>>,
    /// OpenID Connect only: how the next ID token goes wrong.
    misbehaviour: Mutex<Option<Misbehaviour>>,
}

/// An OAuth 2 error code and description (RFC 6749 §4.1.2.1, §5.2).
#[derive(Clone, Copy, Debug)]
struct Refusal {
    error: &'static str,
    description: &'static str,
}

const fn refusal(error: &'static str, description: &'static str) -> Refusal {
    Refusal { error, description }
}

const INVALID_CLIENT: Refusal = refusal("invalid_client", "client authentication failed");

impl<U: Clone + Send + 'static> Mock<U> {
    /// Serves `routes` on a random port of 127.0.0.1, on the test's actix runtime; every route answers
    /// 503 while the provider is down.
    fn serve(routes: fn(&mut web::ServiceConfig)) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let state = Arc::new(State {
            address: format!("http://{}", listener.local_addr().unwrap()),
            client_id: random("client-"),
            client_secret: random(""),
            down: AtomicBool::new(false),
            token_requests: AtomicUsize::new(0),
            user: Mutex::new(None),
            codes: Mutex::default(),
            access_tokens: Mutex::default(),
            misbehaviour: Mutex::new(None),
        });
        let shared = Arc::clone(&state);
        let server = HttpServer::new(move || {
            let state = Arc::clone(&shared);
            App::new()
                .app_data(web::Data::from(Arc::clone(&shared)))
                .wrap_fn(move |req, service| {
                    let call = if state.down.load(SeqCst) { Err(req) } else { Ok(service.call(req)) };
                    async move {
                        match call {
                            Ok(response) => response.await,
                            Err(req) => Ok(req.into_response(HttpResponse::ServiceUnavailable().finish())),
                        }
                    }
                })
                .configure(routes)
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Mock { state, server: handle }
    }

    pub fn client_id(&self) -> &str {
        &self.state.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.state.client_secret
    }

    /// Who the next authorization requests are approved for. Until the first call nobody is signed in
    /// and they are denied.
    pub fn sign_in_as(&self, user: U) {
        *self.state.user.lock().unwrap() = Some(user);
    }

    /// While down, every endpoint answers 503 (an outage, or a provider under maintenance).
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, SeqCst);
    }

    /// How many requests the token endpoint has answered, refused ones included (not those while down).
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(SeqCst)
    }
}

impl<U> Drop for Mock<U> {
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

impl MockProvider {
    pub async fn start() -> Self {
        Self::serve(|routes| {
            routes
                .route("/.well-known/openid-configuration", web::get().to(discovery))
                .route("/authorize", web::get().to(oidc_authorize))
                .route("/token", web::post().to(oidc_token))
                .route("/jwks", web::get().to(jwks))
                .route("/userinfo", web::get().to(userinfo));
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.state.address
    }

    /// The next ID token issued is wrong in this one way; the ones after are right again.
    pub fn misbehave(&self, misbehaviour: Misbehaviour) {
        *self.state.misbehaviour.lock().unwrap() = Some(misbehaviour);
    }
}

impl MockGitHub {
    pub async fn start() -> Self {
        Self::serve(|routes| {
            routes
                .route("/login/oauth/authorize", web::get().to(github_authorize))
                .route("/login/oauth/access_token", web::post().to(github_token))
                .route("/api/v3/user", web::get().to(github_user))
                .route("/api/v3/user/emails", web::get().to(github_emails));
        })
    }

    /// The GitHub Enterprise Server base URL: `/login/oauth/…` and `/api/v3/…` are under it.
    pub fn base_url(&self) -> &str {
        &self.state.address
    }
}

// The OAuth 2 protocol both mocks share.

impl<U: Clone> State<U> {
    /// The authorization endpoint (RFC 6749 §4.1.1-4.1.2), approving at once: a redirect to the client
    /// with a one-time code, or with an error. `check` is the provider's own verdict on the request.
    fn authorize(&self, request: Params, pkce_required: bool, check: Result<(), Refusal>) -> HttpResponse {
        // An error cannot go back to a client that is unknown or to a URI that is not the client's:
        // it is shown to the person instead (§4.1.2.1).
        if request.get("client_id") != Some(&self.client_id) {
            return HttpResponse::BadRequest().body("unknown client_id");
        }
        let Some(mut location) = request
            .get("redirect_uri")
            .and_then(|uri| Url::parse(uri).ok())
            .filter(|uri| ["http", "https"].contains(&uri.scheme()) && uri.fragment().is_none())
        else {
            return HttpResponse::BadRequest().body("redirect_uri must be an absolute http(s) URL without a fragment");
        };
        let outcome = check.and_then(|()| pkce_challenge(&request, pkce_required)).and_then(|()| {
            let user =
                self.user.lock().unwrap().clone().ok_or(refusal("access_denied", "the person declined to sign in"))?;
            Ok(issue(&self.codes, "", Grant { request: request.clone(), user }))
        });
        let mut query = location.query_pairs_mut();
        match outcome {
            Ok(code) => query.append_pair("code", &code),
            Err(refusal) => {
                query.append_pair("error", refusal.error).append_pair("error_description", refusal.description)
            }
        };
        if let Some(state) = request.get("state") {
            query.append_pair("state", state);
        }
        drop(query);
        HttpResponse::Found().insert_header((header::LOCATION, location.as_str())).finish()
    }

    /// Client authentication at the token endpoint (RFC 6749 §2.3.1): HTTP Basic, or `client_id` and
    /// `client_secret` in the form. (Ours need no form-encoding inside Basic: they are base64url.)
    fn authenticate(&self, req: &HttpRequest, form: &Params) -> Result<(), Refusal> {
        let basic = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok()?.strip_prefix("Basic "))
            .and_then(|encoded| String::from_utf8(STANDARD.decode(encoded).ok()?).ok());
        let (id, secret) = match &basic {
            Some(pair) => pair.split_once(':').unzip(),
            None => (form.get("client_id").map(String::as_str), form.get("client_secret").map(String::as_str)),
        };
        if id == Some(self.client_id.as_str()) && secret == Some(self.client_secret.as_str()) {
            Ok(())
        } else {
            Err(INVALID_CLIENT)
        }
    }

    /// Spends a code (RFC 6749 §4.1.3, RFC 7636 §4.6): it must be unused, for this redirect URI, and the
    /// verifier must hash to its challenge. Any attempt spends it, so a failed guess cannot be retried.
    fn redeem(&self, form: &Params) -> Result<Grant<U>, Refusal> {
        let refused =
            refusal("invalid_grant", "the code is unknown or used, or not for this redirect_uri or code_verifier");
        let grant = form.get("code").and_then(|code| self.codes.lock().unwrap().remove(code)).ok_or(refused)?;
        let verified = match (grant.request.get("code_challenge"), form.get("code_verifier")) {
            (None, None) => true,
            (Some(challenge), Some(verifier)) => is_verifier(verifier) && s256(verifier) == *challenge,
            // A verifier for a code without a challenge: a PKCE downgrade (RFC 9700 §2.1.1).
            _ => false,
        };
        if verified && grant.request.get("redirect_uri") == form.get("redirect_uri") { Ok(grant) } else { Err(refused) }
    }

    /// The grant behind `Authorization: Bearer <access token>` (RFC 6750 §2.1).
    fn bearer(&self, req: &HttpRequest) -> Option<Grant<U>> {
        let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| self.access_tokens.lock().unwrap().get(token).cloned())?
    }
}

/// Stores `grant` under a new random token and returns the token.
fn issue<U>(store: &Mutex<HashMap<String, Grant<U>>>, prefix: &str, grant: Grant<U>) -> String {
    let token = random(prefix);
    store.lock().unwrap().insert(token.clone(), grant);
    token
}

/// 256 random bits, base64url, after `prefix`.
fn random(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    format!("{prefix}{}", B64URL.encode(bytes))
}

/// The PKCE part of an authorization request (RFC 7636 §4.3): only S256 is supported, so `plain`, or a
/// challenge without a method (which means plain), is refused.
fn pkce_challenge(request: &Params, required: bool) -> Result<(), Refusal> {
    match (request.get("code_challenge"), request.get("code_challenge_method").map(String::as_str)) {
        (Some(challenge), Some("S256")) if challenge.len() == 43 => Ok(()),
        (None, None) if !required => Ok(()),
        (None, None) => Err(refusal("invalid_request", "code_challenge required")),
        _ => Err(refusal("invalid_request", "code_challenge_method must be S256")),
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.2: BASE64URL(SHA256(ASCII(code_verifier))).
fn s256(verifier: &str) -> String {
    B64URL.encode(digest(&SHA256, verifier.as_bytes()))
}

/// The scopes of a request: space-delimited (GitHub also takes commas).
fn scopes(request: &Params) -> impl Iterator<Item = &str> {
    request.get("scope").into_iter().flat_map(|scope| scope.split([' ', ','])).filter(|s| !s.is_empty())
}

fn has_scope(request: &Params, wanted: &[&str]) -> bool {
    scopes(request).any(|scope| wanted.contains(&scope))
}

// OpenID Connect.

type Oidc = web::Data<State<User>>;

/// The provider's key and a forger's, made once per test run: RSA key generation is the slow part.
struct Keys {
    kid: String,
    signing: EncodingKey,
    forger: EncodingKey,
    jwks: JwkSet,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let signing = rsa_key();
        let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::RS256).unwrap();
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).unwrap();
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Keys { kid, signing, forger: rsa_key(), jwks: JwkSet { keys: vec![jwk] } }
    })
}

/// A new RSA-2048 key. aws-lc-rs writes PKCS#8 (RFC 5208) and jsonwebtoken reads the PKCS#1
/// `RSAPrivateKey` (RFC 8017) inside it: `PrivateKeyInfo ::= SEQUENCE { version, algorithm,
/// privateKey OCTET STRING }`.
fn rsa_key() -> EncodingKey {
    let pkcs8 = RsaKeyPair::generate(KeySize::Rsa2048).unwrap().as_der().unwrap();
    let (info, _) = der_element(pkcs8.as_ref());
    let (_version, rest) = der_element(info);
    let (_algorithm, rest) = der_element(rest);
    EncodingKey::from_rsa_der(der_element(rest).0)
}

/// The contents of the DER element at the start of `der`, and the bytes after it.
fn der_element(der: &[u8]) -> (&[u8], &[u8]) {
    let (len, start) = match der[1] {
        short @ 0..0x80 => (usize::from(short), 2),
        long => {
            let end = 2 + usize::from(long & 0x7f);
            (der[2..end].iter().fold(0, |len, byte| len << 8 | usize::from(*byte)), end)
        }
    };
    der[start..].split_at(len)
}

impl State<User> {
    /// The ID token of OpenID Connect Core §2, spoiled in one way if a misbehaviour is set.
    fn id_token(&self, grant: &Grant<User>) -> String {
        let now = get_current_timestamp();
        let mut claims = serde_json::to_value(&grant.user).unwrap();
        claims["iss"] = json!(self.address);
        claims["aud"] = json!(self.client_id);
        claims["iat"] = json!(now);
        claims["exp"] = json!(now + 300);
        if let Some(nonce) = grant.request.get("nonce") {
            claims["nonce"] = json!(nonce);
        }
        let keys = keys();
        let mut key = &keys.signing;
        match self.misbehaviour.lock().unwrap().take() {
            None => {}
            Some(Misbehaviour::WrongNonce) => claims["nonce"] = json!(random("")),
            Some(Misbehaviour::OtherKey) => key = &keys.forger,
            Some(Misbehaviour::WrongAudience) => claims["aud"] = json!("another-client"),
            Some(Misbehaviour::Expired) => {
                claims["iat"] = json!(now - 900);
                claims["exp"] = json!(now - 600);
            }
            Some(Misbehaviour::AlgNone) => {
                let part = |value: &Value| B64URL.encode(serde_json::to_vec(value).unwrap());
                return format!("{}.{}.", part(&json!({"alg": "none", "typ": "JWT"})), part(&claims));
            }
            Some(Misbehaviour::ExtraAudienceWithoutAzp) => claims["aud"] = json!([self.client_id, "other"]),
            Some(Misbehaviour::WrongIssuer) => claims["iss"] = json!("https://issuer.example.com"),
        }
        let header = Header { kid: Some(keys.kid.clone()), ..Header::new(Algorithm::RS256) };
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }
}

/// OpenID Connect Discovery 1.0 §3.
async fn discovery(state: Oidc) -> HttpResponse {
    let issuer = &state.address;
    HttpResponse::Ok().json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}

/// OpenID Connect Core §3.1.2, with PKCE required.
async fn oidc_authorize(state: Oidc, query: web::Query<Params>) -> HttpResponse {
    let request = query.into_inner();
    let check = if request.get("response_type").map(String::as_str) != Some("code") {
        Err(refusal("unsupported_response_type", "only the authorization code flow: response_type=code"))
    } else if !has_scope(&request, &["openid"]) {
        Err(refusal("invalid_scope", "an OpenID Connect request has the openid scope"))
    } else {
        Ok(())
    };
    state.authorize(request, true, check)
}

/// OpenID Connect Core §3.1.3: errors as RFC 6749 §5.2, 401 for a client that failed to authenticate.
async fn oidc_token(state: Oidc, req: HttpRequest, form: web::Form<Params>) -> HttpResponse {
    state.token_requests.fetch_add(1, SeqCst);
    let redeemed = state
        .authenticate(&req, &form)
        .and_then(|()| match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => Ok(()),
            _ => Err(refusal("unsupported_grant_type", "only grant_type=authorization_code")),
        })
        .and_then(|()| state.redeem(&form));
    let (mut response, body) = match redeemed {
        Ok(grant) => {
            let id_token = state.id_token(&grant);
            let access_token = issue(&state.access_tokens, "", grant);
            let body =
                json!({"access_token": access_token, "token_type": "Bearer", "expires_in": 3600, "id_token": id_token});
            (HttpResponse::Ok(), body)
        }
        Err(refusal) => {
            let mut response = HttpResponse::BadRequest();
            if refusal.error == INVALID_CLIENT.error {
                response = HttpResponse::Unauthorized();
                response.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="token""#));
            }
            (response, json!({"error": refusal.error, "error_description": refusal.description}))
        }
    };
    response.insert_header((header::CACHE_CONTROL, "no-store")).json(body)
}

async fn jwks() -> HttpResponse {
    HttpResponse::Ok().json(&keys().jwks)
}

/// OpenID Connect Core §5.3; a bad token as RFC 6750 §3.1.
async fn userinfo(state: Oidc, req: HttpRequest) -> HttpResponse {
    match state.bearer(&req) {
        Some(grant) => HttpResponse::Ok().json(&grant.user),
        None => HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#))
            .finish(),
    }
}

// GitHub: docs.github.com "Authorizing OAuth apps" and the REST API's users endpoints.

type GitHub = web::Data<State<GitHubUser>>;

/// PKCE is optional at GitHub, but verified when the client uses it.
async fn github_authorize(state: GitHub, query: web::Query<Params>) -> HttpResponse {
    state.authorize(query.into_inner(), false, Ok(()))
}

/// GitHub takes no `grant_type`, answers its errors with 200 and codes of its own, and answers in
/// JSON only when asked (`Accept: application/json`), form-encoded otherwise.
async fn github_token(state: GitHub, req: HttpRequest, form: web::Form<Params>) -> HttpResponse {
    state.token_requests.fetch_add(1, SeqCst);
    let pairs: Vec<(&str, String)> = match state.authenticate(&req, &form).and_then(|()| state.redeem(&form)) {
        Ok(grant) => {
            // GitHub lists the granted scopes comma-separated.
            let scope = scopes(&grant.request).collect::<Vec<_>>().join(",");
            vec![
                ("access_token", issue(&state.access_tokens, "gho_", grant)),
                ("token_type", "bearer".into()),
                ("scope", scope),
            ]
        }
        Err(refusal) => {
            let error = if refusal.error == INVALID_CLIENT.error {
                "incorrect_client_credentials"
            } else {
                "bad_verification_code"
            };
            vec![("error", error.into()), ("error_description", refusal.description.into())]
        }
    };
    let json =
        req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("application/json"));
    if json {
        HttpResponse::Ok().json(pairs.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v))).collect::<Map<_, _>>())
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        HttpResponse::Ok().content_type("application/x-www-form-urlencoded").body(body)
    }
}

/// Answers a REST API request from its grant. GitHub refuses requests without a `User-Agent` (403).
fn github_api(
    state: &GitHub,
    req: &HttpRequest,
    answer: impl FnOnce(Grant<GitHubUser>) -> HttpResponse,
) -> HttpResponse {
    if !req.headers().contains_key(header::USER_AGENT) {
        return HttpResponse::Forbidden().body("Please make sure your request has a User-Agent header");
    }
    match state.bearer(req) {
        Some(grant) => answer(grant),
        None => HttpResponse::Unauthorized().json(
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        ),
    }
}

async fn github_user(state: GitHub, req: HttpRequest) -> HttpResponse {
    github_api(&state, &req, |Grant { user, .. }| {
        HttpResponse::Ok().json(
            json!({"id": user.id, "login": user.login, "type": "User", "name": user.name, "email": user.public_email}),
        )
    })
}

/// Needs the `user:email` (or `user`) scope: without it GitHub answers 404.
async fn github_emails(state: GitHub, req: HttpRequest) -> HttpResponse {
    github_api(&state, &req, |Grant { request, user }| {
        if !has_scope(&request, &["user:email", "user"]) {
            return HttpResponse::NotFound().json(json!({"message": "Not Found", "status": "404"}));
        }
        let emails: Vec<Value> = user
            .emails
            .iter()
            .map(|(email, primary, verified)| {
                // GitHub gives the primary address a visibility, the others none.
                let visibility =
                    primary.then(|| if user.public_email.as_ref() == Some(email) { "public" } else { "private" });
                json!({"email": email, "primary": primary, "verified": verified, "visibility": visibility})
            })
            .collect();
        HttpResponse::Ok().json(emails)
    })
}
