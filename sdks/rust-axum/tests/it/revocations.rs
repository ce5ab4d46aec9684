//! The revocation feed: logout and refresh-token reuse reach the axum app within the poll interval
//! plus a second, and a server outage leaves the app serving with what it knows.

use std::time::{Duration, Instant};

use time::Duration as Span;

use crate::helpers::{
    App, PASSKEYS, access, assert_refused, in_own_process, refresh, spawn_app, spawn_server, spawn_server_with,
};

/// The poll interval of `Server::builder`.
const POLL: Duration = Duration::from_millis(300);

/// Waits until the app refuses `token`, and returns how long that took.
async fn refused_after(app: &App, token: &str) -> Duration {
    let started = Instant::now();
    loop {
        let response = app.get("/me", Some(token)).await;
        if response.status() != 200 {
            assert_refused(response, 401, "token_revoked").await;
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the revoked token was never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn after_logout_the_app_refuses_the_token_within_the_poll_interval_plus_a_second() {
    let server = spawn_server().await;
    let app = spawn_app(&server.sdk().await).await;
    let token = access(&server.sign_up().await);
    let bystander = access(&server.sign_up().await);
    assert_eq!(app.get("/me", Some(&token)).await.status(), 200);

    server.logout(&token).await;
    let took = refused_after(&app, &token).await;
    assert!(took <= POLL + Duration::from_secs(1), "refused after {took:?}");
    assert_eq!(app.get("/me", Some(&bystander)).await.status(), 200, "other sessions are untouched");
}

#[actix_web::test]
async fn after_refresh_token_reuse_the_app_refuses_the_family_within_the_poll_interval_plus_a_second() {
    let server = spawn_server().await;
    let app = spawn_app(&server.sdk().await).await;
    let tokens = server.sign_up().await;
    let rotated = server.refresh(&refresh(&tokens)).await;
    assert_eq!(rotated.status(), 200);
    let successor = access(&rotated.json().await.unwrap());
    for token in [access(&tokens), successor.clone()] {
        assert_eq!(app.get("/me", Some(&token)).await.status(), 200);
    }

    server.clock.advance(Span::seconds(11)); // past the grace window
    let reused = server.refresh(&refresh(&tokens)).await;
    assert_refused(reused, 401, "refresh_token_reused").await;
    let took = refused_after(&app, &successor).await;
    assert!(took <= POLL + Duration::from_secs(1), "refused after {took:?}");
    assert_refused(app.get("/me", Some(&access(&tokens))).await, 401, "token_revoked").await;
}

#[actix_web::test]
async fn a_passkey_session_is_verified_and_revoked_like_any_other() {
    let server = spawn_server_with(&PASSKEYS).await;
    let app = spawn_app(&server.sdk().await).await;
    let token = access(&server.passkey_session().await);
    // A user-verified passkey is multi-factor: the aal2 gate admits it without a step-up.
    assert_eq!(app.get("/aal2", Some(&token)).await.status(), 200);
    assert_eq!(app.get("/me", Some(&token)).await.status(), 200);

    server.logout(&token).await;
    let took = refused_after(&app, &token).await;
    assert!(took <= POLL + Duration::from_secs(1), "refused after {took:?}");
}

#[test]
fn with_the_server_down_valid_tokens_still_pass_and_known_revocations_still_hold() {
    // It reads the SDK's own metrics, which every SDK in the process records to.
    in_own_process(
        "revocations::with_the_server_down_valid_tokens_still_pass_and_known_revocations_still_hold",
        server_down,
    );
}

async fn server_down() {
    let server = spawn_server().await;
    let auth = server.sdk().await;
    let app = spawn_app(&auth).await;
    let revoked = access(&server.sign_up().await);
    let valid = access(&server.sign_up().await);
    server.logout(&revoked).await;
    refused_after(&app, &revoked).await;
    assert_eq!(auth.revocation_feed().unwrap().consecutive_failures, 0);

    server.stop().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while auth.revocation_feed().unwrap().consecutive_failures < 2 {
        assert!(Instant::now() < deadline, "the poller never noticed the outage");
        tokio::time::sleep(POLL / 3).await;
    }
    assert_eq!(app.get("/me", Some(&valid)).await.status(), 200, "served with the cached keys");
    assert_refused(app.get("/me", Some(&revoked)).await, 401, "token_revoked").await;
    let status = auth.revocation_feed().unwrap();
    assert!(status.synced && status.entries >= 1, "{status:?}");

    // The SDK's metrics go to this process's recorder, which any IdentSphere here serves at /metrics.
    let witness = spawn_server().await;
    let text = witness.http.get(witness.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("identsphere_sdk_revocation_feed_errors_total "))
        .map(|v| v.parse::<f64>().unwrap());
    assert!(errors.is_some_and(|e| e >= 2.0), "the outage is counted: {errors:?}");
    assert!(text.lines().any(|l| l == "identsphere_sdk_revocation_feed_up 0"), "and the feed is reported down");
}
