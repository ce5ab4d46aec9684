//! `populate`: loads realistic data into IdentSphere's Postgres database in bulk, not through the API.
//!
//! `LOADTEST_USERS` users (default 100000, `lt-user-<i>@example.com`) spread over `LOADTEST_ORGS`
//! organizations (default 10000, `lt-org-<i>`), and `LOADTEST_HOT_USERS` users (default 1000,
//! `lt-hot-user-<i>@example.com`) all in one organization (`lt-hot`). Every user's password is the
//! loadtest's, hashed once at the server's default Argon2id cost (one hash serves all: populating must not
//! take 100,000 hashes). Idempotent: run it again and nothing is duplicated.
//!
//! Usage: `LOADTEST_DATABASE_URL=postgres://… populate` against a database the server has migrated.

use std::time::Instant;

use anyhow::Context as _;
use argon2::password_hash::SaltString;
use argon2::password_hash::rand_core::OsRng;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, Version};

const PASSWORD: &str = "loadtest password 2026";

fn count(name: &str, default: i64) -> anyhow::Result<i64> {
    std::env::var(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name} must be a number")))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (users, orgs, hot) =
        (count("LOADTEST_USERS", 100_000)?, count("LOADTEST_ORGS", 10_000)?, count("LOADTEST_HOT_USERS", 1_000)?);
    let url =
        std::env::var("LOADTEST_DATABASE_URL").context("LOADTEST_DATABASE_URL: the server's Postgres database")?;
    let params = Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string();

    let (mut client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let started = Instant::now();
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO organizations (id, slug, name, created_at) \
         SELECT gen_random_uuid(), 'lt-org-' || i, 'Load test ' || i, now() FROM generate_series(0, $1::bigint - 1) i \
         UNION ALL SELECT gen_random_uuid(), 'lt-hot', 'Load test hot', now() \
         ON CONFLICT (slug) DO NOTHING",
        &[&orgs],
    )
    .await?;
    tx.execute(
        "INSERT INTO users (id, email, email_normalized, created_at) \
         SELECT gen_random_uuid(), e, e, now() FROM ( \
           SELECT 'lt-user-' || i || '@example.com' AS e FROM generate_series(0, $1::bigint - 1) i \
           UNION ALL SELECT 'lt-hot-user-' || i || '@example.com' FROM generate_series(0, $2::bigint - 1) i) emails \
         ON CONFLICT (email_normalized) DO NOTHING",
        &[&users, &hot],
    )
    .await?;
    tx.execute(
        "INSERT INTO password_credentials (user_id, hash, updated_at) \
         SELECT id, $1, now() FROM users WHERE email_normalized LIKE 'lt-%user-%' ON CONFLICT (user_id) DO NOTHING",
        &[&hash],
    )
    .await?;
    tx.execute(
        "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) \
         SELECT u.id, o.id, 'member', now(), now() FROM users u \
         JOIN organizations o ON o.slug = CASE \
           WHEN u.email_normalized LIKE 'lt-hot-user-%' THEN 'lt-hot' \
           ELSE 'lt-org-' || (split_part(split_part(u.email_normalized, '@', 1), '-', 3)::bigint % $1::bigint) END \
         WHERE u.email_normalized LIKE 'lt-%user-%' ON CONFLICT DO NOTHING",
        &[&orgs],
    )
    .await?;
    tx.commit().await?;
    client.batch_execute("ANALYZE").await?;
    println!(
        "populated {users} users in {orgs} organizations and {hot} users in one organization in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
