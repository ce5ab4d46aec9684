//! Enterprise SSO: an organization's own OpenID Connect provider (the mock of `provider.rs`), managed by its
//! owners, its domains verified by the platform's key; sign-in through it (just-in-time membership, only
//! for addresses of verified domains), enforcement on every other door into the organization, discovery by
//! address, and a client secret that no response, table or log line holds.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, User, assert_error, spawn_process_app};
use crate::organizations::{call, create_key, create_org, join, json_of, sign_in_to, switch, uuid};
use crate::provider::{MockProvider, User as IdpUser};
use crate::social::{APP, app_query, app_with, browser, location, on_server, session_of, through};

/// A server with a platform provider (`mock`), an organization `acme` owned by someone outside its domain,
/// and the organization's own provider.
struct Acme {
    app: TestApp,
    social: MockProvider,
    idp: MockProvider,
    owner: User,
    org: Value,
    platform: String,
}

async fn acme() -> Acme {
    let social = MockProvider::start().await;
    let idp = MockProvider::start().await;
    let app = app_with(&social, None).await;
    acme_on(app, social, idp).await
}

async fn acme_on(app: TestApp, social: MockProvider, idp: MockProvider) -> Acme {
    let mut owner = registered(&app, "owner@it-partner.io").await;
    let org = create_org(&app, &mut owner, "Acme", Some("acme")).await;
    let platform = app.db().await.platform_key(app.clock.now()).await;
    Acme { app, social, idp, owner, org, platform }
}

async fn registered(app: &TestApp, email: &str) -> User {
    let response = app.register(&json!({"email": email, "password": PASSWORD})).await;
    User { email: email.to_owned(), tokens: json_of(response, StatusCode::CREATED).await }
}

impl Acme {
    fn connection_body(&self, domains: &[&str]) -> Value {
        json!({
            "issuer": self.idp.issuer(),
            "client_id": self.idp.client_id(),
            "client_secret": self.idp.client_secret(),
            "domains": domains,
        })
    }

    /// A connection of `acme` to its provider, claiming `domains`, each verified by the platform.
    async fn connection(&self, domains: &[&str]) -> Value {
        let path = "/v1/organizations/acme/sso/connections";
        let body = self.connection_body(domains);
        let created = call(&self.app, Method::POST, path, self.owner.access(), Some(&body)).await;
        let mut connection = json_of(created, StatusCode::CREATED).await;
        for domain in domains {
            connection = json_of(self.verify(&connection, domain, &self.platform).await, StatusCode::OK).await;
        }
        connection
    }

    async fn verify(&self, connection: &Value, domain: &str, who: &str) -> reqwest::Response {
        let path =
            format!("/v1/organizations/acme/sso/connections/{}/verify-domain", connection["id"].as_str().unwrap());
        call(&self.app, Method::POST, &path, who, Some(&json!({"domain": domain}))).await
    }

    async fn update(&self, connection: &Value, change: &Value) -> Value {
        let path = format!("/v1/organizations/acme/sso/connections/{}", connection["id"].as_str().unwrap());
        json_of(call(&self.app, Method::PATCH, &path, self.owner.access(), Some(change)).await, StatusCode::OK).await
    }

    async fn audit_actions(&self) -> Vec<String> {
        let log = call(&self.app, Method::GET, "/v1/organizations/acme/audit-log", self.owner.access(), None).await;
        let log = json_of(log, StatusCode::OK).await;
        log["events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
    }
}

fn employee(sub: &str, email: &str) -> IdpUser {
    // Enterprise providers often do not say `email_verified`: the verified domain is what vouches.
    IdpUser { sub: sub.into(), email: Some(email.into()), email_verified: false, name: Some("Employee".into()) }
}

fn provider_of(connection: &Value) -> String {
    connection["provider"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn owners_manage_connections_and_only_the_platform_verifies_a_domain() {
    let acme = acme().await;
    let app = &acme.app;
    let path = "/v1/organizations/acme/sso/connections";
    let created = call(app, Method::POST, path, acme.owner.access(), Some(&acme.connection_body(&["Acme.com"]))).await;
    let connection = json_of(created, StatusCode::CREATED).await;
    assert_eq!(connection["provider"], format!("sso:{}", connection["id"].as_str().unwrap()));
    assert_eq!(connection["domains"], json!([{"domain": "acme.com", "verified": false, "verified_at": null}]));
    assert_eq!(connection["enforce"], false);
    assert!(connection.get("client_secret").is_none());

    // An admin is not enough; the organization's key is (audited), another organization's sees nothing.
    let admin = registered(app, "admin@it-partner.io").await;
    let admin_tokens = join(app, &admin, &acme.org, "admin").await;
    let refused = call(app, Method::GET, path, admin_tokens["access_token"].as_str().unwrap(), None).await;
    assert_error(refused, 403, "insufficient_role", "permission_error").await;
    let (key, _) = create_key(app, acme.owner.access(), "acme").await;
    let listed = json_of(call(app, Method::GET, path, &key, None).await, StatusCode::OK).await;
    assert_eq!(listed["connections"][0]["id"], connection["id"]);
    let mut stranger = registered(app, "stranger@elsewhere.io").await;
    create_org(app, &mut stranger, "Other", Some("other")).await;
    let (other_key, _) = create_key(app, stranger.access(), "other").await;
    assert_error(
        call(app, Method::GET, path, &other_key, None).await,
        404,
        "organization_not_found",
        "invalid_request_error",
    )
    .await;

    // Only the platform's key verifies a domain, and only one the connection claims.
    for who in [acme.owner.access(), key.as_str()] {
        assert_error(acme.verify(&connection, "acme.com", who).await, 403, "insufficient_role", "permission_error")
            .await;
    }
    let unclaimed = acme.verify(&connection, "acme.org", &acme.platform).await;
    assert_error(unclaimed, 400, "invalid_request", "invalid_request_error").await;
    let verified = json_of(acme.verify(&connection, "acme.com", &acme.platform).await, StatusCode::OK).await;
    assert_eq!(verified["domains"][0]["verified"], true);

    // A domain is verified for one connection at most.
    let other_path = "/v1/organizations/other/sso/connections";
    let rival =
        call(app, Method::POST, other_path, stranger.access(), Some(&acme.connection_body(&["acme.com"]))).await;
    let rival = json_of(rival, StatusCode::CREATED).await;
    let rival_verify = format!("{other_path}/{}/verify-domain", rival["id"].as_str().unwrap());
    let taken = call(app, Method::POST, &rival_verify, &acme.platform, Some(&json!({"domain": "acme.com"}))).await;
    assert_error(taken, 409, "domain_taken", "conflict_error").await;

    // Changes: a kept domain keeps its verification; bad input names its field.
    let changed =
        acme.update(&connection, &json!({"domains": ["acme.com", "acme.de"], "client_secret": "rotated"})).await;
    assert_eq!(changed["domains"][0]["verified"], true);
    assert_eq!(changed["domains"][1], json!({"domain": "acme.de", "verified": false, "verified_at": null}));
    let one = format!("{path}/{}", connection["id"].as_str().unwrap());
    for (body, param) in [
        (json!({"issuer": "ftp://idp.acme.com"}), "issuer"),
        (json!({"issuer": "http://10.0.0.1/realms/acme"}), "issuer"),
        (json!({"domains": ["localhost"]}), "domains"),
        (json!({"client_id": ""}), "client_id"),
    ] {
        let response = call(app, Method::PATCH, &one, acme.owner.access(), Some(&body)).await;
        let error = assert_error(response, 400, "invalid_request", "invalid_request_error").await;
        assert_eq!(error["error"]["param"], param, "{body}");
    }

    // Removed: gone for good, and every step is in the audit log.
    assert_eq!(call(app, Method::DELETE, &one, acme.owner.access(), None).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        call(app, Method::GET, &one, acme.owner.access(), None).await,
        404,
        "connection_not_found",
        "invalid_request_error",
    )
    .await;
    let actions = acme.audit_actions().await;
    for action in ["sso_connection.created", "sso_domain.verified", "sso_connection.updated", "sso_connection.deleted"]
    {
        assert!(actions.iter().any(|a| a == action), "{action} missing from {actions:?}");
    }
}

#[actix_web::test]
async fn a_connection_signs_in_addresses_of_its_verified_domains_to_its_organization_only() {
    let acme = acme().await;
    let app = &acme.app;
    let connection = acme.connection(&["acme.com"]).await;
    let provider = provider_of(&connection);

    // First sign-in: a verified account, a member of Acme at once, signed in there.
    acme.idp.sign_in_as(employee("ada-1", "ada@acme.com"));
    let browser = browser();
    // The organization asked for does not matter: a connection signs in to its own.
    let done = through(app, &browser, &provider, &format!("{}&organization=other", app_query())).await;
    assert_eq!(location(&done), APP);
    let session = session_of(app, &browser).await;
    assert_eq!(session["user"]["email"], "ada@acme.com");
    assert_eq!(session["user"]["email_verified"], true);
    assert_eq!(session["session"]["organization_id"], acme.org["id"]);
    assert_eq!(session["session"]["auth_method"], "social_oauth");
    assert!(acme.audit_actions().await.iter().any(|a| a == "member.joined_by_sso"));

    // An address outside its verified domains is not the organization's to vouch for: nothing is created.
    let users = app.db().await.count("users").await;
    for outsider in ["eve@gmail.com", "eve@acme.com.evil.io"] {
        acme.idp.sign_in_as(employee("eve-1", outsider));
        let refused = through(app, &self::browser(), &provider, &app_query()).await;
        assert_eq!(location(&refused), format!("{APP}?error=oauth_email_unverified"), "{outsider}");
    }
    // A domain it claims but nobody verified is no better.
    let unverified = acme.update(&connection, &json!({"domains": ["acme.com", "acme.de"]})).await;
    acme.idp.sign_in_as(employee("fred-1", "fred@acme.de"));
    let refused = through(app, &self::browser(), &provider_of(&unverified), &app_query()).await;
    assert_eq!(location(&refused), format!("{APP}?error=oauth_email_unverified"));
    assert_eq!(app.db().await.count("users").await, users);

    // An unknown connection is no provider.
    let unknown =
        browser.get(app.url(&format!("/v1/auth/oauth/sso:{}/authorize?{}", ::uuid::Uuid::new_v4(), app_query())));
    assert_error(unknown.send().await.unwrap(), 404, "provider_not_found", "invalid_request_error").await;
}

#[actix_web::test]
async fn an_enforcing_connection_is_the_only_door_into_its_organization_for_its_domains() {
    let acme = acme().await;
    let app = &acme.app;
    let connection = acme.connection(&["acme.com"]).await;
    let bob = registered(app, "bob@acme.com").await;
    join(app, &bob, &acme.org, "member").await;
    let carol = registered(app, "carol@contractor.io").await;
    join(app, &carol, &acme.org, "member").await;
    app.db().await.set_signup(uuid(&acme.org["id"]), "open", &[], None).await;

    // Before enforcement, a password works.
    sign_in_to(app, &bob, &acme.org).await;
    acme.update(&connection, &json!({"enforce": true})).await;

    // A password sign-in into Acme, a session of another organization moving in, a sign-up into it and a
    // platform provider's sign-in into it: all refused for the domain.
    let password = app.login(&json!({"email": bob.email, "password": PASSWORD, "organization": "acme"})).await;
    assert_error(password, 403, "sso_required", "permission_error").await;
    let own = &bob.tokens["session"]["organization_id"];
    let personal = app.login(&json!({"email": bob.email, "password": PASSWORD, "organization": own})).await;
    let personal = json_of(personal, StatusCode::OK).await;
    let moved = switch(app, personal["refresh_token"].as_str().unwrap(), &acme.org["id"]).await;
    assert_error(moved, 403, "sso_required", "permission_error").await;
    let signup = app.register(&json!({"email": "dave@acme.com", "password": PASSWORD, "organization": "acme"})).await;
    assert_error(signup, 403, "sso_required", "permission_error").await;
    acme.social.sign_in_as(IdpUser {
        sub: "bob-google".into(),
        email: Some("bob@acme.com".into()),
        email_verified: true,
        name: None,
    });
    let query = format!("{}&organization=acme", app_query());
    let social = through(app, &self::browser(), "mock", &query).await;
    assert_eq!(location(&social), format!("{APP}?error=sso_required"));

    // Another domain's member keeps their password; the connection itself signs the domain in.
    sign_in_to(app, &carol, &acme.org).await;
    acme.idp.sign_in_as(employee("erin-1", "erin@acme.com"));
    let browser = browser();
    assert_eq!(location(&through(app, &browser, &provider_of(&connection), &app_query()).await), APP);
    assert_eq!(session_of(app, &browser).await["session"]["organization_id"], acme.org["id"]);

    // Enforcement off: the password door opens again.
    acme.update(&connection, &json!({"enforce": false})).await;
    sign_in_to(app, &bob, &acme.org).await;
}

#[actix_web::test]
async fn discovery_finds_the_connection_of_a_verified_domain_and_tells_nothing_about_accounts() {
    let acme = acme().await;
    let app = &acme.app;
    acme.connection(&["acme.com"]).await;
    acme.idp.sign_in_as(employee("ada-1", "ada@acme.com"));

    // Cookie flow: discover, then the browser goes to the authorize URL.
    let found = app.post("/v1/auth/sso/discover", &json!({"email": "Ada@ACME.com", "redirect_uri": APP})).await;
    let found = json_of(found, StatusCode::OK).await;
    assert_eq!(found["organization_id"], acme.org["id"]);
    let browser = browser();
    let start = browser.get(on_server(app, found["authorize_url"].as_str().unwrap())).send().await.unwrap();
    let back = browser.get(location(&start)).send().await.unwrap();
    let done = browser.get(on_server(app, &location(&back))).send().await.unwrap();
    assert_eq!(location(&done), APP);
    assert_eq!(session_of(app, &browser).await["user"]["email"], "ada@acme.com");

    // Bearer flow: the app's challenge rides along; the one-time code and its verifier give the tokens.
    let verifier = "a-verifier-of-the-app-that-is-long-enough-for-pkce-0123456789";
    let challenge = {
        use base64::Engine as _;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    };
    let body = json!({"email": "ada@acme.com", "redirect_uri": APP, "code_challenge": challenge});
    let found = json_of(app.post("/v1/auth/sso/discover", &body).await, StatusCode::OK).await;
    let app_browser = self::browser();
    let start = app_browser.get(on_server(app, found["authorize_url"].as_str().unwrap())).send().await.unwrap();
    let back = app_browser.get(location(&start)).send().await.unwrap();
    let done = app_browser.get(on_server(app, &location(&back))).send().await.unwrap();
    let code = location(&done).split_once("?code=").map(|(_, code)| code.to_owned()).expect("a one-time code");
    let tokens = app.post("/v1/auth/oauth/token", &json!({"code": code, "code_verifier": verifier})).await;
    let tokens = json_of(tokens, StatusCode::OK).await;
    assert_eq!(tokens["session"]["organization_id"], acme.org["id"]);

    // No connection: the same answer for an address with an account (the owner's) and one without.
    let mut answers = Vec::new();
    for email in [acme.owner.email.as_str(), "nobody@it-partner.io", "nobody@nowhere.example"] {
        let response = app.post("/v1/auth/sso/discover", &json!({"email": email, "redirect_uri": APP})).await;
        answers.push(
            assert_error(response, 404, "connection_not_found", "invalid_request_error").await["error"]["message"]
                .clone(),
        );
    }
    assert!(answers.windows(2).all(|pair| pair[0] == pair[1]), "{answers:?}");
    let elsewhere = json!({"email": "ada@acme.com", "redirect_uri": "https://evil.example/"});
    assert_error(
        app.post("/v1/auth/sso/discover", &elsewhere).await,
        400,
        "redirect_uri_not_allowed",
        "invalid_request_error",
    )
    .await;
}

#[actix_web::test]
async fn a_connections_client_secret_is_in_no_response_table_or_log_line() {
    let social = MockProvider::start().await;
    let idp = MockProvider::start().await;
    let app = spawn_process_app(&[
        ("IDENTSPHERE_LOG", "debug"),
        ("IDENTSPHERE_OAUTH_MOCK_ISSUER", social.issuer()),
        ("IDENTSPHERE_OAUTH_MOCK_CLIENT_ID", social.client_id()),
        ("IDENTSPHERE_OAUTH_MOCK_CLIENT_SECRET", social.client_secret()),
        ("IDENTSPHERE_ALLOWED_REDIRECT_URIS", "http://localhost:3000"),
    ])
    .await;
    let acme = acme_on(app, social, idp).await;
    let app = &acme.app;
    let secret = acme.idp.client_secret().to_owned();
    let connection = acme.connection(&["acme.com"]).await;
    let mut seen = vec![connection.to_string()];
    let one = format!("/v1/organizations/acme/sso/connections/{}", connection["id"].as_str().unwrap());
    for (method, path) in [(Method::GET, one.as_str()), (Method::GET, "/v1/organizations/acme/sso/connections")] {
        seen.push(call(app, method, path, acme.owner.access(), None).await.text().await.unwrap());
    }
    // A sign-in that works, one the provider refuses and one while it is down all use the secret.
    acme.idp.sign_in_as(employee("ada-1", "ada@acme.com"));
    let provider = provider_of(&connection);
    assert_eq!(location(&through(app, &browser(), &provider, &app_query()).await), APP);
    acme.idp.misbehave(crate::provider::Misbehaviour::OtherKey);
    let refused = through(app, &browser(), &provider, &app_query()).await;
    assert_eq!(location(&refused), format!("{APP}?error=oauth_provider_error"));
    acme.idp.set_down(true);
    let down = browser().get(app.url(&format!("/v1/auth/oauth/{provider}/authorize?{}", app_query()))).send().await;
    seen.push(down.unwrap().text().await.unwrap());

    let log = app.log();
    assert!(log.contains("sign-in provider"), "the failures were logged at all: {log}");
    let stored = app.db().await.dump_table("sso_connections").await;
    for (what, text) in [("a response", seen.join("\n")), ("the log", log), ("the table", stored)] {
        assert!(!text.contains(&secret), "the client secret is in {what}");
    }
}
