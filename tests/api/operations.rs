//! What operators and SREs rely on: metrics that move, logs without secrets, graceful shutdown.
//! These run the real binary in a process of its own (process-wide metrics, signals, logs).

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, series, spawn_process_app};

async fn metrics(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.unwrap()
}

#[actix_web::test]
async fn metrics_move_with_real_traffic() {
    let app = spawn_process_app(&[]).await;
    let before = metrics(&app).await;
    assert_eq!(series(&before, "identsphere_build_info", &[r#"version="0.1.0""#]), Some(1.0));

    let user = app.signed_up_user().await;
    let wrong = app.login(&json!({ "email": user.email, "password": "not the password" })).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let second = app.second_session(&user).await;
    let rotated: Value = app.refresh(second["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(app.session(rotated["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    assert_eq!(app.session("not.a.token").await.status(), StatusCode::UNAUTHORIZED);
    let after = metrics(&app).await;

    let moved = |name: &str, labels: &[&str]| {
        series(&after, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{after}"))
    };
    assert_eq!(moved("identsphere_auth_registrations_total", &[r#"result="success""#]), 1.0);
    assert_eq!(moved("identsphere_auth_signins_total", &[r#"method="password""#, r#"result="success""#]), 1.0);
    assert_eq!(moved("identsphere_auth_signins_total", &[r#"result="invalid_credentials""#]), 1.0);
    assert_eq!(moved("identsphere_sessions_refreshes_total", &[r#"outcome="rotated""#]), 1.0);
    assert_eq!(moved("identsphere_tokens_verifications_total", &[r#"token="access""#, r#"result="valid""#]), 1.0);
    assert_eq!(moved("identsphere_tokens_verifications_total", &[r#"token="access""#, r#"result="invalid""#]), 1.0);
    assert_eq!(moved("identsphere_tokens_verifications_total", &[r#"token="refresh""#, r#"result="valid""#]), 1.0);
    // register + right login + wrong login: three Argon2 runs
    assert_eq!(moved("identsphere_password_hash_seconds_count", &[r#"operation="verify""#]), 2.0);
    assert_eq!(moved("identsphere_password_hash_seconds_count", &[r#"operation="hash""#]), 1.0);
    assert_eq!(moved("identsphere_password_queue_depth", &[]), 0.0, "nothing waits at rest");
    assert_eq!(moved("identsphere_actors_pending_operations", &[]), 0.0);
    assert!(moved("identsphere_actors_live", &[]) >= 1.0);
    assert!(
        moved("identsphere_http_request_duration_seconds_count", &[r#"route="/v1/auth/session""#, r#"status="2xx""#])
            >= 1.0
    );
    if app.backend == Backend::Postgres {
        assert!(moved("identsphere_store_pool_connections", &[r#"store="postgres""#, r#"state="size""#]) >= 1.0);
        assert!(moved("identsphere_store_pool_wait_seconds_count", &[r#"store="postgres""#]) >= 1.0);
    }
    for line in after.lines().filter(|l| l.starts_with("identsphere_")) {
        assert!(!line.contains(&user.email), "no user data in labels: {line}");
        assert!(!line.contains(user.tokens["user"]["id"].as_str().unwrap()), "no ids in labels: {line}");
    }
}

#[actix_web::test]
async fn metrics_can_move_to_their_own_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let app = spawn_process_app(&[("IDENTSPHERE_METRICS_BIND", bind.as_str())]).await;
    assert_error(app.get("/metrics").await, 404, "not_found", "invalid_request_error").await;
    let text = app.client.get(format!("http://{bind}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("identsphere_build_info"), "{text}");
    let other = app.client.get(format!("http://{bind}/v1/auth/session")).send().await.unwrap();
    assert_error(other, 404, "not_found", "invalid_request_error").await;
}

/// SIGTERM: `/readyz` fails at once while requests are still served for the delay, in-flight requests
/// finish, and the process exits cleanly.
#[actix_web::test]
async fn sigterm_drains_in_flight_requests_and_fails_readiness_first() {
    // The delay outlasts six sign-ins (Argon2 each) on a busy 2-core machine, so readiness is read while
    // the process still listens.
    let mut app = spawn_process_app(&[
        ("IDENTSPHERE_SHUTDOWN_DELAY", "5"),
        ("IDENTSPHERE_SHUTDOWN_TIMEOUT", "10"),
        ("IDENTSPHERE_LOG", "info"),
    ])
    .await;
    let user = app.signed_up_user().await;
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);

    let pid = app.process().id().to_string();
    let body = json!({ "email": user.email, "password": PASSWORD });
    let logins = join_all((0..6).map(|_| app.login(&body)));
    let terminate = async {
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
    };
    let (responses, ()) = tokio::join!(logins, terminate);
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK, "in-flight sign-ins finish");
    }
    assert_error(app.get("/readyz").await, 503, "service_unavailable", "api_error").await;
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "still serving during the delay");

    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = app.process().try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the process did not exit after SIGTERM");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "clean exit: {status:?}\n{}", app.log());
    assert!(app.log().contains("stopped: actors stopped, stores closed"), "{}", app.log());
}

/// The traffic of every flow at the most verbose level, then a search of the whole log for every secret
/// that went through: passwords, tokens, the password hash, the key-encryption key.
#[actix_web::test]
async fn the_most_verbose_log_holds_no_secret() {
    let app = spawn_process_app(&[("IDENTSPHERE_LOG", "trace")]).await;
    let user = app.signed_up_user().await;
    let wrong_password = "Wr0ng-but-secret-passphrase";
    app.login(&json!({ "email": user.email, "password": wrong_password })).await;
    let second = app.second_session(&user).await;
    let rotated: Value = app.refresh(second["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    app.session(rotated["access_token"].as_str().unwrap()).await;
    app.refresh(second["refresh_token"].as_str().unwrap()).await;
    app.logout(user.access(), "global").await;
    app.register(&json!({ "email": "weak@example.com", "password": "hunter2hunter2-not-common?" })).await;
    // The second factor and the lifecycle: a TOTP secret, recovery codes, codes, an mfa token, a reset link.
    let mfa_user = app.signed_up_user().await;
    let totp_secret = crate::mfa::enroll(&app, mfa_user.access()).await;
    let first_code = crate::mfa::code(&app, &totp_secret, 0);
    let confirm = json!({ "code": first_code, "refresh_token": mfa_user.refresh() });
    let confirmed: Value = crate::mfa::post_bearer(&app, "/v1/auth/mfa/totp/confirm", mfa_user.access(), &confirm)
        .await
        .json()
        .await
        .unwrap();
    let recovery_codes: Vec<String> =
        confirmed["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    let pending: Value =
        app.login(&json!({ "email": mfa_user.email, "password": PASSWORD })).await.json().await.unwrap();
    let mfa_token = pending["mfa_token"].as_str().unwrap().to_owned();
    let verified: Value = app
        .post("/v1/auth/mfa/verify", &json!({ "mfa_token": mfa_token, "code": recovery_codes[0] }))
        .await
        .json()
        .await
        .unwrap();
    app.post("/v1/auth/password/forgot", &json!({ "email": mfa_user.email })).await;
    let reset_token = crate::helpers::outbox_token(&app, "reset-password", &mfa_user.email).await;
    app.post("/v1/auth/password/reset", &json!({ "token": reset_token, "password": "another fine passphrase" })).await;

    let (user_id, _, _) = crate::helpers::ids(&user.tokens);
    let hash = app.db().await.password_hash(user_id).await;
    let log = app.log();
    assert!(log.contains("served"), "the log was captured: {log}");
    let mut secrets = vec![
        PASSWORD.to_owned(),
        wrong_password.to_owned(),
        "hunter2hunter2-not-common?".to_owned(),
        hash.clone(),
        hash.rsplit('$').next().unwrap().to_owned(),
    ];
    secrets.extend([totp_secret_base32(&totp_secret), first_code, mfa_token, reset_token]);
    secrets.extend(recovery_codes);
    for tokens in [&user.tokens, &second, &rotated, &confirmed, &verified] {
        for field in ["access_token", "refresh_token"] {
            let token = tokens[field].as_str().unwrap();
            secrets.push(token.to_owned());
            secrets.push(token.rsplit('.').next().unwrap().to_owned());
        }
    }
    if let crate::helpers::Resources::Embedded { data_dir } = &*app.resources {
        secrets.push(std::fs::read_to_string(data_dir.join("key-encryption-key")).unwrap().trim().to_owned());
    }
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret is in the log: {}…", &secret[..8.min(secret.len())]);
    }
}

fn totp_secret_base32(secret: &[u8]) -> String {
    totp_rs::Secret::new(secret.to_vec().into_boxed_slice()).to_base32()
}
