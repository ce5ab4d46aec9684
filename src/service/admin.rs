//! The admin API: secret API keys (an organization's, or the platform's) and the management of an
//! organization's users by its administrators or its keys, server to server.
//!
//! A key is `isk_<id>_<secret>` (an organization's) or `isp_<id>_<secret>` (the platform's): the prefix
//! makes a leaked key greppable (secret scanners match `is[kp]_[0-9a-f]{32}_[A-Za-z0-9_-]{43}`), the id
//! finds its row, and the 256-bit secret is kept only as its SHA-256, compared in constant time. A
//! key is shown once, when it is created.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use identsphere_actors::{AuthMethod, RevokeReason};
use time::OffsetDateTime;
use uuid::Uuid;

use super::core::{Principal, Service};
use crate::error::ApiError;
use crate::model::SessionInfo;
use crate::model::{
    ApiKey, Audit, AuditActor, Email, Joining, NewAccount, OrgRef, OrgUser, Password, Role, SecretHash, UserProfile,
    UserQuery,
};
use crate::store::AdminStore;
use crate::store::StoreError;

/// The prefix of an organization's key.
pub const ORG_KEY_PREFIX: &str = "isk_";
/// The prefix of a platform key.
pub const PLATFORM_KEY_PREFIX: &str = "isp_";
/// Random bytes of a key's secret.
const KEY_SECRET_BYTES: usize = 32;
/// Longest page of users.
pub const USER_PAGE_MAX: u32 = 200;

/// An API key that authenticated a request.
#[derive(Clone, Debug)]
pub struct KeyPrincipal {
    /// The key.
    pub key_id: Uuid,
    /// The organization it acts for; `None` for a platform key.
    pub org_id: Option<Uuid>,
    /// The client address the request came from, for the audit log.
    pub ip: Option<String>,
}

/// Who calls a route on an organization: a signed-in user or an API key.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A user's access token.
    User(Principal),
    /// An API key.
    Key(KeyPrincipal),
}

impl Caller {
    /// Who acts, for the audit log.
    #[must_use]
    pub fn actor(&self) -> AuditActor {
        match self {
            Self::User(principal) => AuditActor::User(principal.claims.sub),
            Self::Key(key) => AuditActor::Key(key.key_id),
        }
    }

    /// The client address of the request.
    #[must_use]
    pub fn ip(&self) -> Option<&str> {
        match self {
            Self::User(principal) => principal.ip.as_deref(),
            Self::Key(key) => key.ip.as_deref(),
        }
    }

    /// The user calling, if a user is.
    #[must_use]
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User(principal) => Some(principal.claims.sub),
            Self::Key(_) => None,
        }
    }
}

/// A new key: its stored form and the key itself, to show once.
#[derive(Debug)]
pub struct MintedKey {
    /// What is stored.
    pub key: ApiKey,
    /// `isk_…` or `isp_…`: the only time it exists outside the caller's hands.
    pub secret: String,
}

/// Makes a key for `org_id` (a platform key without one) and stores it with its audit entry: the one way
/// a key comes to be, from the API or the operator's command line.
///
/// # Errors
/// When the system has no randomness, or the store fails.
pub async fn issue_key(
    admin: &dyn AdminStore,
    org_id: Option<Uuid>,
    name: String,
    audit: &Audit,
) -> Result<MintedKey, ApiError> {
    let created_by = match audit.actor {
        AuditActor::User(id) => Some(id),
        AuditActor::Key(_) | AuditActor::Operator => None,
    };
    let minted = mint_key(org_id, name, created_by, audit.at)?;
    admin.add_key(&minted.key, Some(audit)).await?;
    Ok(minted)
}

fn mint_key(
    org_id: Option<Uuid>,
    name: String,
    created_by: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<MintedKey, ApiError> {
    let mut raw = [0u8; KEY_SECRET_BYTES];
    SystemRandom::new().fill(&mut raw).map_err(|_| ApiError::Internal(anyhow::anyhow!("no randomness")))?;
    let secret_part = B64URL.encode(raw);
    let id = Uuid::new_v4();
    let prefix = if org_id.is_some() { ORG_KEY_PREFIX } else { PLATFORM_KEY_PREFIX };
    let key = ApiKey {
        id,
        org_id,
        name,
        secret_hash: secret_hash(&secret_part),
        created_by,
        created_at: now,
        last_used_at: None,
        revoked: false,
    };
    Ok(MintedKey { key, secret: format!("{prefix}{}_{secret_part}", id.simple()) })
}

fn secret_hash(secret_part: &str) -> SecretHash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, secret_part.as_bytes()).as_ref());
    hash
}

/// Whether a bearer credential has the shape of one of our API keys (rather than a JWT).
#[must_use]
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with(ORG_KEY_PREFIX) || credential.starts_with(PLATFORM_KEY_PREFIX)
}

/// A user an administrator creates in an organization.
#[derive(Debug)]
pub struct NewUser {
    /// The email.
    pub email: Email,
    /// The password, policy-checked.
    pub password: Password,
    /// Optional display name.
    pub display_name: Option<String>,
    /// The role in the organization.
    pub role: Role,
}

impl Service {
    /// The key a bearer credential names, if it is a live key with this secret.
    ///
    /// # Errors
    /// `TokenInvalid` for anything but a key of ours with its secret (the same answer whatever is
    /// wrong); `TokenRevoked` for a revoked one.
    pub async fn authenticate_key(&self, credential: &str, ip: Option<String>) -> Result<KeyPrincipal, ApiError> {
        let (platform, rest) =
            match (credential.strip_prefix(ORG_KEY_PREFIX), credential.strip_prefix(PLATFORM_KEY_PREFIX)) {
                (Some(rest), _) => (false, rest),
                (_, Some(rest)) => (true, rest),
                _ => return Err(ApiError::TokenInvalid),
            };
        let (id, secret_part) = rest.split_once('_').ok_or(ApiError::TokenInvalid)?;
        let id = Uuid::try_parse(id).map_err(|_| ApiError::TokenInvalid)?;
        let key = self.stores.admin.key(id).await?.ok_or(ApiError::TokenInvalid)?;
        let presented = secret_hash(secret_part);
        if verify_slices_are_equal(&presented, &key.secret_hash).is_err() || platform != key.org_id.is_none() {
            return Err(ApiError::TokenInvalid);
        }
        if key.revoked {
            return Err(ApiError::TokenRevoked);
        }
        if let Err(err) = self.stores.admin.touch_key(key.id, self.clock.now()).await {
            // The request is authenticated either way; the last-used time catches up on the next one.
            tracing::warn!(error = %err, "could not record the API key's use");
        }
        Ok(KeyPrincipal { key_id: key.id, org_id: key.org_id, ip })
    }

    /// Creates an API key for an organization (owners, signed in): returned once with its secret.
    ///
    /// # Errors
    /// `InsufficientRole` for anyone but an owner (a key makes no keys); `OrganizationNotFound`.
    pub async fn create_key(&self, caller: &Caller, org: &OrgRef, name: String) -> Result<MintedKey, ApiError> {
        let org = self.key_admin_org(caller, org).await?;
        let audit = self.audit(caller, "api_key.created", None);
        issue_key(self.stores.admin.as_ref(), Some(org.id), name, &audit).await
    }

    /// The organization's keys, without their secrets (owners, signed in).
    ///
    /// # Errors
    /// As [`Service::create_key`].
    pub async fn keys(&self, caller: &Caller, org: &OrgRef) -> Result<Vec<ApiKey>, ApiError> {
        let org = self.key_admin_org(caller, org).await?;
        Ok(self.stores.admin.keys(org.id).await?)
    }

    /// Revokes one of the organization's keys (owners, signed in): it authenticates nothing from now.
    ///
    /// # Errors
    /// `ApiKeyNotFound` for no such live key of the organization; as [`Service::create_key`].
    pub async fn revoke_key(&self, caller: &Caller, org: &OrgRef, id: Uuid) -> Result<(), ApiError> {
        let org = self.key_admin_org(caller, org).await?;
        let audit = self.audit(caller, "api_key.revoked", Some(id.to_string()));
        if !self.stores.admin.revoke_key(org.id, id, &audit).await? {
            return Err(ApiError::ApiKeyNotFound);
        }
        Ok(())
    }

    /// The organization whose keys an owner manages: keys are a signed-in owner's business, never a key's.
    async fn key_admin_org(&self, caller: &Caller, org: &OrgRef) -> Result<crate::model::Organization, ApiError> {
        // A key is never an owner (`member_org`).
        let (org, role) = self.member_org(caller, org).await?;
        if role != Role::Owner {
            return Err(ApiError::InsufficientRole);
        }
        Ok(org)
    }

    /// The organization an administrator (or a key) manages users of, with the caller's role.
    pub(super) async fn user_admin_org(
        &self,
        caller: &Caller,
        org: &OrgRef,
    ) -> Result<(crate::model::Organization, Role), ApiError> {
        let (org, role) = self.member_org(caller, org).await?;
        if !role.at_least(Role::Admin) {
            return Err(ApiError::InsufficientRole);
        }
        Ok((org, role))
    }

    /// A page of the organization's users by email, optionally only emails containing `email`.
    ///
    /// # Errors
    /// `InsufficientRole` below admin; `OrganizationNotFound`.
    pub async fn org_users(&self, caller: &Caller, org: &OrgRef, query: UserQuery) -> Result<Vec<OrgUser>, ApiError> {
        let (org, _) = self.user_admin_org(caller, org).await?;
        let query = UserQuery { limit: query.limit.clamp(1, USER_PAGE_MAX), ..query };
        Ok(self.stores.admin.org_users(org.id, &query).await?)
    }

    /// One user of the organization.
    ///
    /// # Errors
    /// `MemberNotFound` for a user who is no member (whatever other organization they belong to).
    pub async fn org_user(&self, caller: &Caller, org: &OrgRef, user_id: Uuid) -> Result<OrgUser, ApiError> {
        Ok(self.admin_member(caller, org, user_id).await?.1)
    }

    async fn admin_member(
        &self,
        caller: &Caller,
        org: &OrgRef,
        user_id: Uuid,
    ) -> Result<(crate::model::Organization, OrgUser, Role), ApiError> {
        let (org, role) = self.user_admin_org(caller, org).await?;
        let member = self.stores.admin.org_user(org.id, user_id).await?.ok_or(ApiError::MemberNotFound)?;
        Ok((org, member, role))
    }

    /// Creates an account that belongs to the organization, with a password its user can sign in with.
    ///
    /// # Errors
    /// `EmailTaken` (bring an existing account in with an invitation, which it must accept);
    /// `AuthMethodNotAllowed` when the organization does not allow passwords; as [`Service::org_users`].
    pub async fn create_user(&self, caller: &Caller, org: &OrgRef, new: NewUser) -> Result<OrgUser, ApiError> {
        let (org, role) = self.user_admin_org(caller, org).await?;
        if !org.policy.sessions.auth_methods.contains(&AuthMethod::Password) {
            return Err(ApiError::AuthMethodNotAllowed);
        }
        // Only a signed-in owner makes an owner: a key is an admin (`member_org`).
        if new.role == Role::Owner && role != Role::Owner {
            return Err(ApiError::InsufficientRole);
        }
        self.limit_org_mail(org.id, &new.email).await?;
        let password_hash = self.hasher.hash(new.password).await?;
        let now = self.clock.now();
        let account = NewAccount {
            user_id: Uuid::new_v4(),
            email: new.email,
            display_name: new.display_name,
            password_hash: Some(password_hash),
            email_verified: false,
            identity: None,
            joining: Joining::Added {
                org_id: org.id,
                role: new.role,
                audit: Box::new(self.audit(caller, "user.created", None)),
            },
            now,
        };
        let user: UserProfile = match self.stores.accounts.create_account(&account).await {
            Ok(user) => user,
            Err(StoreError::Conflict(constraint)) if constraint == "users_email_normalized_key" => {
                return Err(ApiError::EmailTaken);
            }
            Err(other) => return Err(other.into()),
        };
        self.send_link(user.id, user.email.clone(), crate::model::LinkPurpose::VerifyEmail, now);
        Ok(OrgUser { user, role: new.role, joined_at: now, disabled: false, external_id: None })
    }

    /// The user's live sessions in the organization, newest first.
    ///
    /// # Errors
    /// As [`Service::org_user`].
    pub async fn user_sessions(
        &self,
        caller: &Caller,
        org: &OrgRef,
        user_id: Uuid,
    ) -> Result<Vec<SessionInfo>, ApiError> {
        let (org, member, _) = self.admin_member(caller, org, user_id).await?;
        self.member_sessions(org.id, member.user.id).await
    }

    async fn member_sessions(&self, org_id: Uuid, user_id: Uuid) -> Result<Vec<SessionInfo>, ApiError> {
        let mut sessions = self.stores.organizations.sessions(user_id, self.clock.now()).await?;
        sessions.retain(|s| s.org_id == org_id);
        Ok(sessions)
    }

    /// Ends every session of the user in the organization (sessions elsewhere are not the
    /// organization's to end).
    ///
    /// # Errors
    /// As [`Service::org_user`]; `InsufficientRole` for an owner's sessions and a caller below owner.
    pub async fn end_user_sessions(&self, caller: &Caller, org: &OrgRef, user_id: Uuid) -> Result<(), ApiError> {
        // Like every change to an owner, ending an owner's sessions is an owner's act (a key is an admin).
        let (org, member, role) = self.admin_member(caller, org, user_id).await?;
        if member.role == Role::Owner && role != Role::Owner {
            return Err(ApiError::InsufficientRole);
        }
        let sessions = self.member_sessions(org.id, member.user.id).await?;
        if sessions.is_empty() {
            return Ok(());
        }
        let families = sessions.iter().map(|s| (s.sid, s.org_id)).collect();
        self.end_families(families, RevokeReason::Logout, self.clock.now()).await?;
        let audit = self.audit(caller, "user.sessions_ended", Some(user_id.to_string()));
        Ok(self.stores.admin.record(org.id, &audit).await?)
    }
}
