//! The embedded store's rate-limit counters (`RateLimiter`): one GCRA "theoretical arrival time" per key.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::{OptionalExtension as _, params};
use time::OffsetDateTime;

use super::{SqliteStore, ms};
use crate::model::Rate;
use crate::store::RateLimiter;

#[async_trait]
impl RateLimiter for SqliteStore {
    async fn check(
        &self,
        key: &str,
        rate: Rate,
        consume: bool,
        now: OffsetDateTime,
    ) -> Result<Option<time::Duration>, StoreError> {
        let key = key.to_owned();
        self.run(move |c| {
            let now = ms(now);
            let tx = c.transaction()?;
            let stored: Option<i64> = tx
                .prepare_cached("SELECT tat FROM rate_limits WHERE key = ?1")?
                .query_row([&key], |row| row.get(0))
                .optional()?;
            let tat = stored.unwrap_or(now).max(now);
            let wait = tat - now - rate.tolerance_ms();
            if wait > 0 {
                return Ok(Some(time::Duration::milliseconds(wait)));
            }
            if consume {
                // Counters in the past allow a full burst again, like a missing one: drop them as we go.
                tx.prepare_cached("DELETE FROM rate_limits WHERE tat < ?1")?.execute([now])?;
                tx.prepare_cached(
                    "INSERT INTO rate_limits (key, tat) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                )?
                .execute(params![key, tat + rate.emission_ms()])?;
                tx.commit()?;
            }
            Ok(None)
        })
        .await
    }
}
