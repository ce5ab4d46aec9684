//! The JWKS client: one refetch after a key rotation, and a flood of unknown `kid`s costs at most one
//! fetch per interval, counted at the server itself (its `/metrics`). The counts are process-wide, so
//! the tests that read them run in a process of their own.

use std::time::{Duration, Instant};

use serde_json::json;
use time::Duration as Span;
use uuid::Uuid;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::helpers::{access, assert_refused, in_own_process, part, spawn_app, spawn_server};

#[test]
fn after_a_key_rotation_new_tokens_verify_with_one_jwks_refetch() {
    in_own_process("jwks::after_a_key_rotation_new_tokens_verify_with_one_jwks_refetch", one_refetch_after_rotation);
}

async fn one_refetch_after_rotation() {
    let server = spawn_server().await;
    let auth = server.builder().jwks_refetch_interval(Duration::from_millis(500)).build().await.unwrap();
    let app = spawn_app(&auth).await;
    let tokens = server.sign_up().await;
    let old = access(&tokens);
    assert_eq!(app.get("/me", Some(&old)).await.status(), 200);
    let first = part(&old, 0)["kid"].as_str().unwrap().to_owned();

    // A scheduled rotation: the next key is published now and signs ten minutes later (the server
    // reloads its keys every second here).
    server.clock.advance(Span::days(30) - Span::minutes(5));
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.published_kids().await.len() < 2 {
        assert!(Instant::now() < deadline, "the next key was never published");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.clock.advance(Span::minutes(11));
    let email = tokens["user"]["email"].as_str().unwrap();
    let new = access(&server.login(email).await);
    assert_ne!(part(&new, 0)["kid"], first.as_str(), "the new key signs");

    let before = server.jwks_served().await;
    for token in [&new, &new, &old, &new] {
        assert_eq!(app.get("/me", Some(token)).await.status(), 200, "tokens of both keys verify");
    }
    assert_eq!(server.jwks_served().await - before, 1, "one refetch for the new kid, then the cache");
}

#[test]
fn a_flood_of_unknown_kids_costs_at_most_one_jwks_fetch_per_interval() {
    in_own_process("jwks::a_flood_of_unknown_kids_costs_at_most_one_jwks_fetch_per_interval", flood_of_unknown_kids);
}

async fn flood_of_unknown_kids() {
    let server = spawn_server().await;
    let interval = Duration::from_secs(1);
    let auth = server.builder().jwks_refetch_interval(interval).build().await.unwrap();
    let app = spawn_app(&auth).await;
    let claims = part(&access(&server.sign_up().await), 1);
    let payload = B64.encode(claims.to_string());
    // A token under a new kid each time; the signature is never reached.
    let forged = || {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": Uuid::new_v4().to_string()});
        format!("{}.{payload}.{}", B64.encode(header.to_string()), B64.encode([7u8; 256]))
    };

    let before = server.jwks_served().await;
    let started = Instant::now();
    let mut sent = 0;
    // Two and a half intervals of flood; on a machine so busy that the second refetch was not due yet,
    // on until it was (30 s at most). The upper bound is on the time the flood really took, and holds
    // however slow the machine: it is the rate limit's.
    let mut fetches = 0;
    while (started.elapsed() < Duration::from_millis(2500) || fetches < 2)
        && started.elapsed() < Duration::from_secs(30)
    {
        let mut wave = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let (http, url, token) = (app.http.clone(), format!("{}/me", app.address), forged());
            wave.spawn(async move { http.get(url).bearer_auth(token).send().await.unwrap() });
        }
        while let Some(response) = wave.join_next().await {
            assert_refused(response.unwrap(), 401, "token_invalid").await;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fetches = server.jwks_served().await - before;
    }
    let elapsed = started.elapsed();
    let allowed = elapsed.as_secs_f64() / interval.as_secs_f64() + 1.0;
    assert!(fetches as f64 <= allowed, "{fetches} JWKS fetches for {sent} forged kids in {elapsed:?}");
    assert!(fetches >= 2, "unknown kids do trigger a refetch once the interval has passed: {fetches}");
}

#[actix_web::test]
async fn discovery_reads_the_issuer_and_the_keys_from_the_openid_configuration() {
    let server = spawn_server().await;
    let auth = server.builder().discovery().build().await.unwrap();
    assert_eq!(auth.issuer(), server.address);
    let app = spawn_app(&auth).await;
    assert_eq!(app.get("/me", Some(&access(&server.sign_up().await))).await.status(), 200);

    let nowhere = identsphere_axum::IdentSphere::builder(format!("{}/nothing-here", server.address)).discovery();
    assert!(matches!(nowhere.build().await, Err(identsphere_axum::BuildError::Discovery(_))));
}
