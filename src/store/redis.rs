//! The Redis backend: the access-token denylist (by `jti` and by revoked `sid`).
//!
//! Every key carries the configured prefix and expires on its own (`PXAT`) when the last token it
//! covers would have, so the denylist never grows beyond the tokens still alive. Beside it, the versions
//! of users, organizations and families that cached session views depend on (`version:<kind>:<id>`, a
//! random number set at each change, kept for `VERSION_LIFETIME`), read in the same round trip.

use std::time::Duration;

use async_trait::async_trait;
use identsphere_actors::{Changed, Check, Denylist, Stamp, StoreError, TokenRef, VERSION_LIFETIME};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CeremonyStore, Probe, RateLimiter};
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
    /// Connects to `url`; every key gets `prefix`. Feed entries are kept `feed_retention` after they are
    /// appended: at least the longest lifetime of any token an entry can cover.
    ///
    /// # Errors
    /// When the URL is invalid or Redis does not answer.
    pub async fn connect(url: &str, prefix: String, feed_retention: time::Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            connection,
            prefix,
            gcra: redis::Script::new(GCRA),
            feed_append: redis::Script::new(FEED_APPEND),
            feed_retention_ms: i64::try_from(feed_retention.whole_milliseconds()).unwrap_or(i64::MAX).max(0),
        })
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
        let start = cursor.map_or_else(|| "-".to_owned(), |c| format!("({c}"));
        let mut connection = self.connection.clone();
        let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
            .arg(self.feed_key())
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        let now_ms = i128::from(now.unix_timestamp()) * 1000;
        let mut page = RevocationPage { revocations: Vec::new(), cursor: cursor.unwrap_or("0-0").to_owned() };
        for (id, fields) in entries {
            let field =
                |name: &str| fields.chunks(2).find(|kv| kv.first().is_some_and(|k| k == name)).and_then(|kv| kv.get(1));
            let (Some(kind), Some(subject), Some(exp)) = (field("kind"), field("id"), field("exp")) else {
                return Err(StoreError::Internal(format!("malformed feed entry {id}")));
            };
            let exp_ms: i128 = exp.parse().map_err(|_| StoreError::Internal(format!("feed entry {id}: exp")))?;
            if exp_ms > now_ms {
                page.revocations.push(Revocation {
                    kind: Revoked::parse(kind).ok_or_else(|| StoreError::Internal(format!("feed entry {id}: kind")))?,
                    id: subject.parse().map_err(|_| StoreError::Internal(format!("feed entry {id}: id")))?,
                    expires_at: OffsetDateTime::from_unix_timestamp_nanos(exp_ms * 1_000_000)
                        .map_err(|e| StoreError::Internal(e.to_string()))?,
                });
            }
            page.cursor = id;
        }
        Ok(page)
    }

    async fn check(&self, token: TokenRef, _now: OffsetDateTime) -> Result<Check, StoreError> {
        let mut connection = self.connection.clone();
        let (found, versions): (u32, [Option<u64>; 3]) = redis::pipe()
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
        Ok(Check { denied: found > 0, stamp: Stamp(versions.map(Option::unwrap_or_default)) })
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
