//! Signing in through a provider (social login, and later the organizations' own SSO): the redirect to the
//! provider, its callback, the one-time code apps without cookies collect the sign-in with, and the rules
//! that decide which account an identity signs in to — where other identity services were breached.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use identsphere_actors::{AuthMethod, Changed, Origin, RevokeReason};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::accounts::{AccountDraft, Target};
use super::core::{Principal, Service, SignIn, SocialSettings};
use super::limits::Limit;
use super::mfa::LoginOutcome;
use crate::auth::oauth::{Authorization, ProviderError, ProviderIdentity};
use crate::config::ProviderConfig;
use crate::error::ApiError;
use crate::model::{
    Audit, AuditActor, Ceremony, Email, Identity, OAuthFlow, OrgRef, PendingSignIn, SecretHash, SsoConnection, admit,
    connection_of, domain_of,
};
use crate::store::StoreError;

/// How long a sign-in may stay at the provider.
const FLOW_TTL: Duration = Duration::minutes(10);
/// How long an app has to collect a finished sign-in with its one-time code.
const CODE_TTL: Duration = Duration::minutes(1);

/// A started provider sign-in: where to send the browser, and the value its binding cookie holds.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorization URL.
    pub location: String,
    /// Goes to the browser in an HttpOnly cookie; the callback must bring it back.
    pub browser: String,
}

/// What the callback of a provider sign-in came to.
#[derive(Debug)]
pub enum Finished {
    /// Signed in: set the cookies, then back to the app.
    SignedIn(Box<SignIn>),
    /// Back to the app with a one-time code to collect the sign-in with (`POST /v1/auth/oauth/token`).
    Collect(Uuid),
    /// An identity was linked to the signed-in account.
    Linked,
}

/// What a provider's callback carries.
#[derive(Clone, Copy, Debug)]
pub struct Callback<'a> {
    /// The provider in the path.
    pub provider: &'a str,
    /// `state`.
    pub state: Option<&'a str>,
    /// `code`.
    pub code: Option<&'a str>,
    /// `error`, when the provider refused (or the user cancelled).
    pub error: Option<&'a str>,
    /// The browser binding cookie.
    pub browser: Option<&'a str>,
}

impl Service {
    pub(super) fn social(&self) -> &SocialSettings {
        &self.collaborators.social
    }

    /// The provider a name stands for: a platform provider, or an organization's connection (`sso:<id>`).
    async fn provider(&self, name: &str) -> Result<(ProviderConfig, Option<SsoConnection>), ApiError> {
        match connection_of(name)? {
            Some(id) => {
                let (connection, provider) = self.connection_provider(id).await?;
                Ok((provider, Some(connection)))
            }
            None => Ok((self.social().providers.get(name).ok_or(ApiError::ProviderNotFound)?.clone(), None)),
        }
    }

    /// Where the provider sends the browser back: our callback for it.
    fn callback(&self, provider: &str) -> String {
        format!("{}/v1/auth/oauth/{provider}/callback", self.social().public_base)
    }

    /// Refuses a `redirect_uri` that is not one of the allowed ones: an exact URL, or any path on an allowed
    /// origin. Never a prefix match: `https://app.example.com.evil.test` is not `https://app.example.com`.
    pub(super) fn allowed_redirect(&self, uri: &str) -> Result<(), ApiError> {
        let parsed = url::Url::parse(uri).map_err(|_| ApiError::RedirectUriNotAllowed)?;
        if parsed.fragment().is_some() || !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(ApiError::RedirectUriNotAllowed);
        }
        let origin = parsed.origin().ascii_serialization();
        let allowed = self.social().redirect_uris.iter().any(|allowed| {
            let whole = allowed == uri;
            let origin_only = url::Url::parse(allowed).is_ok_and(|a| a.path() == "/" && a.query().is_none());
            whole || (origin_only && allowed.trim_end_matches('/') == origin)
        });
        if allowed { Ok(()) } else { Err(ApiError::RedirectUriNotAllowed) }
    }

    /// Starts a sign-in at `provider` (or, with `link`, links it to that session's account): the
    /// provider's URL with `state`, `nonce` and PKCE, and the browser binding.
    ///
    /// # Errors
    /// `ProviderNotFound`, `RedirectUriNotAllowed`, `InvalidRequest` for a malformed `code_challenge`;
    /// `RateLimited`; `OAuthProviderUnavailable` when its discovery document cannot be fetched.
    pub async fn oauth_authorize(
        &self,
        provider: &str,
        redirect_uri: &str,
        organization: Option<String>,
        app_challenge: Option<String>,
        link: Option<&Principal>,
        client_ip: Option<&str>,
    ) -> Result<Started, ApiError> {
        let (config, connection) = self.provider(provider).await?;
        self.allowed_redirect(redirect_uri)?;
        checked_challenge(app_challenge.as_deref())?;
        self.limit(Limit::SigninIp, client_ip, true).await?;
        // A connection signs in to its own organization only.
        let organization = match connection {
            Some(connection) => Some(connection.org_id.to_string()),
            None => organization,
        };
        let link_user = match link {
            Some(principal) => {
                let (context, _) = self.session(principal).await?;
                self.reauthenticated(principal, &context.user, None).await?;
                Some(principal.claims.sub)
            }
            None => None,
        };
        let (verifier, nonce, browser) = (random()?, random()?, random()?);
        let flow = OAuthFlow {
            provider: provider.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            organization,
            verifier: verifier.clone(),
            nonce: nonce.clone(),
            browser: sha256(&browser),
            app_challenge,
            link_user,
        };
        let now = self.clock.now();
        let state = self.keep_for(&Ceremony::OAuth(Box::new(flow)), FLOW_TTL).await?;
        let state = state.to_string();
        let challenge = B64URL.encode(sha256(&verifier));
        let callback = self.callback(provider);
        let request = Authorization { callback: &callback, state: &state, nonce: &nonce, code_challenge: &challenge };
        let location = self.social().client.authorize_url(&config, request, now).await.map_err(provider_error)?;
        Ok(Started { location, browser })
    }

    /// Finishes a provider sign-in at its callback: the app's `redirect_uri` (when the flow is known) and what
    /// to do there.
    pub async fn oauth_callback(
        &self,
        callback: Callback<'_>,
        origin: Origin,
    ) -> (Option<String>, Result<Finished, ApiError>) {
        let flow = match self.take_flow(callback).await {
            Ok(flow) => flow,
            Err(err) => return (None, Err(err)),
        };
        let result = self.finish_flow(&flow, callback, origin).await;
        let label = super::core::outcome(&result);
        metrics::counter!("identsphere_auth_signins_total", "method" => "social_oauth", "result" => label).increment(1);
        (Some(flow.redirect_uri), result)
    }

    /// The flow of a callback: known, not used, for this provider, and started by this browser.
    async fn take_flow(&self, callback: Callback<'_>) -> Result<OAuthFlow, ApiError> {
        let state = callback.state.and_then(|s| Uuid::parse_str(s).ok()).ok_or(ApiError::OAuthStateInvalid)?;
        let taken = self.take_ceremony(state).await.map_err(|e| match e {
            ApiError::CeremonyExpired => ApiError::OAuthStateInvalid,
            other => other,
        });
        let Ceremony::OAuth(flow) = taken? else {
            return Err(ApiError::OAuthStateInvalid);
        };
        let same_browser = callback
            .browser
            .is_some_and(|b| aws_lc_rs::constant_time::verify_slices_are_equal(&sha256(b), &flow.browser).is_ok());
        if flow.provider != callback.provider || !same_browser {
            return Err(ApiError::OAuthStateInvalid);
        }
        Ok(*flow)
    }

    async fn finish_flow(
        &self,
        flow: &OAuthFlow,
        callback: Callback<'_>,
        origin: Origin,
    ) -> Result<Finished, ApiError> {
        if let Some(error) = callback.error {
            tracing::info!(provider = flow.provider, error, "the provider refused the sign-in");
            return Err(ApiError::OAuthProviderError);
        }
        let code = callback.code.ok_or(ApiError::OAuthProviderError)?;
        let (config, connection) = self.provider(&flow.provider).await?;
        let now = self.clock.now();
        let callback_uri = self.callback(&flow.provider);
        let mut identity = self
            .social()
            .client
            .identity(&config, code, &callback_uri, &flow.verifier, &flow.nonce, now)
            .await
            .map_err(provider_error)?;
        if let Some(connection) = &connection {
            // The organization's provider is the authority on the addresses of its verified domains, and on
            // nothing else: it could assert anyone's address.
            let vouched = identity.email.as_deref().is_some_and(|email| connection.vouches_for(&domain_of(email)));
            if !vouched {
                return Err(ApiError::OAuthEmailUnverified);
            }
            identity.email_verified = true;
        }
        let via = connection.as_ref().map(|c| c.id);
        if let Some(user_id) = flow.link_user {
            self.link(&flow.provider, &identity, user_id, now).await?;
            return Ok(Finished::Linked);
        }
        let named = match flow.organization.as_deref() {
            Some(raw) => {
                let org = OrgRef::parse(raw).ok_or(ApiError::OrganizationNotFound)?;
                Some(self.stores.accounts.find_org(&org).await?.ok_or(ApiError::OrganizationNotFound)?)
            }
            None => None,
        };
        if let (Some(org), Some(email)) = (&named, &identity.email) {
            // Refused before anything changes: no account is made, linked or taken over on the way to a no.
            admit(org, AuthMethod::SocialOauth)?;
            self.sso_gate(org.id, email, via).await?;
        }
        // A connection's new user starts like any other (a personal organization), then joins the
        // connection's organization below; a platform provider's signs up as the organization allows.
        let signup_org = named.as_ref().filter(|_| via.is_none()).map(|org| OrgRef::Id(org.id));
        let user_id =
            self.account_for(&flow.provider, &identity, signup_org.as_ref(), origin.ip.as_deref(), now).await?;
        let account = self.stores.lifecycle.user(user_id).await?.ok_or(ApiError::OAuthProviderError)?;
        if account.disabled {
            return Err(ApiError::AccountDisabled);
        }
        let org = match named {
            Some(org) => {
                match via {
                    Some(connection) => {
                        self.member_or_joined_by_sso(user_id, &org, connection, origin.ip.as_deref()).await?
                    }
                    None => self.member_or_joined_by_domain(user_id, &org, origin.ip.as_deref()).await?,
                }
                org
            }
            None => self.stores.accounts.most_recent_org(user_id).await?.ok_or(ApiError::NotAMember)?,
        };
        admit(&org, AuthMethod::SocialOauth)?;
        self.sso_gate(org.id, &account.user.email, via).await?;
        let factors = self.second_factors(user_id).await?;
        if flow.app_challenge.is_some() || !factors.is_empty() || org.policy.sessions.mfa_required {
            let pending = PendingSignIn {
                user_id,
                org_id: org.id,
                via,
                app_challenge: flow.app_challenge.clone(),
                browser: flow.browser,
            };
            return Ok(Finished::Collect(self.keep_for(&Ceremony::OAuthCode(pending), CODE_TTL).await?));
        }
        self.stores.accounts.touch_membership(user_id, org.id, now).await?;
        let family = self.new_family(user_id, org.id, &org.policy, AuthMethod::SocialOauth, now);
        Ok(Finished::SignedIn(Box::new(
            self.start_family(family, account.user, origin, &org.policy.sessions, now).await?,
        )))
    }

    /// Collects a finished provider sign-in with its one-time code: the token response, or the second
    /// factor due. An app that sent a `code_challenge` proves it with the verifier; otherwise the browser
    /// that started the sign-in proves it with its binding cookie.
    ///
    /// # Errors
    /// `OAuthCodeInvalid`; the sign-in's errors (the organization's rules are checked again).
    pub async fn oauth_collect(
        &self,
        code: &str,
        verifier: Option<&str>,
        browser: Option<&str>,
        origin: Origin,
    ) -> Result<LoginOutcome, ApiError> {
        let code = Uuid::parse_str(code).map_err(|_| ApiError::OAuthCodeInvalid)?;
        let taken = self.take_ceremony(code).await.map_err(|e| match e {
            ApiError::CeremonyExpired => ApiError::OAuthCodeInvalid,
            other => other,
        });
        let Ceremony::OAuthCode(pending) = taken? else {
            return Err(ApiError::OAuthCodeInvalid);
        };
        let proven = match (&pending.app_challenge, verifier, browser) {
            (Some(challenge), Some(verifier), _) => {
                let computed = B64URL.encode(sha256(verifier));
                aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), challenge.as_bytes()).is_ok()
            }
            (None, _, Some(browser)) => {
                aws_lc_rs::constant_time::verify_slices_are_equal(&sha256(browser), &pending.browser).is_ok()
            }
            _ => false,
        };
        if !proven {
            return Err(ApiError::OAuthCodeInvalid);
        }
        let account = self.stores.lifecycle.user(pending.user_id).await?.ok_or(ApiError::OAuthCodeInvalid)?;
        let org = self.stores.accounts.find_org(&OrgRef::Id(pending.org_id)).await?.ok_or(ApiError::NotAMember)?;
        if account.disabled {
            return Err(ApiError::AccountDisabled);
        }
        admit(&org, AuthMethod::SocialOauth)?;
        self.sso_gate(org.id, &account.user.email, pending.via).await?;
        let now = self.clock.now();
        self.stores.accounts.touch_membership(pending.user_id, org.id, now).await?;
        let family = self.new_family(pending.user_id, org.id, &org.policy, AuthMethod::SocialOauth, now);
        let factors = self.second_factors(pending.user_id).await?;
        if !factors.is_empty() || org.policy.sessions.mfa_required {
            return self.second_factor_due(&family, &account.user, factors, now);
        }
        let sign_in = self.start_family(family, account.user, origin, &org.policy.sessions, now).await?;
        Ok(LoginOutcome::SignedIn(Box::new(sign_in)))
    }

    /// The account a provider identity signs in to. A known identity is its account's. A new one needs an
    /// address the provider verified: it joins the account of that address when that account's address is
    /// verified too; takes over an account whose address was never verified (whoever registered it could
    /// not prove it: the password goes, every session ends); or creates an account.
    async fn account_for(
        &self,
        provider: &str,
        identity: &ProviderIdentity,
        organization: Option<&OrgRef>,
        ip: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Uuid, ApiError> {
        if let Some(known) = self.stores.identities.identity(provider, &identity.subject).await? {
            self.stores.identities.identity_used(known.id, identity.email.as_deref(), now).await?;
            return Ok(known.user_id);
        }
        let email = match (&identity.email, identity.email_verified) {
            (Some(email), true) => Email::parse(email).map_err(|_| ApiError::OAuthEmailUnverified)?,
            _ => return Err(ApiError::OAuthEmailUnverified),
        };
        let address = email.normalized().to_owned();
        let linked = |user_id| Identity {
            id: Uuid::new_v4(),
            user_id,
            provider: provider.to_owned(),
            subject: identity.subject.clone(),
            email: Some(address.clone()),
            created_at: now,
            last_used_at: Some(now),
        };
        match self.stores.accounts.credentials(&address).await? {
            Some(account) if account.user.email_verified => {
                self.link_new(&linked(account.user.id)).await?;
                Ok(account.user.id)
            }
            Some(account) => {
                let user_id = account.user.id;
                match self.stores.identities.take_over(&linked(user_id)).await {
                    Err(StoreError::Conflict(_)) => return Err(ApiError::IdentityTaken),
                    other => other?,
                }
                self.end_user_families(user_id, None, RevokeReason::PasswordReset, now).await?;
                self.changed(&[Changed::User(user_id)]).await;
                self.audit_account(user_id, "account.taken_over", provider, ip, now).await;
                Ok(user_id)
            }
            None => {
                self.limit(Limit::RegisterIp, ip, true).await?;
                let target = match organization {
                    Some(org) => match self.signup_target(org, &email).await? {
                        // A verified address joins a domain organization at its first sign-in into it.
                        Target::DomainPending(_) => Target::Personal,
                        other => other,
                    },
                    None => Target::Personal,
                };
                let draft = AccountDraft {
                    display_name: identity.name.clone(),
                    email,
                    password_hash: None,
                    email_verified: true,
                    identity: Some(linked(Uuid::nil())),
                };
                let (user, _) = self.create_account_in(&target, draft, now).await?;
                Ok(user.id)
            }
        }
    }

    /// Links a new identity, refusing one another account has.
    async fn link_new(&self, identity: &Identity) -> Result<(), ApiError> {
        match self.stores.identities.add_identity(identity).await {
            Err(StoreError::Conflict(_)) => Err(ApiError::IdentityTaken),
            other => Ok(other?),
        }
    }

    /// Links the identity a signed-in user proved at a provider to their account. An identity of another
    /// account is refused; the same one again changes nothing.
    async fn link(
        &self,
        provider: &str,
        identity: &ProviderIdentity,
        user_id: Uuid,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        match self.stores.identities.identity(provider, &identity.subject).await? {
            Some(known) if known.user_id == user_id => Ok(()),
            Some(_) => Err(ApiError::IdentityTaken),
            None => {
                self.link_new(&Identity {
                    id: Uuid::new_v4(),
                    user_id,
                    provider: provider.to_owned(),
                    subject: identity.subject.clone(),
                    email: identity.email.clone(),
                    created_at: now,
                    last_used_at: None,
                })
                .await
            }
        }
    }

    /// The principal's identities.
    ///
    /// # Errors
    /// The session's errors.
    pub async fn identities(&self, principal: &Principal) -> Result<Vec<Identity>, ApiError> {
        self.session(principal).await?;
        Ok(self.stores.identities.identities(principal.claims.sub).await?)
    }

    /// Unlinks one of the principal's identities — never the last way to sign in: a user without a password
    /// or a passkey keeps one identity.
    ///
    /// # Errors
    /// `IdentityNotFound`; `ReauthenticationRequired`; `LastSignInMethod`; the session's errors.
    pub async fn unlink_identity(
        &self,
        principal: &Principal,
        id: Uuid,
        password: Option<String>,
    ) -> Result<(), ApiError> {
        let (context, _) = self.session(principal).await?;
        let user_id = principal.claims.sub;
        self.reauthenticated(principal, &context.user, password).await?;
        let identities = self.stores.identities.identities(user_id).await?;
        if !identities.iter().any(|i| i.id == id) {
            return Err(ApiError::IdentityNotFound);
        }
        let has_password = self.stores.lifecycle.user(user_id).await?.is_some_and(|c| c.password_hash.is_some());
        let has_passkey = !self.stores.passkeys.passkeys(user_id).await?.is_empty();
        if identities.len() == 1 && !has_password && !has_passkey {
            return Err(ApiError::LastSignInMethod);
        }
        if !self.stores.identities.remove_identity(user_id, id).await? {
            return Err(ApiError::IdentityNotFound);
        }
        Ok(())
    }

    /// Writes `action` on the user's account to the audit log of each of their organizations.
    async fn audit_account(
        &self,
        user_id: Uuid,
        action: &'static str,
        target: &str,
        ip: Option<&str>,
        now: OffsetDateTime,
    ) {
        let audit = Audit {
            at: now,
            actor: AuditActor::User(user_id),
            ip: ip.map(str::to_owned),
            action,
            target: Some(target.to_owned()),
        };
        match self.stores.organizations.orgs_of(user_id).await {
            Ok(orgs) => {
                for (org, _) in &orgs {
                    if let Err(err) = self.stores.admin.record(org.id, &audit).await {
                        tracing::warn!(error = %err, action, "could not write an audit entry");
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, action, "could not write an audit entry"),
        }
    }
}

/// Refuses an app's PKCE challenge that is not `base64url(SHA-256(verifier))`.
pub(super) fn checked_challenge(challenge: Option<&str>) -> Result<(), ApiError> {
    if challenge.is_some_and(|c| c.len() != 43 || B64URL.decode(c).is_err()) {
        return Err(ApiError::invalid_field("code_challenge", "code_challenge is base64url(SHA-256(verifier))"));
    }
    Ok(())
}

/// 256 random bits, base64url.
fn random() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| ApiError::Internal(anyhow::anyhow!("no randomness")))?;
    Ok(B64URL.encode(bytes))
}

fn sha256(text: &str) -> SecretHash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    hash
}

fn provider_error(err: ProviderError) -> ApiError {
    tracing::info!(error = %err, "sign-in provider");
    match err {
        ProviderError::Unavailable(_) => ApiError::OAuthProviderUnavailable,
        ProviderError::Refused(_) => ApiError::OAuthProviderError,
    }
}
