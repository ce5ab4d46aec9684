//! The embedded store's sign-in provider identities (`IdentityStore`).

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::{Connection, OptionalExtension as _, Row, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, at, ms, time_at, uuid};
use crate::model::Identity;
use crate::store::IdentityStore;

const COLUMNS: &str = "id, user_id, provider, subject, email, created_at, last_used_at";

fn identity_from(row: &Row<'_>) -> rusqlite::Result<Identity> {
    Ok(Identity {
        id: uuid(row, "id")?,
        user_id: uuid(row, "user_id")?,
        provider: row.get("provider")?,
        subject: row.get("subject")?,
        email: row.get("email")?,
        created_at: time_at(row, "created_at")?,
        last_used_at: row.get::<_, Option<i64>>("last_used_at")?.map(at).transpose()?,
    })
}

/// Links `identity` on `connection` (inside the caller's transaction, when it has one).
pub(super) fn link(connection: &Connection, identity: &Identity) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO identities (id, user_id, provider, subject, email, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            identity.id.as_bytes().as_slice(),
            identity.user_id.as_bytes().as_slice(),
            identity.provider,
            identity.subject,
            identity.email,
            ms(identity.created_at),
        ])
        .map(drop)
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn identity(&self, provider: &str, subject: &str) -> Result<Option<Identity>, StoreError> {
        let (provider, subject) = (provider.to_owned(), subject.to_owned());
        self.run(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE provider = ?1 AND subject = ?2"))?
                .query_row(params![provider, subject], identity_from)
                .optional()
        })
        .await
    }

    async fn identities(&self, user_id: Uuid) -> Result<Vec<Identity>, StoreError> {
        self.run(move |c| {
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM identities WHERE user_id = ?1 ORDER BY created_at, id"))?
                .query_map([user_id.as_bytes().as_slice()], identity_from)?
                .collect()
        })
        .await
    }

    async fn add_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        let identity = identity.clone();
        self.run(move |c| link(c, &identity)).await
    }

    async fn identity_used(&self, id: Uuid, email: Option<&str>, now: OffsetDateTime) -> Result<(), StoreError> {
        let email = email.map(str::to_owned);
        self.run(move |c| {
            c.prepare_cached("UPDATE identities SET last_used_at = ?2, email = COALESCE(?3, email) WHERE id = ?1")?
                .execute(params![id.as_bytes().as_slice(), ms(now), email])
                .map(drop)
        })
        .await
    }

    async fn remove_identity(&self, user_id: Uuid, id: Uuid) -> Result<bool, StoreError> {
        self.run(move |c| {
            let removed = c
                .prepare_cached("DELETE FROM identities WHERE user_id = ?1 AND id = ?2")?
                .execute(params![user_id.as_bytes().as_slice(), id.as_bytes().as_slice()])?;
            Ok(removed == 1)
        })
        .await
    }

    async fn take_over(&self, identity: &Identity) -> Result<(), StoreError> {
        let identity = identity.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let user = identity.user_id.as_bytes().as_slice();
            tx.prepare_cached("DELETE FROM password_credentials WHERE user_id = ?1")?.execute([user])?;
            super::prove_address(&tx, identity.user_id)?;
            link(&tx, &identity)?;
            tx.commit()
        })
        .await
    }
}
