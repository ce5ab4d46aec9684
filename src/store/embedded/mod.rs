//! The embedded backend: everything Postgres and Redis hold, in one SQLite file under the data directory.
//!
//! For trying IdentSphere, development and small single-node installs. It implements the same traits as
//! the Postgres + Redis backend, with the same semantics: rotation is a conditional `UPDATE`, the
//! denylist survives a restart (it is a table of the same file), writes are durable at commit
//! (`synchronous = FULL`). SQLite work runs on the blocking pool, never on the async threads. A lock file
//! keeps a second process off the same directory.
//!
//! This module holds the store itself: opening it, running work on the connection, the versions cached
//! views depend on, and the conversions and columns every part shares. `data_dir` owns the directory, its
//! lock and the generated key-encryption key; each other submodule implements one of the store traits.

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use identsphere_actors::{
    Aal, AuthMethod, Changed, FamilyRecord, RefreshPointer, RevokeReason, SessionRules, Spent, StoreError, UserProfile,
};
use rusqlite::{Connection, OptionalExtension as _, Row, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::Probe;
use crate::model::{Audit, Credentials, OrgPolicy, OrgRef, Organization, SignupMode, session_rules};

// A macro where `concat!` needs the columns as a literal. Macros are scoped by the text: it stands before the
// submodules that use it.
/// What a refresh needs of the family's organization, for `rules_from`.
macro_rules! rules_columns {
    () => {
        "o.mfa_required AS o_mfa_required, o.auth_methods AS o_auth_methods, o.access_token_ttl AS o_access_token_ttl"
    };
}

mod accounts;
mod admin;
mod data_dir;
mod denylist;
mod factors;
mod families;
mod identities;
mod keys;
mod lifecycle;
mod limiter;
mod organizations;
mod passkeys;
mod sso;

pub use data_dir::embedded_kek;

mod sqlite_migrations {
    refinery::embed_migrations!("migrations/sqlite");
}

const DATABASE_FILE: &str = "identsphere.db";

/// The embedded backend. Cheap to clone; one connection, used from the blocking pool.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    /// The versions cached session views depend on: in memory, since this process is the only node.
    versions: Arc<Mutex<Versions>>,
    /// Held open (and locked) for as long as any clone lives: the directory is ours.
    _lock: Arc<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Versions of what changed, counting up; what never changed (or was forgotten) reads as `floor`.
#[derive(Debug, Default)]
struct Versions {
    last: u64,
    floor: u64,
    changed: std::collections::HashMap<Changed, u64>,
}

impl Versions {
    /// More changed things than this are forgotten at once, and every version moves past what was issued.
    const REMEMBERED: usize = 100_000;

    fn get(&self, of: Changed) -> u64 {
        self.changed.get(&of).copied().unwrap_or(self.floor)
    }

    fn bump(&mut self, of: Changed) {
        self.last += 1;
        self.changed.insert(of, self.last);
        if self.changed.len() > Self::REMEMBERED {
            // No view was cached under `last` yet (it was issued just now): every version read from here on
            // differs from every one a cache holds.
            self.changed.clear();
            self.floor = self.last;
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, takes the directory's lock and migrates.
    ///
    /// # Errors
    /// When the directory cannot be created, another process holds it, or SQLite fails.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let lock = data_dir::lock(data_dir)?;
        let mut connection = Connection::open(data_dir.join(DATABASE_FILE))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        for applied in sqlite_migrations::migrations::runner().run(&mut connection)?.applied_migrations() {
            tracing::info!(migration = %applied, "applied migration");
        }
        let database = data_dir.join(DATABASE_FILE);
        for path in ["", "-wal", "-shm"].map(|suffix| PathBuf::from(format!("{}{suffix}", database.display()))) {
            if path.exists() {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
            }
        }
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            versions: Arc::new(Mutex::new(Versions::default())),
            _lock: Arc::new(lock),
        })
    }

    fn versions(&self) -> Result<std::sync::MutexGuard<'_, Versions>, StoreError> {
        self.versions.lock().map_err(|_| StoreError::Internal("versions lock poisoned".into()))
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let mut connection = connection.lock().map_err(|_| StoreError::Internal("connection poisoned".into()))?;
            metrics::histogram!("identsphere_store_pool_wait_seconds", "store" => "embedded")
                .record(started.elapsed().as_secs_f64());
            work(&mut connection).map_err(|e| sqlite_error(&e))
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

fn sqlite_error(err: &rusqlite::Error) -> StoreError {
    super::counted("embedded", classify(err))
}

fn classify(err: &rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = err {
        match failure.code {
            rusqlite::ErrorCode::ConstraintViolation => {
                // "UNIQUE constraint failed: users.email_normalized" -> Postgres' name, users_email_normalized_key.
                if let Some(columns) = message.as_deref().and_then(|m| m.strip_prefix("UNIQUE constraint failed: ")) {
                    return StoreError::Conflict(format!("{}_key", columns.replace(['.', ','], "_").replace(' ', "")));
                }
            }
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                return StoreError::Unavailable(err.to_string());
            }
            _ => {}
        }
    }
    StoreError::Internal(err.to_string())
}

fn ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn at(ms: i64) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| conversion(0, e))
}

fn conversion(column: usize, err: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Blob, Box::new(err))
}

fn unknown(column: &str) -> rusqlite::Error {
    rusqlite::Error::InvalidColumnName(format!("{column}: unknown value"))
}

fn uuid(row: &Row<'_>, column: &str) -> rusqlite::Result<Uuid> {
    let bytes: Vec<u8> = row.get(column)?;
    Uuid::from_slice(&bytes).map_err(|e| conversion(0, e))
}

fn opt_uuid(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.get(column)?;
    bytes.map(|b| Uuid::from_slice(&b).map_err(|e| conversion(0, e))).transpose()
}

fn time_at(row: &Row<'_>, column: &str) -> rusqlite::Result<OffsetDateTime> {
    at(row.get(column)?)
}

const FAMILY_COLUMNS: &str = "f.id AS f_id, f.org_id AS f_org_id, f.user_id AS f_user_id, f.aal AS f_aal, \
     f.auth_method AS f_auth_method, f.auth_time AS f_auth_time, f.expires_at AS f_expires_at, \
     f.refresh_jti AS f_refresh_jti, f.refresh_issued_at AS f_refresh_issued_at, \
     f.previous_jti AS f_previous_jti, f.previous_spent_at AS f_previous_spent_at, \
     f.revoked_reason AS f_revoked_reason";
const USER_COLUMNS: &str = "u.id AS u_id, u.email AS u_email, u.email_verified AS u_email_verified, \
     u.display_name AS u_display_name, u.created_at AS u_created_at";
const ORG_COLUMNS: &str = concat!(
    "o.id AS o_id, o.slug AS o_slug, o.name AS o_name, o.signup_mode AS o_signup_mode, \
     o.signup_domains AS o_signup_domains, (o.disabled_at IS NOT NULL) AS o_disabled, \
     o.refresh_token_ttl AS o_refresh_token_ttl, o.rate_limits AS o_rate_limits, ",
    rules_columns!()
);

fn rules_from(row: &Row<'_>) -> rusqlite::Result<SessionRules> {
    let methods: String = row.get("o_auth_methods")?;
    let methods: Vec<String> = serde_json::from_str(&methods).map_err(|e| conversion(0, e))?;
    session_rules(row.get("o_mfa_required")?, &methods, row.get("o_access_token_ttl")?)
        .ok_or_else(|| unknown("auth_methods"))
}

/// A user with their password hash, for `credentials_from`; callers add the `WHERE`.
const CREDENTIALS_SELECT: &str = "SELECT u.id AS u_id, u.email AS u_email, u.email_verified AS u_email_verified, \
     u.display_name AS u_display_name, u.created_at AS u_created_at, (u.disabled_at IS NOT NULL) AS disabled, p.hash \
     FROM users u LEFT JOIN password_credentials p ON p.user_id = u.id";
/// Sets a user's password hash, or gives them one: `?1` user, `?2` hash, `?3` now.
const SET_PASSWORD: &str = "INSERT INTO password_credentials (user_id, hash, updated_at) VALUES (?1, ?2, ?3) \
     ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at";

/// Records `audit` for `org_id`, on `target`, inside the transaction of the change. Its id is a UUIDv7:
/// entries of one process at the same millisecond still list in the order they happened.
/// `PROVEN_ADDRESS_SQL` for `user_id`, inside a transaction.
fn prove_address(connection: &Connection, user_id: Uuid) -> rusqlite::Result<()> {
    for sql in crate::store::PROVEN_ADDRESS_SQL {
        connection.prepare_cached(sql)?.execute([user_id.as_bytes().as_slice()])?;
    }
    Ok(())
}

fn audit_row(connection: &Connection, org_id: Uuid, audit: &Audit, target: Option<&str>) -> rusqlite::Result<()> {
    connection
        .prepare_cached(
            "INSERT INTO audit_events (id, org_id, at, actor_id, actor_key_id, action, target, ip) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            Uuid::now_v7().as_bytes().as_slice(),
            org_id.as_bytes().as_slice(),
            ms(audit.at),
            audit.actor.columns().0.map(|id| id.as_bytes().to_vec()),
            audit.actor.columns().1.map(|id| id.as_bytes().to_vec()),
            audit.action,
            target,
            audit.ip,
        ])
        .map(drop)
}

fn credentials_from(row: &Row<'_>) -> rusqlite::Result<Credentials> {
    Ok(Credentials { user: user_from(row)?, disabled: row.get("disabled")?, password_hash: row.get("hash")? })
}

fn family_from(row: &Row<'_>) -> rusqlite::Result<FamilyRecord> {
    let previous = match (opt_uuid(row, "f_previous_jti")?, row.get::<_, Option<i64>>("f_previous_spent_at")?) {
        (Some(jti), Some(spent)) => Some(Spent { jti, at: at(spent)? }),
        _ => None,
    };
    let revoked = row
        .get::<_, Option<String>>("f_revoked_reason")?
        .map(|r| RevokeReason::parse(&r).ok_or_else(|| unknown("revoked_reason")))
        .transpose()?;
    Ok(FamilyRecord {
        sid: uuid(row, "f_id")?,
        org_id: uuid(row, "f_org_id")?,
        user_id: uuid(row, "f_user_id")?,
        aal: Aal::parse(&row.get::<_, String>("f_aal")?).ok_or_else(|| unknown("aal"))?,
        auth_method: AuthMethod::parse(&row.get::<_, String>("f_auth_method")?)
            .ok_or_else(|| unknown("auth_method"))?,
        auth_time: time_at(row, "f_auth_time")?,
        expires_at: time_at(row, "f_expires_at")?,
        current: RefreshPointer { jti: uuid(row, "f_refresh_jti")?, issued_at: time_at(row, "f_refresh_issued_at")? },
        previous,
        revoked,
    })
}

fn user_from(row: &Row<'_>) -> rusqlite::Result<UserProfile> {
    Ok(UserProfile {
        id: uuid(row, "u_id")?,
        email: row.get("u_email")?,
        email_verified: row.get("u_email_verified")?,
        display_name: row.get("u_display_name")?,
        created_at: time_at(row, "u_created_at")?,
    })
}

fn org_from(row: &Row<'_>) -> rusqlite::Result<Organization> {
    let domains: String = row.get("o_signup_domains")?;
    let domains = serde_json::from_str(&domains).map_err(|e| conversion(0, e))?;
    let signup = SignupMode::from_columns(&row.get::<_, String>("o_signup_mode")?, domains)
        .ok_or_else(|| unknown("signup_mode"))?;
    Ok(Organization {
        id: uuid(row, "o_id")?,
        slug: row.get("o_slug")?,
        name: row.get("o_name")?,
        signup,
        disabled: row.get("o_disabled")?,
        policy: OrgPolicy {
            sessions: rules_from(row)?,
            refresh_ttl: row.get::<_, Option<i64>>("o_refresh_token_ttl")?.map(time::Duration::seconds),
            rate_limits: serde_json::from_str(&row.get::<_, String>("o_rate_limits")?).map_err(|e| conversion(0, e))?,
        },
    })
}

fn find_org(connection: &Connection, org: &OrgRef) -> rusqlite::Result<Option<Organization>> {
    let (column, key): (&str, Box<dyn rusqlite::ToSql>) = match org {
        OrgRef::Id(id) => ("o.id", Box::new(id.as_bytes().to_vec())),
        OrgRef::Slug(slug) => ("o.slug", Box::new(slug.clone())),
    };
    let sql = format!("SELECT {ORG_COLUMNS} FROM organizations o WHERE {column} = ?1");
    connection.prepare_cached(&sql)?.query_row([key], org_from).optional()
}

#[async_trait]
impl Probe for SqliteStore {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| c.query_row("SELECT 1", [], |_| Ok(()))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_never_comes_back_even_when_the_remembered_ones_are_forgotten() {
        let mut versions = Versions::default();
        let (ada, acme) = (Changed::User(Uuid::new_v4()), Changed::Organization(Uuid::new_v4()));
        let mut adas = vec![versions.get(ada)];
        assert_eq!(versions.get(acme), adas[0], "never changed: the floor");
        for _ in 0..2 {
            versions.bump(ada);
            adas.push(versions.get(ada));
        }
        assert_eq!(versions.get(acme), adas[0], "a change touches only what changed");
        // Past the limit everything is forgotten at once: a view cached under any earlier version of a thing
        // no longer matches it.
        let acmes = [versions.get(acme)];
        for _ in 0..Versions::REMEMBERED {
            versions.bump(Changed::Family(Uuid::new_v4()));
        }
        assert!(versions.changed.is_empty(), "forgotten");
        assert!(!adas.contains(&versions.get(ada)), "{adas:?}");
        assert!(!acmes.contains(&versions.get(acme)), "{acmes:?}");
        versions.bump(ada);
        assert!(!adas.contains(&versions.get(ada)));
    }
}
