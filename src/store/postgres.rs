//! The Postgres backend: organizations, users, memberships, credentials, session families and keys.
//!
//! All SQL lives here. Statements are prepared once per connection (`prepare_cached`); a rotation is a
//! single conditional `UPDATE`, which is what makes it atomic across replicas.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use identsphere_actors::{
    Aal, AuthMethod, FamilyRecord, FamilyStore, LoadedFamily, Origin, RefreshPointer, RevokeReason, Spent, StoreError,
    Subject, UserProfile,
};
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use super::{
    AccountStore, Credentials, FactorStore, Joining, KeyAlgorithm, KeyStore, LifecycleStore, LinkPurpose, NewAccount,
    NewLink, Organization, Probe, SecretHash, SessionContext, SignupMode, StoredKey, TotpFactor,
};
use crate::domain::{OrgRef, Role};

mod embedded {
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
pub async fn migrate(database_url: &str) -> anyhow::Result<()> {
    let (mut client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
    let driver = tokio::spawn(connection);
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
    drop(client);
    driver.abort();
    for applied in report?.applied_migrations() {
        tracing::info!(migration = %applied, "applied migration");
    }
    Ok(())
}

impl PgStore {
    /// A pool of at most `size` connections to `database_url`.
    ///
    /// # Errors
    /// When the URL cannot be parsed.
    pub fn connect(database_url: &str, size: usize) -> anyhow::Result<Self> {
        let config = deadpool_postgres::Config {
            url: Some(database_url.to_owned()),
            manager: Some(ManagerConfig { recycling_method: RecyclingMethod::Fast }),
            pool: Some(PoolConfig {
                max_size: size,
                timeouts: Timeouts {
                    wait: Some(Duration::from_secs(5)),
                    create: Some(Duration::from_secs(5)),
                    recycle: Some(Duration::from_secs(5)),
                },
                ..PoolConfig::default()
            }),
            ..deadpool_postgres::Config::default()
        };
        Ok(Self { pool: config.create_pool(Some(Runtime::Tokio1), NoTls)? })
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

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
        client.query_opt(&statement, params).await.map_err(|e| pg_error(&e))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
        client.query(&statement, params).await.map_err(|e| pg_error(&e))
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
        client.execute(&statement, params).await.map_err(|e| pg_error(&e))
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
             FROM users u JOIN password_credentials c ON c.user_id = u.id"
        )
    };
}

macro_rules! org_columns {
    () => {
        "o.id AS o_id, o.slug AS o_slug, o.name AS o_name, o.signup_mode AS o_signup_mode, \
         o.signup_domains AS o_signup_domains, (o.disabled_at IS NOT NULL) AS o_disabled"
    };
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
    let signup = match get::<&str>(row, "o_signup_mode")? {
        "closed" => SignupMode::Closed,
        "invite_only" => SignupMode::InviteOnly,
        "open" => SignupMode::Open,
        "domains" => SignupMode::Domains(get(row, "o_signup_domains")?),
        _ => return Err(StoreError::Internal("column signup_mode: unknown value".to_owned())),
    };
    Ok(Organization {
        id: get(row, "o_id")?,
        slug: get(row, "o_slug")?,
        name: get(row, "o_name")?,
        signup,
        disabled: get(row, "o_disabled")?,
    })
}

fn credentials_from(row: &Row) -> Result<Credentials, StoreError> {
    Ok(Credentials { user: user_from(row)?, disabled: get(row, "disabled")?, password_hash: get(row, "hash")? })
}

fn loaded_from(row: &Row) -> Result<LoadedFamily, StoreError> {
    Ok((family_from(row)?, Subject { user: user_from(row)?, disabled: get(row, "disabled")? }))
}

#[async_trait]
impl FamilyStore for PgStore {
    async fn insert(&self, family: &FamilyRecord, origin: &Origin, now: OffsetDateTime) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO session_families (id, org_id, user_id, aal, auth_method, auth_time, created_at, \
             last_used_at, expires_at, user_agent, ip, refresh_jti, refresh_issued_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12)",
            &[
                &family.sid,
                &family.org_id,
                &family.user_id,
                &family.aal.as_str(),
                &family.auth_method.as_str(),
                &family.auth_time,
                &now,
                &family.expires_at,
                &origin.user_agent,
                &origin.ip,
                &family.current.jti,
                &family.current.issued_at,
            ],
        )
        .await
        .map(drop)
    }

    async fn load(&self, sid: Uuid) -> Result<Option<LoadedFamily>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            family_columns!(),
            ", ",
            user_columns!(),
            ", (u.disabled_at IS NOT NULL OR o.disabled_at IS NOT NULL) AS disabled \
             FROM session_families f JOIN users u ON u.id = f.user_id JOIN organizations o ON o.id = f.org_id \
             WHERE f.id = $1"
        );
        self.query_opt(SQL, &[&sid]).await?.as_ref().map(loaded_from).transpose()
    }

    async fn rotate(
        &self,
        sid: Uuid,
        expected: Uuid,
        next: RefreshPointer,
        aal: Option<Aal>,
        now: OffsetDateTime,
    ) -> Result<Option<LoadedFamily>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE session_families f SET previous_jti = f.refresh_jti, previous_spent_at = $4, \
             refresh_jti = $3, refresh_issued_at = $5, last_used_at = $4, rotations = f.rotations + 1, \
             aal = COALESCE($6, f.aal) \
             FROM users u, organizations o \
             WHERE f.id = $1 AND f.refresh_jti = $2 AND f.revoked_at IS NULL AND f.expires_at > $4 \
             AND u.id = f.user_id AND o.id = f.org_id AND u.disabled_at IS NULL AND o.disabled_at IS NULL \
             RETURNING ",
            family_columns!(),
            ", ",
            user_columns!(),
            ", false AS disabled"
        );
        self.query_opt(SQL, &[&sid, &expected, &next.jti, &now, &next.issued_at, &aal.map(Aal::as_str)])
            .await?
            .as_ref()
            .map(loaded_from)
            .transpose()
    }

    async fn revoke(&self, sids: &[Uuid], reason: RevokeReason, now: OffsetDateTime) -> Result<(), StoreError> {
        self.execute(
            "UPDATE session_families SET revoked_at = $3, revoked_reason = $2 \
             WHERE id = ANY($1) AND revoked_at IS NULL",
            &[&sids, &reason.as_str(), &now],
        )
        .await
        .map(drop)
    }
}

#[async_trait]
impl AccountStore for PgStore {
    async fn find_org(&self, org: &OrgRef) -> Result<Option<Organization>, StoreError> {
        const BY_ID: &str = concat!("SELECT ", org_columns!(), " FROM organizations o WHERE o.id = $1");
        const BY_SLUG: &str = concat!("SELECT ", org_columns!(), " FROM organizations o WHERE o.slug = $1");
        let row = match org {
            OrgRef::Id(id) => self.query_opt(BY_ID, &[id]).await?,
            OrgRef::Slug(slug) => self.query_opt(BY_SLUG, &[slug]).await?,
        };
        row.as_ref().map(org_from).transpose()
    }

    async fn create_account(&self, account: &NewAccount) -> Result<UserProfile, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let (org_id, role) = match &account.joining {
            Joining::Personal { id, slug, name } => {
                let sql = "INSERT INTO organizations (id, slug, name, created_at) VALUES ($1, $2, $3, $4)";
                let statement = tx.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
                tx.execute(&statement, &[id, slug, name, &account.now]).await.map_err(|e| pg_error(&e))?;
                (*id, Role::Owner)
            }
            Joining::Existing(id) => (*id, Role::Member),
        };
        let (email, normalized, role) = (account.email.as_typed(), account.email.normalized(), role.as_str());
        let statements = [
            (
                "INSERT INTO users (id, email, email_normalized, display_name, created_at) VALUES ($1, $2, $3, $4, $5)",
                vec![
                    &account.user_id as &(dyn tokio_postgres::types::ToSql + Sync),
                    &email,
                    &normalized,
                    &account.display_name,
                    &account.now,
                ],
            ),
            (
                "INSERT INTO password_credentials (user_id, hash, updated_at) VALUES ($1, $2, $3)",
                vec![&account.user_id, &account.password_hash, &account.now],
            ),
            (
                "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) VALUES ($1, $2, $3, $4, $4)",
                vec![&account.user_id, &org_id, &role, &account.now],
            ),
        ];
        for (sql, params) in statements {
            let statement = tx.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
            tx.execute(&statement, &params).await.map_err(|e| pg_error(&e))?;
        }
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(UserProfile {
            id: account.user_id,
            email: account.email.as_typed().to_owned(),
            email_verified: false,
            display_name: account.display_name.clone(),
            created_at: account.now,
        })
    }

    async fn credentials(&self, email_normalized: &str) -> Result<Option<Credentials>, StoreError> {
        const SQL: &str = concat!(credentials_select!(), " WHERE u.email_normalized = $1");
        let Some(row) = self.query_opt(SQL, &[&email_normalized]).await? else { return Ok(None) };
        credentials_from(&row).map(Some)
    }

    async fn set_password_hash(&self, user_id: Uuid, hash: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        self.execute(SET_PASSWORD, &[&user_id, &hash, &now]).await.map(drop)
    }

    async fn role(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<Role>, StoreError> {
        let row = self
            .query_opt("SELECT role FROM memberships WHERE user_id = $1 AND org_id = $2", &[&user_id, &org_id])
            .await?;
        row.map(|row| parsed(Role::parse(get(&row, "role")?), "role")).transpose()
    }

    async fn most_recent_org(&self, user_id: Uuid) -> Result<Option<Organization>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            org_columns!(),
            " FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 \
             ORDER BY m.last_used_at DESC, m.created_at DESC LIMIT 1"
        );
        self.query_opt(SQL, &[&user_id]).await?.as_ref().map(org_from).transpose()
    }

    async fn touch_membership(&self, user_id: Uuid, org_id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        self.execute(
            "UPDATE memberships SET last_used_at = $3 WHERE user_id = $1 AND org_id = $2",
            &[&user_id, &org_id, &now],
        )
        .await
        .map(drop)
    }

    async fn session_context(&self, sid: Uuid) -> Result<Option<SessionContext>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            family_columns!(),
            ", ",
            user_columns!(),
            ", ",
            org_columns!(),
            ", m.role, (u.disabled_at IS NOT NULL) AS user_disabled FROM session_families f JOIN users u ON u.id = f.user_id \
             JOIN organizations o ON o.id = f.org_id \
             LEFT JOIN memberships m ON m.user_id = f.user_id AND m.org_id = f.org_id WHERE f.id = $1"
        );
        let Some(row) = self.query_opt(SQL, &[&sid]).await? else { return Ok(None) };
        let role = get::<Option<&str>>(&row, "role")?.map(|r| parsed(Role::parse(r), "role")).transpose()?;
        Ok(Some(SessionContext {
            family: family_from(&row)?,
            user: user_from(&row)?,
            user_disabled: get(&row, "user_disabled")?,
            organization: org_from(&row)?,
            role,
        }))
    }

    async fn live_families(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        let rows = self
            .query(
                "SELECT id, org_id FROM session_families WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2",
                &[&user_id, &now],
            )
            .await?;
        rows.iter().map(|row| Ok((get(row, "id")?, get(row, "org_id")?))).collect()
    }
}

#[async_trait]
impl KeyStore for PgStore {
    async fn published_keys(&self, now: OffsetDateTime) -> Result<Vec<StoredKey>, StoreError> {
        let rows = self
            .query(
                "SELECT kid, algorithm, sealed_private, created_at, activates_at, retires_at, generation \
                 FROM signing_keys WHERE retires_at IS NULL OR retires_at > $1 ORDER BY generation DESC",
                &[&now],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredKey {
                    kid: get(row, "kid")?,
                    algorithm: parsed(KeyAlgorithm::parse(get(row, "algorithm")?), "algorithm")?,
                    sealed: get(row, "sealed_private")?,
                    created_at: get(row, "created_at")?,
                    activates_at: get(row, "activates_at")?,
                    retires_at: get(row, "retires_at")?,
                    generation: get(row, "generation")?,
                })
            })
            .collect()
    }

    async fn add_key(&self, key: &StoredKey, retire_others_at: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO signing_keys (kid, algorithm, sealed_private, created_at, activates_at, generation) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(|e| pg_error(&e))?;
        let inserted = tx
            .execute(
                &insert,
                &[&key.kid, &key.algorithm.as_str(), &key.sealed, &key.created_at, &key.activates_at, &key.generation],
            )
            .await
            .map_err(|e| pg_error(&e))?;
        if inserted == 1
            && let Some(at) = retire_others_at
        {
            let retire = tx
                .prepare_cached(
                    "UPDATE signing_keys SET retires_at = $3 \
                     WHERE algorithm = $1 AND generation < $2 AND (retires_at IS NULL OR retires_at > $3)",
                )
                .await
                .map_err(|e| pg_error(&e))?;
            tx.execute(&retire, &[&key.algorithm.as_str(), &key.generation, &at]).await.map_err(|e| pg_error(&e))?;
        }
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(inserted == 1)
    }
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

/// Sets a user's password hash: `$1` user, `$2` hash, `$3` now.
const SET_PASSWORD: &str = "UPDATE password_credentials SET hash = $2, updated_at = $3 WHERE user_id = $1";
/// Spends a user's outstanding reset links: `$1` user, `$2` now, `$3` the reset purpose.
const SPEND_RESET_LINKS: &str =
    "UPDATE action_tokens SET used_at = $2 WHERE user_id = $1 AND purpose = $3 AND used_at IS NULL";

/// Runs one statement inside a transaction; returns its row count.
async fn tx_execute(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
    tx.execute(&statement, params).await.map_err(|e| pg_error(&e))
}

/// The hashes as `bytea` parameters.
fn hash_slices(hashes: &[SecretHash]) -> Vec<&[u8]> {
    hashes.iter().map(<[u8; 32]>::as_slice).collect()
}

#[async_trait]
impl FactorStore for PgStore {
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError> {
        let sql = "SELECT sealed_secret, created_at, confirmed_at FROM totp_factors WHERE user_id = $1";
        let Some(row) = self.query_opt(sql, &[&user_id]).await? else { return Ok(None) };
        Ok(Some(TotpFactor {
            sealed_secret: get(&row, "sealed_secret")?,
            created_at: get(&row, "created_at")?,
            confirmed_at: get(&row, "confirmed_at")?,
        }))
    }

    async fn begin_totp(&self, user_id: Uuid, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError> {
        let sql = "INSERT INTO totp_factors (user_id, sealed_secret, created_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (user_id) DO UPDATE SET sealed_secret = EXCLUDED.sealed_secret, \
                   created_at = EXCLUDED.created_at, last_step = NULL WHERE totp_factors.confirmed_at IS NULL";
        Ok(self.execute(sql, &[&user_id, &sealed_secret, &now]).await? == 1)
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_codes: &[SecretHash],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let confirm = "UPDATE totp_factors SET confirmed_at = $3, last_step = $2 \
                       WHERE user_id = $1 AND confirmed_at IS NULL";
        if tx_execute(&tx, confirm, &[&user_id, &step, &now]).await? != 1 {
            return Ok(false);
        }
        tx_execute(&tx, "DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?;
        let insert = "INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, unnest($2::bytea[])";
        tx_execute(&tx, insert, &[&user_id, &hash_slices(recovery_codes)]).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND confirmed_at IS NOT NULL \
                   AND (last_step IS NULL OR last_step < $2)";
        Ok(self.execute(sql, &[&user_id, &step]).await? == 1)
    }

    async fn spend_recovery_code(
        &self,
        user_id: Uuid,
        code: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";
        Ok(self.execute(sql, &[&user_id, &code.as_slice(), &now]).await? == 1)
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32, StoreError> {
        let sql = "SELECT count(*) AS left FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL";
        let row = self.query_opt(sql, &[&user_id]).await?;
        let left: i64 = row.as_ref().map(|r| get(r, "left")).transpose()?.unwrap_or(0);
        Ok(u32::try_from(left).unwrap_or(u32::MAX))
    }

    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx_execute(&tx, "DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?;
        let removed = tx_execute(&tx, "DELETE FROM totp_factors WHERE user_id = $1", &[&user_id]).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(removed == 1)
    }

    async fn spend_once(&self, jti: Uuid, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError> {
        // The expired entries go first, in the same round trip's transaction: the table stays small.
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx_execute(&tx, "DELETE FROM spent_tokens WHERE expires_at <= $1", &[&now]).await?;
        let insert = "INSERT INTO spent_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING";
        let spent = tx_execute(&tx, insert, &[&jti, &expires_at]).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(spent == 1)
    }
}

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
