//! Signing in through a provider, against the mock OpenID Connect provider and the mock GitHub
//! (`provider.rs`), driven as a browser does: redirects followed by hand, cookies kept.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, PUBLIC_BASE_URL, TestApp, assert_error, spawn_app_with};
use crate::provider::{GitHubUser, Misbehaviour, MockGitHub, MockProvider, User};

pub(crate) const APP: &str = "http://localhost:3000/signed-in";

/// A server with the mock provider as `mock` (and, when given, the mock GitHub as `github`).
pub(crate) async fn app_with(provider: &MockProvider, github: Option<&MockGitHub>) -> TestApp {
    let mut vars = vec![
        ("IDENTSPHERE_OAUTH_MOCK_ISSUER", provider.issuer().to_owned()),
        ("IDENTSPHERE_OAUTH_MOCK_CLIENT_ID", provider.client_id().to_owned()),
        ("IDENTSPHERE_OAUTH_MOCK_CLIENT_SECRET", provider.client_secret().to_owned()),
        ("IDENTSPHERE_ALLOWED_REDIRECT_URIS", "http://localhost:3000".to_owned()),
    ];
    if let Some(github) = github {
        vars.extend([
            ("IDENTSPHERE_OAUTH_GITHUB_ISSUER", github.base_url().to_owned()),
            ("IDENTSPHERE_OAUTH_GITHUB_CLIENT_ID", github.client_id().to_owned()),
            ("IDENTSPHERE_OAUTH_GITHUB_CLIENT_SECRET", github.client_secret().to_owned()),
        ]);
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&vars).await
}

pub(crate) fn alice() -> User {
    User {
        sub: "alice-123".into(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        name: Some("Alice".into()),
    }
}

/// A browser: keeps cookies, follows no redirect by itself.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub(crate) fn location(response: &reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::FOUND, "{response:?}");
    response.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// Our URL for a location on the public base URL (the test server listens elsewhere).
pub(crate) fn on_server(app: &TestApp, url: &str) -> String {
    app.url(url.strip_prefix(PUBLIC_BASE_URL).unwrap_or_else(|| panic!("not ours: {url}")))
}

/// Starts a sign-in at `provider` with `query`, lets the provider answer, and brings its redirect back to
/// the server: the server's last answer.
pub(crate) async fn through(
    app: &TestApp,
    browser: &reqwest::Client,
    provider: &str,
    query: &str,
) -> reqwest::Response {
    let start = browser.get(app.url(&format!("/v1/auth/oauth/{provider}/authorize?{query}"))).send().await.unwrap();
    let at_provider = location(&start);
    let back = browser.get(&at_provider).send().await.unwrap();
    let callback = location(&back);
    browser.get(on_server(app, &callback)).send().await.unwrap()
}

pub(crate) fn app_query() -> String {
    format!("redirect_uri={}", urlencode(APP))
}

pub(crate) fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub(crate) fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The session the browser holds: its `/v1/auth/session` answer.
pub(crate) async fn session_of(app: &TestApp, browser: &reqwest::Client) -> Value {
    let response = browser.get(app.url("/v1/auth/session")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[actix_web::test]
async fn a_first_sign_in_creates_a_verified_account_and_the_next_one_finds_it() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let app = app_with(&provider, None).await;
    let browser = browser();
    let done = through(&app, &browser, "mock", &app_query()).await;
    assert_eq!(location(&done), APP, "back to the app, with no token in the URL");
    let session = session_of(&app, &browser).await;
    assert_eq!(session["user"]["email"], "alice@example.com");
    assert_eq!(session["user"]["email_verified"], true);
    assert_eq!(session["session"]["auth_method"], "social_oauth");
    assert_eq!(session["session"]["aal"], "aal1");
    let identities: Value = browser.get(app.url("/v1/auth/identities")).send().await.unwrap().json().await.unwrap();
    assert_eq!(identities["identities"][0]["provider"], "mock");

    // The account has no password: a password sign-in finds nothing to accept.
    let login = app.login(&json!({"email": "alice@example.com", "password": PASSWORD})).await;
    assert_error(login, 401, "invalid_credentials", "authentication_error").await;
    // Again, in another browser: the same account.
    let again = self::browser();
    through(&app, &again, "mock", &app_query()).await;
    assert_eq!(session_of(&app, &again).await["user"]["id"], session["user"]["id"]);
    // The last way to sign in stays.
    let id = identities["identities"][0]["id"].as_str().unwrap();
    let unlink = browser.delete(app.url(&format!("/v1/auth/identities/{id}"))).header("Origin", PUBLIC_BASE_URL);
    assert_error(unlink.send().await.unwrap(), 409, "last_sign_in_method", "conflict_error").await;
}

#[actix_web::test]
async fn the_callback_must_come_back_to_the_browser_that_started_and_only_once() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let app = app_with(&provider, None).await;
    let victim = browser();
    let start = victim.get(app.url(&format!("/v1/auth/oauth/mock/authorize?{}", app_query()))).send().await.unwrap();
    let back = victim.get(location(&start)).send().await.unwrap();
    let callback = on_server(&app, &location(&back));
    // Another browser (login CSRF: the attacker's callback URL in the victim's browser) is refused.
    let other = browser().get(&callback).send().await.unwrap();
    assert_error(other, 400, "oauth_state_invalid", "invalid_request_error").await;
    // The flow was taken by that attempt: the right browser cannot replay it either.
    let replay = victim.get(&callback).send().await.unwrap();
    assert_error(replay, 400, "oauth_state_invalid", "invalid_request_error").await;
    let missing = victim.get(app.url("/v1/auth/oauth/mock/callback?code=x")).send().await.unwrap();
    assert_error(missing, 400, "oauth_state_invalid", "invalid_request_error").await;
}

#[actix_web::test]
async fn only_allowed_redirect_uris_and_known_providers_are_taken() {
    let provider = MockProvider::start().await;
    let app = app_with(&provider, None).await;
    for target in ["https://evil.example/", "http://localhost:3000.evil.example/x", "http://localhost:3000/#x"] {
        let query = format!("redirect_uri={}", urlencode(target));
        let response = browser().get(app.url(&format!("/v1/auth/oauth/mock/authorize?{query}"))).send().await.unwrap();
        assert_error(response, 400, "redirect_uri_not_allowed", "invalid_request_error").await;
    }
    let unknown =
        browser().get(app.url(&format!("/v1/auth/oauth/nope/authorize?{}", app_query()))).send().await.unwrap();
    assert_error(unknown, 404, "provider_not_found", "invalid_request_error").await;
    assert_eq!(provider.token_requests(), 0);
}

#[actix_web::test]
async fn an_app_without_cookies_collects_the_sign_in_with_a_one_time_code_and_its_verifier() {
    use base64::Engine as _;
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let app = app_with(&provider, None).await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref());
    let done = through(&app, &browser(), "mock", &format!("{}&code_challenge={challenge}", app_query())).await;
    let back = url::Url::parse(&location(&done)).unwrap();
    let code = back.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap();
    let wrong = app.post("/v1/auth/oauth/token", &json!({"code": code, "code_verifier": "not-the-verifier"})).await;
    assert_error(wrong, 400, "oauth_code_invalid", "invalid_request_error").await;
    // The code was spent by the wrong attempt: start again.
    let done = through(&app, &browser(), "mock", &format!("{}&code_challenge={challenge}", app_query())).await;
    let back = url::Url::parse(&location(&done)).unwrap();
    let code = back.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap();
    let tokens: Value =
        app.post("/v1/auth/oauth/token", &json!({"code": code, "code_verifier": verifier})).await.json().await.unwrap();
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(
        (access["auth_method"].as_str(), access["email"].as_str()),
        (Some("social_oauth"), Some("alice@example.com"))
    );
    let again = app.post("/v1/auth/oauth/token", &json!({"code": code, "code_verifier": verifier})).await;
    assert_error(again, 400, "oauth_code_invalid", "invalid_request_error").await;
}

#[actix_web::test]
async fn a_verified_identity_takes_over_an_account_whose_address_was_never_verified() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let app = app_with(&provider, None).await;
    // Someone registered Alice's address first and set a password, a passkey and a second factor of theirs
    // (pre-account hijack): each would let them back in after Alice signs in.
    let squatter = app.register(&json!({"email": "alice@example.com", "password": PASSWORD})).await;
    let squatter: Value = squatter.json().await.unwrap();
    let squatter_user = crate::helpers::User { email: "alice@example.com".into(), tokens: squatter.clone() };
    let mut authenticator = crate::authenticator::Authenticator::new(PUBLIC_BASE_URL);
    crate::passkeys::register(&app, &squatter_user, &mut authenticator).await;
    crate::mfa::raised_to_aal2(&app, &squatter).await;
    let browser = browser();
    through(&app, &browser, "mock", &app_query()).await;
    let session = session_of(&app, &browser).await;
    assert_eq!(session["user"]["id"], squatter["user"]["id"], "the same account");
    assert_eq!(session["user"]["email_verified"], true);
    // The squatter's password and session are gone.
    let login = app.login(&json!({"email": "alice@example.com", "password": PASSWORD})).await;
    assert_error(login, 401, "invalid_credentials", "authentication_error").await;
    let old = app.session(squatter["access_token"].as_str().unwrap()).await;
    assert_error(old, 401, "token_revoked", "authentication_error").await;
    // So are their passkey and their second factor: Alice's sign-in asks for no factor she never set.
    let passkey = crate::passkeys::sign_in(&app, &mut authenticator).await;
    assert_error(passkey, 401, "passkey_invalid", "authentication_error").await;
    let again = self::browser();
    let done = through(&app, &again, "mock", &app_query()).await;
    assert_eq!(location(&done), APP, "signed in, no second factor due: {done:?}");
    let db = app.db().await;
    for table in ["passkeys", "totp_factors", "recovery_codes"] {
        assert_eq!(db.count(table).await, 0, "{table}");
    }
}

#[actix_web::test]
async fn every_bad_id_token_and_an_unverified_address_come_back_as_errors_and_store_nothing() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let app = app_with(&provider, None).await;
    for misbehaviour in [
        Misbehaviour::WrongNonce,
        Misbehaviour::OtherKey,
        Misbehaviour::WrongAudience,
        Misbehaviour::Expired,
        Misbehaviour::AlgNone,
        Misbehaviour::ExtraAudienceWithoutAzp,
        Misbehaviour::WrongIssuer,
    ] {
        provider.misbehave(misbehaviour);
        let done = through(&app, &browser(), "mock", &app_query()).await;
        assert_eq!(location(&done), format!("{APP}?error=oauth_provider_error"), "{misbehaviour:?}");
    }
    provider.sign_in_as(User { email_verified: false, ..alice() });
    let done = through(&app, &browser(), "mock", &app_query()).await;
    assert_eq!(location(&done), format!("{APP}?error=oauth_email_unverified"));
    let nobody = app.login(&json!({"email": "alice@example.com", "password": PASSWORD})).await;
    assert_error(nobody, 401, "invalid_credentials", "authentication_error").await;
    let register = app.register(&json!({"email": "alice@example.com", "password": PASSWORD})).await;
    assert_eq!(register.status(), StatusCode::CREATED, "no account was created for the address");
}

#[actix_web::test]
async fn a_provider_that_is_down_is_unavailable_and_nothing_is_stored() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let app = app_with(&provider, None).await;
    provider.set_down(true);
    let start = browser().get(app.url(&format!("/v1/auth/oauth/mock/authorize?{}", app_query()))).send().await.unwrap();
    assert_eq!(location(&start), format!("{APP}?error=oauth_provider_unavailable"));
    // Down between the redirect and the callback.
    provider.set_down(false);
    let browser = browser();
    let start = browser.get(app.url(&format!("/v1/auth/oauth/mock/authorize?{}", app_query()))).send().await.unwrap();
    let back = browser.get(location(&start)).send().await.unwrap();
    let callback = on_server(&app, &location(&back));
    provider.set_down(true);
    let done = browser.get(callback).send().await.unwrap();
    assert_eq!(location(&done), format!("{APP}?error=oauth_provider_unavailable"));
    let register = app.register(&json!({"email": "alice@example.com", "password": PASSWORD})).await;
    assert_eq!(register.status(), StatusCode::CREATED, "no account was created");
}

#[actix_web::test]
async fn github_signs_in_with_its_verified_primary_address() {
    let provider = MockProvider::start().await;
    let github = MockGitHub::start().await;
    github.sign_in_as(GitHubUser {
        id: 4242,
        login: "octo".into(),
        name: None,
        emails: vec![("octo@old.example".into(), false, true), ("Octo@Example.com".into(), true, true)],
        public_email: None,
    });
    let app = app_with(&provider, Some(&github)).await;
    let browser = browser();
    let done = through(&app, &browser, "github", &app_query()).await;
    assert_eq!(location(&done), APP);
    let session = session_of(&app, &browser).await;
    assert_eq!(session["user"]["email"], "octo@example.com");
    assert_eq!(session["user"]["display_name"], "octo");
    // An unverified primary address creates nothing.
    github.sign_in_as(GitHubUser {
        id: 7,
        login: "ghost".into(),
        name: None,
        emails: vec![("ghost@example.com".into(), true, false)],
        public_email: None,
    });
    let done = through(&app, &self::browser(), "github", &app_query()).await;
    assert_eq!(location(&done), format!("{APP}?error=oauth_email_unverified"));
}
