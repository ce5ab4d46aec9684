//! Abuse resistance: sign-in, registration and refresh limits, shared by every replica, keyed by the
//! client address a trusted proxy reports.

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{Backend, PASSWORD, TestApp, assert_error, postgres_run, spawn_app_with};

/// The limits under test, small, and 127.0.0.1 as the trusted proxy so tests can speak for many clients.
fn limited(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![
        ("IDENTSPHERE_RATE_LIMIT_SIGNIN_IP", "5/60"),
        ("IDENTSPHERE_RATE_LIMIT_SIGNIN_ACCOUNT_FAILURES", "3/900"),
        ("IDENTSPHERE_RATE_LIMIT_REGISTER_IP", "3/600"),
        ("IDENTSPHERE_RATE_LIMIT_REFRESH_IP", "4/60"),
        ("IDENTSPHERE_TRUSTED_PROXIES", "127.0.0.1/32"),
    ];
    vars.extend_from_slice(extra);
    vars
}

async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/auth/login"))
        .header("X-Forwarded-For", ip)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

async fn assert_limited(response: reqwest::Response) {
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    assert_error(response, 429, "rate_limited", "rate_limit_error").await;
}

/// Password spraying: many accounts, one password, one address — stopped at the address's limit, while
/// a user on another address signs in.
#[actix_web::test]
async fn password_spraying_from_one_address_is_stopped_and_others_are_not() {
    let app = spawn_app_with(&limited(&[])).await;
    let victim = app.signed_up_user().await;
    for i in 0..5 {
        let response = login_from(&app, "203.0.113.66", &format!("target-{i}@example.com"), "Summer2026!").await;
        assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    }
    assert_limited(login_from(&app, "203.0.113.66", "target-9@example.com", "Summer2026!").await).await;
    let legit = login_from(&app, "198.51.100.20", &victim.email, PASSWORD).await;
    assert_eq!(legit.status(), StatusCode::OK, "another address is not affected");

    app.clock.advance(Duration::seconds(13));
    let later = login_from(&app, "203.0.113.66", "target-10@example.com", "Summer2026!").await;
    assert_eq!(later.status(), StatusCode::UNAUTHORIZED, "the address earns attempts back at the sustained rate");
}

/// Credential stuffing: one account, many passwords, many addresses — stopped by the account's failure
/// limit; the right password from the user is refused only during the short cooling-off, and other
/// accounts are not touched.
#[actix_web::test]
async fn credential_stuffing_against_one_account_is_stopped_for_a_short_cooling_off() {
    let app = spawn_app_with(&limited(&[])).await;
    let victim = app.signed_up_user().await;
    let bystander = app.signed_up_user().await;
    for i in 0..3 {
        let response = login_from(&app, &format!("203.0.113.{i}"), &victim.email, &format!("guess-{i}-password")).await;
        assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    }
    let stopped = login_from(&app, "203.0.113.50", &victim.email, "guess-50-password").await;
    assert_limited(stopped).await;
    let own = login_from(&app, "198.51.100.7", &victim.email, PASSWORD).await;
    assert_limited(own).await;
    let other = login_from(&app, "203.0.113.51", &bystander.email, PASSWORD).await;
    assert_eq!(other.status(), StatusCode::OK);

    // One failure is forgiven every 5 minutes (3 per 15): the victim is back in after that.
    app.clock.advance(Duration::minutes(5));
    let back = login_from(&app, "198.51.100.7", &victim.email, PASSWORD).await;
    assert_eq!(back.status(), StatusCode::OK);
}

#[actix_web::test]
async fn unknown_emails_are_limited_like_known_ones() {
    let app = spawn_app_with(&limited(&[])).await;
    for i in 0..3 {
        let response = login_from(&app, &format!("203.0.113.{i}"), "nobody@example.com", "some password").await;
        assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    }
    assert_limited(login_from(&app, "203.0.113.9", "NOBODY@example.com ", "some password").await).await;
}

#[actix_web::test]
async fn a_forwarded_address_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(&limited(&[("IDENTSPHERE_TRUSTED_PROXIES", "10.0.0.0/8")])).await;
    for i in 0..5 {
        let response = login_from(&app, &format!("203.0.113.{i}"), &format!("t{i}@example.com"), "pw-pw-pw-pw").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // Each request claimed another address, but the peer (127.0.0.1) is not a trusted proxy.
    assert_limited(login_from(&app, "203.0.113.99", "t9@example.com", "pw-pw-pw-pw").await).await;
}

#[actix_web::test]
async fn registration_and_refresh_are_limited_per_address() {
    let app = spawn_app_with(&limited(&[])).await;
    let register = |ip: &'static str, i: usize| {
        app.client
            .post(app.url("/v1/auth/register"))
            .header("X-Forwarded-For", ip)
            .json(&json!({ "email": format!("new-{i}@example.com"), "password": PASSWORD }))
            .send()
    };
    let mut first = None;
    for i in 0..3 {
        let response = register("203.0.113.1", i).await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        first.get_or_insert(body["refresh_token"].as_str().unwrap().to_owned());
    }
    assert_limited(register("203.0.113.1", 3).await.unwrap()).await;
    assert_eq!(register("203.0.113.2", 4).await.unwrap().status(), StatusCode::CREATED);

    let refresh = |token: String| {
        app.client
            .post(app.url("/v1/auth/refresh"))
            .header("X-Forwarded-For", "203.0.113.1")
            .json(&json!({ "refresh_token": token }))
            .send()
    };
    let mut token = first.unwrap();
    for _ in 0..4 {
        let response = refresh(token).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        token = body["refresh_token"].as_str().unwrap().to_owned();
    }
    assert_limited(refresh(token).await.unwrap()).await;
}

#[actix_web::test]
async fn postgres_only_replicas_share_the_counters() {
    if !postgres_run() {
        return;
    }
    let app = spawn_app_with(&limited(&[])).await;
    assert_eq!(app.backend, Backend::Postgres);
    let replica = app.spawn_replica().await;
    for i in 0..5 {
        let target = if i % 2 == 0 { &app } else { &replica };
        let response = login_from(target, "203.0.113.77", &format!("s{i}@example.com"), "Winter2026!").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    for target in [&app, &replica] {
        assert_limited(login_from(target, "203.0.113.77", "s9@example.com", "Winter2026!").await).await;
    }
}

/// Invitations and created users mail an address from our domain with a name the organization chooses:
/// counted per organization and per recipient, so no member or key mail-bombs anyone.
#[actix_web::test]
async fn mail_an_organization_sends_is_limited_per_organization_and_per_recipient() {
    let app = spawn_app_with(&[
        ("IDENTSPHERE_RATE_LIMIT_INVITE_ORG", "4/3600"),
        ("IDENTSPHERE_RATE_LIMIT_INVITE_RECIPIENT", "2/86400"),
    ])
    .await;
    let mut owner = app.signed_up_user().await;
    crate::organizations::create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let invite = |email: &str| {
        let body = json!({"email": email, "role": "member"});
        app.client.post(app.url("/v1/organizations/acme/invitations")).bearer_auth(owner.access()).json(&body).send()
    };
    assert_eq!(invite("victim@example.com").await.unwrap().status(), StatusCode::CREATED);
    assert_eq!(invite("VICTIM@example.com").await.unwrap().status(), StatusCode::CREATED);
    assert_limited(invite("victim@example.com").await.unwrap()).await;
    // Other recipients still get theirs, up to the organization's own limit, created users included.
    assert_eq!(invite("a@example.com").await.unwrap().status(), StatusCode::CREATED);
    let user = json!({"email": "b@example.com", "password": PASSWORD});
    let created =
        app.client.post(app.url("/v1/organizations/acme/users")).bearer_auth(owner.access()).json(&user).send();
    assert_eq!(created.await.unwrap().status(), StatusCode::CREATED);
    assert_limited(invite("c@example.com").await.unwrap()).await;
    // Another organization is not bound by Acme's count, but the recipient's count holds everywhere.
    let mut other = app.signed_up_user().await;
    crate::organizations::create_org(&app, &mut other, "Other", Some("other")).await;
    let body = json!({"email": "victim@example.com", "role": "member"});
    let from_other =
        app.client.post(app.url("/v1/organizations/other/invitations")).bearer_auth(other.access()).json(&body);
    assert_limited(from_other.send().await.unwrap()).await;
    let body = json!({"email": "c@example.com", "role": "member"});
    let from_other =
        app.client.post(app.url("/v1/organizations/other/invitations")).bearer_auth(other.access()).json(&body);
    assert_eq!(from_other.send().await.unwrap().status(), StatusCode::CREATED);
}

/// Behind a proxy that appends `X-Forwarded-For` and passes the client's own `Forwarded` through
/// (ingress-nginx, AWS ALB), a client writing `Forwarded` must not choose the address it is limited under:
/// only the header the operator names (`x-forwarded-for` by default) is read.
#[actix_web::test]
async fn a_forwarded_header_the_client_wrote_does_not_choose_its_address_behind_an_x_forwarded_for_proxy() {
    let app = spawn_app_with(&limited(&[])).await;
    let spoofed = |i: usize| {
        app.client
            .post(app.url("/v1/auth/login"))
            .header("Forwarded", format!("for=198.51.100.{i}"))
            .header("X-Forwarded-For", "203.0.113.66")
            .json(&json!({ "email": format!("target-{i}@example.com"), "password": "Summer2026!" }))
            .send()
    };
    for i in 0..5 {
        assert_error(spoofed(i).await.unwrap(), 401, "invalid_credentials", "authentication_error").await;
    }
    assert_limited(spoofed(5).await.unwrap()).await;
}

/// An IPv6 client holds a whole /64 and can rotate through it: the per-address limits count the /64. An
/// IPv4-mapped IPv6 address is the IPv4 address it maps.
#[actix_web::test]
async fn ipv6_clients_are_limited_per_64_and_ipv4_mapped_ones_as_their_ipv4_address() {
    let app = spawn_app_with(&limited(&[])).await;
    for i in 0..5 {
        let response =
            login_from(&app, &format!("2001:db8:7:1:{i:x}::1"), &format!("v6-{i}@example.com"), "pw-pw-pw-pw").await;
        assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    }
    let same_64 = login_from(&app, "2001:db8:7:1:ffff:ffff:ffff:ffff", "v6-9@example.com", "pw-pw-pw-pw").await;
    assert_limited(same_64).await;
    let other_64 = login_from(&app, "2001:db8:7:2::1", "v6-9@example.com", "pw-pw-pw-pw").await;
    assert_error(other_64, 401, "invalid_credentials", "authentication_error").await;

    for i in 0..5 {
        let response = login_from(&app, "203.0.113.70", &format!("v4-{i}@example.com"), "pw-pw-pw-pw").await;
        assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    }
    assert_limited(login_from(&app, "::ffff:203.0.113.70", "v4-9@example.com", "pw-pw-pw-pw").await).await;
}
