//! Postgres: signing keys (`KeyStore`): the published keys and adding a generation.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use time::OffsetDateTime;

use super::{PgStore, get, parsed, pg_error};
use crate::model::{KeyAlgorithm, StoredKey};
use crate::store::KeyStore;

#[async_trait]
impl KeyStore for PgStore {
    async fn published_keys(&self, now: OffsetDateTime) -> Result<Vec<StoredKey>, StoreError> {
        let rows = self
            .query(
                "SELECT kid, algorithm, sealed_private, created_at, activates_at, retires_at, generation \
                 FROM signing_keys WHERE retires_at IS NULL OR retires_at > $1 ORDER BY generation DESC",
                &[&now],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    kid: get(row, "kid")?,
                    algorithm: parsed(KeyAlgorithm::parse(get(row, "algorithm")?), "algorithm")?,
                    sealed: get(row, "sealed_private")?,
                    created_at: get(row, "created_at")?,
                    activates_at: get(row, "activates_at")?,
                    retires_at: get(row, "retires_at")?,
                    generation: get(row, "generation")?,
                })
            })
            .collect()
    }

    async fn add_key(&self, key: &StoredKey, retire_others_at: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO signing_keys (kid, algorithm, sealed_private, created_at, activates_at, generation) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(|e| pg_error(&e))?;
        let inserted = tx
            .execute(
                &insert,
                &[&key.kid, &key.algorithm.as_str(), &key.sealed, &key.created_at, &key.activates_at, &key.generation],
            )
            .await
            .map_err(|e| pg_error(&e))?;
        if inserted == 1
            && let Some(at) = retire_others_at
        {
            let retire = tx
                .prepare_cached(
                    "UPDATE signing_keys SET retires_at = $3 \
                     WHERE algorithm = $1 AND generation < $2 AND (retires_at IS NULL OR retires_at > $3)",
                )
                .await
                .map_err(|e| pg_error(&e))?;
            tx.execute(&retire, &[&key.algorithm.as_str(), &key.generation, &at]).await.map_err(|e| pg_error(&e))?;
        }
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(inserted == 1)
    }
}
