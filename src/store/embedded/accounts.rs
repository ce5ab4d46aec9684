//! The embedded store's accounts (`AccountStore`): organizations by reference, sign-up, credentials, roles
//! and the session context a token's claims are built from.

use async_trait::async_trait;
use identsphere_actors::{StoreError, UserProfile};
use rusqlite::{OptionalExtension as _, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    CREDENTIALS_SELECT, FAMILY_COLUMNS, ORG_COLUMNS, SET_PASSWORD, SqliteStore, USER_COLUMNS, at, audit_row,
    credentials_from, family_from, find_org, ms, org_from, unknown, user_from, uuid,
};
use crate::model::{Credentials, Joining, NewAccount, OrgRef, Organization, Role, SessionContext};
use crate::store::{AccountStore, INVITATION_SPENT, spend_invitation_sql};

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
            let verified = account.email_verified;
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
            tx.prepare_cached(
                "INSERT INTO password_credentials (user_id, hash, updated_at) SELECT ?1, ?2, ?3 WHERE ?2 IS NOT NULL",
            )?
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
            if let Some(identity) = &account.identity {
                super::identities::link(&tx, identity)?;
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
