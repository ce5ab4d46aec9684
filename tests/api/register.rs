use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, assert_error, outbox_token, set_cookies, spawn_app};

#[actix_web::test]
async fn register_returns_the_token_response_and_sets_both_cookies() {
    let app = spawn_app().await;
    let response = app
        .register(&json!({ "email": "  Grace.Hopper@Example.COM ", "password": PASSWORD, "display_name": " Grace " }))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookies = set_cookies(&response);
    let body: Value = response.json().await.unwrap();

    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    assert!(body["refresh_token"].as_str().unwrap().split('.').count() == 3);
    let user = &body["user"];
    assert_eq!(user["email"], "Grace.Hopper@Example.COM", "kept as typed, trimmed");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["display_name"], "Grace");
    assert!(Uuid::parse_str(user["id"].as_str().unwrap()).is_ok());
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    let session = &body["session"];
    assert_eq!(session["aal"], "aal1");
    assert_eq!(session["auth_method"], "password");
    assert!(session["auth_time"].as_i64().unwrap() > 1_700_000_000);
    assert!(Uuid::parse_str(session["id"].as_str().unwrap()).is_ok());
    assert!(Uuid::parse_str(session["organization_id"].as_str().unwrap()).is_ok());
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));

    let at = &cookies["identsphere_at"];
    assert!(at.contains(body["access_token"].as_str().unwrap()));
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=900"] {
        assert!(at.contains(attribute), "{attribute} in {at}");
    }
    assert!(!at.contains("Secure"), "plain http on localhost: not Secure");
    let rt = &cookies["identsphere_rt"];
    assert!(rt.contains(body["refresh_token"].as_str().unwrap()));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/v1/auth", "Max-Age=2592000"] {
        assert!(rt.contains(attribute), "{attribute} in {rt}");
    }
}

#[actix_web::test]
async fn cookies_are_secure_behind_an_https_base_url() {
    let app = crate::helpers::spawn_app_with(&[("IDENTSPHERE_PUBLIC_BASE_URL", "https://auth.example.com")]).await;
    let response = app.register(&json!({ "email": "secure@example.com", "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookies = set_cookies(&response);
    assert!(cookies["identsphere_at"].contains("Secure"));
    assert!(cookies["identsphere_rt"].contains("Secure"));
}

#[actix_web::test]
async fn registering_creates_a_personal_organization_owned_by_the_user() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let session: Value = app.session(user.access()).await.json().await.unwrap();
    assert_eq!(session["organization"]["role"], "owner");
    assert_eq!(session["organization"]["id"], user.tokens["session"]["organization_id"]);
    assert!(session["organization"]["slug"].as_str().unwrap().starts_with("user-"));
}

#[actix_web::test]
async fn an_email_already_taken_in_any_case_is_a_conflict() {
    let app = spawn_app().await;
    let first = app.register(&json!({ "email": "dup@example.com", "password": PASSWORD })).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = app.register(&json!({ "email": " DUP@Example.com", "password": "another fine password" })).await;
    assert_error(again, 409, "email_taken", "conflict_error").await;
}

#[actix_web::test]
async fn invalid_emails_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    for email in ["", "not-an-email", "a@b", "two@@example.com", "Name <a@example.com>"] {
        let response = app.register(&json!({ "email": email, "password": PASSWORD })).await;
        let body = assert_error(response, 422, "invalid_email", "invalid_request_error").await;
        assert_eq!(body["error"]["param"], "email");
    }
}

#[actix_web::test]
async fn weak_passwords_are_refused_and_not_echoed() {
    let app = spawn_app().await;
    let long = "x".repeat(257);
    for password in ["short", "password123", "Iloveyou1", long.as_str()] {
        let response = app.register(&json!({ "email": "weak@example.com", "password": password })).await;
        let body = assert_error(response, 422, "weak_password", "invalid_request_error").await;
        assert_eq!(body["error"]["param"], "password");
        assert!(!body.to_string().contains(password), "the password must not be echoed");
    }
}

#[actix_web::test]
async fn registering_into_an_open_organization_makes_a_member() {
    let app = spawn_app().await;
    let owner = app.signed_up_user().await;
    let org_id: Uuid = owner.tokens["session"]["organization_id"].as_str().unwrap().parse().unwrap();
    app.db().await.set_signup(org_id, "open", &[], Some("acme")).await;

    for organization in ["acme", &org_id.to_string()] {
        let email = format!("member-{}@example.com", Uuid::new_v4().simple());
        let response =
            app.register(&json!({ "email": email, "password": PASSWORD, "organization": organization })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["session"]["organization_id"], org_id.to_string());
        let session: Value = app.session(body["access_token"].as_str().unwrap()).await.json().await.unwrap();
        assert_eq!(session["organization"]["role"], "member");
        assert_eq!(session["organization"]["slug"], "acme");
    }
}

#[actix_web::test]
async fn registering_into_a_closed_or_unknown_organization_is_refused() {
    let app = spawn_app().await;
    let owner = app.signed_up_user().await;
    let org_id: Uuid = owner.tokens["session"]["organization_id"].as_str().unwrap().parse().unwrap();
    let db = app.db().await;
    db.set_signup(org_id, "domains", &["corp.example"], None).await;

    let outsider = app
        .register(&json!({ "email": "x@elsewhere.example", "password": PASSWORD, "organization": org_id.to_string() }))
        .await;
    assert_error(outsider, 403, "signup_not_allowed", "permission_error").await;
    let insider = app
        .register(&json!({ "email": "x@Corp.Example", "password": PASSWORD, "organization": org_id.to_string() }))
        .await;
    assert_eq!(insider.status(), StatusCode::CREATED);

    db.set_signup(org_id, "closed", &[], None).await;
    let closed = app
        .register(&json!({ "email": "y@corp.example", "password": PASSWORD, "organization": org_id.to_string() }))
        .await;
    assert_error(closed, 403, "signup_not_allowed", "permission_error").await;

    let unknown =
        app.register(&json!({ "email": "z@example.com", "password": PASSWORD, "organization": "no-such-org" })).await;
    assert_error(unknown, 404, "organization_not_found", "invalid_request_error").await;
}

#[actix_web::test]
async fn a_sign_up_by_email_domain_joins_only_once_the_address_is_verified() {
    let app = spawn_app().await;
    let owner = app.signed_up_user().await;
    let org_id: Uuid = owner.tokens["session"]["organization_id"].as_str().unwrap().parse().unwrap();
    app.db().await.set_signup(org_id, "domains", &["acme.com"], Some("acme")).await;

    // Typing an Acme address proves nothing: the account starts in a personal organization.
    let body = json!({ "email": "stranger@acme.com", "password": PASSWORD, "organization": "acme" });
    let signed_up: Value = app.register(&body).await.json().await.unwrap();
    assert_ne!(signed_up["session"]["organization_id"], org_id.to_string(), "{signed_up}");
    let pending = &signed_up["pending_organization"];
    assert_eq!(
        (pending["id"].as_str(), pending["slug"].as_str(), pending["joins_when"].as_str()),
        (Some(org_id.to_string().as_str()), Some("acme"), Some("email_verified")),
        "{signed_up}"
    );
    let access = signed_up["access_token"].as_str().unwrap();
    let members = app.client.get(app.url("/v1/organizations/acme/members")).bearer_auth(access).send().await.unwrap();
    assert_error(members, 404, "organization_not_found", "invalid_request_error").await;
    let refresh = signed_up["refresh_token"].as_str().unwrap();
    let switch = app.post("/v1/auth/refresh", &json!({"refresh_token": refresh, "organization": "acme"})).await;
    assert_error(switch, 403, "not_a_member", "permission_error").await;
    let login = json!({ "email": "stranger@acme.com", "password": PASSWORD, "organization": "acme" });
    assert_error(app.login(&login).await, 403, "not_a_member", "permission_error").await;

    // The verification link proves it: the next switch joins Acme as a member.
    let token = outbox_token(&app, "verify-email", "stranger@acme.com").await;
    assert_eq!(app.post("/v1/auth/email/verify", &json!({ "token": token })).await.status(), StatusCode::NO_CONTENT);
    let switch = app.post("/v1/auth/refresh", &json!({"refresh_token": refresh, "organization": "acme"})).await;
    assert_eq!(switch.status(), StatusCode::OK);
    let switched: Value = switch.json().await.unwrap();
    assert_eq!(switched["session"]["organization_id"], org_id.to_string());
    let session: Value = app.session(switched["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(session["organization"]["role"], "member");
    assert_eq!(app.login(&login).await.status(), StatusCode::OK);

    // A domain the organization stops taking joins nobody new, verified or not.
    app.db().await.set_signup(org_id, "closed", &[], None).await;
    let late = json!({ "email": "late@acme.com", "password": PASSWORD, "organization": "acme" });
    assert_error(app.register(&late).await, 403, "signup_not_allowed", "permission_error").await;
}

#[actix_web::test]
async fn a_look_alike_address_squats_no_mailbox() {
    let app = spawn_app().await;
    // The Kelvin sign lower-cases to `k` under Unicode rules: registered first, it must not take ken's address.
    let kelvin = app.register(&json!({ "email": "\u{212A}en@corp.example", "password": PASSWORD })).await;
    assert_eq!(kelvin.status(), StatusCode::CREATED);
    let ken = app.register(&json!({ "email": "Ken@corp.example", "password": "another good passphrase" })).await;
    assert_eq!(ken.status(), StatusCode::CREATED, "ken's own address is his");
    let as_ken = app.login(&json!({ "email": "ken@CORP.example", "password": "another good passphrase" })).await;
    let as_ken: Value = as_ken.json().await.unwrap();
    assert_eq!(as_ken["user"]["email"], "Ken@corp.example");
    let zero_width = app.register(&json!({ "email": "ken\u{200B}@corp.example", "password": PASSWORD })).await;
    assert_error(zero_width, 422, "invalid_email", "invalid_request_error").await;
}
