//! Postgres: organizations (`OrganizationStore`): creation and settings, members and their changes,
//! invitations, joining by email domain, the audit log, and a user's session list.

use async_trait::async_trait;
use identsphere_actors::{Aal, AuthMethod, StoreError};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, get, org_from, parsed, pg_error, tx_audit, tx_execute, user_from};
use crate::model::{
    Audit, AuditEvent, Invitation, Member, MembershipChange, MembershipOutcome, OrgUpdate, Organization, PolicyUpdate,
    Role, SecretHash, SessionInfo, SignupMode,
};
use crate::store::OrganizationStore;

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
