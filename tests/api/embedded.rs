//! What only the embedded store has: a data directory that survives restarts and belongs to one process.

use std::os::unix::fs::PermissionsExt as _;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, Resources, assert_error, config_for, spawn_app_on};

/// Register, log in, refresh and log out one session; stop; start again on the same directory: the
/// live session still refreshes, the revoked one stays revoked (its access token too), and JWKS
/// publishes the same key.
#[actix_web::test]
async fn sessions_revocations_and_keys_survive_a_restart() {
    let app = spawn_app_on(Backend::Embedded, &[]).await;
    let user = app.signed_up_user().await;
    let live = app.second_session(&user).await;
    let live: Value = app.refresh(live["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(app.logout(user.access(), "local").await.status(), StatusCode::NO_CONTENT);
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();

    let app = app.restart_with(|_| {}).await;
    let next = app.refresh(live["refresh_token"].as_str().unwrap()).await;
    assert_eq!(next.status(), StatusCode::OK, "the live session refreshes after the restart");
    assert_eq!(app.session(live["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    assert_error(app.session(user.access()).await, 401, "token_revoked", "authentication_error").await;
    assert_error(app.refresh(user.refresh()).await, 401, "token_revoked", "authentication_error").await;
    let again: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(again, jwks, "the same key");
    let login = app.login(&json!({ "email": user.email, "password": crate::helpers::PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_second_server_on_the_same_directory_refuses_to_start() {
    let app = spawn_app_on(Backend::Embedded, &[]).await;
    let config = config_for(&app.resources, &[]);
    let err = identsphere::app::Application::build(config, app.clock.clone()).await.unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("is in use by another IdentSphere process"), "{message}");
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK, "the first one is unharmed");
}

#[actix_web::test]
async fn the_data_directory_and_its_secrets_are_owner_only() {
    let app = spawn_app_on(Backend::Embedded, &[]).await;
    app.signed_up_user().await;
    let Resources::Embedded { data_dir } = &*app.resources else { unreachable!() };
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data_dir), 0o700);
    for file in ["key-encryption-key", "identsphere.db", "identsphere.lock"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    let db = std::fs::read(data_dir.join("identsphere.db")).unwrap();
    let kek = std::fs::read_to_string(data_dir.join("key-encryption-key")).unwrap();
    assert!(!db.windows(kek.trim().len()).any(|w| w == kek.trim().as_bytes()), "the KEK is not in the database");
}

#[actix_web::test]
async fn a_forced_key_rotation_needs_the_embedded_server_stopped() {
    let app = spawn_app_on(Backend::Embedded, &[]).await;
    let resources = std::sync::Arc::clone(&app.resources);
    let Resources::Embedded { data_dir } = &*resources else { unreachable!() };
    let rotate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_identsphere"))
            .args(["keys", "rotate"])
            .env_clear()
            .env("IDENTSPHERE_DATA_DIR", data_dir)
            .output()
            .unwrap()
    };
    let refused = rotate();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("in use by another IdentSphere process"));

    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    app.stop().await;
    // Stopped (its actors let go of the store on their own threads): the rotation goes through.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rotated = loop {
        let output = rotate();
        if output.status.success() || std::time::Instant::now() > deadline {
            break output;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let new = String::from_utf8(rotated.stdout).unwrap().trim().to_owned();
    assert_ne!(jwks["keys"][0]["kid"], new);
}
