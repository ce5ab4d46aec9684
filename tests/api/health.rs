use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PUBLIC_BASE_URL, spawn_app};

#[actix_web::test]
async fn liveness_and_readiness_answer_when_stores_are_up() {
    let app = spawn_app().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.unwrap();
    let expected = match app.backend {
        crate::helpers::Backend::Postgres => json!({ "postgres": "ok", "redis": "ok" }),
        crate::helpers::Backend::Embedded => json!({ "embedded": "ok" }),
    };
    assert_eq!(body["checks"], expected);
}

/// Idle connections are kept longer than clients and load balancers keep theirs (httpx 5 s, an ALB 60 s), so
/// the client is the side that closes one: a request sent just as the server closed it would be lost (the
/// fault harness's 30-minute run saw it once, with actix's default of 5 s).
#[actix_web::test]
async fn an_idle_connection_is_kept_past_a_clients_idle_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://")).await.unwrap();
    for idle in [0, 7] {
        tokio::time::sleep(std::time::Duration::from_secs(idle)).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
        let mut answer = [0; 1024];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer)).await;
        let read = read.expect("an answer within 5 s").expect("the connection still open");
        assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "after {idle} s idle: {:?}", &answer[..read]);
    }
}

#[actix_web::test]
async fn jwks_publishes_public_rsa_keys_only_with_a_cache_header() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let cache = response.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut fields: Vec<_> = key.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"], "no private part (d, p, q, dp, dq, qi)");
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["e"], "AQAB");
}

#[actix_web::test]
async fn openid_configuration_names_the_issuer_and_the_jwks() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/openid-configuration").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["issuer"], PUBLIC_BASE_URL);
    assert_eq!(body["jwks_uri"], format!("{PUBLIC_BASE_URL}/.well-known/jwks.json"));
}

#[actix_web::test]
async fn postgres_only_every_replica_publishes_the_same_key() {
    if !crate::helpers::postgres_run() {
        return;
    }
    let app = spawn_app().await;
    let replica = app.spawn_replica().await;
    let a: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let b: Value = replica.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(a, b);
}

#[actix_web::test]
async fn metrics_count_requests_by_route_template() {
    let app = crate::helpers::spawn_process_app(&[]).await;
    app.signed_up_user().await;
    app.get("/nowhere/at/all").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let registered = text
        .lines()
        .find(|l| {
            l.starts_with("identsphere_http_requests_total{")
                && l.contains(r#"route="/v1/auth/register""#)
                && l.contains(r#"status="2xx""#)
        })
        .unwrap_or_else(|| panic!("no register counter in:\n{text}"));
    let count: f64 = registered.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{registered}");
    assert!(text.contains(r#"route="unmatched""#), "unknown paths share one label");
    assert!(!text.contains("/nowhere/at/all"), "raw paths must not become labels");
    assert!(text.contains("identsphere_http_request_duration_seconds_bucket"));
}

/// The value of an unlabelled gauge in `/metrics` (0 when it has not been touched).
async fn gauge(app: &crate::helpers::TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[actix_web::test]
async fn idle_organization_actors_stop_and_restart_on_demand() {
    let app = crate::helpers::spawn_process_app(&[("IDENTSPHERE_ACTOR_IDLE_TIMEOUT", "1")]).await;
    let user = app.signed_up_user().await;
    assert_eq!(gauge(&app, "identsphere_actors_live").await, 1.0, "one organization, one actor");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gauge(&app, "identsphere_actors_live").await > 0.0 {
        assert!(std::time::Instant::now() < deadline, "the idle actor never stopped");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let refreshed = app.refresh(user.refresh()).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "a stopped actor is started again on demand");
    assert_eq!(gauge(&app, "identsphere_actors_live").await, 1.0);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains(r#"identsphere_sessions_refreshes_total{outcome="rotated"} 1"#), "{text}");
}
