//! The revocation feed: what resource servers poll to refuse revoked tokens they verify locally.

use std::sync::Arc;

use identsphere::clock::Clock;
use identsphere::store::embedded::SqliteStore;
use identsphere::store::redis::RedisStore;
use identsphere_actors::Denylist;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

use crate::helpers::{
    Backend, Resources, TestApp, assert_error, backend, fresh_data_dir, fresh_postgres, redis_url, spawn_app_with,
};

const KEY: &str = "platform-key-for-tests-0123456789abcdef";

async fn feed(app: &TestApp, query: &str) -> reqwest::Response {
    app.client.get(app.url(&format!("/v1/revocations{query}"))).bearer_auth(KEY).send().await.unwrap()
}

async fn page(app: &TestApp, after: Option<&str>) -> Value {
    let query = after.map_or_else(String::new, |c| format!("?after={c}"));
    let response = feed(app, &query).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn ids(page: &Value, kind: &str) -> Vec<String> {
    page["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == kind)
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn claim(token: &str, name: &str) -> String {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap();
    serde_json::from_slice::<Value>(&payload).unwrap()[name].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn the_feed_needs_the_platform_key() {
    let app = spawn_app_with(&[("IDENTSPHERE_PLATFORM_API_KEY", KEY)]).await;
    assert_error(app.get("/v1/revocations").await, 401, "token_missing", "authentication_error").await;
    let wrong = app.client.get(app.url("/v1/revocations")).bearer_auth(format!("{KEY}x")).send().await.unwrap();
    assert_error(wrong, 401, "token_invalid", "authentication_error").await;
    let user = app.signed_up_user().await;
    let access = app.client.get(app.url("/v1/revocations")).bearer_auth(user.access()).send().await.unwrap();
    assert_error(access, 401, "token_invalid", "authentication_error").await;

    let unconfigured = spawn_app_with(&[]).await;
    let response = unconfigured.client.get(unconfigured.url("/v1/revocations")).bearer_auth(KEY).send().await.unwrap();
    assert_error(response, 401, "token_invalid", "authentication_error").await;
}

#[actix_web::test]
async fn logouts_and_reuse_appear_in_order_and_drop_out_when_their_tokens_expire() {
    let app = spawn_app_with(&[("IDENTSPHERE_PLATFORM_API_KEY", KEY)]).await;
    let start = page(&app, None).await;
    assert_eq!(start["revocations"], json!([]));
    let cursor = start["cursor"].as_str().unwrap().to_owned();

    let user = app.signed_up_user().await;
    assert_eq!(app.logout(user.access(), "local").await.status(), StatusCode::NO_CONTENT);
    let first = page(&app, Some(&cursor)).await;
    assert_eq!(ids(&first, "sid"), [claim(user.access(), "sid")]);
    assert_eq!(ids(&first, "jti"), [claim(user.access(), "jti")]);
    let expires_at = first["revocations"][0]["expires_at"].as_i64().unwrap();
    let now = app.clock.now().unix_timestamp();
    // The access lifetime and the clock-skew allowance: a token another replica minted, its clock ahead,
    // expires later than this replica's clock says (found by the fault harness, with replicas 3 s apart).
    assert!(
        (now + 959..=now + 961).contains(&expires_at),
        "until the family's access tokens expire on any replica's clock: {expires_at}"
    );

    let cursor = first["cursor"].as_str().unwrap().to_owned();
    assert_eq!(page(&app, Some(&cursor)).await["revocations"], json!([]), "nothing new after the cursor");

    let other = app.signed_up_user().await;
    assert_eq!(app.refresh(other.refresh()).await.status(), StatusCode::OK);
    app.clock.advance(Duration::seconds(11));
    assert_eq!(app.refresh(other.refresh()).await.status(), StatusCode::UNAUTHORIZED, "reuse");
    let next = page(&app, Some(&cursor)).await;
    assert_eq!(ids(&next, "sid"), [claim(other.access(), "sid")], "theft detection reaches resource servers");

    app.clock.advance(Duration::minutes(17));
    assert_eq!(page(&app, None).await["revocations"], json!([]), "expired entries drop out");
}

/// Found by the 30-minute fault run: a page of only expired entries came back empty (or short) though live
/// ones followed, and a reader that stops at a short page, as every SDK does, missed them all.
#[actix_web::test]
async fn a_page_is_short_only_at_the_end_of_the_feed_however_many_expired_entries_come_first() {
    let app = spawn_app_with(&[("IDENTSPHERE_PLATFORM_API_KEY", KEY)]).await;
    for _ in 0..3 {
        let user = app.signed_up_user().await;
        assert_eq!(app.logout(user.access(), "others").await.status(), StatusCode::NO_CONTENT);
        assert_eq!(app.logout(user.access(), "local").await.status(), StatusCode::NO_CONTENT);
    }
    // Those have expired (access lifetime and the clock-skew allowance); one more logout is live.
    app.clock.advance(Duration::minutes(20));
    let live = app.signed_up_user().await;
    assert_eq!(app.logout(live.access(), "local").await.status(), StatusCode::NO_CONTENT);
    let first = feed(&app, "?limit=2").await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    assert_eq!(ids(&first, "sid"), [claim(live.access(), "sid")], "the live entry on the first page: {first}");
    assert_eq!(ids(&first, "jti"), [claim(live.access(), "jti")], "{first}");
}

#[actix_web::test]
async fn bad_cursors_and_limits_are_invalid_requests() {
    let app = spawn_app_with(&[("IDENTSPHERE_PLATFORM_API_KEY", KEY)]).await;
    for (query, param) in [
        ("?after=abc", "after"),
        ("?after=1-", "after"),
        ("?limit=0", "limit"),
        ("?limit=x", "after"),
        ("?other=1", "after"),
    ] {
        let body = assert_error(feed(&app, query).await, 400, "invalid_request", "invalid_request_error").await;
        assert_eq!(body["error"]["param"], param, "{query}");
    }
    let limited = feed(&app, "?limit=1").await;
    assert_eq!(limited.status(), StatusCode::OK);
}

#[actix_web::test]
async fn postgres_only_every_replica_serves_the_same_feed() {
    if !crate::helpers::postgres_run() {
        return;
    }
    let app = spawn_app_with(&[("IDENTSPHERE_PLATFORM_API_KEY", KEY)]).await;
    assert_eq!(app.backend, Backend::Postgres);
    let replica = app.spawn_replica().await;
    let user = app.signed_up_user().await;
    assert_eq!(replica.logout(user.access(), "local").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(ids(&page(&app, None).await, "sid"), [claim(user.access(), "sid")]);
}

/// A revocation that matters only briefly (a logout with a nearly expired token) must not trim longer-lived
/// ones out of the feed: a resource server that starts, or falls behind, would then accept tokens of a
/// family revoked before.
#[actix_web::test]
async fn a_short_lived_revocation_does_not_trim_longer_lived_ones_from_the_feed() {
    let (_resources, feed): (Arc<Resources>, Arc<dyn Denylist>) = match backend() {
        Backend::Postgres => {
            let resources = fresh_postgres().await;
            let Resources::Postgres { redis_prefix, .. } = resources.as_ref() else { unreachable!() };
            // What a server with the default lifetimes keeps entries for (the refresh-token lifetime).
            let store =
                RedisStore::connect(&redis_url(), None, redis_prefix.clone(), Duration::days(30)).await.unwrap();
            (resources, Arc::new(store))
        }
        Backend::Embedded => {
            let resources = fresh_data_dir();
            let Resources::Embedded { data_dir } = resources.as_ref() else { unreachable!() };
            let store = SqliteStore::open(data_dir).unwrap();
            (resources, Arc::new(store))
        }
    };
    let clock = Clock::system();
    let now = clock.now();
    let family = Uuid::new_v4();
    feed.deny_families(&[family], now + Duration::minutes(15), now).await.unwrap();
    // More entries than a Redis stream node holds (100), so its approximate trimming has a whole node to drop.
    let others: Vec<Uuid> = (0..150).map(|_| Uuid::new_v4()).collect();
    feed.deny_families(&others, now + Duration::minutes(15), now).await.unwrap();
    actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;

    let now = clock.now();
    feed.deny_token(Uuid::new_v4(), now + Duration::milliseconds(1), now).await.unwrap();
    let page = feed.revocations_after(None, 1000, now).await.unwrap();
    assert!(
        page.revocations.iter().any(|r| r.id == family),
        "the family's revocation left the feed while its tokens live ({} entries remain)",
        page.revocations.len()
    );
}

/// Redis restarted without persistence loses the denylist and the feed; the revocations are durable in
/// Postgres, so every replica must rebuild both before it accepts a token again, and a resource server
/// reading the feed (afresh or from its cursor) must see them again.
#[actix_web::test]
async fn postgres_only_redis_data_loss_revives_no_revoked_token() {
    if !crate::helpers::postgres_run() {
        return;
    }
    let app = spawn_app_with(&[("IDENTSPHERE_PLATFORM_API_KEY", KEY)]).await;
    let replica = app.spawn_replica().await;
    let user = app.signed_up_user().await;
    let cursor = page(&app, None).await["cursor"].as_str().unwrap().to_owned();
    assert_eq!(app.logout(user.access(), "local").await.status(), StatusCode::NO_CONTENT);
    let after_logout = page(&app, Some(&cursor)).await["cursor"].as_str().unwrap().to_owned();
    let sid = claim(user.access(), "sid");
    let sessions = |server: &TestApp| {
        let request = server.client.get(server.url("/v1/auth/sessions")).bearer_auth(user.access());
        async move { request.send().await.unwrap() }
    };

    app.resources.lose_redis_data().await;
    for server in [&replica, &app] {
        assert_error(sessions(server).await, 401, "token_revoked", "authentication_error").await;
    }
    assert_eq!(ids(&page(&replica, None).await, "sid"), std::slice::from_ref(&sid), "a new reader of the feed sees it");
    assert_eq!(
        ids(&page(&app, Some(&after_logout)).await, "sid"),
        std::slice::from_ref(&sid),
        "so does one with its cursor"
    );

    // A replica that starts after the loss, before any other has noticed it.
    app.resources.lose_redis_data().await;
    let late = app.spawn_replica().await;
    assert_error(sessions(&late).await, 401, "token_revoked", "authentication_error").await;
    assert_eq!(ids(&page(&late, None).await, "sid"), [sid]);
}
