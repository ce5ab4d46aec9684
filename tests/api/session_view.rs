//! The session read (`GET /v1/auth/session`) may be answered from a replica's memory, but only while nothing
//! it shows has changed: every change, made through any replica, shows on the next read on every replica.
//! On Postgres + Redis the changes go through a second replica; on the embedded store (one node), through
//! the same server.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, User, assert_error, backend, ids, outbox_token, spawn_app};
use crate::mfa::{code, enroll, post_bearer};
use crate::organizations::{access, call, create_org, join, json_of, switch};

async fn read(app: &TestApp, access: &str) -> Value {
    json_of(app.session(access).await, StatusCode::OK).await
}

/// Reads the session on every replica, so that each may keep it, and returns one of the reads.
async fn read_everywhere(replicas: &[&TestApp], access: &str) -> Value {
    let mut last = Value::Null;
    for replica in replicas {
        last = read(replica, access).await;
    }
    last
}

#[actix_web::test]
async fn every_change_shows_at_once_on_every_replica() {
    let a = spawn_app().await;
    let second = if backend() == Backend::Postgres { Some(a.spawn_replica().await) } else { None };
    let b = second.as_ref().unwrap_or(&a);
    let replicas = [&a, b];

    let mut ada = a.signed_up_user().await;
    let acme = create_org(b, &mut ada, "Acme", Some("acme")).await;
    let bob = a.signed_up_user().await;
    let (bob_id, bob_home, _) = ids(&bob.tokens);
    let tokens = join(&a, &bob, &acme, "member").await;
    let bob_access = access(&tokens).to_owned();
    let seen = read_everywhere(&replicas, &bob_access).await;
    assert_eq!(
        (seen["organization"]["name"].as_str(), seen["organization"]["role"].as_str()),
        (Some("Acme"), Some("member"))
    );

    // The organization (its version).
    let renamed =
        call(b, Method::PATCH, "/v1/organizations/acme", ada.access(), Some(&json!({"name": "Acme Two"}))).await;
    assert_eq!(renamed.status(), StatusCode::OK);
    for replica in replicas {
        assert_eq!(read(replica, &bob_access).await["organization"]["name"], "Acme Two");
    }

    // The membership (the user's version).
    let path = format!("/v1/organizations/acme/members/{bob_id}");
    let promoted = call(b, Method::PATCH, &path, ada.access(), Some(&json!({"role": "admin"}))).await;
    assert_eq!(promoted.status(), StatusCode::NO_CONTENT);
    for replica in replicas {
        assert_eq!(read(replica, &bob_access).await["organization"]["role"], "admin");
    }

    // A confirmed factor (the user's version) raises the family to aal2 (the family's version): the access
    // token issued before shows both.
    let secret = enroll(b, &bob_access).await;
    let confirm = json!({"code": code(b, &secret, 0), "refresh_token": tokens["refresh_token"]});
    let confirmed = post_bearer(b, "/v1/auth/mfa/totp/confirm", &bob_access, &confirm).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed: Value = confirmed.json().await.unwrap();
    for replica in replicas {
        let seen = read(replica, &bob_access).await;
        assert_eq!(seen["factors"][0]["type"], "totp", "{seen}");
        assert_eq!((seen["recovery_codes_left"].as_u64(), seen["session"]["aal"].as_str()), (Some(10), Some("aal2")));
    }

    // A spent recovery code (the user's version).
    let recovery = confirmed["recovery_codes"][0].as_str().unwrap();
    let step_up = json!({"code": recovery, "refresh_token": confirmed["refresh_token"]});
    let stepped = post_bearer(b, "/v1/auth/mfa/verify", &bob_access, &step_up).await;
    assert_eq!(stepped.status(), StatusCode::OK);
    let aal2: Value = stepped.json().await.unwrap();
    for replica in replicas {
        assert_eq!(read(replica, &bob_access).await["recovery_codes_left"], 9);
    }

    // The factor removed (the user's version).
    let removed = b.client.delete(b.url("/v1/auth/mfa/totp")).bearer_auth(access(&aal2)).send().await.unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    for replica in replicas {
        let seen = read(replica, &bob_access).await;
        assert_eq!((seen["factors"].clone(), seen["recovery_codes_left"].as_u64()), (json!([]), Some(0)));
    }

    // The email verified (the user's version).
    assert_eq!(read(&a, &bob_access).await["user"]["email_verified"], false);
    let token = outbox_token(&a, "verify-email", &bob.email).await;
    let verified = b.post("/v1/auth/email/verify", &json!({"token": token})).await;
    assert_eq!(verified.status(), StatusCode::NO_CONTENT);
    for replica in replicas {
        assert_eq!(read(replica, &bob_access).await["user"]["email_verified"], true);
    }

    // The family switched to another organization (the family's version): the earlier tokens no longer
    // match it.
    read_everywhere(&replicas, &bob_access).await;
    let home = json!(bob_home.to_string());
    let switched = switch(b, aal2["refresh_token"].as_str().unwrap(), &home).await;
    assert_eq!(switched.status(), StatusCode::OK);
    for replica in replicas {
        assert_error(replica.session(&bob_access).await, 401, "token_invalid", "authentication_error").await;
    }
}

/// Two replicas; Ada owns Acme, Bob is a member signed in there with `tokens`.
struct Acme {
    a: TestApp,
    b: TestApp,
    ada: User,
    bob: User,
    tokens: Value,
}

async fn acme_on_two_replicas() -> Acme {
    let a = spawn_app().await;
    let b = a.spawn_replica().await;
    let mut ada = a.signed_up_user().await;
    let acme = create_org(&a, &mut ada, "Acme", Some("acme")).await;
    let bob = a.signed_up_user().await;
    let tokens = join(&a, &bob, &acme, "member").await;
    Acme { a, b, ada, bob, tokens }
}

/// A Redis restarted without persistence loses the versions: every one reads as absent again, as it did
/// before the change that set it, so a view a replica cached back then must not come back (found by the
/// fault harness: a switch, then Redis lost its data, and the session read on another replica answered from
/// the view of the organization left).
#[actix_web::test]
async fn postgres_only_a_view_cached_before_a_redis_data_loss_is_not_served_after_it() {
    if !crate::helpers::postgres_run() {
        return;
    }
    let Acme { a, b, ada, bob, tokens } = acme_on_two_replicas().await;
    let (bob_id, _, _) = ids(&bob.tokens);
    let bob_access = access(&tokens).to_owned();

    // Every version is lost: b caches bob's view under versions that all read as absent.
    a.resources.lose_redis_data().await;
    assert_eq!(read(&b, &bob_access).await["organization"]["role"], "member");

    let path = format!("/v1/organizations/acme/members/{bob_id}");
    let promoted = call(&a, Method::PATCH, &path, ada.access(), Some(&json!({"role": "admin"}))).await;
    assert_eq!(promoted.status(), StatusCode::NO_CONTENT);
    // The promotion's new version is lost too.
    a.resources.lose_redis_data().await;
    assert_eq!(read(&b, &bob_access).await["organization"]["role"], "admin", "b served the view from before");
}

/// A switch is durable before its family gets a new version, so a replica killed between the two (the fault
/// harness's `kill9` during a switch) leaves views of the family cached under the version it still has, in
/// the organization it left. The switch's tokens must not be refused for disagreeing with such a view (found
/// by the fault harness: `401 token_invalid` on another replica for a token refreshed after the switch).
#[actix_web::test]
async fn postgres_only_a_switch_whose_new_version_was_lost_does_not_refuse_its_tokens() {
    if !crate::helpers::postgres_run() {
        return;
    }
    let Acme { a, b, bob, tokens, .. } = acme_on_two_replicas().await;
    let (_, bob_home, _) = ids(&bob.tokens);
    let (_, _, sid) = ids(&tokens);
    assert_eq!(read(&b, access(&tokens)).await["organization"]["name"], "Acme", "b keeps the view in Acme");

    let (mut redis, prefix) = a.resources.redis().await;
    let key = format!("{prefix}version:family:{sid}");
    let version: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut redis).await.unwrap();
    let switched =
        json_of(switch(&a, tokens["refresh_token"].as_str().unwrap(), &json!(bob_home)).await, StatusCode::OK).await;
    // The switch's new version is lost, as if `a` had died between its commit and the version write.
    match version {
        Some(version) => redis::cmd("SET").arg(&key).arg(version).query_async::<()>(&mut redis).await.unwrap(),
        None => redis::cmd("DEL").arg(&key).query_async::<()>(&mut redis).await.unwrap(),
    }

    let refreshed = b.post("/v1/auth/refresh", &json!({"refresh_token": switched["refresh_token"]})).await;
    let refreshed = json_of(refreshed, StatusCode::OK).await;
    for tokens in [&switched, &refreshed] {
        let seen = read(&b, access(tokens)).await;
        assert_eq!(seen["organization"]["id"], json!(bob_home), "{seen}");
    }
    // The view b read again is the durable one: the token of the organization left no longer matches it.
    assert_error(b.session(access(&tokens)).await, 401, "token_invalid", "authentication_error").await;
}
