//! Password hashing: Argon2id off the async threads, on a few threads of its own at a lower CPU
//! priority.
//!
//! Each hash takes ~19 MiB and ~14 ms of one core, so an unbounded number of them would exhaust memory
//! and starve everything else: a fixed number of hashing threads take the work in turn, and callers
//! queue. Those threads run at nice 10, so that a login storm, which would keep every core hashing,
//! cannot delay the requests that need no hash (token checks, session reads, refreshes): the scheduler
//! gives them the cores first, and the hashes every cycle those leave. An unknown account is verified
//! against a dummy hash of the same cost, so timing does not tell whether an email exists.
//!
//! A hash imported from another system (`imported`) is checked with its own scheme on the same threads and
//! replaced by our Argon2id on the first success. Every check's answer waits out at least the time one
//! Argon2 hash took at start-up (and `IDENTSPHERE_PASSWORD_CHECK_MIN_MS`): a cheap legacy hash would otherwise
//! answer a wrong password sooner than an Argon2 one, telling which accounts were migrated and not yet used.
//!
//! Each hashing thread keeps its Argon2 memory from one hash to the next. Allocated per hash, the
//! 19 MiB buffers were kept by the allocator several times over (the server's resident size went from
//! 14 MiB to 151 MiB after eight logins), and every hash paid the page faults of fresh memory.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use thread_priority::{ThreadPriority, ThreadPriorityValue};
use tokio::sync::oneshot;

use super::imported;
use super::keys::Sealer;
use crate::config::Argon2Params;
use crate::error::ApiError;
use crate::model::Password;

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
    /// The hashing threads' queue; they stop once every clone of the hasher is gone.
    jobs: mpsc::Sender<Job>,
    dummy: Arc<str>,
    /// Opens the Firebase signer keys of imported hashes.
    sealer: Sealer,
    /// The least time a check answers in: one Argon2 hash's, or the configured floor if longer.
    answer_after: std::time::Duration,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("params", &self.params).finish_non_exhaustive()
    }
}

/// One hash to compute in a hashing thread's memory, with where its answer goes.
type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A hashing thread's Argon2 memory, reused by every hash it computes.
#[derive(Default)]
struct Memory(Vec<Block>);

impl Memory {
    /// `argon2` of `password` and `salt` into `out`, in this memory (grown to the parameters' size once).
    fn hash_into(&mut self, argon2: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
        let blocks = argon2.params().block_count();
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut self.0)
    }

    /// Gives back what a bigger imported hash grew this memory to beyond `params`' size: the thread keeps only
    /// what our own hashes take.
    fn fit(&mut self, params: &Params) {
        if self.0.len() > params.block_count() {
            self.0.truncate(params.block_count());
            self.0.shrink_to_fit();
        }
    }

    /// The `length`-byte output of `argon2` for `password` and the encoded `salt`, as a PHC string holds it.
    fn output(
        &mut self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: Salt<'_>,
        length: usize,
    ) -> argon2::password_hash::Result<Output> {
        let mut salt_bytes = [0; 64];
        let salt = salt.decode_b64(&mut salt_bytes)?;
        Output::init_with(length, |out| Ok(self.hash_into(argon2, password, salt, out)?))
    }
}

/// The hashing threads' priority: `Crossplatform(22)` of 0..=99 is nice 10 on Linux (the crate maps the
/// range onto nice 19..=-20), so a hashing thread gets about a tenth of a core that normal-priority work
/// also wants, and all of an idle one.
const HASHING_PRIORITY: u8 = 22;

/// Starts `threads` hashing threads taking jobs from one queue.
fn hashing_threads(threads: usize) -> anyhow::Result<mpsc::Sender<Job>> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    for index in 0..threads.max(1) {
        let queue = Arc::clone(&queue);
        std::thread::Builder::new()
            .name(format!("argon2-{index}"))
            .spawn(move || {
                let mut memory = Memory::default();
                let lowered =
                    ThreadPriorityValue::try_from(HASHING_PRIORITY).map_err(|e| e.to_string()).and_then(|value| {
                        thread_priority::set_current_thread_priority(ThreadPriority::Crossplatform(value))
                            .map_err(|e| format!("{e:?}"))
                    });
                if let Err(err) = lowered {
                    // Hashing still works at normal priority; only the storm isolation is lost.
                    tracing::warn!(error = %err, "could not lower the hashing thread's priority");
                }
                loop {
                    // The lock is held only while waiting for the next job, never while hashing.
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A panicking hash drops its answer's sender (the caller sees an internal error);
                    // the thread stays to take the next job.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                }
            })
            .context("starting a hashing thread")?;
    }
    Ok(jobs)
}

impl PasswordHasher {
    /// A hasher with these costs, running at most `concurrency` hashes at once.
    ///
    /// Computes the dummy hash once, on the calling thread (start-up), and takes its time as the least a
    /// check answers in, unless `floor` is longer.
    ///
    /// # Errors
    /// When the parameters are rejected by Argon2.
    pub fn new(
        params: Argon2Params,
        concurrency: usize,
        sealer: Sealer,
        floor: std::time::Duration,
    ) -> anyhow::Result<Self> {
        let params = Params::new(params.memory_kib, params.iterations, params.parallelism, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let started = std::time::Instant::now();
        let dummy =
            hash_blocking(&params, "identsphere dummy password: never matches anything", &mut Memory::default())?;
        let answer_after = started.elapsed().max(floor);
        Ok(Self { params, jobs: hashing_threads(concurrency)?, dummy: dummy.into(), sealer, answer_after })
    }

    /// Hashes a new password.
    ///
    /// # Errors
    /// `ApiError::Internal` if hashing fails (it does not for valid parameters).
    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        let params = self.params.clone();
        self.run("hash", move |memory| hash_blocking(&params, password.expose(), memory)).await
    }

    /// Checks `password` against `stored` (ours, or an imported format), or against the dummy hash when
    /// there is no account, so both cost the same; answers no sooner than one Argon2 hash takes.
    ///
    /// # Errors
    /// `ApiError::Internal` if the worker fails.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verified, ApiError> {
        let params = self.params.clone();
        let dummy = Arc::clone(&self.dummy);
        let sealer = self.sealer.clone();
        let (verified, took) = self
            .run("verify", move |memory| {
                let started = std::time::Instant::now();
                let verified = match stored {
                    None => {
                        verify_blocking(&dummy, &password, memory);
                        Verified::No
                    }
                    Some(stored) => {
                        let right = if imported::is_argon2(&stored) {
                            let right = verify_blocking(&stored, &password, memory);
                            memory.fit(&params);
                            right
                        } else {
                            imported::verify(&stored, password.as_bytes(), &sealer)
                        };
                        match right {
                            false => Verified::No,
                            true if uses_params(&stored, &params) => Verified::Yes { rehash: None },
                            true => Verified::Yes { rehash: Some(hash_blocking(&params, &password, memory)?) },
                        }
                    }
                };
                Ok((verified, started.elapsed()))
            })
            .await?;
        // The wait is here rather than on the hashing thread, which goes on to the next check.
        tokio::time::sleep(self.answer_after.saturating_sub(took)).await;
        Ok(verified)
    }

    /// Runs `work` on a hashing thread when one is free; `operation` labels its time.
    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce(&mut Memory) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (answer, answered) = oneshot::channel();
        metrics::gauge!("identsphere_password_queue_depth").increment(1.0);
        let job: Job = Box::new(move |memory| {
            metrics::gauge!("identsphere_password_queue_depth").decrement(1.0);
            let started = std::time::Instant::now();
            let result = work(memory);
            metrics::histogram!("identsphere_password_hash_seconds", "operation" => operation)
                .record(started.elapsed().as_secs_f64());
            // The caller may have gone (a dropped request): nobody to tell.
            let _ = answer.send(result);
        });
        self.jobs.send(job).map_err(|_| ApiError::Internal(anyhow::anyhow!("the hashing threads stopped")))?;
        answered
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("a hashing thread dropped its job")))?
            .map_err(ApiError::Internal)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// A new PHC string for `password` with a random salt: what `argon2`'s `PasswordHasher` writes, computed in
/// `memory`.
fn hash_blocking(params: &Params, password: &str, memory: &mut Memory) -> anyhow::Result<String> {
    let phc = |e: argon2::password_hash::Error| anyhow::anyhow!("argon2 hash: {e}");
    let salt = SaltString::generate(&mut OsRng);
    let length = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = memory.output(&argon2(params), password.as_bytes(), salt.as_salt(), length).map_err(phc)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(phc)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Verifies with the algorithm, version and parameters recorded in `stored`, as `argon2`'s
/// `PasswordVerifier` does, computed in `memory`; an unparsable hash never matches.
fn verify_blocking(stored: &str, password: &str, memory: &mut Memory) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else { return false };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else { return false };
    let version = hash.version.map_or(Ok(Version::default()), Version::try_from);
    let (Ok(algorithm), Ok(version), Ok(params)) =
        (Algorithm::try_from(hash.algorithm), version, Params::try_from(&hash))
    else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params);
    // `Output`'s equality is constant-time.
    memory.output(&argon2, password.as_bytes(), salt, expected.len()).is_ok_and(|computed| computed == expected)
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
    use std::time::Duration;

    use super::*;

    const CHEAP: Argon2Params = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };

    fn sealer() -> Sealer {
        Sealer::new(&crate::config::KeyEncryptionKey([7; 32])).unwrap()
    }

    #[tokio::test]
    async fn verifies_the_right_password_and_asks_for_a_rehash_when_costs_change() {
        let cheap = PasswordHasher::new(CHEAP, 2, sealer(), Duration::ZERO).unwrap();
        let hash = cheap.hash(Password::parse("tr0ub4dor&3-zebra".into()).unwrap()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            cheap.verify("tr0ub4dor&3-zebra".into(), Some(hash.clone())).await.unwrap(),
            Verified::Yes { rehash: None }
        );
        assert_eq!(cheap.verify("tr0ub4dor&3-zebrA".into(), Some(hash.clone())).await.unwrap(), Verified::No);
        assert_eq!(cheap.verify("anything".into(), None).await.unwrap(), Verified::No);
        assert_eq!(cheap.verify("anything".into(), Some("not a hash".into())).await.unwrap(), Verified::No);

        let stronger =
            PasswordHasher::new(Argon2Params { iterations: 2, ..CHEAP }, 1, sealer(), Duration::ZERO).unwrap();
        let Verified::Yes { rehash: Some(new) } =
            stronger.verify("tr0ub4dor&3-zebra".into(), Some(hash)).await.unwrap()
        else {
            panic!("expected a rehash")
        };
        assert!(new.starts_with("$argon2id$v=19$m=1024,t=2,p=1$"));
    }

    #[tokio::test]
    async fn an_imported_hash_is_replaced_on_its_first_success_and_no_check_answers_sooner_than_the_floor() {
        let floor = Duration::from_millis(150);
        let hasher = PasswordHasher::new(CHEAP, 2, sealer(), floor).unwrap();
        // bcrypt (cost 4, made by Python's bcrypt) of "correct horse battery staple".
        let bcrypt = "$2a$04$rV/DcJp7fK117W1/YUnVeOdhpLoNSDCrRUvPURbwiHHxtLiF3q2q6".to_owned();
        let Verified::Yes { rehash: Some(new) } =
            hasher.verify("correct horse battery staple".into(), Some(bcrypt.clone())).await.unwrap()
        else {
            panic!("expected a rehash of an imported hash")
        };
        assert!(new.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{new}");
        assert_eq!(
            hasher.verify("correct horse battery staple".into(), Some(new)).await.unwrap(),
            Verified::Yes { rehash: None }
        );
        // A wrong password against the cheap hash, against a weak one, and no account at all: each takes at
        // least the floor (a bcrypt of cost 4 alone takes about a millisecond).
        for stored in [Some(bcrypt), Some("9cc2ae8a1ba7a93da39b46fc1019c481".to_owned()), None] {
            let started = std::time::Instant::now();
            assert_eq!(hasher.verify("wrong".into(), stored.clone()).await.unwrap(), Verified::No);
            assert!(started.elapsed() >= floor, "{stored:?} answered in {:?}", started.elapsed());
        }
    }

    #[test]
    fn hashes_are_the_argon2_crates_own_both_ways_and_memory_reuse_changes_nothing() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(CHEAP.memory_kib, CHEAP.iterations, CHEAP.parallelism, None).unwrap();
        let mut memory = Memory::default();
        let ours = hash_blocking(&params, "correct horse", &mut memory).unwrap();
        let theirs =
            argon2(&params).hash_password(b"correct horse", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert!(argon2(&params).verify_password(b"correct horse", &PasswordHash::new(&ours).unwrap()).is_ok());
        assert!(argon2(&params).verify_password(b"correct horsE", &PasswordHash::new(&ours).unwrap()).is_err());
        // The same memory, used over and over and grown for a bigger hash, gives the same answers.
        let bigger = argon2(&Params::new(2 * CHEAP.memory_kib, 1, 1, None).unwrap())
            .hash_password(b"correct horse", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        for _ in 0..2 {
            assert!(verify_blocking(&theirs, "correct horse", &mut memory));
            assert!(!verify_blocking(&theirs, "correct horsE", &mut memory));
            assert!(verify_blocking(&ours, "correct horse", &mut memory));
            assert!(verify_blocking(&bigger, "correct horse", &mut memory));
            assert!(!verify_blocking(&bigger, "Correct horse", &mut memory));
        }
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x10, params.clone())
            .hash_password(b"correct horse", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(argon2i.starts_with("$argon2i$v=16$"));
        assert!(verify_blocking(&argon2i, "correct horse", &mut memory), "the stored algorithm and version are used");
        assert!(!verify_blocking("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ", "correct horse", &mut memory));
    }

    /// The name and nice value of the thread that runs this (Linux: `/proc/thread-self/stat`, whose
    /// 19th field is the nice value; the 2nd, the name, is in parentheses and may hold spaces).
    #[cfg(target_os = "linux")]
    fn this_thread() -> anyhow::Result<(String, i64)> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
        let (head, rest) = stat.rsplit_once(')').context("no name in stat")?;
        let name = head.split_once('(').context("no name in stat")?.1.to_owned();
        let nice = rest.split_whitespace().nth(16).context("no nice in stat")?.parse()?;
        Ok((name, nice))
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_on_their_own_threads_at_a_lower_priority() {
        let hasher = PasswordHasher::new(CHEAP, 2, sealer(), Duration::ZERO).unwrap();
        let (name, nice) = hasher.run("test", |_| this_thread()).await.unwrap();
        assert!(name.starts_with("argon2-"), "{name}");
        assert_eq!(nice, 10, "the hashing threads yield to request handling");
        let (_, here) = this_thread().unwrap();
        assert_eq!(here, 0, "the caller's priority is untouched");
    }
}
