//! Per-organization policy: a required second factor (enrolled at sign-in by members without one),
//! allowed sign-in methods, token lifetimes within the server's, and extra rate limits — enforced at
//! sign-in, registration, refresh and switching.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use totp_rs::Secret;

use crate::helpers::{PASSWORD, TestApp, assert_error, ids, set_cookies, spawn_app};
use crate::mfa::{code, enroll, post_bearer, raised_to_aal2};
use crate::organizations::{access, call, create_org, join, json_of, switch};

async fn set_policy(app: &TestApp, owner: &str, org: &str, policy: Value) -> reqwest::Response {
    call(app, Method::PATCH, &format!("/v1/organizations/{org}"), owner, Some(&json!({ "policy": policy }))).await
}

async fn login_to(app: &TestApp, email: &str, org: &str) -> reqwest::Response {
    app.login(&json!({"email": email, "password": PASSWORD, "organization": org})).await
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

#[actix_web::test]
async fn the_policy_is_shown_with_the_organization_and_defaults_to_the_servers() {
    let app = spawn_app().await;
    let mut ada = app.signed_up_user().await;
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    assert_eq!(
        org["policy"],
        json!({"mfa_required": false, "auth_methods": ["password", "passkey", "social_oauth"],
               "access_token_ttl": null, "refresh_token_ttl": null, "rate_limits": {}})
    );
    // Requiring a second factor binds the owner too: they act from an aal2 session.
    ada.tokens = raised_to_aal2(&app, &ada.tokens).await;
    let policy = json!({"mfa_required": true, "auth_methods": ["password"], "access_token_ttl": 300,
                        "refresh_token_ttl": 3600, "rate_limits": {"signin_ip": {"count": 5, "period": 60}}});
    let updated = json_of(set_policy(&app, ada.access(), "acme", policy.clone()).await, StatusCode::OK).await;
    assert_eq!(updated["policy"], policy);
    // Absent fields stay; `null` goes back to the server's lifetime.
    let updated =
        json_of(set_policy(&app, ada.access(), "acme", json!({"access_token_ttl": null})).await, StatusCode::OK).await;
    assert_eq!(updated["policy"]["access_token_ttl"], Value::Null);
    assert_eq!(updated["policy"]["refresh_token_ttl"], 3600);
    assert_eq!(updated["policy"]["mfa_required"], true);

    for (bad, param) in [
        (json!({"access_token_ttl": 59}), "policy.access_token_ttl"),
        (json!({"access_token_ttl": 901}), "policy.access_token_ttl"),
        (json!({"refresh_token_ttl": 299}), "policy.refresh_token_ttl"),
        (json!({"refresh_token_ttl": 2_592_001}), "policy.refresh_token_ttl"),
        (json!({"auth_methods": []}), "policy.auth_methods"),
        (json!({"auth_methods": ["carrier_pigeon"]}), "policy.auth_methods"),
        (json!({"rate_limits": {"signin_ip": {"count": 0, "period": 60}}}), "policy.rate_limits.signin_ip"),
        (json!({"rate_limits": {"everything": {"count": 1, "period": 60}}}), "policy.rate_limits"),
        (json!({"mfa": true}), "policy"),
    ] {
        let body = assert_error(
            set_policy(&app, ada.access(), "acme", bad.clone()).await,
            400,
            "invalid_request",
            "invalid_request_error",
        )
        .await;
        assert!(body["error"]["param"].as_str().unwrap().starts_with(param), "{bad}: {body}");
    }
    let after =
        json_of(call(&app, Method::GET, "/v1/organizations/acme", ada.access(), None).await, StatusCode::OK).await;
    assert_eq!(after["policy"], updated["policy"], "refused changes change nothing");
}

#[actix_web::test]
async fn only_owners_change_the_policy_and_every_change_is_audited() {
    let app = spawn_app().await;
    let (mut owner, admin) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let admin_tokens = join(&app, &admin, &org, "admin").await;
    let response = set_policy(&app, access(&admin_tokens), "acme", json!({"mfa_required": false})).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let change = json!({"auth_methods": ["password", "passkey"], "access_token_ttl": 600});
    assert_eq!(set_policy(&app, owner.access(), "acme", change).await.status(), StatusCode::OK);
    let log = json_of(
        call(&app, Method::GET, "/v1/organizations/acme/audit-log", owner.access(), None).await,
        StatusCode::OK,
    )
    .await;
    let latest = &log["events"][0];
    assert_eq!(latest["action"], "organization.updated");
    assert_eq!(latest["target"], "auth_methods=passkey+password,access_token_ttl=600");
    assert_eq!(log["events"].as_array().unwrap().len(), 2, "the refused change left no entry: {log}");
}

#[actix_web::test]
async fn a_member_without_a_factor_enrolls_one_before_any_session_when_the_organization_requires_it() {
    let app = spawn_app().await;
    let (mut owner, bob) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    join(&app, &bob, &org, "member").await;
    assert_eq!(set_policy(&app, owner.access(), "acme", json!({"mfa_required": true})).await.status(), StatusCode::OK);

    let response = login_to(&app, &bob.email, "acme").await;
    assert!(set_cookies(&response).is_empty(), "no session, no cookies");
    let challenge = json_of(response, StatusCode::OK).await;
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["enrollment_required"], true);
    assert_eq!(challenge["factors"], json!([]));
    assert!(challenge.get("access_token").is_none(), "{challenge}");
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    // The mfa token is no credential: not for the session, nor for enrolling through the bearer route.
    assert_error(app.session(mfa_token).await, 401, "token_invalid", "authentication_error").await;

    let enrollment = app.post("/v1/auth/mfa/totp", &json!({ "mfa_token": mfa_token })).await;
    let enrollment = json_of(enrollment, StatusCode::OK).await;
    let secret = Secret::try_from_base32(enrollment["secret"].as_str().unwrap()).unwrap().as_bytes().to_vec();
    let wrong = app.post("/v1/auth/mfa/totp/confirm", &json!({"mfa_token": mfa_token, "code": "000000"})).await;
    assert_error(wrong, 401, "mfa_invalid_code", "authentication_error").await;
    let confirm = json!({"mfa_token": mfa_token, "code": code(&app, &secret, 0)});
    let response = app.post("/v1/auth/mfa/totp/confirm", &confirm).await;
    assert_eq!(set_cookies(&response).len(), 2, "the sign-in completes with its cookies");
    let signed_in = json_of(response, StatusCode::OK).await;
    assert_eq!(signed_in["session"]["aal"], "aal2");
    assert_eq!(signed_in["session"]["organization_id"], org["id"]);
    assert_eq!(signed_in["recovery_codes"].as_array().unwrap().len(), 10);
    assert_eq!(claims(access(&signed_in))["aal"], "aal2");
    assert_eq!(app.session(access(&signed_in)).await.status(), StatusCode::OK);
    let refreshed = app.refresh(signed_in["refresh_token"].as_str().unwrap()).await;
    assert_eq!(refreshed.status(), StatusCode::OK, "aal2 sessions refresh");

    // The mfa token was spent by the confirmation.
    app.clock.advance(Duration::seconds(30));
    let again = app.post("/v1/auth/mfa/verify", &json!({"mfa_token": mfa_token, "code": code(&app, &secret, 0)})).await;
    assert_error(again, 401, "token_invalid", "authentication_error").await;
    // Next time Bob has a factor: the usual second-factor step.
    let challenge = json_of(login_to(&app, &bob.email, "acme").await, StatusCode::OK).await;
    assert_eq!(
        (challenge["enrollment_required"].clone(), challenge["factors"].clone()),
        (json!(false), json!(["totp"]))
    );
}

#[actix_web::test]
async fn aal1_sessions_stop_refreshing_when_a_second_factor_becomes_required_until_they_step_up() {
    let app = spawn_app().await;
    let mut owner = app.signed_up_user().await;
    create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let session = json_of(login_to(&app, &owner.email, "acme").await, StatusCode::OK).await;
    let other = json_of(login_to(&app, &owner.email, "acme").await, StatusCode::OK).await;
    assert_eq!(set_policy(&app, owner.access(), "acme", json!({"mfa_required": true})).await.status(), StatusCode::OK);

    let refresh = session["refresh_token"].as_str().unwrap();
    assert_error(app.refresh(refresh).await, 403, "insufficient_aal", "permission_error").await;
    // Refused, not spent: the same token refreshes once the session is at aal2. The owner enrolls with the
    // access token still alive, which raises this very session.
    let secret = enroll(&app, access(&session)).await;
    let first_code = json!({"code": code(&app, &secret, 0), "refresh_token": session["refresh_token"]});
    let confirm = post_bearer(&app, "/v1/auth/mfa/totp/confirm", access(&session), &first_code).await;
    let raised = json_of(confirm, StatusCode::OK).await;
    assert_eq!(raised["session"]["id"], session["session"]["id"], "same sid");
    assert_eq!(app.refresh(raised["refresh_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    // A session the policy stops refreshing can still log out with its refresh token.
    let other_refresh = other["refresh_token"].as_str().unwrap();
    assert_error(app.refresh(other_refresh).await, 403, "insufficient_aal", "permission_error").await;
    let logout = app.post("/v1/auth/logout", &json!({ "refresh_token": other_refresh })).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_error(app.refresh(other_refresh).await, 401, "token_revoked", "authentication_error").await;
}

#[actix_web::test]
async fn switching_into_an_organization_that_requires_a_second_factor_needs_aal2() {
    let app = spawn_app().await;
    let (mut owner, bob) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let (bob_id, _, _) = ids(&bob.tokens);
    app.db().await.add_membership(bob_id, crate::organizations::uuid(&org["id"]), "member", app.clock.now()).await;
    assert_eq!(set_policy(&app, owner.access(), "acme", json!({"mfa_required": true})).await.status(), StatusCode::OK);

    assert_error(switch(&app, bob.refresh(), &json!("acme")).await, 403, "insufficient_aal", "permission_error").await;
    // The refusal spent nothing: Bob's session goes on in his own organization.
    let refreshed = json_of(app.refresh(bob.refresh()).await, StatusCode::OK).await;
    assert_eq!(refreshed["session"]["organization_id"], bob.tokens["session"]["organization_id"]);
    // Stepped up (enrolled and confirmed in his own organization), he switches.
    let secret = enroll(&app, access(&refreshed)).await;
    let first_code = json!({"code": code(&app, &secret, 0), "refresh_token": refreshed["refresh_token"]});
    let raised = post_bearer(&app, "/v1/auth/mfa/totp/confirm", access(&refreshed), &first_code).await;
    let raised = json_of(raised, StatusCode::OK).await;
    let switched =
        json_of(switch(&app, raised["refresh_token"].as_str().unwrap(), &json!("acme")).await, StatusCode::OK).await;
    assert_eq!(
        (switched["session"]["organization_id"].clone(), switched["session"]["aal"].clone()),
        (org["id"].clone(), json!("aal2"))
    );
}

#[actix_web::test]
async fn an_organizations_lifetimes_shorten_tokens_and_sessions_including_switched_ones() {
    let app = spawn_app().await;
    let mut owner = app.signed_up_user().await;
    let personal = owner.tokens.clone();
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let policy = json!({"access_token_ttl": 300, "refresh_token_ttl": 3600});
    assert_eq!(set_policy(&app, owner.access(), "acme", policy).await.status(), StatusCode::OK);

    let response = login_to(&app, &owner.email, "acme").await;
    let max_age = set_cookies(&response)["identsphere_at"].clone();
    let session = json_of(response, StatusCode::OK).await;
    assert_eq!(session["expires_in"], 300);
    assert!(max_age.contains("Max-Age=300"), "{max_age}");
    let token = claims(access(&session));
    assert_eq!(token["exp"].as_i64().unwrap() - token["iat"].as_i64().unwrap(), 300);
    let ends = time::OffsetDateTime::parse(
        session["session"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!((ends - app.clock.now() - Duration::hours(1)).abs() < Duration::seconds(5), "{session}");
    let refreshed = json_of(app.refresh(session["refresh_token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(refreshed["expires_in"], 300, "refreshes keep the organization's lifetime");

    // A 30-day session of the personal organization switched in ends within the hour of its sign-in.
    let switched =
        json_of(switch(&app, personal["refresh_token"].as_str().unwrap(), &org["id"]).await, StatusCode::OK).await;
    assert_eq!(switched["expires_in"], 300);
    let auth_time = personal["session"]["auth_time"].as_i64().unwrap();
    let ends = time::OffsetDateTime::parse(
        switched["session"]["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(ends.unix_timestamp(), auth_time + 3600, "{switched}");
    app.clock.advance(Duration::hours(1));
    assert_error(
        app.refresh(switched["refresh_token"].as_str().unwrap()).await,
        401,
        "token_expired",
        "authentication_error",
    )
    .await;
}

#[actix_web::test]
async fn a_method_the_organization_does_not_allow_signs_in_nowhere_there() {
    let app = spawn_app().await;
    let mut owner = app.signed_up_user().await;
    let personal = owner.tokens["refresh_token"].as_str().unwrap().to_owned();
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let session = json_of(login_to(&app, &owner.email, "acme").await, StatusCode::OK).await;
    let body = json!({"signup": {"mode": "open"}, "policy": {"auth_methods": ["passkey"]}});
    let response = call(&app, Method::PATCH, "/v1/organizations/acme", owner.access(), Some(&body)).await;
    assert_eq!(response.status(), StatusCode::OK);

    // A wrong password is still just that; the right one is refused for the method.
    let wrong = app.login(&json!({"email": owner.email, "password": "wrong password 1", "organization": "acme"})).await;
    assert_error(wrong, 401, "invalid_credentials", "authentication_error").await;
    assert_error(login_to(&app, &owner.email, "acme").await, 403, "auth_method_not_allowed", "permission_error").await;
    assert_error(
        app.refresh(session["refresh_token"].as_str().unwrap()).await,
        403,
        "auth_method_not_allowed",
        "permission_error",
    )
    .await;
    assert_error(switch(&app, &personal, &org["id"]).await, 403, "auth_method_not_allowed", "permission_error").await;
    let register = json!({"email": "new@example.com", "password": PASSWORD, "organization": "acme"});
    assert_error(app.register(&register).await, 403, "auth_method_not_allowed", "permission_error").await;
    assert_eq!(
        app.login(&json!({"email": "new@example.com", "password": PASSWORD})).await.status(),
        StatusCode::UNAUTHORIZED,
        "no account was created"
    );
    // Elsewhere the password still works.
    assert_eq!(app.refresh(&personal).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn an_organization_adds_its_own_limit_for_sign_ins_naming_it() {
    let app = spawn_app().await;
    let mut owner = app.signed_up_user().await;
    create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let limits = json!({"rate_limits": {"signin_ip": {"count": 2, "period": 60}}});
    assert_eq!(set_policy(&app, owner.access(), "acme", limits).await.status(), StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(login_to(&app, &owner.email, "acme").await.status(), StatusCode::OK);
    }
    let limited = login_to(&app, &owner.email, "acme").await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=31).contains(&retry_after), "{retry_after}");
    assert_error(limited, 429, "rate_limited", "rate_limit_error").await;
    // The server-wide limit is not spent: other organizations still sign in.
    assert_eq!(app.login(&json!({"email": owner.email, "password": PASSWORD})).await.status(), StatusCode::OK);
    app.clock.advance(Duration::seconds(31));
    assert_eq!(login_to(&app, &owner.email, "acme").await.status(), StatusCode::OK);
}
