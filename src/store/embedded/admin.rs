//! The embedded store's admin API (`AdminStore`): API keys, recording actions in the audit log, and the
//! users of an organization.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use rusqlite::{OptionalExtension as _, Row, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, USER_COLUMNS, at, audit_row, ms, opt_uuid, time_at, unknown, user_from, uuid};
use crate::model::{ApiKey, Audit, ExportedUser, ImportOutcome, ImportedUser, OrgUser, Role, UserQuery};
use crate::store::AdminStore;

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
const MEMBER_COLUMNS: &str = "m.role, m.created_at AS joined_at, (m.disabled_at IS NOT NULL) AS member_disabled, \
     m.external_id FROM memberships m JOIN users u ON u.id = m.user_id";

fn org_user_from(row: &Row<'_>) -> rusqlite::Result<OrgUser> {
    Ok(OrgUser {
        user: user_from(row)?,
        role: Role::parse(&row.get::<_, String>("role")?).ok_or_else(|| unknown("role"))?,
        joined_at: time_at(row, "joined_at")?,
        disabled: row.get("member_disabled")?,
        external_id: row.get("external_id")?,
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
                 AND (?3 IS NULL OR u.email_normalized > ?3) AND (?5 IS NULL OR m.external_id = ?5) \
                 ORDER BY u.email_normalized LIMIT ?4"
            );
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map(
                params![
                    org_id.as_bytes().as_slice(),
                    query.email_contains,
                    query.after,
                    query.limit,
                    query.external_id
                ],
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

    async fn import_users(
        &self,
        org_id: Uuid,
        users: &[ImportedUser],
        join_existing: bool,
        audit: &Audit,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let (users, audit) = (users.to_vec(), audit.clone());
        self.run(move |c| {
            let tx = c.transaction()?;
            let org = org_id.as_bytes().as_slice();
            let now = ms(audit.at);
            let mut outcomes = Vec::with_capacity(users.len());
            for user in &users {
                let id = user.user_id.as_bytes().as_slice();
                let created =
                    tx.prepare_cached(
                        "INSERT INTO users (id, email, email_normalized, email_verified, display_name, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (email_normalized) DO NOTHING",
                    )?
                    .execute(params![
                        id,
                        user.email.as_typed(),
                        user.email.normalized(),
                        user.email_verified,
                        user.display_name,
                        ms(user.created_at)
                    ])? == 1;
                let join = "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at, external_id) \
                            VALUES (?1, ?2, ?3, ?4, ?4, ?5) ON CONFLICT DO NOTHING";
                if created {
                    tx.prepare_cached(join)?.execute(params![id, org, user.role.as_str(), now, user.external_id])?;
                    tx.prepare_cached(
                        "INSERT INTO password_credentials (user_id, hash, updated_at) SELECT ?1, ?2, ?3 \
                         WHERE ?2 IS NOT NULL",
                    )?
                    .execute(params![id, user.password_hash, now])?;
                    if let Some(sealed) = &user.sealed_totp {
                        tx.prepare_cached(
                            "INSERT INTO totp_factors (user_id, sealed_secret, created_at, confirmed_at) \
                             VALUES (?1, ?2, ?3, ?3)",
                        )?
                        .execute(params![id, sealed, now])?;
                    }
                    audit_row(
                        &tx,
                        org_id,
                        &Audit { action: "user.imported", ..audit.clone() },
                        Some(&user.user_id.to_string()),
                    )?;
                    outcomes.push(ImportOutcome::Created);
                    continue;
                }
                let (existing, member): (Vec<u8>, bool) = tx
                    .prepare_cached(
                        "SELECT u.id, EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.org_id = ?2) \
                         FROM users u WHERE u.email_normalized = ?1",
                    )?
                    .query_row(params![user.email.normalized(), org], |row| Ok((row.get(0)?, row.get(1)?)))?;
                let existing = Uuid::from_slice(&existing).map_err(|_| unknown("id"))?;
                if !member && join_existing {
                    tx.prepare_cached(join)?.execute(params![
                        existing.as_bytes().as_slice(),
                        org,
                        user.role.as_str(),
                        now,
                        user.external_id
                    ])?;
                    audit_row(
                        &tx,
                        org_id,
                        &Audit { action: "member.imported", ..audit.clone() },
                        Some(&existing.to_string()),
                    )?;
                }
                outcomes.push(if member || join_existing {
                    ImportOutcome::Exists(existing)
                } else {
                    ImportOutcome::Taken
                });
            }
            tx.commit()?;
            Ok(outcomes)
        })
        .await
    }

    async fn export_users(
        &self,
        org_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportedUser>, StoreError> {
        self.run(move |c| {
            let sql = format!(
                "SELECT {USER_COLUMNS}, m.role, m.external_id, p.hash, t.sealed_secret \
                 FROM memberships m JOIN users u ON u.id = m.user_id \
                 LEFT JOIN password_credentials p ON p.user_id = u.id \
                 LEFT JOIN totp_factors t ON t.user_id = u.id AND t.confirmed_at IS NOT NULL \
                 WHERE m.org_id = ?1 AND (?2 IS NULL OR m.user_id > ?2) ORDER BY m.user_id LIMIT ?3"
            );
            let mut statement = c.prepare_cached(&sql)?;
            let rows = statement.query_map(
                params![org_id.as_bytes().as_slice(), after.map(|a| a.as_bytes().to_vec()), limit],
                |row| {
                    Ok(ExportedUser {
                        user: user_from(row)?,
                        role: Role::parse(&row.get::<_, String>("role")?).ok_or_else(|| unknown("role"))?,
                        password_hash: row.get("hash")?,
                        external_id: row.get("external_id")?,
                        sealed_totp: row.get("sealed_secret")?,
                    })
                },
            )?;
            rows.collect()
        })
        .await
    }
}
