//! The operator's commands besides `serve`: they open the configured stores and call what the server
//! would.

use actix_web::web::Bytes;
use futures_util::StreamExt as _;

use crate::auth::imported::FirebaseProject;
use crate::auth::keys::{KeyRing, Sealer};
use crate::clock::Clock;
use crate::config::Config;
use crate::model::{Audit, AuditActor, OrgRef};
use crate::service::{Importer, issue_key};

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

/// What `identsphere import users` did, by status.
#[derive(Debug, Default)]
pub struct ImportSummary {
    /// Accounts created.
    pub created: u64,
    /// Addresses whose accounts were (or became) members.
    pub exists: u64,
    /// Lines refused, each with its error in the results.
    pub invalid: u64,
    /// The import stopped early (a store failure): the results' last line says from where to resume.
    pub failed: bool,
}

/// `identsphere import users`: imports the NDJSON in `input` into `organization` as the platform operator
/// (existing accounts become members, owners may be imported, no size limit), writing one result a line to
/// `results`, as `POST /v1/organizations/{org}/users/import` answers. Runs beside servers on Postgres; on
/// the embedded store only while no server holds it.
///
/// # Errors
/// When the stores cannot be opened, there is no such organization, or `firebase` does not parse.
pub async fn import_users(
    config: &Config,
    clock: &Clock,
    organization: &str,
    firebase: Option<&str>,
    mut input: impl std::io::Read + Unpin + 'static,
    mut results: impl std::io::Write,
) -> anyhow::Result<ImportSummary> {
    let firebase =
        firebase.map(FirebaseProject::parse).transpose().map_err(|e| anyhow::anyhow!("--firebase-scrypt: {e}"))?;
    let (stores, kek) = open_stores(config, clock).await?;
    let org = match OrgRef::parse(organization) {
        Some(org) => stores.accounts.find_org(&org).await?,
        None => None,
    };
    let org = org.ok_or_else(|| anyhow::anyhow!("no organization {organization:?}"))?;
    let importer = Importer::new(stores.admin, Sealer::new(&kek)?, clock.clone(), config.import_allow_weak_hashes);
    let mut job = importer.operator_job(org);
    if let Some(project) = &firebase {
        job = job.with_firebase(project).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    // A file is read in chunks as the import goes: its size is not bounded by memory.
    let chunks = std::iter::from_fn(move || {
        let mut chunk = vec![0; 64 << 10];
        match input.read(&mut chunk) {
            Ok(0) => None,
            Ok(read) => {
                chunk.truncate(read);
                Some(Ok(Bytes::from(chunk)))
            }
            Err(err) => Some(Err(err)),
        }
    });
    let mut answers = Box::pin(job.run(futures_util::stream::iter(chunks)));
    let mut summary = ImportSummary::default();
    while let Some(Ok(chunk)) = answers.next().await {
        results.write_all(&chunk)?;
        for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let answer: serde_json::Value = serde_json::from_slice(line)?;
            match answer.get("status").and_then(serde_json::Value::as_str) {
                Some("created") => summary.created += 1,
                Some("exists") => summary.exists += 1,
                Some("failed") => summary.failed = true,
                _ => summary.invalid += 1,
            }
        }
    }
    results.flush()?;
    Ok(summary)
}
