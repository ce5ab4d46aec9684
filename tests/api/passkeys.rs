//! Passkeys, every ceremony driven by a software authenticator (`authenticator.rs`): registration,
//! discoverable sign-in, the second factor of a password sign-in, step-up — and each way one is refused:
//! wrong origin, wrong RP ID, a replayed or expired ceremony, a tampered signature, a counter that went
//! back, another user's credential, a deleted passkey.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;

use crate::authenticator::Authenticator;
use crate::helpers::{PASSWORD, PUBLIC_BASE_URL, TestApp, User, assert_error, set_cookies, spawn_app, spawn_app_with};
use crate::mfa::post_bearer;
use crate::organizations::{call, json_of, switch};

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64URL.decode(payload).unwrap()).unwrap()
}

async fn body_of(response: reqwest::Response, status: StatusCode) -> Value {
    json_of(response, status).await
}

/// Registers a passkey of `authenticator` for `user` (whose session just signed in): the passkey view.
pub(crate) async fn register(app: &TestApp, user: &User, authenticator: &mut Authenticator) -> Value {
    let options = post_bearer(app, "/v1/auth/passkeys/registration/options", user.access(), &json!({})).await;
    let options = body_of(options, StatusCode::OK).await;
    let credential = authenticator.register(&options, None);
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": credential, "name": "Laptop"});
    body_of(post_bearer(app, "/v1/auth/passkeys/registration", user.access(), &body).await, StatusCode::CREATED).await
}

/// Starts a sign-in ceremony with `body` (`{}` for a discoverable sign-in).
async fn authentication_options(app: &TestApp, body: &Value) -> Value {
    body_of(app.post("/v1/auth/passkeys/authentication/options", body).await, StatusCode::OK).await
}

/// Signs in with `authenticator`'s passkey: the raw response.
pub(crate) async fn sign_in(app: &TestApp, authenticator: &mut Authenticator) -> reqwest::Response {
    let options = authentication_options(app, &json!({})).await;
    let credential = authenticator.authenticate(&options);
    finish(app, &options, &credential).await
}

async fn finish(app: &TestApp, options: &Value, credential: &Value) -> reqwest::Response {
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": credential});
    app.post("/v1/auth/passkeys/authentication", &body).await
}

async fn user_with_passkey(app: &TestApp) -> (User, Authenticator, Value) {
    let user = app.signed_up_user().await;
    let mut authenticator = Authenticator::new(PUBLIC_BASE_URL);
    let passkey = register(app, &user, &mut authenticator).await;
    (user, authenticator, passkey)
}

#[actix_web::test]
async fn a_registered_passkey_signs_in_without_an_email_at_aal2() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let options = post_bearer(&app, "/v1/auth/passkeys/registration/options", user.access(), &json!({})).await;
    let options = body_of(options, StatusCode::OK).await;
    // What `PublicKeyCredential.parseCreationOptionsFromJSON` takes.
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(public_key["rp"]["name"], "IdentSphere");
    assert_eq!(public_key["user"]["name"], user.email.as_str());
    assert_eq!(public_key["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(public_key["authenticatorSelection"]["userVerification"], "preferred");
    assert!(B64URL.decode(public_key["challenge"].as_str().unwrap()).unwrap().len() >= 16);
    assert!(public_key["pubKeyCredParams"].as_array().unwrap().iter().any(|p| p["alg"] == -7));

    let mut authenticator = Authenticator::new(PUBLIC_BASE_URL);
    let credential = authenticator.register(&options, None);
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": credential});
    let passkey =
        body_of(post_bearer(&app, "/v1/auth/passkeys/registration", user.access(), &body).await, StatusCode::CREATED)
            .await;
    assert_eq!(passkey["name"], "Passkey");
    assert_eq!(passkey["transports"], json!(["internal", "hybrid"]));
    assert_eq!(passkey["backed_up"], false);
    assert!(passkey["last_used_at"].is_null());
    let list = call(&app, Method::GET, "/v1/auth/passkeys", user.access(), None).await;
    assert_eq!(body_of(list, StatusCode::OK).await["passkeys"], json!([passkey]));

    // A discoverable sign-in: the options name no credential and no user.
    let options = authentication_options(&app, &json!({})).await;
    assert_eq!(options["publicKey"]["allowCredentials"], json!([]));
    assert_eq!(options["publicKey"]["rpId"], "localhost");
    let credential = authenticator.authenticate(&options);
    let response = finish(&app, &options, &credential).await;
    let cookies = set_cookies(&response);
    let tokens = body_of(response, StatusCode::OK).await;
    assert!(cookies.contains_key("identsphere_at") && cookies.contains_key("identsphere_rt"));
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!((access["auth_method"].as_str(), access["aal"].as_str()), (Some("passkey"), Some("aal2")));
    assert_eq!(access["sub"], claims(user.access())["sub"]);
    let session = body_of(app.session(tokens["access_token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(session["session"]["auth_method"], "passkey", "{session}");
    // The use is recorded; a passkey session refreshes like any other.
    let list = body_of(call(&app, Method::GET, "/v1/auth/passkeys", user.access(), None).await, StatusCode::OK).await;
    assert!(list["passkeys"][0]["last_used_at"].is_string());
    let refreshed = body_of(app.refresh(tokens["refresh_token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(claims(refreshed["access_token"].as_str().unwrap())["auth_method"], "passkey");
}

#[actix_web::test]
async fn without_user_verification_a_passkey_is_one_factor() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let mut authenticator = Authenticator::new(PUBLIC_BASE_URL);
    authenticator.user_verification = false;
    register(&app, &user, &mut authenticator).await;
    let tokens = body_of(sign_in(&app, &mut authenticator).await, StatusCode::OK).await;
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["aal"], "aal1");
}

#[actix_web::test]
async fn a_passkey_is_the_second_factor_of_a_password_sign_in_and_steps_a_session_up() {
    let app = spawn_app().await;
    let (user, mut authenticator, _) = user_with_passkey(&app).await;
    let login = app.login(&json!({"email": user.email, "password": PASSWORD})).await;
    let step = body_of(login, StatusCode::OK).await;
    assert_eq!((step["mfa_required"].as_bool(), step["factors"].clone()), (Some(true), json!(["passkey"])));
    let mfa_token = step["mfa_token"].as_str().unwrap();

    let options = authentication_options(&app, &json!({"mfa_token": mfa_token})).await;
    let allowed = options["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1, "the user's passkeys are listed: {options}");
    let credential = authenticator.authenticate(&options);
    // The ceremony of an mfa token is finished at mfa/verify, not as a sign-in of its own.
    assert_error(finish(&app, &options, &credential).await, 400, "ceremony_expired", "invalid_request_error").await;
    let options = authentication_options(&app, &json!({"mfa_token": mfa_token})).await;
    let early = authentication_options(&app, &json!({"mfa_token": mfa_token})).await;
    let credential = authenticator.authenticate(&options);
    let verify =
        json!({"mfa_token": mfa_token, "passkey": {"ceremony_id": options["ceremony_id"], "credential": credential}});
    let tokens = body_of(app.post("/v1/auth/mfa/verify", &verify).await, StatusCode::OK).await;
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!((access["auth_method"].as_str(), access["aal"].as_str()), (Some("password"), Some("aal2")));
    // The mfa token worked once: a spent one starts no ceremony, and finishes none started before it was spent.
    let spent = app.post("/v1/auth/passkeys/authentication/options", &json!({"mfa_token": mfa_token})).await;
    assert_error(spent, 401, "token_invalid", "authentication_error").await;
    let credential = authenticator.authenticate(&early);
    let verify =
        json!({"mfa_token": mfa_token, "passkey": {"ceremony_id": early["ceremony_id"], "credential": credential}});
    assert_error(app.post("/v1/auth/mfa/verify", &verify).await, 401, "token_invalid", "authentication_error").await;

    // Step-up: the aal1 session of the sign-up raises itself with the passkey, keeping its sid.
    assert_eq!(claims(user.access())["aal"], "aal1");
    let options = body_of(
        post_bearer(&app, "/v1/auth/passkeys/authentication/options", user.access(), &json!({"step_up": true})).await,
        StatusCode::OK,
    )
    .await;
    let credential = authenticator.authenticate(&options);
    let verify = json!({"refresh_token": user.refresh(), "passkey": {"ceremony_id": options["ceremony_id"], "credential": credential}});
    let raised = body_of(post_bearer(&app, "/v1/auth/mfa/verify", user.access(), &verify).await, StatusCode::OK).await;
    let access = claims(raised["access_token"].as_str().unwrap());
    assert_eq!(access["aal"], "aal2");
    assert_eq!(access["sid"], claims(user.access())["sid"]);
}

#[actix_web::test]
async fn ceremonies_from_another_origin_or_for_another_relying_party_are_refused() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let options = body_of(
        post_bearer(&app, "/v1/auth/passkeys/registration/options", user.access(), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let mut phished = Authenticator::new("http://localhost.evil.example:3000");
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": phished.register(&options, None)});
    let response = post_bearer(&app, "/v1/auth/passkeys/registration", user.access(), &body).await;
    assert_error(response, 401, "passkey_invalid", "authentication_error").await;
    let options = body_of(
        post_bearer(&app, "/v1/auth/passkeys/registration/options", user.access(), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let mut other_rp = Authenticator::new(PUBLIC_BASE_URL);
    other_rp.rp_id_override = Some("evil.example".into());
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": other_rp.register(&options, None)});
    let response = post_bearer(&app, "/v1/auth/passkeys/registration", user.access(), &body).await;
    assert_error(response, 401, "passkey_invalid", "authentication_error").await;

    let mut authenticator = Authenticator::new(PUBLIC_BASE_URL);
    register(&app, &user, &mut authenticator).await;
    let mut wrong_origin = authenticator.clone();
    wrong_origin.origin = "https://evil.example".into();
    assert_error(sign_in(&app, &mut wrong_origin).await, 401, "passkey_invalid", "authentication_error").await;
    let mut wrong_rp = authenticator.clone();
    wrong_rp.rp_id_override = Some("evil.example".into());
    assert_error(sign_in(&app, &mut wrong_rp).await, 401, "passkey_invalid", "authentication_error").await;
    assert_eq!(sign_in(&app, &mut authenticator).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_ceremony_works_once_and_for_five_minutes() {
    let app = spawn_app().await;
    let (_, mut authenticator, _) = user_with_passkey(&app).await;
    let options = authentication_options(&app, &json!({})).await;
    let credential = authenticator.authenticate(&options);
    assert_eq!(finish(&app, &options, &credential).await.status(), StatusCode::OK);
    assert_error(finish(&app, &options, &credential).await, 400, "ceremony_expired", "invalid_request_error").await;

    let options = authentication_options(&app, &json!({})).await;
    app.clock.advance(Duration::minutes(5) + Duration::seconds(1));
    let credential = authenticator.authenticate(&options);
    assert_error(finish(&app, &options, &credential).await, 400, "ceremony_expired", "invalid_request_error").await;
    let unknown = json!({"ceremony_id": uuid::Uuid::new_v4(), "credential": credential});
    let response = app.post("/v1/auth/passkeys/authentication", &unknown).await;
    assert_error(response, 400, "ceremony_expired", "invalid_request_error").await;
}

#[actix_web::test]
async fn a_registration_ceremony_belongs_to_its_user_and_its_step() {
    let app = spawn_app().await;
    let (ada, mut authenticator, _) = user_with_passkey(&app).await;
    let bob = app.signed_up_user().await;
    let options = body_of(
        post_bearer(&app, "/v1/auth/passkeys/registration/options", ada.access(), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": Authenticator::new(PUBLIC_BASE_URL).register(&options, None)});
    let response = post_bearer(&app, "/v1/auth/passkeys/registration", bob.access(), &body).await;
    assert_error(response, 400, "ceremony_expired", "invalid_request_error").await;
    // A registration ceremony is no sign-in ceremony, even with a valid assertion.
    let registration = body_of(
        post_bearer(&app, "/v1/auth/passkeys/registration/options", ada.access(), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let sign_in_options = authentication_options(&app, &json!({})).await;
    let assertion = authenticator.authenticate(&sign_in_options);
    let response = finish(&app, &registration, &assertion).await;
    assert_error(response, 400, "ceremony_expired", "invalid_request_error").await;
}

#[actix_web::test]
async fn a_tampered_signature_is_refused() {
    let app = spawn_app().await;
    let (_, mut authenticator, _) = user_with_passkey(&app).await;
    let options = authentication_options(&app, &json!({})).await;
    let mut credential = authenticator.authenticate(&options);
    let mut signature = B64URL.decode(credential["response"]["signature"].as_str().unwrap()).unwrap();
    let last = signature.len() - 1;
    signature[last] ^= 1;
    credential["response"]["signature"] = json!(B64URL.encode(signature));
    assert_error(finish(&app, &options, &credential).await, 401, "passkey_invalid", "authentication_error").await;
}

#[actix_web::test]
async fn a_signature_counter_that_goes_back_is_a_cloned_authenticator_refused_and_audited() {
    let app = spawn_app().await;
    let (user, mut authenticator, passkey) = user_with_passkey(&app).await;
    let clone = authenticator.clone();
    assert_eq!(sign_in(&app, &mut authenticator).await.status(), StatusCode::OK);
    assert_eq!(sign_in(&app, &mut authenticator).await.status(), StatusCode::OK);
    // The clone signs with counter 1 after the original reached 2.
    let mut clone = clone;
    assert_error(sign_in(&app, &mut clone).await, 401, "passkey_invalid", "authentication_error").await;
    let org = claims(user.access())["org"].as_str().unwrap().to_owned();
    let log = call(&app, Method::GET, &format!("/v1/organizations/{org}/audit-log"), user.access(), None).await;
    let log = body_of(log, StatusCode::OK).await;
    let events = log["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["action"] == "passkey.counter_regressed" && e["target"] == passkey["id"]), "{log}");
}

#[actix_web::test]
async fn another_users_passkey_and_a_deleted_one_prove_nothing() {
    let app = spawn_app().await;
    let (ada, _, _) = user_with_passkey(&app).await;
    let (bob, mut bobs_authenticator, bobs_passkey) = user_with_passkey(&app).await;
    // Ada's password sign-in, finished with Bob's passkey.
    let step = body_of(app.login(&json!({"email": ada.email, "password": PASSWORD})).await, StatusCode::OK).await;
    let mfa_token = step["mfa_token"].as_str().unwrap();
    let mut options = authentication_options(&app, &json!({"mfa_token": mfa_token})).await;
    options["publicKey"]["allowCredentials"] = json!([]);
    let credential = bobs_authenticator.authenticate(&options);
    let verify =
        json!({"mfa_token": mfa_token, "passkey": {"ceremony_id": options["ceremony_id"], "credential": credential}});
    assert_error(app.post("/v1/auth/mfa/verify", &verify).await, 401, "passkey_invalid", "authentication_error").await;

    // A credential registered again by another user is refused: credential ids are unique.
    let options = body_of(
        post_bearer(&app, "/v1/auth/passkeys/registration/options", ada.access(), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    let reused = bobs_authenticator.credentials[0].clone();
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": bobs_authenticator.register(&options, Some(&reused))});
    let response = post_bearer(&app, "/v1/auth/passkeys/registration", ada.access(), &body).await;
    assert_error(response, 409, "passkey_exists", "conflict_error").await;
    bobs_authenticator.credentials.pop();

    // Deleted: Bob's session signed in just now, so no password is needed.
    let path = format!("/v1/auth/passkeys/{}", bobs_passkey["id"].as_str().unwrap());
    assert_eq!(call(&app, Method::DELETE, &path, bob.access(), None).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        call(&app, Method::DELETE, &path, bob.access(), None).await,
        404,
        "passkey_not_found",
        "invalid_request_error",
    )
    .await;
    assert_error(sign_in(&app, &mut bobs_authenticator).await, 401, "passkey_invalid", "authentication_error").await;
    // And Bob's password sign-in no longer asks for a second factor.
    let login = body_of(app.login(&json!({"email": bob.email, "password": PASSWORD})).await, StatusCode::OK).await;
    assert!(login["access_token"].is_string(), "{login}");
}

#[actix_web::test]
async fn passkeys_are_renamed_and_deleted_only_by_a_recent_or_aal2_session() {
    let app = spawn_app().await;
    let (user, _, passkey) = user_with_passkey(&app).await;
    assert_eq!(passkey["name"], "Laptop");
    let path = format!("/v1/auth/passkeys/{}", passkey["id"].as_str().unwrap());
    let renamed = call(&app, Method::PATCH, &path, user.access(), Some(&json!({"name": "  Work phone "}))).await;
    assert_eq!(body_of(renamed, StatusCode::OK).await["name"], "Work phone");
    let blank = call(&app, Method::PATCH, &path, user.access(), Some(&json!({"name": "  "}))).await;
    assert_error(blank, 400, "invalid_request", "invalid_request_error").await;
    let other =
        call(&app, Method::PATCH, "/v1/auth/passkeys/not-an-id", user.access(), Some(&json!({"name": "x"}))).await;
    assert_error(other, 404, "passkey_not_found", "invalid_request_error").await;
    let stranger = app.signed_up_user().await;
    let theirs = call(&app, Method::PATCH, &path, stranger.access(), Some(&json!({"name": "mine"}))).await;
    assert_error(theirs, 404, "passkey_not_found", "invalid_request_error").await;

    // Eleven minutes later the aal1 session needs the password again.
    app.clock.advance(Duration::minutes(11));
    let refreshed = body_of(app.refresh(user.refresh()).await, StatusCode::OK).await;
    let access = refreshed["access_token"].as_str().unwrap();
    assert_error(
        call(&app, Method::DELETE, &path, access, None).await,
        403,
        "reauthentication_required",
        "permission_error",
    )
    .await;
    let options = post_bearer(&app, "/v1/auth/passkeys/registration/options", access, &json!({})).await;
    assert_error(options, 403, "reauthentication_required", "permission_error").await;
    let with_password = call(&app, Method::DELETE, &path, access, Some(&json!({"password": PASSWORD}))).await;
    assert_eq!(with_password.status(), StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn an_organization_policy_governs_passkey_sign_ins_and_keeps_the_last_passkey() {
    let app = spawn_app().await;
    let (mut owner, mut authenticator, passkey) = user_with_passkey(&app).await;
    let acme = json!({"name": "Acme", "slug": "acme"});
    let created = call(&app, Method::POST, "/v1/organizations", owner.access(), Some(&acme)).await;
    let org = body_of(created, StatusCode::CREATED).await;
    owner.tokens = body_of(switch(&app, owner.refresh(), &org["id"]).await, StatusCode::OK).await;
    let policy = |methods: Value| json!({"policy": {"auth_methods": methods}});
    let set =
        call(&app, Method::PATCH, "/v1/organizations/acme", owner.access(), Some(&policy(json!(["password"])))).await;
    assert_eq!(set.status(), StatusCode::OK);
    let options = authentication_options(&app, &json!({"organization": "acme"})).await;
    let credential = authenticator.authenticate(&options);
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": credential, "organization": "acme"});
    let refused = app.post("/v1/auth/passkeys/authentication", &body).await;
    assert_error(refused, 403, "auth_method_not_allowed", "permission_error").await;

    let set =
        call(&app, Method::PATCH, "/v1/organizations/acme", owner.access(), Some(&policy(json!(["passkey"])))).await;
    assert_eq!(set.status(), StatusCode::OK);
    let options = authentication_options(&app, &json!({"organization": "acme"})).await;
    let credential = authenticator.authenticate(&options);
    let body = json!({"ceremony_id": options["ceremony_id"], "credential": credential, "organization": "acme"});
    let tokens = body_of(app.post("/v1/auth/passkeys/authentication", &body).await, StatusCode::OK).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["auth_method"], "passkey");
    // Acme admits only passkeys: the owner's only one stays.
    let path = format!("/v1/auth/passkeys/{}", passkey["id"].as_str().unwrap());
    let response = call(&app, Method::DELETE, &path, access, None).await;
    assert_error(response, 409, "last_sign_in_method", "conflict_error").await;
    let second = register(
        &app,
        &User { email: owner.email.clone(), tokens: tokens.clone() },
        &mut Authenticator::new(PUBLIC_BASE_URL),
    )
    .await;
    assert_ne!(second["id"], passkey["id"]);
    assert_eq!(call(&app, Method::DELETE, &path, access, None).await.status(), StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn a_verified_passkey_meets_a_required_second_factor_and_an_unverified_one_does_not() {
    let app = spawn_app().await;
    let (mut owner, mut verified, _) = user_with_passkey(&app).await;
    let mut unverified = Authenticator::new(PUBLIC_BASE_URL);
    unverified.user_verification = false;
    register(&app, &owner, &mut unverified).await;
    let acme = json!({"name": "Acme", "slug": "acme"});
    let org =
        body_of(call(&app, Method::POST, "/v1/organizations", owner.access(), Some(&acme)).await, StatusCode::CREATED)
            .await;
    owner.tokens = body_of(switch(&app, owner.refresh(), &org["id"]).await, StatusCode::OK).await;
    let policy = json!({"policy": {"mfa_required": true}});
    let set = call(&app, Method::PATCH, "/v1/organizations/acme", owner.access(), Some(&policy)).await;
    assert_eq!(set.status(), StatusCode::OK);

    let sign_in_to_acme = async |authenticator: &mut Authenticator| {
        let options = authentication_options(&app, &json!({"organization": "acme"})).await;
        let credential = authenticator.authenticate(&options);
        let body = json!({"ceremony_id": options["ceremony_id"], "credential": credential, "organization": "acme"});
        body_of(app.post("/v1/auth/passkeys/authentication", &body).await, StatusCode::OK).await
    };
    let tokens = sign_in_to_acme(&mut verified).await;
    assert_eq!(claims(tokens["access_token"].as_str().unwrap())["aal"], "aal2");
    // An aal2 passkey session refreshes where a second factor is required.
    assert_eq!(app.refresh(tokens["refresh_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    // Without user verification the passkey was one factor; the user has no TOTP: enroll one first.
    let step = sign_in_to_acme(&mut unverified).await;
    assert_eq!(step["mfa_required"], true, "{step}");
    assert_eq!((step["enrollment_required"].as_bool(), step["factors"].clone()), (Some(true), json!([])));
}

#[actix_web::test]
async fn bad_passkey_requests_get_the_envelope_and_change_nothing() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let missing = app.post("/v1/auth/passkeys/authentication", &json!({"ceremony_id": uuid::Uuid::new_v4()})).await;
    assert_error(missing, 400, "invalid_request", "invalid_request_error").await;
    let garbage = json!({"ceremony_id": uuid::Uuid::new_v4(), "credential": {"id": 1, "response": "x"}});
    let response = app.post("/v1/auth/passkeys/authentication", &garbage).await;
    assert_error(response, 400, "invalid_request", "invalid_request_error").await;
    let both = json!({"mfa_token": "x", "step_up": true});
    let response = post_bearer(&app, "/v1/auth/passkeys/authentication/options", user.access(), &both).await;
    assert_error(response, 400, "invalid_request", "invalid_request_error").await;
    let neither = json!({"mfa_token": "x"});
    assert_error(app.post("/v1/auth/mfa/verify", &neither).await, 400, "invalid_request", "invalid_request_error")
        .await;
    // A user without a passkey cannot start a second-factor ceremony.
    let step_up =
        post_bearer(&app, "/v1/auth/passkeys/authentication/options", user.access(), &json!({"step_up": true})).await;
    assert_error(step_up, 409, "mfa_not_enrolled", "conflict_error").await;
    assert_error(
        app.post("/v1/auth/passkeys/authentication/options", &json!({"step_up": true})).await,
        401,
        "token_missing",
        "authentication_error",
    )
    .await;
}

#[actix_web::test]
async fn a_server_on_an_ip_address_has_passkeys_off_and_says_so() {
    let app = spawn_app_with(&[("IDENTSPHERE_PUBLIC_BASE_URL", "http://127.0.0.1:3000")]).await;
    let response = app.post("/v1/auth/passkeys/authentication/options", &json!({})).await;
    assert_error(response, 404, "passkeys_unavailable", "invalid_request_error").await;
    let user = app.signed_up_user().await;
    let response = post_bearer(&app, "/v1/auth/passkeys/registration/options", user.access(), &json!({})).await;
    assert_error(response, 404, "passkeys_unavailable", "invalid_request_error").await;
}
