//! `spawn_app()`: a real IdentSphere on a random port, with its own Postgres database and Redis key
//! prefix, and a `TestApp` with one method per endpoint. Dropping the `TestApp` stops nothing else and
//! leaves nothing behind (the database is dropped, the keys deleted).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use identsphere::app::Application;
use identsphere::auth::keys::KeyRing;
use identsphere::clock::Clock;
use identsphere::config::{Config, KeyEncryptionKey, StoreConfig};
use identsphere::model::{KeyAlgorithm, StoredKey};
use identsphere::store::embedded::embedded_kek;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

/// The public base URL every test server is configured with (issuer and cookie origin).
pub const PUBLIC_BASE_URL: &str = "http://localhost:3000";
/// A password that passes the policy.
pub const PASSWORD: &str = "correct horse battery staple";
/// The key-encryption key of Postgres test servers (embedded ones generate their own).
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The abuse limits are on by default in IdentSphere and off in tests that do not test them: the
/// contract tests sign in far more often from one address than a person would. The list is
/// `scripts/limits-off.env`, which a unit test keeps whole.
pub fn limits_off() -> Vec<(&'static str, &'static str)> {
    include_str!("../../scripts/limits-off.env")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| line.split_once('=').unwrap())
        .collect()
}

/// Which backend a test server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a temporary data directory: needs nothing installed.
    Embedded,
    /// Postgres + Redis of the machine (`IDENTSPHERE_TEST_DATABASE_URL`, `IDENTSPHERE_TEST_REDIS_URL`).
    Postgres,
}

/// The backend of this run: `IDENTSPHERE_TEST_BACKEND=postgres`, or the embedded one by default, so a
/// plain `cargo test` passes on a machine without Postgres or Redis. `scripts/test.sh` runs both.
pub fn backend() -> Backend {
    match std::env::var("IDENTSPHERE_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("embedded") | Err(_) => Backend::Embedded,
        Ok(other) => panic!("IDENTSPHERE_TEST_BACKEND must be embedded or postgres, not {other:?}"),
    }
}

/// For tests of what only the Postgres + Redis backend has (replicas, a Redis outage): whether this
/// run is the Postgres one. `scripts/test.sh` leaves them out of the embedded run.
pub fn postgres_run() -> bool {
    let postgres = backend() == Backend::Postgres;
    if !postgres {
        eprintln!("not a Postgres run (IDENTSPHERE_TEST_BACKEND=postgres): nothing to check here");
    }
    postgres
}

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
pub enum Resources {
    /// The data directory holds only the mail outbox here.
    Postgres {
        database: String,
        redis_prefix: String,
        data_dir: PathBuf,
    },
    Embedded {
        data_dir: PathBuf,
    },
}

impl Drop for Resources {
    fn drop(&mut self) {
        let (database, prefix) = match self {
            Resources::Embedded { data_dir } => {
                let _ = std::fs::remove_dir_all(data_dir);
                return;
            }
            Resources::Postgres { database, redis_prefix, data_dir } => {
                let _ = std::fs::remove_dir_all(data_dir);
                (database.clone(), redis_prefix.clone())
            }
        };
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

/// A new, empty Postgres database and Redis key prefix, removed on drop.
pub async fn fresh_postgres() -> Arc<Resources> {
    let database = format!("identsphere_test_{}", Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(&maintenance_url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.execute(&format!(r#"CREATE DATABASE "{database}""#), &[]).await.unwrap();
    Arc::new(Resources::Postgres {
        redis_prefix: format!("identsphere-test:{}:", Uuid::new_v4().simple()),
        database,
        data_dir: std::env::temp_dir().join(format!("identsphere-test-{}", Uuid::new_v4().simple())),
    })
}

/// A new data directory path (not created: the server creates it), removed on drop.
pub fn fresh_data_dir() -> Arc<Resources> {
    let data_dir = std::env::temp_dir().join(format!("identsphere-test-{}", Uuid::new_v4().simple()));
    Arc::new(Resources::Embedded { data_dir })
}

impl Resources {
    pub fn database_url(&self) -> String {
        match self {
            Resources::Postgres { database, .. } => with_database(&maintenance_url(), database),
            Resources::Embedded { .. } => panic!("an embedded server has no database URL"),
        }
    }

    /// The variables that point a server at these resources.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        match self {
            Resources::Postgres { redis_prefix, data_dir, .. } => vec![
                ("IDENTSPHERE_DATA_DIR", data_dir.display().to_string()),
                ("IDENTSPHERE_DATABASE_URL", self.database_url()),
                ("IDENTSPHERE_DATABASE_POOL_SIZE", "8".to_owned()),
                ("IDENTSPHERE_REDIS_URL", redis_url()),
                ("IDENTSPHERE_REDIS_KEY_PREFIX", redis_prefix.clone()),
                ("IDENTSPHERE_KEY_ENCRYPTION_KEY", KEK.to_owned()),
            ],
            Resources::Embedded { data_dir } => vec![("IDENTSPHERE_DATA_DIR", data_dir.display().to_string())],
        }
    }
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Clock,
    pub config: Config,
    pub backend: Backend,
    pub resources: Arc<Resources>,
    server: Server,
}

/// How a test server runs: inside the test process, or as the real binary in a process of its own
/// (for what is process-wide, like the metrics registry).
enum Server {
    InProcess(ServerHandle),
    /// The child and the file its stderr (the log) goes to.
    Process {
        child: std::process::Child,
        log: PathBuf,
    },
}

impl Drop for TestApp {
    fn drop(&mut self) {
        match &mut self.server {
            // Stop accepting at once; the database is dropped with force afterwards anyway.
            Server::InProcess(handle) => drop(handle.stop(false)),
            Server::Process { child, log } => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(log);
            }
        }
    }
}

/// The `identsphere` binary serving this run's backend, in a process of its own. Its clock is the
/// system's.
pub async fn spawn_process_app(overrides: &[(&str, &str)]) -> TestApp {
    let resources = match backend() {
        Backend::Postgres => fresh_postgres().await,
        Backend::Embedded => fresh_data_dir(),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_identsphere"));
    command
        .env_clear()
        .env("IDENTSPHERE_BIND", &bind)
        .env("IDENTSPHERE_PUBLIC_BASE_URL", PUBLIC_BASE_URL)
        .env("IDENTSPHERE_LOG", "warn")
        .envs(limits_off())
        .envs(resources.vars())
        .envs(overrides.iter().copied())
        .stdout(std::process::Stdio::null());
    let log = std::env::temp_dir().join(format!("identsphere-test-{}.log", Uuid::new_v4().simple()));
    command.stderr(std::fs::File::create(&log).unwrap());
    let child = command.spawn().unwrap();
    let config = config_for(&resources, overrides);
    let app = TestApp {
        address: format!("http://{bind}"),
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        clock: Clock::system(),
        backend: self_backend(&config),
        config,
        resources,
        server: Server::Process { child, log },
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.client.get(app.url("/healthz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the identsphere process did not come up on {bind}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    app
}

/// A fresh server on this run's backend with the defaults of `docs/api.md`.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// A fresh server on this run's backend with some variables overridden.
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_on(backend(), overrides).await
}

/// A fresh server on a given backend.
pub async fn spawn_app_on(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
    let resources = match backend {
        Backend::Postgres => fresh_postgres().await,
        Backend::Embedded => fresh_data_dir(),
    };
    start(config_for(&resources, overrides), Clock::manual(), resources).await
}

/// The configuration of a test server on `resources`.
pub fn config_for(resources: &Resources, overrides: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = [
        ("IDENTSPHERE_BIND", "127.0.0.1:0".to_owned()),
        ("IDENTSPHERE_PUBLIC_BASE_URL", PUBLIC_BASE_URL.to_owned()),
        ("IDENTSPHERE_WORKERS", "2".to_owned()),
        ("IDENTSPHERE_ACTOR_ARBITERS", "2".to_owned()),
    ]
    .into_iter()
    .chain(limits_off().into_iter().map(|(k, v)| (k, v.to_owned())))
    .chain(resources.vars())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_vars(vars).unwrap()
}

pub async fn start(config: Config, clock: Clock, resources: Arc<Resources>) -> TestApp {
    let application = Application::build(config.clone(), clock.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", application.port());
    let handle = application.handle();
    actix_web::rt::spawn(application.run_until_stopped());
    let backend = self_backend(&config);
    TestApp {
        address,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        clock,
        config,
        backend,
        resources,
        server: Server::InProcess(handle),
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

fn self_backend(config: &Config) -> Backend {
    match config.store {
        StoreConfig::Embedded => Backend::Embedded,
        StoreConfig::Postgres { .. } => Backend::Postgres,
    }
}

impl TestApp {
    /// A second server on the same database, Redis prefix, keys and clock: another replica
    /// (Postgres + Redis only: the embedded store serves a single node).
    pub async fn spawn_replica(&self) -> TestApp {
        assert_eq!(self.backend, Backend::Postgres, "replicas need the Postgres + Redis backend");
        let mut config = self.config.clone();
        config.bind = "127.0.0.1:0".parse().unwrap();
        start(config, self.clock.clone(), Arc::clone(&self.resources)).await
    }

    /// Stops this server and starts a new one on the same state, with some configuration changed.
    pub async fn restart_with(self, change: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        change(&mut config);
        let (clock, resources) = (self.clock.clone(), Arc::clone(&self.resources));
        self.stop().await;
        // The old server's actors let go of the store on their own threads: wait for the data
        // directory's lock rather than sleep a guessed time.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Application::build(config.clone(), clock.clone()).await {
                Ok(application) => {
                    let address = format!("http://127.0.0.1:{}", application.port());
                    let handle = application.handle();
                    actix_web::rt::spawn(application.run_until_stopped());
                    let client =
                        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
                    let backend = self_backend(&config);
                    let server = Server::InProcess(handle);
                    return TestApp { address, client, clock, config, backend, resources, server };
                }
                Err(err)
                    if format!("{err:#}").contains("in use by another") && std::time::Instant::now() < deadline =>
                {
                    actix_web::rt::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => panic!("restart failed: {err:#}"),
            }
        }
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        match &self.server {
            Server::InProcess(handle) => handle.stop(true).await,
            Server::Process { .. } => panic!("stop() is for in-process servers"),
        }
    }

    /// The process of a server started with `spawn_process_app`.
    pub fn process(&mut self) -> &mut std::process::Child {
        match &mut self.server {
            Server::Process { child, .. } => child,
            Server::InProcess(_) => panic!("not a process"),
        }
    }

    /// The CPU time a server started with `spawn_process_app` has used so far, all its threads: what its
    /// work costs, whatever else the machine is doing (Linux: `/proc`).
    pub fn cpu_time(&self) -> Duration {
        let Server::Process { child, .. } = &self.server else {
            panic!("in-process servers share the test's CPU time")
        };
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        // After the command name in parentheses: state is the first field, utime the 12th, stime the 13th.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        static TICKS_PER_SECOND: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let per_second = *TICKS_PER_SECOND.get_or_init(|| {
            let output = std::process::Command::new("getconf").arg("CLK_TCK").output().unwrap();
            String::from_utf8(output.stdout).unwrap().trim().parse().unwrap()
        });
        Duration::from_secs_f64(ticks as f64 / per_second as f64)
    }

    /// What a server started with `spawn_process_app` has logged so far.
    pub fn log(&self) -> String {
        match &self.server {
            Server::Process { log, .. } => std::fs::read_to_string(log).unwrap(),
            Server::InProcess(_) => panic!("in-process servers log to the test's output"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
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

/// Asserts the response is the error envelope of `docs/api.md`, field by field, and returns its body.
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

/// The value of the first series of `name` in a `/metrics` text whose labels contain every
/// `label="value"` given.
pub fn series(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
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

impl Resources {
    /// Loses every Redis key of these resources, as a Redis restarted without persistence would (only this
    /// test's prefix: the machine's Redis is shared).
    pub async fn lose_redis_data(&self) {
        let (mut redis, prefix) = self.redis().await;
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}*")).query_async(&mut redis).await.unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL").arg(keys).query_async::<()>(&mut redis).await.unwrap();
        }
    }

    /// A connection to Redis and this test's key prefix, to leave what a fault would leave there.
    pub async fn redis(&self) -> (redis::aio::MultiplexedConnection, &str) {
        let Resources::Postgres { redis_prefix, .. } = self else { panic!("only the Postgres backend has Redis") };
        let client = redis::Client::open(redis_url()).unwrap();
        (client.get_multiplexed_async_connection().await.unwrap(), redis_prefix)
    }
}

/// Direct access to a test server's store, for arranging what the API cannot set yet and for looking
/// at what it wrote. One method per need, in both dialects.
pub enum Db {
    Postgres(tokio_postgres::Client),
    Sqlite(rusqlite::Connection),
}

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

impl TestApp {
    pub async fn db(&self) -> Db {
        match &*self.resources {
            Resources::Postgres { .. } => {
                let (client, connection) =
                    tokio_postgres::connect(&self.resources.database_url(), tokio_postgres::NoTls).await.unwrap();
                actix_web::rt::spawn(async move {
                    let _ = connection.await;
                });
                Db::Postgres(client)
            }
            Resources::Embedded { data_dir } => {
                let connection = rusqlite::Connection::open(data_dir.join("identsphere.db")).unwrap();
                connection.busy_timeout(Duration::from_secs(5)).unwrap();
                Db::Sqlite(connection)
            }
        }
    }

    /// The server's own key ring, opened with its key-encryption key.
    pub async fn server_keys(&self) -> KeyRing {
        let kek: KeyEncryptionKey = match &*self.resources {
            Resources::Postgres { .. } => self.config.key_encryption_key.clone().unwrap(),
            Resources::Embedded { data_dir } => embedded_kek(data_dir, None).unwrap(),
        };
        // The keys that are not scheduled to retire: the ones signing now.
        let rows: Vec<(String, String, Vec<u8>, OffsetDateTime, i64)> = match self.db().await {
            Db::Postgres(c) => c
                .query(
                    "SELECT kid, algorithm, sealed_private, activates_at, generation FROM signing_keys \
                     WHERE retires_at IS NULL",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect(),
            Db::Sqlite(c) => c
                .prepare(
                    "SELECT kid, algorithm, sealed_private, activates_at, generation FROM signing_keys \
                     WHERE retires_at IS NULL",
                )
                .unwrap()
                .query_map([], |r| {
                    let ms: i64 = r.get(3)?;
                    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, at, r.get(4)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap(),
        };
        let stored: Vec<StoredKey> = rows
            .into_iter()
            .map(|(kid, algorithm, sealed, activates_at, generation)| StoredKey {
                kid,
                algorithm: KeyAlgorithm::parse(&algorithm).unwrap(),
                sealed,
                created_at: activates_at,
                activates_at,
                retires_at: None,
                generation,
            })
            .collect();
        KeyRing::open(&stored, &kek).unwrap()
    }
}

impl Db {
    /// Sets an organization's sign-up mode and domains, and optionally its slug.
    pub async fn set_signup(&self, org: Uuid, mode: &str, domains: &[&str], slug: Option<&str>) {
        match self {
            Db::Postgres(c) => {
                let domains: Vec<String> = domains.iter().map(|d| (*d).to_owned()).collect();
                c.execute(
                    "UPDATE organizations SET signup_mode = $2, signup_domains = $3, slug = coalesce($4, slug) WHERE id = $1",
                    &[&org, &mode, &domains, &slug],
                )
                .await
                .unwrap();
            }
            Db::Sqlite(c) => {
                c.execute(
                    "UPDATE organizations SET signup_mode = ?2, signup_domains = ?3, slug = coalesce(?4, slug) WHERE id = ?1",
                    rusqlite::params![org.as_bytes().as_slice(), mode, json!(domains).to_string(), slug],
                )
                .unwrap();
            }
        }
    }

    /// Adds a membership last used at `last_used`.
    pub async fn add_membership(&self, user: Uuid, org: Uuid, role: &str, last_used: OffsetDateTime) {
        match self {
            Db::Postgres(c) => {
                c.execute(
                    "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) VALUES ($1, $2, $3, $4, $4)",
                    &[&user, &org, &role, &last_used],
                )
                .await
                .unwrap();
            }
            Db::Sqlite(c) => {
                c.execute(
                    "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                    rusqlite::params![user.as_bytes().as_slice(), org.as_bytes().as_slice(), role, ms(last_used)],
                )
                .unwrap();
            }
        }
    }

    /// Disables (or enables again) a user or an organization.
    pub async fn set_disabled(&self, table: &str, id: Uuid, disabled: bool) {
        assert!(table == "users" || table == "organizations");
        match self {
            Db::Postgres(c) => {
                let sql = format!("UPDATE {table} SET disabled_at = CASE WHEN $2 THEN now() END WHERE id = $1");
                c.execute(&sql, &[&id, &disabled]).await.unwrap();
            }
            Db::Sqlite(c) => {
                let sql = format!("UPDATE {table} SET disabled_at = CASE WHEN ?2 THEN 1 END WHERE id = ?1");
                c.execute(&sql, rusqlite::params![id.as_bytes().as_slice(), disabled]).unwrap();
            }
        }
    }

    /// The stored password hash of a user.
    pub async fn password_hash(&self, user: Uuid) -> String {
        match self {
            Db::Postgres(c) => {
                c.query_one("SELECT hash FROM password_credentials WHERE user_id = $1", &[&user]).await.unwrap().get(0)
            }
            Db::Sqlite(c) => c
                .query_row(
                    "SELECT hash FROM password_credentials WHERE user_id = ?1",
                    [user.as_bytes().as_slice()],
                    |r| r.get(0),
                )
                .unwrap(),
        }
    }

    /// A platform key (`isp_…`), stored as the operator's command line stores one: the embedded store
    /// takes no command while the server runs on it.
    pub async fn platform_key(&self, now: OffsetDateTime) -> String {
        use base64::Engine as _;
        let id = Uuid::new_v4();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes());
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes()).as_ref().to_vec();
        match self {
            Db::Postgres(c) => {
                let sql = "INSERT INTO api_keys (id, name, secret_hash, created_at) VALUES ($1, 'platform', $2, $3)";
                c.execute(sql, &[&id, &hash, &now]).await.unwrap();
            }
            Db::Sqlite(c) => {
                let sql = "INSERT INTO api_keys (id, name, secret_hash, created_at) VALUES (?1, 'platform', ?2, ?3)";
                c.execute(sql, rusqlite::params![id.as_bytes().as_slice(), hash, ms(now)]).unwrap();
            }
        }
        format!("isp_{}_{secret}", id.simple())
    }

    /// How many rows a table has.
    pub async fn count(&self, table: &str) -> i64 {
        assert!(table.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Db::Postgres(c) => c.query_one(&sql, &[]).await.unwrap().get(0),
            Db::Sqlite(c) => c.query_row(&sql, [], |r| r.get(0)).unwrap(),
        }
    }

    /// Every value of a table, as text: to check a secret is stored nowhere.
    pub async fn dump_table(&self, table: &str) -> String {
        assert!(table.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        match self {
            Db::Postgres(c) => {
                let rows = c.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap();
                rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
            }
            Db::Sqlite(c) => {
                let mut statement = c.prepare(&format!("SELECT * FROM {table}")).unwrap();
                let columns = statement.column_count();
                let rows = statement
                    .query_map([], |row| {
                        Ok((0..columns).map(|i| format!("{:?}", row.get_ref(i).unwrap())).collect::<Vec<_>>().join(","))
                    })
                    .unwrap();
                rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
            }
        }
    }

    /// A family's rotation count and revocation reason.
    pub async fn family(&self, sid: Uuid) -> (i64, Option<String>) {
        match self {
            Db::Postgres(c) => {
                let row = c
                    .query_one("SELECT rotations, revoked_reason FROM session_families WHERE id = $1", &[&sid])
                    .await
                    .unwrap();
                (row.get(0), row.get(1))
            }
            Db::Sqlite(c) => c
                .query_row(
                    "SELECT rotations, revoked_reason FROM session_families WHERE id = ?1",
                    [sid.as_bytes().as_slice()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .unwrap(),
        }
    }
}

/// The ids of a token response.
pub fn ids(tokens: &Value) -> (Uuid, Uuid, Uuid) {
    let id = |v: &Value| v.as_str().unwrap().parse::<Uuid>().unwrap();
    (id(&tokens["user"]["id"]), id(&tokens["session"]["organization_id"]), id(&tokens["session"]["id"]))
}

/// The text of a message with quoted-printable soft breaks and escapes undone (enough for links).
pub fn quoted_printable_decoded(message: &str) -> String {
    let joined = message.replace("=\r\n", "");
    let mut out = String::with_capacity(joined.len());
    let mut rest = joined.as_str();
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at + 1..at + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 3..];
            }
            None => {
                out.push('=');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The token of the first link to `page` (`verify-email`, `reset-password`) in a decoded message.
pub fn token_in(text: &str, page: &str) -> Option<String> {
    let marker = format!("http://localhost:3000/{page}?token=");
    let start = text.find(&marker)? + marker.len();
    Some(text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect())
}

/// The token of the first `page` link mailed to `to` in the server's outbox, waiting up to 10 s for it.
pub async fn outbox_token(app: &TestApp, page: &str, to: &str) -> String {
    let outbox = app.config.data_dir.join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Ok(mut dir) = tokio::fs::read_dir(&outbox).await {
            while let Some(entry) = dir.next_entry().await.unwrap() {
                let message = tokio::fs::read_to_string(entry.path()).await.unwrap_or_default();
                if !message.contains(&format!("To: {to}")) {
                    continue;
                }
                let token = token_in(&quoted_printable_decoded(&message), page);
                // A file still being written may hold part of the token.
                if let Some(token) = token.filter(|t| t.len() == 43) {
                    return token;
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "no {page} link in {}", outbox.display());
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
