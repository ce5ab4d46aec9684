//! Local verification through the extractors: what passes, what is refused and with which code.

use std::time::Duration;

use identsphere_axum::IdentSphere;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{access, assert_refused, forge, part, refresh, spawn_app, spawn_server, spawn_server_with};

#[actix_web::test]
async fn a_valid_token_passes_and_the_handler_sees_its_claims() {
    let server = spawn_server().await;
    let app = spawn_app(&server.sdk().await).await;
    let tokens = server.sign_up().await;
    let token = access(&tokens);

    let response = app.get("/me", Some(&token)).await;
    assert_eq!(response.status(), 200);
    let claims: Value = response.json().await.unwrap();
    let sent = part(&token, 1);
    for name in ["sub", "org", "iss", "exp", "iat", "typ", "email", "jti", "sid", "aal", "auth_time", "auth_method"] {
        assert_eq!(claims[name], sent[name], "{name}");
    }
    assert_eq!(claims["sub"], tokens["user"]["id"]);
    assert_eq!(claims["typ"], "access");
    assert_eq!(claims["aal"], "aal1");

    for route in ["/maybe", "/optional"] {
        let signed_in: Value = app.get(route, Some(&token)).await.json().await.unwrap();
        assert_eq!(signed_in["sub"], tokens["user"]["id"], "{route}");
    }
}

#[actix_web::test]
async fn the_access_cookie_works_and_a_cross_site_unsafe_cookie_request_is_refused() {
    let server = spawn_server().await;
    let app = spawn_app(&server.sdk().await).await;
    let token = access(&server.sign_up().await);
    let cookie = format!("theme=dark; identsphere_at={token}");
    let url = format!("{}/me", app.address);

    let get = app.http.get(&url).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(get.status(), 200);
    let same_site = app.http.post(&url).header("Cookie", &cookie).header("Origin", &app.address).send().await.unwrap();
    assert_eq!(same_site.status(), 200);
    let cross_site =
        app.http.post(&url).header("Cookie", &cookie).header("Origin", "https://evil.example").send().await.unwrap();
    assert_refused(cross_site, 403, "csrf_rejected").await;
    let bearer = app.http.post(&url).bearer_auth(&token).header("Origin", "https://evil.example").send().await.unwrap();
    assert_eq!(bearer.status(), 200, "a bearer token is not a CSRF risk");
}

#[actix_web::test]
async fn no_token_is_token_missing_except_where_authentication_is_optional() {
    let server = spawn_server().await;
    let app = spawn_app(&server.sdk().await).await;
    assert_refused(app.get("/me", None).await, 401, "token_missing").await;
    let basic = app.http.get(format!("{}/me", app.address)).basic_auth("a", Some("b")).send().await.unwrap();
    assert_refused(basic, 401, "token_missing").await;
    for route in ["/maybe", "/optional"] {
        let anonymous = app.get(route, None).await;
        assert_eq!(anonymous.status(), 200, "{route}");
        assert_eq!(anonymous.json::<Value>().await.unwrap(), json!({"sub": null}));
        assert_refused(app.get(route, Some("not-a-jwt")).await, 401, "token_invalid").await;
    }
}

#[actix_web::test]
async fn an_expired_token_is_token_expired() {
    let server = spawn_server_with(&[("IDENTSPHERE_ACCESS_TOKEN_TTL", "1")]).await;
    let app = spawn_app(&server.sdk().await).await;
    let token = access(&server.sign_up().await);
    // The SDK reads the system clock: a one-second token is expired after a second of real time.
    let exp = part(&token, 1)["exp"].as_i64().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let response = app.get("/me", Some(&token)).await;
        if response.status() == 401 {
            assert_refused(response, 401, "token_expired").await;
            break;
        }
        assert_eq!(response.status(), 200, "valid until it expires");
        assert!(std::time::Instant::now() < deadline, "a token with exp {exp} never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn forged_refresh_typed_and_wrong_issuer_tokens_are_token_invalid() {
    let server = spawn_server().await;
    let app = spawn_app(&server.sdk().await).await;
    let tokens = server.sign_up().await;
    let token = access(&tokens);
    let (header, claims) = (part(&token, 0), part(&token, 1));
    assert_eq!(app.get("/me", Some(&token)).await.status(), 200, "the genuine token passes");

    let other_key_our_kid = forge(&header, &claims);
    assert_refused(app.get("/me", Some(&other_key_our_kid)).await, 401, "token_invalid").await;

    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none_header = json!({"alg": "none", "typ": "JWT", "kid": header["kid"]});
    let alg_none = format!("{}.{}.", b64(&none_header), b64(&claims));
    assert_refused(app.get("/me", Some(&alg_none)).await, 401, "token_invalid").await;

    let genuine_signature = token.rsplit('.').next().unwrap();
    let mut other_user = claims.clone();
    other_user["sub"] = json!(Uuid::new_v4());
    let altered = format!("{}.{}.{genuine_signature}", b64(&header), b64(&other_user));
    assert_refused(app.get("/me", Some(&altered)).await, 401, "token_invalid").await;

    let no_typ_header = json!({"alg": "RS256", "kid": header["kid"]});
    let no_typ = format!("{}.{}.{genuine_signature}", b64(&no_typ_header), b64(&claims));
    assert_refused(app.get("/me", Some(&no_typ)).await, 401, "token_invalid").await;

    assert_refused(app.get("/me", Some(&refresh(&tokens))).await, 401, "token_invalid").await;

    let elsewhere = server.builder().issuer("https://someone-else.example").build().await.unwrap();
    let strict = spawn_app(&elsewhere).await;
    assert_refused(strict.get("/me", Some(&token)).await, 401, "token_invalid").await;
}

#[actix_web::test]
async fn require_org_matches_the_path_or_the_configured_organization_and_aal2_needs_a_second_factor() {
    let server = spawn_server().await;
    let app = spawn_app(&server.sdk().await).await;
    let tokens = server.sign_up().await;
    let token = access(&tokens);
    let org = part(&token, 1)["org"].as_str().unwrap().to_owned();

    let own = app.get(&format!("/orgs/{org}/things"), Some(&token)).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.text().await.unwrap(), org);
    assert_refused(app.get(&format!("/orgs/{}/things", Uuid::new_v4()), Some(&token)).await, 403, "not_a_member").await;
    assert_refused(app.get("/orgs/not-a-uuid/things", Some(&token)).await, 403, "not_a_member").await;
    assert_refused(app.get(&format!("/orgs/{org}/things"), None).await, 401, "token_missing").await;

    let fixed: IdentSphere = server.builder().organization(Uuid::new_v4()).build().await.unwrap();
    let pinned = spawn_app(&fixed).await;
    assert_refused(pinned.get(&format!("/orgs/{org}/things"), Some(&token)).await, 403, "not_a_member").await;

    // An aal1 session is refused where a second factor is required; once the user confirms TOTP in it, the
    // new aal2 token passes.
    assert_refused(app.get("/aal2", Some(&token)).await, 403, "insufficient_aal").await;
    let raised = server.confirm_totp(&tokens).await;
    let raised = access(&raised);
    assert_eq!(part(&raised, 1)["aal"], "aal2");
    assert_eq!(app.get("/aal2", Some(&raised)).await.status(), 200);
}
