//! Password hashing: Argon2id off the async threads, behind a bound on concurrent hashes.
//!
//! Each hash takes ~19 MiB and ~14 ms of one core, so an unbounded number of them would exhaust memory
//! and starve everything else; callers queue for a permit instead. An unknown account is verified
//! against a dummy hash of the same cost, so timing does not tell whether an email exists.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Argon2Params;
use crate::domain::Password;
use crate::error::ApiError;

/// The outcome of checking a password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Wrong password, or no account.
    No,
    /// Right password; `rehash` is a new hash when the stored one used other parameters.
    Yes {
        /// The hash to store instead, if the parameters changed.
        rehash: Option<String>,
    },
}

/// Hashes and verifies passwords with bounded concurrency.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .field("available_permits", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// A hasher with these costs, running at most `concurrency` hashes at once.
    ///
    /// Computes the dummy hash once, on the calling thread (start-up).
    ///
    /// # Errors
    /// When the parameters are rejected by Argon2.
    pub fn new(params: Argon2Params, concurrency: usize) -> anyhow::Result<Self> {
        let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let dummy = hash_blocking(&params, "identsphere dummy password: never matches anything")?;
        Ok(Self { params, permits: Arc::new(Semaphore::new(concurrency.max(1))), dummy: dummy.into() })
    }

    /// Hashes a new password.
    ///
    /// # Errors
    /// `ApiError::Internal` if hashing fails (it does not for valid parameters).
    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run("hash", move || hash_blocking(&params, password.expose())).await
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no account, so both
    /// cost the same.
    ///
    /// # Errors
    /// `ApiError::Internal` if the worker fails.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verified, ApiError> {
        let params = self.params.clone();
        let dummy = Arc::clone(&self.dummy);
        self.run("verify", move || {
            let Some(stored) = stored else {
                verify_blocking(&dummy, &password);
                return Ok(Verified::No);
            };
            if !verify_blocking(&stored, &password) {
                return Ok(Verified::No);
            }
            let rehash = if uses_params(&stored, &params) { None } else { Some(hash_blocking(&params, &password)?) };
            Ok(Verified::Yes { rehash })
        })
        .await
    }

    /// Runs `work` on the blocking pool once a permit is free; `operation` labels its time.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        metrics::gauge!("identsphere_password_queue_depth").increment(1.0);
        let permit = self.permits.acquire().await;
        metrics::gauge!("identsphere_password_queue_depth").decrement(1.0);
        let _permit = permit.map_err(|e| ApiError::Internal(e.into()))?;
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let result = work();
            metrics::histogram!("identsphere_password_hash_seconds", "operation" => operation)
                .record(started.elapsed().as_secs_f64());
            result
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(ApiError::Internal)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2(params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))
        .context("hashing a password")?;
    Ok(hash.to_string())
}

/// Verifies with the parameters recorded in `stored`; an unparsable hash never matches.
fn verify_blocking(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

fn uses_params(stored: &str, params: &Params) -> bool {
    PasswordHash::new(stored).is_ok_and(|hash| {
        hash.algorithm == argon2::ARGON2ID_IDENT
            && Params::try_from(&hash).is_ok_and(|p| {
                (p.m_cost(), p.t_cost(), p.p_cost()) == (params.m_cost(), params.t_cost(), params.p_cost())
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: Argon2Params = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };

    #[tokio::test]
    async fn verifies_the_right_password_and_asks_for_a_rehash_when_costs_change() {
        let cheap = PasswordHasher::new(CHEAP, 2).unwrap();
        let hash = cheap.hash(Password::parse("tr0ub4dor&3-zebra".into()).unwrap()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            cheap.verify("tr0ub4dor&3-zebra".into(), Some(hash.clone())).await.unwrap(),
            Verified::Yes { rehash: None }
        );
        assert_eq!(cheap.verify("tr0ub4dor&3-zebrA".into(), Some(hash.clone())).await.unwrap(), Verified::No);
        assert_eq!(cheap.verify("anything".into(), None).await.unwrap(), Verified::No);
        assert_eq!(cheap.verify("anything".into(), Some("not a hash".into())).await.unwrap(), Verified::No);

        let stronger = PasswordHasher::new(Argon2Params { iterations: 2, ..CHEAP }, 1).unwrap();
        let Verified::Yes { rehash: Some(new) } =
            stronger.verify("tr0ub4dor&3-zebra".into(), Some(hash)).await.unwrap()
        else {
            panic!("expected a rehash")
        };
        assert!(new.starts_with("$argon2id$v=19$m=1024,t=2,p=1$"));
    }
}
