//! The embedded store's organizations (`OrganizationStore`): creation and settings, members and their
//! changes, invitations, joining by email domain, the audit log, and a user's session list.

use async_trait::async_trait;
use identsphere_actors::{Aal, AuthMethod, StoreError};
use rusqlite::{OptionalExtension as _, Row, named_params, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    ORG_COLUMNS, SqliteStore, USER_COLUMNS, audit_row, conversion, find_org, ms, opt_uuid, org_from, time_at, unknown,
    user_from, uuid,
};
use crate::model::{
    Audit, AuditEvent, Invitation, Member, MembershipChange, MembershipOutcome, OrgRef, OrgUpdate, Organization,
    PolicyUpdate, Role, SecretHash, SessionInfo, SignupMode,
};
use crate::store::OrganizationStore;

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
