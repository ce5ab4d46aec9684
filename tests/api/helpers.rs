//! `spawn_app()`: a real IdentSphere on a random port, with its own Postgres database and Redis key
//! prefix, and a `TestApp` with one method per endpoint. Dropping the `TestApp` stops nothing else and
//! leaves nothing behind (the database is dropped, the keys deleted).

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use identsphere::clock::Clock;
use identsphere::config::Config;
use identsphere::startup::Application;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The public base URL every test server is configured with (issuer and cookie origin).
pub const PUBLIC_BASE_URL: &str = "http://localhost:3000";
/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";

fn maintenance_url() -> String {
    std::env::var("IDENTSPHERE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("IDENTSPHERE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("the database URL names a database");
    format!("{base}/{database}")
}

/// What a test server owns outside itself: removed when the last `TestApp` using it is dropped.
pub struct Resources {
    pub database: String,
    pub redis_prefix: String,
}

impl Drop for Resources {
    fn drop(&mut self) {
        let database = self.database.clone();
        let prefix = self.redis_prefix.clone();
        // Drop runs outside async: clean up on a thread with its own runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let (client, connection) =
                    tokio_postgres::connect(&maintenance_url(), tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                client.execute(&format!(r#"DROP DATABASE IF EXISTS "{database}" WITH (FORCE)"#), &[]).await.unwrap();
                let mut redis =
                    redis::Client::open(redis_url()).unwrap().get_multiplexed_async_connection().await.unwrap();
                let keys: Vec<String> =
                    redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut redis).await.unwrap();
                if !keys.is_empty() {
                    redis::cmd("DEL").arg(keys).query_async::<()>(&mut redis).await.unwrap();
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub config: Config,
    pub database_url: String,
    pub resources: Arc<Resources>,
    handle: ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting at once; the database is dropped with force afterwards anyway.
        drop(self.handle.stop(false));
    }
}

/// A fresh server with the defaults of `API.md`.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A new, empty database and Redis key prefix, removed on drop.
pub async fn fresh_resources() -> Arc<Resources> {
    let database = format!("identsphere_test_{}", Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(&maintenance_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.execute(&format!(r#"CREATE DATABASE "{database}""#), &[]).await.unwrap();
    Arc::new(Resources { redis_prefix: format!("identsphere-test:{}:", Uuid::new_v4().simple()), database })
}

impl Resources {
    pub fn database_url(&self) -> String {
        with_database(&maintenance_url(), &self.database)
    }
}

/// A fresh server with some variables overridden.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    let resources = fresh_resources().await;
    let kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let mut vars: HashMap<String, String> = [
        ("IDENTSPHERE_BIND", "127.0.0.1:0".to_owned()),
        ("IDENTSPHERE_PUBLIC_BASE_URL", PUBLIC_BASE_URL.to_owned()),
        ("IDENTSPHERE_DATABASE_URL", resources.database_url()),
        ("IDENTSPHERE_DATABASE_POOL_SIZE", "8".to_owned()),
        ("IDENTSPHERE_REDIS_URL", redis_url()),
        ("IDENTSPHERE_REDIS_KEY_PREFIX", resources.redis_prefix.clone()),
        ("IDENTSPHERE_KEY_ENCRYPTION_KEY", kek.to_owned()),
        ("IDENTSPHERE_WORKERS", "2".to_owned()),
        ("IDENTSPHERE_ACTOR_ARBITERS", "2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_lookup(|var| vars.get(var).cloned()).unwrap();
    start(config, Clock::manual(), resources).await
}

async fn start(config: Config, clock: Clock, resources: Arc<Resources>) -> TestApp {
    let application = Application::build(config.clone(), clock.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        clock,
        database_url: config.database_url.clone(),
        config,
        resources,
        handle,
    }
}

/// A signed-up user and the token response of their registration.
pub struct User {
    pub email: String,
    pub tokens: Value,
}

impl User {
    pub fn access(&self) -> &str {
        self.tokens["access_token"].as_str().unwrap()
    }

    pub fn refresh(&self) -> &str {
        self.tokens["refresh_token"].as_str().unwrap()
    }
}

impl TestApp {
    /// A second server on the same database, Redis prefix, keys and clock: another replica.
    pub async fn spawn_replica(&self) -> TestApp {
        self.spawn_replica_with(|_| {}).await
    }

    /// A replica with some configuration changed.
    pub async fn spawn_replica_with(&self, change: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().unwrap();
        change(&mut config);
        start(config, self.clock.clone(), Arc::clone(&self.resources)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A connection to this server's own database, for arranging state the API cannot (yet) set.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls).await.unwrap();
        actix_web::rt::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn register(&self, body: &Value) -> Response {
        self.post("/v1/auth/register", body).await
    }

    pub async fn login(&self, body: &Value) -> Response {
        self.post("/v1/auth/login", body).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/v1/auth/refresh", &json!({ "refresh_token": refresh_token })).await
    }

    pub async fn session(&self, access_token: &str) -> Response {
        self.client.get(self.url("/v1/auth/session")).bearer_auth(access_token).send().await.unwrap()
    }

    pub async fn logout(&self, access_token: &str, scope: &str) -> Response {
        self.client
            .post(self.url("/v1/auth/logout"))
            .bearer_auth(access_token)
            .json(&json!({ "scope": scope }))
            .send()
            .await
            .unwrap()
    }

    /// Registers a fresh user (personal organization) and returns the token response.
    pub async fn signed_up_user(&self) -> User {
        let email = format!("user-{}@example.com", Uuid::new_v4().simple());
        let response = self.register(&json!({ "email": email, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        User { email, tokens: response.json().await.unwrap() }
    }

    /// Logs `user` in again: a second session family.
    pub async fn second_session(&self, user: &User) -> Value {
        let response = self.login(&json!({ "email": user.email, "password": PASSWORD })).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// Asserts the response is the error envelope of `API.md`, field by field, and returns its body.
pub async fn assert_error(response: Response, status: u16, code: &str, kind: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status for {code}");
    assert!(response.headers().contains_key("x-request-id"), "X-Request-Id on {code}");
    let content_type = response.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_object().unwrap_or_else(|| panic!("no error object in {body}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "only `error` at the top: {body}");
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["type"], kind, "{body}");
    let message = error["message"].as_str().unwrap();
    assert!(!message.is_empty());
    for key in error.keys() {
        assert!(["code", "message", "type", "param"].contains(&key.as_str()), "unexpected key {key} in {body}");
    }
    body
}

/// The `Set-Cookie` headers of a response, by cookie name.
pub fn set_cookies(response: &Response) -> HashMap<String, String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| {
            let v = v.to_str().unwrap().to_owned();
            (v.split('=').next().unwrap().to_owned(), v)
        })
        .collect()
}

/// A TCP proxy in front of a backing store that a test can cut and restore: an outage without
/// stopping the machine's shared Redis or Postgres.
pub struct ChaosProxy {
    pub port: u16,
    cut: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl ChaosProxy {
    /// Forwards a fresh local port to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> ChaosProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accepting_cut, accepting_connections) = (Arc::clone(&cut), Arc::clone(&connections));
        actix_web::rt::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if accepting_cut.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let upstream = upstream.clone();
                let task = actix_web::rt::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                accepting_connections.lock().unwrap().push(task);
            }
        });
        ChaosProxy { port, cut, connections }
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.cut.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
