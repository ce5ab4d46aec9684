//! The Redis backend: the access-token denylist (by `jti` and by revoked `sid`).
//!
//! Every key carries the configured prefix and expires on its own (`PXAT`) when the last token it
//! covers would have, so the denylist never grows beyond the tokens still alive. Beside it, the versions
//! of users, organizations and families that cached session views depend on (`version:<kind>:<id>`, a
//! random number set at each change, kept for `VERSION_LIFETIME`), read in the same round trip.
//!
//! Redis may lose everything (restarted without persistence). The revocations are durable in Postgres, so a
//! generation marker (`denylist:generation`) says the denylist and the feed hold them: it is read with every
//! check and every feed page, and where it is missing the replica rebuilds both from the durable record
//! (`RevocationLog`) before it answers, failing closed (`Unavailable`) if it cannot. Its value, random at
//! each rebuild, is mixed into the versions, so that views cached before a loss are not served after it. The marker is set only
//! by a rebuild that saw no loss while it ran, so a restart in the middle cannot leave it over an empty
//! denylist.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use identsphere_actors::{
    CLOCK_SKEW_ALLOWANCE, Changed, Check, Denylist, Stamp, StoreError, TokenRef, VERSION_LIFETIME,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CeremonyStore, Probe, RateLimiter, RevocationLog};
use crate::config::CaCertificates;
use crate::model::Rate;
use identsphere_actors::{Revocation, RevocationPage, Revoked};

/// Appends revocations to the feed stream and trims what no token can need any more. KEYS[1]: the
/// stream; ARGV[1]: how long any entry can matter (ms), the same for every append; then triples kind, id,
/// expiry (Unix ms). Trimming uses Redis' own clock, like the stream ids.
const FEED_APPEND: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for i = 2, #ARGV, 3 do
  redis.call('XADD', KEYS[1], '*', 'kind', ARGV[i], 'id', ARGV[i + 1], 'exp', ARGV[i + 2])
end
redis.call('XTRIM', KEYS[1], 'MINID', '~', now - tonumber(ARGV[1]))
return 0
";

/// GCRA in one atomic step. KEYS[1]: the counter; ARGV: now (ms), emission interval (ms), tolerance
/// (ms), consume (1/0). Returns 0 when allowed, else the milliseconds to wait.
const GCRA: &str = r"
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local wait = tat - now - tonumber(ARGV[3])
if wait > 0 then return wait end
if ARGV[4] == '1' then
  local next = tat + tonumber(ARGV[2])
  redis.call('SET', KEYS[1], next, 'PX', next - now)
end
return 0
";

/// Ends a rebuild: sets the generation marker (KEYS[2]) only if the rebuild's own key (KEYS[1], set when
/// it began) is still there, i.e. Redis lost nothing while the rebuild wrote. Returns 1 when it did.
const REBUILD_FINISH: &str = r"
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], ARGV[1])
  return 1
end
return 0
";

/// How many revocations one round trip of a rebuild writes.
const REBUILD_BATCH: usize = 500;

/// Where the denylist is rebuilt from, and for how long a revocation matters.
#[derive(Clone)]
struct Durable {
    /// The durable record of revoked families.
    log: Arc<dyn RevocationLog>,
    /// The longest access-token lifetime: a family revoked earlier than that has no live token left.
    access_ttl: time::Duration,
    /// One rebuild at a time in this process; the others wait for it and find the marker.
    rebuilding: Arc<tokio::sync::Mutex<()>>,
}

/// The Redis backend. Cheap to clone: one multiplexed connection, re-established on failure.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
    /// Loaded once, run by hash (`EVALSHA`, reloaded by the client if Redis lost it).
    gcra: redis::Script,
    /// The feed's append-and-trim script.
    feed_append: redis::Script,
    /// How long after its append a feed entry may still be needed, in milliseconds: the longest lifetime of
    /// any entry, never one append's own. Trimming by the entry just appended would drop older entries
    /// that live longer (a family revoked for 15 minutes, trimmed by a token expiring in 1 s), and a
    /// resource server reading the feed from there would accept their tokens.
    feed_retention_ms: i64,
    /// Set with Postgres: what the denylist is rebuilt from after a loss. Without it (tests of the feed
    /// alone), a loss is not looked for.
    durable: Option<Durable>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn redis_error(err: &redis::RedisError) -> StoreError {
    let err = if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() || err.is_timeout() {
        StoreError::Unavailable(err.to_string())
    } else {
        StoreError::Internal(err.to_string())
    };
    super::counted("redis", err)
}

impl RedisStore {
    /// Connects to `url`, a `rediss://` one checked against `ca` if given, else the system's CAs; every key
    /// gets `prefix`. Feed entries are kept `feed_retention` after they are appended: at least the longest
    /// lifetime of any token an entry can cover.
    ///
    /// # Errors
    /// When the URL is invalid, Redis does not answer or its certificate does not verify.
    pub async fn connect(
        url: &str,
        ca: Option<&CaCertificates>,
        prefix: String,
        feed_retention: time::Duration,
    ) -> anyhow::Result<Self> {
        let client = match ca {
            Some(ca) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates { client_tls: None, root_cert: Some(ca.pem.clone()) },
            )?,
            None => redis::Client::open(url)?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        // redis-rs' message already ends with its cause's, which anyhow would print a second time.
        let connection =
            ConnectionManager::new_with_config(client, config).await.map_err(|err| anyhow::anyhow!("{err}"))?;
        Ok(Self {
            connection,
            prefix,
            gcra: redis::Script::new(GCRA),
            feed_append: redis::Script::new(FEED_APPEND),
            feed_retention_ms: i64::try_from(feed_retention.whole_milliseconds()).unwrap_or(i64::MAX).max(0),
            durable: None,
        })
    }

    /// Rebuilds the denylist and the feed from `log` whenever Redis is found to have lost them: revocations
    /// from the last `access_ttl` (the longest access-token lifetime) are denied again.
    #[must_use]
    pub fn rebuilt_from(mut self, log: Arc<dyn RevocationLog>, access_ttl: time::Duration) -> Self {
        self.durable = Some(Durable { log, access_ttl, rebuilding: Arc::new(tokio::sync::Mutex::new(())) });
        self
    }

    /// One denylist check: the generation marker (first, so that a loss after it shows next time), and
    /// what the denylist says. The stamp mixes the generation into each version: a version lost with Redis
    /// reads as absent again, as it did before the change that set it, and a view cached back then must
    /// not match it. Each rebuild draws a new generation, so no stamp from before a loss recurs after it.
    async fn check_once(&self, token: TokenRef) -> Result<(bool, Check), StoreError> {
        let mut connection = self.connection.clone();
        let (generation, found, versions): (Option<u64>, u32, [Option<u64>; 3]) = redis::pipe()
            .cmd("GET")
            .arg(self.generation_key())
            .cmd("EXISTS")
            .arg(self.key(Revoked::Token.as_str(), token.jti))
            .arg(self.key(Revoked::Family.as_str(), token.sid))
            .cmd("MGET")
            .arg(self.version_key(Changed::User(token.user)))
            .arg(self.version_key(Changed::Organization(token.org)))
            .arg(self.version_key(Changed::Family(token.sid)))
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        let mixed = generation.unwrap_or_default();
        let stamp = Stamp(versions.map(|version| version.unwrap_or_default() ^ mixed));
        Ok((generation.is_some(), Check { denied: found > 0, stamp }))
    }

    fn generation_key(&self) -> String {
        format!("{}denylist:generation", self.prefix)
    }

    /// Makes sure the denylist holds every revocation that still matters: when the generation marker is
    /// missing (Redis lost its data, or this is its first start), rebuilds it. At start-up and before a check
    /// or a feed page that found the marker missing.
    ///
    /// # Errors
    /// `Unavailable` when Redis or the durable record cannot be read, or Redis lost data again meanwhile.
    pub async fn restore_if_lost(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        let Some(durable) = &self.durable else { return Ok(()) };
        let _one_at_a_time = durable.rebuilding.lock().await;
        let mut connection = self.connection.clone();
        let present: bool = redis::cmd("EXISTS")
            .arg(self.generation_key())
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        if present {
            return Ok(());
        }
        let rebuild = format!("{}denylist:rebuild:{}", self.prefix, Uuid::new_v4().simple());
        redis::cmd("SET")
            .arg(&rebuild)
            .arg(1)
            .arg("EX")
            .arg(300)
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        let revoked = durable.log.revoked_since(now - durable.access_ttl - CLOCK_SKEW_ALLOWANCE).await?;
        for batch in revoked.chunks(REBUILD_BATCH) {
            let mut pipe = redis::pipe();
            for (sid, revoked_at) in batch {
                let until_ms = millis(*revoked_at + durable.access_ttl + CLOCK_SKEW_ALLOWANCE);
                pipe.cmd("SET").arg(self.key(Revoked::Family.as_str(), *sid)).arg(1).arg("PXAT").arg(until_ms).ignore();
                pipe.cmd("XADD")
                    .arg(self.feed_key())
                    .arg("*")
                    .arg("kind")
                    .arg(Revoked::Family.as_str())
                    .arg("id")
                    .arg(sid.to_string())
                    .arg("exp")
                    .arg(until_ms)
                    .ignore();
            }
            pipe.query_async::<()>(&mut connection).await.map_err(|e| redis_error(&e))?;
        }
        let finished: i32 = redis::Script::new(REBUILD_FINISH)
            .key(&rebuild)
            .key(self.generation_key())
            .arg(Uuid::new_v4().as_u64_pair().0)
            .invoke_async(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        if finished != 1 {
            return Err(super::counted(
                "redis",
                StoreError::Unavailable("Redis lost data while the denylist was rebuilt".to_owned()),
            ));
        }
        metrics::counter!("identsphere_store_denylist_rebuilds_total").increment(1);
        tracing::warn!(revocations = revoked.len(), "Redis had lost the denylist: rebuilt it from Postgres");
        Ok(())
    }

    fn key(&self, kind: &str, id: Uuid) -> String {
        format!("{}deny:{kind}:{id}", self.prefix)
    }

    /// Denies `ids` until `until` and appends them to the revocation feed.
    async fn deny(&self, kind: Revoked, ids: &[Uuid], until: OffsetDateTime) -> Result<(), StoreError> {
        let until_ms = u64::try_from(until.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let name = kind.as_str();
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("SET").arg(self.key(name, *id)).arg(1).arg("PXAT").arg(until_ms).ignore();
        }
        let mut connection = self.connection.clone();
        pipe.query_async::<()>(&mut connection).await.map_err(|e| redis_error(&e))?;
        let mut append = self.feed_append.key(self.feed_key());
        append.arg(self.feed_retention_ms);
        for id in ids {
            append.arg(name).arg(id.to_string()).arg(until_ms);
        }
        append.invoke_async::<()>(&mut connection).await.map_err(|e| redis_error(&e))
    }

    fn version_key(&self, change: Changed) -> String {
        let (kind, id) = match change {
            Changed::User(id) => ("user", id),
            Changed::Organization(id) => ("org", id),
            Changed::Family(id) => ("family", id),
        };
        format!("{}version:{kind}:{id}", self.prefix)
    }

    fn feed_key(&self) -> String {
        format!("{}revocations", self.prefix)
    }
}

/// One stream entry of the feed.
fn feed_entry(id: &str, fields: &[String]) -> Result<Revocation, StoreError> {
    let field = |name: &str| fields.chunks(2).find(|kv| kv.first().is_some_and(|k| k == name)).and_then(|kv| kv.get(1));
    let (Some(kind), Some(subject), Some(exp)) = (field("kind"), field("id"), field("exp")) else {
        return Err(StoreError::Internal(format!("malformed feed entry {id}")));
    };
    let exp_ms: i128 = exp.parse().map_err(|_| StoreError::Internal(format!("feed entry {id}: exp")))?;
    Ok(Revocation {
        kind: Revoked::parse(kind).ok_or_else(|| StoreError::Internal(format!("feed entry {id}: kind")))?,
        id: subject.parse().map_err(|_| StoreError::Internal(format!("feed entry {id}: id")))?,
        expires_at: OffsetDateTime::from_unix_timestamp_nanos(exp_ms * 1_000_000)
            .map_err(|e| StoreError::Internal(e.to_string()))?,
    })
}

#[async_trait]
impl Denylist for RedisStore {
    // Redis expires the keys itself (`PXAT`): `now` is not needed.
    async fn deny_families(
        &self,
        sids: &[Uuid],
        until: OffsetDateTime,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if sids.is_empty() {
            return Ok(());
        }
        self.deny(Revoked::Family, sids, until).await
    }

    async fn deny_token(&self, jti: Uuid, until: OffsetDateTime, _now: OffsetDateTime) -> Result<(), StoreError> {
        self.deny(Revoked::Token, &[jti], until).await
    }

    async fn revocations_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<RevocationPage, StoreError> {
        // A page read from a Redis that lost the feed would be empty or short: rebuild it first.
        self.restore_if_lost(now).await?;
        let now_ms = i128::from(now.unix_timestamp()) * 1000;
        let mut connection = self.connection.clone();
        // A fresh read starts where entries can still be live: each expires within the access lifetime and the
        // clock-skew allowance of its append, and stream ids are Redis' milliseconds, so Redis' clock says where
        // (with another allowance). Older entries stay for readers with a cursor.
        let first = match (cursor, &self.durable) {
            (Some(cursor), _) => cursor.to_owned(),
            (None, None) => "0-0".to_owned(),
            (None, Some(durable)) => {
                let (seconds, _): (i64, i64) =
                    redis::cmd("TIME").query_async(&mut connection).await.map_err(|e| redis_error(&e))?;
                let horizon = durable.access_ttl + CLOCK_SKEW_ALLOWANCE + CLOCK_SKEW_ALLOWANCE;
                format!("{}-0", (seconds - horizon.whole_seconds()).max(0) * 1000)
            }
        };
        let mut page = RevocationPage { revocations: Vec::new(), cursor: first };
        // Expired entries are skipped, reading on, until the page is full or the stream ends: a page is short only
        // at the end of the feed, where every SDK stops (the fault harness's 30-minute run found pages of expired
        // entries coming back empty, and the live entries after them never read).
        loop {
            let start = format!("({}", page.cursor);
            let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
                .arg(self.feed_key())
                .arg(start)
                .arg("+")
                .arg("COUNT")
                .arg(limit)
                .query_async(&mut connection)
                .await
                .map_err(|e| redis_error(&e))?;
            let read = entries.len();
            for (id, fields) in entries {
                let revocation = feed_entry(&id, &fields)?;
                page.cursor = id;
                if revocation.expires_at.unix_timestamp_nanos() / 1_000_000 > now_ms {
                    page.revocations.push(revocation);
                    if page.revocations.len() == limit {
                        return Ok(page);
                    }
                }
            }
            if read < limit {
                return Ok(page);
            }
        }
    }

    async fn check(&self, token: TokenRef, now: OffsetDateTime) -> Result<Check, StoreError> {
        // Twice at most: a rebuild found the marker missing, then a second loss is an outage.
        for _ in 0..2 {
            let (generation, check) = self.check_once(token).await?;
            if generation || self.durable.is_none() {
                return Ok(check);
            }
            self.restore_if_lost(now).await?;
        }
        Err(super::counted("redis", StoreError::Unavailable("Redis keeps losing the denylist".to_owned())))
    }

    async fn changed(&self, changes: &[Changed]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for change in changes {
            // Random, not a counter: a version that expired and is set again must not repeat one a cache holds.
            let version = Uuid::new_v4().as_u64_pair().0.max(1);
            let ttl = VERSION_LIFETIME.as_secs();
            pipe.cmd("SET").arg(self.version_key(*change)).arg(version).arg("EX").arg(ttl).ignore();
        }
        let mut connection = self.connection.clone();
        pipe.query_async::<()>(&mut connection).await.map_err(|e| redis_error(&e))
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    async fn check(
        &self,
        key: &str,
        rate: Rate,
        consume: bool,
        now: OffsetDateTime,
    ) -> Result<Option<time::Duration>, StoreError> {
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let mut connection = self.connection.clone();
        let wait: i64 = self
            .gcra
            .key(format!("{}rl:{key}", self.prefix))
            .arg(now_ms)
            .arg(rate.emission_ms())
            .arg(rate.tolerance_ms())
            .arg(i32::from(consume))
            .invoke_async(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        Ok((wait > 0).then(|| time::Duration::milliseconds(wait)))
    }
}

/// A ceremony is kept as its expiry (milliseconds, big-endian) then its bytes: Redis expires the key by its
/// own clock, the expiry is checked against the service's when the ceremony is taken.
#[async_trait]
impl CeremonyStore for RedisStore {
    async fn put_ceremony(
        &self,
        id: Uuid,
        ceremony: &[u8],
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let ttl_ms = u64::try_from((expires_at - now).whole_milliseconds()).unwrap_or(0).max(1);
        let mut value = millis(expires_at).to_be_bytes().to_vec();
        value.extend_from_slice(ceremony);
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(format!("{}ceremony:{id}", self.prefix))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| redis_error(&e))
    }

    async fn take_ceremony(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Vec<u8>>, StoreError> {
        let mut connection = self.connection.clone();
        let value: Option<Vec<u8>> = redis::cmd("GETDEL")
            .arg(format!("{}ceremony:{id}", self.prefix))
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        Ok(value.and_then(|value| {
            let (expiry, ceremony) = value.split_at_checked(8)?;
            let expires_ms = i64::from_be_bytes(expiry.try_into().ok()?);
            (expires_ms > millis(now)).then(|| ceremony.to_vec())
        }))
    }
}

fn millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

#[async_trait]
impl Probe for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<()>(&mut connection).await.map_err(|e| redis_error(&e))
    }
}
