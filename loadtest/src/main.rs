//! `loadtest`: goose scenarios against a running IdentSphere.
//!
//! The scenario comes from `LOADTEST_SCENARIO` (goose owns the command line: `--host`, `--users`,
//! `--increase-rate`, `--run-time`, `--report-file`, …):
//! - `signin`: a login storm (Argon2-bound);
//! - `refresh`: rotation churn, one session family per goose user;
//! - `session`: token check + session read;
//! - `mixed`: per-user life: register, log in, mostly session reads, refreshes, and now and then log out and in;
//! - `hot-org`: session reads and refreshes by users who all belong to one organization;
//! - `many-orgs`: the same by users spread over the populated organizations;
//! - `signin+session`: session reads measured while a login storm saturates hashing;
//! - `mfa-signin`: what a second factor adds to a sign-in: half the users sign in with a password only, half
//!   with a password and a TOTP code (`login` then `mfa verify`), each about once per TOTP step (30 s), so
//!   the latencies compare at the same light load;
//! - `passkey-signin`: a storm of passkey sign-ins (`passkey options` then `passkey sign-in`), each goose user
//!   with an account and a passkey of its own (a software authenticator signing for `LOADTEST_PASSKEY_ORIGIN`,
//!   default `http://localhost:8080`: start the server with that public base URL). Compare with `signin`.
//!
//! `signin`, `refresh`, `session`, `hot-org`, `many-orgs` and `signin+session` sign in as users that `populate`
//! loaded (`LOADTEST_USERS`, default 100000; `LOADTEST_HOT_USERS`, default 1000). The run fails (exit 1) on any
//! error: a load test that tolerates errors measures nothing.

use goose::prelude::*;
use serde_json::{Value, json};

#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "the API tests' software authenticator: a malformed answer of the server is a failed run"
)]
#[path = "../../tests/api/authenticator.rs"]
mod authenticator;

/// The password `populate` gives every user.
const PASSWORD: &str = "loadtest password 2026";

/// One goose user's session, and who signed in.
#[derive(Clone, Debug)]
struct Session {
    email: String,
    access: String,
    refresh: String,
}

fn env_count(name: &str, default: u128) -> u128 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A populated user, drawn at random.
fn populated_email(hot: bool) -> String {
    let draw = uuid::Uuid::new_v4().as_u128();
    if hot {
        format!("lt-hot-user-{}@example.com", draw % env_count("LOADTEST_HOT_USERS", 1_000))
    } else {
        format!("lt-user-{}@example.com", draw % env_count("LOADTEST_USERS", 100_000))
    }
}

fn failed(message: impl Into<String>) -> Box<TransactionError> {
    Box::new(TransactionError::Custom(message.into()))
}

/// Posts `body` and returns the JSON answer; a non-2xx answer is marked failed by goose itself.
async fn post(user: &mut GooseUser, name: &str, path: &str, body: &Value) -> Result<Value, Box<TransactionError>> {
    post_as(user, name, path, body, None).await
}

/// `post` with an access token.
async fn post_as(
    user: &mut GooseUser,
    name: &str,
    path: &str,
    body: &Value,
    bearer: Option<&str>,
) -> Result<Value, Box<TransactionError>> {
    let builder = user.get_request_builder(&GooseMethod::Post, path)?.json(body);
    let builder = match bearer {
        Some(token) => builder.bearer_auth(token),
        None => builder,
    };
    let request =
        GooseRequest::builder().method(GooseMethod::Post).path(path).name(name).set_request_builder(builder).build();
    let goose = user.request(request).await?;
    let response = goose.response.map_err(|e| failed(format!("{name}: {e}")))?;
    if response.status().as_u16() == 204 {
        return Ok(Value::Null);
    }
    response.json().await.map_err(|e| failed(format!("{name}: {e}")))
}

fn session_of(answer: &Value) -> Result<Session, Box<TransactionError>> {
    let text =
        |value: &Value, name: &str| value.as_str().map(str::to_owned).ok_or_else(|| failed(format!("no {name}")));
    Ok(Session {
        email: text(&answer["user"]["email"], "user.email")?,
        access: text(&answer["access_token"], "access_token")?,
        refresh: text(&answer["refresh_token"], "refresh_token")?,
    })
}

async fn login_as(user: &mut GooseUser, email: &str) -> TransactionResult {
    let answer = post(user, "login", "/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await?;
    let session = session_of(&answer)?;
    user.set_session_data(session);
    Ok(())
}

async fn login_populated(user: &mut GooseUser) -> TransactionResult {
    login_as(user, &populated_email(false)).await
}

async fn login_hot(user: &mut GooseUser) -> TransactionResult {
    login_as(user, &populated_email(true)).await
}

/// A login whose session is not kept: the storm.
async fn signin(user: &mut GooseUser) -> TransactionResult {
    let email = populated_email(false);
    post(user, "login", "/v1/auth/login", &json!({ "email": email, "password": PASSWORD })).await.map(drop)
}

async fn refresh(user: &mut GooseUser) -> TransactionResult {
    let token = user.get_session_data::<Session>().ok_or_else(|| failed("no session"))?.refresh.clone();
    let answer = post(user, "refresh", "/v1/auth/refresh", &json!({ "refresh_token": token })).await?;
    user.set_session_data(session_of(&answer)?);
    Ok(())
}

async fn read_session(user: &mut GooseUser) -> TransactionResult {
    let token = user.get_session_data::<Session>().ok_or_else(|| failed("no session"))?.access.clone();
    let builder = user.get_request_builder(&GooseMethod::Get, "/v1/auth/session")?.bearer_auth(token);
    let request = GooseRequest::builder()
        .method(GooseMethod::Get)
        .path("/v1/auth/session")
        .name("session")
        .set_request_builder(builder)
        .build();
    user.request(request).await?;
    Ok(())
}

async fn register(user: &mut GooseUser) -> TransactionResult {
    let email = format!("lt-new-{}@example.com", uuid::Uuid::new_v4().simple());
    let answer = post(user, "register", "/v1/auth/register", &json!({ "email": email, "password": PASSWORD })).await?;
    user.set_session_data(session_of(&answer)?);
    Ok(())
}

/// Logs out and back in as the same user: keeps a session for the next transactions.
async fn logout_and_in(user: &mut GooseUser) -> TransactionResult {
    let session = user.get_session_data::<Session>().ok_or_else(|| failed("no session"))?;
    let (token, email) = (session.access.clone(), session.email.clone());
    let builder = user.get_request_builder(&GooseMethod::Post, "/v1/auth/logout")?.bearer_auth(token);
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path("/v1/auth/logout")
        .name("logout")
        .set_request_builder(builder)
        .build();
    user.request(request).await?;
    login_as(user, &email).await
}

/// A goose user of `mfa-signin`: their email, TOTP secret (for those with a factor) and last TOTP step used.
#[derive(Clone, Debug)]
struct Account {
    email: String,
    totp: Option<totp_rs::Totp>,
    last_step: u64,
}

fn now_unix() -> Result<u64, Box<TransactionError>> {
    // The load generator's own clock: the server's rule (`src/clock.rs`) is about the server.
    #[expect(clippy::disallowed_methods, reason = "the load generator reads the wall clock for TOTP codes")]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).map_err(|e| failed(e.to_string()))
}

/// Registers a new account; with `factor`, enrolls and confirms TOTP.
async fn new_account(user: &mut GooseUser, factor: bool) -> TransactionResult {
    let email = format!("lt-mfa-{}@example.com", uuid::Uuid::new_v4().simple());
    let answer = post(user, "register", "/v1/auth/register", &json!({ "email": email, "password": PASSWORD })).await?;
    let access = session_of(&answer)?.access;
    let mut account = Account { email, totp: None, last_step: 0 };
    if factor {
        let enrollment = post_as(user, "mfa enroll", "/v1/auth/mfa/totp", &json!({}), Some(&access)).await?;
        let secret = enrollment["secret"].as_str().ok_or_else(|| failed("no secret"))?;
        let secret = totp_rs::Secret::try_from_base32(secret).map_err(|e| failed(e.to_string()))?;
        let totp = totp_rs::Builder::new().with_secret(secret).build().map_err(|e| failed(e.to_string()))?;
        let now = now_unix()?;
        let code = totp.generate(now).to_string();
        post_as(user, "mfa confirm", "/v1/auth/mfa/totp/confirm", &json!({ "code": code }), Some(&access)).await?;
        account.last_step = now / 30;
        account.totp = Some(totp);
    }
    user.set_session_data(account);
    Ok(())
}

async fn password_account(user: &mut GooseUser) -> TransactionResult {
    new_account(user, false).await
}

async fn mfa_account(user: &mut GooseUser) -> TransactionResult {
    new_account(user, true).await
}

/// A full sign-in: the password, and the TOTP code when the account has a factor (waiting for a TOTP step not
/// used yet: each is accepted once).
async fn full_signin(user: &mut GooseUser) -> TransactionResult {
    let account = user.get_session_data::<Account>().ok_or_else(|| failed("no account"))?.clone();
    let body = json!({ "email": account.email, "password": PASSWORD });
    let Some(totp) = &account.totp else {
        return post(user, "login (password only)", "/v1/auth/login", &body).await.map(drop);
    };
    let mut now = now_unix()?;
    while now / 30 <= account.last_step {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        now = now_unix()?;
    }
    let answer = post(user, "login (mfa user)", "/v1/auth/login", &body).await?;
    let mfa_token = answer["mfa_token"].as_str().ok_or_else(|| failed("no mfa_required"))?.to_owned();
    let code = totp.generate(now).to_string();
    let verified =
        post(user, "mfa verify", "/v1/auth/mfa/verify", &json!({ "mfa_token": mfa_token, "code": code })).await?;
    session_of(&verified)?;
    user.set_session_data(Account { last_step: now / 30, ..account });
    Ok(())
}

/// Registers a new account and a passkey for it, kept for `passkey_signin`.
async fn passkey_account(user: &mut GooseUser) -> TransactionResult {
    let email = format!("lt-passkey-{}@example.com", uuid::Uuid::new_v4().simple());
    let answer = post(user, "register", "/v1/auth/register", &json!({ "email": email, "password": PASSWORD })).await?;
    let access = session_of(&answer)?.access;
    let origin = std::env::var("LOADTEST_PASSKEY_ORIGIN").unwrap_or_else(|_| "http://localhost:8080".to_owned());
    let mut authenticator = authenticator::Authenticator::new(&origin);
    let path = "/v1/auth/passkeys/registration/options";
    let options = post_as(user, "passkey registration options", path, &json!({}), Some(&access)).await?;
    let credential = authenticator.register(&options, None);
    let body = json!({ "ceremony_id": options["ceremony_id"], "credential": credential });
    post_as(user, "passkey registration", "/v1/auth/passkeys/registration", &body, Some(&access)).await?;
    user.set_session_data(authenticator);
    Ok(())
}

/// A passkey sign-in whose session is not kept: options, then the assertion.
async fn passkey_signin(user: &mut GooseUser) -> TransactionResult {
    let mut authenticator =
        user.get_session_data::<authenticator::Authenticator>().ok_or_else(|| failed("no passkey"))?.clone();
    let options = post(user, "passkey options", "/v1/auth/passkeys/authentication/options", &json!({})).await?;
    let body = json!({ "ceremony_id": options["ceremony_id"], "credential": authenticator.authenticate(&options) });
    let answer = post(user, "passkey sign-in", "/v1/auth/passkeys/authentication", &body).await?;
    session_of(&answer)?;
    // The signature counter moved on.
    user.set_session_data(authenticator);
    Ok(())
}

fn scenarios(name: &str) -> Result<Vec<Scenario>, GooseError> {
    let session_and_refresh = |scenario: Scenario, on_start: Transaction| -> Result<Scenario, GooseError> {
        Ok(scenario
            .register_transaction(on_start.set_on_start())
            .register_transaction(transaction!(read_session).set_weight(9)?)
            .register_transaction(transaction!(refresh).set_weight(1)?))
    };
    Ok(match name {
        "signin" => vec![scenario!("Signin").register_transaction(transaction!(signin))],
        "refresh" => vec![
            scenario!("Refresh")
                .register_transaction(transaction!(login_populated).set_on_start())
                .register_transaction(transaction!(refresh)),
        ],
        "session" => vec![
            scenario!("Session")
                .register_transaction(transaction!(login_populated).set_on_start())
                .register_transaction(transaction!(read_session)),
        ],
        "mixed" => vec![
            scenario!("Mixed")
                .register_transaction(transaction!(register).set_on_start())
                .register_transaction(transaction!(read_session).set_weight(16)?)
                .register_transaction(transaction!(refresh).set_weight(3)?)
                .register_transaction(transaction!(logout_and_in).set_weight(1)?),
        ],
        "hot-org" => vec![session_and_refresh(scenario!("HotOrg"), transaction!(login_hot))?],
        "many-orgs" => vec![session_and_refresh(scenario!("ManyOrgs"), transaction!(login_populated))?],
        "signin+session" => vec![
            scenario!("SigninStorm").set_weight(1)?.register_transaction(transaction!(signin)),
            scenario!("SessionDuringStorm")
                .set_weight(3)?
                .register_transaction(transaction!(login_populated).set_on_start())
                .register_transaction(transaction!(read_session)),
        ],
        "mfa-signin" => {
            let step = std::time::Duration::from_secs(30);
            vec![
                scenario!("PasswordSignin")
                    .set_wait_time(step, step)?
                    .register_transaction(transaction!(password_account).set_on_start())
                    .register_transaction(transaction!(full_signin)),
                scenario!("MfaSignin")
                    .set_wait_time(step, step)?
                    .register_transaction(transaction!(mfa_account).set_on_start())
                    .register_transaction(transaction!(full_signin)),
            ]
        }
        "passkey-signin" => vec![
            scenario!("PasskeySignin")
                .register_transaction(transaction!(passkey_account).set_on_start())
                .register_transaction(transaction!(passkey_signin)),
        ],
        other => {
            return Err(GooseError::InvalidOption {
                option: "LOADTEST_SCENARIO".to_owned(),
                value: other.to_owned(),
                detail: "one of signin, refresh, session, mixed, hot-org, many-orgs, signin+session, mfa-signin, \
                         passkey-signin"
                    .to_owned(),
            });
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    let name = std::env::var("LOADTEST_SCENARIO").unwrap_or_else(|_| "mixed".to_owned());
    let mut attack = GooseAttack::initialize()?;
    for scenario in scenarios(&name)? {
        attack = attack.register_scenario(scenario);
    }
    let metrics = attack.execute().await?;
    let failures: usize = metrics.requests.values().map(|r| r.fail_count).sum();
    if failures > 0 || !metrics.errors.is_empty() {
        eprintln!("loadtest: {failures} failed requests; errors: {:?}", metrics.errors.keys().collect::<Vec<_>>());
        std::process::exit(1);
    }
    Ok(())
}
