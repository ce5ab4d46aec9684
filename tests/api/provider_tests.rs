//! The mock identity providers behave like real ones: each flow is run over HTTP as a relying party
//! runs it, and every token is checked with jsonwebtoken against the published JWKS.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use url::Url;

use crate::provider::{GitHubUser, Misbehaviour, MockGitHub, MockProvider, User};

/// RFC 7636 Appendix B: a code verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Another verifier of valid form.
const WRONG_VERIFIER: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const REDIRECT: &str = "http://localhost:3000/v1/auth/callback?provider=mock";

/// A client that does not follow redirects (the test reads `Location` itself), sending a User-Agent as
/// GitHub wants.
fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).user_agent("identsphere-tests").build().unwrap()
}

fn alice() -> User {
    User {
        sub: "alice-123".into(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        name: Some("Alice".into()),
    }
}

/// The response of an authorization endpoint: a 302 back to `REDIRECT`, whose query is returned.
async fn redirected(response: Response) -> HashMap<String, String> {
    assert_eq!(response.status(), StatusCode::FOUND, "{}", response.text().await.unwrap());
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/v1/auth/callback");
    let params: HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(params["provider"], "mock", "the redirect URI keeps its own query");
    params
}

/// An OpenID Connect authentication request (PKCE with the RFC 7636 example), with `changes` applied
/// to its parameters (an empty value removes one).
async fn authorize(provider: &MockProvider, client: &Client, changes: &[(&str, &str)]) -> Response {
    let mut params: HashMap<&str, &str> = HashMap::from([
        ("response_type", "code"),
        ("client_id", provider.client_id()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid email profile"),
        ("state", "state-1"),
        ("nonce", "nonce-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]);
    params.extend(changes.iter().copied());
    params.retain(|_, value| !value.is_empty());
    client.get(format!("{}/authorize", provider.issuer())).query(&params).send().await.unwrap()
}

/// A fresh authorization code.
async fn code(provider: &MockProvider, client: &Client) -> String {
    let params = redirected(authorize(provider, client, &[]).await).await;
    assert_eq!(params["state"], "state-1");
    params["code"].clone()
}

/// A token request with this form, the client authenticated with HTTP Basic.
async fn token(provider: &MockProvider, client: &Client, form: &[(&str, &str)], secret: &str) -> Response {
    let request = client.post(format!("{}/token", provider.issuer()));
    request.basic_auth(provider.client_id(), Some(secret)).form(form).send().await.unwrap()
}

/// The token request for `code`.
async fn exchange(provider: &MockProvider, client: &Client, code: &str, verifier: &str, secret: &str) -> Response {
    let form =
        [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", REDIRECT), ("code_verifier", verifier)];
    token(provider, client, &form, secret).await
}

/// An RFC 6749 §5.2 error response.
async fn assert_refused(response: Response, status: StatusCode, error: &str) {
    assert_eq!(response.status(), status);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], error);
}

/// A whole sign-in: the ID token.
async fn id_token(provider: &MockProvider, client: &Client) -> String {
    let code = code(provider, client).await;
    let response = exchange(provider, client, &code, VERIFIER, provider.client_secret()).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["id_token"].as_str().unwrap().to_owned()
}

/// Verifies an ID token as a relying party must (OpenID Connect Core §3.1.3.7): RS256 only, with the
/// JWKS key its `kid` names, and `iss`, `aud`, `exp`.
async fn verify(provider: &MockProvider, client: &Client, token: &str) -> jsonwebtoken::errors::Result<Value> {
    let jwks: JwkSet = client.get(format!("{}/jwks", provider.issuer())).send().await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(token)?;
    let key = DecodingKey::from_jwk(jwks.find(&header.kid.unwrap()).unwrap())?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[provider.issuer()]);
    validation.set_audience(&[provider.client_id()]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    Ok(jsonwebtoken::decode::<Value>(token, &key, &validation)?.claims)
}

/// A part of a JWT, unverified.
fn part(token: &str, index: usize) -> Value {
    serde_json::from_slice(&B64URL.decode(token.split('.').nth(index).unwrap()).unwrap()).unwrap()
}

#[actix_web::test]
async fn discovery_then_code_flow_with_pkce_gives_an_id_token_that_verifies_against_the_jwks() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let client = client();
    let issuer = provider.issuer();
    let config: Value =
        client.get(format!("{issuer}/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["issuer"], issuer);
    assert!(!issuer.ends_with('/'));
    assert_eq!(config["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(config["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(config["jwks_uri"], format!("{issuer}/jwks"));
    assert_eq!(config["userinfo_endpoint"], format!("{issuer}/userinfo"));
    assert_eq!(config["response_types_supported"], json!(["code"]));
    assert_eq!(config["subject_types_supported"], json!(["public"]));
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(config["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(config["token_endpoint_auth_methods_supported"], json!(["client_secret_basic", "client_secret_post"]));

    let jwks: Value = client.get(format!("{issuer}/jwks")).send().await.unwrap().json().await.unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!((&jwk["kty"], &jwk["alg"], &jwk["use"]), (&json!("RSA"), &json!("RS256"), &json!("sig")));
    assert!(jwk["n"].is_string() && jwk["e"] == "AQAB" && jwk["kid"].is_string(), "{jwk}");

    let code = code(&provider, &client).await;
    let response = exchange(&provider, &client, &code, VERIFIER, provider.client_secret()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    let signed = tokens["id_token"].as_str().unwrap();
    assert_eq!(part(signed, 0)["kid"], jwk["kid"]);
    let claims = verify(&provider, &client, signed).await.unwrap();
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["sub"], "alice-123");
    assert_eq!(
        (&claims["email"], &claims["email_verified"], &claims["name"]),
        (&json!("alice@example.com"), &json!(true), &json!("Alice"))
    );
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 300);
    assert!(claims.get("azp").is_none());

    let userinfo = |token: String| client.get(format!("{issuer}/userinfo")).bearer_auth(token).send();
    let response = userinfo(tokens["access_token"].as_str().unwrap().to_owned()).await.unwrap();
    let info: Value = response.json().await.unwrap();
    assert_eq!(
        info,
        json!({"sub": "alice-123", "email": "alice@example.com", "email_verified": true, "name": "Alice"})
    );
    let response = userinfo("not-a-token".to_owned()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);

    // An unverified address is the user's business, not a misbehaviour; absent claims are left out.
    provider.sign_in_as(User {
        sub: "bob-7".into(),
        email: Some("bob@example.com".into()),
        email_verified: false,
        name: None,
    });
    let claims = verify(&provider, &client, &id_token(&provider, &client).await).await.unwrap();
    assert_eq!((&claims["sub"], &claims["email_verified"]), (&json!("bob-7"), &json!(false)));
    assert!(claims.get("name").is_none());
}

#[actix_web::test]
async fn the_token_endpoint_refuses_a_wrong_secret_a_wrong_verifier_and_a_reused_code() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let client = client();
    let secret = provider.client_secret();

    let first = code(&provider, &client).await;
    let response = exchange(&provider, &client, &first, VERIFIER, "wrong-secret").await;
    assert_eq!(response.headers()["www-authenticate"], r#"Basic realm="token""#);
    assert_refused(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // A failed client authentication does not spend the code; a use does.
    assert_eq!(exchange(&provider, &client, &first, VERIFIER, secret).await.status(), StatusCode::OK);
    let reused = exchange(&provider, &client, &first, VERIFIER, secret).await;
    assert_refused(reused, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // A wrong verifier spends it too: no second guess.
    let second = code(&provider, &client).await;
    let wrong = exchange(&provider, &client, &second, WRONG_VERIFIER, secret).await;
    assert_refused(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let right_too_late = exchange(&provider, &client, &second, VERIFIER, secret).await;
    assert_refused(right_too_late, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // client_secret_post.
    let third = code(&provider, &client).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &third),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", provider.client_id()),
        ("client_secret", secret),
    ];
    let response = client.post(format!("{}/token", provider.issuer())).form(&form).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Without the verifier, for another redirect URI, with another grant type.
    let fourth = code(&provider, &client).await;
    let form = [("grant_type", "authorization_code"), ("code", &fourth), ("redirect_uri", REDIRECT)];
    assert_refused(token(&provider, &client, &form, secret).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let fifth = code(&provider, &client).await;
    let other_uri = "http://localhost:3000/v1/auth/callback?provider=other";
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &fifth),
        ("redirect_uri", other_uri),
        ("code_verifier", VERIFIER),
    ];
    assert_refused(token(&provider, &client, &form, secret).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let form = [("grant_type", "password"), ("username", "alice"), ("password", "x")];
    assert_refused(token(&provider, &client, &form, secret).await, StatusCode::BAD_REQUEST, "unsupported_grant_type")
        .await;

    assert_eq!(provider.token_requests(), 9);
}

#[actix_web::test]
async fn the_authorization_endpoint_refuses_bad_requests_as_rfc_6749_says() {
    let provider = MockProvider::start().await;
    let client = client();
    let error = async |changes: &[(&str, &str)]| {
        let params = redirected(authorize(&provider, &client, changes).await).await;
        assert_eq!(params["state"], "state-1", "{params:?}");
        assert!(!params.contains_key("code"));
        params["error"].clone()
    };

    // Nobody signed in yet: the person declined.
    assert_eq!(error(&[]).await, "access_denied");
    provider.sign_in_as(alice());
    assert_eq!(error(&[("response_type", "token")]).await, "unsupported_response_type");
    assert_eq!(error(&[("scope", "email profile")]).await, "invalid_scope");
    for pkce in [
        &[("code_challenge_method", "plain")][..],
        &[("code_challenge_method", "")],
        &[("code_challenge", ""), ("code_challenge_method", "")],
    ] {
        assert_eq!(error(pkce).await, "invalid_request", "{pkce:?}");
    }

    // An unknown client or a redirect URI that cannot be the client's: no redirect, a page for the person.
    for changes in [
        [("client_id", "someone-else")],
        [("redirect_uri", "")],
        [("redirect_uri", "/relative")],
        [("redirect_uri", "http://localhost:3000/cb#fragment")],
    ] {
        let response = authorize(&provider, &client, &changes).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{changes:?}");
        assert!(response.headers().get("location").is_none());
    }
}

#[actix_web::test]
async fn each_misbehaviour_spoils_the_next_id_token_in_its_one_way() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let client = client();
    let kind = |result: jsonwebtoken::errors::Result<Value>| result.unwrap_err().into_kind();
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
        let token = id_token(&provider, &client).await;
        let claims = part(&token, 1);
        assert_eq!(claims["sub"], "alice-123", "{misbehaviour:?}");
        if misbehaviour != Misbehaviour::WrongNonce {
            assert_eq!(claims["nonce"], "nonce-1", "{misbehaviour:?}");
        }
        let verified = verify(&provider, &client, &token).await;
        match misbehaviour {
            // Verifies: only the relying party's own nonce check catches it.
            Misbehaviour::WrongNonce => assert_ne!(verified.unwrap()["nonce"], "nonce-1"),
            Misbehaviour::OtherKey => {
                assert!(matches!(kind(verified), ErrorKind::InvalidSignature));
                // The forger uses the published kid, so key lookup alone does not catch it.
                let jwks: Value =
                    client.get(format!("{}/jwks", provider.issuer())).send().await.unwrap().json().await.unwrap();
                assert_eq!(part(&token, 0)["kid"], jwks["keys"][0]["kid"]);
            }
            Misbehaviour::WrongAudience => assert!(matches!(kind(verified), ErrorKind::InvalidAudience)),
            Misbehaviour::Expired => assert!(matches!(kind(verified), ErrorKind::ExpiredSignature)),
            Misbehaviour::AlgNone => {
                assert_eq!(part(&token, 0)["alg"], "none");
                assert!(token.ends_with('.'), "no signature");
                assert!(verified.is_err());
            }
            // jsonwebtoken accepts any audience among several: the azp check is the relying party's.
            Misbehaviour::ExtraAudienceWithoutAzp => {
                let claims = verified.unwrap();
                assert_eq!(claims["aud"], json!([provider.client_id(), "other"]));
                assert!(claims.get("azp").is_none());
            }
            Misbehaviour::WrongIssuer => assert!(matches!(kind(verified), ErrorKind::InvalidIssuer)),
        }
        // Only that one token.
        let next = verify(&provider, &client, &id_token(&provider, &client).await).await.unwrap();
        assert_eq!(next["nonce"], "nonce-1", "after {misbehaviour:?}");
    }
}

#[actix_web::test]
async fn a_provider_that_is_down_answers_503_everywhere_until_it_is_back() {
    let provider = MockProvider::start().await;
    provider.sign_in_as(alice());
    let client = client();
    let code = code(&provider, &client).await;
    provider.set_down(true);
    for path in ["/.well-known/openid-configuration", "/jwks", "/authorize", "/userinfo"] {
        let response = client.get(format!("{}{path}", provider.issuer())).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
    }
    let response = exchange(&provider, &client, &code, VERIFIER, provider.client_secret()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(provider.token_requests(), 0);

    // The code survived the outage.
    provider.set_down(false);
    let response = exchange(&provider, &client, &code, VERIFIER, provider.client_secret()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(provider.token_requests(), 1);
}

fn octo() -> GitHubUser {
    GitHubUser {
        id: 12345,
        login: "octo".into(),
        name: Some("Octo Cat".into()),
        emails: vec![
            ("octo@example.com".into(), true, true),
            ("octo@old.example".into(), false, true),
            ("unconfirmed@example.com".into(), false, false),
        ],
        public_email: None,
    }
}

/// GitHub's authorization, with `extra` parameters: the code.
async fn github_code(github: &MockGitHub, client: &Client, scope: &str, extra: &[(&str, &str)]) -> String {
    let response = client
        .get(format!("{}/login/oauth/authorize", github.base_url()))
        .query(&[
            ("client_id", github.client_id()),
            ("redirect_uri", REDIRECT),
            ("state", "gh-state"),
            ("scope", scope),
        ])
        .query(extra)
        .send()
        .await
        .unwrap();
    let params = redirected(response).await;
    assert_eq!(params["state"], "gh-state");
    params["code"].clone()
}

/// GitHub's token request (client credentials in the form, and `extra`), asking for JSON or not.
async fn github_exchange(
    github: &MockGitHub,
    client: &Client,
    code: &str,
    extra: &[(&str, &str)],
    json: bool,
) -> Response {
    let mut form = vec![
        ("client_id", github.client_id()),
        ("client_secret", github.client_secret()),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    form.extend_from_slice(extra);
    let request = client.post(format!("{}/login/oauth/access_token", github.base_url())).form(&form);
    let request = if json { request.header("accept", "application/json") } else { request };
    request.send().await.unwrap()
}

#[actix_web::test]
async fn the_github_flow_gives_the_user_and_the_verified_emails() {
    let github = MockGitHub::start().await;
    github.sign_in_as(octo());
    let client = client();
    let api =
        |path: &str, token: &str| client.get(format!("{}/api/v3{path}", github.base_url())).bearer_auth(token).send();

    let code = github_code(
        &github,
        &client,
        "read:user user:email",
        &[("code_challenge", CHALLENGE), ("code_challenge_method", "S256")],
    )
    .await;
    let response = github_exchange(&github, &client, &code, &[("code_verifier", VERIFIER)], true).await;
    let tokens: Value = response.json().await.unwrap();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["scope"], "read:user,user:email");
    let token = tokens["access_token"].as_str().unwrap();
    assert!(token.starts_with("gho_"));

    let user: Value = api("/user", token).await.unwrap().json().await.unwrap();
    assert_eq!(user, json!({"id": 12345, "login": "octo", "type": "User", "name": "Octo Cat", "email": null}));
    let emails: Value = api("/user/emails", token).await.unwrap().json().await.unwrap();
    assert_eq!(
        emails,
        json!([
            {"email": "octo@example.com", "primary": true, "verified": true, "visibility": "private"},
            {"email": "octo@old.example", "primary": false, "verified": true, "visibility": null},
            {"email": "unconfirmed@example.com", "primary": false, "verified": false, "visibility": null},
        ])
    );

    // Without PKCE too (it is optional at GitHub); a public email shows in /user. The default answer is
    // form-encoded.
    github.sign_in_as(GitHubUser { public_email: Some("octo@example.com".into()), ..octo() });
    let code = github_code(&github, &client, "read:user", &[]).await;
    let response = github_exchange(&github, &client, &code, &[], false).await;
    assert_eq!(response.headers()["content-type"], "application/x-www-form-urlencoded");
    let form: HashMap<String, String> =
        url::form_urlencoded::parse(response.text().await.unwrap().as_bytes()).into_owned().collect();
    assert_eq!((form["token_type"].as_str(), form["scope"].as_str()), ("bearer", "read:user"));
    let token = &form["access_token"];
    let user: Value = api("/user", token).await.unwrap().json().await.unwrap();
    assert_eq!(user["email"], "octo@example.com");
    // Without the user:email scope the address list is hidden.
    assert_eq!(api("/user/emails", token).await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(github.token_requests(), 2);
}

#[actix_web::test]
async fn github_refuses_as_github_does() {
    let github = MockGitHub::start().await;
    github.sign_in_as(octo());
    let client = client();
    let error = async |response: Response| {
        // GitHub says it with a 200.
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["error"].clone()
    };
    let pkce = [("code_challenge", CHALLENGE), ("code_challenge_method", "S256")];

    let code = github_code(&github, &client, "user:email", &pkce).await;
    let response = client
        .post(format!("{}/login/oauth/access_token", github.base_url()))
        .header("accept", "application/json")
        .form(&[
            ("client_id", github.client_id()),
            ("client_secret", "wrong"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(error(response).await, "incorrect_client_credentials");
    let wrong = github_exchange(&github, &client, &code, &[("code_verifier", WRONG_VERIFIER)], true).await;
    assert_eq!(error(wrong).await, "bad_verification_code");
    let reused = github_exchange(&github, &client, &code, &[("code_verifier", VERIFIER)], true).await;
    assert_eq!(error(reused).await, "bad_verification_code");
    // A code got with PKCE needs its verifier.
    let code = github_code(&github, &client, "user:email", &pkce).await;
    assert_eq!(error(github_exchange(&github, &client, &code, &[], true).await).await, "bad_verification_code");
    // And a verifier needs a challenge: no downgrade.
    let code = github_code(&github, &client, "user:email", &[]).await;
    let downgrade = github_exchange(&github, &client, &code, &[("code_verifier", VERIFIER)], true).await;
    assert_eq!(error(downgrade).await, "bad_verification_code");

    // The REST API wants a User-Agent and a good token.
    let code = github_code(&github, &client, "user:email", &[]).await;
    let tokens: Value = github_exchange(&github, &client, &code, &[], true).await.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let url = format!("{}/api/v3/user", github.base_url());
    let no_agent = Client::new().get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(no_agent.status(), StatusCode::FORBIDDEN);
    let bad_token = client.get(&url).bearer_auth("gho_nope").send().await.unwrap();
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bad_token.json::<Value>().await.unwrap()["message"], "Bad credentials");

    github.set_down(true);
    assert_eq!(client.get(&url).bearer_auth(token).send().await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE);
    github.set_down(false);
    assert_eq!(client.get(&url).bearer_auth(token).send().await.unwrap().status(), StatusCode::OK);
}
