//! Organizations, their members and roles, and a user's session list.
//!
//! Every call on an organization is made by a signed-in user or an API key (`Caller`) and checks the
//! caller's role in the organization named: an organization the user is not a member of — or the key
//! is not for — answers exactly like one that does not exist (`organization_not_found`), so ids and
//! slugs of other tenants cannot be probed. A user acts from a session in the organization (switch
//! first), under its policy. Owners may do everything, admins everything but touching owners, disabling
//! and the policy, members read; an organization's key acts as an admin of it, a platform key as an
//! admin of every organization. An organization keeps at least one enabled owner.

use identsphere_actors::{Aal, Changed, RevokeReason};
use time::Duration;
use uuid::Uuid;

use super::admin::Caller;
use super::core::{Principal, Service};
use super::lifecycle::{link_token_hash, new_link_token};
use crate::error::ApiError;
use crate::mail::MailKind;
use crate::model::{
    Audit, AuditEvent, Email, Invitation, Member, MembershipChange, MembershipOutcome, OrgPolicy, OrgRef, OrgUpdate,
    Organization, Role, SecretHash, SessionInfo, SignupMode,
};
use crate::model::{admit, drawn_slug};
use crate::store::StoreError;

/// How long an invitation works.
const INVITATION_TTL: Duration = Duration::days(7);

/// A new organization.
#[derive(Clone, Debug)]
pub struct NewOrganization {
    /// Display name, validated.
    pub name: String,
    /// Slug, validated; drawn from the name when `None`.
    pub slug: Option<String>,
}

/// Where a user's authority over an organization comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Door {
    /// A session in the organization: every act.
    SessionInIt,
    /// Enabling a disabled organization again, which has no session to act from: an owner's session
    /// anywhere, meeting the organization's policy.
    ReenablingIt,
}

/// Longest page of the audit log.
pub const AUDIT_PAGE_MAX: u32 = 200;

/// The unique-constraint name both stores report for a taken slug.
const SLUG_CONSTRAINT: &str = "organizations_slug_key";

impl Service {
    /// What the caller does now, for the audit log.
    pub(super) fn audit(&self, caller: &Caller, action: &'static str, target: Option<String>) -> Audit {
        Audit { at: self.clock.now(), actor: caller.actor(), ip: caller.ip().map(str::to_owned), action, target }
    }

    /// Creates an organization owned by the principal's user.
    ///
    /// # Errors
    /// `SlugTaken`; the session's errors.
    pub async fn create_org(&self, principal: &Principal, new: NewOrganization) -> Result<Organization, ApiError> {
        self.session(principal).await?;
        // A drawn slug collides only by chance: draw again.
        for _ in 0..3 {
            let slug = match &new.slug {
                Some(slug) => slug.clone(),
                None => drawn_slug(&new.name)?,
            };
            let org = Organization {
                id: Uuid::new_v4(),
                slug,
                name: new.name.clone(),
                signup: SignupMode::Closed,
                disabled: false,
                policy: OrgPolicy::default(),
            };
            let audit = self.audit(&Caller::User(principal.clone()), "organization.created", Some(org.slug.clone()));
            match self.stores.organizations.create_org(&org, principal.claims.sub, &audit).await {
                Ok(()) => {
                    self.changed(&[Changed::User(principal.claims.sub)]).await;
                    return Ok(org);
                }
                Err(StoreError::Conflict(constraint)) if constraint == SLUG_CONSTRAINT && new.slug.is_none() => {}
                Err(StoreError::Conflict(constraint)) if constraint == SLUG_CONSTRAINT => {
                    return Err(ApiError::SlugTaken);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ApiError::Internal(anyhow::anyhow!("no free organization slug after 3 draws")))
    }

    /// The organizations of the principal's user, with their role in each.
    ///
    /// # Errors
    /// The session's errors.
    pub async fn my_orgs(&self, principal: &Principal) -> Result<Vec<(Organization, Role)>, ApiError> {
        self.session(principal).await?;
        Ok(self.stores.organizations.orgs_of(principal.claims.sub).await?)
    }

    /// An organization the caller may act on, with the caller's role.
    ///
    /// A user acts on an organization only from a session *in* it: its policy (a second factor, the
    /// sign-in methods) was checked when that session started and on every refresh, and is checked again
    /// here against the organization as it is now. A key acts as an admin of its organization (a
    /// platform key of every one): never as an owner, so a leaked key cannot make owners or keys.
    ///
    /// # Errors
    /// `OrganizationNotFound` for no such organization and for one the caller has no part in alike;
    /// `WrongOrganization` for a member's session of another organization; `InsufficientAal` and
    /// `AuthMethodNotAllowed` for a session the organization's policy no longer admits.
    pub async fn member_org(&self, caller: &Caller, org: &OrgRef) -> Result<(Organization, Role), ApiError> {
        self.acting_in(caller, org, Door::SessionInIt).await
    }

    pub(super) async fn acting_in(
        &self,
        caller: &Caller,
        org: &OrgRef,
        door: Door,
    ) -> Result<(Organization, Role), ApiError> {
        let org = self.stores.accounts.find_org(org).await?.ok_or(ApiError::OrganizationNotFound)?;
        let role = match caller {
            Caller::User(principal) => {
                let (_, session_role) = self.session(principal).await?;
                let here = principal.claims.org == org.id;
                let role = if here {
                    Some(session_role)
                } else {
                    self.stores.accounts.role(principal.claims.sub, org.id).await?
                };
                let role = role.ok_or(ApiError::OrganizationNotFound)?;
                let reenabling = door == Door::ReenablingIt && org.disabled && role == Role::Owner;
                if !here && !reenabling {
                    return Err(ApiError::WrongOrganization);
                }
                if !reenabling {
                    admit(&org, principal.claims.auth_method)?;
                } else if !org.policy.sessions.auth_methods.contains(&principal.claims.auth_method) {
                    return Err(ApiError::AuthMethodNotAllowed);
                }
                if org.policy.sessions.mfa_required && principal.claims.aal != Aal::Aal2 {
                    return Err(ApiError::InsufficientAal);
                }
                role
            }
            Caller::Key(key) => {
                if key.org_id.is_some_and(|id| id != org.id) {
                    return Err(ApiError::OrganizationNotFound);
                }
                // A disabled organization is closed to its keys as to its members' sessions.
                if org.disabled {
                    return Err(ApiError::AccountDisabled);
                }
                Role::Admin
            }
        };
        Ok((org, role))
    }

    /// Updates name, slug, sign-up policy (admins and owners) or the disabled flag (owners).
    ///
    /// # Errors
    /// `InsufficientRole`, `SlugTaken`, `OrganizationNotFound`.
    pub async fn update_org(
        &self,
        caller: &Caller,
        org: &OrgRef,
        update: OrgUpdate,
    ) -> Result<(Organization, Role), ApiError> {
        // A disabled organization starts no session to act from: its owners enable it again from any
        // session of theirs that its policy would admit.
        let only_enabling = update.disabled == Some(false)
            && update.name.is_none()
            && update.slug.is_none()
            && update.signup.is_none()
            && !update.policy.changes_anything();
        let door = if only_enabling { Door::ReenablingIt } else { Door::SessionInIt };
        let (org, role) = self.acting_in(caller, org, door).await?;
        // The policy decides how members sign in (a second factor, methods, lifetimes): an owner's call,
        // like disabling.
        let policy = &update.policy;
        let needed = if update.disabled.is_some() || policy.changes_anything() { Role::Owner } else { Role::Admin };
        if !role.at_least(needed) {
            return Err(ApiError::InsufficientRole);
        }
        let seconds =
            |ttl: Option<time::Duration>| ttl.map_or_else(|| "default".to_owned(), |t| t.whole_seconds().to_string());
        let changed: Vec<String> = [
            update.name.as_ref().map(|_| "name".to_owned()),
            update.slug.as_ref().map(|slug| format!("slug={slug}")),
            update.signup.as_ref().map(|signup| format!("signup={}", signup.columns().0)),
            update.disabled.map(|disabled| format!("disabled={disabled}")),
            policy.mfa_required.map(|required| format!("mfa_required={required}")),
            policy.auth_method_names().map(|methods| format!("auth_methods={}", methods.join("+"))),
            policy.access_ttl.map(|ttl| format!("access_token_ttl={}", seconds(ttl))),
            policy.refresh_ttl.map(|ttl| format!("refresh_token_ttl={}", seconds(ttl))),
            policy.rate_limits.map(|_| "rate_limits".to_owned()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let audit = self.audit(caller, "organization.updated", Some(changed.join(",")));
        match self.stores.organizations.update_org(org.id, &update, &audit).await {
            Ok(Some(updated)) => {
                self.changed(&[Changed::Organization(org.id)]).await;
                Ok((updated, role))
            }
            Ok(None) => Err(ApiError::OrganizationNotFound),
            Err(StoreError::Conflict(constraint)) if constraint == SLUG_CONSTRAINT => Err(ApiError::SlugTaken),
            Err(other) => Err(other.into()),
        }
    }

    /// The members of an organization of the principal's user.
    ///
    /// # Errors
    /// `OrganizationNotFound`.
    pub async fn members(&self, caller: &Caller, org: &OrgRef) -> Result<Vec<Member>, ApiError> {
        let (org, _) = self.member_org(caller, org).await?;
        Ok(self.stores.organizations.members(org.id).await?)
    }

    /// Changes a member's role or removes them (a member removing themself leaves). Admins manage members
    /// and admins; only owners touch owners or make one. A removed member's sessions in the organization
    /// end at once.
    ///
    /// # Errors
    /// `InsufficientRole`, `MemberNotFound`, `LastOwner`, `OrganizationNotFound`.
    pub async fn change_member(
        &self,
        caller: &Caller,
        org: &OrgRef,
        user_id: Uuid,
        change: MembershipChange,
    ) -> Result<(), ApiError> {
        let (org, role) = self.member_org(caller, org).await?;
        // Disabled members are members to manage (enable, delete).
        let target = self.stores.admin.org_user(org.id, user_id).await?.ok_or(ApiError::MemberNotFound)?.role;
        let leaving = caller.user_id() == Some(user_id) && change == MembershipChange::Remove;
        let touches_owner = target == Role::Owner || change == MembershipChange::Role(Role::Owner);
        let needed = if touches_owner { Role::Owner } else { Role::Admin };
        if !leaving && !role.at_least(needed) {
            return Err(ApiError::InsufficientRole);
        }
        let target = Some(user_id.to_string());
        let audit = match change {
            MembershipChange::Role(new) => {
                self.audit(caller, "member.role_changed", Some(format!("{user_id}:{}", new.as_str())))
            }
            MembershipChange::Remove if leaving => self.audit(caller, "member.left", target),
            MembershipChange::Remove => self.audit(caller, "member.removed", target),
            MembershipChange::Delete => self.audit(caller, "user.deleted", target),
            MembershipChange::Disable(true) => self.audit(caller, "member.disabled", target),
            MembershipChange::Disable(false) => self.audit(caller, "member.enabled", target),
        };
        match self.stores.organizations.change_membership(org.id, user_id, change, &audit).await? {
            MembershipOutcome::Done => self.changed(&[Changed::User(user_id)]).await,
            MembershipOutcome::NotAMember => return Err(ApiError::MemberNotFound),
            MembershipOutcome::LastOwner => return Err(ApiError::LastOwner),
        }
        if matches!(change, MembershipChange::Remove | MembershipChange::Delete | MembershipChange::Disable(true)) {
            let now = self.clock.now();
            let mut families = self.stores.accounts.live_families(user_id, now).await?;
            families.retain(|(_, family_org)| *family_org == org.id);
            self.end_families(families, RevokeReason::MembershipEnded, now).await?;
        }
        Ok(())
    }

    /// The live sessions of the principal's user, newest first.
    ///
    /// # Errors
    /// The session's errors.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionInfo>, ApiError> {
        self.session(principal).await?;
        Ok(self.stores.organizations.sessions(principal.claims.sub, self.clock.now()).await?)
    }

    /// Ends one session of the principal's user (this one included): a logout of that family.
    ///
    /// # Errors
    /// `SessionNotFound` for a session that is not a live one of the user's.
    pub async fn end_session(&self, principal: &Principal, sid: Uuid) -> Result<(), ApiError> {
        let sessions = self.sessions(principal).await?;
        let session = sessions.iter().find(|s| s.sid == sid).ok_or(ApiError::SessionNotFound)?;
        self.end_families(vec![(session.sid, session.org_id)], RevokeReason::Logout, self.clock.now()).await
    }

    /// Invites `email` into an organization with `role` (admins; owners to invite an owner) and mails the
    /// link in the background.
    ///
    /// # Errors
    /// `InsufficientRole`, `OrganizationNotFound`.
    pub async fn invite(
        &self,
        caller: &Caller,
        org: &OrgRef,
        email: &Email,
        role: Role,
    ) -> Result<Invitation, ApiError> {
        let (org, my_role) = self.member_org(caller, org).await?;
        let needed = if role == Role::Owner { Role::Owner } else { Role::Admin };
        if !my_role.at_least(needed) {
            return Err(ApiError::InsufficientRole);
        }
        self.limit_org_mail(org.id, email).await?;
        let (token, token_hash) = new_link_token().map_err(ApiError::Internal)?;
        let now = self.clock.now();
        let invitation = Invitation {
            id: Uuid::new_v4(),
            org_id: org.id,
            email: email.as_typed().to_owned(),
            email_normalized: email.normalized().to_owned(),
            role,
            invited_by: caller.user_id(),
            created_at: now,
            expires_at: now + INVITATION_TTL,
        };
        let target = format!("{}:{}", invitation.id, role.as_str());
        let audit = Audit { at: now, ..self.audit(caller, "invitation.created", Some(target)) };
        self.stores.organizations.add_invitation(&invitation, &token_hash, &audit).await?;
        let (mailer, to) = (self.collaborators.mailer.clone(), invitation.email.clone());
        self.deliver(MailKind::Invitation, async move {
            mailer.send(MailKind::Invitation, &to, &token, Some(&org.name)).await
        });
        Ok(invitation)
    }

    /// The waiting invitations of an organization (admins).
    ///
    /// # Errors
    /// `InsufficientRole`, `OrganizationNotFound`.
    pub async fn invitations(&self, caller: &Caller, org: &OrgRef) -> Result<Vec<Invitation>, ApiError> {
        let (org, role) = self.member_org(caller, org).await?;
        if !role.at_least(Role::Admin) {
            return Err(ApiError::InsufficientRole);
        }
        Ok(self.stores.organizations.invitations(org.id, self.clock.now()).await?)
    }

    /// Revokes a waiting invitation (admins).
    ///
    /// # Errors
    /// `InsufficientRole`, `InvitationNotFound`, `OrganizationNotFound`.
    pub async fn revoke_invitation(&self, caller: &Caller, org: &OrgRef, id: Uuid) -> Result<(), ApiError> {
        let (org, role) = self.member_org(caller, org).await?;
        if !role.at_least(Role::Admin) {
            return Err(ApiError::InsufficientRole);
        }
        let audit = self.audit(caller, "invitation.revoked", Some(id.to_string()));
        if !self.stores.organizations.revoke_invitation(org.id, id, &audit).await? {
            return Err(ApiError::InvitationNotFound);
        }
        Ok(())
    }

    /// Accepts an invitation for the principal's user: they join with its role (a member already keeps
    /// their role). Returns the organization and their role in it.
    ///
    /// # Errors
    /// `InvitationInvalid`, `InvitationEmailMismatch`.
    pub async fn accept_invitation(
        &self,
        principal: &Principal,
        token: &str,
    ) -> Result<(Organization, Role), ApiError> {
        let (context, _) = self.session(principal).await?;
        let token_hash = link_token_hash(token).ok_or(ApiError::InvitationInvalid)?;
        self.live_invitation(&token_hash, &Email::parse(&context.user.email)?).await?;
        let user_id = context.user.id;
        let audit = self.audit(&Caller::User(principal.clone()), "invitation.accepted", None);
        let accepted = self.stores.organizations.accept_invitation(&token_hash, user_id, &audit).await?;
        let invitation = accepted.ok_or(ApiError::InvitationInvalid)?;
        self.changed(&[Changed::User(user_id)]).await;
        let org = self.stores.accounts.find_org(&OrgRef::Id(invitation.org_id)).await?;
        let role = self.stores.accounts.role(user_id, invitation.org_id).await?;
        org.zip(role).ok_or(ApiError::InvitationInvalid)
    }

    /// The waiting invitation with this token, if it is for `email`.
    pub(super) async fn live_invitation(&self, token_hash: &SecretHash, email: &Email) -> Result<Invitation, ApiError> {
        let invitation = self.stores.organizations.invitation(token_hash, self.clock.now()).await?;
        let invitation = invitation.ok_or(ApiError::InvitationInvalid)?;
        if invitation.email_normalized != email.normalized() {
            return Err(ApiError::InvitationEmailMismatch);
        }
        let org = self.stores.accounts.find_org(&OrgRef::Id(invitation.org_id)).await?;
        if org.is_none_or(|o| o.disabled) {
            return Err(ApiError::AccountDisabled);
        }
        Ok(invitation)
    }

    /// A page of an organization's audit log (admins), newest first, older than `before` when given.
    ///
    /// # Errors
    /// `InsufficientRole`, `OrganizationNotFound`.
    pub async fn audit_log(
        &self,
        caller: &Caller,
        org: &OrgRef,
        before: Option<(time::OffsetDateTime, Uuid)>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ApiError> {
        let (org, role) = self.member_org(caller, org).await?;
        if !role.at_least(Role::Admin) {
            return Err(ApiError::InsufficientRole);
        }
        Ok(self.stores.organizations.audit_events(org.id, before, limit.clamp(1, AUDIT_PAGE_MAX)).await?)
    }
}
