//! Key rotation: scheduled (published ahead, switched at the same instant everywhere, retired after its
//! last token) and forced (`identsphere keys rotate`), for the signing keys and the refresh-token MAC key.

use std::time::{Duration as Wait, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{PASSWORD, PUBLIC_BASE_URL, TestApp, User, assert_error, postgres_run, redis_url, spawn_app_with};

const FAST_CHECKS: (&str, &str) = ("IDENTSPHERE_KEY_CHECK_INTERVAL", "1");

fn kid(token: &str) -> String {
    let header: Value = serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

async fn jwks(app: &TestApp) -> JwkSet {
    app.get("/.well-known/jwks.json").await.json().await.unwrap()
}

async fn published(app: &TestApp) -> Vec<String> {
    jwks(app).await.keys.iter().map(|k| k.common.key_id.clone().unwrap()).collect()
}

/// Polls the JWKS until its key ids satisfy `done` (the servers reload every second here).
async fn wait_for_keys(app: &TestApp, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Wait::from_secs(10);
    loop {
        let kids = published(app).await;
        if done(&kids) {
            return kids;
        }
        assert!(Instant::now() < deadline, "JWKS never got there: {kids:?}");
        actix_web::rt::time::sleep(Wait::from_millis(100)).await;
    }
}

async fn access_token(app: &TestApp, user: &User) -> String {
    let body: Value = app.login(&json!({ "email": user.email, "password": PASSWORD })).await.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Verifies with the jsonwebtoken crate through the JWKS, as a resource server would.
async fn verifies_through_jwks(app: &TestApp, token: &str) -> bool {
    let jwks = jwks(app).await;
    let Some(jwk) = jwks.find(&kid(token)) else { return false };
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[PUBLIC_BASE_URL]);
    // The server's clock is ahead of the system's in these tests: check `exp` at IdentSphere instead.
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation).is_ok()
}

#[actix_web::test]
async fn a_scheduled_rotation_is_published_ahead_and_the_old_key_outlives_its_tokens() {
    let app = spawn_app_with(&[FAST_CHECKS]).await;
    let user = app.signed_up_user().await;
    let first = kid(user.access());
    assert_eq!(published(&app).await, std::slice::from_ref(&first));

    // 30 days minus 5 minutes: due, so the next key is published now and signs 10 minutes later
    // (twice the JWKS cache lifetime), at A.
    app.clock.advance(Duration::days(30) - Duration::minutes(5));
    let kids = wait_for_keys(&app, |kids| kids.len() == 2).await;
    let next = kids.iter().find(|k| **k != first).unwrap().clone();
    let before = access_token(&app, &user).await;
    assert_eq!(kid(&before), first, "the next key is published but does not sign yet");

    app.clock.advance(Duration::minutes(11)); // A + 1 min
    let after = access_token(&app, &user).await;
    assert_eq!(kid(&after), next, "the next key signs from its activation");
    for token in [&before, &after] {
        assert_eq!(app.session(token).await.status(), StatusCode::OK, "tokens of both keys verify");
        assert!(verifies_through_jwks(&app, token).await);
    }

    // `before` lives until A + 5 min; the old key stays published 5 minutes (the JWKS cache) beyond the
    // last token it could have signed: until A + 20 min.
    app.clock.advance(Duration::minutes(3)); // A + 4 min
    assert_eq!(app.session(&before).await.status(), StatusCode::OK);
    app.clock.advance(Duration::minutes(14)); // A + 18 min
    actix_web::rt::time::sleep(Wait::from_millis(1500)).await;
    assert_eq!(published(&app).await.len(), 2, "still published while caches may hold it");
    assert_error(app.session(&before).await, 401, "token_expired", "authentication_error").await;
    app.clock.advance(Duration::minutes(3)); // A + 21 min
    assert_eq!(wait_for_keys(&app, |kids| kids.len() == 1).await, [next]);
    let fresh = access_token(&app, &user).await;
    assert_eq!(app.session(&fresh).await.status(), StatusCode::OK);
}

/// The refresh-token MAC key rotates on the signing keys' schedule: refresh tokens minted after the switch
/// carry the next key, and those minted before still refresh until they expire.
#[actix_web::test]
async fn a_scheduled_rotation_macs_new_refresh_tokens_with_the_next_key_and_old_ones_still_refresh() {
    let app = spawn_app_with(&[FAST_CHECKS, ("IDENTSPHERE_KEY_ROTATION_INTERVAL", "86400")]).await;
    let user = app.signed_up_user().await;
    let first = kid(user.refresh());
    assert!(first.starts_with("rt-"), "{first}");

    app.clock.advance(Duration::days(1) - Duration::minutes(5));
    wait_for_keys(&app, |kids| kids.len() == 2).await;
    let before: Value = app.refresh(user.refresh()).await.json().await.unwrap();
    let before = before["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(kid(&before), first, "the next MAC key is stored ahead but does not MAC yet");

    app.clock.advance(Duration::minutes(11));
    let response = app.refresh(&before).await;
    assert_eq!(response.status(), StatusCode::OK, "a refresh token of the previous MAC key still refreshes");
    let after: Value = response.json().await.unwrap();
    let after = after["refresh_token"].as_str().unwrap().to_owned();
    let next = kid(&after);
    assert!(next.starts_with("rt-") && next != first, "the successor carries the next MAC key: {next}");
    let other = app.signed_up_user().await;
    assert_eq!(kid(other.refresh()), next, "new sign-ins get the next MAC key");
    assert_eq!(app.refresh(&after).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn postgres_only_replicas_never_sign_with_different_keys_after_the_switch() {
    if !postgres_run() {
        return;
    }
    let app = spawn_app_with(&[FAST_CHECKS]).await;
    let replica = app.spawn_replica().await;
    let user = app.signed_up_user().await;
    let first = kid(user.access());

    app.clock.advance(Duration::days(30) - Duration::minutes(5));
    wait_for_keys(&app, |kids| kids.len() == 2).await;
    wait_for_keys(&replica, |kids| kids.len() == 2).await;
    for server in [&app, &replica] {
        assert_eq!(kid(&access_token(server, &user).await), first, "both still sign with the old key");
    }
    app.clock.advance(Duration::minutes(11));
    let a = kid(&access_token(&app, &user).await);
    let b = kid(&access_token(&replica, &user).await);
    assert_ne!(a, first);
    assert_eq!(a, b, "both switched to the same key");
}

#[actix_web::test]
async fn postgres_only_a_forced_rotation_takes_over_at_once_and_drops_the_old_key() {
    if !postgres_run() {
        return;
    }
    let app = spawn_app_with(&[FAST_CHECKS]).await;
    let user = app.signed_up_user().await;
    let old = user.access().to_owned();
    let old_refresh = user.refresh().to_owned();
    let redis = redis_url();
    let url = app.resources.database_url();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_identsphere"))
        .args(["keys", "rotate"])
        .env_clear()
        .env("IDENTSPHERE_DATABASE_URL", &url)
        .env("IDENTSPHERE_REDIS_URL", &redis)
        .env("IDENTSPHERE_KEY_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let new = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    // The servers reload every second here; the system clock, not the test's, dates the rotation.
    app.clock.advance(Duration::seconds(1));
    assert_eq!(wait_for_keys(&app, |kids| kids == std::slice::from_ref(&new)).await, std::slice::from_ref(&new));
    assert_error(app.session(&old).await, 401, "token_invalid", "authentication_error").await;
    assert_eq!(kid(&access_token(&app, &user).await), new);
    // The MAC key is replaced at once too: a stolen refresh token stops working.
    assert_error(app.refresh(&old_refresh).await, 401, "token_invalid", "authentication_error").await;
    let body: Value = app.login(&json!({ "email": user.email, "password": PASSWORD })).await.json().await.unwrap();
    let fresh = body["refresh_token"].as_str().unwrap();
    assert_ne!(kid(fresh), kid(&old_refresh), "new refresh tokens carry the new MAC key");
    assert_eq!(app.refresh(fresh).await.status(), StatusCode::OK);
}
