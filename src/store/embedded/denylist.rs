//! The embedded store's access-token denylist (`Denylist`): denied families and tokens, the revocation
//! feed other nodes would follow, and the versions cached session views are checked against.

use async_trait::async_trait;
use identsphere_actors::{Changed, Check, Denylist, Revocation, RevocationPage, Revoked, Stamp, StoreError, TokenRef};
use rusqlite::params;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{SqliteStore, at, ms, unknown, uuid};

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
            // Expired entries are skipped before the limit: a page is short only at the end of the feed.
            let mut statement = c.prepare_cached(
                "SELECT seq, kind, id, expires_at FROM revocation_feed WHERE seq > ?1 AND expires_at > ?3 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = statement.query_map(params![after, limit, ms(now)], |row| {
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
                let kind = Revoked::parse(&kind).ok_or_else(|| unknown("kind"))?;
                page.revocations.push(Revocation { kind, id, expires_at: at(expires_at)? });
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
