//! The embedded store's second factors (`FactorStore`): TOTP enrollment and steps, recovery codes, and
//! single-use tokens.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::{OptionalExtension as _, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, at, ms, time_at};
use crate::model::{SecretHash, TotpFactor};
use crate::store::FactorStore;

#[async_trait]
impl FactorStore for SqliteStore {
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError> {
        self.run(move |c| {
            c.prepare_cached("SELECT sealed_secret, created_at, confirmed_at FROM totp_factors WHERE user_id = ?1")?
                .query_row([user_id.as_bytes().as_slice()], |row| {
                    Ok(TotpFactor {
                        sealed_secret: row.get("sealed_secret")?,
                        created_at: time_at(row, "created_at")?,
                        confirmed_at: row.get::<_, Option<i64>>("confirmed_at")?.map(at).transpose()?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn begin_totp(&self, user_id: Uuid, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError> {
        let sealed = sealed_secret.to_vec();
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "INSERT INTO totp_factors (user_id, sealed_secret, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
                     created_at = excluded.created_at, last_step = NULL WHERE totp_factors.confirmed_at IS NULL",
                )?
                .execute(params![user_id.as_bytes().as_slice(), sealed, ms(now)])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_codes: &[SecretHash],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let codes = recovery_codes.to_vec();
        self.run(move |c| {
            let tx = c.transaction()?;
            let user = user_id.as_bytes().as_slice();
            let confirmed = tx
                .prepare_cached(
                    "UPDATE totp_factors SET confirmed_at = ?3, last_step = ?2 WHERE user_id = ?1 AND confirmed_at IS NULL",
                )?
                .execute(params![user, step, ms(now)])?;
            if confirmed != 1 {
                return Ok(false);
            }
            tx.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?.execute([user])?;
            {
                let mut insert = tx.prepare_cached("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)")?;
                for code in &codes {
                    insert.execute(params![user, code.as_slice()])?;
                }
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE totp_factors SET last_step = ?2 WHERE user_id = ?1 AND confirmed_at IS NOT NULL \
                     AND (last_step IS NULL OR last_step < ?2)",
                )?
                .execute(params![user_id.as_bytes().as_slice(), step])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn spend_recovery_code(
        &self,
        user_id: Uuid,
        code: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let code = *code;
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                )?
                .execute(params![user_id.as_bytes().as_slice(), code.as_slice(), ms(now)])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let user = user_id.as_bytes().as_slice();
            tx.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?.execute([user])?;
            let removed = tx.prepare_cached("DELETE FROM totp_factors WHERE user_id = ?1")?.execute([user])?;
            tx.commit()?;
            Ok(removed == 1)
        })
        .await
    }

    async fn spend_once(&self, jti: Uuid, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.prepare_cached("DELETE FROM spent_tokens WHERE expires_at <= ?1")?.execute([ms(now)])?;
            let spent = tx
                .prepare_cached(
                    "INSERT INTO spent_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                )?
                .execute(params![jti.as_bytes().as_slice(), ms(expires_at)])?;
            tx.commit()?;
            Ok(spent == 1)
        })
        .await
    }

    async fn spent(&self, jti: Uuid) -> Result<bool, StoreError> {
        self.run(move |c| {
            c.prepare_cached("SELECT 1 FROM spent_tokens WHERE jti = ?1")?
                .query_row([jti.as_bytes().as_slice()], |_| Ok(()))
                .optional()
                .map(|row| row.is_some())
        })
        .await
    }
}
