//! `import`: bulk user import against a running IdentSphere (docs/migration.md, loadtest/README.md).
//!
//! Signs up an owner, makes an organization and a key for it, then imports `LOADTEST_IMPORT_USERS` users
//! (default 100,000) with bcrypt hashes, `LOADTEST_IMPORT_PER_REQUEST` lines a request (default 100,000, the
//! route's limit) and `LOADTEST_IMPORT_CONCURRENCY` requests at once (default 1); then the same again, which
//! must create nothing (every line `exists`). The import stores hashes as given, so one hash made here serves
//! every line: the run measures the import, not bcrypt.
//!
//! Prints, for each pass: the users, the wall time, users per second, the time to the first result line and
//! each request's time (p50/max). Fails (exit 1) on any line that is not `created` (first pass) or `exists`
//! (second), or on any request that does not answer 200.
//!
//! ```sh
//! ./target/release/import --host http://127.0.0.1:8080
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// A bcrypt hash (cost 10) of a password nobody uses, in every line.
const HASH: &str = "$2b$10$f.DCfkN/fm4wQAIdaIscEuErpOHNoNjVznRXiDJRpQrSmEE.pI0fW";

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let host = match args.iter().position(|a| a == "--host") {
        Some(at) => args.get(at + 1).context("--host needs a URL")?.trim_end_matches('/').to_owned(),
        None => "http://127.0.0.1:8080".to_owned(),
    };
    let users = env_count("LOADTEST_IMPORT_USERS", 100_000);
    let per_request = env_count("LOADTEST_IMPORT_PER_REQUEST", 100_000).max(1);
    let concurrency = env_count("LOADTEST_IMPORT_CONCURRENCY", 1).max(1);
    let client = reqwest::Client::new();
    let (slug, key) = organization_with_key(&client, &host).await?;

    let run = uuid::Uuid::new_v4().simple().to_string();
    let bodies: Vec<String> = (0..users)
        .collect::<Vec<_>>()
        .chunks(per_request)
        .map(|chunk| {
            chunk
                .iter()
                .map(|i| {
                    let line = json!({"email": format!("imp-{run}-{i}@example.com"), "email_verified": true,
                        "password_hash": HASH, "external_id": format!("legacy-{i}")});
                    format!("{line}\n")
                })
                .collect()
        })
        .collect();
    println!(
        "importing {users} users into {slug}: {} requests of up to {per_request} lines, {concurrency} at once",
        bodies.len()
    );
    for (pass, expected) in [("first pass", "created"), ("re-run", "exists")] {
        let started = Instant::now();
        let mut times = Vec::new();
        let mut first_result = None;
        for group in bodies.chunks(concurrency) {
            let requests: Vec<_> = group
                .iter()
                .map(|body| {
                    let (client, host, slug, key, body) =
                        (client.clone(), host.clone(), slug.clone(), key.clone(), body.clone());
                    tokio::spawn(async move { import(&client, &host, &slug, &key, body, expected).await })
                })
                .collect();
            for request in requests {
                let (took, first) = request.await??;
                times.push(took);
                first_result = first_result.or(Some(first));
            }
        }
        let wall = started.elapsed();
        times.sort();
        println!(
            "{pass}: {users} users in {:.2} s = {:.0} users/s; first result after {:.0} ms; per request p50 {:.2} s, max {:.2} s",
            wall.as_secs_f64(),
            users as f64 / wall.as_secs_f64(),
            first_result.unwrap_or_default().as_secs_f64() * 1000.0,
            times[times.len() / 2].as_secs_f64(),
            times.last().copied().unwrap_or_default().as_secs_f64()
        );
    }
    Ok(())
}

/// One import request: its time and the time to its first result; every line must have `expected`.
async fn import(
    client: &reqwest::Client,
    host: &str,
    slug: &str,
    key: &str,
    body: String,
    expected: &'static str,
) -> anyhow::Result<(Duration, Duration)> {
    let lines = body.lines().count();
    let started = Instant::now();
    let mut response = client
        .post(format!("{host}/v1/organizations/{slug}/users/import"))
        .bearer_auth(key)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?;
    if response.status() != reqwest::StatusCode::OK {
        bail!("import answered {}: {}", response.status(), response.text().await?);
    }
    let mut first = None;
    let (mut buffer, mut answered) = (Vec::new(), 0);
    while let Some(chunk) = response.chunk().await? {
        first.get_or_insert_with(|| started.elapsed());
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let result: Value = serde_json::from_slice(&line)?;
            if result["status"] != expected {
                bail!("expected every line {expected}, got {result}");
            }
            answered += 1;
        }
    }
    if answered != lines {
        bail!("{answered} results for {lines} lines");
    }
    Ok((started.elapsed(), first.unwrap_or_default()))
}

/// Signs up an owner, creates an organization and a key for it: (its slug, the key).
async fn organization_with_key(client: &reqwest::Client, host: &str) -> anyhow::Result<(String, String)> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let owner = json!({"email": format!("import-owner-{id}@example.com"), "password": "loadtest password 2026"});
    let tokens: Value = client.post(format!("{host}/v1/auth/register")).json(&owner).send().await?.json().await?;
    let access = tokens["access_token"].as_str().context("no access token from register")?.to_owned();
    let slug = format!("import-{}", &id[..12]);
    let org: Value = client
        .post(format!("{host}/v1/organizations"))
        .bearer_auth(&access)
        .json(&json!({"name": "Import", "slug": slug}))
        .send()
        .await?
        .json()
        .await?;
    // Acting on the organization takes a session in it.
    let login = json!({"email": owner["email"], "password": owner["password"], "organization": org["id"]});
    let tokens: Value = client.post(format!("{host}/v1/auth/login")).json(&login).send().await?.json().await?;
    let access = tokens["access_token"].as_str().context("no access token in the organization")?;
    let key: Value = client
        .post(format!("{host}/v1/organizations/{slug}/api-keys"))
        .bearer_auth(access)
        .json(&json!({"name": "import load test"}))
        .send()
        .await?
        .json()
        .await?;
    Ok((slug, key["secret"].as_str().context("no key secret")?.to_owned()))
}
