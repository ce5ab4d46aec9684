//! A real IdentSphere per test (embedded store in a temporary directory, manual clock, port picked
//! first so its public base URL is its real address) and a real axum app using the SDK.

use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use axum::Router;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use identsphere::app::Application;
use identsphere::clock::Clock;
use identsphere::config::Config;
use identsphere_axum::{Authenticated, IdentSphere, MaybeAuthenticated, OnlineAuthenticated, RequireAal2, RequireOrg};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::authenticator::Authenticator;

/// Set in the process `in_own_process` starts: the name of the one test it runs.
const OWN_PROCESS: &str = "IDENTSPHERE_SDK_TEST_OWN_PROCESS";

/// Runs a test that reads process-wide state in a process of its own, however the suite is run.
///
/// The `metrics` recorder is global: every IdentSphere started in a process serves the same registry at
/// `/metrics`, and every SDK in it records there. `cargo test` runs the tests of this binary as threads
/// of one process, so a count read at `/metrics` would include the other tests' requests. This
/// re-executes the test binary for `test` alone (its name as `cargo test -- --list` prints it), where
/// `body` runs on a fresh actix system, and fails with the child's output if the child fails or runs no
/// test of that name. Under nextest, which already gives each test a process, it costs one more start.
pub fn in_own_process<F: Future<Output = ()>>(test: &str, body: impl FnOnce() -> F) {
    if std::env::var_os(OWN_PROCESS).is_some_and(|alone| alone == test) {
        actix_web::rt::System::new().block_on(body());
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(OWN_PROCESS, test)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test}, run in a process of its own, {}:\n{stdout}\n{stderr}",
        output.status
    );
}

/// The platform API key the test servers accept on the revocation feed.
pub const KEY: &str = "platform-key-for-sdk-tests-0123456789abcdef";
pub const PASSWORD: &str = "correct horse battery staple";
/// The page passkeys are used from in `passkey_session`.
const PASSKEY_ORIGIN: &str = "http://localhost:3000";
/// The server variables passkeys need: the test server's own address is an IP address, which browsers
/// never use for WebAuthn, so the relying party is `localhost`.
pub const PASSKEYS: [(&str, &str); 2] =
    [("IDENTSPHERE_WEBAUTHN_RP_ID", "localhost"), ("IDENTSPHERE_WEBAUTHN_ORIGINS", PASSKEY_ORIGIN)];

/// A running IdentSphere; stopped and its data directory removed on drop.
pub struct Server {
    pub address: String,
    pub clock: Clock,
    pub http: reqwest::Client,
    handle: ServerHandle,
    // Dropped after the server is told to stop (fields drop in order).
    _data_dir: DataDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// A data directory, removed on drop even when the test fails before its server is up.
struct DataDir(PathBuf);

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh IdentSphere: keys reloaded every second, abuse limits off, the feed's key set.
pub async fn spawn_server() -> Server {
    spawn_server_with(&[]).await
}

/// A fresh IdentSphere with some variables overridden.
pub async fn spawn_server_with(overrides: &[(&str, &str)]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");
    let data_dir = DataDir(std::env::temp_dir().join(format!("identsphere-sdk-test-{}", Uuid::new_v4().simple())));
    let vars = [
        ("IDENTSPHERE_BIND", format!("127.0.0.1:{port}")),
        ("IDENTSPHERE_PUBLIC_BASE_URL", address.clone()),
        ("IDENTSPHERE_DATA_DIR", data_dir.0.display().to_string()),
        ("IDENTSPHERE_PLATFORM_API_KEY", KEY.to_owned()),
        ("IDENTSPHERE_KEY_CHECK_INTERVAL", "1".to_owned()),
        ("IDENTSPHERE_WORKERS", "1".to_owned()),
        ("IDENTSPHERE_ACTOR_ARBITERS", "1".to_owned()),
        ("IDENTSPHERE_LOG", "warn".to_owned()),
        ("IDENTSPHERE_RATE_LIMIT_SIGNIN_IP", "off".to_owned()),
        ("IDENTSPHERE_RATE_LIMIT_SIGNIN_ACCOUNT_FAILURES", "off".to_owned()),
        ("IDENTSPHERE_RATE_LIMIT_REGISTER_IP", "off".to_owned()),
        ("IDENTSPHERE_RATE_LIMIT_REFRESH_IP", "off".to_owned()),
    ];
    let lookup = |var: &str| {
        let overridden = overrides.iter().find(|(k, _)| *k == var).map(|(_, v)| (*v).to_owned());
        overridden.or_else(|| vars.iter().find(|(k, _)| *k == var).map(|(_, v)| v.clone()))
    };
    let config = Config::from_lookup(lookup).unwrap();
    let clock = Clock::manual();
    let application = Application::build(config, clock.clone()).await.unwrap();
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    Server { address, clock, http: reqwest::Client::new(), handle, _data_dir: data_dir }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A verifier for this server with a fast poll, as an app would configure it.
    pub async fn sdk(&self) -> IdentSphere {
        self.builder().build().await.unwrap()
    }

    pub fn builder(&self) -> identsphere_axum::Builder {
        IdentSphere::builder(&self.address)
            .platform_api_key(KEY)
            .revocation_poll_interval(Duration::from_millis(300))
            .jwks_refetch_interval(Duration::from_secs(2))
    }

    /// Registers a new user: the token response.
    pub async fn sign_up(&self) -> Value {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        let response = self
            .http
            .post(self.url("/v1/auth/register"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// A new user signed in with a passkey (registered from the sign-up session): the token response. The
    /// server must run with `PASSKEYS`.
    pub async fn passkey_session(&self) -> Value {
        let tokens = self.sign_up().await;
        let access = tokens["access_token"].as_str().unwrap();
        let mut authenticator = Authenticator::new(PASSKEY_ORIGIN);
        let options = self.post_json("/v1/auth/passkeys/registration/options", Some(access), &json!({}), 200).await;
        let credential = authenticator.register(&options, None);
        let body = json!({"ceremony_id": options["ceremony_id"], "credential": credential});
        self.post_json("/v1/auth/passkeys/registration", Some(access), &body, 201).await;
        let options = self.post_json("/v1/auth/passkeys/authentication/options", None, &json!({}), 200).await;
        let body = json!({"ceremony_id": options["ceremony_id"], "credential": authenticator.authenticate(&options)});
        self.post_json("/v1/auth/passkeys/authentication", None, &body, 200).await
    }

    async fn post_json(&self, path: &str, bearer: Option<&str>, body: &Value, status: u16) -> Value {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        response.json().await.unwrap()
    }

    /// Signs in again: a new session of the same user.
    pub async fn login(&self, email: &str) -> Value {
        let body = json!({ "email": email, "password": PASSWORD });
        let response = self.http.post(self.url("/v1/auth/login")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Enrolls and confirms TOTP in the session of `tokens`, a token response (computing the code from
    /// the secret): the confirmation's token response, at `aal2`.
    pub async fn confirm_totp(&self, tokens: &Value) -> Value {
        let access = tokens["access_token"].as_str().unwrap();
        let response = self.http.post(self.url("/v1/auth/mfa/totp")).bearer_auth(access).json(&json!({})).send().await;
        let enrollment: Value = response.unwrap().json().await.unwrap();
        let secret = totp_rs::Secret::try_from_base32(enrollment["secret"].as_str().unwrap()).unwrap();
        let totp = totp_rs::Builder::new().with_secret(secret).build().unwrap();
        let code = totp.generate(u64::try_from(self.clock.now().unix_timestamp()).unwrap()).to_string();
        let response = self
            .http
            .post(self.url("/v1/auth/mfa/totp/confirm"))
            .bearer_auth(access)
            .json(&json!({ "code": code, "refresh_token": tokens["refresh_token"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Stops the server and waits until it no longer answers.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    pub async fn logout(&self, access: &str) {
        let response = self.http.post(self.url("/v1/auth/logout")).bearer_auth(access).send().await.unwrap();
        assert_eq!(response.status(), 204);
    }

    pub async fn refresh(&self, refresh: &str) -> reqwest::Response {
        self.http.post(self.url("/v1/auth/refresh")).json(&json!({ "refresh_token": refresh })).send().await.unwrap()
    }

    /// The JWKS requests this server has really served (its own `/metrics`), whoever made them.
    pub async fn jwks_served(&self) -> u64 {
        let text = self.http.get(self.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| {
                l.starts_with("identsphere_http_requests_total{") && l.contains(r#"route="/.well-known/jwks.json""#)
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64)
            .sum()
    }

    /// The key ids the server publishes now (a request the counter above sees too).
    pub async fn published_kids(&self) -> Vec<String> {
        let jwks: Value = self.http.get(self.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
        jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
    }
}

pub fn access(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

pub fn refresh(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

/// A JWT part decoded as JSON (0: header, 1: claims).
pub fn part(token: &str, index: usize) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(index).unwrap()).unwrap()).unwrap()
}

/// A token with the given header and claims, signed by a fresh RSA key that is not IdentSphere's.
pub fn forge(header: &Value, claims: &Value) -> String {
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let signing_input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), signing_input.as_bytes(), &mut signature)
        .unwrap();
    format!("{signing_input}.{}", B64.encode(signature))
}

/// An axum app on a real port whose routes use the SDK's extractors; stopped on drop.
pub struct App {
    pub address: String,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn me(Authenticated(claims): Authenticated) -> axum::Json<identsphere_axum::Claims> {
    axum::Json(claims)
}

async fn maybe(MaybeAuthenticated(claims): MaybeAuthenticated) -> axum::Json<Value> {
    axum::Json(json!({ "sub": claims.map(|c| c.sub) }))
}

async fn optional(claims: Option<Authenticated>) -> axum::Json<Value> {
    axum::Json(json!({ "sub": claims.map(|Authenticated(c)| c.sub) }))
}

async fn aal2(RequireAal2(claims): RequireAal2) -> String {
    claims.sub.to_string()
}

async fn org(RequireOrg(claims): RequireOrg) -> String {
    claims.org.unwrap().to_string()
}

async fn exact(online: OnlineAuthenticated) -> String {
    online.session.organization.id.to_string()
}

pub async fn spawn_app(auth: &IdentSphere) -> App {
    let router = Router::new()
        .route("/me", get(me).post(me))
        .route("/maybe", get(maybe))
        .route("/optional", get(optional))
        .route("/aal2", get(aal2))
        .route("/orgs/{org_id}/things", get(org))
        .route("/exact", get(exact))
        .layer(auth.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    App { address, http: reqwest::Client::new(), task }
}

impl App {
    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }
}

/// Asserts an IdentSphere error envelope with this status and code.
pub async fn assert_refused(response: reqwest::Response, status: u16, code: &str) {
    assert_eq!(response.status(), status, "expected {code}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string() && body["error"]["type"].is_string(), "{body}");
}
