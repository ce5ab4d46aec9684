//! TLS to the stores, against real servers that only speak TLS: a private Postgres cluster (`hostssl` only)
//! and a private Redis (`--port 0`), each test its own, with a throwaway CA made by the `openssl` command
//! (on every machine that has Postgres and Redis; no certificate crate to build for it).
//!
//! Named `postgres_only_` so `scripts/test.sh` runs them once, in its Postgres run; they use none of the
//! machine's stores, and without `openssl`, `initdb`/`pg_ctl` (postgresql-15) or `redis-server` they fail
//! saying which is missing rather than pass.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use identsphere::clock::Clock;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{PASSWORD, config_for, fresh_data_dir, start};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const NEEDS: &str = "the store TLS tests need openssl, postgresql-15 (initdb, pg_ctl, psql) and redis-server";

/// Runs a tool the test needs, failing loudly if it is missing or fails.
fn tool(command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("{NEEDS}: {command:?}: {e}"));
    assert!(output.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Whether this process runs as root, as Postgres refuses to: then its tools run as `postgres`.
fn root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn as_postgres(program: &str) -> Command {
    if root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

/// A CA (`ca.pem`), a server certificate it signed for localhost and 127.0.0.1 (`server.pem`, `server.key`)
/// and an unrelated CA (`other-ca.pem`), in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| tool(Command::new("openssl").args(args).current_dir(dir));
    let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    for (name, subject) in [("ca", "/CN=IdentSphere test CA"), ("other-ca", "/CN=Some other CA")] {
        let (key_file, pem) = (format!("{name}.key"), format!("{name}.pem"));
        let days = ["-days", "2", "-subj", subject, "-keyout", &key_file, "-out", &pem];
        openssl(&[&["req", "-x509"][..], &key, &days].concat());
    }
    openssl(&[&["req"][..], &key, &["-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"]].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
}

/// A private TLS-only Postgres cluster and Redis with their certificates, in a directory of their own; stopped
/// and removed on drop, also when the test fails.
struct TlsStores {
    dir: PathBuf,
    pg_port: u16,
    pg_started: bool,
    redis_port: u16,
    redis: Option<std::process::Child>,
}

impl TlsStores {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("identsphere-tls-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).unwrap();
        let mut stores = Self { dir, pg_port: free_port(), pg_started: false, redis_port: free_port(), redis: None };
        let dir = stores.dir.clone();
        make_certificates(&dir);
        if root() {
            tool(Command::new("chown").args(["-R", "postgres"]).arg(&dir));
        }

        let data = dir.join("pg");
        tool(as_postgres(&format!("{PG_BIN}/initdb")).arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        for file in ["server.pem", "server.key"] {
            std::fs::copy(dir.join(file), data.join(file)).unwrap();
        }
        if root() {
            tool(Command::new("chown").args(["postgres", "server.pem", "server.key"]).current_dir(&data));
        }
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\n\
             ssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\nfsync = off\n",
            stores.pg_port,
            dir.display()
        );
        let mut postgresql_conf = std::fs::OpenOptions::new().append(true).open(data.join("postgresql.conf")).unwrap();
        std::io::Write::write_all(&mut postgresql_conf, conf.as_bytes()).unwrap();
        // TLS or nothing: a connection that succeeds below is encrypted. `binder` signs in with SCRAM.
        let hba = "hostssl all binder 127.0.0.1/32 scram-sha-256\nhostssl all all 127.0.0.1/32 trust\n";
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        stores.pg_started = true;
        tool(
            as_postgres(&format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("pg.log"))
                .args(["-w", "-t", "60", "start"]),
        );
        let server = format!("host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require", stores.pg_port);
        tool(Command::new("psql").args([&server, "-qc", "CREATE ROLE binder LOGIN SUPERUSER PASSWORD 'secret'"]));

        let redis = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--tls-auth-clients",
                "no",
            ])
            .args(["--tls-port", &stores.redis_port.to_string()])
            .arg("--tls-cert-file")
            .arg(dir.join("server.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.pem"))
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{NEEDS}: redis-server: {e}"));
        stores.redis = Some(redis);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", stores.redis_port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {}", stores.redis_port);
            std::thread::sleep(Duration::from_millis(20));
        }
        stores
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A Postgres URL of this cluster, on `host`, with `query`.
    fn database_url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.pg_port)
    }

    fn redis_url(&self, scheme: &str) -> String {
        format!("{scheme}://localhost:{}", self.redis_port)
    }

    /// Every variable a server needs to use both stores over TLS checked against the right CA.
    fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("IDENTSPHERE_DATABASE_URL", self.database_url("localhost", "sslmode=verify-full")),
            ("IDENTSPHERE_DATABASE_CA_FILE", self.file("ca.pem")),
            ("IDENTSPHERE_REDIS_URL", self.redis_url("rediss")),
            ("IDENTSPHERE_REDIS_CA_FILE", self.file("ca.pem")),
            ("IDENTSPHERE_KEY_ENCRYPTION_KEY", KEK.to_owned()),
            ("IDENTSPHERE_DATA_DIR", self.file("data")),
        ]
    }

    /// Runs `identsphere <args>` with `vars` and what it is changed by, until it exits (within a minute).
    fn identsphere(&self, args: &[&str], changes: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_identsphere"));
        command
            .args(args)
            .env_clear()
            .env("IDENTSPHERE_LOG", "error")
            .env("IDENTSPHERE_BIND", format!("127.0.0.1:{}", free_port()))
            .envs(self.vars())
            .envs(changes.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("identsphere {args:?} with {changes:?} is still running after a minute");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for TlsStores {
    fn drop(&mut self) {
        if let Some(mut redis) = self.redis.take() {
            let _ = redis.kill();
            let _ = redis.wait();
        }
        if self.pg_started {
            let _ = as_postgres(&format!("{PG_BIN}/pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("pg"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The one line `identsphere` printed before it exited with `code`.
fn failure_line(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("identsphere: ")).collect();
    assert_eq!(lines.len(), 1, "one line of error: {stderr}");
    lines[0].to_owned()
}

#[actix_web::test]
async fn postgres_only_a_server_on_tls_stores_checked_against_their_ca_registers_and_logs_in() {
    let stores = TlsStores::start();
    let resources = fresh_data_dir();
    let vars = stores.vars();
    let overrides: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = start(config_for(&resources, &overrides), Clock::manual(), resources).await;

    let user = app.signed_up_user().await;
    let login = app.login(&json!({ "email": user.email, "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::OK);
    let tokens: serde_json::Value = login.json().await.unwrap();
    // The session view reads the denylist in Redis: both stores answered over TLS.
    let session = app.session(tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(session.status(), StatusCode::OK);
}

#[test]
fn postgres_only_sslmode_checks_what_libpq_checks_and_a_refusal_names_the_variable() {
    let stores = TlsStores::start();
    let other_ca = stores.file("other-ca.pem");
    let migrate = |changes: &[(&str, &str)]| stores.identsphere(&["migrate"], changes);
    let url = |host: &str, query: &str| stores.database_url(host, query);
    // A name the certificate does not carry, at the cluster's address.
    let misnamed = "not-the-server.test";

    let verified = migrate(&[]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    let require = url("localhost", "sslmode=require");
    let unchecked = migrate(&[("IDENTSPHERE_DATABASE_URL", &require), ("IDENTSPHERE_DATABASE_CA_FILE", "")]);
    assert!(unchecked.status.success(), "require needs no CA: {}", String::from_utf8_lossy(&unchecked.stderr));
    let chain_only = url(misnamed, "hostaddr=127.0.0.1&sslmode=verify-ca");
    let output = migrate(&[("IDENTSPHERE_DATABASE_URL", &chain_only)]);
    assert!(output.status.success(), "verify-ca checks no name: {}", String::from_utf8_lossy(&output.stderr));

    let line = failure_line(&migrate(&[("IDENTSPHERE_DATABASE_CA_FILE", &other_ca)]), 1);
    assert!(line.contains("IDENTSPHERE_DATABASE_CA_FILE") && line.contains("UnknownIssuer"), "{line}");
    let full = url(misnamed, "hostaddr=127.0.0.1&sslmode=verify-full");
    let line = failure_line(&migrate(&[("IDENTSPHERE_DATABASE_URL", &full)]), 1);
    assert!(line.contains("IDENTSPHERE_DATABASE_URL") && line.contains("not valid for name"), "{line}");
    // The cluster takes nothing but TLS: the successes above were encrypted.
    let plain = url("localhost", "sslmode=disable");
    let line = failure_line(&migrate(&[("IDENTSPHERE_DATABASE_URL", &plain), ("IDENTSPHERE_DATABASE_CA_FILE", "")]), 1);
    assert!(line.contains("IDENTSPHERE_DATABASE_URL") && line.contains("no encryption"), "{line}");

    // SCRAM bound to the TLS session: the server checks the binding against its own certificate.
    let bound = format!(
        "postgres://binder:secret@localhost:{}/postgres?sslmode=require&channel_binding=require",
        stores.pg_port
    );
    let output = migrate(&[("IDENTSPHERE_DATABASE_URL", &bound), ("IDENTSPHERE_DATABASE_CA_FILE", "")]);
    assert!(output.status.success(), "channel binding: {}", String::from_utf8_lossy(&output.stderr));

    // What start-up refuses before connecting: exit code 2, "configuration error".
    let missing = stores.file("missing.pem");
    let line = failure_line(&migrate(&[("IDENTSPHERE_DATABASE_CA_FILE", &missing)]), 2);
    assert!(line.starts_with("identsphere: configuration error: IDENTSPHERE_DATABASE_CA_FILE: cannot read"), "{line}");
    let line = failure_line(&migrate(&[("IDENTSPHERE_DATABASE_CA_FILE", &stores.file("server.key"))]), 2);
    assert!(line.starts_with("identsphere: configuration error: IDENTSPHERE_DATABASE_CA_FILE"), "{line}");
    let bad_mode = url("localhost", "sslmode=verify");
    let line = failure_line(&migrate(&[("IDENTSPHERE_DATABASE_URL", &bad_mode)]), 2);
    assert!(line.starts_with("identsphere: configuration error: IDENTSPHERE_DATABASE_URL: sslmode"), "{line}");
}

#[test]
fn postgres_only_the_server_refuses_to_start_on_a_store_whose_certificate_does_not_verify() {
    let stores = TlsStores::start();
    let other_ca = stores.file("other-ca.pem");
    let serve = |changes: &[(&str, &str)]| stores.identsphere(&["serve"], changes);

    let line = failure_line(&serve(&[("IDENTSPHERE_DATABASE_CA_FILE", &other_ca)]), 1);
    assert!(line.contains("IDENTSPHERE_DATABASE_CA_FILE") && line.contains("UnknownIssuer"), "{line}");
    let line = failure_line(&serve(&[("IDENTSPHERE_REDIS_CA_FILE", &other_ca)]), 1);
    assert!(line.contains("IDENTSPHERE_REDIS_CA_FILE") && line.contains("UnknownIssuer"), "{line}");
    // Without a CA file: the system's CAs, which do not know the throwaway one.
    let line = failure_line(&serve(&[("IDENTSPHERE_REDIS_CA_FILE", "")]), 1);
    assert!(line.contains("IDENTSPHERE_REDIS_URL") && line.contains("UnknownIssuer"), "{line}");
    let plain = stores.redis_url("redis");
    let line = failure_line(&serve(&[("IDENTSPHERE_REDIS_URL", &plain), ("IDENTSPHERE_REDIS_CA_FILE", "")]), 1);
    assert!(line.contains("IDENTSPHERE_REDIS_URL") && line.contains("rediss://"), "{line}");
    let line =
        failure_line(&serve(&[("IDENTSPHERE_REDIS_URL", &format!("{}/#insecure", stores.redis_url("rediss")))]), 2);
    assert!(line.starts_with("identsphere: configuration error: IDENTSPHERE_REDIS_URL"), "{line}");
}
