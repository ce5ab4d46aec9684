//! User import and export (`docs/migration.md`): NDJSON in, one result per line out, both streamed, so a
//! file of any size passes through a bounded amount of memory; the export writes what the import reads.
//!
//! An import never changes an existing account: an address that has one is `exists` when its account is a
//! member here (a re-run), and otherwise `email_taken` — an organization brings in someone else's account
//! only by invitation, which its owner accepts. The platform (its key, or the operator's command line) acts
//! for every organization, so it adds such an account as a member instead: one user in several
//! organizations of a system being moved is the common case.

use std::convert::Infallible;
use std::sync::Arc;

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt as _};
use identsphere_actors::{Aal, AuthMethod};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::admin::Caller;
use super::core::Service;
use crate::auth::imported::{self, FirebaseProject, ImportRules};
use crate::auth::keys::Sealer;
use crate::clock::Clock;
use crate::error::ApiError;
use crate::model::{
    Audit, AuditActor, Email, ImportOutcome, ImportedUser, OrgRef, Organization, Role, display_text, domain_of,
    parse_json,
};
use crate::store::AdminStore;

/// Longest `external_id`.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// Lines one import request may carry; a bigger file goes in several (a re-run skips what is done).
pub const MAX_IMPORT_LINES: u64 = 100_000;
/// Bytes one import request may carry.
pub const MAX_IMPORT_BYTES: u64 = 64 << 20;
/// Longest line.
pub const MAX_IMPORT_LINE_BYTES: usize = 16 << 10;
/// Users written per transaction (and answered together).
const BATCH: usize = 500;
/// Members read per page of an export.
const EXPORT_PAGE: u32 = 500;
/// The fewest bytes of an imported TOTP secret: RFC 4226's 128 bits, as our own factors have more.
const MIN_TOTP_SECRET_BYTES: usize = 16;

/// One line of an import, as sent (and as the export writes it).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Line {
    email: String,
    email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_hash: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option", skip_serializing_if = "Option::is_none")]
    created_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp_secret: Option<String>,
}

/// One line's result.
#[derive(Debug, Serialize)]
struct LineResult<'a> {
    line: u64,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<LineError<'a>>,
}

/// The envelope's error object, for one line.
#[derive(Debug, Serialize)]
struct LineError<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

impl<'a> LineResult<'a> {
    fn error(line: u64, status: &'static str, err: &'a ApiError) -> Self {
        let error = LineError { code: err.catalog().0, message: err.to_string(), param: err.param() };
        Self { line, status, user_id: None, error: Some(error) }
    }
}

/// An import's stores and rules, for a server or the operator's command line.
#[derive(Clone)]
pub struct Importer {
    admin: Arc<dyn AdminStore>,
    sealer: Sealer,
    clock: Clock,
    allow_weak: bool,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer").field("allow_weak", &self.allow_weak).finish_non_exhaustive()
    }
}

/// Who imports into which organization, and what that lets them do.
#[derive(Debug)]
pub struct ImportJob {
    importer: Importer,
    org: Organization,
    actor: AuditActor,
    ip: Option<String>,
    /// Only a signed-in owner makes owners: never a key.
    may_make_owners: bool,
    /// The platform brings existing accounts in as members.
    join_existing: bool,
    rules: ImportRules,
    /// Lines and bytes one request may carry.
    limits: (u64, u64),
    /// The domains whose addresses the importer may call verified: `None` for the platform (any); an
    /// organization only those verified for its SSO connections.
    vouched_domains: Option<Vec<String>>,
}

impl Importer {
    /// An importer over these stores; `allow_weak` is `IDENTSPHERE_IMPORT_ALLOW_WEAK_HASHES`.
    #[must_use]
    pub fn new(admin: Arc<dyn AdminStore>, sealer: Sealer, clock: Clock, allow_weak: bool) -> Self {
        Self { admin, sealer, clock, allow_weak }
    }

    /// The operator's import into `org` (command line): the platform's rights, owners too (the operator
    /// holds the database already), no limit on the file's size; audited as the operator.
    #[must_use]
    pub fn operator_job(&self, org: Organization) -> ImportJob {
        ImportJob { limits: (u64::MAX, u64::MAX), ..self.job(org, AuditActor::Operator, None, (true, true)) }
    }

    fn job(
        &self,
        org: Organization,
        actor: AuditActor,
        ip: Option<String>,
        (may_make_owners, join_existing): (bool, bool),
    ) -> ImportJob {
        let rules = ImportRules { allow_weak: self.allow_weak, firebase: None };
        let limits = (MAX_IMPORT_LINES, MAX_IMPORT_BYTES);
        let importer = self.clone();
        ImportJob { importer, org, actor, ip, may_make_owners, join_existing, rules, limits, vouched_domains: None }
    }
}

impl ImportJob {
    /// The same import, taking the Firebase scrypt hashes of `project`.
    ///
    /// # Errors
    /// When sealing its signer key fails.
    pub fn with_firebase(mut self, project: &FirebaseProject) -> Result<Self, ApiError> {
        self.rules.firebase = Some(project.sealed(&self.importer.sealer).map_err(ApiError::Internal)?);
        Ok(self)
    }

    /// The results of importing the NDJSON `body`, as NDJSON, batch by batch as the body arrives.
    pub fn run<S, E>(self, body: S) -> impl Stream<Item = Result<Bytes, Infallible>> + 'static
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + 'static,
    {
        let reader = Lines {
            body,
            buf: Vec::new(),
            start: 0,
            ended: false,
            bytes: 0,
            lines: 0,
            skipping: false,
            limits: self.limits,
        };
        futures_util::stream::unfold(Some((self, reader)), |state| async move {
            let (job, mut reader) = state?;
            let (out, more) = job.batch(&mut reader).await;
            Some((Ok(out), more.then_some((job, reader))))
        })
    }

    /// Reads up to a batch of lines, writes them, and answers for each; `false` when the import is over.
    async fn batch<S, E>(&self, reader: &mut Lines<S>) -> (Bytes, bool)
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let now = self.importer.clock.now();
        let mut parsed: Vec<(u64, Result<ImportedUser, ApiError>)> = Vec::new();
        let mut valid = 0;
        let stop = loop {
            if valid == BATCH {
                break None;
            }
            match reader.next().await {
                Next::Line(number, raw) => {
                    let user = raw.and_then(|raw| self.user(&raw, now));
                    valid += usize::from(user.is_ok());
                    parsed.push((number, user));
                }
                Next::End => break Some(None),
                Next::Stop(number, err) => break Some(Some((number, err))),
            }
        };
        let mut out = Vec::new();
        let users: Vec<ImportedUser> = parsed.iter().filter_map(|(_, u)| u.as_ref().ok().cloned()).collect();
        let audit = Audit { at: now, actor: self.actor, ip: self.ip.clone(), action: "user.imported", target: None };
        let outcomes = if users.is_empty() {
            Ok(Vec::new())
        } else {
            self.importer.admin.import_users(self.org.id, &users, self.join_existing, &audit).await
        };
        let outcomes = match outcomes {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // Nothing of this batch was written: the client sends it again from its first line.
                let first = parsed.first().map_or(reader.lines, |(number, _)| *number);
                write(&mut out, &LineResult::error(first, "failed", &ApiError::from(err)));
                return (out.into(), false);
            }
        };
        let mut outcomes = outcomes.into_iter();
        let taken = ApiError::EmailTaken;
        for (number, user) in &parsed {
            let result = match user {
                Err(err) => LineResult::error(*number, "invalid", err),
                Ok(user) => match outcomes.next() {
                    Some(ImportOutcome::Created) => {
                        LineResult { line: *number, status: "created", user_id: Some(user.user_id), error: None }
                    }
                    Some(ImportOutcome::Exists(id)) => {
                        LineResult { line: *number, status: "exists", user_id: Some(id), error: None }
                    }
                    Some(ImportOutcome::Taken) | None => LineResult::error(*number, "invalid", &taken),
                },
            };
            metrics::counter!("identsphere_users_imported_total", "status" => result.status).increment(1);
            write(&mut out, &result);
        }
        match stop {
            None => (out.into(), true),
            Some(None) => (out.into(), false),
            Some(Some((number, err))) => {
                write(&mut out, &LineResult::error(number, "failed", &err));
                (out.into(), false)
            }
        }
    }

    /// One line, checked: the account to create if its address has none.
    fn user(&self, raw: &[u8], now: OffsetDateTime) -> Result<ImportedUser, ApiError> {
        let line: Line = parse_json(raw)?;
        let email = Email::parse(&line.email)?;
        let role = line.role.as_deref().map(Role::from_field).transpose()?.unwrap_or(Role::Member);
        if role == Role::Owner && !self.may_make_owners {
            return Err(ApiError::InsufficientRole);
        }
        let password_hash = match line.password_hash {
            None => None,
            Some(_) if !self.org.policy.sessions.auth_methods.contains(&AuthMethod::Password) => {
                return Err(ApiError::AuthMethodNotAllowed);
            }
            Some(given) => Some(
                imported::admit(&given, &self.rules)
                    .map_err(|refused| ApiError::invalid_field("password_hash", refused.message()))?,
            ),
        };
        let created_at = line.created_at.unwrap_or(now);
        if created_at > now + time::Duration::DAY {
            return Err(ApiError::invalid_field("created_at", "created_at is in the future"));
        }
        let external_id = line.external_id.map(|id| id.trim().to_owned()).filter(|id| !id.is_empty());
        if external_id.as_ref().is_some_and(|id| id.chars().count() > MAX_EXTERNAL_ID_CHARS || id.contains('\0')) {
            return Err(ApiError::invalid_field("external_id", "external_id is at most 255 characters"));
        }
        let user_id = Uuid::new_v4();
        let sealed_totp = line
            .totp_secret
            .map(|secret| {
                let bytes = totp_rs::Secret::try_from_base32(secret.trim().trim_end_matches('='))
                    .ok()
                    .filter(|s| s.len() >= MIN_TOTP_SECRET_BYTES)
                    .ok_or_else(|| {
                        ApiError::invalid_field("totp_secret", "totp_secret must be base32, 128 bits or more")
                    })?;
                self.importer.sealer.seal(&super::mfa::owner(user_id), &bytes).map_err(ApiError::Internal)
            })
            .transpose()?;
        Ok(ImportedUser {
            user_id,
            email_verified: line.email_verified && self.vouches_for(&email),
            email,
            display_name: display_text("display_name", line.display_name)?,
            role,
            password_hash,
            created_at,
            external_id,
            sealed_totp,
        })
    }

    /// Whether the importer may call `email` verified. A verified address joins organizations that take its
    /// domain and is linked to provider identities that prove it, so an organization vouches only for the
    /// domains the platform verified for its SSO connections: otherwise its admin could plant a verified
    /// `someone@bigcorp.com` with a password they know, and join BigCorp by domain, or be signed into by the
    /// real owner's Google account.
    fn vouches_for(&self, email: &Email) -> bool {
        self.vouched_domains.as_ref().is_none_or(|domains| domains.contains(&domain_of(email.normalized())))
    }
}

fn write(out: &mut Vec<u8>, value: &impl Serialize) {
    // Serializing our own plain structs to a vector cannot fail.
    if serde_json::to_writer(&mut *out, value).is_ok() {
        out.push(b'\n');
    }
}

/// The body's lines, counted from 1 (blank lines count, and have no result), within the limits.
struct Lines<S> {
    body: S,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts: lines are taken from it without moving the rest each time.
    start: usize,
    ended: bool,
    bytes: u64,
    lines: u64,
    /// Dropping the rest of a line that was too long.
    skipping: bool,
    /// Most lines and bytes.
    limits: (u64, u64),
}

enum Next {
    /// A line (or why it cannot be read).
    Line(u64, Result<Vec<u8>, ApiError>),
    /// The body is over.
    End,
    /// A limit is reached: nothing from this line on is imported.
    Stop(u64, ApiError),
}

impl<S, E> Lines<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    async fn next(&mut self) -> Next {
        loop {
            let unread = &self.buf[self.start..];
            let line = match unread.iter().position(|b| *b == b'\n') {
                Some(end) => {
                    let line = unread[..=end].to_vec();
                    self.start += end + 1;
                    Some(line)
                }
                None if self.ended && !unread.is_empty() => {
                    let line = unread.to_vec();
                    self.start = self.buf.len();
                    Some(line)
                }
                None => None,
            };
            if let Some(line) = line {
                if std::mem::take(&mut self.skipping) {
                    continue;
                }
                self.lines += 1;
                if self.lines > self.limits.0 {
                    let message = format!("an import takes at most {} lines: send the rest in another", self.limits.0);
                    return Next::Stop(self.lines, ApiError::InvalidRequest { message, param: None });
                }
                if line.len() > MAX_IMPORT_LINE_BYTES {
                    return Next::Line(self.lines, Err(too_long()));
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Next::Line(self.lines, Ok(line));
            }
            // No whole line is left: what was read goes, and the partial line moves to the front once.
            self.buf.drain(..self.start);
            self.start = 0;
            // A line this long is refused without waiting for its end, which need not come.
            if self.buf.len() > MAX_IMPORT_LINE_BYTES {
                self.buf.clear();
                if !self.skipping {
                    self.skipping = true;
                    self.lines += 1;
                    return Next::Line(self.lines, Err(too_long()));
                }
            }
            if self.ended {
                return Next::End;
            }
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    self.bytes += chunk.len() as u64;
                    if self.bytes > self.limits.1 {
                        let limit = usize::try_from(self.limits.1).unwrap_or(usize::MAX);
                        return Next::Stop(self.lines + 1, ApiError::PayloadTooLarge { limit });
                    }
                    self.buf.extend_from_slice(&chunk);
                }
                // The client went away: there is nobody to answer.
                Some(Err(_)) => return Next::End,
                None => self.ended = true,
            }
        }
    }
}

fn too_long() -> ApiError {
    ApiError::InvalidRequest { message: format!("a line is at most {MAX_IMPORT_LINE_BYTES} bytes"), param: None }
}

impl Service {
    /// An import into `org` by `caller`: an administrator (an owner to import owners) or a key of the
    /// organization, or a platform key (which also brings existing accounts in).
    ///
    /// # Errors
    /// `InsufficientRole` below admin; `OrganizationNotFound`; as [`Service::member_org`].
    pub async fn import_job(&self, caller: &Caller, org: &OrgRef) -> Result<ImportJob, ApiError> {
        let (org, role) = self.user_admin_org(caller, org).await?;
        let platform = matches!(caller, Caller::Key(key) if key.org_id.is_none());
        let rights = (role == Role::Owner && caller.user_id().is_some(), platform);
        let vouched_domains = if platform {
            None
        } else {
            let connections = self.stores.sso.connections(org.id).await?;
            let verified = connections.into_iter().flat_map(|c| c.domains).filter(|d| d.verified_at.is_some());
            Some(verified.map(|d| d.domain).collect())
        };
        let job = self.importer().job(org, caller.actor(), caller.ip().map(str::to_owned), rights);
        Ok(ImportJob { vouched_domains, ..job })
    }

    /// The organization's members in the import's format (hashes included): an owner at `aal2`, or a
    /// platform key; audited.
    ///
    /// # Errors
    /// `InsufficientRole` for anyone else (an organization's key included: a key is never an owner);
    /// `InsufficientAal` for an owner's `aal1` session.
    pub async fn export_users(
        &self,
        caller: &Caller,
        org: &OrgRef,
    ) -> Result<impl Stream<Item = Result<Bytes, Infallible>> + 'static, ApiError> {
        let (org, role) = self.member_org(caller, org).await?;
        match caller {
            Caller::Key(key) if key.org_id.is_none() => {}
            Caller::User(principal) if role == Role::Owner => {
                if principal.claims.aal != Aal::Aal2 {
                    return Err(ApiError::InsufficientAal);
                }
            }
            Caller::User(_) | Caller::Key(_) => return Err(ApiError::InsufficientRole),
        }
        self.stores.admin.record(org.id, &self.audit(caller, "users.exported", None)).await?;
        Ok(export(Arc::clone(&self.stores.admin), self.collaborators.sealer.clone(), org.id))
    }

    fn importer(&self) -> Importer {
        Importer::new(
            Arc::clone(&self.stores.admin),
            self.collaborators.sealer.clone(),
            self.clock.clone(),
            self.allow_weak_hashes,
        )
    }
}

/// Pages of the organization's members as import lines; a failed page ends the export with an error line.
fn export(
    admin: Arc<dyn AdminStore>,
    sealer: Sealer,
    org_id: Uuid,
) -> impl Stream<Item = Result<Bytes, Infallible>> + 'static {
    futures_util::stream::unfold(Some(None), move |after: Option<Option<Uuid>>| {
        let (admin, sealer) = (Arc::clone(&admin), sealer.clone());
        async move {
            let after = after?;
            let mut out = Vec::new();
            let page = match admin.export_users(org_id, after, EXPORT_PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    let err = ApiError::from(err);
                    let error = LineError { code: err.catalog().0, message: err.to_string(), param: None };
                    write(&mut out, &serde_json::json!({ "error": error }));
                    return Some((Ok(out.into()), None));
                }
            };
            for member in &page {
                let totp = member.sealed_totp.as_ref().and_then(|sealed| {
                    let secret = sealer.open(&super::mfa::owner(member.user.id), sealed);
                    // A secret that does not open (another key-encryption key) is left out, not exported broken.
                    secret.ok().map(|s| totp_rs::Secret::from(s).to_base32())
                });
                let line = Line {
                    email: member.user.email.clone(),
                    email_verified: member.user.email_verified,
                    display_name: member.user.display_name.clone(),
                    role: Some(member.role.as_str().to_owned()),
                    password_hash: member.password_hash.as_deref().map(imported::exported),
                    created_at: Some(member.user.created_at),
                    external_id: member.external_id.clone(),
                    totp_secret: totp,
                };
                write(&mut out, &line);
            }
            let next = (page.len() == EXPORT_PAGE as usize).then(|| page.last().map(|m| m.user.id));
            Some((Ok(out.into()), next))
        }
    })
}
