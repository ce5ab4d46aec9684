//! Postgres: second factors (`FactorStore`): TOTP enrollment and steps, recovery codes, and single-use
//! tokens.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, get, pg_error, tx_execute};
use crate::model::{SecretHash, TotpFactor};
use crate::store::FactorStore;

/// The hashes as `bytea` parameters.
fn hash_slices(hashes: &[SecretHash]) -> Vec<&[u8]> {
    hashes.iter().map(<[u8; 32]>::as_slice).collect()
}

#[async_trait]
impl FactorStore for PgStore {
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError> {
        let sql = "SELECT sealed_secret, created_at, confirmed_at FROM totp_factors WHERE user_id = $1";
        let Some(row) = self.query_opt(sql, &[&user_id]).await? else { return Ok(None) };
        Ok(Some(TotpFactor {
            sealed_secret: get(&row, "sealed_secret")?,
            created_at: get(&row, "created_at")?,
            confirmed_at: get(&row, "confirmed_at")?,
        }))
    }

    async fn begin_totp(&self, user_id: Uuid, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError> {
        let sql = "INSERT INTO totp_factors (user_id, sealed_secret, created_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (user_id) DO UPDATE SET sealed_secret = EXCLUDED.sealed_secret, \
                   created_at = EXCLUDED.created_at, last_step = NULL WHERE totp_factors.confirmed_at IS NULL";
        Ok(self.execute(sql, &[&user_id, &sealed_secret, &now]).await? == 1)
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_codes: &[SecretHash],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let confirm = "UPDATE totp_factors SET confirmed_at = $3, last_step = $2 \
                       WHERE user_id = $1 AND confirmed_at IS NULL";
        if tx_execute(&tx, confirm, &[&user_id, &step, &now]).await? != 1 {
            return Ok(false);
        }
        tx_execute(&tx, "DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?;
        let insert = "INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])";
        tx_execute(&tx, insert, &[&user_id, &hash_slices(recovery_codes)]).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND confirmed_at IS NOT NULL \
                   AND (last_step IS NULL OR last_step < $2)";
        Ok(self.execute(sql, &[&user_id, &step]).await? == 1)
    }

    async fn spend_recovery_code(
        &self,
        user_id: Uuid,
        code: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";
        Ok(self.execute(sql, &[&user_id, &code.as_slice(), &now]).await? == 1)
    }

    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx_execute(&tx, "DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?;
        let removed = tx_execute(&tx, "DELETE FROM totp_factors WHERE user_id = $1", &[&user_id]).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(removed == 1)
    }

    async fn spend_once(&self, jti: Uuid, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError> {
        // The expired entries go first, in the same round trip's transaction: the table stays small.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx_execute(&tx, "DELETE FROM spent_tokens WHERE expires_at <= $1", &[&now]).await?;
        let insert = "INSERT INTO spent_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
        let spent = tx_execute(&tx, insert, &[&jti, &expires_at]).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(spent == 1)
    }

    async fn spent(&self, jti: Uuid) -> Result<bool, StoreError> {
        Ok(self.query_opt("SELECT 1 FROM spent_tokens WHERE jti = $1", &[&jti]).await?.is_some())
    }
}
