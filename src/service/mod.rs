//! The sign-in flows: register, login, refresh, logout and the session read; the second factor
//! (`mfa`) and the account lifecycle (`lifecycle`).
//!
//! Each flow takes validated domain values and `now` from the clock, talks to the stores through their
//! traits and to session families only through the organization actors, and mints tokens outside the
//! actors. No HTTP here: handlers map the results.

mod admin;
mod lifecycle;
mod mfa;
mod organizations;
mod session_cache;

pub use admin::{Caller, KeyPrincipal, MintedKey, NewUser, PLATFORM_KEY_PREFIX, USER_PAGE_MAX, is_api_key, mint_key};
pub use mfa::{FACTORS, LoginOutcome, MfaProof, TotpEnrollment};
pub use organizations::{AUDIT_PAGE_MAX, NewOrganization};

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use futures_util::future::try_join_all;
use identsphere_actors::family::{Decision, decide};
use identsphere_actors::{
    AuthMethod, Changed, Check, FamilyRecord, Move, Origin, Registry, RevocationPage, RevokeReason, SessionRules,
    Stamp, Standing, StoreError, TokenRef, UserProfile, mark_changed,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::auth::keys::Sealer;
use crate::auth::password::{PasswordHasher, Verified};
use crate::auth::tokens::{AccessToken, Claims, Tokens};
use crate::clock::Clock;
use crate::config::RateLimits;
use crate::domain::{Email, OrgRef, Password, Role};
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::store::{
    Actor, Audit, INVITATION_SPENT, Joining, LinkPurpose, NewAccount, OrgPolicy, Organization, Rate, SecretHash,
    SessionContext, SessionInfo, SignupMode, Stores,
};
use session_cache::SessionCache;

/// A completed sign-in or refresh: what the token response shows.
#[derive(Clone, Debug)]
pub struct SignIn {
    /// The new access token.
    pub access: AccessToken,
    /// The family's live refresh token.
    pub refresh_token: String,
    /// The user.
    pub user: UserProfile,
    /// The family after the operation.
    pub family: FamilyRecord,
    /// When it happened.
    pub now: OffsetDateTime,
    /// An organization the new account joins once its address is verified (a sign-up by email domain).
    pub pending: Option<Organization>,
}

/// What a logout ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutScope {
    /// This session family.
    Local,
    /// Every other family of the user.
    Others,
    /// Every family of the user.
    Global,
}

/// What authenticates a logout.
#[derive(Clone, Copy, Debug)]
pub struct LogoutCredentials<'a> {
    /// The access token, if one was sent.
    pub access: Option<&'a str>,
    /// The refresh token, if one was sent.
    pub refresh: Option<&'a str>,
}

/// A verified, non-revoked access token.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Its claims.
    pub claims: Claims,
    /// The versions of its user, organization and family at the denylist check.
    pub stamp: Stamp,
    /// The client address the request came from, for the audit log.
    pub ip: Option<String>,
}

/// Registration input, validated.
#[derive(Debug)]
pub struct Registration {
    /// The email.
    pub email: Email,
    /// The password, policy-checked.
    pub password: Password,
    /// Optional display name, trimmed.
    pub display_name: Option<String>,
    /// The organization to join; `None` creates a personal one.
    pub organization: Option<OrgRef>,
    /// The token of an invitation to accept at once (instead of `organization`).
    pub invitation: Option<String>,
}

/// Where a new account goes.
enum Target {
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
    fn policy(&self) -> OrgPolicy {
        match self {
            Self::Personal | Self::DomainPending(_) => OrgPolicy::default(),
            Self::Existing(org) | Self::Invited { org, .. } => org.policy.clone(),
        }
    }
}

/// Session lifetimes and abuse limits from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// A family's absolute lifetime (the refresh-token lifetime).
    pub refresh: Duration,
    /// How long a spent refresh token may be replayed.
    pub grace: Duration,
    /// How recent a sign-in must be to change a credential without the password.
    pub reauthentication: Duration,
    /// The abuse limits.
    pub limits: RateLimits,
}

/// What the flows need besides the stores: secrets at rest, mail, and the name users know us by.
#[derive(Clone, Debug)]
pub struct Services {
    /// Seals second-factor secrets under the key-encryption key.
    pub sealer: Sealer,
    /// Sends the lifecycle mail.
    pub mailer: Mailer,
    /// The issuer authenticator apps show next to a TOTP code.
    pub product_name: String,
}

/// The sign-in flows over one server's stores, keys and actors.
#[derive(Clone)]
pub struct AuthService {
    stores: Stores,
    hasher: PasswordHasher,
    tokens: Tokens,
    registry: Registry,
    clock: Clock,
    refresh_ttl: Duration,
    grace: Duration,
    reauthentication: Duration,
    limits: RateLimits,
    services: Services,
    sessions: SessionCache,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

impl AuthService {
    /// Puts the pieces together.
    #[must_use]
    pub fn new(
        stores: Stores,
        hasher: PasswordHasher,
        tokens: Tokens,
        registry: Registry,
        clock: Clock,
        lifetimes: Lifetimes,
        services: Services,
    ) -> Self {
        Self {
            stores,
            hasher,
            tokens,
            registry,
            clock,
            refresh_ttl: lifetimes.refresh,
            grace: lifetimes.grace,
            reauthentication: lifetimes.reauthentication,
            limits: lifetimes.limits,
            services,
            sessions: SessionCache::new(),
        }
    }

    /// Stops the organization actors and closes the stores' connections (at shutdown).
    pub fn close(&self) {
        self.registry.stop();
        for probe in &self.stores.probes {
            probe.close();
        }
    }

    /// The token minting and verification in use.
    #[must_use]
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The stores in use.
    #[must_use]
    pub fn stores(&self) -> &Stores {
        &self.stores
    }

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
            self.org_limit(org, OrgLimit::RegisterIp, origin.ip.as_deref()).await?;
        }
        let policy = target.policy();
        let password_hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        let user_id = Uuid::new_v4();
        // A personal slug collides only by chance: draw another suffix.
        for _ in 0..3 {
            let joining = match &target {
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
                joining,
                now,
            };
            match self.stores.accounts.create_account(&account).await {
                Ok(user) => {
                    self.send_link(user.id, user.email.clone(), LinkPurpose::VerifyEmail, now);
                    let family = self.new_family(user.id, org_id, &policy, AuthMethod::Password, now);
                    // A new account has no second factor: an organization that requires one gets it enrolled
                    // before any session starts.
                    if policy.sessions.mfa_required {
                        return self.second_factor_due(&family, &user, false, now);
                    }
                    let mut sign_in = self.start_family(family, user, origin, &policy.sessions, now).await?;
                    if let Target::DomainPending(org) = &target {
                        sign_in.pending = Some(org.clone());
                    }
                    return Ok(LoginOutcome::SignedIn(Box::new(sign_in)));
                }
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
        let token_hash = lifecycle::link_token_hash(token).ok_or(ApiError::InvitationInvalid)?;
        let invitation = self.live_invitation(&token_hash, email).await?;
        let org = self.stores.accounts.find_org(&OrgRef::Id(invitation.org_id)).await?;
        // The organization's row goes with its invitations: without it, the invitation is no more.
        let org = org.ok_or(ApiError::InvitationInvalid)?;
        Ok(Target::Invited { org, role: invitation.role, token_hash })
    }

    async fn signup_target(&self, org: &OrgRef, email: &Email) -> Result<Target, ApiError> {
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
    async fn member_or_joined_by_domain(
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
        if org.disabled {
            return Err(ApiError::AccountDisabled);
        }
        let audit = Audit {
            at: self.clock.now(),
            actor: Actor::User(user_id),
            ip: ip.map(str::to_owned),
            action: "member.joined_by_domain",
            target: None,
        };
        if !self.stores.organizations.join_by_domain(user_id, org.id, &audit).await? {
            // A membership the organization disabled stays so.
            return Err(ApiError::NotAMember);
        }
        self.changed(&[Changed::User(user_id)]).await;
        Ok(())
    }

    /// Signs in with email and password.
    ///
    /// # Errors
    /// `InvalidCredentials` for a wrong password or an unknown email alike (same cost);
    /// `AccountDisabled`, `OrganizationNotFound`, `NotAMember` after the password is proven.
    pub async fn login(
        &self,
        email: &Email,
        password: String,
        organization: Option<OrgRef>,
        origin: Origin,
    ) -> Result<LoginOutcome, ApiError> {
        let result = self.login_uncounted(email, password, organization, origin).await;
        let label = match &result {
            Ok(LoginOutcome::MfaRequired { .. }) => "mfa_required",
            other => outcome(other),
        };
        metrics::counter!("identsphere_auth_signins_total", "method" => "password", "result" => label).increment(1);
        result
    }

    async fn login_uncounted(
        &self,
        email: &Email,
        password: String,
        organization: Option<OrgRef>,
        origin: Origin,
    ) -> Result<LoginOutcome, ApiError> {
        self.limit(Limit::SigninIp, origin.ip.as_deref(), true).await?;
        // Checked before the hash, counted after a failure: for any email, existing or not.
        self.limit(Limit::SigninAccountFailures, Some(email.normalized()), false).await?;
        // An organization named in the request adds its own limits before the hash; whether it exists is
        // only said after the password is proven.
        let named = match &organization {
            Some(org) => Some(self.stores.accounts.find_org(org).await?),
            None => None,
        };
        if let Some(Some(org)) = &named {
            self.org_limit(org, OrgLimit::SigninIp, origin.ip.as_deref()).await?;
        }
        let credentials = self.stores.accounts.credentials(email.normalized()).await?;
        let stored = credentials.as_ref().map(|c| c.password_hash.clone());
        let (Verified::Yes { rehash }, Some(credentials)) = (self.hasher.verify(password, stored).await?, credentials)
        else {
            // The failure is counted even if the counter has just filled up meanwhile: the answer stays
            // `invalid_credentials`, and the next attempt is the one refused.
            let _ = self.limit(Limit::SigninAccountFailures, Some(email.normalized()), true).await;
            return Err(ApiError::InvalidCredentials);
        };
        let now = self.clock.now();
        let user_id = credentials.user.id;
        if let Some(hash) = rehash
            && let Err(err) = self.stores.accounts.set_password_hash(user_id, &hash, now).await
        {
            // The sign-in is valid either way; the next one retries the upgrade.
            tracing::warn!(error = %err, "could not store the re-hashed password");
        }
        if credentials.disabled {
            return Err(ApiError::AccountDisabled);
        }
        let org = match named {
            Some(org) => {
                let org = org.ok_or(ApiError::OrganizationNotFound)?;
                self.member_or_joined_by_domain(user_id, &org, origin.ip.as_deref()).await?;
                org
            }
            None => self.stores.accounts.most_recent_org(user_id).await?.ok_or(ApiError::NotAMember)?,
        };
        admit(&org, AuthMethod::Password)?;
        self.stores.accounts.touch_membership(user_id, org.id, now).await?;
        let family = self.new_family(user_id, org.id, &org.policy, AuthMethod::Password, now);
        let has_factor = self.has_second_factor(user_id).await?;
        if has_factor || org.policy.sessions.mfa_required {
            return self.second_factor_due(&family, &credentials.user, has_factor, now);
        }
        let sign_in = self.start_family(family, credentials.user, origin, &org.policy.sessions, now).await?;
        Ok(LoginOutcome::SignedIn(Box::new(sign_in)))
    }

    /// A family that starts now at `aal1` in an organization with `policy`, not recorded yet.
    fn new_family(
        &self,
        user_id: Uuid,
        org_id: Uuid,
        policy: &OrgPolicy,
        auth_method: AuthMethod,
        now: OffsetDateTime,
    ) -> FamilyRecord {
        FamilyRecord::start(user_id, org_id, auth_method, now, self.refresh_ttl_in(policy))
    }

    /// A family's absolute lifetime in an organization with `policy`: its own, within the server's.
    fn refresh_ttl_in(&self, policy: &OrgPolicy) -> Duration {
        policy.refresh_ttl.map_or(self.refresh_ttl, |ttl| ttl.min(self.refresh_ttl))
    }

    /// Records `family` through its organization's actor and signs it in.
    async fn start_family(
        &self,
        family: FamilyRecord,
        user: UserProfile,
        origin: Origin,
        rules: &SessionRules,
        now: OffsetDateTime,
    ) -> Result<SignIn, ApiError> {
        self.registry.org(family.org_id).create(family.clone(), origin, now).await?;
        self.sign_in(family, user, rules, now)
    }

    /// The token pair of `family`, whose organization asks `rules` of it.
    fn sign_in(
        &self,
        family: FamilyRecord,
        user: UserProfile,
        rules: &SessionRules,
        now: OffsetDateTime,
    ) -> Result<SignIn, ApiError> {
        Ok(SignIn {
            access: self.tokens.issue_access(&family, &user, rules.access_ttl, now)?,
            refresh_token: self.tokens.issue_refresh(&family, &user)?,
            user,
            family,
            now,
            pending: None,
        })
    }

    /// Exchanges a refresh token for a new pair (or, within the grace window, the same successor).
    ///
    /// With `organization`, the family moves into that organization with the rotation (switching): the
    /// new tokens carry its id, `auth_time`, `aal` and `auth_method` stay. Only for a member.
    ///
    /// # Errors
    /// `TokenInvalid`, `TokenExpired`, `TokenRevoked`, `RefreshTokenReused`, `AccountDisabled`, store or
    /// actor failures; `OrganizationNotFound` and `NotAMember` for the organization asked for.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client_ip: Option<&str>,
        organization: Option<OrgRef>,
    ) -> Result<SignIn, ApiError> {
        self.limit(Limit::RefreshIp, client_ip, true).await?;
        let now = self.clock.now();
        let claims = verified("refresh", self.tokens.verify_refresh(refresh_token, now))?;
        let handle = self.registry.org(claims.org);
        let rotation = match organization {
            None => handle.rotate(claims.sid, claims.jti, now).await?,
            Some(target) => {
                let org = self.stores.accounts.find_org(&target).await?.ok_or(ApiError::OrganizationNotFound)?;
                self.member_or_joined_by_domain(claims.sub, &org, client_ip).await?;
                // The rotation checks the organization's rules again, atomically; this answers early.
                admit(&org, claims.auth_method)?;
                let rotation = if org.id == claims.org {
                    handle.rotate(claims.sid, claims.jti, now).await?
                } else {
                    // The family keeps its start but not a lifetime longer than the new organization allows.
                    let auth_time = unix_time(claims.auth_time)?;
                    let to = Move { to: org.id, expires_by: auth_time + self.refresh_ttl_in(&org.policy) };
                    handle.switch(claims.sid, claims.jti, to, now).await?
                };
                self.stores.accounts.touch_membership(claims.sub, org.id, now).await?;
                rotation
            }
        };
        self.sign_in(rotation.family, rotation.subject.user, &rotation.subject.rules, now)
    }

    /// Verifies an access token and checks the denylist.
    ///
    /// # Errors
    /// `TokenInvalid`, `TokenExpired`, `TokenRevoked`, or the denylist's failure.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, ApiError> {
        let now = self.clock.now();
        let claims = self.tokens.verify_access(access_token, now);
        let result = match claims {
            Ok(claims) => {
                let token = TokenRef { jti: claims.jti, sid: claims.sid, user: claims.sub, org: claims.org };
                match self.stores.denylist.check(token, now).await {
                    Ok(Check { denied: true, .. }) => Err(ApiError::TokenRevoked),
                    Ok(Check { denied: false, stamp }) => Ok(Principal { claims, stamp, ip: None }),
                    Err(err) => Err(err.into()),
                }
            }
            Err(err) => Err(err),
        };
        verified("access", result)
    }

    /// The session behind a principal, checked against the durable record too (or a view of it that
    /// nothing has changed since: `session_cache`).
    ///
    /// # Errors
    /// `TokenRevoked` if the family was ended, `NotAMember` if the user left the organization,
    /// `AccountDisabled` if the organization is disabled.
    pub async fn session(&self, principal: &Principal) -> Result<(Arc<SessionContext>, Role), ApiError> {
        let (sid, now) = (principal.claims.sid, self.clock.now());
        let context = match self.sessions.get(sid, principal.stamp, now) {
            Some(context) => context,
            None => {
                let context = Arc::new(self.stores.accounts.session_context(sid).await?.ok_or(ApiError::TokenInvalid)?);
                self.sessions.put(sid, Arc::clone(&context), principal.stamp, now);
                context
            }
        };
        if context.family.user_id != principal.claims.sub || context.family.org_id != principal.claims.org {
            return Err(ApiError::TokenInvalid);
        }
        if context.family.revoked.is_some() {
            return Err(ApiError::TokenRevoked);
        }
        if context.organization.disabled || context.user_disabled {
            return Err(ApiError::AccountDisabled);
        }
        let role = context.role.ok_or(ApiError::NotAMember)?;
        Ok((context, role))
    }

    /// Marks the session views that `changes` touch stale on every replica: called once they are durable.
    async fn changed(&self, changes: &[Changed]) {
        mark_changed(self.stores.denylist.as_ref(), changes).await;
    }

    /// A page of the revocation feed after `cursor`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn revocations(&self, cursor: Option<&str>, limit: usize) -> Result<RevocationPage, ApiError> {
        Ok(self.stores.denylist.revocations_after(cursor, limit, self.clock.now()).await?)
    }

    /// Ends session families: this one, the user's others, or all of the user's.
    ///
    /// Authenticated by the access token, or by the refresh token when there is no access token or it
    /// has expired.
    ///
    /// # Errors
    /// `TokenMissing` without credentials; the verification errors of the credential used.
    pub async fn logout(&self, credentials: LogoutCredentials<'_>, scope: LogoutScope) -> Result<(), ApiError> {
        let now = self.clock.now();
        let (claims, access_jti) = match (credentials.access, credentials.refresh) {
            (Some(access), refresh) => match self.authenticate(access).await {
                Ok(principal) => (principal.claims, true),
                Err(ApiError::TokenExpired) if refresh.is_some() => {
                    (self.live_refresh_claims(refresh, now).await?, false)
                }
                Err(err) => return Err(err),
            },
            (None, refresh) => (self.live_refresh_claims(refresh, now).await?, false),
        };
        match scope {
            LogoutScope::Local => self.end_families(vec![(claims.sid, claims.org)], RevokeReason::Logout, now).await?,
            LogoutScope::Others => {
                self.end_user_families(claims.sub, Some(claims.sid), RevokeReason::LogoutOthers, now).await?;
            }
            LogoutScope::Global => self.end_user_families(claims.sub, None, RevokeReason::LogoutGlobal, now).await?,
        }
        if access_jti && scope != LogoutScope::Others {
            self.stores.denylist.deny_token(claims.jti, unix_time(claims.exp)?, now).await?;
        }
        Ok(())
    }

    /// Ends `families` (`(sid, org_id)`), each through its organization's actor.
    async fn end_families(
        &self,
        families: Vec<(Uuid, Uuid)>,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let mut by_org: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for (sid, org) in families {
            by_org.entry(org).or_default().push(sid);
        }
        try_join_all(by_org.into_iter().map(|(org, sids)| {
            let handle = self.registry.org(org);
            async move { handle.revoke(sids, reason, now).await }
        }))
        .await?;
        Ok(())
    }

    /// Ends every live family of `user_id` but `keep`.
    async fn end_user_families(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: RevokeReason,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let mut live = self.stores.accounts.live_families(user_id, now).await?;
        live.retain(|(sid, _)| Some(*sid) != keep);
        self.end_families(live, reason, now).await
    }

    /// The claims of a refresh token that may still act for its family: the live one, or the one just
    /// spent within the grace window. A spent token is no credential, so a stolen old one cannot log
    /// its user out everywhere.
    async fn live_refresh_claims(&self, refresh: Option<&str>, now: OffsetDateTime) -> Result<Claims, ApiError> {
        let claims = self.tokens.verify_refresh(refresh.ok_or(ApiError::TokenMissing)?, now)?;
        let (family, subject) = self.stores.families.load(claims.sid, None).await?.ok_or(ApiError::TokenInvalid)?;
        // An organization's rules stop refreshes, not logouts.
        let standing = match subject.standing(&family) {
            Standing::Disabled => Standing::Disabled,
            _ => Standing::Allowed,
        };
        match decide(&family, standing, claims.jti, now, self.grace) {
            Decision::Rotate | Decision::Replay => Ok(claims),
            Decision::Expired => Err(ApiError::TokenExpired),
            Decision::Refused(_) => Err(ApiError::AccountDisabled),
            Decision::Revoked | Decision::Reused => Err(ApiError::TokenRevoked),
        }
    }
}

/// The abuse limits the flows apply.
#[derive(Clone, Copy, Debug)]
enum Limit {
    SigninIp,
    SigninAccountFailures,
    RegisterIp,
    RefreshIp,
    MfaTokenFailures,
    MfaUserFailures,
    EmailIp,
    EmailAccount,
    LinkIp,
    InviteOrg,
    InviteRecipient,
}

impl Limit {
    const fn name(self) -> &'static str {
        match self {
            Self::SigninIp => "signin_ip",
            Self::SigninAccountFailures => "signin_account_failures",
            Self::RegisterIp => "register_ip",
            Self::RefreshIp => "refresh_ip",
            Self::MfaTokenFailures => "mfa_token_failures",
            Self::MfaUserFailures => "mfa_user_failures",
            Self::EmailIp => "email_ip",
            Self::EmailAccount => "email_account",
            Self::LinkIp => "link_ip",
            Self::InviteOrg => "invite_org",
            Self::InviteRecipient => "invite_recipient",
        }
    }

    /// Whether its subject is a client address (grouped by `address_subject`) rather than an account or token.
    const fn per_address(self) -> bool {
        matches!(self, Self::SigninIp | Self::RegisterIp | Self::RefreshIp | Self::EmailIp | Self::LinkIp)
    }
}

/// What a per-address limit counts for the client address `ip`. An IPv6 client is usually given a whole
/// /64 and can rotate through it at will, so an IPv6 address counts as its /64; an IPv4-mapped one
/// (`::ffff:a.b.c.d`) as the IPv4 address it maps. IPv4 addresses count alone.
fn address_subject(ip: &str) -> Cow<'_, str> {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => Cow::Owned(match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("{}/64", Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        }),
        Ok(IpAddr::V4(_)) | Err(_) => Cow::Borrowed(ip),
    }
}

impl AuthService {
    /// Applies `limit` to `subject` (an IP or a normalized email): `RateLimited` when over it. With
    /// `consume`, an allowed event is counted. Counters are keyed by a hash, never by the value itself.
    async fn limit(&self, limit: Limit, subject: Option<&str>, consume: bool) -> Result<(), ApiError> {
        let rate = match limit {
            Limit::SigninIp => self.limits.signin_ip,
            Limit::SigninAccountFailures => self.limits.signin_account_failures,
            Limit::RegisterIp => self.limits.register_ip,
            Limit::RefreshIp => self.limits.refresh_ip,
            Limit::MfaTokenFailures | Limit::MfaUserFailures => self.limits.mfa_failures,
            Limit::EmailIp => self.limits.email_ip,
            Limit::EmailAccount => self.limits.email_account,
            Limit::LinkIp => self.limits.link_ip,
            Limit::InviteOrg => self.limits.invite_org,
            Limit::InviteRecipient => self.limits.invite_recipient,
        };
        let (Some(rate), Some(subject)) = (rate, subject) else { return Ok(()) };
        let subject = if limit.per_address() { address_subject(subject) } else { Cow::Borrowed(subject) };
        self.check_rate(limit.name(), &subject, rate, consume).await
    }

    /// Checks (and with `consume` counts) one event of `subject` under the limit `name`.
    async fn check_rate(&self, name: &'static str, subject: &str, rate: Rate, consume: bool) -> Result<(), ApiError> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subject.as_bytes());
        let hash: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("{name}:{hash}");
        let checked = self.stores.limiter.check(&key, rate, consume, self.clock.now()).await;
        match checked {
            // Fail open: a limiter outage must not lock every user out. Argon2 still bounds sign-ins to
            // what the hashing permits allow; the outage shows in the log and the store-error metric.
            Err(err) => {
                tracing::warn!(limit = name, error = %err, "rate limiter unavailable; allowing");
                Ok(())
            }
            Ok(None) => Ok(()),
            Ok(Some(wait)) => {
                metrics::counter!("identsphere_auth_rate_limited_total", "limit" => name).increment(1);
                let retry_after = u64::try_from(wait.whole_seconds()).unwrap_or(0) + 1;
                Err(ApiError::RateLimited { retry_after })
            }
        }
    }
}

impl AuthService {
    /// Counts a mail an organization sends to `recipient` on its members' or keys' word: per
    /// organization and per recipient, so nobody mails an address from our domain without end.
    async fn limit_org_mail(&self, org_id: Uuid, recipient: &Email) -> Result<(), ApiError> {
        self.limit(Limit::InviteRecipient, Some(recipient.normalized()), false).await?;
        self.limit(Limit::InviteOrg, Some(&org_id.to_string()), true).await?;
        self.limit(Limit::InviteRecipient, Some(recipient.normalized()), true).await
    }
}

/// The limits an organization may add (`OrgRateLimits`).
#[derive(Clone, Copy, Debug)]
enum OrgLimit {
    SigninIp,
    RegisterIp,
}

impl AuthService {
    /// Applies the organization's own limit, if it sets one, to the client address: counted per
    /// organization, on top of the server-wide limit of the same name.
    async fn org_limit(&self, org: &Organization, limit: OrgLimit, ip: Option<&str>) -> Result<(), ApiError> {
        let (rate, name) = match limit {
            OrgLimit::SigninIp => (org.policy.rate_limits.signin_ip, "org_signin_ip"),
            OrgLimit::RegisterIp => (org.policy.rate_limits.register_ip, "org_register_ip"),
        };
        let (Some(rate), Some(ip)) = (rate, ip) else { return Ok(()) };
        self.check_rate(name, &format!("{}:{}", org.id, address_subject(ip)), rate, true).await
    }
}

/// Refuses a sign-in into `org` with `method`: the organization is disabled, or its policy does not
/// allow the method.
fn admit(org: &Organization, method: AuthMethod) -> Result<(), ApiError> {
    if org.disabled {
        return Err(ApiError::AccountDisabled);
    }
    if !org.policy.sessions.auth_methods.contains(&method) {
        return Err(ApiError::AuthMethodNotAllowed);
    }
    Ok(())
}

/// Whether `org` takes sign-ups of the domain of `email`.
fn takes_domain(org: &Organization, email: &Email) -> bool {
    let domain = email.normalized().rsplit('@').next().unwrap_or_default();
    matches!(&org.signup, SignupMode::Domains(domains) if domains.iter().any(|d| d == domain))
}

/// A claim's Unix time as a time.
fn unix_time(seconds: i64) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| ApiError::Internal(e.into()))
}

/// The bounded label of an outcome: `success`, or the error's catalog code.
fn outcome<T>(result: &Result<T, ApiError>) -> &'static str {
    result.as_ref().map_or_else(|err| err.catalog().0, |_| "success")
}

/// Counts a token verification by its result and passes it on.
fn verified<T>(token: &'static str, result: Result<T, ApiError>) -> Result<T, ApiError> {
    let label = match &result {
        Ok(_) => "valid",
        Err(ApiError::TokenInvalid) => "invalid",
        Err(ApiError::TokenExpired) => "expired",
        Err(ApiError::TokenRevoked) => "revoked",
        Err(_) => "error",
    };
    metrics::counter!("identsphere_tokens_verifications_total", "token" => token, "result" => label).increment(1);
    result
}

/// `<local part, sanitized>-<8 random base32 characters>`: readable and unguessable enough to be unique.
fn personal_slug(email: &Email) -> Result<String, ApiError> {
    drawn_slug(email.local_part())
}

/// `<text, sanitized>-<8 random base32 characters>`, or `org-<…>` when nothing of `text` is URL-safe.
fn drawn_slug(text: &str) -> Result<String, ApiError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut base: String =
        text.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(32).collect();
    base = base.trim_matches('-').to_owned();
    if base.is_empty() {
        base.push_str("org");
    }
    let mut random = [0u8; 8];
    SystemRandom::new().fill(&mut random).map_err(|_| ApiError::Internal(anyhow::anyhow!("no randomness")))?;
    let suffix: String = random.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
    Ok(format!("{base}-{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_slugs_are_url_safe_and_distinct() {
        let email = Email::parse("Jean-Luc.Picard+ent@example.com").unwrap();
        let a = personal_slug(&email).unwrap();
        let b = personal_slug(&email).unwrap();
        assert!(a.starts_with("jean-luc-picard-ent-"), "{a}");
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        let odd = personal_slug(&Email::parse("+++@example.com").unwrap()).unwrap();
        assert!(odd.starts_with("org-"), "{odd}");
    }

    #[test]
    fn addresses_count_alone_for_ipv4_and_by_their_64_for_ipv6() {
        assert_eq!(address_subject("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_subject("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_subject("2001:db8:7:1:abcd::1"), "2001:db8:7:1::/64");
        assert_eq!(address_subject("2001:db8:7:1:ffff:ffff:ffff:ffff"), "2001:db8:7:1::/64");
        assert_ne!(address_subject("2001:db8:7:2::1"), address_subject("2001:db8:7:1::1"));
    }
}
