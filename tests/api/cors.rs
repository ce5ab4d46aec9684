//! Browser apps on another origin: CORS for the allowed origins only (preflights with the route's methods,
//! credentialed answers), nothing for any other, and the cookie scope options — a `SameSite=None` deployment
//! still refuses a forged cross-site write.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{PASSWORD, assert_error, set_cookies, spawn_app_with};

const APP: &str = "https://app.example.com";

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[actix_web::test]
async fn an_allowed_origin_gets_preflights_and_credentialed_answers_and_no_other_origin_gets_any() {
    let app = spawn_app_with(&[("IDENTSPHERE_ALLOWED_ORIGINS", APP)]).await;
    let preflight = |origin: &'static str, method: &'static str, path: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url(path))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "content-type")
            .send()
    };
    let allowed = preflight(APP, "POST", "/v1/auth/login").await.unwrap();
    assert_eq!(allowed.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&allowed, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&allowed, "access-control-allow-credentials"), Some("true"));
    assert_eq!(header(&allowed, "access-control-allow-methods"), Some("POST"));
    assert!(header(&allowed, "access-control-allow-headers").unwrap().contains("content-type"));
    assert_eq!(header(&allowed, "access-control-max-age"), Some("600"));
    assert!(allowed.headers().get_all("vary").iter().any(|v| v == "Origin"));
    // The methods are the route's own.
    let many = preflight(APP, "DELETE", "/v1/auth/mfa/totp").await.unwrap();
    assert_eq!(header(&many, "access-control-allow-methods"), Some("POST, DELETE"));
    // A method the route does not take: the usual 405, which fails the preflight.
    let unrouted = preflight(APP, "PUT", "/v1/auth/login").await.unwrap();
    assert_eq!(unrouted.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(&unrouted, "access-control-allow-methods"), None);
    // Another origin, or one that only starts like an allowed one: the 405, and no CORS header at all.
    for origin in ["https://evil.example", "https://app.example.com.evil.example", "null"] {
        let refused = preflight(origin, "POST", "/v1/auth/login").await.unwrap();
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED, "{origin}");
        assert_eq!(header(&refused, "access-control-allow-origin"), None, "{origin}");
    }

    // The actual request: credentialed, the SDKs' headers exposed; errors too.
    let user = app.signed_up_user().await;
    let body = json!({"email": user.email, "password": PASSWORD});
    let login = app.client.post(app.url("/v1/auth/login")).header("Origin", APP).json(&body).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(header(&login, "access-control-allow-origin"), Some(APP));
    assert_eq!(header(&login, "access-control-allow-credentials"), Some("true"));
    assert_eq!(header(&login, "access-control-expose-headers"), Some("x-request-id, retry-after"));
    let wrong = json!({"email": user.email, "password": "not the password"});
    let refused = app.client.post(app.url("/v1/auth/login")).header("Origin", APP).json(&wrong).send().await.unwrap();
    assert_eq!(header(&refused, "access-control-allow-origin"), Some(APP));
    assert_error(refused, 401, "invalid_credentials", "authentication_error").await;

    // Another origin: no CORS header, and its cookie-authenticated write is refused.
    let evil = app.client.post(app.url("/v1/auth/login")).header("Origin", "https://evil.example").json(&body);
    let evil = evil.send().await.unwrap();
    assert_eq!(header(&evil, "access-control-allow-origin"), None);
    let cookies = set_cookies(&evil);
    let cookie = cookies["identsphere_at"].split(';').next().unwrap().to_owned();
    let forged =
        app.client.post(app.url("/v1/auth/logout")).header("Origin", "https://evil.example").header("Cookie", cookie);
    assert_error(forged.send().await.unwrap(), 403, "csrf_rejected", "permission_error").await;
}

#[actix_web::test]
async fn a_cross_site_deployment_scopes_its_cookies_and_still_refuses_a_forged_write() {
    let app = spawn_app_with(&[
        ("IDENTSPHERE_PUBLIC_BASE_URL", "https://auth.example.com"),
        ("IDENTSPHERE_ALLOWED_ORIGINS", "https://app.example.net"),
        ("IDENTSPHERE_COOKIE_SAMESITE", "none"),
        ("IDENTSPHERE_COOKIE_DOMAIN", "example.com"),
    ])
    .await;
    let user = app.signed_up_user().await;
    let login = app.login(&json!({"email": user.email, "password": PASSWORD})).await;
    let set: Vec<String> =
        login.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(set.len(), 2, "{set:?}");
    for cookie in &set {
        for attribute in ["SameSite=None", "Secure", "HttpOnly", "Domain=example.com"] {
            assert!(cookie.contains(attribute), "{attribute} missing from {cookie}");
        }
    }
    let cookies = set_cookies(&login);
    let pair = |name: &str| cookies[name].split(';').next().unwrap().to_owned();
    let jar = format!("{}; {}", pair("identsphere_at"), pair("identsphere_rt"));
    // The browser sends the cookies cross-site now: the Origin (or Sec-Fetch-Site) check is the defence.
    let forged =
        app.client.post(app.url("/v1/auth/logout")).header("Origin", "https://evil.example").header("Cookie", &jar);
    assert_error(forged.send().await.unwrap(), 403, "csrf_rejected", "permission_error").await;
    let no_origin =
        app.client.post(app.url("/v1/auth/refresh")).header("Sec-Fetch-Site", "cross-site").header("Cookie", &jar);
    assert_error(no_origin.send().await.unwrap(), 403, "csrf_rejected", "permission_error").await;
    // The app's own origin refreshes with the cookie alone.
    let app_refresh =
        app.client.post(app.url("/v1/auth/refresh")).header("Origin", "https://app.example.net").header("Cookie", &jar);
    let refreshed = app_refresh.send().await.unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(header(&refreshed, "access-control-allow-origin"), Some("https://app.example.net"));
}

#[test]
fn cookie_scope_settings_that_cannot_work_stop_the_start_naming_the_variable() {
    use identsphere::config::Config;
    let read = |vars: &[(&str, &str)]| {
        Config::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))).err().map(|e| e.to_string())
    };
    let on_http = read(&[("IDENTSPHERE_COOKIE_SAMESITE", "none")]).unwrap();
    assert!(on_http.starts_with("IDENTSPHERE_COOKIE_SAMESITE:"), "{on_http}");
    let https = ("IDENTSPHERE_PUBLIC_BASE_URL", "https://auth.example.com");
    let elsewhere = read(&[https, ("IDENTSPHERE_COOKIE_DOMAIN", "example.org")]).unwrap();
    assert!(elsewhere.starts_with("IDENTSPHERE_COOKIE_DOMAIN:"), "{elsewhere}");
    assert!(read(&[https, ("IDENTSPHERE_COOKIE_DOMAIN", "com")]).unwrap().starts_with("IDENTSPHERE_COOKIE_DOMAIN:"));
    assert!(read(&[https, ("IDENTSPHERE_COOKIE_SAMESITE", "strict")]).is_some());
    assert_eq!(
        read(&[https, ("IDENTSPHERE_COOKIE_DOMAIN", ".Example.com"), ("IDENTSPHERE_COOKIE_SAMESITE", "none")]),
        None
    );
}
