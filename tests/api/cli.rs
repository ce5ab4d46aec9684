//! The `identsphere` command: configuration errors are one clear line, `migrate` migrates.

use std::process::{Command, Output};

use crate::helpers::{fresh_data_dir, fresh_postgres, redis_url};

const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn identsphere(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_identsphere"));
    command.args(args).env_clear().env("IDENTSPHERE_LOG_FORMAT", "json");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_configuration_fails_with_one_line_naming_the_variable() {
    let redis = redis_url();
    let db = ("IDENTSPHERE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/unused");
    let redis = ("IDENTSPHERE_REDIS_URL", redis.as_str());
    let kek = ("IDENTSPHERE_KEY_ENCRYPTION_KEY", KEK);
    let cases = [
        (vec![db], "IDENTSPHERE_REDIS_URL"),
        (vec![redis], "IDENTSPHERE_DATABASE_URL"),
        (vec![db, redis], "IDENTSPHERE_KEY_ENCRYPTION_KEY"),
        (vec![db, redis, kek, ("IDENTSPHERE_ACCESS_TOKEN_TTL", "soon")], "IDENTSPHERE_ACCESS_TOKEN_TTL"),
        (vec![("IDENTSPHERE_KEY_ENCRYPTION_KEY", "dG9vIHNob3J0")], "IDENTSPHERE_KEY_ENCRYPTION_KEY"),
    ];
    for (env, expected) in cases {
        let output = identsphere(&["serve"], &env);
        assert_eq!(output.status.code(), Some(2), "{expected}: {}", stderr(&output));
        let text = stderr(&output);
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        assert!(text.starts_with(&format!("identsphere: configuration error: {expected}:")), "{text}");
        assert!(!text.contains("dG9vIHNob3J0"), "never echo the key: {text}");
    }
}

#[test]
fn an_unreachable_database_is_a_clear_error_not_a_panic() {
    let redis = redis_url();
    let output = identsphere(
        &[],
        &[
            ("IDENTSPHERE_DATABASE_URL", "postgres://postgres@127.0.0.1:1/nowhere"),
            ("IDENTSPHERE_REDIS_URL", redis.as_str()),
            ("IDENTSPHERE_KEY_ENCRYPTION_KEY", KEK),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(!text.contains("panicked"), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.starts_with("identsphere: applying migrations to IDENTSPHERE_DATABASE_URL"), "{text}");
}

#[actix_web::test]
async fn postgres_only_migrate_applies_the_schema_once_and_is_idempotent() {
    if !crate::helpers::postgres_run() {
        return;
    }
    let resources = fresh_postgres().await;
    let url = resources.database_url();
    // Migrating needs the database and nothing else.
    let env = [("IDENTSPHERE_DATABASE_URL", url.as_str())];
    for _ in 0..2 {
        let output = identsphere(&["migrate"], &env);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    actix_web::rt::spawn(connection);
    let tables: Vec<String> = client
        .query("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in ["memberships", "organizations", "password_credentials", "session_families", "signing_keys", "users"] {
        assert!(tables.iter().any(|t| t == table), "{table} missing from {tables:?}");
    }
}

#[test]
fn help_lists_the_subcommands() {
    let output = identsphere(&["--help"], &[]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("serve") && text.contains("migrate"), "{text}");
}

#[test]
fn migrate_without_a_database_url_migrates_the_embedded_store() {
    let resources = fresh_data_dir();
    let crate::helpers::Resources::Embedded { data_dir } = &*resources else { unreachable!() };
    let dir = data_dir.display().to_string();
    for _ in 0..2 {
        let output = identsphere(&["migrate"], &[("IDENTSPHERE_DATA_DIR", dir.as_str())]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let connection = rusqlite::Connection::open(data_dir.join("identsphere.db")).unwrap();
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('users', 'session_families', 'denylist')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 3);
}
