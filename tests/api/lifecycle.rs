//! The account lifecycle over a real SMTP server (mailin-embedded in the test): email verification,
//! password reset, password change, and what `forgot` gives away (nothing).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use mailin_embedded::{Handler, Response, Server, response};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::Duration;

use crate::helpers::{PASSWORD, TestApp, assert_error, quoted_printable_decoded, spawn_app_with, token_in};

/// A received message: its recipients and its raw text.
type Received = (Vec<String>, String);

/// Every message the SMTP server received.
#[derive(Clone, Default)]
struct Mailbox {
    received: Arc<Mutex<Vec<Received>>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Mailbox {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let message = String::from_utf8_lossy(&self.data).into_owned();
        self.received.lock().unwrap().push((std::mem::take(&mut self.to), message));
        response::OK
    }
}

impl Mailbox {
    /// An SMTP server on a free port, serving until the test process ends; and its `smtp://` URL.
    fn start() -> (Self, String) {
        let mailbox = Self::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("smtp://{}", listener.local_addr().unwrap());
        let mut server = Server::new(mailbox.clone());
        // lettre keeps pooled connections open, each holding one of the server's threads.
        server.with_name("smtp.test").with_num_threads(32).with_tcp_listener(listener);
        std::thread::spawn(move || drop(server.serve().map_err(|e| e.to_string())));
        (mailbox, url)
    }

    fn count_to(&self, address: &str) -> usize {
        self.received.lock().unwrap().iter().filter(|(to, _)| to.iter().any(|t| t == address)).count()
    }

    /// The token of the `nth` link mailed to `address` for `page`, waiting up to 10 s for it.
    async fn link_token(&self, address: &str, page: &str, nth: usize) -> String {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let tokens: Vec<String> = self
                .received
                .lock()
                .unwrap()
                .iter()
                .filter(|(to, _)| to.iter().any(|t| t == address))
                .filter_map(|(_, message)| token_in(&quoted_printable_decoded(message), page))
                .collect();
            if let Some(token) = tokens.get(nth) {
                return token.clone();
            }
            assert!(Instant::now() < deadline, "no {page} mail #{nth} for {address}");
            actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

async fn app_with_mail(extra: &[(&str, &str)]) -> (TestApp, Mailbox) {
    let (mailbox, url) = Mailbox::start();
    let mut vars = vec![("IDENTSPHERE_SMTP_URL", url.as_str())];
    vars.extend_from_slice(extra);
    (spawn_app_with(&vars).await, mailbox)
}

async fn post_bearer(app: &TestApp, path: &str, access: &str, body: &Value) -> reqwest::Response {
    app.client.post(app.url(path)).bearer_auth(access).json(body).send().await.unwrap()
}

#[actix_web::test]
async fn the_verification_link_mailed_at_registration_verifies_the_email_once() {
    let (app, mailbox) = app_with_mail(&[]).await;
    let user = app.signed_up_user().await;
    assert_eq!(user.tokens["user"]["email_verified"], false);
    let token = mailbox.link_token(&user.email, "verify-email", 0).await;
    assert_eq!(token.len(), 43, "{token}");

    let response = app.post("/v1/auth/email/verify", &json!({"token": token})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let session: Value = app.session(user.access()).await.json().await.unwrap();
    assert_eq!(session["user"]["email_verified"], true);

    let again = app.post("/v1/auth/email/verify", &json!({"token": token})).await;
    assert_error(again, 400, "link_invalid", "invalid_request_error").await;
    let forged = app.post("/v1/auth/email/verify", &json!({"token": "A".repeat(43)})).await;
    assert_error(forged, 400, "link_invalid", "invalid_request_error").await;
    // Verified: a resend sends nothing.
    let resend = post_bearer(&app, "/v1/auth/email/verify/resend", user.access(), &json!({})).await;
    assert_eq!(resend.status(), StatusCode::ACCEPTED);
    actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(mailbox.count_to(&user.email), 1);
}

#[actix_web::test]
async fn a_resent_verification_link_works_and_an_expired_one_does_not() {
    let (app, mailbox) = app_with_mail(&[]).await;
    let user = app.signed_up_user().await;
    let first = mailbox.link_token(&user.email, "verify-email", 0).await;
    let resend = post_bearer(&app, "/v1/auth/email/verify/resend", user.access(), &json!({})).await;
    assert_eq!(resend.status(), StatusCode::ACCEPTED);
    let second = mailbox.link_token(&user.email, "verify-email", 1).await;
    assert_ne!(first, second);
    app.clock.advance(Duration::hours(24));
    let expired = app.post("/v1/auth/email/verify", &json!({"token": first})).await;
    assert_error(expired, 400, "link_invalid", "invalid_request_error").await;
    let tokens: Value = app.second_session(&user).await;
    assert_eq!(tokens["user"]["email_verified"], false);
}

#[actix_web::test]
async fn resending_the_verification_is_rate_limited_per_account() {
    let (app, _mailbox) = app_with_mail(&[("IDENTSPHERE_RATE_LIMIT_EMAIL_ACCOUNT", "2/3600")]).await;
    let user = app.signed_up_user().await;
    for _ in 0..2 {
        let resend = post_bearer(&app, "/v1/auth/email/verify/resend", user.access(), &json!({})).await;
        assert_eq!(resend.status(), StatusCode::ACCEPTED);
    }
    let refused = post_bearer(&app, "/v1/auth/email/verify/resend", user.access(), &json!({})).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_error(refused, 429, "rate_limited", "rate_limit_error").await;
}

#[actix_web::test]
async fn a_reset_link_sets_the_password_once_and_ends_every_session() {
    let (app, mailbox) = app_with_mail(&[]).await;
    let user = app.signed_up_user().await;
    let other = app.second_session(&user).await;
    let response = app.post("/v1/auth/password/forgot", &json!({"email": user.email.to_uppercase()})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let token = mailbox.link_token(&user.email, "reset-password", 0).await;

    let weak = app.post("/v1/auth/password/reset", &json!({"token": token, "password": "short"})).await;
    let body = assert_error(weak, 422, "weak_password", "invalid_request_error").await;
    assert_eq!(body["error"]["param"], "password");
    let new_password = "a brand new passphrase";
    let response = app.post("/v1/auth/password/reset", &json!({"token": token, "password": new_password})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    for tokens in [&user.tokens, &other] {
        assert_error(
            app.session(tokens["access_token"].as_str().unwrap()).await,
            401,
            "token_revoked",
            "authentication_error",
        )
        .await;
        assert_error(
            app.refresh(tokens["refresh_token"].as_str().unwrap()).await,
            401,
            "token_revoked",
            "authentication_error",
        )
        .await;
    }
    let old = app.login(&json!({"email": user.email, "password": PASSWORD})).await;
    assert_error(old, 401, "invalid_credentials", "authentication_error").await;
    let new = app.login(&json!({"email": user.email, "password": new_password})).await;
    assert_eq!(new.status(), StatusCode::OK);
    let reused =
        app.post("/v1/auth/password/reset", &json!({"token": token, "password": "yet another passphrase"})).await;
    assert_error(reused, 400, "link_invalid", "invalid_request_error").await;
}

#[actix_web::test]
async fn a_reset_link_proves_the_address_and_removes_what_its_former_holder_set_up() {
    let (app, mailbox) = app_with_mail(&[]).await;
    // Someone registered the address before its owner and added a passkey and a second factor of theirs
    // (pre-account hijacking): after the owner resets the password, neither may let them back in.
    let squatter = app.signed_up_user().await;
    let mut authenticator = crate::authenticator::Authenticator::new(crate::helpers::PUBLIC_BASE_URL);
    crate::passkeys::register(&app, &squatter, &mut authenticator).await;
    crate::mfa::raised_to_aal2(&app, &squatter.tokens).await;
    let response = app.post("/v1/auth/password/forgot", &json!({"email": squatter.email})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let token = mailbox.link_token(&squatter.email, "reset-password", 0).await;
    let new_password = "the owner's own passphrase";
    let response = app.post("/v1/auth/password/reset", &json!({"token": token, "password": new_password})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let passkey = crate::passkeys::sign_in(&app, &mut authenticator).await;
    assert_error(passkey, 401, "passkey_invalid", "authentication_error").await;
    let owner: Value =
        app.login(&json!({"email": squatter.email, "password": new_password})).await.json().await.unwrap();
    assert!(owner.get("access_token").is_some(), "no second factor the owner never set: {owner}");
    let session: Value = app.session(owner["access_token"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(session["user"]["email_verified"], true, "the link proved the address");

    // An address proven before keeps its factors through a reset: its holder set them up.
    let verified = app.signed_up_user().await;
    let link = mailbox.link_token(&verified.email, "verify-email", 0).await;
    assert_eq!(app.post("/v1/auth/email/verify", &json!({"token": link})).await.status(), StatusCode::NO_CONTENT);
    crate::mfa::raised_to_aal2(&app, &verified.tokens).await;
    app.post("/v1/auth/password/forgot", &json!({"email": verified.email})).await;
    let token = mailbox.link_token(&verified.email, "reset-password", 0).await;
    app.post("/v1/auth/password/reset", &json!({"token": token, "password": new_password})).await;
    let login: Value =
        app.login(&json!({"email": verified.email, "password": new_password})).await.json().await.unwrap();
    assert_eq!(login["mfa_required"], true, "{login}");
}

#[actix_web::test]
async fn a_reset_link_expires_after_an_hour() {
    let (app, mailbox) = app_with_mail(&[]).await;
    let user = app.signed_up_user().await;
    app.post("/v1/auth/password/forgot", &json!({"email": user.email})).await;
    let token = mailbox.link_token(&user.email, "reset-password", 0).await;
    app.clock.advance(Duration::hours(1));
    let response =
        app.post("/v1/auth/password/reset", &json!({"token": token, "password": "a brand new passphrase"})).await;
    assert_error(response, 400, "link_invalid", "invalid_request_error").await;
    let still = app.login(&json!({"email": user.email, "password": PASSWORD})).await;
    assert_eq!(still.status(), StatusCode::OK);
}

#[actix_web::test]
async fn forgot_password_answers_alike_for_unknown_emails_and_mails_nobody() {
    let (app, mailbox) = app_with_mail(&[]).await;
    let user = app.signed_up_user().await;
    let unknown = "nobody-here@example.com";
    let mut timings = [Vec::new(), Vec::new()];
    let mut bodies = Vec::new();
    // Interleaved, so both see the same machine.
    for round in 0..20 {
        for (i, email) in [user.email.as_str(), unknown].into_iter().enumerate() {
            let started = Instant::now();
            let response = app.post("/v1/auth/password/forgot", &json!({"email": email})).await;
            timings[i].push(started.elapsed());
            assert_eq!(response.status(), StatusCode::ACCEPTED);
            let body: Value = response.json().await.unwrap();
            if round == 0 {
                bodies.push(body);
            }
        }
    }
    assert_eq!(bodies[0], bodies[1]);
    let median = |t: &mut Vec<std::time::Duration>| {
        t.sort();
        t[t.len() / 2]
    };
    let (known, unknown_median) = (median(&mut timings[0]), median(&mut timings[1]));
    // Nothing in the answer path depends on the account: the medians differ by scheduling noise only.
    let gap = known.abs_diff(unknown_median);
    assert!(gap < std::time::Duration::from_millis(5), "known {known:?} vs unknown {unknown_median:?}");
    mailbox.link_token(&user.email, "reset-password", 19).await;
    assert_eq!(mailbox.count_to(unknown), 0);
}

#[actix_web::test]
async fn changing_the_password_needs_the_current_one_and_ends_the_other_sessions() {
    let (app, _mailbox) = app_with_mail(&[]).await;
    let user = app.signed_up_user().await;
    let other = app.second_session(&user).await;
    let wrong = json!({"current_password": "not the password", "new_password": "a brand new passphrase"});
    let response = post_bearer(&app, "/v1/auth/password", user.access(), &wrong).await;
    assert_error(response, 401, "invalid_credentials", "authentication_error").await;
    assert_eq!(app.session(other["access_token"].as_str().unwrap()).await.status(), StatusCode::OK);
    // A weak new password is named by the field it came in.
    let weak = json!({"current_password": PASSWORD, "new_password": "short"});
    let body = assert_error(
        post_bearer(&app, "/v1/auth/password", user.access(), &weak).await,
        422,
        "weak_password",
        "invalid_request_error",
    )
    .await;
    assert_eq!(body["error"]["param"], "new_password");

    let right = json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});
    let response = post_bearer(&app, "/v1/auth/password", user.access(), &right).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.session(user.access()).await.status(), StatusCode::OK, "this session stays");
    assert_error(
        app.session(other["access_token"].as_str().unwrap()).await,
        401,
        "token_revoked",
        "authentication_error",
    )
    .await;
    let new = app.login(&json!({"email": user.email, "password": "a brand new passphrase"})).await;
    assert_eq!(new.status(), StatusCode::OK);
}

#[actix_web::test]
async fn without_smtp_mail_lands_in_the_outbox_of_the_data_directory() {
    let app = spawn_app_with(&[]).await;
    let user = app.signed_up_user().await;
    let outbox = app.config.data_dir.join("outbox");
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let message = loop {
        let mut entries = tokio::fs::read_dir(&outbox).await.ok();
        if let Some(entry) = match entries.as_mut() {
            Some(dir) => dir.next_entry().await.unwrap(),
            None => None,
        } {
            // The file may still be being written.
            let message = tokio::fs::read_to_string(entry.path()).await.unwrap();
            if message.contains("verify-email") {
                break message;
            }
        }
        assert!(Instant::now() < deadline, "nothing in {}", outbox.display());
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(message.contains(&format!("To: {}", user.email)), "{message}");
    assert!(token_in(&quoted_printable_decoded(&message), "verify-email").is_some(), "{message}");
}
