//! The Postgres backend: organizations, users, memberships, credentials, session families and keys.
//!
//! All SQL lives here. Statements are prepared once per connection (`prepare_cached`); a rotation is a
//! single conditional `UPDATE`, which is what makes it atomic across replicas.
//!
//! This module holds the store itself: the pool, migrations, running a statement, error mapping, and the
//! columns and row readers every part shares. Each submodule implements one of the store traits.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use identsphere_actors::{
    Aal, AuthMethod, FamilyRecord, RefreshPointer, RevokeReason, SessionRules, Spent, StoreError, UserProfile,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::Probe;
use super::tls::postgres_tls;
use crate::config::PostgresConfig;
use crate::model::{Audit, Credentials, OrgPolicy, Organization, SignupMode, session_rules};

// Column lists are macros so that `concat!` makes each statement one literal. Macros are scoped by the text:
// they stand before the submodules that use them.
/// Columns of a family, aliased so they can be read next to user and organization columns.
macro_rules! family_columns {
    () => {
        "f.id AS f_id, f.org_id AS f_org_id, f.user_id AS f_user_id, f.aal AS f_aal, \
         f.auth_method AS f_auth_method, f.auth_time AS f_auth_time, f.expires_at AS f_expires_at, \
         f.refresh_jti AS f_refresh_jti, f.refresh_issued_at AS f_refresh_issued_at, \
         f.previous_jti AS f_previous_jti, f.previous_spent_at AS f_previous_spent_at, \
         f.revoked_reason AS f_revoked_reason"
    };
}

macro_rules! user_columns {
    () => {
        "u.id AS u_id, u.email AS u_email, u.email_verified AS u_email_verified, \
         u.display_name AS u_display_name, u.created_at AS u_created_at"
    };
}

/// A user with their password hash, for `credentials_from`; callers add the `WHERE`.
macro_rules! credentials_select {
    () => {
        concat!(
            "SELECT ",
            user_columns!(),
            ", (u.disabled_at IS NOT NULL) AS disabled, c.hash \
             FROM users u LEFT JOIN password_credentials c ON c.user_id = u.id"
        )
    };
}

macro_rules! org_columns {
    () => {
        concat!(
            "o.id AS o_id, o.slug AS o_slug, o.name AS o_name, o.signup_mode AS o_signup_mode, \
             o.signup_domains AS o_signup_domains, (o.disabled_at IS NOT NULL) AS o_disabled, \
             o.refresh_token_ttl AS o_refresh_token_ttl, o.rate_limits AS o_rate_limits, ",
            rules_columns!()
        )
    };
}

/// What a refresh needs of the family's organization, for `rules_from`.
macro_rules! rules_columns {
    () => {
        "o.mfa_required AS o_mfa_required, o.auth_methods AS o_auth_methods, o.access_token_ttl AS o_access_token_ttl"
    };
}

mod accounts;
mod admin;
mod factors;
mod families;
mod identities;
mod keys;
mod lifecycle;
mod organizations;
mod passkeys;
mod sso;

mod pg_migrations {
    refinery::embed_migrations!("migrations/postgres");
}

/// Any fixed number: serializes migrations of replicas starting together.
const MIGRATION_LOCK: i64 = 0x1d3e_5f4e_7e00_0001;

/// The Postgres backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: Pool,
}

/// Applies the pending migrations (`identsphere migrate`, and every start).
///
/// # Errors
/// When Postgres is unreachable or a migration fails.
pub async fn migrate(database: &PostgresConfig) -> anyhow::Result<()> {
    let (config, tls) = postgres_tls(database)?;
    let (mut client, connection) = config.connect(tls).await?;
    let driver = tokio::spawn(connection);
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let report = pg_migrations::migrations::runner().run_async(&mut client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
    drop(client);
    driver.abort();
    for applied in report?.applied_migrations() {
        tracing::info!(migration = %applied, "applied migration");
    }
    Ok(())
}

/// The statement wrappers of `PgStore`, one for each way of running a statement (`query_opt`: at most one row,
/// `query`: its rows, `execute`: how many rows it changed). Each takes a pooled connection, prepares `sql` on it
/// (once per connection) and runs it with the `tokio_postgres::Client` method of the same name.
macro_rules! pooled {
    ($($method:ident -> $answer:ty;)+) => {
        $(
            async fn $method(
                &self,
                sql: &str,
                params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
            ) -> Result<$answer, StoreError> {
                let client = self.client().await?;
                let statement = client.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
                client.$method(&statement, params).await.map_err(|e| pg_error(&e))
            }
        )+
    };
}

impl PgStore {
    /// A pool of at most `size` connections to `database`.
    ///
    /// # Errors
    /// When the URL cannot be parsed or the TLS settings cannot be used.
    pub fn connect(database: &PostgresConfig, size: usize) -> anyhow::Result<Self> {
        let (config, tls) = postgres_tls(database)?;
        let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(size)
            .timeouts(Timeouts {
                wait: Some(Duration::from_secs(5)),
                create: Some(Duration::from_secs(5)),
                recycle: Some(Duration::from_secs(5)),
            })
            .runtime(Runtime::Tokio1)
            .build()?;
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        let started = std::time::Instant::now();
        let client = self.pool.get().await;
        metrics::histogram!("identsphere_store_pool_wait_seconds", "store" => "postgres")
            .record(started.elapsed().as_secs_f64());
        let status = self.pool.status();
        metrics::gauge!("identsphere_store_pool_connections", "store" => "postgres", "state" => "size")
            .set(status.size as f64);
        metrics::gauge!("identsphere_store_pool_connections", "store" => "postgres", "state" => "available")
            .set(status.available as f64);
        client.map_err(|err| match err {
            deadpool_postgres::PoolError::Backend(e) => pg_error(&e),
            other => super::counted("postgres", StoreError::Unavailable(other.to_string())),
        })
    }

    pooled! {
        query_opt -> Option<Row>;
        query -> Vec<Row>;
        execute -> u64;
    }
}

fn pg_error(err: &tokio_postgres::Error) -> StoreError {
    super::counted("postgres", classify(err))
}

fn classify(err: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = err.as_db_error() {
        if *db.code() == SqlState::UNIQUE_VIOLATION {
            return StoreError::Conflict(db.constraint().unwrap_or("unknown").to_owned());
        }
        let code = db.code().code();
        // Connection exceptions, operator intervention (shutdown), too many connections.
        if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
            return StoreError::Unavailable(db.message().to_owned());
        }
        return StoreError::Internal(format!("{code}: {}", db.message()));
    }
    let io = std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>());
    if err.is_closed() || io { StoreError::Unavailable(err.to_string()) } else { StoreError::Internal(err.to_string()) }
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, column: &str) -> Result<T, StoreError> {
    row.try_get(column).map_err(|e| StoreError::Internal(format!("column {column}: {e}")))
}

fn parsed<T>(value: Option<T>, column: &str) -> Result<T, StoreError> {
    value.ok_or_else(|| StoreError::Internal(format!("column {column}: unknown value")))
}

fn rules_from(row: &Row) -> Result<SessionRules, StoreError> {
    let methods: Vec<&str> = get(row, "o_auth_methods")?;
    let ttl: Option<i32> = get(row, "o_access_token_ttl")?;
    parsed(session_rules(get(row, "o_mfa_required")?, &methods, ttl.map(i64::from)), "auth_methods")
}

fn family_from(row: &Row) -> Result<FamilyRecord, StoreError> {
    let previous = match (get::<Option<Uuid>>(row, "f_previous_jti")?, get(row, "f_previous_spent_at")?) {
        (Some(jti), Some(at)) => Some(Spent { jti, at }),
        _ => None,
    };
    let revoked = get::<Option<&str>>(row, "f_revoked_reason")?
        .map(|r| parsed(RevokeReason::parse(r), "revoked_reason"))
        .transpose()?;
    Ok(FamilyRecord {
        sid: get(row, "f_id")?,
        org_id: get(row, "f_org_id")?,
        user_id: get(row, "f_user_id")?,
        aal: parsed(Aal::parse(get(row, "f_aal")?), "aal")?,
        auth_method: parsed(AuthMethod::parse(get(row, "f_auth_method")?), "auth_method")?,
        auth_time: get(row, "f_auth_time")?,
        expires_at: get(row, "f_expires_at")?,
        current: RefreshPointer { jti: get(row, "f_refresh_jti")?, issued_at: get(row, "f_refresh_issued_at")? },
        previous,
        revoked,
    })
}

fn user_from(row: &Row) -> Result<UserProfile, StoreError> {
    Ok(UserProfile {
        id: get(row, "u_id")?,
        email: get(row, "u_email")?,
        email_verified: get(row, "u_email_verified")?,
        display_name: get(row, "u_display_name")?,
        created_at: get(row, "u_created_at")?,
    })
}

fn org_from(row: &Row) -> Result<Organization, StoreError> {
    let signup =
        parsed(SignupMode::from_columns(get(row, "o_signup_mode")?, get(row, "o_signup_domains")?), "signup_mode")?;
    Ok(Organization {
        id: get(row, "o_id")?,
        slug: get(row, "o_slug")?,
        name: get(row, "o_name")?,
        signup,
        disabled: get(row, "o_disabled")?,
        policy: OrgPolicy {
            sessions: rules_from(row)?,
            refresh_ttl: get::<Option<i32>>(row, "o_refresh_token_ttl")?.map(|s| time::Duration::seconds(s.into())),
            rate_limits: parsed(serde_json::from_value(get(row, "o_rate_limits")?).ok(), "rate_limits")?,
        },
    })
}

fn credentials_from(row: &Row) -> Result<Credentials, StoreError> {
    Ok(Credentials { user: user_from(row)?, disabled: get(row, "disabled")?, password_hash: get(row, "hash")? })
}

/// Sets a user's password hash, or gives them one: `$1` user, `$2` hash, `$3` now.
const SET_PASSWORD: &str = "INSERT INTO password_credentials (user_id, hash, updated_at) VALUES ($1, $2, $3) \
     ON CONFLICT (user_id) DO UPDATE SET hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at";

/// Records `audit` for `org_id`, on `target`, inside the transaction of the change. Its id is a UUIDv7:
/// entries of one process at the same millisecond still list in the order they happened.
async fn tx_audit(
    tx: &deadpool_postgres::Transaction<'_>,
    org_id: Uuid,
    audit: &Audit,
    target: Option<&str>,
) -> Result<(), StoreError> {
    let sql = "INSERT INTO audit_events (id, org_id, at, actor_id, actor_key_id, action, target, ip) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let (user, key) = audit.actor.columns();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
        [&Uuid::now_v7(), &org_id, &audit.at, &user, &key, &audit.action, &target, &audit.ip];
    tx_execute(tx, sql, &params).await.map(drop)
}

/// `PROVEN_ADDRESS_SQL` for `user_id`, inside a transaction.
async fn tx_prove_address(tx: &deadpool_postgres::Transaction<'_>, user_id: Uuid) -> Result<(), StoreError> {
    for sql in crate::store::PROVEN_ADDRESS_SQL {
        tx_execute(tx, &sql.replace("?1", "$1"), &[&user_id]).await?;
    }
    Ok(())
}

/// Runs one statement inside a transaction; returns its row count.
async fn tx_execute(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
    tx.execute(&statement, params).await.map_err(|e| pg_error(&e))
}

#[async_trait]
impl Probe for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.execute("SELECT 1", &[]).await.map(drop)
    }

    fn close(&self) {
        self.pool.close();
    }
}
