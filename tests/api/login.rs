use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_error, ids, series, spawn_app, spawn_process_app};

#[actix_web::test]
async fn login_accepts_the_email_in_any_case_and_starts_a_new_family() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let response =
        app.login(&json!({ "email": format!("  {}", user.email.to_uppercase()), "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], user.tokens["user"]["id"]);
    assert_ne!(body["session"]["id"], user.tokens["session"]["id"], "a new session family");
    assert_eq!(body["session"]["organization_id"], user.tokens["session"]["organization_id"]);
}

#[actix_web::test]
async fn wrong_password_and_unknown_email_are_indistinguishable() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let wrong = app.login(&json!({ "email": user.email, "password": "not the password" })).await;
    let wrong = assert_error(wrong, 401, "invalid_credentials", "authentication_error").await;
    let unknown = app.login(&json!({ "email": "nobody@example.com", "password": "not the password" })).await;
    let unknown = assert_error(unknown, 401, "invalid_credentials", "authentication_error").await;
    assert_eq!(wrong, unknown, "same body");
}

/// An unknown email is checked against a dummy hash of the same cost, on the same hashing threads, so the two
/// cases take the same time. Measured by what load cannot change, on the real binary in a process of its own:
/// each login of either kind is one Argon2 verification (the server's own count), and both kinds cost the server
/// the same CPU time within a factor of 1.6, over 20 logins each in interleaved rounds; skipping the hash for an
/// unknown email would make it 10 to 30 times cheaper. Wall time would be the other processes' as much as
/// this server's on a busy machine, the more so as hashes run at nice 10: beside the other tests of a plain
/// `cargo test`, the fastest of 11 wall-clock samples came out at 21 ms for one kind and 37 ms for the other.
#[actix_web::test]
async fn wrong_password_and_unknown_email_take_the_same_time() {
    let app = spawn_process_app(&[]).await;
    let user = app.signed_up_user().await;
    let wrong = json!({ "email": user.email, "password": "not the password" });
    let unknown = json!({ "email": "nobody@example.com", "password": "not the password" });
    let verifications = async || {
        let metrics = app.get("/metrics").await.text().await.unwrap();
        series(&metrics, "identsphere_password_hash_seconds_count", &[r#"operation="verify""#]).unwrap_or(0.0)
    };
    let (mut wrong_cpu, mut unknown_cpu) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..4 {
        for (body, cpu) in [(&wrong, &mut wrong_cpu), (&unknown, &mut unknown_cpu)] {
            let verified = verifications().await;
            let started = app.cpu_time();
            for _ in 0..5 {
                assert_eq!(app.login(body).await.status(), StatusCode::UNAUTHORIZED);
            }
            *cpu += app.cpu_time() - started;
            assert_eq!(verifications().await - verified, 5.0, "one Argon2 verification per login: {body}");
        }
    }
    let ratio = wrong_cpu.as_secs_f64() / unknown_cpu.as_secs_f64();
    assert!(unknown_cpu / 20 > Duration::from_millis(5), "the unknown email must cost a hash: {unknown_cpu:?} for 20");
    assert!((0.625..1.6).contains(&ratio), "wrong password {wrong_cpu:?} vs unknown email {unknown_cpu:?}, 20 each");
}

#[actix_web::test]
async fn login_into_an_organization_requires_membership() {
    let app = spawn_app().await;
    let alice = app.signed_up_user().await;
    let bob = app.signed_up_user().await;
    let bobs_org = bob.tokens["session"]["organization_id"].as_str().unwrap();

    let response = app.login(&json!({ "email": alice.email, "password": PASSWORD, "organization": bobs_org })).await;
    assert_error(response, 403, "not_a_member", "permission_error").await;
    let response =
        app.login(&json!({ "email": alice.email, "password": PASSWORD, "organization": "no-such-slug" })).await;
    assert_error(response, 404, "organization_not_found", "invalid_request_error").await;
    let response = app.login(&json!({ "email": bob.email, "password": PASSWORD, "organization": bobs_org })).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn login_without_organization_picks_the_most_recently_used_one() {
    let app = spawn_app().await;
    let owner = app.signed_up_user().await;
    let (_, org_id, _) = ids(&owner.tokens);
    let member = app.signed_up_user().await;
    let personal = member.tokens["session"]["organization_id"].as_str().unwrap().to_owned();
    // The member joins the owner's organization by a store-level membership (the membership API is
    // another issue), used a day ago.
    let (member_id, _, _) = ids(&member.tokens);
    app.db().await.add_membership(member_id, org_id, "member", app.clock.now() - time::Duration::days(1)).await;
    let default: Value = app.login(&json!({ "email": member.email, "password": PASSWORD })).await.json().await.unwrap();
    assert_eq!(default["session"]["organization_id"], personal);

    let chosen =
        app.login(&json!({ "email": member.email, "password": PASSWORD, "organization": org_id.to_string() })).await;
    assert_eq!(chosen.status(), StatusCode::OK);
    let default: Value = app.login(&json!({ "email": member.email, "password": PASSWORD })).await.json().await.unwrap();
    assert_eq!(default["session"]["organization_id"], org_id.to_string(), "now the most recently used");
}

#[actix_web::test]
async fn disabled_users_and_organizations_cannot_sign_in_but_only_the_right_password_learns_it() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let (user_id, org_id, _) = ids(&user.tokens);
    let db = app.db().await;
    db.set_disabled("users", user_id, true).await;

    let wrong = app.login(&json!({ "email": user.email, "password": "not the password" })).await;
    assert_error(wrong, 401, "invalid_credentials", "authentication_error").await;
    let right = app.login(&json!({ "email": user.email, "password": PASSWORD })).await;
    assert_error(right, 403, "account_disabled", "permission_error").await;
    let refresh = app.refresh(user.refresh()).await;
    assert_error(refresh, 403, "account_disabled", "permission_error").await;
    let session = app.session(user.access()).await;
    assert_error(session, 403, "account_disabled", "permission_error").await;

    db.set_disabled("users", user_id, false).await;
    db.set_disabled("organizations", org_id, true).await;
    let right = app.login(&json!({ "email": user.email, "password": PASSWORD })).await;
    assert_error(right, 403, "account_disabled", "permission_error").await;
}

#[actix_web::test]
async fn a_password_hashed_with_old_parameters_is_upgraded_at_login() {
    let app = crate::helpers::spawn_app_with(&[("IDENTSPHERE_ARGON2_MEMORY_KIB", "8192")]).await;
    let user = app.signed_up_user().await;
    let (user_id, _, _) = ids(&user.tokens);
    let db = app.db().await;
    assert!(db.password_hash(user_id).await.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"));

    let upgraded = app
        .restart_with(|config| {
            config.argon2 = identsphere::config::Argon2Params { memory_kib: 19_456, iterations: 2, parallelism: 1 };
        })
        .await;
    let response = upgraded.login(&json!({ "email": user.email, "password": PASSWORD })).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(db.password_hash(user_id).await.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    let again = upgraded.login(&json!({ "email": user.email, "password": PASSWORD })).await;
    assert_eq!(again.status(), StatusCode::OK, "the upgraded hash verifies");
}
