//! Registration: the organization a new account joins (personal, open, by domain, invited) and the
//! account's first session.

use identsphere_actors::{AuthMethod, Changed, Origin, StoreError};
use uuid::Uuid;

use crate::error::ApiError;
use crate::model::{
    Audit, AuditActor, Email, Identity, Joining, LinkPurpose, NewAccount, OrgPolicy, OrgRef, Organization, Role,
    SecretHash, SignupMode,
};
use crate::store::INVITATION_SPENT;

use super::core::*;
use super::limits::{Limit, OrgLimit};
use super::mfa::LoginOutcome;
use crate::model::{admit, personal_slug, takes_domain};

/// A new account, before it has an id.
pub(super) struct AccountDraft {
    pub(super) email: Email,
    pub(super) display_name: Option<String>,
    pub(super) password_hash: Option<String>,
    pub(super) email_verified: bool,
    /// The provider identity it is created through; its `user_id` is set to the new account's.
    pub(super) identity: Option<Identity>,
}

/// Where a new account goes.
pub(super) enum Target {
    /// A new personal organization.
    Personal,
    /// An organization open to sign-ups.
    Existing(Organization),
    /// A new personal organization, and an organization that takes the address's domain, joined once
    /// the address is verified: typing an address proves nothing.
    DomainPending(Organization),
    /// The organization of an invitation.
    Invited { org: Organization, role: Role, token_hash: SecretHash },
}

impl Target {
    /// The policy the new account signs in under: a new personal organization's is the default.
    pub(super) fn policy(&self) -> OrgPolicy {
        match self {
            Self::Personal | Self::DomainPending(_) => OrgPolicy::default(),
            Self::Existing(org) | Self::Invited { org, .. } => org.policy.clone(),
        }
    }
}

impl Service {
    /// Creates an account and signs it in.
    ///
    /// # Errors
    /// `OrganizationNotFound`, `AccountDisabled` or `SignupNotAllowed` for the organization asked for;
    /// `EmailTaken`; store failures.
    pub async fn register(&self, registration: Registration, origin: Origin) -> Result<LoginOutcome, ApiError> {
        let result = self.register_uncounted(registration, origin).await;
        metrics::counter!("identsphere_auth_registrations_total", "result" => outcome(&result)).increment(1);
        result
    }

    async fn register_uncounted(&self, registration: Registration, origin: Origin) -> Result<LoginOutcome, ApiError> {
        self.limit(Limit::RegisterIp, origin.ip.as_deref(), true).await?;
        let Registration { email, password, display_name, organization, invitation } = registration;
        let target = match (organization, invitation) {
            (_, Some(token)) => self.invited_target(&token, &email).await?,
            (Some(org), None) => self.signup_target(&org, &email).await?,
            (None, None) => Target::Personal,
        };
        if let Target::Existing(org) | Target::Invited { org, .. } | Target::DomainPending(org) = &target {
            admit(org, AuthMethod::Password)?;
            self.sso_gate(org.id, email.normalized(), None).await?;
            self.org_limit(org, OrgLimit::RegisterIp, origin.ip.as_deref()).await?;
        }
        let policy = target.policy();
        let password_hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        let draft = AccountDraft {
            email_verified: matches!(target, Target::Invited { .. }),
            email,
            display_name,
            password_hash: Some(password_hash),
            identity: None,
        };
        let (user, org_id) = self.create_account_in(&target, draft, now).await?;
        self.send_link(user.id, user.email.clone(), LinkPurpose::VerifyEmail, now);
        let family = self.new_family(user.id, org_id, &policy, AuthMethod::Password, now);
        // A new account has no second factor: an organization that requires one gets it enrolled before any
        // session starts.
        if policy.sessions.mfa_required {
            return self.second_factor_due(&family, &user, Vec::new(), now);
        }
        let mut sign_in = self.start_family(family, user, origin, &policy.sessions, now).await?;
        if let Target::DomainPending(org) = &target {
            sign_in.pending = Some(org.clone());
        }
        Ok(LoginOutcome::SignedIn(Box::new(sign_in)))
    }

    /// Creates an account in `target`: the user and the organization they start in.
    ///
    /// # Errors
    /// `EmailTaken`; `InvitationInvalid` for an invitation spent meanwhile; store failures.
    pub(super) async fn create_account_in(
        &self,
        target: &Target,
        draft: AccountDraft,
        now: time::OffsetDateTime,
    ) -> Result<(crate::model::UserProfile, Uuid), ApiError> {
        let AccountDraft { email, display_name, password_hash, email_verified, identity } = draft;
        let user_id = Uuid::new_v4();
        let identity = identity.map(|identity| Identity { user_id, ..identity });
        // A personal slug collides only by chance: draw another suffix.
        for _ in 0..3 {
            let joining = match target {
                Target::Existing(org) => Joining::Existing(org.id),
                Target::Invited { org, role, token_hash } => {
                    Joining::Invited { org_id: org.id, role: *role, token_hash: *token_hash }
                }
                Target::Personal | Target::DomainPending(_) => Joining::Personal {
                    id: Uuid::new_v4(),
                    slug: personal_slug(&email)?,
                    name: display_name.clone().unwrap_or_else(|| email.local_part().to_owned()),
                },
            };
            let org_id = match &joining {
                Joining::Personal { id, .. } => *id,
                Joining::Existing(id) => *id,
                Joining::Invited { org_id, .. } | Joining::Added { org_id, .. } => *org_id,
            };
            let account = NewAccount {
                user_id,
                email: email.clone(),
                display_name: display_name.clone(),
                password_hash: password_hash.clone(),
                email_verified,
                joining,
                identity: identity.clone(),
                now,
            };
            match self.stores.accounts.create_account(&account).await {
                Ok(user) => return Ok((user, org_id)),
                Err(StoreError::Conflict(constraint)) if constraint == "users_email_normalized_key" => {
                    return Err(ApiError::EmailTaken);
                }
                Err(StoreError::Conflict(constraint)) if constraint == "organizations_slug_key" => {}
                Err(StoreError::Conflict(constraint)) if constraint == INVITATION_SPENT => {
                    return Err(ApiError::InvitationInvalid);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ApiError::Internal(anyhow::anyhow!("no free personal organization slug after 3 draws")))
    }

    /// The organization and role of a working invitation for `email`.
    async fn invited_target(&self, token: &str, email: &Email) -> Result<Target, ApiError> {
        let token_hash = super::lifecycle::link_token_hash(token).ok_or(ApiError::InvitationInvalid)?;
        let invitation = self.live_invitation(&token_hash, email).await?;
        let org = self.stores.accounts.find_org(&OrgRef::Id(invitation.org_id)).await?;
        // The organization's row goes with its invitations: without it, the invitation is no more.
        let org = org.ok_or(ApiError::InvitationInvalid)?;
        Ok(Target::Invited { org, role: invitation.role, token_hash })
    }

    pub(super) async fn signup_target(&self, org: &OrgRef, email: &Email) -> Result<Target, ApiError> {
        let org = self.stores.accounts.find_org(org).await?.ok_or(ApiError::OrganizationNotFound)?;
        if org.disabled {
            return Err(ApiError::AccountDisabled);
        }
        match &org.signup {
            SignupMode::Open => Ok(Target::Existing(org)),
            SignupMode::Domains(_) if takes_domain(&org, email) => Ok(Target::DomainPending(org)),
            SignupMode::Domains(_) | SignupMode::Closed | SignupMode::InviteOnly => Err(ApiError::SignupNotAllowed),
        }
    }

    /// Checks that the user is a member of `org`, making them one first when the organization takes
    /// sign-ups of the domain of their address and the address is verified.
    ///
    /// # Errors
    /// `NotAMember`; `AccountDisabled` for a disabled organization.
    pub(super) async fn member_or_joined_by_domain(
        &self,
        user_id: Uuid,
        org: &Organization,
        ip: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.stores.accounts.role(user_id, org.id).await?.is_some() {
            return Ok(());
        }
        let user = self.stores.lifecycle.user(user_id).await?.ok_or(ApiError::NotAMember)?.user;
        if !user.email_verified || !takes_domain(org, &Email::parse(&user.email)?) {
            return Err(ApiError::NotAMember);
        }
        self.join(user_id, org, "member.joined_by_domain", None, ip).await
    }

    /// Checks that the user is a member of `org`, making them one first: they signed in through the
    /// organization's own connection, which vouched for their address (just-in-time provisioning).
    ///
    /// # Errors
    /// `NotAMember` for a membership the organization disabled; `AccountDisabled` for a disabled organization.
    pub(super) async fn member_or_joined_by_sso(
        &self,
        user_id: Uuid,
        org: &Organization,
        connection: Uuid,
        ip: Option<&str>,
    ) -> Result<(), ApiError> {
        if self.stores.accounts.role(user_id, org.id).await?.is_some() {
            return Ok(());
        }
        self.join(user_id, org, "member.joined_by_sso", Some(connection.to_string()), ip).await
    }

    async fn join(
        &self,
        user_id: Uuid,
        org: &Organization,
        action: &'static str,
        target: Option<String>,
        ip: Option<&str>,
    ) -> Result<(), ApiError> {
        if org.disabled {
            return Err(ApiError::AccountDisabled);
        }
        let audit =
            Audit { at: self.clock.now(), actor: AuditActor::User(user_id), ip: ip.map(str::to_owned), action, target };
        if !self.stores.organizations.join_by_domain(user_id, org.id, &audit).await? {
            // A membership the organization disabled stays so.
            return Err(ApiError::NotAMember);
        }
        self.changed(&[Changed::User(user_id)]).await;
        Ok(())
    }
}
