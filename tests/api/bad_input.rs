//! Bad input on every route: each answered in the envelope with the right code, nothing stored, never
//! a 5xx.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, assert_error, spawn_app};

const BODY_ROUTES: [&str; 4] = ["/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout"];

async fn raw_post(app: &TestApp, path: &str, body: Vec<u8>) -> reqwest::Response {
    app.client.post(app.url(path)).header("Content-Type", "application/json").body(body).send().await.unwrap()
}

async fn nothing_stored(app: &TestApp, users_before: i64, families_before: i64) {
    let db = app.db().await;
    assert_eq!(db.count("users").await, users_before, "no user was stored");
    assert_eq!(db.count("session_families").await, families_before, "no session was stored");
}

#[actix_web::test]
async fn malformed_bodies_on_every_body_route_are_invalid_requests() {
    let app = spawn_app().await;
    let (users, families) = (app.db().await.count("users").await, app.db().await.count("session_families").await);
    let deep = format!("{{\"email\": {}{}}}", "[".repeat(5_000), "]".repeat(5_000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("wrong types", br#"{"email": 1, "password": true, "refresh_token": 7, "scope": 3}"#.to_vec()),
        ("deeply nested", deep.into_bytes()),
        ("invalid UTF-8", b"{\"email\": \"\xff\xfe\", \"password\": \"\xc3\x28\"}".to_vec()),
        ("duplicate keys", br#"{"email": "a@example.com", "email": "b@example.com", "password": "x"}"#.to_vec()),
        ("truncated", br#"{"email": "a@example.com", "pass"#.to_vec()),
        ("not an object", br#""just a string""#.to_vec()),
        ("a lone null", b"null".to_vec()),
        ("trailing garbage", br#"{"email": "a@example.com"} {"#.to_vec()),
        ("a NUL byte outside strings", b"{\"email\": \"a@example.com\"\x00}".to_vec()),
    ];
    for route in BODY_ROUTES {
        for (case, body) in &cases {
            let response = raw_post(&app, route, body.clone()).await;
            let status = response.status();
            assert!(status.is_client_error(), "{route} {case}: {status}");
            let body = assert_error(response, status.as_u16(), "invalid_request", "invalid_request_error").await;
            assert!(!body.to_string().contains("xff"), "{route} {case}: {body}");
        }
    }
    nothing_stored(&app, users, families).await;
}

#[actix_web::test]
async fn hostile_values_in_well_formed_bodies_are_refused_by_their_rule() {
    let app = spawn_app().await;
    let (users, families) = (app.db().await.count("users").await, app.db().await.count("session_families").await);
    let long_email = format!("{}@example.com", "a".repeat(300));
    let cases = [
        (json!({ "email": "a\u{0}b@example.com", "password": PASSWORD }), 422, "invalid_email"),
        (json!({ "email": long_email, "password": PASSWORD }), 422, "invalid_email"),
        (json!({ "email": "ok@example.com", "password": "p".repeat(300) }), 422, "weak_password"),
        (json!({ "email": "ok@example.com", "password": PASSWORD, "display_name": "A\u{0}B" }), 400, "invalid_request"),
        (
            json!({ "email": "ok@example.com", "password": PASSWORD, "display_name": "x".repeat(101) }),
            400,
            "invalid_request",
        ),
        (
            json!({ "email": "ok@example.com", "password": PASSWORD, "organization": "acme\u{0}" }),
            404,
            "organization_not_found",
        ),
        (
            json!({ "email": "ok@example.com", "password": PASSWORD, "organization": "../../etc/passwd" }),
            404,
            "organization_not_found",
        ),
        (json!({ "email": "ok@example.com", "password": PASSWORD, "organization": "" }), 400, "invalid_request"),
        (json!({ "email": "ok@example.com", "password": PASSWORD, "organization": 42 }), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let response = app.register(&body).await;
        let kind = if status == 400 || status == 422 || status == 404 { "invalid_request_error" } else { "" };
        assert_error(response, status, code, kind).await;
    }
    nothing_stored(&app, users, families).await;

    // Login applies no password policy, but a hostile value is still just a wrong password.
    for password in ["p".repeat(300), "\u{0}".repeat(10), "😀".repeat(64)] {
        let response = app.login(&json!({ "email": "nobody@example.com", "password": password })).await;
        assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    }
    let response = app.login(&json!({ "email": "a\u{0}@example.com", "password": "x" })).await;
    assert_error(response, 422, "invalid_email", "invalid_request_error").await;
    nothing_stored(&app, users, families).await;
}

#[actix_web::test]
async fn mangled_tokens_are_token_invalid_everywhere() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let access = user.access();
    let segments: Vec<&str> = access.split('.').collect();
    let long_kid = format!(
        "{}.{}.{}",
        base64_json(&json!({ "alg": "RS256", "typ": "JWT", "kid": "k".repeat(9_000) })),
        segments[1],
        segments[2]
    );
    let mangled = vec![
        String::new(),
        ".".to_owned(),
        "..".to_owned(),
        "a.b".to_owned(),
        "a.b.c.d".to_owned(),
        format!("{}.{}", segments[0], segments[1]),
        format!("{}..{}", segments[0], segments[2]),
        format!("{}.{}.{}", segments[0], "!!!!", segments[2]),
        format!("{}.{}.{}x", segments[0], segments[1], segments[2]),
        format!("{}.{}.{}", base64_json(&json!({ "alg": 256, "kid": [] })), segments[1], segments[2]),
        format!(
            "{}.{}.{}",
            base64_json(&json!({ "alg": "RS256", "typ": "JWT", "kid": "../../etc/passwd" })),
            segments[1],
            segments[2]
        ),
        format!("{}.{}.{}", base64_json(&json!("not an object")), segments[1], segments[2]),
        format!("{}.{}.{}", segments[0], base64_json(&json!({ "sub": "not-a-uuid" })), segments[2]),
        long_kid,
        access.to_uppercase(),
    ];
    for token in &mangled {
        let response = app
            .client
            .get(app.url("/v1/auth/session"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status == StatusCode::UNAUTHORIZED, "{}: {status}", &token[token.len().saturating_sub(30)..]);
        let body: Value = response.json().await.unwrap();
        let code = body["error"]["code"].as_str().unwrap();
        assert!(code == "token_invalid" || code == "token_missing", "{token:.40}: {body}");

        let response = app.refresh(token).await;
        assert!(response.status().is_client_error(), "refresh {token:.40}: {}", response.status());
        let response = app.post("/v1/auth/logout", &json!({ "refresh_token": token })).await;
        assert!(response.status().is_client_error(), "logout {token:.40}: {}", response.status());
    }
    assert_eq!(app.session(access).await.status(), StatusCode::OK, "the real token still works");
}

fn base64_json(value: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// Raw HTTP, for header values no well-behaved client would send (async: the server may share this
/// thread's runtime).
async fn raw_request(app: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), read).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[actix_web::test]
async fn hostile_cookies_and_headers_get_the_envelope_and_are_not_reflected() {
    let app = spawn_app().await;
    for cookie in [
        r#"identsphere_at="><script>alert(1)</script>"#,
        "identsphere_at=a; identsphere_at=b; identsphere_rt=c",
        "identsphere_at=%00%0d%0aSet-Cookie:%20evil=1",
        &format!("identsphere_at={}", "x".repeat(7_000)),
    ] {
        let request = format!(
            "GET /v1/auth/session HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        );
        let response = raw_request(&app, &request).await;
        assert!(response.starts_with("HTTP/1.1 401"), "{cookie:.40}: {response:.200}");
        assert!(response.contains(r#""code":"token_invalid""#), "{response:.400}");
        assert!(!response.contains("<script>") && !response.to_lowercase().contains("set-cookie: evil"), "{response}");
        assert!(response.to_lowercase().contains("x-request-id:"));
    }
    // Control characters make it no valid HTTP: the HTTP parser refuses it before any of our code runs,
    // with a bare 400 (no envelope is possible there), and reflects nothing.
    let not_http = "GET /v1/auth/session HTTP/1.1\r\nHost: localhost\r\nCookie: identsphere_at=\u{1}x\r\n\r\n";
    let response = raw_request(&app, not_http).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response:.200}");
    assert!(!response.contains("identsphere_at"), "{response}");
    let forged_origin = "POST /v1/auth/refresh HTTP/1.1\r\nHost: localhost\r\nCookie: identsphere_rt=abc\r\nOrigin: https://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let response = raw_request(&app, forged_origin).await;
    assert!(response.starts_with("HTTP/1.1 403") && response.contains("csrf_rejected"), "{response:.300}");
    let bad_request_id =
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: a\"><b>\r\nConnection: close\r\n\r\n";
    let response = raw_request(&app, bad_request_id).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response:.200}");
    assert!(!response.contains("<b>"), "an unsafe request id is replaced, not echoed");
}
