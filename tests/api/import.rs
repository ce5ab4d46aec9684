//! User import and export (docs/migration.md): every hash format signs in and becomes Argon2id, a re-run
//! creates nothing twice, bad lines are refused one by one with their codes, an existing account is never
//! changed (and joins only by the platform's hand), the export imports again elsewhere, and the command
//! line does what the route does.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestApp, assert_error, ids, postgres_run, spawn_app, spawn_app_with};
use crate::mfa::{code, raised_to_aal2};
use crate::organizations::{call, create_key, create_org, json_of};

/// Hashes of `PASSWORD` made by other implementations (Python's `bcrypt`, `hashlib`, `crypt`), with the
/// format each stands for.
const HASHES: [(&str, &str); 6] = [
    ("bcrypt", "$2b$10$f.DCfkN/fm4wQAIdaIscEuErpOHNoNjVznRXiDJRpQrSmEE.pI0fW"),
    ("scrypt", "$scrypt$ln=14,r=8,p=1$PFVVpd0mA3GmbygjGJFCkA$d+Na589iEaJNwwrv/laQdSf+C7txGAqhB1mEXDKqqOQ"),
    ("pbkdf2", "$pbkdf2-sha256$i=10000,l=32$PFVVpd0mA3GmbygjGJFCkA$+fjpg7wZlytisERNWorxB2GAaSZVrOQzqoCHDHbTX+8"),
    ("django", "pbkdf2_sha256$600000$x7k2PqZ9aBc1$vjZrB4daeezO2CBhSkytBQQjICn/Gb7Yfg2iGxakbGE="),
    (
        "sha512crypt",
        "$6$rounds=10000$saltsaltsalt$sKNe61LkPtaP4L73hny8BmoICx/sc6/7yzGXrSpKz1UuHF6Nf2.quBtGV62QJYMqhwlCAvUxpiDRLn/9QKXrf/",
    ),
    ("sha256crypt", "$5$saltsalt$3hGFMknrJ4ZpFPe7XZe397oIMEp7sbvqrcsX/ONJ3i."),
];

/// Firebase's published example: its project's parameters, and the user's salt and hash of `user1password`.
const FIREBASE_PROJECT: &str = "signer_key=jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==, \
     salt_separator=Bw==, rounds=8, mem_cost=14";
const FIREBASE_HASH: &str = "$firebase-scrypt$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==";

/// Posts an import; the response, whatever it is.
async fn import_raw(
    app: &TestApp,
    org: &str,
    credential: &str,
    body: String,
    firebase: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("/v1/organizations/{org}/users/import")))
        .bearer_auth(credential)
        .header(CONTENT_TYPE, "application/x-ndjson")
        .body(body);
    if let Some(project) = firebase {
        request = request.header("IdentSphere-Firebase-Scrypt", project);
    }
    request.send().await.unwrap()
}

/// Imports `lines` and returns one result per line, as NDJSON lines.
async fn import(app: &TestApp, org: &str, credential: &str, lines: &[Value], firebase: Option<&str>) -> Vec<Value> {
    let body: String = lines.iter().map(|line| format!("{line}\n")).collect();
    results(import_raw(app, org, credential, body, firebase).await).await
}

async fn results(response: reqwest::Response) -> Vec<Value> {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/x-ndjson");
    let text = response.text().await.unwrap();
    text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn user(email: &str, hash: &str) -> Value {
    json!({"email": email, "email_verified": true, "password_hash": hash})
}

async fn login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.login(&json!({"email": email, "password": password})).await
}

/// A new organization `slug` owned by a new user, with a key of its own: (the owner's access token, the key).
async fn org_with_key(app: &TestApp, slug: &str) -> (crate::helpers::User, String) {
    let mut owner = app.signed_up_user().await;
    create_org(app, &mut owner, slug, Some(slug)).await;
    let (key, _) = create_key(app, owner.access(), slug).await;
    (owner, key)
}

#[actix_web::test]
async fn every_format_signs_in_with_its_password_then_is_argon2id_and_a_rerun_creates_nothing() {
    let app = spawn_app().await;
    let (_, key) = org_with_key(&app, "acme").await;
    let mut lines: Vec<Value> =
        HASHES.iter().map(|(format, hash)| user(&format!("{format}@migrated.example"), hash)).collect();
    lines.push(user("firebase@migrated.example", FIREBASE_HASH));
    let first = import(&app, "acme", &key, &lines, Some(FIREBASE_PROJECT)).await;
    assert_eq!(first.len(), lines.len());
    for (index, result) in first.iter().enumerate() {
        assert_eq!(
            (result["line"].as_u64(), result["status"].as_str()),
            (Some(index as u64 + 1), Some("created")),
            "{result}"
        );
    }

    let db = app.db().await;
    for (result, line) in first.iter().zip(&lines) {
        let email = line["email"].as_str().unwrap();
        let password = if email.starts_with("firebase") { "user1password" } else { PASSWORD };
        let id: Uuid = result["user_id"].as_str().unwrap().parse().unwrap();
        let stored = db.password_hash(id).await;
        if email.starts_with("firebase") {
            assert!(stored.starts_with("$firebase-scrypt$r=8,m=14,") && !stored.contains("jxspr8Ki0"), "{stored}");
        } else {
            assert_eq!(stored, line["password_hash"].as_str().unwrap(), "stored as given until used");
        }
        assert_error(login(&app, email, "wrong password").await, 401, "invalid_credentials", "authentication_error")
            .await;
        let signed_in = login(&app, email, password).await;
        assert_eq!(signed_in.status(), StatusCode::OK, "{email}");
        let stored = db.password_hash(id).await;
        assert!(stored.starts_with("$argon2id$v=19$"), "{email}: rehashed on the first sign-in: {stored}");
        assert_eq!(login(&app, email, password).await.status(), StatusCode::OK, "{email} again");
        assert_error(login(&app, email, "wrong password").await, 401, "invalid_credentials", "authentication_error")
            .await;
    }

    // The same file again: every line `exists`, with the same account, and nothing new is stored.
    let users = db.count("users").await;
    let again = import(&app, "acme", &key, &lines, Some(FIREBASE_PROJECT)).await;
    for (before, after) in first.iter().zip(&again) {
        assert_eq!(after["status"], "exists", "{after}");
        assert_eq!(after["user_id"], before["user_id"]);
    }
    assert_eq!(db.count("users").await, users);
}

#[actix_web::test]
async fn bad_lines_are_refused_one_by_one_with_their_codes_and_the_rest_imported() {
    let app = spawn_app().await;
    let (owner, key) = org_with_key(&app, "acme").await;
    let bcrypt = HASHES[0].1;
    let long =
        format!("{{\"email\":\"long@x.example\",\"email_verified\":true,\"display_name\":\"{}\"}}", "x".repeat(20_000));
    let body = [
        user("ok1@x.example", bcrypt).to_string(),
        "{not json".to_owned(),
        json!({"email": "a@x.example", "email_verified": true, "admin": true}).to_string(),
        json!({"email": "not an email", "email_verified": true}).to_string(),
        user("b@x.example", "hunter2").to_string(),
        user("c@x.example", "9cc2ae8a1ba7a93da39b46fc1019c481").to_string(),
        user("d@x.example", "$2b$31$f.DCfkN/fm4wQAIdaIscEuErpOHNoNjVznRXiDJRpQrSmEE.pI0fW").to_string(),
        json!({"email": "e@x.example", "email_verified": true, "role": "owner"}).to_string(),
        json!({"email": "f@x.example", "email_verified": true, "totp_secret": "not base32!"}).to_string(),
        json!({"email": "g@x.example"}).to_string(),
        String::new(),
        long,
        user("firebase@x.example", FIREBASE_HASH).to_string(),
        json!({"email": "ok2@x.example", "email_verified": false, "role": "admin", "external_id": "auth0|42"})
            .to_string(),
    ]
    .join("\n");
    let answers = results(import_raw(&app, "acme", &key, body, None).await).await;
    let summary: Vec<(u64, &str, Option<&str>, Option<&str>)> = answers
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
                r["error"]["code"].as_str(),
                r["error"]["param"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, "created", None, None),
            (2, "invalid", Some("invalid_request"), None),
            (3, "invalid", Some("invalid_request"), Some("admin")),
            (4, "invalid", Some("invalid_email"), Some("email")),
            (5, "invalid", Some("invalid_request"), Some("password_hash")),
            (6, "invalid", Some("invalid_request"), Some("password_hash")),
            (7, "invalid", Some("invalid_request"), Some("password_hash")),
            (8, "invalid", Some("insufficient_role"), None),
            (9, "invalid", Some("invalid_request"), Some("totp_secret")),
            (10, "invalid", Some("invalid_request"), Some("email_verified")),
            // Line 11 is blank: counted, not answered.
            (12, "invalid", Some("invalid_request"), None),
            (13, "invalid", Some("invalid_request"), Some("password_hash")),
            (14, "created", None, None),
        ],
        "{answers:#?}"
    );
    assert!(answers[4]["error"]["message"].as_str().unwrap().contains("no supported format"), "{}", answers[4]);
    assert!(answers[5]["error"]["message"].as_str().unwrap().contains("IDENTSPHERE_IMPORT_ALLOW_WEAK_HASHES"));
    assert!(answers[6]["error"]["message"].as_str().unwrap().contains("cost more"));
    assert!(answers[11]["error"]["message"].as_str().unwrap().contains("IdentSphere-Firebase-Scrypt"));
    // No value a client sent is echoed: a hash is a secret too.
    assert!(!answers.iter().any(|r| r.to_string().contains("hunter2")));

    // The imported admin, with its external id, is searchable by it.
    let path = "/v1/organizations/acme/users?external_id=auth0%7C42";
    let found = json_of(call(&app, Method::GET, path, owner.access(), None).await, StatusCode::OK).await;
    let found = found["users"].as_array().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0]["email"].clone(), found[0]["role"].clone(), found[0]["external_id"].clone()),
        (json!("ok2@x.example"), json!("admin"), json!("auth0|42"))
    );
    // No password to sign in with.
    assert_error(login(&app, "ok2@x.example", PASSWORD).await, 401, "invalid_credentials", "authentication_error")
        .await;

    // Not NDJSON; a declared body over the limit (answered before it is read); past the line limit.
    let response = app
        .client
        .post(app.url("/v1/organizations/acme/users/import"))
        .bearer_auth(&key)
        .json(&user("json@x.example", bcrypt))
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported_media_type", "invalid_request_error").await;
    assert_eq!(oversized_declared(&app, &key).await, 413);
    let many = "\n".repeat(100_000) + &user("late@x.example", bcrypt).to_string();
    let last = results(import_raw(&app, "acme", &key, many, None).await).await;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!((last[0]["line"].as_u64(), last[0]["status"].as_str()), (Some(100_001), Some("failed")));
    assert_eq!(last[0]["error"]["code"], "invalid_request");
    assert_error(login(&app, "late@x.example", PASSWORD).await, 401, "invalid_credentials", "authentication_error")
        .await;
    assert_eq!(login(&app, "ok1@x.example", PASSWORD).await.status(), StatusCode::OK);
}

/// The status of an import that declares 64 MiB and one byte: refused before any byte of it is sent.
async fn oversized_declared(app: &TestApp, key: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/organizations/acme/users/import HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        (64 << 20) + 1
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 12];
    stream.read_exact(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[9..12]).parse().unwrap()
}

#[actix_web::test]
async fn an_existing_account_is_never_changed_and_only_the_platform_brings_it_in() {
    let app = spawn_app().await;
    let (owner, key) = org_with_key(&app, "acme").await;
    let outsider = app.signed_up_user().await;
    let (outsider_id, _, _) = ids(&outsider.tokens);
    let bcrypt = HASHES[0].1;
    // An organization's key: the outsider's account is `email_taken`, and its password stays theirs.
    let taken = import(
        &app,
        "acme",
        &key,
        &[user(&outsider.email, "$2b$04$abcdefghijklmnopqrstuuJbG1x2t2Y0N9kZWdN6f6sTaWz9dVb1i")],
        None,
    )
    .await;
    assert_eq!(
        (taken[0]["status"].as_str(), taken[0]["error"]["code"].as_str()),
        (Some("invalid"), Some("email_taken"))
    );
    assert!(taken[0].get("user_id").is_none(), "nothing about the account is told: {}", taken[0]);
    assert_eq!(login(&app, &outsider.email, PASSWORD).await.status(), StatusCode::OK);
    let members =
        json_of(call(&app, Method::GET, "/v1/organizations/acme/users", owner.access(), None).await, StatusCode::OK)
            .await;
    assert!(!members.to_string().contains(&outsider.email), "{members}");

    // The platform's key: the account joins as a member, still with its own password and nothing else changed.
    let platform = app.db().await.platform_key(app.clock.now()).await;
    let joined = import(&app, "acme", &platform, &[json!({"email": outsider.email, "email_verified": false, "password_hash": bcrypt, "role": "admin", "external_id": "legacy-7"})], None).await;
    assert_eq!(
        (joined[0]["status"].as_str(), joined[0]["user_id"].as_str()),
        (Some("exists"), Some(outsider_id.to_string().as_str()))
    );
    let path = format!("/v1/organizations/acme/users/{outsider_id}");
    let member = json_of(call(&app, Method::GET, &path, owner.access(), None).await, StatusCode::OK).await;
    assert_eq!(
        (member["role"].clone(), member["external_id"].clone(), member["email_verified"].clone()),
        (json!("admin"), json!("legacy-7"), json!(false))
    );
    assert!(
        app.db().await.password_hash(outsider_id).await.starts_with("$argon2id$"),
        "the password is the account's own"
    );
    // Even the platform's key makes no owner.
    let owner_line = import(
        &app,
        "acme",
        &platform,
        &[json!({"email": "boss@x.example", "email_verified": true, "role": "owner"})],
        None,
    )
    .await;
    assert_eq!(owner_line[0]["error"]["code"], "insufficient_role");
}

#[actix_web::test]
async fn an_export_imports_again_elsewhere_with_passwords_factors_and_ids() {
    let app = spawn_app().await;
    let (owner, key) = org_with_key(&app, "acme").await;
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let lines = [
        json!({"email": "ada@x.example", "email_verified": true, "display_name": "Ada", "role": "admin", "password_hash": HASHES[0].1, "external_id": "u-1", "created_at": "2019-05-01T10:00:00Z", "totp_secret": secret}),
        user("bob@x.example", HASHES[3].1),
    ];
    // The platform's key: its `email_verified` is kept as the other system knew it.
    let platform = app.db().await.platform_key(app.clock.now()).await;
    import(&app, "acme", &platform, &lines, None).await;
    // Bob signs in here once: his hash is ours now; Ada's stays bcrypt.
    assert_eq!(login(&app, "bob@x.example", PASSWORD).await.status(), StatusCode::OK);

    let export_path = "/v1/organizations/acme/users/export";
    let aal1 = call(&app, Method::GET, export_path, owner.access(), None).await;
    assert_error(aal1, 403, "insufficient_aal", "permission_error").await;
    let org_key = call(&app, Method::GET, export_path, &key, None).await;
    assert_error(org_key, 403, "insufficient_role", "permission_error").await;
    let aal2 = raised_to_aal2(&app, &owner.tokens).await;
    let exported = call(&app, Method::GET, export_path, aal2["access_token"].as_str().unwrap(), None).await;
    assert_eq!(exported.status(), StatusCode::OK);
    assert_eq!(exported.headers()["cache-control"], "no-store");
    let exported = exported.text().await.unwrap();
    let by_platform = call(&app, Method::GET, export_path, &platform, None).await.text().await.unwrap();
    assert_eq!(by_platform.lines().count(), 3, "the owner, Ada and Bob: {by_platform}");
    let ada: Value = exported
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["email"] == "ada@x.example")
        .unwrap();
    assert_eq!(
        ada,
        json!({"email": "ada@x.example", "email_verified": true, "display_name": "Ada", "role": "admin", "password_hash": HASHES[0].1, "created_at": "2019-05-01T10:00:00Z", "external_id": "u-1", "totp_secret": secret})
    );
    assert!(exported.contains("\"password_hash\":\"$argon2id$"), "Bob's and the owner's are Argon2id PHC: {exported}");

    // Into another server: every account signs in there with its password (and Ada with her factor).
    let elsewhere = spawn_app().await;
    let mut new_owner = elsewhere.signed_up_user().await;
    create_org(&elsewhere, &mut new_owner, "Beta", Some("beta")).await;
    let body: String = exported.lines().map(|l| format!("{l}\n")).collect();
    let imported = results(import_raw(&elsewhere, "beta", new_owner.access(), body, None).await).await;
    assert!(imported.iter().all(|r| r["status"] == "created"), "{imported:?}");
    assert_eq!(login(&elsewhere, "bob@x.example", PASSWORD).await.status(), StatusCode::OK);
    let ada_login: Value = login(&elsewhere, "ada@x.example", PASSWORD).await.json().await.unwrap();
    assert_eq!(ada_login["mfa_required"], true, "{ada_login}");
    let secret_bytes = totp_rs::Secret::try_from_base32(secret).unwrap().as_bytes().to_vec();
    let verified = elsewhere
        .post(
            "/v1/auth/mfa/verify",
            &json!({"mfa_token": ada_login["mfa_token"], "code": code(&elsewhere, &secret_bytes, 0)}),
        )
        .await;
    assert_eq!(verified.status(), StatusCode::OK);
    let owners = exported.lines().filter(|l| l.contains("\"role\":\"owner\"")).count();
    assert_eq!(owners, 1);
    assert_eq!(login(&elsewhere, &owner.email, PASSWORD).await.status(), StatusCode::OK, "the owner came too");
}

#[actix_web::test]
async fn the_command_line_imports_a_file_as_the_route_does() {
    let app = spawn_app().await;
    let (_, _) = org_with_key(&app, "acme").await;
    let file = std::env::temp_dir().join(format!("identsphere-import-{}.ndjson", Uuid::new_v4().simple()));
    let lines = [
        json!({"email": "boss@cli.example", "email_verified": true, "role": "owner", "password_hash": HASHES[0].1}),
        user("fire@cli.example", FIREBASE_HASH),
        json!({"email": "broken"}),
    ];
    std::fs::write(&file, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let (config, clock, resources) = (app.config.clone(), app.clock.clone(), std::sync::Arc::clone(&app.resources));
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_identsphere"))
            .args(["import", "users", "--organization", "acme", "--firebase-scrypt", FIREBASE_PROJECT])
            .arg(&file)
            .env_clear()
            .envs(resources.vars())
            .output()
            .unwrap()
    };
    // Beside a running server on Postgres; the embedded store takes it only once the server has let go.
    let app = if postgres_run() {
        let output = run();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        check_cli_output(&output);
        app
    } else {
        app.stop().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let output = loop {
            let output = run();
            if output.status.success() || std::time::Instant::now() > deadline {
                break output;
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        check_cli_output(&output);
        crate::helpers::start(config, clock, resources).await
    };
    std::fs::remove_file(&file).unwrap();
    assert_eq!(login(&app, "boss@cli.example", PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(login(&app, "fire@cli.example", "user1password").await.status(), StatusCode::OK);
}

fn check_cli_output(output: &std::process::Output) {
    let results: Vec<Value> =
        String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["created", "created", "invalid"], "{results:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("imported into acme: 2 created, 0 existing, 1 invalid"), "{stderr}");
}

#[actix_web::test]
async fn weak_hashes_only_where_the_operator_allows_them_and_no_check_answers_sooner_than_the_floor() {
    let app = spawn_app_with(&[
        ("IDENTSPHERE_IMPORT_ALLOW_WEAK_HASHES", "true"),
        ("IDENTSPHERE_PASSWORD_CHECK_MIN_MS", "300"),
    ])
    .await;
    let (_, key) = org_with_key(&app, "acme").await;
    // MD5 of the password, bare and Django-salted (Python's hashlib).
    let lines = [
        user("bare@legacy.example", "9cc2ae8a1ba7a93da39b46fc1019c481"),
        user("salted@legacy.example", "md5$seasalt$9aa4b8addefd43dbf9340b7540e4e49a"),
    ];
    let results = import(&app, "acme", &key, &lines, None).await;
    assert!(results.iter().all(|r| r["status"] == "created"), "{results:?}");
    // Every refusal takes the floor, whatever stood behind it: a weak hash, no account, an Argon2 one.
    let argon2_user = app.signed_up_user().await;
    for email in ["salted@legacy.example", "nobody@legacy.example", argon2_user.email.as_str()] {
        let started = std::time::Instant::now();
        assert_error(login(&app, email, "wrong password").await, 401, "invalid_credentials", "authentication_error")
            .await;
        assert!(started.elapsed() >= std::time::Duration::from_millis(300), "{email}: {:?}", started.elapsed());
    }
    assert_eq!(login(&app, "bare@legacy.example", PASSWORD).await.status(), StatusCode::OK);
    let id: Uuid = results[0]["user_id"].as_str().unwrap().parse().unwrap();
    assert!(app.db().await.password_hash(id).await.starts_with("$argon2id$"), "the MD5 is gone after one sign-in");
    assert_eq!(login(&app, "salted@legacy.example", PASSWORD).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn an_organization_vouches_only_for_addresses_of_the_domains_verified_for_it() {
    let app = spawn_app().await;
    let (owner, key) = org_with_key(&app, "acme").await;
    // A domain the platform verified for Acme's SSO connection: Acme may call its addresses verified.
    let connection = json!({"issuer": "https://idp.acme.example", "client_id": "app", "client_secret": "secret", "domains": ["acme.example"]});
    let path = "/v1/organizations/acme/sso/connections";
    let connection =
        json_of(call(&app, Method::POST, path, owner.access(), Some(&connection)).await, StatusCode::CREATED).await;
    let platform = app.db().await.platform_key(app.clock.now()).await;
    let verify = format!("{path}/{}/verify-domain", connection["id"].as_str().unwrap());
    let verified = call(&app, Method::POST, &verify, &platform, Some(&json!({"domain": "acme.example"}))).await;
    assert_eq!(verified.status(), StatusCode::OK);

    let lines = [user("staff@acme.example", HASHES[0].1), user("someone@bigcorp.example", HASHES[0].1)];
    let results = import(&app, "acme", &key, &lines, None).await;
    let db = app.db().await;
    let mut members = Vec::new();
    for result in &results {
        let path = format!("/v1/organizations/acme/users/{}", result["user_id"].as_str().unwrap());
        members.push(json_of(call(&app, Method::GET, &path, owner.access(), None).await, StatusCode::OK).await);
    }
    let (staff, someone) = (&members[0], &members[1]);
    assert_eq!(staff["email_verified"], true, "{staff}");
    // Not Acme's to vouch for: it starts unverified, so it joins no organization by domain and a provider
    // identity proving it takes the account over, the importer's password gone.
    assert_eq!(someone["email_verified"], false, "{someone}");
    assert_eq!(db.count("users").await, 3);
}
