//! Postgres: the admin API (`AdminStore`): API keys, recording actions in the audit log, and the users of an
//! organization.

use async_trait::async_trait;
use identsphere_actors::StoreError;
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, get, parsed, pg_error, tx_audit, tx_execute, user_from};
use crate::model::{ApiKey, Audit, ExportedUser, ImportOutcome, ImportedUser, OrgUser, Role, UserQuery};
use crate::store::AdminStore;

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
            ", m.role, m.created_at AS joined_at, (m.disabled_at IS NOT NULL) AS member_disabled, m.external_id \
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
        external_id: get(row, "external_id")?,
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
             AND ($3::text IS NULL OR u.email_normalized > $3) AND ($5::text IS NULL OR m.external_id = $5) \
             ORDER BY u.email_normalized LIMIT $4"
        );
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&org_id, &query.email_contains, &query.after, &i64::from(query.limit), &query.external_id];
        self.query(SQL, &params).await?.iter().map(org_user_from).collect()
    }

    async fn org_user(&self, org_id: Uuid, user_id: Uuid) -> Result<Option<OrgUser>, StoreError> {
        const SQL: &str = concat!(org_user_select!(), " WHERE m.org_id = $1 AND m.user_id = $2");
        self.query_opt(SQL, &[&org_id, &user_id]).await?.as_ref().map(org_user_from).transpose()
    }

    async fn import_users(
        &self,
        org_id: Uuid,
        users: &[ImportedUser],
        join_existing: bool,
        audit: &Audit,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        // A statement per table for the whole batch (arrays, not a round trip per user): 100,000 users in
        // well under a minute (loadtest/, docs/migration.md).
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| pg_error(&e))?;
        let column = |f: fn(&ImportedUser) -> Option<String>| users.iter().map(f).collect::<Vec<_>>();
        let ids: Vec<Uuid> = users.iter().map(|u| u.user_id).collect();
        let emails: Vec<&str> = users.iter().map(|u| u.email.as_typed()).collect();
        let normalized: Vec<&str> = users.iter().map(|u| u.email.normalized()).collect();
        let verified: Vec<bool> = users.iter().map(|u| u.email_verified).collect();
        let names = column(|u| u.display_name.clone());
        let created_at: Vec<OffsetDateTime> = users.iter().map(|u| u.created_at).collect();
        let sql = "INSERT INTO users (id, email, email_normalized, email_verified, display_name, created_at) \
                   SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::text[], $6::timestamptz[]) \
                   ON CONFLICT (email_normalized) DO NOTHING RETURNING id";
        let statement = tx.prepare_cached(sql).await.map_err(|e| pg_error(&e))?;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
            [&ids, &emails, &normalized, &verified, &names, &created_at];
        let rows = tx.query(&statement, &params).await.map_err(|e| pg_error(&e))?;
        let created = rows.iter().map(|row| get(row, "id")).collect::<Result<std::collections::HashSet<Uuid>, _>>()?;
        let new: Vec<&ImportedUser> = users.iter().filter(|u| created.contains(&u.user_id)).collect();

        // Who of the others has an account, and whether it is a member here already.
        let others: Vec<&str> =
            users.iter().filter(|u| !created.contains(&u.user_id)).map(|u| u.email.normalized()).collect();
        let sql = "SELECT u.id, u.email_normalized, \
                   EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id AND m.org_id = $2) AS member \
                   FROM users u WHERE u.email_normalized = ANY($1::text[])";
        let mut existing = std::collections::HashMap::new();
        for row in tx.query(sql, &[&others, &org_id]).await.map_err(|e| pg_error(&e))? {
            let (id, email, member): (Uuid, String, bool) =
                (get(&row, "id")?, get(&row, "email_normalized")?, get(&row, "member")?);
            existing.insert(email, (id, member));
        }
        let mut outcomes = Vec::with_capacity(users.len());
        let mut joining: Vec<&ImportedUser> = new.clone();
        let mut joined_existing = Vec::new();
        for user in users {
            if created.contains(&user.user_id) {
                outcomes.push(ImportOutcome::Created);
                continue;
            }
            let (id, member) = *existing
                .get(user.email.normalized())
                .ok_or_else(|| StoreError::Internal("an imported address has no account and none was made".into()))?;
            // An address twice in the batch: its account is the one made for the first line.
            let member = member || created.contains(&id);
            if !member && join_existing && !joined_existing.iter().any(|(j, _): &(Uuid, &ImportedUser)| *j == id) {
                joined_existing.push((id, user));
            }
            outcomes.push(if member || join_existing { ImportOutcome::Exists(id) } else { ImportOutcome::Taken });
        }
        joining.extend(joined_existing.iter().map(|(_, u)| *u));
        let new_ids: Vec<Uuid> = new.iter().map(|u| u.user_id).collect();
        let member_ids: Vec<Uuid> = new_ids.iter().copied().chain(joined_existing.iter().map(|(id, _)| *id)).collect();
        let roles: Vec<&str> = joining.iter().map(|u| u.role.as_str()).collect();
        let external: Vec<Option<&str>> = joining.iter().map(|u| u.external_id.as_deref()).collect();
        let now = audit.at;
        let hashes: Vec<Option<&str>> = new.iter().map(|u| u.password_hash.as_deref()).collect();
        let totps: Vec<Option<&[u8]>> = new.iter().map(|u| u.sealed_totp.as_deref()).collect();
        let created_actions = vec!["user.imported"; new.len()];
        let actions: Vec<&str> =
            created_actions.into_iter().chain(std::iter::repeat_n("member.imported", joined_existing.len())).collect();
        let targets: Vec<String> = member_ids.iter().map(Uuid::to_string).collect();
        let audit_ids: Vec<Uuid> = member_ids.iter().map(|_| Uuid::now_v7()).collect();
        let (actor_user, actor_key) = audit.actor.columns();
        let statements: [(&str, Vec<&(dyn tokio_postgres::types::ToSql + Sync)>); 4] = [
            (
                "INSERT INTO memberships (user_id, org_id, role, created_at, last_used_at, external_id) \
                 SELECT u, $2, r, $3, $3, e FROM UNNEST($1::uuid[], $4::text[], $5::text[]) AS t(u, r, e) \
                 ON CONFLICT DO NOTHING",
                vec![&member_ids, &org_id, &now, &roles, &external],
            ),
            (
                "INSERT INTO password_credentials (user_id, hash, updated_at) \
                 SELECT u, h, $3 FROM UNNEST($1::uuid[], $2::text[]) AS t(u, h) WHERE h IS NOT NULL",
                vec![&new_ids, &hashes, &now],
            ),
            (
                "INSERT INTO totp_factors (user_id, sealed_secret, created_at, confirmed_at) \
                 SELECT u, s, $3, $3 FROM UNNEST($1::uuid[], $2::bytea[]) AS t(u, s) WHERE s IS NOT NULL",
                vec![&new_ids, &totps, &now],
            ),
            (
                "INSERT INTO audit_events (id, org_id, at, actor_id, actor_key_id, action, target, ip) \
                 SELECT i, $2, $3, $4, $5, a, t, $6 FROM UNNEST($1::uuid[], $7::text[], $8::text[]) AS x(i, a, t)",
                vec![&audit_ids, &org_id, &now, &actor_user, &actor_key, &audit.ip, &actions, &targets],
            ),
        ];
        for (sql, params) in statements {
            tx_execute(&tx, sql, &params).await?;
        }
        tx.commit().await.map_err(|e| pg_error(&e))?;
        Ok(outcomes)
    }

    async fn export_users(
        &self,
        org_id: Uuid,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ExportedUser>, StoreError> {
        const SQL: &str = concat!(
            "SELECT ",
            user_columns!(),
            ", m.role, m.external_id, p.hash, t.sealed_secret \
             FROM memberships m JOIN users u ON u.id = m.user_id \
             LEFT JOIN password_credentials p ON p.user_id = u.id \
             LEFT JOIN totp_factors t ON t.user_id = u.id AND t.confirmed_at IS NOT NULL \
             WHERE m.org_id = $1 AND ($2::uuid IS NULL OR m.user_id > $2) ORDER BY m.user_id LIMIT $3"
        );
        let rows = self.query(SQL, &[&org_id, &after, &i64::from(limit)]).await?;
        rows.iter()
            .map(|row| {
                Ok(ExportedUser {
                    user: user_from(row)?,
                    role: parsed(Role::parse(get(row, "role")?), "role")?,
                    password_hash: get(row, "hash")?,
                    external_id: get(row, "external_id")?,
                    sealed_totp: get(row, "sealed_secret")?,
                })
            })
            .collect()
    }
}
