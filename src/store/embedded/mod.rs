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
    Aal, AuthMethod, Changed, Check, Denylist, FamilyChange, FamilyRecord, FamilyStore, LoadedFamily, Origin,
    RefreshPointer, Revocation, RevocationPage, RevokeReason, Revoked, SessionRules, Spent, Stamp, StoreError, Subject,
    TokenRef, UserProfile,
};
use rusqlite::{Connection, OptionalExtension as _, Row, named_params, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AccountStore, AdminStore, FactorStore, INVITATION_SPENT, KeyStore, LifecycleStore, OrganizationStore, Probe,
    RateLimiter, spend_invitation_sql,
};
use crate::config::KeyEncryptionKey;
use crate::model::{
    ApiKey, Audit, AuditEvent, Credentials, Invitation, Joining, KeyAlgorithm, LinkPurpose, Member, MembershipChange,
    MembershipOutcome, NewAccount, NewLink, OrgPolicy, OrgRef, OrgUpdate, OrgUser, Organization, PolicyUpdate, Rate,
    Role, SecretHash, SessionContext, SessionInfo, SignupMode, StoredKey, TotpFactor, UserQuery, session_rules,
};

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

/// Creates `dir` (owner-only) if needed and returns it.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
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
/// What a refresh needs of the family's organization, for `rules_from`.
macro_rules! rules_columns {
    () => {
        "o.mfa_required AS o_mfa_required, o.auth_methods AS o_auth_methods, o.access_token_ttl AS o_access_token_ttl"
    };
}

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
     FROM users u JOIN password_credentials p ON p.user_id = u.id";
/// Sets a user's password hash: `?1` user, `?2` hash, `?3` now.
const SET_PASSWORD: &str = "UPDATE password_credentials SET hash = ?2, updated_at = ?3 WHERE user_id = ?1";
/// Spends a user's outstanding reset links: `?1` user, `?2` now, `?3` the reset purpose.
const SPEND_RESET_LINKS: &str =
    "UPDATE action_tokens SET used_at = ?2 WHERE user_id = ?1 AND purpose = ?3 AND used_at IS NULL";

/// Records `audit` for `org_id`, on `target`, inside the transaction of the change. Its id is a UUIDv7:
/// entries of one process at the same millisecond still list in the order they happened.
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

/// Columns of an invitation, for `invitation_from`.
const INVITATION_COLUMNS: &str = "id, org_id, email, email_normalized, role, invited_by, created_at, expires_at";

fn invitation_from(row: &Row<'_>) -> rusqlite::Result<Invitation> {
    let role: String = row.get("role")?;
    Ok(Invitation {
        id: uuid(row, "id")?,
        org_id: uuid(row, "org_id")?,
        email: row.get("email")?,
        email_normalized: row.get("email_normalized")?,
        role: Role::parse(&role).ok_or_else(|| unknown("role"))?,
        invited_by: opt_uuid(row, "invited_by")?,
        created_at: time_at(row, "created_at")?,
        expires_at: time_at(row, "expires_at")?,
    })
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

fn load_family(connection: &Connection, sid: Uuid, seen_from: Option<Uuid>) -> rusqlite::Result<Option<LoadedFamily>> {
    let sql = format!(
        "SELECT {FAMILY_COLUMNS}, {USER_COLUMNS}, {}, \
         (u.disabled_at IS NOT NULL OR o.disabled_at IS NOT NULL) AS disabled \
         FROM session_families f JOIN users u ON u.id = f.user_id \
         JOIN organizations o ON o.id = COALESCE(?2, f.org_id) \
         WHERE f.id = ?1",
        rules_columns!()
    );
    connection
        .prepare_cached(&sql)?
        .query_row(params![sid.as_bytes().as_slice(), seen_from.map(|o| o.as_bytes().to_vec())], |row| {
            let subject = Subject { user: user_from(row)?, disabled: row.get("disabled")?, rules: rules_from(row)? };
            Ok((family_from(row)?, subject))
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

    async fn load(&self, sid: Uuid, seen_from: Option<Uuid>) -> Result<Option<LoadedFamily>, StoreError> {
        self.run(move |c| load_family(c, sid, seen_from)).await
    }

    async fn rotate(
        &self,
        sid: Uuid,
        expected: Uuid,
        next: RefreshPointer,
        change: FamilyChange,
        now: OffsetDateTime,
    ) -> Result<Option<LoadedFamily>, StoreError> {
        self.run(move |c| {
            let tx = c.transaction()?;
            let changed = tx
                .prepare_cached(
                    "UPDATE session_families SET previous_jti = refresh_jti, previous_spent_at = :now, \
                     refresh_jti = :next, refresh_issued_at = :issued, last_used_at = :now, rotations = rotations + 1, \
                     aal = COALESCE(:aal, aal), org_id = COALESCE(:org, org_id), \
                     expires_at = MIN(expires_at, COALESCE(:expires_by, expires_at)) \
                     WHERE id = :sid AND refresh_jti = :expected AND revoked_at IS NULL AND expires_at > :now \
                     AND EXISTS (SELECT 1 FROM users u JOIN organizations o \
                                 ON o.id = COALESCE(:org, session_families.org_id) \
                                 WHERE u.id = session_families.user_id \
                                 AND u.disabled_at IS NULL AND o.disabled_at IS NULL \
                                 AND (NOT o.mfa_required OR COALESCE(:aal, session_families.aal) = 'aal2') \
                                 AND EXISTS (SELECT 1 FROM json_each(o.auth_methods) \
                                             WHERE value = session_families.auth_method))",
                )?
                .execute(named_params! {
                    ":sid": sid.as_bytes().as_slice(),
                    ":expected": expected.as_bytes().as_slice(),
                    ":next": next.jti.as_bytes().as_slice(),
                    ":issued": ms(next.issued_at),
                    ":now": ms(now),
                    ":aal": change.aal.map(Aal::as_str),
                    ":org": change.org_id.map(|org| org.as_bytes().to_vec()),
                    ":expires_by": change.expires_by.map(ms),
                })?;
            let loaded = if changed == 1 { load_family(&tx, sid, None)? } else { None };
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
                Joining::Invited { org_id, role, .. } | Joining::Added { org_id, role, .. } => (*org_id, *role),
            };
            let user_id = account.user_id.as_bytes().as_slice();
            // An invitation's link came to this address: it is proven.
            let verified = matches!(account.joining, Joining::Invited { .. });
            tx.prepare_cached(
                "INSERT INTO users (id, email, email_normalized, display_name, created_at, email_verified) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                user_id,
                account.email.as_typed(),
                account.email.normalized(),
                account.display_name,
                now,
                verified
            ])?;
            tx.prepare_cached("INSERT INTO password_credentials (user_id, hash, updated_at) VALUES (?1, ?2, ?3)")?
                .execute(params![user_id, account.password_hash, now])?;
            tx.prepare_cached(
                "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![user_id, org_id.as_bytes().as_slice(), role.as_str(), now])?;
            if let Joining::Invited { token_hash, .. } = &account.joining {
                let spent = tx.prepare_cached(spend_invitation_sql!("?"))?.execute(params![
                    token_hash.as_slice(),
                    user_id,
                    now,
                    account.email.normalized()
                ])?;
                if spent != 1 {
                    // Dropping the transaction rolls the account back.
                    return Ok(None);
                }
            }
            if let Joining::Added { org_id, audit, .. } = &account.joining {
                audit_row(&tx, *org_id, audit, Some(&account.user_id.to_string()))?;
            }
            tx.commit()?;
            Ok(Some(UserProfile {
                id: account.user_id,
                email: account.email.as_typed().to_owned(),
                email_verified: verified,
                display_name: account.display_name,
                created_at: account.now,
            }))
        })
        .await?
        .ok_or_else(|| StoreError::Conflict(INVITATION_SPENT.to_owned()))
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
                .prepare_cached(
                    "SELECT role FROM memberships WHERE user_id = ?1 AND org_id = ?2 AND disabled_at IS NULL",
                )?
                .query_row([user_id.as_bytes().as_slice(), org_id.as_bytes().as_slice()], |row| row.get(0))
                .optional()?;
            role.map(|r| Role::parse(&r).ok_or_else(|| unknown("role"))).transpose()
        })
        .await
    }

    async fn most_recent_org(&self, user_id: Uuid) -> Result<Option<Organization>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {ORG_COLUMNS} FROM memberships m JOIN organizations o ON o.id = m.org_id \
                 WHERE m.user_id = ?1 AND m.disabled_at IS NULL \
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
                 (u.disabled_at IS NOT NULL) AS user_disabled, t.confirmed_at AS totp_confirmed_at, \
                 CASE WHEN t.confirmed_at IS NULL THEN 0 ELSE (SELECT count(*) FROM recovery_codes r \
                     WHERE r.user_id = f.user_id AND r.used_at IS NULL) END AS codes_left \
                 FROM session_families f \
                 JOIN users u ON u.id = f.user_id JOIN organizations o ON o.id = f.org_id \
                 LEFT JOIN memberships m ON m.user_id = f.user_id AND m.org_id = f.org_id AND m.disabled_at IS NULL \
                 LEFT JOIN totp_factors t ON t.user_id = f.user_id \
                 WHERE f.id = ?1"
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
                        totp_confirmed_at: row.get::<_, Option<i64>>("totp_confirmed_at")?.map(at).transpose()?,
                        recovery_codes_left: row.get("codes_left")?,
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
impl OrganizationStore for SqliteStore {
    async fn create_org(&self, org: &Organization, owner: Uuid, audit: &Audit) -> Result<(), StoreError> {
        let (org, audit) = (org.clone(), audit.clone());
        let now = audit.at;
        self.run(move |c| {
            let tx = c.transaction()?;
            let (mode, domains) = org.signup.columns();
            let domains = serde_json::to_string(&domains).map_err(|e| conversion(0, e))?;
            tx.prepare_cached(
                "INSERT INTO organizations (id, slug, name, signup_mode, signup_domains, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![org.id.as_bytes().as_slice(), org.slug, org.name, mode, domains, ms(now)])?;
            tx.prepare_cached(
                "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) \
                 VALUES (?1, ?2, 'owner', ?3, ?3)",
            )?
            .execute(params![owner.as_bytes().as_slice(), org.id.as_bytes().as_slice(), ms(now)])?;
            audit_row(&tx, org.id, &audit, audit.target.as_deref())?;
            tx.commit()
        })
        .await
    }

    async fn orgs_of(&self, user_id: Uuid) -> Result<Vec<(Organization, Role)>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {ORG_COLUMNS}, m.role FROM memberships m JOIN organizations o ON o.id = m.org_id \
                 WHERE m.user_id = ?1 ORDER BY o.name, o.id"
            );
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map([user_id.as_bytes().as_slice()], |row| {
                let role: String = row.get("role")?;
                Ok((org_from(row)?, Role::parse(&role).ok_or_else(|| unknown("role"))?))
            })?;
            rows.collect()
        })
        .await
    }

    async fn update_org(
        &self,
        org_id: Uuid,
        update: &OrgUpdate,
        audit: &Audit,
    ) -> Result<Option<Organization>, StoreError> {
        let (update, audit) = (update.clone(), audit.clone());
        let now = audit.at;
        self.run(move |c| {
            let signup = update.signup.as_ref().map(SignupMode::columns);
            let domains = signup
                .as_ref()
                .map(|(_, domains)| serde_json::to_string(domains))
                .transpose()
                .map_err(|e| conversion(0, e))?;
            let policy = &update.policy;
            let (access_set, access) = PolicyUpdate::ttl_columns(policy.access_ttl);
            let (refresh_set, refresh) = PolicyUpdate::ttl_columns(policy.refresh_ttl);
            let json = |value: Option<serde_json::Value>| value.map(|v| v.to_string());
            let methods = json(policy.auth_method_names().map(serde_json::Value::from));
            let rate_limits = json(policy.rate_limits_json());
            let tx = c.transaction()?;
            let changed = tx
                .prepare_cached(
                    "UPDATE organizations SET name = COALESCE(:name, name), slug = COALESCE(:slug, slug), \
                     signup_mode = COALESCE(:mode, signup_mode), signup_domains = COALESCE(:domains, signup_domains), \
                     disabled_at = CASE WHEN :disabled IS NULL THEN disabled_at \
                                        WHEN :disabled THEN COALESCE(disabled_at, :now) ELSE NULL END, \
                     mfa_required = COALESCE(:mfa_required, mfa_required), \
                     auth_methods = COALESCE(:auth_methods, auth_methods), \
                     access_token_ttl = CASE WHEN :access_set THEN :access ELSE access_token_ttl END, \
                     refresh_token_ttl = CASE WHEN :refresh_set THEN :refresh ELSE refresh_token_ttl END, \
                     rate_limits = COALESCE(:rate_limits, rate_limits) \
                     WHERE id = :id",
                )?
                .execute(named_params! {
                    ":id": org_id.as_bytes().as_slice(),
                    ":name": update.name,
                    ":slug": update.slug,
                    ":mode": signup.as_ref().map(|s| s.0),
                    ":domains": domains,
                    ":disabled": update.disabled,
                    ":now": ms(now),
                    ":mfa_required": policy.mfa_required,
                    ":auth_methods": methods,
                    ":access_set": access_set,
                    ":access": access,
                    ":refresh_set": refresh_set,
                    ":refresh": refresh,
                    ":rate_limits": rate_limits,
                })?;
            if changed != 1 {
                return Ok(None);
            }
            let org = find_org(&tx, &OrgRef::Id(org_id))?;
            audit_row(&tx, org_id, &audit, audit.target.as_deref())?;
            tx.commit()?;
            Ok(org)
        })
        .await
    }

    async fn members(&self, org_id: Uuid) -> Result<Vec<Member>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {USER_COLUMNS}, m.role, m.created_at AS joined_at FROM memberships m \
                 JOIN users u ON u.id = m.user_id WHERE m.org_id = ?1 \
                 ORDER BY (m.role = 'owner') DESC, m.created_at, u.id"
            );
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map([org_id.as_bytes().as_slice()], |row| {
                let role: String = row.get("role")?;
                Ok(Member {
                    user: user_from(row)?,
                    role: Role::parse(&role).ok_or_else(|| unknown("role"))?,
                    joined_at: time_at(row, "joined_at")?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn change_membership(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        change: MembershipChange,
        audit: &Audit,
    ) -> Result<MembershipOutcome, StoreError> {
        let audit = audit.clone();
        self.run(move |c| {
            // One connection: changes are serialized already; the transaction keeps check and change together.
            let tx = c.transaction()?;
            let (org, user) = (org_id.as_bytes().as_slice(), user_id.as_bytes().as_slice());
            let current: Option<(String, bool)> = tx
                .prepare_cached("SELECT role, disabled_at IS NULL FROM memberships WHERE org_id = ?1 AND user_id = ?2")?
                .query_row([org, user], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let Some((current, enabled)) = current else { return Ok(MembershipOutcome::NotAMember) };
            let owners: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM memberships WHERE org_id = ?1 AND role = 'owner' AND disabled_at IS NULL",
                )?
                .query_row([org], |row| row.get(0))?;
            if current == Role::Owner.as_str() && enabled && change.ends_ownership() && owners <= 1 {
                return Ok(MembershipOutcome::LastOwner);
            }
            match change {
                MembershipChange::Role(role) => tx
                    .prepare_cached("UPDATE memberships SET role = ?3 WHERE org_id = ?1 AND user_id = ?2")?
                    .execute(params![org, user, role.as_str()])?,
                MembershipChange::Remove | MembershipChange::Delete => tx
                    .prepare_cached("DELETE FROM memberships WHERE org_id = ?1 AND user_id = ?2")?
                    .execute([org, user])?,
                MembershipChange::Disable(disabled) => tx
                    .prepare_cached(
                        "UPDATE memberships SET disabled_at = CASE WHEN ?3 THEN COALESCE(disabled_at, ?4) END \
                         WHERE org_id = ?1 AND user_id = ?2",
                    )?
                    .execute(params![org, user, disabled, ms(audit.at)])?,
            };
            if change == MembershipChange::Delete {
                tx.prepare_cached(
                    "DELETE FROM users WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM memberships WHERE user_id = ?1)",
                )?
                .execute([user])?;
            }
            audit_row(&tx, org_id, &audit, audit.target.as_deref())?;
            tx.commit()?;
            Ok(MembershipOutcome::Done)
        })
        .await
    }

    async fn add_invitation(
        &self,
        invitation: &Invitation,
        token_hash: &SecretHash,
        audit: &Audit,
    ) -> Result<(), StoreError> {
        let (i, hash, audit) = (invitation.clone(), *token_hash, audit.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.prepare_cached(
                "INSERT INTO invitations (id, org_id, email, email_normalized, role, token_hash, invited_by, \
                 created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                i.id.as_bytes().as_slice(),
                i.org_id.as_bytes().as_slice(),
                i.email,
                i.email_normalized,
                i.role.as_str(),
                hash.as_slice(),
                i.invited_by.map(|u| u.as_bytes().to_vec()),
                ms(i.created_at),
                ms(i.expires_at),
            ])?;
            audit_row(&tx, i.org_id, &audit, audit.target.as_deref())?;
            tx.commit()
        })
        .await
    }

    async fn invitations(&self, org_id: Uuid, now: OffsetDateTime) -> Result<Vec<Invitation>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {INVITATION_COLUMNS} FROM invitations WHERE org_id = ?1 AND accepted_at IS NULL \
                 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY created_at, id"
            );
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map(params![org_id.as_bytes().as_slice(), ms(now)], invitation_from)?;
            rows.collect()
        })
        .await
    }

    async fn revoke_invitation(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let changed = tx
                .prepare_cached(
                    "UPDATE invitations SET revoked_at = ?3 WHERE org_id = ?1 AND id = ?2 \
                     AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?3",
                )?
                .execute(params![org_id.as_bytes().as_slice(), id.as_bytes().as_slice(), ms(audit.at)])?;
            if changed != 1 {
                return Ok(false);
            }
            audit_row(&tx, org_id, &audit, audit.target.as_deref())?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn invitation(&self, token_hash: &SecretHash, now: OffsetDateTime) -> Result<Option<Invitation>, StoreError> {
        let hash = *token_hash;
        self.run(move |c| {
            let sql = format!(
                "SELECT {INVITATION_COLUMNS} FROM invitations WHERE token_hash = ?1 AND accepted_at IS NULL \
                 AND revoked_at IS NULL AND expires_at > ?2"
            );
            c.prepare_cached(&sql)?.query_row(params![hash.as_slice(), ms(now)], invitation_from).optional()
        })
        .await
    }

    async fn accept_invitation(
        &self,
        token_hash: &SecretHash,
        user_id: Uuid,
        audit: &Audit,
    ) -> Result<Option<Invitation>, StoreError> {
        let (hash, audit) = (*token_hash, audit.clone());
        let now = audit.at;
        self.run(move |c| {
            let tx = c.transaction()?;
            let sql = format!(
                "UPDATE invitations SET accepted_at = ?3, accepted_by = ?2 WHERE token_hash = ?1 \
                 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?3 \
                 AND email_normalized = (SELECT email_normalized FROM users WHERE id = ?2) \
                 RETURNING {INVITATION_COLUMNS}"
            );
            let user = user_id.as_bytes().as_slice();
            let invitation = tx
                .prepare_cached(&sql)?
                .query_row(params![hash.as_slice(), user, ms(now)], invitation_from)
                .optional()?;
            if let Some(invitation) = &invitation {
                tx.prepare_cached(
                    "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) \
                     VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (user_id, org_id) DO NOTHING",
                )?
                .execute(params![
                    user,
                    invitation.org_id.as_bytes().as_slice(),
                    invitation.role.as_str(),
                    ms(now)
                ])?;
                audit_row(&tx, invitation.org_id, &audit, Some(&invitation.id.to_string()))?;
                // The link reached the mailbox it was sent to: the address is proven.
                tx.prepare_cached("UPDATE users SET email_verified = 1 WHERE id = ?1")?.execute(params![user])?;
            }
            tx.commit()?;
            Ok(invitation)
        })
        .await
    }

    async fn join_by_domain(&self, user_id: Uuid, org_id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let joined = tx
                .prepare_cached(
                    "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at) \
                     VALUES (?1, ?2, 'member', ?3, ?3) ON CONFLICT (user_id, org_id) DO NOTHING",
                )?
                .execute(params![user_id.as_bytes().as_slice(), org_id.as_bytes().as_slice(), ms(audit.at)])?;
            if joined != 1 {
                return Ok(false);
            }
            audit_row(&tx, org_id, &audit, Some(&user_id.to_string()))?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn audit_events(
        &self,
        org_id: Uuid,
        before: Option<(OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT id, at, actor_id, actor_key_id, action, target, ip FROM audit_events WHERE org_id = ?1 \
                 AND (?2 IS NULL OR at < ?2 OR (at = ?2 AND id < ?3)) ORDER BY at DESC, id DESC LIMIT ?4",
            )?;
            let (at, id) = (before.map(|b| ms(b.0)), before.map_or(Uuid::nil(), |b| b.1));
            let rows = statement.query_map(
                params![org_id.as_bytes().as_slice(), at, id.as_bytes().as_slice(), limit],
                |row| {
                    Ok(AuditEvent {
                        id: uuid(row, "id")?,
                        at: time_at(row, "at")?,
                        actor_id: opt_uuid(row, "actor_id")?,
                        actor_key_id: opt_uuid(row, "actor_key_id")?,
                        action: row.get("action")?,
                        target: row.get("target")?,
                        ip: row.get("ip")?,
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }

    async fn sessions(&self, user_id: Uuid, now: OffsetDateTime) -> Result<Vec<SessionInfo>, StoreError> {
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT id, org_id, aal, auth_method, created_at, last_used_at, expires_at, user_agent, ip \
                 FROM session_families WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 \
                 ORDER BY created_at DESC, id",
            )?;
            let rows = statement.query_map(params![user_id.as_bytes().as_slice(), ms(now)], |row| {
                let (aal, method): (String, String) = (row.get("aal")?, row.get("auth_method")?);
                Ok(SessionInfo {
                    sid: uuid(row, "id")?,
                    org_id: uuid(row, "org_id")?,
                    aal: Aal::parse(&aal).ok_or_else(|| unknown("aal"))?,
                    auth_method: AuthMethod::parse(&method).ok_or_else(|| unknown("auth_method"))?,
                    created_at: time_at(row, "created_at")?,
                    last_used_at: time_at(row, "last_used_at")?,
                    expires_at: time_at(row, "expires_at")?,
                    user_agent: row.get("user_agent")?,
                    ip: row.get("ip")?,
                })
            })?;
            rows.collect()
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

    async fn check(&self, token: TokenRef, now: OffsetDateTime) -> Result<Check, StoreError> {
        let TokenRef { jti, sid, user, org } = token;
        // The versions first: a change durable before the denylist read is then seen by that read too.
        let stamp = {
            let versions = self.versions()?;
            Stamp([Changed::User(user), Changed::Organization(org), Changed::Family(sid)].map(|of| versions.get(of)))
        };
        let denied = self
            .run(move |c| {
                c.prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM denylist WHERE expires_at > ?3 \
                 AND ((kind = 'jti' AND id = ?1) OR (kind = 'sid' AND id = ?2)))",
                )?
                .query_row(params![jti.as_bytes().as_slice(), sid.as_bytes().as_slice(), ms(now)], |row| row.get(0))
            })
            .await?;
        Ok(Check { denied, stamp })
    }

    async fn changed(&self, changes: &[Changed]) -> Result<(), StoreError> {
        let mut versions = self.versions()?;
        for change in changes {
            versions.bump(*change);
        }
        Ok(())
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

/// Columns of an API key, for `key_from`.
const KEY_COLUMNS: &str = "k.id, k.org_id, k.name, k.secret_hash, k.created_by, k.created_at, k.last_used_at, \
     (k.revoked_at IS NOT NULL) AS revoked";

fn key_from(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    let hash: Vec<u8> = row.get("secret_hash")?;
    Ok(ApiKey {
        id: uuid(row, "id")?,
        org_id: opt_uuid(row, "org_id")?,
        name: row.get("name")?,
        secret_hash: hash.as_slice().try_into().map_err(|_| unknown("secret_hash"))?,
        created_by: opt_uuid(row, "created_by")?,
        created_at: time_at(row, "created_at")?,
        last_used_at: row.get::<_, Option<i64>>("last_used_at")?.map(at).transpose()?,
        revoked: row.get("revoked")?,
    })
}

/// A member for the admin API, with `USER_COLUMNS`, for `org_user_from`.
const MEMBER_COLUMNS: &str = "m.role, m.created_at AS joined_at, (m.disabled_at IS NOT NULL) AS member_disabled \
     FROM memberships m JOIN users u ON u.id = m.user_id";

fn org_user_from(row: &Row<'_>) -> rusqlite::Result<OrgUser> {
    Ok(OrgUser {
        user: user_from(row)?,
        role: Role::parse(&row.get::<_, String>("role")?).ok_or_else(|| unknown("role"))?,
        joined_at: time_at(row, "joined_at")?,
        disabled: row.get("member_disabled")?,
    })
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn add_key(&self, key: &ApiKey, audit: Option<&Audit>) -> Result<(), StoreError> {
        let (key, audit) = (key.clone(), audit.cloned());
        self.run(move |c| {
            let tx = c.transaction()?;
            tx.prepare_cached(
                "INSERT INTO api_keys (id, org_id, name, secret_hash, created_by, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                key.id.as_bytes().as_slice(),
                key.org_id.map(|o| o.as_bytes().to_vec()),
                key.name,
                key.secret_hash.as_slice(),
                key.created_by.map(|u| u.as_bytes().to_vec()),
                ms(key.created_at),
            ])?;
            if let (Some(org_id), Some(audit)) = (key.org_id, &audit) {
                audit_row(&tx, org_id, audit, Some(&key.id.to_string()))?;
            }
            tx.commit()
        })
        .await
    }

    async fn key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        self.run(move |c| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.id = ?1");
            c.prepare_cached(&sql)?.query_row([id.as_bytes().as_slice()], key_from).optional()
        })
        .await
    }

    async fn keys(&self, org_id: Uuid) -> Result<Vec<ApiKey>, StoreError> {
        self.run(move |c| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys k WHERE k.org_id = ?1 ORDER BY k.created_at, k.id");
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map([org_id.as_bytes().as_slice()], key_from)?;
            rows.collect()
        })
        .await
    }

    async fn revoke_key(&self, org_id: Uuid, id: Uuid, audit: &Audit) -> Result<bool, StoreError> {
        let audit = audit.clone();
        self.run(move |c| {
            let tx = c.transaction()?;
            let changed = tx
                .prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?3 WHERE id = ?1 AND org_id = ?2 AND revoked_at IS NULL",
                )?
                .execute(params![id.as_bytes().as_slice(), org_id.as_bytes().as_slice(), ms(audit.at)])?;
            if changed != 1 {
                return Ok(false);
            }
            audit_row(&tx, org_id, &audit, Some(&id.to_string()))?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn record(&self, org_id: Uuid, audit: &Audit) -> Result<(), StoreError> {
        let audit = audit.clone();
        self.run(move |c| audit_row(c, org_id, &audit, audit.target.as_deref())).await
    }

    async fn touch_key(&self, id: Uuid, now: OffsetDateTime) -> Result<(), StoreError> {
        self.run(move |c| {
            c.prepare_cached(
                "UPDATE api_keys SET last_used_at = ?2 \
                 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at < ?2 - 60000)",
            )?
            .execute(params![id.as_bytes().as_slice(), ms(now)])
            .map(drop)
        })
        .await
    }

    async fn org_users(&self, org_id: Uuid, query: &UserQuery) -> Result<Vec<OrgUser>, StoreError> {
        let query = query.clone();
        self.run(move |c| {
            let sql = format!(
                "SELECT {USER_COLUMNS}, {MEMBER_COLUMNS} WHERE m.org_id = ?1 AND (?2 IS NULL OR instr(u.email_normalized, ?2) > 0) \
                 AND (?3 IS NULL OR u.email_normalized > ?3) ORDER BY u.email_normalized LIMIT ?4"
            );
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map(
                params![org_id.as_bytes().as_slice(), query.email_contains, query.after, query.limit],
                org_user_from,
            )?;
            rows.collect()
        })
        .await
    }

    async fn org_user(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<OrgUser>, StoreError> {
        self.run(move |c| {
            let sql = format!("SELECT {USER_COLUMNS}, {MEMBER_COLUMNS} WHERE m.org_id = ?1 AND m.user_id = ?2");
            c.prepare_cached(&sql)?
                .query_row([org_id.as_bytes().as_slice(), user_id.as_bytes().as_slice()], org_user_from)
                .optional()
        })
        .await
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
