//! The embedded store's SSO connections and their domains (`SsoStore`).

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::{Connection, OptionalExtension as _, Row, params};
use uuid::Uuid;

use super::{SqliteStore, at, audit_row, ms, time_at, uuid};
use crate::model::{Audit, SsoConnection, SsoDomain};
use crate::store::SsoStore;

const COLUMNS: &str = "id, org_id, issuer, client_id, sealed_secret, enforce, created_at, updated_at";

/// A connection row, and then its domains.
fn connection_from(row: &Row<'_>) -> rusqlite::Result<SsoConnection> {
    Ok(SsoConnection {
        id: uuid(row, "id")?,
        org_id: uuid(row, "org_id")?,
        issuer: row.get("issuer")?,
        client_id: row.get("client_id")?,
        sealed_secret: row.get("sealed_secret")?,
        enforce: row.get("enforce")?,
        domains: Vec::new(),
        created_at: time_at(row, "created_at")?,
        updated_at: time_at(row, "updated_at")?,
    })
}

fn with_domains(c: &Connection, mut connection: SsoConnection) -> rusqlite::Result<SsoConnection> {
    connection.domains = c
        .prepare_cached("SELECT domain, verified_at FROM sso_domains WHERE connection_id = ?1 ORDER BY domain")?
        .query_map([connection.id.as_bytes().as_slice()], |row| {
            let verified_at = row.get::<_, Option<i64>>("verified_at")?.map(at).transpose()?;
            Ok(SsoDomain { domain: row.get("domain")?, verified_at })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(connection)
}

fn select(c: &Connection, filter: &str, param: &[u8]) -> rusqlite::Result<Vec<SsoConnection>> {
    let sql = format!("SELECT {COLUMNS} FROM sso_connections WHERE {filter} ORDER BY created_at, id");
    let found: Vec<SsoConnection> =
        c.prepare_cached(&sql)?.query_map([param], connection_from)?.collect::<rusqlite::Result<_>>()?;
    found.into_iter().map(|connection| with_domains(c, connection)).collect()
}

/// Makes the connection claim exactly its domains: the ones it keeps keep their verification.
fn set_domains(c: &Connection, connection: &SsoConnection) -> rusqlite::Result<()> {
    let id = connection.id.as_bytes().as_slice();
    let kept: Vec<&str> = connection.domains.iter().map(|d| d.domain.as_str()).collect();
    let existing: Vec<String> = c
        .prepare_cached("SELECT domain FROM sso_domains WHERE connection_id = ?1")?
        .query_map([id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for gone in existing.iter().filter(|d| !kept.contains(&d.as_str())) {
        c.prepare_cached("DELETE FROM sso_domains WHERE connection_id = ?1 AND domain = ?2")?
            .execute(params![id, gone])?;
    }
    for domain in kept {
        c.prepare_cached("INSERT OR IGNORE INTO sso_domains (connection_id, domain) VALUES (?1, ?2)")?
            .execute(params![id, domain])?;
    }
    Ok(())
}

#[async_trait]
impl SsoStore for SqliteStore {
    async fn connections(&self, org_id: Uuid) -> Result<Vec<SsoConnection>, StoreError> {
        self.run(move |c| select(c, "org_id = ?1", org_id.as_bytes())).await
    }

    async fn connection(&self, id: Uuid) -> Result<Option<SsoConnection>, StoreError> {
        self.run(move |c| Ok(select(c, "id = ?1", id.as_bytes())?.pop())).await
    }

    async fn add_connection(&self, connection: &SsoConnection, audit: &Audit) -> Result<(), StoreError> {
        let (connection, audit) = (connection.clone(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.prepare_cached(&format!(
                "INSERT INTO sso_connections ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?
            .execute(params![
                connection.id.as_bytes().as_slice(),
                connection.org_id.as_bytes().as_slice(),
                connection.issuer,
                connection.client_id,
                connection.sealed_secret,
                connection.enforce,
                ms(connection.created_at),
                ms(connection.updated_at),
            ])?;
            set_domains(&tx, &connection)?;
            audit_row(&tx, connection.org_id, &audit, audit.target.as_deref())?;
            tx.commit()
        })
        .await
    }

    async fn update_connection(&self, connection: &SsoConnection, audit: &Audit) -> Result<bool, StoreError> {
        let (connection, audit) = (connection.clone(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            let updated = tx
                .prepare_cached(
                    "UPDATE sso_connections SET issuer = ?3, client_id = ?4, sealed_secret = ?5, enforce = ?6, \
                     updated_at = ?7 WHERE id = ?1 AND org_id = ?2",
                )?
                .execute(params![
                    connection.id.as_bytes().as_slice(),
                    connection.org_id.as_bytes().as_slice(),
                    connection.issuer,
                    connection.client_id,
                    connection.sealed_secret,
                    connection.enforce,
                    ms(connection.updated_at),
                ])?;
            if updated == 0 {
                return Ok(false);
            }
            set_domains(&tx, &connection)?;
            audit_row(&tx, connection.org_id, &audit, audit.target.as_deref())?;
            tx.commit().map(|()| true)
        })
        .await
    }

    async fn remove_connection(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let removed = tx
                .prepare_cached("DELETE FROM sso_connections WHERE id = ?1 AND org_id = ?2")?
                .execute(params![id.as_bytes().as_slice(), org_id.as_bytes().as_slice()])?;
            if removed == 0 {
                return Ok(false);
            }
            audit_row(&tx, org_id, &audit, audit.target.as_deref())?;
            tx.commit().map(|()| true)
        })
        .await
    }

    async fn verify_domain(&self, org_id: Uuid, id: Uuid, domain: &str, audit: &Audit) -> Result<bool, StoreError> {
        let (domain, audit) = (domain.to_owned(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            let verified = tx
                .prepare_cached(
                    "UPDATE sso_domains SET verified_at = COALESCE(verified_at, ?4) WHERE connection_id = ?1 \
                     AND domain = ?3 AND EXISTS (SELECT 1 FROM sso_connections WHERE id = ?1 AND org_id = ?2)",
                )?
                .execute(params![id.as_bytes().as_slice(), org_id.as_bytes().as_slice(), domain, ms(audit.at)])?;
            if verified == 0 {
                return Ok(false);
            }
            audit_row(&tx, org_id, &audit, audit.target.as_deref())?;
            tx.commit().map(|()| true)
        })
        .await
    }

    async fn connection_for_domain(&self, domain: &str) -> Result<Option<SsoConnection>, StoreError> {
        let domain = domain.to_owned();
        self.run(move |c| {
            let id: Option<Vec<u8>> = c
                .prepare_cached("SELECT connection_id FROM sso_domains WHERE domain = ?1 AND verified_at IS NOT NULL")?
                .query_row([&domain], |row| row.get(0))
                .optional()?;
            match id {
                Some(id) => Ok(select(c, "id = ?1", &id)?.pop()),
                None => Ok(None),
            }
        })
        .await
    }

    async fn enforced_domains(&self, org_id: Uuid) -> Result<Vec<(Uuid, String)>, StoreError> {
        self.run(move |c| {
            c.prepare_cached(
                "SELECT c.id, d.domain FROM sso_connections c JOIN sso_domains d ON d.connection_id = c.id \
                 WHERE c.org_id = ?1 AND c.enforce = 1 AND d.verified_at IS NOT NULL",
            )?
            .query_map([org_id.as_bytes().as_slice()], |row| Ok((uuid(row, "id")?, row.get("domain")?)))?
            .collect()
        })
        .await
    }
}
