//! The embedded backend: everything Postgres and Redis hold, in one SQLite file under the data directory.
//!
//! For trying IdentSphere, development and small single-node installs. It implements the same traits as
//! the Postgres + Redis backend, with the same semantics: rotation is a conditional `UPDATE`, the
//! denylist survives a restart (it is a table of the same file), writes are durable at commit
//! (`synchronous = FULL`). SQLite work runs on the blocking pool, never on the async threads. A lock file
//! keeps a second process off the same directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, anyhow, bail};
use async_trait::async_trait;
use base64::Engine as _;
use identsphere_actors::{
    Aal, AuthMethod, Denylist, FamilyRecord, FamilyStore, LoadedFamily, Origin, RefreshPointer, Revocation,
    RevocationPage, RevokeReason, Revoked, Spent, StoreError, Subject, UserProfile,
};
use rusqlite::{Connection, OptionalExtension as _, Row, named_params, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AccountStore, Credentials, FactorStore, Joining, KeyAlgorithm, KeyStore, LifecycleStore, LinkPurpose, NewAccount,
    NewLink, Organization, Probe, Rate, RateLimiter, SecretHash, SessionContext, SignupMode, StoredKey, TotpFactor,
};
use crate::config::KeyEncryptionKey;
use crate::domain::{OrgRef, Role};

mod sqlite_migrations {
    refinery::embed_migrations!("migrations/sqlite");
}

const DATABASE_FILE: &str = "identsphere.db";
const LOCK_FILE: &str = "identsphere.lock";
const KEK_FILE: &str = "key-encryption-key";

/// The embedded backend. Cheap to clone; one connection, used from the blocking pool.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    /// Held open (and locked) for as long as any clone lives: the directory is ours.
    _lock: Arc<File>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// Creates `dir` (owner-only) if needed and returns it.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`, takes the directory's lock and migrates.
    ///
    /// # Errors
    /// When the directory cannot be created, another process holds it, or SQLite fails.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        private_dir(data_dir).with_context(|| format!("creating the data directory {}", data_dir.display()))?;
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path)?;
        if lock.try_lock().is_err() {
            bail!(
                "the data directory {} is in use by another IdentSphere process (it holds {}); \
                 the embedded store serves a single node",
                data_dir.display(),
                lock_path.display()
            );
        }
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
        Ok(Self { connection: Arc::new(Mutex::new(connection)), _lock: Arc::new(lock) })
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

/// The key-encryption key of an embedded install: from the environment if set, else generated once into
/// the data directory (owner-only).
///
/// # Errors
/// When the file cannot be read or written, or holds something else than 32 bytes of base64.
pub fn embedded_kek(data_dir: &Path, configured: Option<&KeyEncryptionKey>) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(kek) = configured {
        return Ok(kek.clone());
    }
    private_dir(data_dir)?;
    let path = data_dir.join(KEK_FILE);
    if !path.exists() {
        let mut key = [0u8; 32];
        aws_lc_rs::rand::fill(&mut key).map_err(|_| anyhow!("no randomness"))?;
        let mut file = OpenOptions::new().create_new(true).write(true).mode(0o600).open(&path)?;
        file.write_all(base64::engine::general_purpose::STANDARD.encode(key).as_bytes())?;
        file.sync_all()?;
        tracing::info!(path = %path.display(), "generated the key-encryption key");
    }
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| anyhow!("{} is not base64", path.display()))?;
    Ok(KeyEncryptionKey(bytes.try_into().map_err(|_| anyhow!("{} must hold 32 bytes", path.display()))?))
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
const ORG_COLUMNS: &str = "o.id AS o_id, o.slug AS o_slug, o.name AS o_name, o.signup_mode AS o_signup_mode, \
     o.signup_domains AS o_signup_domains, (o.disabled_at IS NOT NULL) AS o_disabled";

/// A user with their password hash, for `credentials_from`; callers add the `WHERE`.
const CREDENTIALS_SELECT: &str = "SELECT u.id AS u_id, u.email AS u_email, u.email_verified AS u_email_verified, \
     u.display_name AS u_display_name, u.created_at AS u_created_at, (u.disabled_at IS NOT NULL) AS disabled, p.hash \
     FROM users u JOIN password_credentials p ON p.user_id = u.id";
/// Sets a user's password hash: `?1` user, `?2` hash, `?3` now.
const SET_PASSWORD: &str = "UPDATE password_credentials SET hash = ?2, updated_at = ?3 WHERE user_id = ?1";
/// Spends a user's outstanding reset links: `?1` user, `?2` now, `?3` the reset purpose.
const SPEND_RESET_LINKS: &str =
    "UPDATE action_tokens SET used_at = ?2 WHERE user_id = ?1 AND purpose = ?3 AND used_at IS NULL";

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
    let signup = match row.get::<_, String>("o_signup_mode")?.as_str() {
        "closed" => SignupMode::Closed,
        "invite_only" => SignupMode::InviteOnly,
        "open" => SignupMode::Open,
        "domains" => {
            let domains: String = row.get("o_signup_domains")?;
            SignupMode::Domains(serde_json::from_str(&domains).map_err(|e| conversion(0, e))?)
        }
        _ => return Err(unknown("signup_mode")),
    };
    Ok(Organization {
        id: uuid(row, "o_id")?,
        slug: row.get("o_slug")?,
        name: row.get("o_name")?,
        signup,
        disabled: row.get("o_disabled")?,
    })
}

fn load_family(connection: &Connection, sid: Uuid) -> rusqlite::Result<Option<LoadedFamily>> {
    let sql = format!(
        "SELECT {FAMILY_COLUMNS}, {USER_COLUMNS}, (u.disabled_at IS NOT NULL OR o.disabled_at IS NOT NULL) AS disabled \
         FROM session_families f JOIN users u ON u.id = f.user_id JOIN organizations o ON o.id = f.org_id \
         WHERE f.id = ?1"
    );
    connection
        .prepare_cached(&sql)?
        .query_row([sid.as_bytes().as_slice()], |row| {
            Ok((family_from(row)?, Subject { user: user_from(row)?, disabled: row.get("disabled")? }))
        })
        .optional()
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
impl FamilyStore for SqliteStore {
    async fn insert(&self, family: &FamilyRecord, origin: &Origin, now: OffsetDateTime) -> Result<(), StoreError> {
        let (family, origin) = (family.clone(), origin.clone());
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO session_families (id, org_id, user_id, aal, auth_method, auth_time, created_at, \
                 last_used_at, expires_at, user_agent, ip, refresh_jti, refresh_issued_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(params![
                family.sid.as_bytes().as_slice(),
                family.org_id.as_bytes().as_slice(),
                family.user_id.as_bytes().as_slice(),
                family.aal.as_str(),
                family.auth_method.as_str(),
                ms(family.auth_time),
                ms(now),
                ms(family.expires_at),
                origin.user_agent,
                origin.ip,
                family.current.jti.as_bytes().as_slice(),
                ms(family.current.issued_at),
            ])
            .map(drop)
        })
        .await
    }

    async fn load(&self, sid: Uuid) -> Result<Option<LoadedFamily>, StoreError> {
        self.run(move |c| load_family(c, sid)).await
    }

    async fn rotate(
        &self,
        sid: Uuid,
        expected: Uuid,
        next: RefreshPointer,
        aal: Option<Aal>,
        now: OffsetDateTime,
    ) -> Result<Option<LoadedFamily>, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let changed = tx
                .prepare_cached(
                    "UPDATE session_families SET previous_jti = refresh_jti, previous_spent_at = :now, \
                     refresh_jti = :next, refresh_issued_at = :issued, last_used_at = :now, rotations = rotations + 1, \
                     aal = COALESCE(:aal, aal) \
                     WHERE id = :sid AND refresh_jti = :expected AND revoked_at IS NULL AND expires_at > :now \
                     AND EXISTS (SELECT 1 FROM users u JOIN organizations o ON o.id = session_families.org_id \
                                 WHERE u.id = session_families.user_id \
                                 AND u.disabled_at IS NULL AND o.disabled_at IS NULL)",
                )?
                .execute(named_params! {
                    ":sid": sid.as_bytes().as_slice(),
                    ":expected": expected.as_bytes().as_slice(),
                    ":next": next.jti.as_bytes().as_slice(),
                    ":issued": ms(next.issued_at),
                    ":now": ms(now),
                    ":aal": aal.map(Aal::as_str),
                })?;
            let loaded = if changed == 1 { load_family(&tx, sid)? } else { None };
            tx.commit()?;
            Ok(loaded)
        })
        .await
    }

    async fn revoke(&self, sids: &[Uuid], reason: RevokeReason, now: OffsetDateTime) -> Result<(), StoreError> {
        let sids = sids.to_vec();
        self.run(move |c| {
            let tx = c.transaction()?;
            {
                let mut statement = tx.prepare_cached(
                    "UPDATE session_families SET revoked_at = ?3, revoked_reason = ?2 \
                     WHERE id = ?1 AND revoked_at IS NULL",
                )?;
                for sid in &sids {
                    statement.execute(params![sid.as_bytes().as_slice(), reason.as_str(), ms(now)])?;
                }
            }
            tx.commit()
        })
        .await
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn find_org(&self, org: &OrgRef) -> Result<Option<Organization>, StoreError> {
        let org = org.clone();
        self.run(move |c| find_org(c, &org)).await
    }

    async fn create_account(&self, account: &NewAccount) -> Result<UserProfile, StoreError> {
        let account = account.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let now = ms(account.now);
            let (org_id, role) = match &account.joining {
                Joining::Personal { id, slug, name } => {
                    tx.prepare_cached(
                        "INSERT INTO organizations (id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![id.as_bytes().as_slice(), slug, name, now])?;
                    (*id, Role::Owner)
                }
                Joining::Existing(id) => (*id, Role::Member),
            };
            let user_id = account.user_id.as_bytes().as_slice();
            tx.prepare_cached(
                "INSERT INTO users (id, email, email_normalized, display_name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                user_id,
                account.email.as_typed(),
                account.email.normalized(),
                account.display_name,
                now
            ])?;
            tx.prepare_cached("INSERT INTO password_credentials (user_id, hash, updated_at) VALUES (?1, ?2, ?3)")?
                .execute(params![user_id, account.password_hash, now])?;
            tx.prepare_cached(
                "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![user_id, org_id.as_bytes().as_slice(), role.as_str(), now])?;
            tx.commit()?;
            Ok(UserProfile {
                id: account.user_id,
                email: account.email.as_typed().to_owned(),
                email_verified: false,
                display_name: account.display_name,
                created_at: account.now,
            })
        })
        .await
    }

    async fn credentials(&self, email_normalized: &str) -> Result<Option<Credentials>, StoreError> {
        let email = email_normalized.to_owned();
        self.run(move |c| {
            let sql = format!("{CREDENTIALS_SELECT} WHERE u.email_normalized = ?1");
            c.prepare_cached(&sql)?.query_row([email], credentials_from).optional()
        })
        .await
    }

    async fn set_password_hash(&self, user_id: Uuid, hash: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let hash = hash.to_owned();
        self.run(move |c| {
            c.prepare_cached(SET_PASSWORD)?.execute(params![user_id.as_bytes().as_slice(), hash, ms(now)]).map(drop)
        })
        .await
    }

    async fn role(&self, user_id: Uuid, org_id: Uuid) -> Result<Option<Role>, StoreError> {
        self.run(move |c| {
            let role: Option<String> = c
                .prepare_cached("SELECT role FROM memberships WHERE user_id = ?1 AND org_id = ?2")?
                .query_row([user_id.as_bytes().as_slice(), org_id.as_bytes().as_slice()], |row| row.get(0))
                .optional()?;
            role.map(|r| Role::parse(&r).ok_or_else(|| unknown("role"))).transpose()
        })
        .await
    }

    async fn most_recent_org(&self, user_id: Uuid) -> Result<Option<Organization>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {ORG_COLUMNS} FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE m.user_id = ?1 \
                 ORDER BY m.last_used_at DESC, m.created_at DESC LIMIT 1"
            );
            c.prepare_cached(&sql)?.query_row([user_id.as_bytes().as_slice()], org_from).optional()
        })
        .await
    }

    async fn touch_membership(&self, user_id: Uuid, org_id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        self.run(move |c| {
            c.prepare_cached("UPDATE memberships SET last_used_at = ?3 WHERE user_id = ?1 AND org_id = ?2")?
                .execute(params![user_id.as_bytes().as_slice(), org_id.as_bytes().as_slice(), ms(now)])
                .map(drop)
        })
        .await
    }

    async fn session_context(&self, sid: Uuid) -> Result<Option<SessionContext>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {FAMILY_COLUMNS}, {USER_COLUMNS}, {ORG_COLUMNS}, m.role, \
                 (u.disabled_at IS NOT NULL) AS user_disabled FROM session_families f \
                 JOIN users u ON u.id = f.user_id JOIN organizations o ON o.id = f.org_id \
                 LEFT JOIN memberships m ON m.user_id = f.user_id AND m.org_id = f.org_id WHERE f.id = ?1"
            );
            c.prepare_cached(&sql)?
                .query_row([sid.as_bytes().as_slice()], |row| {
                    let role = row
                        .get::<_, Option<String>>("role")?
                        .map(|r| Role::parse(&r).ok_or_else(|| unknown("role")))
                        .transpose()?;
                    Ok(SessionContext {
                        family: family_from(row)?,
                        user: user_from(row)?,
                        user_disabled: row.get("user_disabled")?,
                        organization: org_from(row)?,
                        role,
                    })
                })
                .optional()
        })
        .await
    }

    async fn live_families(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT id, org_id FROM session_families WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
            )?;
            let rows = statement.query_map(params![user_id.as_bytes().as_slice(), ms(now)], |row| {
                Ok((uuid(row, "id")?, uuid(row, "org_id")?))
            })?;
            rows.collect()
        })
        .await
    }
}

#[async_trait]
impl FactorStore for SqliteStore {
    async fn totp(&self, user_id: Uuid) -> Result<Option<TotpFactor>, StoreError> {
        self.run(move |c| {
            c.prepare_cached("SELECT sealed_secret, created_at, confirmed_at FROM totp_factors WHERE user_id = ?1")?
                .query_row([user_id.as_bytes().as_slice()], |row| {
                    Ok(TotpFactor {
                        sealed_secret: row.get("sealed_secret")?,
                        created_at: time_at(row, "created_at")?,
                        confirmed_at: row.get::<_, Option<i64>>("confirmed_at")?.map(at).transpose()?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn begin_totp(&self, user_id: Uuid, sealed_secret: &[u8], now: OffsetDateTime) -> Result<bool, StoreError> {
        let sealed = sealed_secret.to_vec();
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "INSERT INTO totp_factors (user_id, sealed_secret, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
                     created_at = excluded.created_at, last_step = NULL WHERE totp_factors.confirmed_at IS NULL",
                )?
                .execute(params![user_id.as_bytes().as_slice(), sealed, ms(now)])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn confirm_totp(
        &self,
        user_id: Uuid,
        step: i64,
        recovery_codes: &[SecretHash],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let codes = recovery_codes.to_vec();
        self.run(move |c| {
            let tx = c.transaction()?;
            let user = user_id.as_bytes().as_slice();
            let confirmed = tx
                .prepare_cached(
                    "UPDATE totp_factors SET confirmed_at = ?3, last_step = ?2 WHERE user_id = ?1 AND confirmed_at IS NULL",
                )?
                .execute(params![user, step, ms(now)])?;
            if confirmed != 1 {
                return Ok(false);
            }
            tx.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?.execute([user])?;
            {
                let mut insert = tx.prepare_cached("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)")?;
                for code in &codes {
                    insert.execute(params![user, code.as_slice()])?;
                }
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn accept_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool, StoreError> {
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE totp_factors SET last_step = ?2 WHERE user_id = ?1 AND confirmed_at IS NOT NULL \
                     AND (last_step IS NULL OR last_step < ?2)",
                )?
                .execute(params![user_id.as_bytes().as_slice(), step])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn spend_recovery_code(
        &self,
        user_id: Uuid,
        code: &SecretHash,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let code = *code;
        self.run(move |c| {
            let changed = c
                .prepare_cached(
                    "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                )?
                .execute(params![user_id.as_bytes().as_slice(), code.as_slice(), ms(now)])?;
            Ok(changed == 1)
        })
        .await
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32, StoreError> {
        self.run(move |c| {
            c.prepare_cached("SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL")?
                .query_row([user_id.as_bytes().as_slice()], |row| row.get(0))
        })
        .await
    }

    async fn remove_totp(&self, user_id: Uuid) -> Result<bool, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let user = user_id.as_bytes().as_slice();
            tx.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?1")?.execute([user])?;
            let removed = tx.prepare_cached("DELETE FROM totp_factors WHERE user_id = ?1")?.execute([user])?;
            tx.commit()?;
            Ok(removed == 1)
        })
        .await
    }

    async fn spend_once(&self, jti: Uuid, expires_at: OffsetDateTime, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.prepare_cached("DELETE FROM spent_tokens WHERE expires_at <= ?1")?.execute([ms(now)])?;
            let spent = tx
                .prepare_cached(
                    "INSERT INTO spent_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING",
                )?
                .execute(params![jti.as_bytes().as_slice(), ms(expires_at)])?;
            tx.commit()?;
            Ok(spent == 1)
        })
        .await
    }
}

#[async_trait]
impl LifecycleStore for SqliteStore {
    async fn user(&self, user_id: Uuid) -> Result<Option<Credentials>, StoreError> {
        self.run(move |c| {
            let sql = format!("{CREDENTIALS_SELECT} WHERE u.id = ?1");
            c.prepare_cached(&sql)?.query_row([user_id.as_bytes().as_slice()], credentials_from).optional()
        })
        .await
    }

    async fn add_link(&self, link: &NewLink) -> Result<(), StoreError> {
        let link = link.clone();
        self.run(move |c| {
            c.prepare_cached(
                "INSERT INTO action_tokens (token_hash, user_id, purpose, email, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                link.token_hash.as_slice(),
                link.user_id.as_bytes().as_slice(),
                link.purpose.as_str(),
                link.email,
                ms(link.created_at),
                ms(link.expires_at),
            ])
            .map(drop)
        })
        .await
    }

    async fn verify_email(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Uuid>, StoreError> {
        let hash = *token_hash;
        self.run(move |c| {
            let tx = c.transaction()?;
            // Spent only if the address it was sent to is still the user's.
            let user: Option<Uuid> = tx
                .prepare_cached(
                    "UPDATE action_tokens SET used_at = ?3 WHERE token_hash = ?1 AND purpose = ?2 \
                     AND used_at IS NULL AND expires_at > ?3 \
                     AND email = (SELECT u.email FROM users u WHERE u.id = action_tokens.user_id) RETURNING user_id",
                )?
                .query_row(params![hash.as_slice(), LinkPurpose::VerifyEmail.as_str(), ms(now)], |row| {
                    uuid(row, "user_id")
                })
                .optional()?;
            if let Some(user) = user {
                tx.prepare_cached("UPDATE users SET email_verified = 1 WHERE id = ?1")?
                    .execute([user.as_bytes().as_slice()])?;
            }
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    async fn reset_password(
        &self,
        token_hash: &SecretHash,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Uuid>, StoreError> {
        let (hash, password_hash) = (*token_hash, password_hash.to_owned());
        self.run(move |c| {
            let tx = c.transaction()?;
            let purpose = LinkPurpose::ResetPassword.as_str();
            let user: Option<Uuid> = tx
                .prepare_cached(
                    "UPDATE action_tokens SET used_at = ?3 WHERE token_hash = ?1 AND purpose = ?2 \
                     AND used_at IS NULL AND expires_at > ?3 RETURNING user_id",
                )?
                .query_row(params![hash.as_slice(), purpose, ms(now)], |row| uuid(row, "user_id"))
                .optional()?;
            if let Some(user) = user {
                let id = user.as_bytes().as_slice();
                tx.prepare_cached(SET_PASSWORD)?.execute(params![id, password_hash, ms(now)])?;
                tx.prepare_cached(SPEND_RESET_LINKS)?.execute(params![id, ms(now), purpose])?;
            }
            tx.commit()?;
            Ok(user)
        })
        .await
    }

    async fn change_password(&self, user_id: Uuid, password_hash: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let password_hash = password_hash.to_owned();
        self.run(move |c| {
            let tx = c.transaction()?;
            let id = user_id.as_bytes().as_slice();
            tx.prepare_cached(SET_PASSWORD)?.execute(params![id, password_hash, ms(now)])?;
            tx.prepare_cached(SPEND_RESET_LINKS)?.execute(params![id, ms(now), LinkPurpose::ResetPassword.as_str()])?;
            tx.commit()
        })
        .await
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn published_keys(&self, now: OffsetDateTime) -> Result<Vec<StoredKey>, StoreError> {
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT kid, algorithm, sealed_private, created_at, activates_at, retires_at, generation \
                 FROM signing_keys WHERE retires_at IS NULL OR retires_at > ?1 ORDER BY generation DESC",
            )?;
            let rows = statement.query_map([ms(now)], |row| {
                Ok(StoredKey {
                    kid: row.get("kid")?,
                    algorithm: KeyAlgorithm::parse(&row.get::<_, String>("algorithm")?)
                        .ok_or_else(|| unknown("algorithm"))?,
                    sealed: row.get("sealed_private")?,
                    created_at: time_at(row, "created_at")?,
                    activates_at: time_at(row, "activates_at")?,
                    retires_at: row.get::<_, Option<i64>>("retires_at")?.map(at).transpose()?,
                    generation: row.get("generation")?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn add_key(&self, key: &StoredKey, retire_others_at: Option<OffsetDateTime>) -> Result<bool, StoreError> {
        let key = key.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO signing_keys (kid, algorithm, sealed_private, created_at, activates_at, generation) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    key.kid,
                    key.algorithm.as_str(),
                    key.sealed,
                    ms(key.created_at),
                    ms(key.activates_at),
                    key.generation
                ])?;
            if inserted == 1
                && let Some(retire_at) = retire_others_at
            {
                tx.prepare_cached(
                    "UPDATE signing_keys SET retires_at = ?3 \
                     WHERE algorithm = ?1 AND generation < ?2 AND (retires_at IS NULL OR retires_at > ?3)",
                )?
                .execute(params![key.algorithm.as_str(), key.generation, ms(retire_at)])?;
            }
            tx.commit()?;
            Ok(inserted == 1)
        })
        .await
    }
}

impl SqliteStore {
    async fn deny(
        &self,
        kind: Revoked,
        ids: Vec<Uuid>,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let kind = kind.as_str();
        self.run(move |c| {
            let tx = c.transaction()?;
            {
                // Entries past their expiry cover no live token: drop them as new ones come in.
                tx.prepare_cached("DELETE FROM denylist WHERE expires_at <= ?1")?.execute([ms(now)])?;
                tx.prepare_cached("DELETE FROM revocation_feed WHERE expires_at <= ?1")?.execute([ms(now)])?;
                let mut statement = tx.prepare_cached(
                    "INSERT INTO denylist (kind, id, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (kind, id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
                )?;
                let mut feed =
                    tx.prepare_cached("INSERT INTO revocation_feed (kind, id, expires_at) VALUES (?1, ?2, ?3)")?;
                for id in &ids {
                    statement.execute(params![kind, id.as_bytes().as_slice(), ms(until)])?;
                    feed.execute(params![kind, id.as_bytes().as_slice(), ms(until)])?;
                }
            }
            tx.commit()
        })
        .await
    }
}

#[async_trait]
impl Denylist for SqliteStore {
    async fn deny_families(&self, sids: &[Uuid], until: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError> {
        self.deny(Revoked::Family, sids.to_vec(), until, now).await
    }

    async fn deny_token(&self, jti: Uuid, until: OffsetDateTime, now: OffsetDateTime) -> Result<(), StoreError> {
        self.deny(Revoked::Token, vec![jti], until, now).await
    }

    async fn revocations_after(
        &self,
        cursor: Option<&str>,
        limit: usize,
        now: OffsetDateTime,
    ) -> Result<RevocationPage, StoreError> {
        // Cursors are `<seq>-0`, the shape of the Redis backend's stream ids.
        let after: i64 = cursor.and_then(|c| c.split('-').next()).and_then(|seq| seq.parse().ok()).unwrap_or(0);
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT seq, kind, id, expires_at FROM revocation_feed WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = statement.query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok((
                    row.get::<_, i64>("seq")?,
                    row.get::<_, String>("kind")?,
                    uuid(row, "id")?,
                    row.get::<_, i64>("expires_at")?,
                ))
            })?;
            let mut page = RevocationPage { revocations: Vec::new(), cursor: format!("{after}-0") };
            for row in rows {
                let (seq, kind, id, expires_at) = row?;
                if expires_at > ms(now) {
                    let kind = Revoked::parse(&kind).ok_or_else(|| unknown("kind"))?;
                    page.revocations.push(Revocation { kind, id, expires_at: at(expires_at)? });
                }
                page.cursor = format!("{seq}-0");
            }
            Ok(page)
        })
        .await
    }

    async fn is_denied(&self, jti: Uuid, sid: Uuid, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.run(move |c| {
            c.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM denylist WHERE expires_at > ?3 \
                 AND ((kind = 'jti' AND id = ?1) OR (kind = 'sid' AND id = ?2)))",
            )?
            .query_row(params![jti.as_bytes().as_slice(), sid.as_bytes().as_slice(), ms(now)], |row| row.get(0))
        })
        .await
    }
}

#[async_trait]
impl RateLimiter for SqliteStore {
    async fn check(
        &self,
        key: &str,
        rate: Rate,
        consume: bool,
        now: OffsetDateTime,
    ) -> Result<Option<time::Duration>, StoreError> {
        let key = key.to_owned();
        self.run(move |c| {
            let now = ms(now);
            let tx = c.transaction()?;
            let stored: Option<i64> = tx
                .prepare_cached("SELECT tat FROM rate_limits WHERE key = ?1")?
                .query_row([&key], |row| row.get(0))
                .optional()?;
            let tat = stored.unwrap_or(now).max(now);
            let wait = tat - now - rate.tolerance_ms();
            if wait > 0 {
                return Ok(Some(time::Duration::milliseconds(wait)));
            }
            if consume {
                // Counters in the past allow a full burst again, like a missing one: drop them as we go.
                tx.prepare_cached("DELETE FROM rate_limits WHERE tat < ?1")?.execute([now])?;
                tx.prepare_cached(
                    "INSERT INTO rate_limits (key, tat) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                )?
                .execute(params![key, tat + rate.emission_ms()])?;
                tx.commit()?;
            }
            Ok(None)
        })
        .await
    }
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
