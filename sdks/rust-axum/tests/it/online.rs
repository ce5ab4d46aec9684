//! Online mode: IdentSphere itself is asked, so a logout is seen at once, and an outage is a 503.

use std::time::Duration;

use crate::helpers::{access, assert_refused, part, spawn_app, spawn_server};

#[actix_web::test]
async fn online_mode_sees_a_logout_at_once_where_local_verification_waits_for_the_feed() {
    let server = spawn_server().await;
    // A slow feed, so only online mode can know of the logout yet.
    let auth = server
        .builder()
        .revocation_poll_interval(Duration::from_secs(60))
        .online_cache_ttl(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let app = spawn_app(&auth).await;
    let token = access(&server.sign_up().await);

    let exact = app.get("/exact", Some(&token)).await;
    assert_eq!(exact.status(), 200);
    assert_eq!(
        exact.text().await.unwrap(),
        part(&token, 1)["org"].as_str().unwrap(),
        "the session as IdentSphere has it"
    );

    server.logout(&token).await;
    assert_refused(app.get("/exact", Some(&token)).await, 401, "token_revoked").await;
    assert_eq!(app.get("/me", Some(&token)).await.status(), 200, "local verification has not polled yet");
}

#[actix_web::test]
async fn online_answers_are_cached_briefly_and_an_unreachable_server_is_a_503() {
    let server = spawn_server().await;
    let auth = server.builder().online_cache_ttl(Duration::from_secs(30)).build().await.unwrap();
    let app = spawn_app(&auth).await;
    let cached = access(&server.sign_up().await);
    let uncached = access(&server.sign_up().await);
    assert_eq!(app.get("/exact", Some(&cached)).await.status(), 200);

    server.stop().await;
    assert_eq!(app.get("/exact", Some(&cached)).await.status(), 200, "answered from the cache");
    assert_refused(app.get("/exact", Some(&uncached)).await, 503, "service_unavailable").await;
    assert_eq!(app.get("/me", Some(&uncached)).await.status(), 200, "local verification goes on");
}
