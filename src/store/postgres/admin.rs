//! Postgres: the admin API (`AdminStore`): API keys, recording actions in the audit log, and the users of an
//! organization.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, get, parsed, pg_error, tx_audit, tx_execute, user_from};
use crate::model::{ApiKey, Audit, OrgUser, Role, UserQuery};
use crate::store::AdminStore;

/// Columns of an API key, for `key_from`.
macro_rules! key_columns {
    () => {
        "k.id, k.org_id, k.name, k.secret_hash, k.created_by, k.created_at, k.last_used_at, \
         (k.revoked_at IS NOT NULL) AS revoked"
    };
}

fn key_from(row: &Row) -> Result<ApiKey, StoreError> {
    let hash: &[u8] = get(row, "secret_hash")?;
    Ok(ApiKey {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        name: get(row, "name")?,
        secret_hash: parsed(hash.try_into().ok(), "secret_hash")?,
        created_by: get(row, "created_by")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
        revoked: get(row, "revoked")?,
    })
}

/// A member for the admin API, for `org_user_from`; callers add the `WHERE`.
macro_rules! org_user_select {
    () => {
        concat!(
            "SELECT ",
            user_columns!(),
            ", m.role, m.created_at AS joined_at, (m.disabled_at IS NOT NULL) AS member_disabled \
             FROM memberships m JOIN users u ON u.id = m.user_id"
        )
    };
}

fn org_user_from(row: &Row) -> Result<OrgUser, StoreError> {
    Ok(OrgUser {
        user: user_from(row)?,
        role: parsed(Role::parse(get(row, "role")?), "role")?,
        joined_at: get(row, "joined_at")?,
        disabled: get(row, "member_disabled")?,
    })
}

#[async_trait]
impl AdminStore for PgStore {
    async fn add_key(&self, key: &ApiKey, audit: Option<&Audit>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let sql = "INSERT INTO api_keys (id, org_id, name, secret_hash, created_by, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6)";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&key.id, &key.org_id, &key.name, &key.secret_hash.as_slice(), &key.created_by, &key.created_at];
        tx_execute(&tx, sql, &params).await?;
        if let (Some(org_id), Some(audit)) = (key.org_id, audit) {
            tx_audit(&tx, org_id, audit, Some(&key.id.to_string())).await?;
        }
        tx.commit().await.map_err(|e| pg_error(&e))
    }

    async fn key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        const SQL: &str = concat!("SELECT ", key_columns!(), " FROM api_keys k WHERE k.id = $1");
        self.query_opt(SQL, &[&id]).await?.as_ref().map(key_from).transpose()
    }

    async fn keys(&self, org_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        const SQL: &str =
            concat!("SELECT ", key_columns!(), " FROM api_keys k WHERE k.org_id = $1 ORDER BY k.created_at, k.id");
        self.query(SQL, &[&org_id]).await?.iter().map(key_from).collect()
    }

    async fn revoke_key(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let sql = "UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL";
        if tx_execute(&tx, sql, &[&id, &org_id, &audit.at]).await? != 1 {
            return Ok(false);
        }
        tx_audit(&tx, org_id, audit, Some(&id.to_string())).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn record(&self, org_id: Uuid, audit: &Audit) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx_audit(&tx, org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))
    }

    async fn touch_key(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        let sql = "UPDATE api_keys SET last_used_at = $2 \
                   WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2::timestamptz - interval '1 minute')";
        self.execute(sql, &[&id, &now]).await.map(drop)
    }

    async fn org_users(&self, org_id: Uuid, query: &UserQuery) -> Result<Vec<OrgUser>, StoreError> {
        const SQL: &str = concat!(
            org_user_select!(),
            " WHERE m.org_id = $1 AND ($2::text IS NULL OR strpos(u.email_normalized, $2) > 0) \
             AND ($3::text IS NULL OR u.email_normalized > $3) ORDER BY u.email_normalized LIMIT $4"
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&org_id, &query.email_contains, &query.after, &i64::from(query.limit)];
        self.query(SQL, &params).await?.iter().map(org_user_from).collect()
    }

    async fn org_user(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<OrgUser>, StoreError> {
        const SQL: &str = concat!(org_user_select!(), " WHERE m.org_id = $1 AND m.user_id = $2");
        self.query_opt(SQL, &[&org_id, &user_id]).await?.as_ref().map(org_user_from).transpose()
    }
}
