//! Tokens verified by independent implementations, and forgeries refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{PUBLIC_BASE_URL, TestApp, assert_error, spawn_app};

const CLAIMS: [&str; 12] =
    ["sub", "org", "iss", "exp", "iat", "typ", "email", "jti", "sid", "aal", "auth_time", "auth_method"];

fn part(token: &str, index: usize) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(index).unwrap()).unwrap()).unwrap()
}

#[actix_web::test]
async fn access_tokens_verify_with_the_jsonwebtoken_crate_through_jwks() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let jwks: JwkSet = app.get("/.well-known/jwks.json").await.json().await.unwrap();

    let header = jsonwebtoken::decode_header(user.access()).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("the kid is published");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[PUBLIC_BASE_URL]);
    let claims =
        jsonwebtoken::decode::<Value>(user.access(), &DecodingKey::from_jwk(jwk).unwrap(), &validation).unwrap().claims;

    let mut names: Vec<_> = claims.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = CLAIMS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(claims["typ"], "access");
    assert_eq!(claims["sub"], user.tokens["user"]["id"]);
    assert_eq!(claims["org"], user.tokens["session"]["organization_id"]);
    assert_eq!(claims["sid"], user.tokens["session"]["id"]);
    assert_eq!(claims["email"], user.email);
    assert_eq!(claims["aal"], "aal1");
    assert_eq!(claims["auth_method"], "password");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 900);

    let refresh = part(user.refresh(), 1);
    assert_eq!(refresh["typ"], "refresh");
    assert_eq!(refresh["sid"], claims["sid"]);
    let refresh_header = jsonwebtoken::decode_header(user.refresh()).unwrap();
    assert!(jwks.find(refresh_header.kid.as_deref().unwrap()).is_none(), "refresh tokens never verify against JWKS");
}

#[actix_web::test]
async fn access_tokens_verify_with_the_integration_page_python_snippet() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let python = python_with_jose();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/verify_token.py");
    let run = |token: &str| {
        Command::new(&python)
            .args([script, &app.address, token, PUBLIC_BASE_URL])
            .output()
            .unwrap_or_else(|e| panic!("running {python}: {e} (see README: ./scripts/test.sh prepares it)"))
    };

    let output = run(user.access());
    assert!(output.status.success(), "python-jose refused our token: {}", String::from_utf8_lossy(&output.stderr));
    let claims: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(claims["sub"], user.tokens["user"]["id"]);
    assert_eq!(claims["sid"], user.tokens["session"]["id"]);

    let forged = unsigned(user.access());
    let output = run(&forged);
    assert!(!output.status.success(), "python-jose must refuse an unsigned token");
}

/// A Python with python-jose and httpx, as a resource server in Python would, so that a plain `cargo test` makes
/// the check as `scripts/test.sh` does: `IDENTSPHERE_TEST_PYTHON` (the script sets it), else the script's
/// virtualenv in `$IDENTSPHERE_CACHE_DIR` (default `~/.cache/identsphere`), else `python3` if it has both,
/// else that virtualenv, prepared here as the script prepares it (`python3 -m venv`, then `pip install`).
fn python_with_jose() -> String {
    if let Ok(python) = std::env::var("IDENTSPHERE_TEST_PYTHON") {
        return python;
    }
    let ready = |python: &Path| Command::new(python).args(["-c", "import jose, httpx"]).output();
    let ready = |python: &Path| ready(python).is_ok_and(|o| o.status.success());
    let cache = match std::env::var_os("IDENTSPHERE_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").expect("HOME, for ~/.cache/identsphere")).join(".cache/identsphere")
        }
    };
    let venv = cache.join("venv");
    let python = venv.join("bin/python");
    if ready(&python) {
        return python.display().to_string();
    }
    if ready(Path::new("python3")) {
        return "python3".to_owned();
    }
    let requirements = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/requirements.txt");
    let quiet = ["--quiet", "--disable-pip-version-check"];
    let needs =
        "the cross-language check needs python3 with venv and python-jose from PyPI (or IDENTSPHERE_TEST_PYTHON)";
    for command in [
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        Command::new(venv.join("bin/pip")).arg("install").args(quiet).args(["-r", requirements]),
    ] {
        let output = command.output().unwrap_or_else(|e| panic!("{needs}: {command:?}: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{needs}: {command:?} failed: {stderr}");
    }
    assert!(ready(&python), "{} still lacks python-jose or httpx", python.display());
    python.display().to_string()
}

/// The token with `alg: none` and no signature.
fn unsigned(token: &str) -> String {
    let mut header = part(token, 0);
    header["alg"] = json!("none");
    format!("{}.{}.", B64.encode(header.to_string()), token.split('.').nth(1).unwrap())
}

fn sign_with(pair: &RsaKeyPair, header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message.as_bytes(), &mut signature).unwrap();
    format!("{message}.{}", B64.encode(signature))
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    format!("{message}.{}", B64.encode(aws_lc_rs::hmac::sign(&key, message.as_bytes())))
}

async fn assert_refused(app: &TestApp, token: &str, code: &str, case: &str) {
    let response = app.session(token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{case}: {body}");
}

#[actix_web::test]
async fn forged_and_misused_tokens_are_refused() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let header = part(user.access(), 0);
    let claims = part(user.access(), 1);
    let keys = app.server_keys().await;
    let ours = &keys.signing[0].pair;
    // The control: our key signing the same claims passes, or every refusal below proves nothing.
    assert_eq!(app.session(&sign_with(ours, &header, &claims)).await.status(), StatusCode::OK);

    let stranger = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    assert_refused(&app, &sign_with(&stranger, &header, &claims), "token_invalid", "another key under our kid").await;
    assert_refused(&app, &unsigned(user.access()), "token_invalid", "alg none").await;

    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    let n = B64.decode(jwks["keys"][0]["n"].as_str().unwrap()).unwrap();
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    assert_refused(&app, &hs256(&n, &hs_header, &claims), "token_invalid", "HS256 keyed with our public key").await;
    assert_refused(
        &app,
        &hs256(jwks.to_string().as_bytes(), &hs_header, &claims),
        "token_invalid",
        "HS256 keyed with the JWKS",
    )
    .await;

    let mut parts: Vec<String> = user.access().split('.').map(str::to_owned).collect();
    let mut tampered = claims.clone();
    tampered["sub"] = json!(uuid::Uuid::new_v4());
    parts[1] = B64.encode(tampered.to_string());
    assert_refused(&app, &parts.join("."), "token_invalid", "tampered payload").await;

    let mut wrong_iss = claims.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    assert_refused(&app, &sign_with(ours, &header, &wrong_iss), "token_invalid", "wrong iss").await;
    let mut mfa = claims.clone();
    mfa["typ"] = json!("mfa");
    assert_refused(&app, &sign_with(ours, &header, &mfa), "token_invalid", "an mfa token as a credential").await;
    let mut no_typ = header.clone();
    no_typ.as_object_mut().unwrap().remove("typ");
    assert_refused(&app, &sign_with(ours, &no_typ, &claims), "token_invalid", "header without typ").await;
    let mut other_kid = header.clone();
    other_kid["kid"] = json!("not-a-kid-of-ours");
    assert_refused(&app, &sign_with(ours, &other_kid, &claims), "token_invalid", "unknown kid").await;
    let mut no_sid = claims.clone();
    no_sid.as_object_mut().unwrap().remove("sid");
    assert_refused(&app, &sign_with(ours, &header, &no_sid), "token_invalid", "missing sid").await;

    assert_refused(&app, user.refresh(), "token_invalid", "a refresh token as an access token").await;
    assert_refused(&app, "not.a.jwt", "token_invalid", "garbage").await;
    assert_refused(&app, &"A".repeat(10_000), "token_invalid", "oversized").await;

    let as_refresh = app.refresh(user.access()).await;
    assert_error(as_refresh, 401, "token_invalid", "authentication_error").await;
}

#[actix_web::test]
async fn an_expired_access_token_is_token_expired_but_a_forged_expired_one_is_invalid() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    // The test clock is real time plus an offset and `exp` is floored to the second, so the check inside the
    // lifetime keeps a margin for the real time the requests take; 900 s in all is past `exp` whatever that was.
    app.clock.advance(Duration::seconds(890));
    assert_eq!(app.session(user.access()).await.status(), StatusCode::OK, "still inside its 15 minutes");
    app.clock.advance(Duration::seconds(10));
    assert_refused(&app, user.access(), "token_expired", "exp reached").await;
    let stranger = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let forged = sign_with(&stranger, &part(user.access(), 0), &part(user.access(), 1));
    assert_refused(&app, &forged, "token_invalid", "expired and forged: the signature is checked first").await;
}

#[actix_web::test]
async fn resource_routes_need_a_token() {
    let app = spawn_app().await;
    let response = app.get("/v1/auth/session").await;
    assert_error(response, 401, "token_missing", "authentication_error").await;
    let response =
        app.client.get(app.url("/v1/auth/session")).header("Authorization", "Basic YTpi").send().await.unwrap();
    assert_error(response, 401, "token_invalid", "authentication_error").await;
}

#[actix_web::test]
async fn the_access_cookie_authenticates_like_a_bearer_token() {
    let app = spawn_app().await;
    let user = app.signed_up_user().await;
    let response = app
        .client
        .get(app.url("/v1/auth/session"))
        .header("Cookie", format!("identsphere_at={}", user.access()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], user.email);
}
