//! Postgres: the account lifecycle (`LifecycleStore`): email-verification and password-reset links, password
//! changes.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{PgStore, SET_PASSWORD, credentials_from, get, pg_error, tx_execute};
use crate::model::{Credentials, LinkPurpose, NewLink, SecretHash};
use crate::store::LifecycleStore;

/// Spends a user's outstanding reset links: `$1` user, `$2` now, `$3` the reset purpose.
const SPEND_RESET_LINKS: &str =
    "UPDATE action_tokens SET used_at = $2 WHERE user_id = $1 AND purpose = $3 AND used_at IS NULL";
#[async_trait]
impl LifecycleStore for PgStore {
    async fn user(&self, user_id: Uuid) -> Result<Option<Credentials>, StoreError> {
        const SQL: &str = concat!(credentials_select!(), " WHERE u.id = $1");
        let Some(row) = self.query_opt(SQL, &[&user_id]).await? else { return Ok(None) };
        credentials_from(&row).map(Some)
    }

    async fn add_link(&self, link: &NewLink) -> Result<(), StoreError> {
        let sql = "INSERT INTO action_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [
            &link.token_hash.as_slice(),
            &link.user_id,
            &link.purpose.as_str(),
            &link.email,
            &link.created_at,
            &link.expires_at,
        ];
        self.execute(sql, &params).await.map(drop)
    }

    async fn verify_email(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Uuid>, StoreError> {
        // One statement: the link is spent only if the address it was sent to is still the user's.
        let sql = "WITH spent AS (UPDATE action_tokens a SET used_at = $3 FROM users u \
                   WHERE a.token_hash = $1 AND a.purpose = $2 AND a.used_at IS NULL AND a.expires_at > $3 \
                   AND u.id = a.user_id AND u.email = a.email RETURNING a.user_id) \
                   UPDATE users SET email_verified = true FROM spent WHERE users.id = spent.user_id RETURNING users.id";
        let row = self.query_opt(sql, &[&token_hash.as_slice(), &LinkPurpose::VerifyEmail.as_str(), &now]).await?;
        row.as_ref().map(|r| get(r, "id")).transpose()
    }

    async fn reset_password(
        &self,
        token_hash: &SecretHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let purpose = LinkPurpose::ResetPassword.as_str();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let spend = tx
            .prepare_cached(
                "UPDATE action_tokens SET used_at = $3 WHERE token_hash = $1 AND purpose = $2 \
                 AND used_at IS NULL AND expires_at > $3 RETURNING user_id",
            )
            .await
            .map_err(|e| pg_error(&e))?;
        let spent = tx.query_opt(&spend, &[&token_hash.as_slice(), &purpose, &now]).await.map_err(|e| pg_error(&e))?;
        let Some(row) = spent else { return Ok(None) };
        let user_id: Uuid = get(&row, "user_id")?;
        tx_execute(&tx, SET_PASSWORD, &[&user_id, &password_hash, &now]).await?;
        tx_execute(&tx, SPEND_RESET_LINKS, &[&user_id, &now, &purpose]).await?;
        super::tx_prove_address(&tx, user_id).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(Some(user_id))
    }

    async fn change_password(&self, user_id: Uuid, password_hash: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx_execute(&tx, SET_PASSWORD, &[&user_id, &password_hash, &now]).await?;
        tx_execute(&tx, SPEND_RESET_LINKS, &[&user_id, &now, &LinkPurpose::ResetPassword.as_str()]).await?;
        tx.commit().await.map_err(|e| pg_error(&e))
    }
}
