//! The Redis backend: the access-token denylist (by `jti` and by revoked `sid`).
//!
//! Every key carries the configured prefix and expires on its own (`PXAT`) when the last token it
//! covers would have, so the denylist never grows beyond the tokens still alive.

use std::time::Duration;

use async_trait::async_trait;
use identsphere_actors::{Denylist, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Probe, Rate, RateLimiter};

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
    /// Connects to `url`; every key gets `prefix`.
    ///
    /// # Errors
    /// When the URL is invalid or Redis does not answer.
    pub async fn connect(url: &str, prefix: String) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self { connection, prefix, gcra: redis::Script::new(GCRA) })
    }

    fn key(&self, kind: &str, id: Uuid) -> String {
        format!("{}deny:{kind}:{id}", self.prefix)
    }

    async fn deny(&self, keys: impl Iterator<Item = String>, until: OffsetDateTime) -> Result<(), StoreError> {
        let until_ms = u64::try_from(until.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("SET").arg(key).arg(1).arg("PXAT").arg(until_ms).ignore();
        }
        let mut connection = self.connection.clone();
        pipe.query_async::<()>(&mut connection).await.map_err(|e| redis_error(&e))
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
        self.deny(sids.iter().map(|sid| self.key("sid", *sid)), until).await
    }

    async fn deny_token(&self, jti: Uuid, until: OffsetDateTime, _now: OffsetDateTime) -> Result<(), StoreError> {
        self.deny(std::iter::once(self.key("jti", jti)), until).await
    }

    async fn is_denied(&self, jti: Uuid, sid: Uuid, _now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut connection = self.connection.clone();
        let found: u32 = redis::cmd("EXISTS")
            .arg(self.key("jti", jti))
            .arg(self.key("sid", sid))
            .query_async(&mut connection)
            .await
            .map_err(|e| redis_error(&e))?;
        Ok(found > 0)
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
