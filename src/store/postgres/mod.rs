//! The Postgres backend: organizations, users, memberships, credentials, session families and keys.
//!
//! All SQL lives here. Statements are prepared once per connection (`prepare_cached`); a rotation is a
//! single conditional `UPDATE`, which is what makes it atomic across replicas.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts};
use identsphere_actors::{
    Aal, AuthMethod, FamilyChange, FamilyRecord, FamilyStore, LoadedFamily, Origin, RefreshPointer, RevokeReason,
    SessionRules, Spent, StoreError, Subject, UserProfile,
};
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use super::{
    AccountStore, AdminStore, FactorStore, INVITATION_SPENT, KeyStore, LifecycleStore, OrganizationStore, Probe,
    spend_invitation_sql,
};
use crate::model::{
    ApiKey, Audit, AuditEvent, Credentials, Invitation, Joining, KeyAlgorithm, LinkPurpose, Member, MembershipChange,
    MembershipOutcome, NewAccount, NewLink, OrgPolicy, OrgRef, OrgUpdate, OrgUser, Organization, PolicyUpdate, Role,
    SecretHash, SessionContext, SessionInfo, SignupMode, StoredKey, TotpFactor, UserQuery, session_rules,
};

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

/// Columns of an invitation, for `invitation_from`.
macro_rules! invitation_columns {
    () => {
        "i.id, i.org_id, i.email, i.email_normalized, i.role, i.invited_by, i.created_at, i.expires_at"
    };
}

fn invitation_from(row: &Row) -> Result<Invitation, StoreError> {
    Ok(Invitation {
        id: get(row, "id")?,
        org_id: get(row, "org_id")?,
        email: get(row, "email")?,
        email_normalized: get(row, "email_normalized")?,
        role: parsed(Role::parse(get(row, "role")?), "role")?,
        invited_by: get(row, "invited_by")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

fn credentials_from(row: &Row) -> Result<Credentials, StoreError> {
    Ok(Credentials { user: user_from(row)?, disabled: get(row, "disabled")?, password_hash: get(row, "hash")? })
}

fn loaded_from(row: &Row) -> Result<LoadedFamily, StoreError> {
    Ok((family_from(row)?, Subject { user: user_from(row)?, disabled: get(row, "disabled")?, rules: rules_from(row)? }))
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

    async fn load(&self, sid: Uuid, seen_from: Option<Uuid>) -> Result<Option<LoadedFamily>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            family_columns!(),
            ", ",
            user_columns!(),
            ", ",
            rules_columns!(),
            ", (u.disabled_at IS NOT NULL OR o.disabled_at IS NOT NULL) AS disabled \
             FROM session_families f JOIN users u ON u.id = f.user_id \
             JOIN organizations o ON o.id = COALESCE($2, f.org_id) \
             WHERE f.id = $1"
        );
        self.query_opt(SQL, &[&sid, &seen_from]).await?.as_ref().map(loaded_from).transpose()
    }

    async fn rotate(
        &self,
        sid: Uuid,
        expected: Uuid,
        next: RefreshPointer,
        change: FamilyChange,
        now: OffsetDateTime,
    ) -> Result<Option<LoadedFamily>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE session_families f SET previous_jti = f.refresh_jti, previous_spent_at = $4, \
             refresh_jti = $3, refresh_issued_at = $5, last_used_at = $4, rotations = f.rotations + 1, \
             aal = COALESCE($6, f.aal), org_id = COALESCE($7, f.org_id), \
             expires_at = LEAST(f.expires_at, COALESCE($8, f.expires_at)) \
             FROM users u, organizations o \
             WHERE f.id = $1 AND f.refresh_jti = $2 AND f.revoked_at IS NULL AND f.expires_at > $4 \
             AND u.id = f.user_id AND o.id = COALESCE($7, f.org_id) AND u.disabled_at IS NULL \
             AND o.disabled_at IS NULL AND f.auth_method = ANY(o.auth_methods) \
             AND (NOT o.mfa_required OR COALESCE($6, f.aal) = 'aal2') \
             RETURNING ",
            family_columns!(),
            ", ",
            user_columns!(),
            ", ",
            rules_columns!(),
            ", false AS disabled"
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &sid,
            &expected,
            &next.jti,
            &now,
            &next.issued_at,
            &change.aal.map(Aal::as_str),
            &change.org_id,
            &change.expires_by,
        ];
        self.query_opt(SQL, &params).await?.as_ref().map(loaded_from).transpose()
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
            Joining::Invited { org_id, role, .. } | Joining::Added { org_id, role, .. } => (*org_id, *role),
        };
        let (email, normalized, role) = (account.email.as_typed(), account.email.normalized(), role.as_str());
        // An invitation's link came to this address: it is proven.
        let verified = matches!(account.joining, Joining::Invited { .. });
        let statements = [
            (
                "INSERT INTO users (id, email, email_normalized, display_name, created_at, email_verified) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    &account.user_id as &(dyn tokio_postgres::types::ToSql + Sync),
                    &email,
                    &normalized,
                    &account.display_name,
                    &account.now,
                    &verified,
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
        if let Joining::Invited { token_hash, .. } = &account.joining {
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&token_hash.as_slice(), &account.user_id, &account.now, &normalized];
            if tx_execute(&tx, spend_invitation_sql!("$"), &params).await? != 1 {
                return Err(StoreError::Conflict(INVITATION_SPENT.to_owned()));
            }
        }
        if let Joining::Added { org_id, audit, .. } = &account.joining {
            tx_audit(&tx, *org_id, audit, Some(&account.user_id.to_string())).await?;
        }
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(UserProfile {
            id: account.user_id,
            email: account.email.as_typed().to_owned(),
            email_verified: verified,
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
            .query_opt(
                "SELECT role FROM memberships WHERE user_id = $1 AND org_id = $2 AND disabled_at IS NULL",
                &[&user_id, &org_id],
            )
            .await?;
        row.map(|row| parsed(Role::parse(get(&row, "role")?), "role")).transpose()
    }

    async fn most_recent_org(&self, user_id: Uuid) -> Result<Option<Organization>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            org_columns!(),
            " FROM memberships m JOIN organizations o ON o.id = m.org_id \
             WHERE m.user_id = $1 AND m.disabled_at IS NULL \
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
            ", m.role, (u.disabled_at IS NOT NULL) AS user_disabled, t.confirmed_at AS totp_confirmed_at, \
             CASE WHEN t.confirmed_at IS NULL THEN 0 ELSE (SELECT count(*) FROM recovery_codes r \
                 WHERE r.user_id = f.user_id AND r.used_at IS NULL) END AS codes_left \
             FROM session_families f JOIN users u ON u.id = f.user_id \
             JOIN organizations o ON o.id = f.org_id \
             LEFT JOIN memberships m ON m.user_id = f.user_id AND m.org_id = f.org_id AND m.disabled_at IS NULL \
             LEFT JOIN totp_factors t ON t.user_id = f.user_id \
             WHERE f.id = $1"
        );
        let Some(row) = self.query_opt(SQL, &[&sid]).await? else { return Ok(None) };
        let role = get::<Option<&str>>(&row, "role")?.map(|r| parsed(Role::parse(r), "role")).transpose()?;
        Ok(Some(SessionContext {
            family: family_from(&row)?,
            user: user_from(&row)?,
            user_disabled: get(&row, "user_disabled")?,
            organization: org_from(&row)?,
            role,
            totp_confirmed_at: get(&row, "totp_confirmed_at")?,
            recovery_codes_left: u32::try_from(get::<i64>(&row, "codes_left")?).unwrap_or(u32::MAX),
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

#[async_trait]
impl OrganizationStore for PgStore {
    async fn create_org(&self, org: &Organization, owner: Uuid, audit: &Audit) -> Result<(), StoreError> {
        // A new organization starts with the default policy: only sign-up is chosen at creation.
        let (mode, domains) = org.signup.columns();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let insert = "INSERT INTO organizations (id, slug, name, signup_mode, signup_domains, created_at) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
        tx_execute(&tx, insert, &[&org.id, &org.slug, &org.name, &mode, &domains, &audit.at]).await?;
        let member = "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) \
                      VALUES ($1, $2, 'owner', $3, $3)";
        tx_execute(&tx, member, &[&owner, &org.id, &audit.at]).await?;
        tx_audit(&tx, org.id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))
    }

    async fn orgs_of(&self, user_id: Uuid) -> Result<Vec<(Organization, Role)>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            org_columns!(),
            ", m.role FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = $1 \
             ORDER BY o.name, o.id"
        );
        let rows = self.query(SQL, &[&user_id]).await?;
        rows.iter().map(|row| Ok((org_from(row)?, parsed(Role::parse(get(row, "role")?), "role")?))).collect()
    }

    async fn update_org(
        &self,
        org_id: Uuid,
        update: &OrgUpdate,
        audit: &Audit,
    ) -> Result<Option<Organization>, StoreError> {
        const SQL: &str = concat!(
            "UPDATE organizations o SET name = COALESCE($2, o.name), slug = COALESCE($3, o.slug), \
             signup_mode = COALESCE($4, o.signup_mode), signup_domains = COALESCE($5, o.signup_domains), \
             disabled_at = CASE WHEN $6::boolean IS NULL THEN o.disabled_at \
                                WHEN $6 THEN COALESCE(o.disabled_at, $7) ELSE NULL END, \
             mfa_required = COALESCE($8, o.mfa_required), auth_methods = COALESCE($9, o.auth_methods), \
             access_token_ttl = CASE WHEN $10 THEN $11 ELSE o.access_token_ttl END, \
             refresh_token_ttl = CASE WHEN $12 THEN $13 ELSE o.refresh_token_ttl END, \
             rate_limits = COALESCE($14, o.rate_limits) \
             WHERE o.id = $1 RETURNING ",
            org_columns!()
        );
        let signup = update.signup.as_ref().map(SignupMode::columns);
        let (mode, domains) = (signup.as_ref().map(|s| s.0), signup.as_ref().map(|s| s.1.clone()));
        let policy = &update.policy;
        let (access_set, access) = PolicyUpdate::ttl_columns(policy.access_ttl);
        let (refresh_set, refresh) = PolicyUpdate::ttl_columns(policy.refresh_ttl);
        let (methods, limits) = (policy.auth_method_names(), policy.rate_limits_json());
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 14] = [
            &org_id,
            &update.name,
            &update.slug,
            &mode,
            &domains,
            &update.disabled,
            &audit.at,
            &policy.mfa_required,
            &methods,
            &access_set,
            &access,
            &refresh_set,
            &refresh,
            &limits,
        ];
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let statement = tx.prepare_cached(SQL).await.map_err(|e| pg_error(&e))?;
        let row = tx.query_opt(&statement, &params).await.map_err(|e| pg_error(&e))?;
        let Some(org) = row.as_ref().map(org_from).transpose()? else { return Ok(None) };
        tx_audit(&tx, org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(Some(org))
    }

    async fn members(&self, org_id: Uuid) -> Result<Vec<Member>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            ", m.role, m.created_at AS joined_at FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 ORDER BY (m.role = 'owner') DESC, m.created_at, u.id"
        );
        let rows = self.query(SQL, &[&org_id]).await?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    user: user_from(row)?,
                    role: parsed(Role::parse(get(row, "role")?), "role")?,
                    joined_at: get(row, "joined_at")?,
                })
            })
            .collect()
    }

    async fn change_membership(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        change: MembershipChange,
        audit: &Audit,
    ) -> Result<MembershipOutcome, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        // The organization's row lock serializes membership changes: two owners demoting each other at
        // once cannot both see the other still there.
        tx_execute(&tx, "SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE", &[&org_id]).await?;
        let roles = tx
            .prepare_cached(
                "SELECT (SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2) AS role, \
                 (SELECT disabled_at IS NULL FROM memberships WHERE org_id = $1 AND user_id = $2) AS enabled, \
                 (SELECT count(*) FROM memberships WHERE org_id = $1 AND role = 'owner' AND disabled_at IS NULL) \
                 AS owners",
            )
            .await
            .map_err(|e| pg_error(&e))?;
        let row = tx.query_one(&roles, &[&org_id, &user_id]).await.map_err(|e| pg_error(&e))?;
        let Some(current) = get::<Option<&str>>(&row, "role")? else { return Ok(MembershipOutcome::NotAMember) };
        let (enabled, owners): (Option<bool>, i64) = (get(&row, "enabled")?, get(&row, "owners")?);
        if current == Role::Owner.as_str() && enabled == Some(true) && change.ends_ownership() && owners <= 1 {
            return Ok(MembershipOutcome::LastOwner);
        }
        match change {
            MembershipChange::Role(role) => {
                let sql = "UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2";
                tx_execute(&tx, sql, &[&org_id, &user_id, &role.as_str()]).await?;
            }
            MembershipChange::Remove | MembershipChange::Delete => {
                let sql = "DELETE FROM memberships WHERE org_id = $1 AND user_id = $2";
                tx_execute(&tx, sql, &[&org_id, &user_id]).await?;
            }
            MembershipChange::Disable(disabled) => {
                let sql = "UPDATE memberships SET disabled_at = CASE WHEN $3 THEN COALESCE(disabled_at, $4) END \
                           WHERE org_id = $1 AND user_id = $2";
                tx_execute(&tx, sql, &[&org_id, &user_id, &disabled, &audit.at]).await?;
            }
        }
        if change == MembershipChange::Delete {
            let sql = "DELETE FROM users WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)";
            tx_execute(&tx, sql, &[&user_id]).await?;
        }
        tx_audit(&tx, org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(MembershipOutcome::Done)
    }

    async fn add_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &SecretHash,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO invitations (id, org_id, email, email_normalized, role, token_hash, invited_by, \
                   created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        let i = invitation;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &i.id,
            &i.org_id,
            &i.email,
            &i.email_normalized,
            &i.role.as_str(),
            &token_hash.as_slice(),
            &i.invited_by,
            &i.created_at,
            &i.expires_at,
        ];
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        tx_execute(&tx, sql, &params).await?;
        tx_audit(&tx, i.org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))
    }

    async fn invitations(&self, org_id: Uuid, now: OffsetDateTime) -> Result<Vec<Invitation>, StoreError> {
        let sql = concat!(
            "SELECT ",
            invitation_columns!(),
            " FROM invitations i WHERE i.org_id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL \
             AND i.expires_at > $2 ORDER BY i.created_at, i.id"
        );
        self.query(sql, &[&org_id, &now]).await?.iter().map(invitation_from).collect()
    }

    async fn revoke_invitation(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let sql = "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND id = $2 \
                   AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3";
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        if tx_execute(&tx, sql, &[&org_id, &id, &audit.at]).await? != 1 {
            return Ok(false);
        }
        tx_audit(&tx, org_id, audit, audit.target.as_deref()).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn invitation(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Invitation>, StoreError> {
        let sql = concat!(
            "SELECT ",
            invitation_columns!(),
            " FROM invitations i WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL \
             AND i.expires_at > $2"
        );
        self.query_opt(sql, &[&token_hash.as_slice(), &now]).await?.as_ref().map(invitation_from).transpose()
    }

    async fn accept_invitation(
        &self,
        token_hash: &SecretHash,
        user_id: Uuid,
        audit: &Audit,
    ) -> Result<Option<Invitation>, StoreError> {
        let now = audit.at;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let spend = concat!(
            "UPDATE invitations i SET accepted_at = $3, accepted_by = $2 FROM users u \
             WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $3 \
             AND u.id = $2 AND u.email_normalized = i.email_normalized RETURNING ",
            invitation_columns!()
        );
        let statement = tx.prepare_cached(spend).await.map_err(|e| pg_error(&e))?;
        let row =
            tx.query_opt(&statement, &[&token_hash.as_slice(), &user_id, &now]).await.map_err(|e| pg_error(&e))?;
        let Some(invitation) = row.as_ref().map(invitation_from).transpose()? else { return Ok(None) };
        let join = "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) \
                    VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, org_id) DO NOTHING";
        tx_execute(&tx, join, &[&user_id, &invitation.org_id, &invitation.role.as_str(), &now]).await?;
        // The link reached the mailbox it was sent to: the address is proven.
        tx_execute(&tx, "UPDATE users SET email_verified = true WHERE id = $1", &[&user_id]).await?;
        tx_audit(&tx, invitation.org_id, audit, Some(&invitation.id.to_string())).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(Some(invitation))
    }

    async fn join_by_domain(&self, user_id: Uuid, org_id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let join = "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) \
                    VALUES ($1, $2, 'member', $3, $3) ON CONFLICT (user_id, org_id) DO NOTHING";
        if tx_execute(&tx, join, &[&user_id, &org_id, &audit.at]).await? != 1 {
            return Ok(false);
        }
        tx_audit(&tx, org_id, audit, Some(&user_id.to_string())).await?;
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(true)
    }

    async fn audit_events(
        &self,
        org_id: Uuid,
        before: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let sql = "SELECT id, at, actor_id, actor_key_id, action, target, ip FROM audit_events WHERE org_id = $1 \
                   AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3)) ORDER BY at DESC, id DESC LIMIT $4";
        let (at, id) = (before.map(|b| b.0), before.map_or(Uuid::nil(), |b| b.1));
        let rows = self.query(sql, &[&org_id, &at, &id, &i64::from(limit)]).await?;
        rows.iter()
            .map(|row| {
                Ok(AuditEvent {
                    id: get(row, "id")?,
                    at: get(row, "at")?,
                    actor_id: get(row, "actor_id")?,
                    actor_key_id: get(row, "actor_key_id")?,
                    action: get(row, "action")?,
                    target: get(row, "target")?,
                    ip: get(row, "ip")?,
                })
            })
            .collect()
    }

    async fn sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionInfo>, StoreError> {
        let sql = "SELECT id, org_id, aal, auth_method, created_at, last_used_at, expires_at, user_agent, ip \
                   FROM session_families WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
                   ORDER BY created_at DESC, id";
        let rows = self.query(sql, &[&user_id, &now]).await?;
        rows.iter()
            .map(|row| {
                Ok(SessionInfo {
                    sid: get(row, "id")?,
                    org_id: get(row, "org_id")?,
                    aal: parsed(Aal::parse(get(row, "aal")?), "aal")?,
                    auth_method: parsed(AuthMethod::parse(get(row, "auth_method")?), "auth_method")?,
                    created_at: get(row, "created_at")?,
                    last_used_at: get(row, "last_used_at")?,
                    expires_at: get(row, "expires_at")?,
                    user_agent: get(row, "user_agent")?,
                    ip: get(row, "ip")?,
                })
            })
            .collect()
    }
}

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
