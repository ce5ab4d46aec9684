//! The embedded store's passkeys (`PasskeyStore`) and WebAuthn ceremonies in flight (`CeremonyStore`).

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::{OptionalExtension as _, Row, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, at, conversion, ms, time_at, uuid};
use crate::model::{Passkey, PasskeyUse};
use crate::store::{CeremonyStore, PasskeyStore};

const COLUMNS: &str = "id, user_id, name, credential, counter, backed_up, created_at, last_used_at";

fn passkey_from(row: &Row<'_>) -> rusqlite::Result<Passkey> {
    let json: String = row.get("credential")?;
    let mut credential: webauthn_rs_core::proto::Credential =
        serde_json::from_str(&json).map_err(|e| conversion(3, e))?;
    // The columns are authoritative: a use updates them, not the JSON.
    credential.counter = u32::try_from(row.get::<_, i64>("counter")?).unwrap_or(u32::MAX);
    credential.backup_state = row.get("backed_up")?;
    Ok(Passkey {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        name: row.get("name")?,
        created_at: time_at(row, "created_at")?,
        last_used_at: row.get::<_, Option<i64>>("last_used_at")?.map(at).transpose()?,
        credential,
    })
}

#[async_trait]
impl PasskeyStore for SqliteStore {
    async fn add_passkey(&self, passkey: &Passkey) -> Result<(), StoreError> {
        let passkey = passkey.clone();
        let credential =
            serde_json::to_string(&passkey.credential).map_err(|e| StoreError::Internal(format!("credential: {e}")))?;
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO passkeys (id, user_id, credential_id, name, credential, counter, backed_up, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                passkey.id.as_bytes().as_slice(),
                passkey.user_id.as_bytes().as_slice(),
                passkey.credential.cred_id.as_slice(),
                passkey.name,
                credential,
                i64::from(passkey.credential.counter),
                passkey.credential.backup_state,
                ms(passkey.created_at),
            ])
            .map(drop)
        })
        .await
    }

    async fn passkeys(&self, user_id: Uuid) -> Result<Vec<Passkey>, StoreError> {
        self.run(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM passkeys WHERE user_id = ?1 ORDER BY created_at, id"))?
                .query_map([user_id.as_bytes().as_slice()], passkey_from)?
                .collect()
        })
        .await
    }

    async fn passkey_by_credential(&self, credential_id: &[u8]) -> Result<Option<Passkey>, StoreError> {
        let credential_id = credential_id.to_vec();
        self.run(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM passkeys WHERE credential_id = ?1"))?
                .query_row([credential_id], passkey_from)
                .optional()
        })
        .await
    }

    async fn rename_passkey(&self, user_id: Uuid, id: Uuid, name: &str) -> Result<Option<Passkey>, StoreError> {
        let name = name.to_owned();
        self.run(move |c| {
            c.prepare_cached(&format!(
                "UPDATE passkeys SET name = ?3 WHERE user_id = ?1 AND id = ?2 RETURNING {COLUMNS}"
            ))?
            .query_row(params![user_id.as_bytes().as_slice(), id.as_bytes().as_slice(), name], passkey_from)
            .optional()
        })
        .await
    }

    async fn remove_passkey(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.run(move |c| {
            let removed = c
                .prepare_cached("DELETE FROM passkeys WHERE user_id = ?1 AND id = ?2")?
                .execute(params![user_id.as_bytes().as_slice(), id.as_bytes().as_slice()])?;
            Ok(removed == 1)
        })
        .await
    }

    async fn use_passkey(&self, used: &PasskeyUse) -> Result<bool, StoreError> {
        let used = *used;
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE passkeys SET counter = ?2, backed_up = ?3, last_used_at = ?4 \
                     WHERE id = ?1 AND (counter < ?2 OR (counter = 0 AND ?2 = 0))",
                )?
                .execute(params![
                    used.id.as_bytes().as_slice(),
                    i64::from(used.counter),
                    used.backed_up,
                    ms(used.at)
                ])?;
            Ok(changed == 1)
        })
        .await
    }
}

#[async_trait]
impl CeremonyStore for SqliteStore {
    async fn put_ceremony(
        &self,
        id: Uuid,
        ceremony: &[u8],
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let ceremony = ceremony.to_vec();
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.prepare_cached("DELETE FROM ceremonies WHERE expires_at <= ?1")?.execute([ms(now)])?;
            tx.prepare_cached("INSERT INTO ceremonies (id, ceremony, expires_at) VALUES (?1, ?2, ?3)")?
                .execute(params![id.as_bytes().as_slice(), ceremony, ms(expires_at)])?;
            tx.commit()
        })
        .await
    }

    async fn take_ceremony(&self, id: Uuid, now: OffsetDateTime) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(move |c| {
            c.prepare_cached("DELETE FROM ceremonies WHERE id = ?1 RETURNING ceremony, expires_at")?
                .query_row([id.as_bytes().as_slice()], |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?)))
                .optional()
                .map(|taken| taken.filter(|(_, expires)| *expires > ms(now)).map(|(ceremony, _)| ceremony))
        })
        .await
    }
}
