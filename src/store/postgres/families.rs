//! Postgres: session families (`FamilyStore`): insert, load, the conditional rotation, revoke.

use async_trait::async_trait;
use identsphere_actors::{
    Aal, FamilyChange, FamilyRecord, FamilyStore, LoadedFamily, Origin, RefreshPointer, RevokeReason, StoreError,
    Subject,
};
use time::OffsetDateTime;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{PgStore, family_from, get, rules_from, user_from};
use crate::store::RevocationLog;

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
impl RevocationLog for PgStore {
    async fn revoked_since(&self, since: OffsetDateTime) -> Result<Vec<(Uuid, OffsetDateTime)>, StoreError> {
        let rows = self.query("SELECT id, revoked_at FROM session_families WHERE revoked_at >= $1", &[&since]).await?;
        rows.iter().map(|row| Ok((get(row, "id")?, get(row, "revoked_at")?))).collect()
    }
}
