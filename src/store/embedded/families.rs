//! The embedded store's session families (`FamilyStore`): insert, load, the conditional rotation, revoke.

use async_trait::async_trait;
use identsphere_actors::{
    Aal, FamilyChange, FamilyRecord, FamilyStore, LoadedFamily, Origin, RefreshPointer, RevokeReason, StoreError,
    Subject,
};
use rusqlite::{Connection, OptionalExtension as _, named_params, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{FAMILY_COLUMNS, SqliteStore, USER_COLUMNS, family_from, ms, rules_from, user_from};

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
