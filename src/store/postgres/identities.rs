//! Postgres: sign-in provider identities (`IdentityStore`).

use async_trait::async_trait;
use identsphere_actors::StoreError;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, get, pg_error, tx_execute};
use crate::model::Identity;
use crate::store::IdentityStore;

const COLUMNS: &str = "id, user_id, provider, subject, email, created_at, last_used_at";
const LINK: &str = "INSERT INTO identities (id, user_id, provider, subject, email, created_at) \
                    VALUES ($1, $2, $3, $4, $5, $6)";

fn identity_from(row: &Row) -> Result<Identity, StoreError> {
    Ok(Identity {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        provider: get(row, "provider")?,
        subject: get(row, "subject")?,
        email: get(row, "email")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

/// The parameters of `LINK`.
fn link_params(identity: &Identity) -> [&(dyn tokio_postgres::types::ToSql + Sync); 6] {
    [&identity.id, &identity.user_id, &identity.provider, &identity.subject, &identity.email, &identity.created_at]
}

/// Links `identity` inside a transaction (account creation, take-over).
pub(super) async fn tx_link(tx: &deadpool_postgres::Transaction<'_>, identity: &Identity) -> Result<(), StoreError> {
    tx_execute(tx, LINK, &link_params(identity)).await.map(drop)
}

#[async_trait]
impl IdentityStore for PgStore {
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<Identity>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM identities WHERE provider = $1 AND subject = $2");
        self.query_opt(&sql, &[&provider, &subject]).await?.as_ref().map(identity_from).transpose()
    }

    async fn identities(&self, user_id: Uuid) -> Result<Vec<Identity>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM identities WHERE user_id = $1 ORDER BY created_at, id");
        self.query(&sql, &[&user_id]).await?.iter().map(identity_from).collect()
    }

    async fn add_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        self.execute(LINK, &link_params(identity)).await.map(drop)
    }

    async fn identity_used(&self, id: Uuid, email: Option<&str>, now: OffsetDateTime) -> Result<(), StoreError> {
        let sql = "UPDATE identities SET last_used_at = $2, email = COALESCE($3, email) WHERE id = $1";
        self.execute(sql, &[&id, &now, &email]).await.map(drop)
    }

    async fn remove_identity(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM identities WHERE user_id = $1 AND id = $2", &[&user_id, &id]).await? == 1)
    }

    async fn take_over(&self, identity: &Identity) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let user = [&identity.user_id as &(dyn tokio_postgres::types::ToSql + Sync)];
        tx_execute(&tx, "DELETE FROM password_credentials WHERE user_id = $1", &user).await?;
        super::tx_prove_address(&tx, identity.user_id).await?;
        tx_link(&tx, identity).await?;
        tx.commit().await.map_err(|e| pg_error(&e))
    }
}
