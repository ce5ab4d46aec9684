//! Organizations, members and roles, switching, session lists — and isolation: a principal of one
//! organization never reads or changes another's.

use identsphere::routes::route_table;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestApp, User, assert_error, ids, outbox_token, spawn_app};

pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    access: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let request = app.client.request(method, app.url(path)).bearer_auth(access);
    let request = match body {
        Some(body) => request.json(body),
        None => request,
    };
    request.send().await.unwrap()
}

pub(crate) async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

/// Creates an organization and signs its owner in there: acting on an organization takes a session in it,
/// so `owner`'s tokens become that new session's.
pub(crate) async fn create_org(app: &TestApp, owner: &mut User, name: &str, slug: Option<&str>) -> Value {
    let body = match slug {
        Some(slug) => json!({ "name": name, "slug": slug }),
        None => json!({ "name": name }),
    };
    let created = call(app, Method::POST, "/v1/organizations", owner.access(), Some(&body)).await;
    let org = json_of(created, StatusCode::CREATED).await;
    owner.tokens = sign_in_to(app, owner, &org).await;
    org
}

pub(crate) fn uuid(value: &Value) -> Uuid {
    value.as_str().unwrap().parse().unwrap()
}

/// `user` joins `org` with `role` (no invitation API yet: straight into the store), and signs in there.
pub(crate) async fn join(app: &TestApp, user: &User, org: &Value, role: &str) -> Value {
    let (user_id, _, _) = ids(&user.tokens);
    app.db().await.add_membership(user_id, uuid(&org["id"]), role, app.clock.now()).await;
    sign_in_to(app, user, org).await
}

/// A new session of `user` in `org`.
pub(crate) async fn sign_in_to(app: &TestApp, user: &User, org: &Value) -> Value {
    let body = json!({ "email": user.email, "password": PASSWORD, "organization": org["id"] });
    json_of(app.login(&body).await, StatusCode::OK).await
}

/// Refreshes `token`, switching to `organization`.
pub(crate) async fn switch(app: &TestApp, token: &str, organization: &Value) -> reqwest::Response {
    app.post("/v1/auth/refresh", &json!({"refresh_token": token, "organization": organization})).await
}

pub(crate) fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

#[actix_web::test]
async fn a_created_organization_is_owned_by_its_creator_and_listed() {
    let app = spawn_app().await;
    let mut ada = app.signed_up_user().await;
    let drawn = create_org(&app, &mut ada, "Zeta Labs!", None).await;
    assert!(drawn["slug"].as_str().unwrap().starts_with("zeta-labs-"), "{drawn}");
    let org = create_org(&app, &mut ada, "  Acme Corp ", Some("acme")).await;
    assert_eq!(
        (org["name"].clone(), org["slug"].clone(), org["role"].clone()),
        (json!("Acme Corp"), json!("acme"), json!("owner"))
    );
    assert_eq!(org["signup"], json!({"mode": "closed", "domains": []}));

    let list = json_of(call(&app, Method::GET, "/v1/organizations", ada.access(), None).await, StatusCode::OK).await;
    let names: Vec<&str> =
        list["organizations"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "personal, Acme, Zeta: {list}");
    assert!(names.contains(&"Acme Corp") && names.contains(&"Zeta Labs!"));
    let by_slug =
        json_of(call(&app, Method::GET, "/v1/organizations/ACME", ada.access(), None).await, StatusCode::OK).await;
    assert_eq!(by_slug["id"], org["id"]);
    let members = call(&app, Method::GET, "/v1/organizations/acme/members", ada.access(), None).await;
    let members = json_of(members, StatusCode::OK).await;
    assert_eq!(members["members"][0]["user"]["email"], json!(ada.email));
    assert_eq!(members["members"][0]["role"], "owner");
}

#[actix_web::test]
async fn slugs_are_validated_unique_and_renamable_without_breaking_ids() {
    let app = spawn_app().await;
    let mut ada = app.signed_up_user().await;
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    for bad in ["-acme", "acme-", "Acme", "a b", &"a".repeat(64), "00000000-0000-0000-0000-000000000000"] {
        let response =
            call(&app, Method::POST, "/v1/organizations", ada.access(), Some(&json!({"name": "X", "slug": bad}))).await;
        let body = assert_error(response, 400, "invalid_request", "invalid_request_error").await;
        assert_eq!(body["error"]["param"], "slug", "{bad}");
    }
    let blank = call(&app, Method::POST, "/v1/organizations", ada.access(), Some(&json!({"name": "  "}))).await;
    assert_error(blank, 400, "invalid_request", "invalid_request_error").await;
    let taken =
        call(&app, Method::POST, "/v1/organizations", ada.access(), Some(&json!({"name": "B", "slug": "acme"}))).await;
    assert_error(taken, 409, "slug_taken", "conflict_error").await;

    let path = format!("/v1/organizations/{}", org["id"].as_str().unwrap());
    let renamed =
        call(&app, Method::PATCH, &path, ada.access(), Some(&json!({"slug": "acme-inc", "name": "Acme Inc"}))).await;
    let renamed = json_of(renamed, StatusCode::OK).await;
    assert_eq!((renamed["id"].clone(), renamed["slug"].clone()), (org["id"].clone(), json!("acme-inc")));
    assert_eq!(
        call(&app, Method::GET, "/v1/organizations/acme", ada.access(), None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(call(&app, Method::GET, &path, ada.access(), None).await.status(), StatusCode::OK);
    // A session of the organization keeps working: it names it by id.
    let login = json!({"email": ada.email, "password": PASSWORD, "organization": "acme-inc"});
    assert_eq!(json_of(app.login(&login).await, StatusCode::OK).await["session"]["organization_id"], org["id"]);
}

#[actix_web::test]
async fn roles_decide_who_may_update_the_organization_and_manage_members() {
    let app = spawn_app().await;
    let (mut owner, admin, member) =
        (app.signed_up_user().await, app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let admin_tokens = join(&app, &admin, &org, "admin").await;
    let member_tokens = join(&app, &member, &org, "member").await;
    let (member_id, _, _) = ids(&member.tokens);
    let (owner_id, _, _) = ids(&owner.tokens);
    let member_path = format!("/v1/organizations/acme/members/{member_id}");
    let owner_path = format!("/v1/organizations/acme/members/{owner_id}");

    let rename = json!({"name": "Renamed"});
    let response = call(&app, Method::PATCH, "/v1/organizations/acme", access(&member_tokens), Some(&rename)).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let response = call(&app, Method::PATCH, "/v1/organizations/acme", access(&admin_tokens), Some(&rename)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let signup = json!({"signup": {"mode": "domains", "domains": ["Acme.com"]}});
    let response = call(&app, Method::PATCH, "/v1/organizations/acme", access(&admin_tokens), Some(&signup)).await;
    assert_eq!(json_of(response, StatusCode::OK).await["signup"], json!({"mode": "domains", "domains": ["acme.com"]}));
    let disable = json!({"disabled": true});
    let response = call(&app, Method::PATCH, "/v1/organizations/acme", access(&admin_tokens), Some(&disable)).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;

    // Members manage nobody; admins manage members but not owners, and make no owners.
    let promote = json!({"role": "admin"});
    let response = call(&app, Method::PATCH, &member_path, access(&member_tokens), Some(&promote)).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let response =
        call(&app, Method::PATCH, &owner_path, access(&admin_tokens), Some(&json!({"role": "member"}))).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let response =
        call(&app, Method::PATCH, &member_path, access(&admin_tokens), Some(&json!({"role": "owner"}))).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let response = call(&app, Method::PATCH, &member_path, access(&admin_tokens), Some(&promote)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = call(&app, Method::PATCH, &member_path, owner.access(), Some(&json!({"role": "superuser"}))).await;
    assert_error(response, 400, "invalid_request", "invalid_request_error").await;
    let stranger = format!("/v1/organizations/acme/members/{}", Uuid::new_v4());
    let response = call(&app, Method::DELETE, &stranger, owner.access(), None).await;
    assert_error(response, 404, "member_not_found", "invalid_request_error").await;

    let members =
        json_of(call(&app, Method::GET, "/v1/organizations/acme/members", owner.access(), None).await, StatusCode::OK)
            .await;
    let roles: Vec<&str> = members["members"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["owner", "admin", "admin"]);
}

#[actix_web::test]
async fn an_organization_keeps_at_least_one_owner() {
    let app = spawn_app().await;
    let (mut ada, bob) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let (ada_id, _, _) = ids(&ada.tokens);
    let ada_path = format!("/v1/organizations/acme/members/{ada_id}");
    let response = call(&app, Method::DELETE, &ada_path, ada.access(), None).await;
    assert_error(response, 409, "last_owner", "conflict_error").await;
    let response = call(&app, Method::PATCH, &ada_path, ada.access(), Some(&json!({"role": "member"}))).await;
    assert_error(response, 409, "last_owner", "conflict_error").await;

    let bob_tokens = join(&app, &bob, &org, "member").await;
    let (bob_id, _, _) = ids(&bob.tokens);
    let bob_path = format!("/v1/organizations/acme/members/{bob_id}");
    let response = call(&app, Method::PATCH, &bob_path, ada.access(), Some(&json!({"role": "owner"}))).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // With two owners, one can leave.
    assert_eq!(call(&app, Method::DELETE, &ada_path, ada.access(), None).await.status(), StatusCode::NO_CONTENT);
    let response = call(&app, Method::DELETE, &bob_path, access(&bob_tokens), None).await;
    assert_error(response, 409, "last_owner", "conflict_error").await;
}

#[actix_web::test]
async fn a_removed_member_loses_their_sessions_there_at_once() {
    let app = spawn_app().await;
    let (mut ada, bob) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let bob_tokens = join(&app, &bob, &org, "member").await;
    let (bob_id, _, _) = ids(&bob.tokens);
    let response =
        call(&app, Method::DELETE, &format!("/v1/organizations/acme/members/{bob_id}"), ada.access(), None).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_error(app.session(access(&bob_tokens)).await, 401, "token_revoked", "authentication_error").await;
    let refresh = app.refresh(bob_tokens["refresh_token"].as_str().unwrap()).await;
    assert_error(refresh, 401, "token_revoked", "authentication_error").await;
    let (_, _, sid) = ids(&bob_tokens);
    assert_eq!(app.db().await.family(sid).await.1.as_deref(), Some("membership_ended"));
    // Bob's personal organization session is untouched.
    assert_eq!(app.session(bob.access()).await.status(), StatusCode::OK);
    let login = json!({"email": bob.email, "password": PASSWORD, "organization": "acme"});
    assert_error(app.login(&login).await, 403, "not_a_member", "permission_error").await;
}

#[actix_web::test]
async fn switching_moves_the_session_keeping_auth_time_and_aal() {
    let app = spawn_app().await;
    let mut ada = app.signed_up_user().await;
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let stranger = create_org(&app, &mut app.signed_up_user().await, "Other", Some("other")).await;
    let (_, personal, sid) = ids(&ada.tokens);
    app.clock.advance(Duration::seconds(60));

    let refused = switch(&app, ada.refresh(), &stranger["id"]).await;
    assert_error(refused, 403, "not_a_member", "permission_error").await;
    let unknown = switch(&app, ada.refresh(), &json!("no-such-org")).await;
    assert_error(unknown, 404, "organization_not_found", "invalid_request_error").await;

    let switched = json_of(switch(&app, ada.refresh(), &json!("acme")).await, StatusCode::OK).await;
    assert_eq!(switched["session"]["id"], ada.tokens["session"]["id"], "the same session");
    assert_eq!(switched["session"]["organization_id"], org["id"]);
    assert_eq!(switched["session"]["auth_time"], ada.tokens["session"]["auth_time"]);
    assert_eq!(switched["session"]["aal"], ada.tokens["session"]["aal"]);
    let session = json_of(app.session(access(&switched)).await, StatusCode::OK).await;
    assert_eq!(
        (session["organization"]["slug"].clone(), session["organization"]["role"].clone()),
        (json!("acme"), json!("owner"))
    );
    // Plain refreshes stay in the new organization; switching back works the same way.
    let refreshed = json_of(app.refresh(switched["refresh_token"].as_str().unwrap()).await, StatusCode::OK).await;
    assert_eq!(refreshed["session"]["organization_id"], org["id"]);
    let back = json_of(
        switch(&app, refreshed["refresh_token"].as_str().unwrap(), &json!(personal.to_string())).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(back["session"]["organization_id"], json!(personal.to_string()));
    assert_eq!(app.db().await.family(sid).await.0, 3, "three rotations of one family");
    // Login without `organization` picks the most recently used one.
    let again = json_of(app.login(&json!({"email": ada.email, "password": PASSWORD})).await, StatusCode::OK).await;
    assert_eq!(again["session"]["organization_id"], json!(personal.to_string()));
}

#[actix_web::test]
async fn a_disabled_organizations_sessions_stop_refreshing() {
    let app = spawn_app().await;
    let (mut ada, bob) = (app.signed_up_user().await, app.signed_up_user().await);
    let personal = ada.tokens.clone();
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let bob_tokens = join(&app, &bob, &org, "member").await;
    let response =
        call(&app, Method::PATCH, "/v1/organizations/acme", ada.access(), Some(&json!({"disabled": true}))).await;
    assert_eq!(json_of(response, StatusCode::OK).await["disabled"], true);
    let refresh = app.refresh(bob_tokens["refresh_token"].as_str().unwrap()).await;
    assert_error(refresh, 403, "account_disabled", "permission_error").await;
    assert_error(app.session(access(&bob_tokens)).await, 403, "account_disabled", "permission_error").await;
    let switch = app.post("/v1/auth/refresh", &json!({"refresh_token": bob.refresh(), "organization": "acme"})).await;
    assert_error(switch, 403, "account_disabled", "permission_error").await;
    // The owner's session there ended with it; they enable it again from another of their sessions, which
    // does nothing else there.
    assert_error(app.session(ada.access()).await, 403, "account_disabled", "permission_error").await;
    let path = format!("/v1/organizations/{}", org["id"].as_str().unwrap());
    let elsewhere = access(&personal);
    let rename = json!({"disabled": false, "name": "Mine now"});
    let response = call(&app, Method::PATCH, &path, elsewhere, Some(&rename)).await;
    assert_error(response, 403, "wrong_organization", "permission_error").await;
    let bob_elsewhere = call(&app, Method::PATCH, &path, bob.access(), Some(&json!({"disabled": false}))).await;
    assert_error(bob_elsewhere, 403, "wrong_organization", "permission_error").await;
    let response = call(&app, Method::PATCH, &path, elsewhere, Some(&json!({"disabled": false}))).await;
    assert_eq!(json_of(response, StatusCode::OK).await["disabled"], false);
    assert_eq!(app.refresh(bob_tokens["refresh_token"].as_str().unwrap()).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn the_session_list_marks_the_current_session_and_ends_one() {
    let app = spawn_app().await;
    let ada = app.signed_up_user().await;
    let second = app.second_session(&ada).await;
    let list = json_of(call(&app, Method::GET, "/v1/auth/sessions", ada.access(), None).await, StatusCode::OK).await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let mine: Vec<bool> = sessions.iter().map(|s| s["current"].as_bool().unwrap()).collect();
    assert_eq!(mine.iter().filter(|c| **c).count(), 1);
    let current = sessions.iter().find(|s| s["current"] == true).unwrap();
    assert_eq!(current["id"], ada.tokens["session"]["id"]);
    assert!(current["user_agent"].is_string() || current["user_agent"].is_null());

    let path = format!("/v1/auth/sessions/{}", second["session"]["id"].as_str().unwrap());
    assert_eq!(call(&app, Method::DELETE, &path, ada.access(), None).await.status(), StatusCode::NO_CONTENT);
    assert_error(app.session(access(&second)).await, 401, "token_revoked", "authentication_error").await;
    let again = call(&app, Method::DELETE, &path, ada.access(), None).await;
    assert_error(again, 404, "session_not_found", "invalid_request_error").await;
    let list = json_of(call(&app, Method::GET, "/v1/auth/sessions", ada.access(), None).await, StatusCode::OK).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1);
}

/// A valid body for each parametrized route that takes one, so a refusal is about who asks, not what.
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("PATCH", "/v1/organizations/{org}") => Some(json!({"name": "pwned", "disabled": true})),
        ("PATCH", "/v1/organizations/{org}/members/{user_id}") => Some(json!({"role": "owner"})),
        ("POST", "/v1/organizations/{org}/invitations") => Some(json!({"email": "spy@example.com", "role": "owner"})),
        ("POST", "/v1/organizations/{org}/api-keys") => Some(json!({"name": "spy"})),
        ("POST", "/v1/organizations/{org}/users") => {
            Some(json!({"email": "planted@example.com", "password": PASSWORD, "role": "owner"}))
        }
        ("PATCH", "/v1/organizations/{org}/users/{user_id}") => Some(json!({"disabled": true})),
        // Sent as JSON: the route answers `unsupported_media_type` only to a caller it lets import at all.
        ("POST", "/v1/organizations/{org}/users/import") => {
            Some(json!({"email": "planted@example.com", "email_verified": true, "role": "owner"}))
        }
        ("PATCH", "/v1/auth/passkeys/{id}") => Some(json!({"name": "pwned"})),
        ("POST", "/v1/organizations/{org}/sso/connections") => Some(json!({
            "issuer": "https://idp.attacker.example", "client_id": "spy", "client_secret": "spy", "domains": ["spy.example"]
        })),
        ("PATCH", "/v1/organizations/{org}/sso/connections/{connection_id}") => {
            Some(json!({"issuer": "https://idp.attacker.example", "enforce": true}))
        }
        ("POST", "/v1/organizations/{org}/sso/connections/{connection_id}/verify-domain") => {
            Some(json!({"domain": "beta.example"}))
        }
        _ => None,
    }
}

/// A new API key of `org`, made by its owner: the key and its id.
pub(crate) async fn create_key(app: &TestApp, owner: &str, org: &str) -> (String, String) {
    let path = format!("/v1/organizations/{org}/api-keys");
    let key =
        json_of(call(app, Method::POST, &path, owner, Some(&json!({"name": "backend"}))).await, StatusCode::CREATED)
            .await;
    (key["secret"].as_str().unwrap().to_owned(), key["id"].as_str().unwrap().to_owned())
}

/// A new SSO connection of `org`, made by its owner: its id.
async fn sso_connection(app: &TestApp, owner: &str, org: &str) -> String {
    let body = json!({"issuer": "https://idp.example", "client_id": "app", "client_secret": "secret", "domains": ["example.org"]});
    let path = format!("/v1/organizations/{org}/sso/connections");
    let connection = json_of(call(app, Method::POST, &path, owner, Some(&body)).await, StatusCode::CREATED).await;
    connection["id"].as_str().unwrap().to_owned()
}

/// Invites `email` into `org` as `role`, by `inviter`; returns the invitation and the token of its link.
async fn invite(app: &TestApp, inviter: &str, org: &str, email: &str, role: &str) -> (Value, String) {
    let body = json!({"email": email, "role": role});
    let response = call(app, Method::POST, &format!("/v1/organizations/{org}/invitations"), inviter, Some(&body)).await;
    let invitation = json_of(response, StatusCode::CREATED).await;
    (invitation, outbox_token(app, "accept-invitation", email).await)
}

async fn accept(app: &TestApp, access: &str, token: &str) -> reqwest::Response {
    call(app, Method::POST, "/v1/invitations/accept", access, Some(&json!({ "token": token }))).await
}

#[actix_web::test]
async fn an_invitation_lets_the_invited_account_join_with_its_role_once() {
    let app = spawn_app().await;
    let (mut ada, bob, carol) = (app.signed_up_user().await, app.signed_up_user().await, app.signed_up_user().await);
    create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let (invitation, token) = invite(&app, ada.access(), "acme", &bob.email.to_uppercase(), "admin").await;
    assert_eq!(
        (invitation["role"].clone(), invitation["email"].clone()),
        (json!("admin"), json!(bob.email.to_uppercase()))
    );

    let mismatch = accept(&app, carol.access(), &token).await;
    assert_error(mismatch, 403, "invitation_email_mismatch", "permission_error").await;
    let unverified = json_of(app.session(bob.access()).await, StatusCode::OK).await;
    assert_eq!(unverified["user"]["email_verified"], false);
    let joined = json_of(accept(&app, bob.access(), &token).await, StatusCode::OK).await;
    let verified = json_of(app.session(bob.access()).await, StatusCode::OK).await;
    assert_eq!(verified["user"]["email_verified"], true, "the emailed link proves the address");
    assert_eq!((joined["slug"].clone(), joined["role"].clone()), (json!("acme"), json!("admin")));
    assert_error(accept(&app, bob.access(), &token).await, 400, "invitation_invalid", "invalid_request_error").await;
    let members =
        json_of(call(&app, Method::GET, "/v1/organizations/acme/members", ada.access(), None).await, StatusCode::OK)
            .await;
    assert_eq!(members["members"].as_array().unwrap().len(), 2);
    // Bob switches his session there without signing in again.
    let switched = app.post("/v1/auth/refresh", &json!({"refresh_token": bob.refresh(), "organization": "acme"})).await;
    assert_eq!(json_of(switched, StatusCode::OK).await["session"]["organization_id"], joined["id"]);
}

#[actix_web::test]
async fn registering_with_an_invitation_joins_its_organization_whatever_its_sign_up_policy() {
    let app = spawn_app().await;
    let mut ada = app.signed_up_user().await;
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let email = format!("new-{}@example.com", Uuid::new_v4().simple());
    let (_, token) = invite(&app, ada.access(), "acme", &email, "member").await;

    let other = json!({"email": "someone-else@example.com", "password": PASSWORD, "invitation": token});
    assert_error(app.register(&other).await, 403, "invitation_email_mismatch", "permission_error").await;
    let both = json!({"email": email, "password": PASSWORD, "invitation": token, "organization": "acme"});
    assert_error(app.register(&both).await, 400, "invalid_request", "invalid_request_error").await;
    let forged = json!({"email": email, "password": PASSWORD, "invitation": "A".repeat(43)});
    assert_error(app.register(&forged).await, 400, "invitation_invalid", "invalid_request_error").await;

    let body = json!({"email": email, "password": PASSWORD, "invitation": token});
    let tokens = json_of(app.register(&body).await, StatusCode::CREATED).await;
    assert_eq!(tokens["session"]["organization_id"], org["id"], "closed to sign-up, open to the invited");
    assert_eq!(tokens["user"]["email_verified"], true, "the emailed link proves the address");
    let session = json_of(app.session(access(&tokens)).await, StatusCode::OK).await;
    assert_eq!(session["organization"]["role"], "member");
    let list = json_of(call(&app, Method::GET, "/v1/organizations", access(&tokens), None).await, StatusCode::OK).await;
    assert_eq!(list["organizations"].as_array().unwrap().len(), 1, "no personal organization: {list}");
    let again = json!({"email": format!("x{email}"), "password": PASSWORD, "invitation": token});
    assert_error(app.register(&again).await, 400, "invitation_invalid", "invalid_request_error").await;
}

#[actix_web::test]
async fn invitations_are_listed_revocable_expiring_and_for_admins() {
    let app = spawn_app().await;
    let (mut ada, bob, member) = (app.signed_up_user().await, app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let member_tokens = join(&app, &member, &org, "member").await;
    let admin_tokens = join(&app, &app.signed_up_user().await, &org, "admin").await;
    let body = json!({"email": "x@example.com", "role": "member"});
    let response =
        call(&app, Method::POST, "/v1/organizations/acme/invitations", access(&member_tokens), Some(&body)).await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;
    let owner_invite = json!({"email": "x@example.com", "role": "owner"});
    let response =
        call(&app, Method::POST, "/v1/organizations/acme/invitations", access(&admin_tokens), Some(&owner_invite))
            .await;
    assert_error(response, 403, "insufficient_role", "permission_error").await;

    let (first, first_token) = invite(&app, ada.access(), "acme", &bob.email, "member").await;
    let list = json_of(
        call(&app, Method::GET, "/v1/organizations/acme/invitations", ada.access(), None).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["invitations"][0]["id"], first["id"]);
    let path = format!("/v1/organizations/acme/invitations/{}", first["id"].as_str().unwrap());
    assert_eq!(call(&app, Method::DELETE, &path, ada.access(), None).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        call(&app, Method::DELETE, &path, ada.access(), None).await,
        404,
        "invitation_not_found",
        "invalid_request_error",
    )
    .await;
    assert_error(accept(&app, bob.access(), &first_token).await, 400, "invitation_invalid", "invalid_request_error")
        .await;

    let (_, second_token) = invite(&app, ada.access(), "acme", &bob.email, "member").await;
    app.clock.advance(Duration::days(7));
    let fresh = json_of(app.login(&json!({"email": bob.email, "password": PASSWORD})).await, StatusCode::OK).await;
    assert_error(accept(&app, access(&fresh), &second_token).await, 400, "invitation_invalid", "invalid_request_error")
        .await;
    let ada_now = sign_in_to(&app, &ada, &org).await;
    let list = call(&app, Method::GET, "/v1/organizations/acme/invitations", access(&ada_now), None).await;
    assert_eq!(json_of(list, StatusCode::OK).await["invitations"], json!([]));
}

#[actix_web::test]
async fn no_principal_of_one_organization_reads_or_changes_another() {
    let app = spawn_app().await;
    // Organization A with an owner, an admin and a member; organization B with an owner and a member.
    let (mut a_owner, a_admin, a_member) =
        (app.signed_up_user().await, app.signed_up_user().await, app.signed_up_user().await);
    let (mut b_owner, b_member) = (app.signed_up_user().await, app.signed_up_user().await);
    let org_a = create_org(&app, &mut a_owner, "Alpha", Some("alpha")).await;
    let org_b = create_org(&app, &mut b_owner, "Beta", Some("beta")).await;
    let a_owner_tokens = sign_in_to(&app, &a_owner, &org_a).await;
    let (a_key, _) = create_key(&app, access(&a_owner_tokens), "alpha").await;
    let principals = [
        ("owner", access(&a_owner_tokens).to_owned()),
        ("admin", access(&join(&app, &a_admin, &org_a, "admin").await).to_owned()),
        ("member", access(&join(&app, &a_member, &org_a, "member").await).to_owned()),
        ("API key", a_key),
    ];
    let b_member_tokens = join(&app, &b_member, &org_b, "member").await;
    let (b_member_id, _, b_member_sid) = ids(&b_member_tokens);
    let (b_invitation, _) = invite(&app, b_owner.access(), "beta", "guest@example.com", "member").await;
    let (_, b_key_id) = create_key(&app, b_owner.access(), "beta").await;
    let b_connection = sso_connection(&app, b_owner.access(), "beta").await;

    let snapshot = || async {
        let mut seen = Vec::new();
        for part in ["", "/members", "/invitations", "/api-keys", "/users", "/sso/connections"] {
            let path = format!("/v1/organizations/beta{part}");
            let response = call(&app, Method::GET, &path, b_owner.access(), None).await;
            seen.push(json_of(response, StatusCode::OK).await);
        }
        seen
    };
    let before = snapshot().await;

    // Every route with a path parameter, B's objects substituted (by id and by slug): generated from the
    // routing table, so a new route is covered or this test fails for want of a body.
    // A `{provider}` names public configuration, not an object of any organization.
    let parametrized: Vec<_> =
        route_table().iter().filter(|e| e.path.contains('{') && !e.path.contains("{provider}")).collect();
    assert!(parametrized.len() >= 10, "{parametrized:?}");
    let mut tried = 0;
    for (role, tokens) in &principals {
        for endpoint in &parametrized {
            for org in [org_b["id"].as_str().unwrap(), "beta"] {
                let path = endpoint
                    .path
                    .replace("{org}", org)
                    .replace("{user_id}", &b_member_id.to_string())
                    .replace("{id}", &b_member_sid.to_string())
                    .replace("{invitation_id}", b_invitation["id"].as_str().unwrap())
                    .replace("{key_id}", &b_key_id)
                    .replace("{connection_id}", &b_connection);
                let body = body_for(endpoint.method, endpoint.path);
                let takes_body = matches!(endpoint.method, "PATCH" | "POST");
                assert_eq!(takes_body, body.is_some(), "no body for {endpoint:?}");
                let method = Method::from_bytes(endpoint.method.as_bytes()).unwrap();
                let response = call(&app, method, &path, tokens, body.as_ref()).await;
                let status = response.status().as_u16();
                // A key is no user: routes of a user's own (their sessions) do not take it at all.
                let refused = matches!(status, 403 | 404) || (*role == "API key" && status == 401);
                assert!(refused, "{role} of A got {status} for {} {path}", endpoint.method);
                tried += 1;
            }
        }
    }
    assert_eq!(tried, principals.len() * parametrized.len() * 2);
    assert_eq!(snapshot().await, before, "B changed");
    assert_eq!(app.session(access(&b_member_tokens)).await.status(), StatusCode::OK, "B's member's session lives");
    // And the lists show nothing of B.
    for (_, tokens) in &principals[..3] {
        let list = json_of(call(&app, Method::GET, "/v1/organizations", tokens, None).await, StatusCode::OK).await;
        assert!(list["organizations"].as_array().unwrap().iter().all(|o| o["id"] != org_b["id"]), "{list}");
        let sessions = json_of(call(&app, Method::GET, "/v1/auth/sessions", tokens, None).await, StatusCode::OK).await;
        assert!(sessions["sessions"].as_array().unwrap().iter().all(|s| s["organization_id"] != org_b["id"]));
    }
}

#[actix_web::test]
async fn only_a_session_in_the_organization_that_its_policy_admits_acts_on_it() {
    let app = spawn_app().await;
    // Beta's owner also has a personal organization and owns Gamma; Beta's admin is a member of Gamma.
    let (mut owner, admin) = (app.signed_up_user().await, app.signed_up_user().await);
    let personal = owner.tokens.clone();
    let gamma = create_org(&app, &mut owner, "Gamma", Some("gamma")).await;
    let in_gamma = owner.tokens.clone();
    let beta = create_org(&app, &mut owner, "Beta", Some("beta")).await;
    let aal1_owner = sign_in_to(&app, &owner, &beta).await;
    let aal1_admin = join(&app, &admin, &beta, "admin").await;
    let admin_in_gamma = join(&app, &admin, &gamma, "member").await;
    // Beta comes to require a second factor; sessions made before it stay aal1 until they step up.
    owner.tokens = crate::mfa::raised_to_aal2(&app, &owner.tokens).await;
    let required = json!({"policy": {"mfa_required": true}});
    let response = call(&app, Method::PATCH, "/v1/organizations/beta", owner.access(), Some(&required)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (admin_id, _, _) = ids(&admin.tokens);
    let (_, key_id) = create_key(&app, owner.access(), "beta").await;
    let (invitation, _) = invite(&app, owner.access(), "beta", "guest@example.com", "member").await;
    let connection = sso_connection(&app, owner.access(), "beta").await;

    let snapshot = || async {
        let mut seen = Vec::new();
        for part in ["", "/members", "/invitations", "/api-keys", "/users", "/audit-log", "/sso/connections"] {
            let response =
                call(&app, Method::GET, &format!("/v1/organizations/beta{part}"), owner.access(), None).await;
            seen.push(json_of(response, StatusCode::OK).await);
        }
        seen
    };
    let before = snapshot().await;
    let sessions = [
        ("the owner's personal session", access(&personal), "wrong_organization"),
        ("the owner's session in Gamma", access(&in_gamma), "wrong_organization"),
        ("the admin's session in Gamma", access(&admin_in_gamma), "wrong_organization"),
        ("the owner's aal1 session in Beta", access(&aal1_owner), "insufficient_aal"),
        ("the admin's aal1 session in Beta", access(&aal1_admin), "insufficient_aal"),
    ];
    let org_routes: Vec<_> = route_table().iter().filter(|e| e.path.starts_with("/v1/organizations/{org}")).collect();
    assert!(org_routes.len() >= 15, "{org_routes:?}");
    for (who, token, code) in sessions {
        for endpoint in &org_routes {
            let path = endpoint
                .path
                .replace("{org}", "beta")
                .replace("{user_id}", &admin_id.to_string())
                .replace("{invitation_id}", invitation["id"].as_str().unwrap())
                .replace("{key_id}", &key_id)
                .replace("{connection_id}", &connection);
            let body = body_for(endpoint.method, endpoint.path)
                .or_else(|| matches!(endpoint.method, "PATCH" | "POST").then(|| json!({})));
            let method = Method::from_bytes(endpoint.method.as_bytes()).unwrap();
            let response = call(&app, method, &path, token, body.as_ref()).await;
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (403, Some(code)),
                "{who}: {} {path}",
                endpoint.method
            );
        }
    }
    assert_eq!(snapshot().await, before, "Beta changed");
    // Open to any session: listing one's organizations and creating one.
    let list = call(&app, Method::GET, "/v1/organizations", access(&personal), None).await;
    assert_eq!(json_of(list, StatusCode::OK).await["organizations"].as_array().unwrap().len(), 3);
    let own = json!({"name": "Own"});
    let created = call(&app, Method::POST, "/v1/organizations", access(&aal1_admin), Some(&own)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn every_change_lands_in_the_audit_log_with_who_and_from_where() {
    let app = spawn_app().await;
    let (mut ada, bob) = (app.signed_up_user().await, app.signed_up_user().await);
    let org = create_org(&app, &mut ada, "Acme", Some("acme")).await;
    let rename = json!({"name": "Acme Inc", "slug": "acme-inc"});
    assert_eq!(
        call(&app, Method::PATCH, "/v1/organizations/acme", ada.access(), Some(&rename)).await.status(),
        StatusCode::OK
    );
    let (revoked, _) = invite(&app, ada.access(), "acme-inc", "someone@example.com", "member").await;
    let path = format!("/v1/organizations/acme-inc/invitations/{}", revoked["id"].as_str().unwrap());
    assert_eq!(call(&app, Method::DELETE, &path, ada.access(), None).await.status(), StatusCode::NO_CONTENT);
    let (invitation, token) = invite(&app, ada.access(), "acme-inc", &bob.email, "member").await;
    assert_eq!(accept(&app, bob.access(), &token).await.status(), StatusCode::OK);
    let (bob_id, _, _) = ids(&bob.tokens);
    let member = format!("/v1/organizations/acme-inc/members/{bob_id}");
    assert_eq!(
        call(&app, Method::PATCH, &member, ada.access(), Some(&json!({"role": "admin"}))).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(call(&app, Method::DELETE, &member, ada.access(), None).await.status(), StatusCode::NO_CONTENT);

    let log = call(&app, Method::GET, "/v1/organizations/acme-inc/audit-log", ada.access(), None).await;
    let log = json_of(log, StatusCode::OK).await;
    let events = log["events"].as_array().unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        [
            "member.removed",
            "member.role_changed",
            "invitation.accepted",
            "invitation.created",
            "invitation.revoked",
            "invitation.created",
            "organization.updated",
            "organization.created"
        ]
    );
    let (ada_id, _, _) = ids(&ada.tokens);
    assert_eq!(events[0]["actor_id"], json!(ada_id.to_string()));
    assert_eq!(events[0]["target"], json!(bob_id.to_string()));
    assert_eq!(events[2]["actor_id"], json!(bob_id.to_string()), "bob accepted");
    assert_eq!(events[2]["target"], invitation["id"]);
    assert_eq!(events[6]["target"], "name,slug=acme-inc");
    assert!(events.iter().all(|e| e["ip"] == "127.0.0.1"), "{log}");
    assert_eq!(log["next"], Value::Null);
    assert_eq!(
        org["id"],
        json_of(call(&app, Method::GET, "/v1/organizations/acme-inc", ada.access(), None).await, StatusCode::OK).await
            ["id"]
    );

    // Paged: three at a time, nothing lost or repeated.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let query = next.as_ref().map_or(String::new(), |n| format!("&before={n}"));
        let page = call(
            &app,
            Method::GET,
            &format!("/v1/organizations/acme-inc/audit-log?limit=3{query}"),
            ada.access(),
            None,
        )
        .await;
        let page = json_of(page, StatusCode::OK).await;
        seen.extend(page["events"].as_array().unwrap().iter().map(|e| e["id"].clone()));
        match page["next"].as_str() {
            Some(cursor) => next = Some(cursor.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, events.iter().map(|e| e["id"].clone()).collect::<Vec<_>>());
    let bad = call(&app, Method::GET, "/v1/organizations/acme-inc/audit-log?before=nonsense", ada.access(), None).await;
    assert_error(bad, 400, "invalid_request", "invalid_request_error").await;
    // Members do not read it.
    let carol = app.signed_up_user().await;
    let carol_tokens = join(&app, &carol, &org, "member").await;
    let refused = call(&app, Method::GET, "/v1/organizations/acme-inc/audit-log", access(&carol_tokens), None).await;
    assert_error(refused, 403, "insufficient_role", "permission_error").await;
}
