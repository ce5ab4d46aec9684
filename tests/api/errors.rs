//! Every layer answers in the envelope: routing, extractors, body limits, stores that go away.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ChaosProxy, PASSWORD, assert_error, spawn_app, spawn_app_with};

#[actix_web::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let app = spawn_app().await;
    assert_error(app.get("/v1/nothing-here").await, 404, "not_found", "invalid_request_error").await;
    assert_error(app.post("/", &json!({})).await, 404, "not_found", "invalid_request_error").await;
    let response = app.get("/v1/auth/login").await;
    assert_eq!(response.headers()["allow"], "POST");
    assert_error(response, 405, "method_not_allowed", "invalid_request_error").await;
    let response = app.client.delete(app.url("/v1/auth/session")).send().await.unwrap();
    assert_eq!(response.headers()["allow"], "GET");
    assert_error(response, 405, "method_not_allowed", "invalid_request_error").await;
}

#[actix_web::test]
async fn malformed_bodies_are_invalid_requests_naming_the_field() {
    let app = spawn_app().await;
    let raw = |body: &'static str| {
        app.client.post(app.url("/v1/auth/register")).header("Content-Type", "application/json").body(body).send()
    };
    let cases: [(&str, Option<&str>); 7] = [
        ("{not json", None),
        ("", None),
        ("[1, 2]", None),
        (r#"{"email": "a@example.com"}"#, Some("password")),
        (r#"{"email": "a@example.com", "password": "long enough password", "is_admin": true}"#, Some("is_admin")),
        (r#"{"email": 42, "password": "long enough password"}"#, Some("email")),
        (r#"{"email": "a@example.com", "password": ["x"]}"#, Some("password")),
    ];
    for (body, param) in cases {
        let response = raw(body).await.unwrap();
        let error = assert_error(response, 400, "invalid_request", "invalid_request_error").await;
        assert_eq!(error["error"]["param"].as_str(), param, "{body}");
    }
}

#[actix_web::test]
async fn bodies_must_be_json_and_at_most_64_kib() {
    let app = spawn_app().await;
    let text = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("Content-Type", "text/plain")
        .body(r#"{"email":"a@example.com","password":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_error(text, 415, "unsupported_media_type", "invalid_request_error").await;
    let form = app.client.post(app.url("/v1/auth/login")).form(&[("email", "a@example.com")]).send().await.unwrap();
    assert_error(form, 415, "unsupported_media_type", "invalid_request_error").await;

    let big = json!({ "email": "a@example.com", "password": "x".repeat(70 * 1024) });
    assert_error(app.login(&big).await, 413, "payload_too_large", "invalid_request_error").await;
    let charset = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(r#"{"email":"nobody@example.com","password":"whatever it is"}"#)
        .send()
        .await
        .unwrap();
    assert_error(charset, 401, "invalid_credentials", "authentication_error").await;
}

#[actix_web::test]
async fn request_ids_are_echoed_when_sane_and_generated_otherwise() {
    let app = spawn_app().await;
    let echoed = app.client.get(app.url("/healthz")).header("X-Request-Id", "trace-abc_123").send().await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-abc_123");
    let insane = app.client.get(app.url("/healthz")).header("X-Request-Id", "bad id <script>").send().await.unwrap();
    let generated = insane.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(generated, "bad id <script>");
    assert!(uuid::Uuid::parse_str(generated).is_ok());
    let error = app.get("/missing").await;
    assert!(error.headers().contains_key("x-request-id"));
}

/// Redis goes away behind a proxy: token checks answer `503 service_unavailable` with `Retry-After`,
/// `/readyz` fails, and both recover when it comes back, without a restart.
#[actix_web::test]
async fn postgres_only_a_redis_outage_is_service_unavailable_and_recovers_without_restart() {
    if !crate::helpers::postgres_run() {
        return;
    }
    let proxy = ChaosProxy::start("127.0.0.1:6379".to_owned()).await;
    let url = format!("redis://127.0.0.1:{}", proxy.port);
    // With the abuse limits on, as in production: their counters are in Redis too.
    let app = spawn_app_with(&[
        ("IDENTSPHERE_REDIS_URL", url.as_str()),
        ("IDENTSPHERE_RATE_LIMIT_SIGNIN_IP", "30/60"),
        ("IDENTSPHERE_RATE_LIMIT_SIGNIN_ACCOUNT_FAILURES", "10/900"),
    ])
    .await;
    let user = app.signed_up_user().await;
    assert_eq!(app.session(user.access()).await.status(), StatusCode::OK);

    proxy.cut();
    let down = app.session(user.access()).await;
    assert!(down.headers().contains_key("retry-after"));
    assert_error(down, 503, "service_unavailable", "api_error").await;
    assert_error(app.get("/readyz").await, 503, "service_unavailable", "api_error").await;
    let login = app.login(&json!({ "email": user.email, "password": PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::OK, "sign-in does not need Redis: the limits fail open");

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = app.session(user.access()).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: still {status}");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    let body: Value = app.session(user.access()).await.json().await.unwrap();
    assert_eq!(body["user"]["email"], user.email);
}
