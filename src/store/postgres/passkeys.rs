//! Postgres: passkeys (`PasskeyStore`).

use async_trait::async_trait;
use identsphere_actors::StoreError;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, get};
use crate::model::{Passkey, PasskeyUse};
use crate::store::PasskeyStore;

const COLUMNS: &str = "id, user_id, name, credential, counter, backed_up, created_at, last_used_at";

fn passkey_from(row: &Row) -> Result<Passkey, StoreError> {
    let mut credential: webauthn_rs_core::proto::Credential = serde_json::from_value(get(row, "credential")?)
        .map_err(|e| StoreError::Internal(format!("column credential: {e}")))?;
    // The columns are authoritative: a use updates them, not the JSON.
    credential.counter = u32::try_from(get::<i64>(row, "counter")?).unwrap_or(u32::MAX);
    credential.backup_state = get(row, "backed_up")?;
    Ok(Passkey {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
        last_used_at: get(row, "last_used_at")?,
        credential,
    })
}

#[async_trait]
impl PasskeyStore for PgStore {
    async fn add_passkey(&self, passkey: &Passkey) -> Result<(), StoreError> {
        let sql = "INSERT INTO passkeys (id, user_id, credential_id, name, credential, counter, backed_up, created_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let credential =
            serde_json::to_value(&passkey.credential).map_err(|e| StoreError::Internal(format!("credential: {e}")))?;
        let counter = i64::from(passkey.credential.counter);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &passkey.id,
            &passkey.user_id,
            &passkey.credential.cred_id.as_slice(),
            &passkey.name,
            &credential,
            &counter,
            &passkey.credential.backup_state,
            &passkey.created_at,
        ];
        self.execute(sql, &params).await.map(drop)
    }

    async fn passkeys(&self, user_id: Uuid) -> Result<Vec<Passkey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id");
        self.query(&sql, &[&user_id]).await?.iter().map(passkey_from).collect()
    }

    async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<Passkey>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1");
        self.query_opt(&sql, &[&credential_id]).await?.as_ref().map(passkey_from).transpose()
    }

    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> Result<Option<Passkey>, StoreError> {
        let sql = format!("UPDATE passkeys SET name = $3 WHERE user_id = $1 AND id = $2 RETURNING {COLUMNS}");
        self.query_opt(&sql, &[&user_id, &id, &name]).await?.as_ref().map(passkey_from).transpose()
    }

    async fn remove_passkey(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        Ok(self.execute("DELETE FROM passkeys WHERE user_id = $1 AND id = $2", &[&user_id, &id]).await? == 1)
    }

    async fn use_passkey(&self, used: &PasskeyUse) -> Result<bool, StoreError> {
        let sql = "UPDATE passkeys SET counter = $2, backed_up = $3, last_used_at = $4 \
                   WHERE id = $1 AND (counter < $2 OR (counter = 0 AND $2 = 0))";
        let counter = i64::from(used.counter);
        Ok(self.execute(sql, &[&used.id, &counter, &used.backed_up, &used.at]).await? == 1)
    }
}
