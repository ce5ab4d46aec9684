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

use super::Probe;

/// The Redis backend. Cheap to clone: one multiplexed connection, re-established on failure.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
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
        Ok(Self { connection, prefix })
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
impl Probe for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("PING").query_async::<()>(&mut connection).await.map_err(|e| redis_error(&e))
    }
}
