//! The session flows: login, refresh, logout, reading a session and the revocation feed. Session families
//! change only through their organization's actor.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::try_join_all;
use identsphere_actors::family::{Decision, decide};
use identsphere_actors::{
    AuthMethod, CLOCK_SKEW_ALLOWANCE, Changed, Check, FamilyRecord, Move, Origin, RevocationPage, RevokeReason,
    SessionRules, Standing, TokenRef, UserProfile, mark_changed,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::auth::password::Verified;
use crate::auth::tokens::Claims;
use crate::error::ApiError;
use crate::model::{Email, OrgPolicy, OrgRef, Role, SessionContext};

use super::core::*;
use super::limits::{Limit, OrgLimit};
use super::mfa::LoginOutcome;
use crate::model::admit;

impl Service {
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
        let stored = credentials.as_ref().and_then(|c| c.password_hash.clone());
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
        self.sso_gate(org.id, &credentials.user.email, None).await?;
        self.stores.accounts.touch_membership(user_id, org.id, now).await?;
        let family = self.new_family(user_id, org.id, &org.policy, AuthMethod::Password, now);
        let factors = self.second_factors(user_id).await?;
        if !factors.is_empty() || org.policy.sessions.mfa_required {
            return self.second_factor_due(&family, &credentials.user, factors, now);
        }
        let sign_in = self.start_family(family, credentials.user, origin, &org.policy.sessions, now).await?;
        Ok(LoginOutcome::SignedIn(Box::new(sign_in)))
    }

    /// A family that starts now at `aal1` in an organization with `policy`, not recorded yet.
    pub(super) fn new_family(
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
    pub(super) fn refresh_ttl_in(&self, policy: &OrgPolicy) -> Duration {
        policy.refresh_ttl.map_or(self.refresh_ttl, |ttl| ttl.min(self.refresh_ttl))
    }

    /// Records `family` through its organization's actor and signs it in.
    pub(super) async fn start_family(
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
    pub(super) fn sign_in(
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
                if org.id != claims.org {
                    // Into an organization that requires its SSO, a session of another one cannot move.
                    self.sso_gate_for_user(org.id, claims.sub).await?;
                }
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
        let ours = |context: &SessionContext| {
            context.family.user_id == principal.claims.sub && context.family.org_id == principal.claims.org
        };
        // A view that disagrees with a token we signed is read again before the token is refused: a switch is
        // durable before its family gets a new version, so a replica that dies between the two (the fault
        // harness's `kill9`), or a Redis failure then, leaves views of the family in the organization it left.
        let context = match self.sessions.get(sid, principal.stamp, now) {
            Some(context) if ours(&context) => context,
            _ => {
                let context = Arc::new(self.stores.accounts.session_context(sid).await?.ok_or(ApiError::TokenInvalid)?);
                self.sessions.put(sid, Arc::clone(&context), principal.stamp, now);
                context
            }
        };
        if !ours(&context) {
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
    pub(super) async fn changed(&self, changes: &[Changed]) {
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
            let until = unix_time(claims.exp)? + CLOCK_SKEW_ALLOWANCE;
            self.stores.denylist.deny_token(claims.jti, until, now).await?;
        }
        Ok(())
    }

    /// Ends `families` (`(sid, org_id)`), each through its organization's actor.
    pub(super) async fn end_families(
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
    pub(super) async fn end_user_families(
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
    pub(super) async fn live_refresh_claims(
        &self,
        refresh: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Claims, ApiError> {
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
