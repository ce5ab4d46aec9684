//! `limits`: the physical limits IdentSphere's hot paths are measured against, on this machine, now.
//!
//! - an RS256 signature with a key pair parsed once (aws-lc-rs), and an RS256 verification through
//!   `jsonwebtoken` with the key parsed once;
//! - one Argon2id hash at the OWASP parameters, alone and with one hash per core at once, each thread reusing
//!   its memory as the server's hashing threads do;
//! - a Redis round trip (`PING`), a Postgres primary-key read and a single-row update (synchronous commit).
//!
//! Usage: `limits [--iterations N]` with `LIMITS_DATABASE_URL` (a scratch database: a table `limits_probe` is
//! created and dropped) and `LIMITS_REDIS_URL`. Prints each limit's percentiles and its throughput per core.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm as JwtAlgorithm, DecodingKey, Validation};

/// Percentiles of a set of timings.
struct Summary {
    name: &'static str,
    samples: Vec<Duration>,
}

impl Summary {
    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples.get(index).copied().unwrap_or_default()
    }

    fn print(mut self) {
        self.samples.sort();
        let p50 = self.percentile(0.50);
        let per_second = if p50.is_zero() { 0.0 } else { 1.0 / p50.as_secs_f64() };
        println!(
            "{:<34} n={:<6} p50={:>10.1?} p95={:>10.1?} p99={:>10.1?} max={:>10.1?}  ~{:>9.0}/s per core at p50",
            self.name,
            self.samples.len(),
            p50,
            self.percentile(0.95),
            self.percentile(0.99),
            self.samples.last().copied().unwrap_or_default(),
            per_second,
        );
    }
}

fn time_sync(
    name: &'static str,
    iterations: usize,
    mut op: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    op()?; // warm up
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        op()?;
        samples.push(started.elapsed());
    }
    Ok(Summary { name, samples })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .map(|n| n.parse())
        .transpose()
        .context("--iterations takes a number")?
        .unwrap_or(2_000);

    // RSA: sign with the parsed pair, verify through jsonwebtoken with the parsed public key.
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow::anyhow!("RSA key generation"))?;
    let header = B64.encode(r#"{"alg":"RS256","typ":"JWT","kid":"limits"}"#);
    let claims = B64.encode(
        serde_json::json!({"sub": uuid::Uuid::new_v4(), "exp": 4_000_000_000_i64, "iss": "limits"}).to_string(),
    );
    let message = format!("{header}.{claims}");
    let mut signature = vec![0u8; pair.public_modulus_len()];
    let rng = SystemRandom::new();
    let sign = time_sync("RS256 sign (aws-lc-rs, parsed key)", iterations, || {
        pair.sign(&RSA_PKCS1_SHA256, &rng, message.as_bytes(), &mut signature).map_err(|_| anyhow::anyhow!("signing"))
    })?;
    let token = format!("{message}.{}", B64.encode(&signature));
    let public = pair.public_key();
    let key = DecodingKey::from_rsa_raw_components(
        public.modulus().big_endian_without_leading_zero(),
        public.exponent().big_endian_without_leading_zero(),
    );
    let mut validation = Validation::new(JwtAlgorithm::RS256);
    validation.set_issuer(&["limits"]);
    let verify = time_sync("RS256 verify (jsonwebtoken)", iterations, || {
        jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).map(drop).map_err(Into::into)
    })?;

    // Argon2id at the OWASP parameters the server uses by default.
    let params = Params::new(19_456, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    // One hash in `memory`, with a fresh salt.
    let hash_in = |memory: &mut [Block]| {
        let (mut salt, mut out) = ([0; 16], [0; 32]);
        OsRng.fill_bytes(&mut salt);
        argon2
            .hash_password_into_with_memory(b"correct horse battery staple", &salt, &mut out, memory)
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let blocks = argon2.params().block_count();
    let mut memory = vec![Block::default(); blocks];
    let hash = time_sync("Argon2id hash (m=19456 KiB, t=2, p=1)", (iterations / 20).max(20), || hash_in(&mut memory))?;

    // The same, one hash per core at once: Argon2 is memory-hard, so parallel hashes share memory bandwidth and
    // each takes longer than alone. This, not `hash`, bounds sign-ins per second on the whole machine.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let rounds = (iterations / 40).max(10);
    let per_core: Vec<Vec<Duration>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| {
                    let mut memory = vec![Block::default(); blocks];
                    (0..rounds)
                        .map(|_| {
                            let started = Instant::now();
                            let _ = hash_in(&mut memory);
                            started.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().filter_map(|w| w.join().ok()).collect()
    });
    let parallel_hash =
        Summary { name: "Argon2id hash, one per core at once", samples: per_core.into_iter().flatten().collect() };

    let redis_url = std::env::var("LIMITS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut redis = redis::Client::open(redis_url)?.get_multiplexed_async_connection().await?;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        redis::cmd("PING").query_async::<()>(&mut redis).await?;
        samples.push(started.elapsed());
    }
    let redis_rtt = Summary { name: "Redis round trip (PING)", samples };

    let database_url = std::env::var("LIMITS_DATABASE_URL")
        .context("LIMITS_DATABASE_URL: a scratch Postgres database (a table limits_probe is created and dropped)")?;
    let (client, connection) = tokio_postgres::connect(&database_url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE IF EXISTS limits_probe; \
             CREATE TABLE limits_probe (id uuid PRIMARY KEY, counter bigint NOT NULL); \
             INSERT INTO limits_probe SELECT gen_random_uuid(), 0 FROM generate_series(1, 10000);",
        )
        .await?;
    let id: uuid::Uuid = client.query_one("SELECT id FROM limits_probe LIMIT 1", &[]).await?.get(0);
    let read = client.prepare("SELECT counter FROM limits_probe WHERE id = $1").await?;
    let update = client.prepare("UPDATE limits_probe SET counter = counter + 1 WHERE id = $1").await?;
    let mut reads = Vec::with_capacity(iterations);
    let mut updates = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        client.query_one(&read, &[&id]).await?;
        reads.push(started.elapsed());
        let started = Instant::now();
        client.execute(&update, &[&id]).await?;
        updates.push(started.elapsed());
    }
    client.batch_execute("DROP TABLE limits_probe").await?;

    println!("Physical limits on this machine (single-threaded, one core each):");
    for summary in [
        sign,
        verify,
        hash,
        parallel_hash,
        redis_rtt,
        Summary { name: "Postgres primary-key read", samples: reads },
        Summary { name: "Postgres single-row update (commit)", samples: updates },
    ] {
        summary.print();
    }
    Ok(())
}
