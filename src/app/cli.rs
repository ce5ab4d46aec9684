//! The operator's commands besides `serve`: they open the configured stores and call what the server
//! would.

use crate::auth::keys::KeyRing;
use crate::clock::Clock;
use crate::config::Config;
use crate::model::{Audit, AuditActor, OrgRef};
use crate::service::issue_key;

use super::build::open_stores;

/// `identsphere keys rotate`: a new signing key signs and a new refresh-token MAC key MACs from now; the
/// others are retired at once. Running servers pick them up within `IDENTSPHERE_KEY_CHECK_INTERVAL`.
/// Returns the new signing key's id.
///
/// # Errors
/// When the store cannot be opened (the embedded store while a server runs on it) or the rotation fails.
pub async fn rotate_keys(config: &Config, clock: &Clock) -> anyhow::Result<String> {
    let (stores, kek) = open_stores(config, clock).await?;
    KeyRing::rotate_now(stores.keys.as_ref(), &kek, clock.now()).await
}

/// `identsphere admin create-key`: a new API key for the organization named (id or slug), or a platform
/// key without one, stored hashed and returned this once.
///
/// # Errors
/// When the stores cannot be opened, or there is no such organization.
pub async fn create_api_key(
    config: &Config,
    clock: &Clock,
    organization: Option<&str>,
    name: String,
) -> anyhow::Result<String> {
    let (stores, _) = open_stores(config, clock).await?;
    let org_id = match organization {
        Some(raw) => {
            let org = match OrgRef::parse(raw) {
                Some(org) => stores.accounts.find_org(&org).await?,
                None => None,
            };
            Some(org.ok_or_else(|| anyhow::anyhow!("no organization {raw:?}"))?.id)
        }
        None => None,
    };
    let audit =
        Audit { at: clock.now(), actor: AuditActor::Operator, ip: None, action: "api_key.created", target: None };
    let minted = issue_key(stores.admin.as_ref(), org_id, name, &audit).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(minted.secret)
}
