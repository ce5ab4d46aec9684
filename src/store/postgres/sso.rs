//! Postgres: organizations' SSO connections and their domains (`SsoStore`).

use async_trait::async_trait;
use identsphere_actors::StoreError;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{PgStore, get, pg_error, tx_audit, tx_execute};
use crate::model::{Audit, SsoConnection, SsoDomain};
use crate::store::SsoStore;

/// A connection's columns, with its domains as two parallel arrays (sorted by domain).
const SELECT: &str = "SELECT c.id, c.org_id, c.issuer, c.client_id, c.sealed_secret, c.enforce, c.created_at, \
                      c.updated_at, \
                      ARRAY(SELECT domain FROM sso_domains d WHERE d.connection_id = c.id ORDER BY domain) AS domains, \
                      ARRAY(SELECT verified_at FROM sso_domains d WHERE d.connection_id = c.id ORDER BY domain) \
                      AS verified \
                      FROM sso_connections c";

fn connection_from(row: &Row) -> Result<SsoConnection, StoreError> {
    let domains: Vec<String> = get(row, "domains")?;
    let verified: Vec<Option<time::OffsetDateTime>> = get(row, "verified")?;
    Ok(SsoConnection {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        issuer: get(row, "issuer")?,
        client_id: get(row, "client_id")?,
        sealed_secret: get(row, "sealed_secret")?,
        enforce: get(row, "enforce")?,
        domains: domains
            .into_iter()
            .zip(verified)
            .map(|(domain, verified_at)| SsoDomain { domain, verified_at })
            .collect(),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

/// Makes the connection claim exactly `domains`: the ones it keeps keep their verification.
async fn tx_domains(tx: &deadpool_postgres::Transaction<'_>, connection: &SsoConnection) -> Result<(), StoreError> {
    let domains: Vec<&str> = connection.domains.iter().map(|d| d.domain.as_str()).collect();
    let params: [&(dyn ToSql + Sync); 2] = [&connection.id, &domains];
    tx_execute(tx, "DELETE FROM sso_domains WHERE connection_id = $1 AND NOT (domain = ANY($2))", &params).await?;
    let insert = "INSERT INTO sso_domains (connection_id, domain) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING";
    tx_execute(tx, insert, &params).await.map(drop)
}

#[async_trait]
impl SsoStore for PgStore {
    async fn connections(&self, org_id: Uuid) -> Result<Vec<SsoConnection>, StoreError> {
        let sql = format!("{SELECT} WHERE c.org_id = $1 ORDER BY c.created_at, c.id");
        self.query(&sql, &[&org_id]).await?.iter().map(connection_from).collect()
    }

    async fn connection(&self, id: Uuid) -> Result<Option<SsoConnection>, StoreError> {
        let sql = format!("{SELECT} WHERE c.id = $1");
        self.query_opt(&sql, &[&id]).await?.as_ref().map(connection_from).transpose()
    }

    async fn add_connection(&self, connection: &SsoConnection, audit: &Audit) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let sql = "INSERT INTO sso_connections (id, org_id, issuer, client_id, sealed_secret, enforce, created_at, \
                   updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let c = connection;
        let params: [&(dyn ToSql + Sync); 8] =
            [&c.id, &c.org_id, &c.issuer, &c.client_id, &c.sealed_secret, &c.enforce, &c.created_at, &c.updated_at];
        tx_execute(&tx, sql, &params).await?;
        tx_domains(&tx, connection).await?;
        tx_audit(&tx, connection.org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))
    }

    async fn update_connection(&self, connection: &SsoConnection, audit: &Audit) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let sql = "UPDATE sso_connections SET issuer = $3, client_id = $4, sealed_secret = $5, enforce = $6, \
                   updated_at = $7 WHERE id = $1 AND org_id = $2";
        let c = connection;
        let params: [&(dyn ToSql + Sync); 7] =
            [&c.id, &c.org_id, &c.issuer, &c.client_id, &c.sealed_secret, &c.enforce, &c.updated_at];
        if tx_execute(&tx, sql, &params).await? == 0 {
            return Ok(false);
        }
        tx_domains(&tx, connection).await?;
        tx_audit(&tx, connection.org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn remove_connection(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let sql = "DELETE FROM sso_connections WHERE id = $1 AND org_id = $2";
        if tx_execute(&tx, sql, &[&id, &org_id]).await? == 0 {
            return Ok(false);
        }
        tx_audit(&tx, org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn verify_domain(&self, org_id: Uuid, id: Uuid, domain: &str, audit: &Audit) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let sql = "UPDATE sso_domains SET verified_at = COALESCE(verified_at, $4) WHERE connection_id = $1 \
                   AND domain = $3 AND EXISTS (SELECT 1 FROM sso_connections WHERE id = $1 AND org_id = $2)";
        if tx_execute(&tx, sql, &[&id, &org_id, &domain, &audit.at]).await? == 0 {
            return Ok(false);
        }
        tx_audit(&tx, org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn connection_for_domain(&self, domain: &str) -> Result<Option<SsoConnection>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE c.id = (SELECT connection_id FROM sso_domains WHERE domain = $1 AND verified_at IS NOT NULL)"
        );
        self.query_opt(&sql, &[&domain]).await?.as_ref().map(connection_from).transpose()
    }

    async fn enforced_domains(&self, org_id: Uuid) -> Result<Vec<(Uuid, String)>, StoreError> {
        let sql = "SELECT c.id, d.domain FROM sso_connections c JOIN sso_domains d ON d.connection_id = c.id \
                   WHERE c.org_id = $1 AND c.enforce AND d.verified_at IS NOT NULL";
        self.query(sql, &[&org_id]).await?.iter().map(|row| Ok((get(row, "id")?, get(row, "domain")?))).collect()
    }
}
