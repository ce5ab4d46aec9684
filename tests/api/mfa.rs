//! The second factor: TOTP enrollment, sign-in with an mfa token, step-up, recovery codes, replay,
//! clock skew and the lockout — codes computed from the secret the server hands out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;
use totp_rs::{Builder, Secret};

use crate::helpers::{PASSWORD, TestApp, User, assert_error, set_cookies, spawn_app, spawn_app_with};

/// A user with an active TOTP factor: the secret, the confirmation's token response (at `aal2`) and
/// the recovery codes.
struct Enrolled {
    user: User,
    secret: Vec<u8>,
    confirmed: Value,
}

impl Enrolled {
    fn recovery_codes(&self) -> Vec<String> {
        self.confirmed["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
    }
}

/// The code an authenticator app shows at the server's `now` shifted by `steps` time steps.
pub fn code(app: &TestApp, secret: &[u8], steps: i64) -> String {
    let totp = Builder::new().with_secret(secret.to_vec()).build().unwrap();
    let at = app.clock.now().unix_timestamp() + steps * 30;
    totp.generate(u64::try_from(at).unwrap()).to_string()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap()
}

pub async fn post_bearer(app: &TestApp, path: &str, access: &str, body: &Value) -> reqwest::Response {
    app.client.post(app.url(path)).bearer_auth(access).json(body).send().await.unwrap()
}

pub async fn enroll(app: &TestApp, access: &str) -> Vec<u8> {
    let response = post_bearer(app, "/v1/auth/mfa/totp", access, &json!({})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let secret = body["secret"].as_str().unwrap();
    let uri = body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/IdentSphere:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")) && uri.contains("issuer=IdentSphere"), "{uri}");
    let qr = body["qr_svg"].as_str().unwrap().strip_prefix("data:image/svg+xml;base64,").unwrap();
    let svg = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(qr).unwrap()).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    Secret::try_from_base32(secret).unwrap().as_bytes().to_vec()
}

/// Enrolls and confirms TOTP in the session of `tokens` (a token response): the confirmation's token
/// response, at `aal2`.
pub async fn raised_to_aal2(app: &TestApp, tokens: &Value) -> Value {
    let access = tokens["access_token"].as_str().unwrap();
    let secret = enroll(app, access).await;
    let first_code = json!({"code": code(app, &secret, 0), "refresh_token": tokens["refresh_token"]});
    let response = post_bearer(app, "/v1/auth/mfa/totp/confirm", access, &first_code).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn enrolled_user(app: &TestApp) -> Enrolled {
    let user = app.signed_up_user().await;
    let secret = enroll(app, user.access()).await;
    let first_code = json!({"code": code(app, &secret, 0), "refresh_token": user.refresh()});
    let response = post_bearer(app, "/v1/auth/mfa/totp/confirm", user.access(), &first_code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let confirmed: Value = response.json().await.unwrap();
    Enrolled { user, secret, confirmed }
}

async fn login(app: &TestApp, email: &str) -> reqwest::Response {
    app.login(&json!({"email": email, "password": PASSWORD})).await
}

/// The `mfa_token` of a login that needs the second factor.
async fn mfa_token(app: &TestApp, email: &str) -> String {
    let response = login(app, email).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response).is_empty(), "no session before the second factor");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["mfa_required"], true);
    assert_eq!(body["factors"], json!(["totp"]));
    assert!(body.get("access_token").is_none(), "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

async fn verify(app: &TestApp, mfa_token: &str, code: &str) -> reqwest::Response {
    app.post("/v1/auth/mfa/verify", &json!({"mfa_token": mfa_token, "code": code})).await
}

#[actix_web::test]
async fn totp_enrollment_then_login_completes_with_a_code_at_aal2() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let sid = enrolled.user.tokens["session"]["id"].clone();
    // Confirmation raised the enrolling session to aal2, same family.
    assert_eq!(enrolled.confirmed["session"]["aal"], "aal2");
    assert_eq!(enrolled.confirmed["session"]["id"], sid);
    assert_eq!(claims(enrolled.confirmed["access_token"].as_str().unwrap())["aal"], "aal2");
    assert_eq!(enrolled.recovery_codes().len(), 10);
    let session: Value = app.session(enrolled.confirmed["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(session["factors"][0]["type"], "totp");
    assert_eq!(session["recovery_codes_left"], 10);

    let token = mfa_token(&app, &enrolled.user.email).await;
    let mfa = claims(&token);
    assert_eq!(mfa["typ"], "mfa");
    assert_eq!(mfa["exp"].as_i64().unwrap() - mfa["iat"].as_i64().unwrap(), 300);
    // An mfa token is no access token.
    assert_error(app.session(&token).await, 401, "token_invalid", "authentication_error").await;

    app.clock.advance(Duration::seconds(30));
    let response = verify(&app, &token, &code(&app, &enrolled.secret, 0)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response).contains_key("identsphere_at"));
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["session"]["aal"], "aal2");
    assert_eq!(tokens["session"]["id"], mfa["sid"], "the family the mfa token announced");
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!((access["aal"].as_str(), access["auth_time"].as_i64()), (Some("aal2"), mfa["auth_time"].as_i64()));
    assert_eq!(app.session(tokens["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    // The session refreshes at aal2.
    let refreshed: Value = app.refresh(tokens["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(refreshed["session"]["aal"], "aal2");
}

#[actix_web::test]
async fn a_code_is_accepted_once_and_within_one_step_of_skew() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    // The confirming code's own step is spent.
    let token = mfa_token(&app, &enrolled.user.email).await;
    assert_error(
        verify(&app, &token, &code(&app, &enrolled.secret, 0)).await,
        401,
        "mfa_invalid_code",
        "authentication_error",
    )
    .await;
    // Two steps off either way is refused; one step late is accepted, once.
    app.clock.advance(Duration::seconds(90));
    for steps in [-2, 2] {
        let response = verify(&app, &token, &code(&app, &enrolled.secret, steps)).await;
        assert_error(response, 401, "mfa_invalid_code", "authentication_error").await;
    }
    let late = code(&app, &enrolled.secret, -1);
    assert_eq!(verify(&app, &token, &late).await.status(), StatusCode::OK);
    let again = mfa_token(&app, &enrolled.user.email).await;
    assert_error(verify(&app, &again, &late).await, 401, "mfa_invalid_code", "authentication_error").await;
    // The mfa token that succeeded does not work twice.
    app.clock.advance(Duration::seconds(30));
    assert_error(
        verify(&app, &token, &code(&app, &enrolled.secret, 0)).await,
        401,
        "token_invalid",
        "authentication_error",
    )
    .await;
}

#[actix_web::test]
async fn a_recovery_code_completes_a_sign_in_once() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let codes = enrolled.recovery_codes();
    let token = mfa_token(&app, &enrolled.user.email).await;
    // Typed in lower case with spaces: the same code.
    let typed = codes[3].to_lowercase().replace('-', " ");
    let response = verify(&app, &token, &typed).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["session"]["aal"], "aal2");
    let session: Value = app.session(tokens["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(session["recovery_codes_left"], 9);

    let token = mfa_token(&app, &enrolled.user.email).await;
    assert_error(verify(&app, &token, &codes[3]).await, 401, "mfa_invalid_code", "authentication_error").await;
    assert_error(verify(&app, &token, "AAAA-BBBB-CCCC-DDDD").await, 401, "mfa_invalid_code", "authentication_error")
        .await;
    assert_eq!(verify(&app, &token, &codes[4]).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn five_wrong_codes_lock_out_further_tries_with_retry_after() {
    let app = spawn_app_with(&[("IDENTSPHERE_RATE_LIMIT_MFA_FAILURES", "5/900")]).await;
    let enrolled = enrolled_user(&app).await;
    app.clock.advance(Duration::seconds(30));
    let token = mfa_token(&app, &enrolled.user.email).await;
    for _ in 0..5 {
        assert_error(verify(&app, &token, "000000").await, 401, "mfa_invalid_code", "authentication_error").await;
    }
    // Even the right code is refused now, for the token and for the user.
    let right = code(&app, &enrolled.secret, 0);
    let refused = verify(&app, &token, &right).await;
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 900, "{retry}");
    assert_error(refused, 429, "rate_limited", "rate_limit_error").await;
    let fresh = mfa_token(&app, &enrolled.user.email).await;
    assert_error(verify(&app, &fresh, &right).await, 429, "rate_limited", "rate_limit_error").await;
    // Once the wait is over the right code works.
    app.clock.advance(Duration::seconds(i64::try_from(retry).unwrap()));
    let fresh = mfa_token(&app, &enrolled.user.email).await;
    assert_eq!(verify(&app, &fresh, &code(&app, &enrolled.secret, 0)).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_spent_mfa_token_spends_no_code() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let token = mfa_token(&app, &enrolled.user.email).await;
    app.clock.advance(Duration::seconds(30));
    assert_eq!(verify(&app, &token, &code(&app, &enrolled.secret, 0)).await.status(), StatusCode::OK);
    // The token is spent: the recovery code sent with it again is refused, and not used up.
    let recovery = &enrolled.recovery_codes()[0];
    assert_error(verify(&app, &token, recovery).await, 401, "token_invalid", "authentication_error").await;
    let fresh = mfa_token(&app, &enrolled.user.email).await;
    let signed_in: Value = verify(&app, &fresh, recovery).await.json().await.unwrap();
    let session: Value = app.session(signed_in["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(session["recovery_codes_left"], 9, "{session}");
}

#[actix_web::test]
async fn an_mfa_token_expires_after_five_minutes() {
    let app = spawn_app().await;
    let enrolled = enrolled_user(&app).await;
    let token = mfa_token(&app, &enrolled.user.email).await;
    app.clock.advance(Duration::minutes(5));
    assert_error(
        verify(&app, &token, &code(&app, &enrolled.secret, 0)).await,
        401,
        "token_expired",
        "authentication_error",
    )
    .await;
}

#[actix_web::test]
async fn step_up_raises_an_aal1_session_to_aal2_keeping_its_sid() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    // A second session, signed in before the factor existed, stays at aal1.
    let older = app.second_session(&user).await;
    let secret = enroll(&app, user.access()).await;
    let first_code = json!({"code": code(&app, &secret, 0), "refresh_token": user.refresh()});
    let confirm = post_bearer(&app, "/v1/auth/mfa/totp/confirm", user.access(), &first_code).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let older_access = older["access_token"].as_str().unwrap();

    // Changing credentials needs aal2 now.
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    let response = post_bearer(&app, "/v1/auth/password", older_access, &change).await;
    assert_error(response, 403, "insufficient_aal", "permission_error").await;
    let removal = app.client.delete(app.url("/v1/auth/mfa/totp")).bearer_auth(older_access).send().await.unwrap();
    assert_error(removal, 403, "insufficient_aal", "permission_error").await;

    app.clock.advance(Duration::seconds(30));
    let step_up = json!({"code": code(&app, &secret, 0), "refresh_token": older["refresh_token"]});
    let response = post_bearer(&app, "/v1/auth/mfa/verify", older_access, &step_up).await;
    assert_eq!(response.status(), StatusCode::OK);
    let raised: Value = response.json().await.unwrap();
    assert_eq!(raised["session"]["id"], older["session"]["id"]);
    assert_eq!(raised["session"]["aal"], "aal2");
    assert_eq!(raised["session"]["auth_time"], older["session"]["auth_time"]);
    // The replaced refresh token is spent: within the grace window it yields the aal2 successor.
    let replay: Value = app.refresh(older["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(replay["refresh_token"], raised["refresh_token"]);
    assert_eq!(replay["session"]["aal"], "aal2");

    let raised_access = raised["access_token"].as_str().unwrap();
    let removal = app.client.delete(app.url("/v1/auth/mfa/totp")).bearer_auth(raised_access).send().await.unwrap();
    assert_eq!(removal.status(), StatusCode::NO_CONTENT);
    // Without the factor, login signs in directly again.
    let response = login(&app, &user.email).await;
    let body: Value = response.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    let session: Value = app.session(raised_access).await.json().await.unwrap();
    assert_eq!((session["factors"].clone(), session["recovery_codes_left"].clone()), (json!([]), json!(0)));
}

#[actix_web::test]
async fn enrollment_states_are_enforced() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let confirm = |code: String| {
        let request = app.client.post(app.url("/v1/auth/mfa/totp/confirm")).bearer_auth(user.access());
        request.json(&json!({ "code": code, "refresh_token": user.refresh() })).send()
    };
    assert_error(confirm("123456".into()).await.unwrap(), 409, "mfa_not_enrolled", "conflict_error").await;
    let removal = app.client.delete(app.url("/v1/auth/mfa/totp")).bearer_auth(user.access()).send().await.unwrap();
    assert_error(removal, 403, "insufficient_aal", "permission_error").await;
    // A restarted enrollment replaces the secret: the first one's codes no longer confirm.
    let first = enroll(&app, user.access()).await;
    let second = enroll(&app, user.access()).await;
    assert_ne!(first, second);
    assert_error(confirm(code(&app, &first, 0)).await.unwrap(), 401, "mfa_invalid_code", "authentication_error").await;
    // Until confirmed, login needs no second factor.
    let body: Value = login(&app, &user.email).await.json().await.unwrap();
    assert!(body["access_token"].is_string(), "{body}");
    let confirmed: Value = confirm(code(&app, &second, 0)).await.unwrap().json().await.unwrap();
    let access = confirmed["access_token"].as_str().unwrap();
    let again = post_bearer(&app, "/v1/auth/mfa/totp", access, &json!({})).await;
    assert_error(again, 409, "mfa_already_enrolled", "conflict_error").await;
}

#[actix_web::test]
async fn an_access_token_alone_neither_plants_a_factor_nor_yields_a_refresh_token() {
    let app = spawn_app().await;
    let victim = app.signed_up_user().await;
    // What a resource server sees: the access token, nothing else.
    let stolen = victim.access();
    let secret = enroll(&app, stolen).await;
    let confirm =
        post_bearer(&app, "/v1/auth/mfa/totp/confirm", stolen, &json!({"code": code(&app, &secret, 0)})).await;
    assert_error(confirm, 401, "token_missing", "authentication_error").await;
    let session: Value = app.session(stolen).await.json().await.unwrap();
    assert_eq!(session["factors"], json!([]), "nothing was confirmed");
    // Another family's refresh token is no key to this one.
    let other = app.second_session(&victim).await;
    let with_other = json!({"code": code(&app, &secret, 0), "refresh_token": other["refresh_token"]});
    let confirm = post_bearer(&app, "/v1/auth/mfa/totp/confirm", stolen, &with_other).await;
    assert_error(confirm, 401, "token_invalid", "authentication_error").await;

    // Eleven minutes after the sign-in, the access token (refreshed, the same sign-in) enrolls nothing.
    app.clock.advance(Duration::minutes(11));
    let refreshed: Value = app.refresh(victim.refresh()).await.json().await.unwrap();
    let later = refreshed["access_token"].as_str().unwrap();
    let response = post_bearer(&app, "/v1/auth/mfa/totp", later, &json!({})).await;
    assert_error(response, 403, "reauthentication_required", "permission_error").await;
    let response = post_bearer(&app, "/v1/auth/mfa/totp", later, &json!({"password": "not the password"})).await;
    assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    // The password typed again is the recent authentication.
    let response = post_bearer(&app, "/v1/auth/mfa/totp", later, &json!({"password": PASSWORD})).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn removing_a_factor_needs_a_recent_sign_in_or_the_password() {
    let app = spawn_app().await;
    let Enrolled { user, secret, .. } = enrolled_user(&app).await;
    app.clock.advance(Duration::seconds(30));
    let tokens: Value =
        verify(&app, &mfa_token(&app, &user.email).await, &code(&app, &secret, 0)).await.json().await.unwrap();
    app.clock.advance(Duration::minutes(11));
    let refreshed: Value = app.refresh(tokens["refresh_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(refreshed["session"]["aal"], "aal2");
    let aal2_but_old = refreshed["access_token"].as_str().unwrap();
    let remove = |body: Option<Value>| {
        let request = app.client.delete(app.url("/v1/auth/mfa/totp")).bearer_auth(aal2_but_old);
        match body {
            Some(body) => request.json(&body).send(),
            None => request.send(),
        }
    };
    assert_error(remove(None).await.unwrap(), 403, "reauthentication_required", "permission_error").await;
    let wrong = remove(Some(json!({"password": "not the password"}))).await.unwrap();
    assert_error(wrong, 401, "invalid_credentials", "authentication_error").await;
    assert_eq!(remove(Some(json!({"password": PASSWORD}))).await.unwrap().status(), StatusCode::NO_CONTENT);
}
