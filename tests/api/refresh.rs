//! Refresh rotation, the grace window, reuse detection, the cookie flow and concurrency across replicas.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Backend, PUBLIC_BASE_URL, assert_error, ids, set_cookies, spawn_app, spawn_app_with};

async fn refreshed(app: &crate::helpers::TestApp, refresh_token: &str) -> Value {
    let response = app.refresh(refresh_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[actix_web::test]
async fn refresh_rotates_the_pair_within_the_same_family() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let response = app.refresh(user.refresh()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    let next: Value = response.json().await.unwrap();
    assert_ne!(next["refresh_token"], user.tokens["refresh_token"]);
    assert_ne!(next["access_token"], user.tokens["access_token"]);
    assert_eq!(next["session"]["id"], user.tokens["session"]["id"]);
    assert_eq!(next["session"]["auth_time"], user.tokens["session"]["auth_time"]);
    assert_eq!(next["user"], user.tokens["user"]);
    assert!(cookies["identsphere_rt"].contains(next["refresh_token"].as_str().unwrap()));
    assert_eq!(app.session(next["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    assert_eq!(app.session(user.access()).await.status(), StatusCode::OK, "rotation revokes nothing");
    let again = refreshed(&app, next["refresh_token"].as_str().unwrap()).await;
    assert_ne!(again["refresh_token"], next["refresh_token"]);
}

#[actix_web::test]
async fn a_replay_within_the_grace_window_gets_the_same_successor_and_revokes_nothing() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let first = refreshed(&app, user.refresh()).await;
    // Nearly the whole window (real time passes too between the two requests).
    app.clock.advance(Duration::seconds(8));
    let replay = refreshed(&app, user.refresh()).await;
    assert_eq!(replay["refresh_token"], first["refresh_token"], "the very same successor");
    assert_ne!(replay["access_token"], first["access_token"]);
    for access in [&first["access_token"], &replay["access_token"]] {
        assert_eq!(app.session(access.as_str().unwrap()).await.status(), StatusCode::OK);
    }
    refreshed(&app, first["refresh_token"].as_str().unwrap()).await;
}

#[actix_web::test]
async fn reuse_after_the_grace_window_revokes_the_whole_family_at_once() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let other_session = app.second_session(&user).await;
    let successor = refreshed(&app, user.refresh()).await;
    app.clock.advance(Duration::seconds(11));

    let reuse = app.refresh(user.refresh()).await;
    assert_error(reuse, 401, "refresh_token_reused", "authentication_error").await;
    let next = app.refresh(successor["refresh_token"].as_str().unwrap()).await;
    assert_error(next, 401, "token_revoked", "authentication_error").await;
    for access in [user.access(), successor["access_token"].as_str().unwrap()] {
        assert_error(app.session(access).await, 401, "token_revoked", "authentication_error").await;
    }
    let (_, _, sid) = ids(&user.tokens);
    let (_, reason) = app.db().await.family(sid).await;
    assert_eq!(reason.as_deref(), Some("refresh_token_reused"));

    let untouched = other_session["access_token"].as_str().unwrap();
    assert_eq!(app.session(untouched).await.status(), StatusCode::OK, "other families live on");
}

#[actix_web::test]
async fn a_token_spent_two_rotations_ago_is_reuse_even_within_the_window() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let second = refreshed(&app, user.refresh()).await;
    refreshed(&app, second["refresh_token"].as_str().unwrap()).await;
    let reuse = app.refresh(user.refresh()).await;
    assert_error(reuse, 401, "refresh_token_reused", "authentication_error").await;
}

#[actix_web::test]
async fn with_the_grace_window_off_any_replay_is_reuse() {
    let app = spawn_app_with(&[("IDENTSPHERE_REFRESH_REUSE_GRACE", "0")]).await;
    let user = app.signed_up_user().await;
    refreshed(&app, user.refresh()).await;
    app.clock.advance(Duration::seconds(1));
    assert_error(app.refresh(user.refresh()).await, 401, "refresh_token_reused", "authentication_error").await;
}

#[actix_web::test]
async fn a_family_ends_at_its_absolute_lifetime() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    app.clock.advance(Duration::days(29));
    let late = refreshed(&app, user.refresh()).await;
    let access_exp = late["expires_in"].as_i64().unwrap();
    assert_eq!(access_exp, 900);
    app.clock.advance(Duration::days(1));
    let expired = app.refresh(late["refresh_token"].as_str().unwrap()).await;
    assert_error(expired, 401, "token_expired", "authentication_error").await;
}

#[actix_web::test]
async fn refresh_without_a_token_or_with_garbage_is_refused() {
    let app = spawn_app().await;
    let none = app.client.post(app.url("/v1/auth/refresh")).send().await.unwrap();
    assert_error(none, 401, "token_missing", "authentication_error").await;
    let empty = app.post("/v1/auth/refresh", &json!({})).await;
    assert_error(empty, 401, "token_missing", "authentication_error").await;
    assert_error(app.refresh("garbage").await, 401, "token_invalid", "authentication_error").await;
}

#[actix_web::test]
async fn the_refresh_cookie_works_from_our_origin_and_is_refused_cross_site() {
    let app = spawn_app_with(&[("IDENTSPHERE_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    let user = app.signed_up_user().await;
    let by_cookie = |token: String, headers: Vec<(&'static str, &'static str)>| {
        let mut request =
            app.client.post(app.url("/v1/auth/refresh")).header("Cookie", format!("identsphere_rt={token}"));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };

    let evil = by_cookie(user.refresh().to_owned(), vec![("Origin", "https://evil.example")]).await.unwrap();
    assert_error(evil, 403, "csrf_rejected", "permission_error").await;
    let cross = by_cookie(user.refresh().to_owned(), vec![("Sec-Fetch-Site", "cross-site")]).await.unwrap();
    assert_error(cross, 403, "csrf_rejected", "permission_error").await;

    let ours = by_cookie(user.refresh().to_owned(), vec![("Origin", PUBLIC_BASE_URL)]).await.unwrap();
    assert_eq!(ours.status(), StatusCode::OK);
    let next: Value = ours.json().await.unwrap();
    let allowed =
        by_cookie(next["refresh_token"].as_str().unwrap().to_owned(), vec![("Origin", "https://app.example.com")])
            .await
            .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);

    // A token in the body is not a cookie credential: the origin does not matter.
    let other = app.signed_up_user().await;
    let body = app
        .client
        .post(app.url("/v1/auth/refresh"))
        .header("Origin", "https://evil.example")
        .json(&json!({ "refresh_token": other.refresh() }))
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), StatusCode::OK);
}

/// 32 concurrent refreshes of one token — spread over two replicas sharing Postgres and Redis, or on
/// the one embedded node: every one gets `200` and the same successor, and the family rotates exactly
/// once.
#[actix_web::test]
async fn concurrent_refreshes_rotate_the_family_exactly_once_across_replicas() {
    let app = spawn_app().await;
    let replica = match app.backend {
        Backend::Postgres => Some(app.spawn_replica().await),
        Backend::Embedded => None,
    };
    let other = replica.as_ref().unwrap_or(&app);
    let user = app.signed_up_user().await;

    let responses = join_all((0..32).map(|i| if i % 2 == 0 { &app } else { other }.refresh(user.refresh()))).await;
    let mut successors = Vec::new();
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        successors.push(body["refresh_token"].as_str().unwrap().to_owned());
        let access = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(app.session(&access).await.status(), StatusCode::OK);
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "one successor for all");

    let (_, _, sid) = ids(&user.tokens);
    let (rotations, _) = app.db().await.family(sid).await;
    assert_eq!(rotations, 1);
    let next = other.refresh(&successors[0]).await;
    assert_eq!(next.status(), StatusCode::OK, "the successor is live");
}
