//! The embedded store's account lifecycle (`LifecycleStore`): email-verification and password-reset links,
//! password changes.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::{OptionalExtension as _, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{CREDENTIALS_SELECT, SET_PASSWORD, SqliteStore, credentials_from, ms, uuid};
use crate::model::{Credentials, LinkPurpose, NewLink, SecretHash};
use crate::store::LifecycleStore;

/// Spends a user's outstanding reset links: `?1` user, `?2` now, `?3` the reset purpose.
const SPEND_RESET_LINKS: &str =
    "UPDATE action_tokens SET used_at = ?2 WHERE user_id = ?1 AND purpose = ?3 AND used_at IS NULL";

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn user(&self, user_id: Uuid) -> Result<Option<Credentials>, StoreError> {
        self.run(move |c| {
            let sql = format!("{CREDENTIALS_SELECT} WHERE u.id = ?1");
            c.prepare_cached(&sql)?.query_row([user_id.as_bytes().as_slice()], credentials_from).optional()
        })
        .await
    }

    async fn add_link(&self, link: &NewLink) -> Result<(), StoreError> {
        let link = link.clone();
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO action_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                link.token_hash.as_slice(),
                link.user_id.as_bytes().as_slice(),
                link.purpose.as_str(),
                link.email,
                ms(link.created_at),
                ms(link.expires_at),
            ])
            .map(drop)
        })
        .await
    }

    async fn verify_email(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Uuid>, StoreError> {
        let hash = *token_hash;
        self.run(move |c| {
            let tx = c.transaction()?;
            // Spent only if the address it was sent to is still the user's.
            let user: Option<Uuid> = tx
                .prepare_cached(
                    "UPDATE action_tokens SET used_at = ?3 WHERE token_hash = ?1 AND purpose = ?2 \
                     AND used_at IS NULL AND expires_at > ?3 \
                     AND email = (SELECT u.email FROM users u WHERE u.id = action_tokens.user_id) RETURNING user_id",
                )?
                .query_row(params![hash.as_slice(), LinkPurpose::VerifyEmail.as_str(), ms(now)], |row| {
                    uuid(row, "user_id")
                })
                .optional()?;
            if let Some(user) = user {
                tx.prepare_cached("UPDATE users SET email_verified = 1 WHERE id = ?1")?
                    .execute([user.as_bytes().as_slice()])?;
            }
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    async fn reset_password(
        &self,
        token_hash: &SecretHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let (hash, password_hash) = (*token_hash, password_hash.to_owned());
        self.run(move |c| {
            let tx = c.transaction()?;
            let purpose = LinkPurpose::ResetPassword.as_str();
            let user: Option<Uuid> = tx
                .prepare_cached(
                    "UPDATE action_tokens SET used_at = ?3 WHERE token_hash = ?1 AND purpose = ?2 \
                     AND used_at IS NULL AND expires_at > ?3 RETURNING user_id",
                )?
                .query_row(params![hash.as_slice(), purpose, ms(now)], |row| uuid(row, "user_id"))
                .optional()?;
            if let Some(user) = user {
                let id = user.as_bytes().as_slice();
                tx.prepare_cached(SET_PASSWORD)?.execute(params![id, password_hash, ms(now)])?;
                tx.prepare_cached(SPEND_RESET_LINKS)?.execute(params![id, ms(now), purpose])?;
                super::prove_address(&tx, user)?;
            }
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    async fn change_password(&self, user_id: Uuid, password_hash: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let password_hash = password_hash.to_owned();
        self.run(move |c| {
            let tx = c.transaction()?;
            let id = user_id.as_bytes().as_slice();
            tx.prepare_cached(SET_PASSWORD)?.execute(params![id, password_hash, ms(now)])?;
            tx.prepare_cached(SPEND_RESET_LINKS)?.execute(params![id, ms(now), LinkPurpose::ResetPassword.as_str()])?;
            tx.commit()
        })
        .await
    }
}
