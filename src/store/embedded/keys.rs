//! The embedded store's signing keys (`KeyStore`): the published keys and adding a generation.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::params;
use time::OffsetDateTime;

use super::{SqliteStore, at, ms, time_at, unknown};
use crate::model::{KeyAlgorithm, StoredKey};
use crate::store::KeyStore;

#[async_trait]
impl KeyStore for SqliteStore {
    async fn published_keys(&self, now: OffsetDateTime) -> Result<Vec<StoredKey>, StoreError> {
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT kid, algorithm, sealed_private, created_at, activates_at, retires_at, generation \
                 FROM signing_keys WHERE retires_at IS NULL OR retires_at > ?1 ORDER BY generation DESC",
            )?;
            let rows = statement.query_map([ms(now)], |row| {
                Ok(StoredKey {
                    kid: row.get("kid")?,
                    algorithm: KeyAlgorithm::parse(&row.get::<_, String>("algorithm")?)
                        .ok_or_else(|| unknown("algorithm"))?,
                    sealed: row.get("sealed_private")?,
                    created_at: time_at(row, "created_at")?,
                    activates_at: time_at(row, "activates_at")?,
                    retires_at: row.get::<_, Option<i64>>("retires_at")?.map(at).transpose()?,
                    generation: row.get("generation")?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn add_key(&self, key: &StoredKey, retire_others_at: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO signing_keys (kid, algorithm, sealed_private, created_at, activates_at, generation) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    key.kid,
                    key.algorithm.as_str(),
                    key.sealed,
                    ms(key.created_at),
                    ms(key.activates_at),
                    key.generation
                ])?;
            if inserted == 1
                && let Some(retire_at) = retire_others_at
            {
                tx.prepare_cached(
                    "UPDATE signing_keys SET retires_at = ?3 \
                     WHERE algorithm = ?1 AND generation < ?2 AND (retires_at IS NULL OR retires_at > ?3)",
                )?
                .execute(params![key.algorithm.as_str(), key.generation, ms(retire_at)])?;
            }
            tx.commit()?;
            Ok(inserted == 1)
        })
        .await
    }
}
