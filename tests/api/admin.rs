//! The admin API: organization API keys (shown once, stored hashed, prefixed, revocable, last-used),
//! users managed by a key (create, search, read, disable, delete, sessions), every action in the audit
//! log, the platform key from the command line, and no key reaching another organization.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestApp, assert_error, ids, postgres_run, redis_url, spawn_app};
use crate::organizations::{access, call, create_key, create_org, join, json_of, sign_in_to};

const KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async fn new_user(app: &TestApp, key: &str, org: &str, email: &str) -> Value {
    let body = json!({"email": email, "password": PASSWORD, "display_name": "Grace"});
    let path = format!("/v1/organizations/{org}/users");
    json_of(call(app, Method::POST, &path, key, Some(&body)).await, StatusCode::CREATED).await
}

async fn login_to(app: &TestApp, email: &str, org: &str) -> reqwest::Response {
    app.login(&json!({"email": email, "password": PASSWORD, "organization": org})).await
}

async fn audit_actions(app: &TestApp, owner: &str, org: &str) -> Vec<(String, Value, Value)> {
    let log = call(app, Method::GET, &format!("/v1/organizations/{org}/audit-log"), owner, None).await;
    let log = json_of(log, StatusCode::OK).await;
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actor_id"].clone(), e["actor_key_id"].clone()))
        .collect()
}

#[actix_web::test]
async fn an_owner_makes_keys_that_are_shown_once_stored_hashed_and_revocable() {
    let app = spawn_app().await;
    let (mut owner, admin) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let admin_tokens = join(&app, &admin, &org, "admin").await;

    let created = call(
        &app,
        Method::POST,
        "/v1/organizations/acme/api-keys",
        owner.access(),
        Some(&json!({"name": " billing "})),
    )
    .await;
    let created = json_of(created, StatusCode::CREATED).await;
    let secret = created["secret"].as_str().unwrap();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let (prefix, rest) = secret.split_at(4);
    assert_eq!(prefix, "isk_", "greppable: {secret}");
    let (key_id, secret_part) = rest.split_once('_').unwrap();
    assert_eq!(key_id, id.simple().to_string());
    assert_eq!(secret_part.len(), 43, "256 random bits, base64url");
    assert_eq!((created["name"].clone(), created["revoked"].clone()), (json!("billing"), json!(false)));

    // Listed without the secret; the store keeps only its hash.
    let list =
        json_of(call(&app, Method::GET, "/v1/organizations/acme/api-keys", owner.access(), None).await, StatusCode::OK)
            .await;
    assert!(!list.to_string().contains(secret_part), "{list}");
    assert_eq!(list["api_keys"][0]["last_used_at"], Value::Null);
    let db = app.db().await;
    let dump = db.dump_table("api_keys").await;
    assert!(!dump.contains(secret_part) && !dump.contains(secret), "{dump}");
    assert_eq!(db.count("api_keys").await, 1);

    // It works, and its use is recorded.
    assert_eq!(call(&app, Method::GET, "/v1/organizations/acme/users", secret, None).await.status(), StatusCode::OK);
    let list =
        json_of(call(&app, Method::GET, "/v1/organizations/acme/api-keys", owner.access(), None).await, StatusCode::OK)
            .await;
    assert_ne!(list["api_keys"][0]["last_used_at"], Value::Null);

    // A wrong secret for the id, a key of no shape, an admin, or a key itself make or see no keys.
    let forged = format!("isk_{key_id}_{}", "A".repeat(43));
    assert_error(
        call(&app, Method::GET, "/v1/organizations/acme/users", &forged, None).await,
        401,
        "token_invalid",
        "authentication_error",
    )
    .await;
    let as_platform = format!("isp_{key_id}_{secret_part}");
    assert_error(
        call(&app, Method::GET, "/v1/organizations/acme/users", &as_platform, None).await,
        401,
        "token_invalid",
        "authentication_error",
    )
    .await;
    for who in [access(&admin_tokens), secret] {
        let response =
            call(&app, Method::POST, "/v1/organizations/acme/api-keys", who, Some(&json!({"name": "more"}))).await;
        assert_error(response, 403, "insufficient_role", "permission_error").await;
    }
    // A key is no user's token.
    assert_error(app.session(secret).await, 401, "token_invalid", "authentication_error").await;

    let path = format!("/v1/organizations/acme/api-keys/{id}");
    assert_eq!(call(&app, Method::DELETE, &path, owner.access(), None).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        call(&app, Method::DELETE, &path, owner.access(), None).await,
        404,
        "api_key_not_found",
        "invalid_request_error",
    )
    .await;
    assert_error(
        call(&app, Method::GET, "/v1/organizations/acme/users", secret, None).await,
        401,
        "token_revoked",
        "authentication_error",
    )
    .await;

    let (owner_id, _, _) = ids(&owner.tokens);
    let actions = audit_actions(&app, owner.access(), "acme").await;
    assert_eq!(actions[0], ("api_key.revoked".to_owned(), json!(owner_id.to_string()), Value::Null));
    assert_eq!(actions[1], ("api_key.created".to_owned(), json!(owner_id.to_string()), Value::Null));
}

#[actix_web::test]
async fn a_key_manages_its_organizations_users_and_every_action_is_audited() {
    let app = spawn_app().await;
    let mut owner = app.signed_up_user().await;
    create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let (key, key_id) = create_key(&app, owner.access(), "acme").await;

    let grace = new_user(&app, &key, "acme", "Grace@Example.com").await;
    assert_eq!(
        (grace["email"].clone(), grace["role"].clone(), grace["disabled"].clone()),
        (json!("Grace@Example.com"), json!("member"), json!(false))
    );
    let grace_id = grace["id"].as_str().unwrap().to_owned();
    for email in ["alan@example.com", "barbara@example.com", "grace.h@example.org"] {
        new_user(&app, &key, "acme", email).await;
    }
    let taken = call(
        &app,
        Method::POST,
        "/v1/organizations/acme/users",
        &key,
        Some(&json!({"email": "alan@example.com", "password": PASSWORD})),
    )
    .await;
    assert_error(taken, 409, "email_taken", "conflict_error").await;
    let weak = call(
        &app,
        Method::POST,
        "/v1/organizations/acme/users",
        &key,
        Some(&json!({"email": "x@example.com", "password": "short"})),
    )
    .await;
    assert_error(weak, 422, "weak_password", "invalid_request_error").await;

    // Search and pages, by email.
    let page =
        json_of(call(&app, Method::GET, "/v1/organizations/acme/users?email=GRACE", &key, None).await, StatusCode::OK)
            .await;
    let emails: Vec<&str> = page["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["grace.h@example.org", "Grace@Example.com"], "by normalized email: '.' sorts before '@'");
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let query = after.as_ref().map_or(String::new(), |a| format!("&after={a}"));
        let page = call(&app, Method::GET, &format!("/v1/organizations/acme/users?limit=2{query}"), &key, None).await;
        let page = json_of(page, StatusCode::OK).await;
        seen.extend(page["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap().to_lowercase()));
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let mut expected = vec![
        owner.email.to_lowercase(),
        "alan@example.com".into(),
        "barbara@example.com".into(),
        "grace.h@example.org".into(),
        "grace@example.com".into(),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    assert_error(
        call(&app, Method::GET, "/v1/organizations/acme/users?limit=0", &key, None).await,
        400,
        "invalid_request",
        "invalid_request_error",
    )
    .await;

    // The created user signs in; the key sees and ends their sessions.
    let session = json_of(login_to(&app, "grace@example.com", "acme").await, StatusCode::OK).await;
    let sessions_path = format!("/v1/organizations/acme/users/{grace_id}/sessions");
    let sessions = json_of(call(&app, Method::GET, &sessions_path, &key, None).await, StatusCode::OK).await;
    assert_eq!(sessions["sessions"][0]["id"], session["session"]["id"]);
    assert_eq!(call(&app, Method::DELETE, &sessions_path, &key, None).await.status(), StatusCode::NO_CONTENT);
    assert_error(app.session(access(&session)).await, 401, "token_revoked", "authentication_error").await;

    // Disabled: no sign-in there, sessions ended; enabled again: back.
    let session = json_of(login_to(&app, "grace@example.com", "acme").await, StatusCode::OK).await;
    let user_path = format!("/v1/organizations/acme/users/{grace_id}");
    let disabled = call(&app, Method::PATCH, &user_path, &key, Some(&json!({"disabled": true}))).await;
    assert_eq!(json_of(disabled, StatusCode::OK).await["disabled"], true);
    assert_error(app.session(access(&session)).await, 401, "token_revoked", "authentication_error").await;
    assert_error(login_to(&app, "grace@example.com", "acme").await, 403, "not_a_member", "permission_error").await;
    let enabled = call(&app, Method::PATCH, &user_path, &key, Some(&json!({"disabled": false}))).await;
    assert_eq!(json_of(enabled, StatusCode::OK).await["disabled"], false);
    assert_eq!(login_to(&app, "grace@example.com", "acme").await.status(), StatusCode::OK);

    // A key is an admin, never an owner: it touches no owner and makes none, so a leaked key cannot make
    // itself an owner who outlives the key's revocation.
    let (owner_id, _, _) = ids(&owner.tokens);
    let owner_path = format!("/v1/organizations/acme/users/{owner_id}");
    assert_error(
        call(&app, Method::PATCH, &owner_path, &key, Some(&json!({"disabled": true}))).await,
        403,
        "insufficient_role",
        "permission_error",
    )
    .await;
    let response = call(&app, Method::DELETE, &owner_path, &key, None).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let new_owner = json!({"email": "mallory@example.com", "password": PASSWORD, "role": "owner"});
    let response = call(&app, Method::POST, "/v1/organizations/acme/users", &key, Some(&new_owner)).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let owner_sessions = format!("{owner_path}/sessions");
    let response = call(&app, Method::DELETE, &owner_sessions, &key, None).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    assert_eq!(app.session(owner.access()).await.status(), StatusCode::OK, "the owner is still signed in");
    let promote = json!({"role": "owner"});
    let response =
        call(&app, Method::PATCH, &format!("/v1/organizations/acme/members/{grace_id}"), &key, Some(&promote)).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    // A signed-in owner does make one; the last enabled owner stays.
    let made = call(&app, Method::POST, "/v1/organizations/acme/users", owner.access(), Some(&new_owner)).await;
    let made = json_of(made, StatusCode::CREATED).await;
    assert_eq!(made["role"], "owner");
    let made_path = format!("/v1/organizations/acme/users/{}", made["id"].as_str().unwrap());
    assert_eq!(call(&app, Method::DELETE, &made_path, owner.access(), None).await.status(), StatusCode::NO_CONTENT);
    let response = call(&app, Method::DELETE, &owner_path, owner.access(), None).await;
    assert_error(response, 409, "last_owner", "conflict_error").await;

    // Deleted: the account belonged to this organization only, so it is gone.
    assert_eq!(call(&app, Method::DELETE, &user_path, &key, None).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        call(&app, Method::GET, &user_path, &key, None).await,
        404,
        "member_not_found",
        "invalid_request_error",
    )
    .await;
    let gone = app.login(&json!({"email": "grace@example.com", "password": PASSWORD})).await;
    assert_error(gone, 401, "invalid_credentials", "authentication_error").await;

    let actions = audit_actions(&app, owner.access(), "acme").await;
    let by_key: Vec<&str> =
        actions.iter().filter(|(_, _, k)| *k == json!(key_id)).map(|(a, _, _)| a.as_str()).collect();
    assert_eq!(
        by_key,
        [
            "user.deleted",
            "member.enabled",
            "member.disabled",
            "user.sessions_ended",
            "user.created",
            "user.created",
            "user.created",
            "user.created"
        ]
    );
    assert!(actions.iter().filter(|(_, _, k)| *k == json!(key_id)).all(|(_, user, _)| user.is_null()));

    // A disabled organization is closed to its keys as to its members' sessions.
    let disable = json!({"disabled": true});
    assert_eq!(call(&app, Method::PATCH, "/v1/organizations/acme", owner.access(), Some(&disable)).await.status(), 200);
    let response = call(&app, Method::GET, "/v1/organizations/acme/users", &key, None).await;
    assert_error(response, 403, "account_disabled", "permission_error").await;
}

#[actix_web::test]
async fn deleting_a_user_of_several_organizations_only_removes_them_from_this_one() {
    let app = spawn_app().await;
    let (mut owner, bob) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    join(&app, &bob, &org, "member").await;
    let (key, _) = create_key(&app, owner.access(), "acme").await;
    let (bob_id, _, _) = ids(&bob.tokens);
    let path = format!("/v1/organizations/acme/users/{bob_id}");
    assert_eq!(call(&app, Method::DELETE, &path, &key, None).await.status(), StatusCode::NO_CONTENT);
    // Bob's own organization and account are not Acme's to delete.
    assert_eq!(app.login(&json!({"email": bob.email, "password": PASSWORD})).await.status(), StatusCode::OK);
    assert_error(login_to(&app, &bob.email, "acme").await, 403, "not_a_member", "permission_error").await;
}

#[actix_web::test]
async fn a_key_reaches_no_user_of_another_organization() {
    let app = spawn_app().await;
    let (mut a_owner, mut b_owner) = (app.signed_up_user().await, app.signed_up_user().await);
    create_org(&app, &mut a_owner, "Alpha", Some("alpha")).await;
    let org_b = create_org(&app, &mut b_owner, "Beta", Some("beta")).await;
    let b_user = sign_in_to(&app, &b_owner, &org_b).await;
    let (a_key, _) = create_key(&app, a_owner.access(), "alpha").await;
    let (b_owner_id, _, _) = ids(&b_owner.tokens);
    // B's owner named through A's organization: no such member of A, whatever they are elsewhere.
    for (method, suffix, body) in [
        (Method::GET, "", None),
        (Method::PATCH, "", Some(json!({"disabled": true}))),
        (Method::DELETE, "", None),
        (Method::GET, "/sessions", None),
        (Method::DELETE, "/sessions", None),
    ] {
        let path = format!("/v1/organizations/alpha/users/{b_owner_id}{suffix}");
        let response = call(&app, method.clone(), &path, &a_key, body.as_ref()).await;
        assert_error(response, 404, "member_not_found", "invalid_request_error").await;
    }
    assert_eq!(app.session(access(&b_user)).await.status(), StatusCode::OK, "B's owner's session lives");
    assert_eq!(login_to(&app, &b_owner.email, "beta").await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn postgres_only_the_command_line_makes_platform_and_organization_keys() {
    if !postgres_run() {
        return;
    }
    let app = spawn_app().await;
    let mut owner = app.signed_up_user().await;
    create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let create_key = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_identsphere"))
            .args(["admin", "create-key"])
            .args(args)
            .env_clear()
            .env("IDENTSPHERE_DATABASE_URL", app.resources.database_url())
            .env("IDENTSPHERE_REDIS_URL", redis_url())
            .env("IDENTSPHERE_KEY_ENCRYPTION_KEY", KEK)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap().trim().to_owned(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let (ok, platform, stderr) = create_key(&["--name", "ops"]);
    assert!(ok && platform.starts_with("isp_"), "{platform} {stderr}");
    let (ok, org_key, stderr) = create_key(&["--organization", "acme"]);
    assert!(ok && org_key.starts_with("isk_"), "{org_key} {stderr}");
    let (ok, _, stderr) = create_key(&["--organization", "no-such-org"]);
    assert!(!ok && stderr.contains("no organization"), "{stderr}");

    // The platform key acts on every organization and reads the revocation feed.
    assert_eq!(call(&app, Method::GET, "/v1/organizations/acme/users", &platform, None).await.status(), StatusCode::OK);
    let feed = app.client.get(app.url("/v1/revocations")).bearer_auth(&platform).send().await.unwrap();
    assert_eq!(feed.status(), StatusCode::OK);
    // An organization's key does not.
    let feed = app.client.get(app.url("/v1/revocations")).bearer_auth(&org_key).send().await.unwrap();
    assert_error(feed, 401, "token_invalid", "authentication_error").await;
    let actions = audit_actions(&app, owner.access(), "acme").await;
    assert_eq!(actions[0], ("api_key.created".to_owned(), Value::Null, Value::Null), "the operator made it");
}
