//! Postgres: accounts (`AccountStore`): organizations by reference, sign-up, credentials, roles and the
//! session context a token's claims are built from.

use async_trait::async_trait;
use identsphere_actors::{StoreError, UserProfile};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    PgStore, SET_PASSWORD, credentials_from, family_from, get, org_from, parsed, pg_error, tx_audit, tx_execute,
    user_from,
};
use crate::model::{Credentials, Joining, NewAccount, OrgRef, Organization, Role, SessionContext};
use crate::store::{AccountStore, INVITATION_SPENT, spend_invitation_sql};

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
        let verified = account.email_verified;
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
                "INSERT INTO password_credentials (user_id, hash, updated_at) SELECT $1, $2::text, $3 \
                 WHERE $2::text IS NOT NULL",
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
        if let Some(identity) = &account.identity {
            super::identities::tx_link(&tx, identity).await?;
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
