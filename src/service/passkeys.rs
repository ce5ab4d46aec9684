//! Passkeys: registering and managing them from a session, signing in with one (discoverable: the
//! passkey names its user), and a passkey as the second factor of a password sign-in or a step-up.
//!
//! webauthn-rs-core does the WebAuthn verification (CBOR, COSE, signatures, origin, RP ID, flags); here
//! are the rules around it that the library leaves to the relying party: a ceremony is single-use and
//! bound to who started it, the passkey must be the user's, and the signature counter moves forward
//! atomically with the use that records it.

use identsphere_actors::{Aal, AuthMethod, Changed, Origin};
use time::Duration;
use uuid::Uuid;
use webauthn_rs_core::WebauthnCore;
use webauthn_rs_core::error::WebauthnError;
use webauthn_rs_core::proto::{
    AuthenticationState, CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, UserVerificationPolicy,
};

use super::core::{Principal, Service};
use super::limits::{Limit, OrgLimit};
use super::mfa::{Factor, LoginOutcome};
use crate::error::ApiError;
use crate::model::{Audit, AuditActor, Ceremony, CeremonyFor, OrgRef, Passkey, PasskeyUse, admit, display_text};
use crate::store::StoreError;

/// How long a ceremony waits for the browser.
pub const CEREMONY_TTL: Duration = Duration::minutes(5);

/// What a passkey ceremony proves: the passkey, and whether the user was verified (PIN or biometrics).
#[derive(Debug)]
pub(super) struct Proven {
    pub(super) passkey: Passkey,
    pub(super) user_verified: bool,
}

/// Who starts an authentication ceremony.
#[derive(Debug)]
pub enum PasskeyAsker<'a> {
    /// Nobody yet: a sign-in.
    SignIn,
    /// A sign-in waiting for its second factor.
    MfaToken(&'a str),
    /// A live session stepping up.
    Session(&'a Principal),
}

impl Service {
    fn webauthn(&self) -> Result<&WebauthnCore, ApiError> {
        self.collaborators.webauthn.as_deref().ok_or(ApiError::PasskeysUnavailable)
    }

    /// Keeps `ceremony` for `ttl`: its id.
    pub(super) async fn keep_for(&self, ceremony: &Ceremony, ttl: Duration) -> Result<Uuid, ApiError> {
        let id = Uuid::new_v4();
        let bytes = serde_json::to_vec(ceremony).map_err(|e| ApiError::Internal(e.into()))?;
        let now = self.clock.now();
        self.stores.ceremonies.put_ceremony(id, &bytes, now + ttl, now).await?;
        Ok(id)
    }

    /// Takes the ceremony `id`, once.
    pub(super) async fn take_ceremony(&self, id: Uuid) -> Result<Ceremony, ApiError> {
        let bytes =
            self.stores.ceremonies.take_ceremony(id, self.clock.now()).await?.ok_or(ApiError::CeremonyExpired)?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(e.into()))
    }

    /// Starts registering a passkey for the principal's user: the options for
    /// `navigator.credentials.create()`. A discoverable credential (resident key) is required, so it can
    /// sign in without an email; user verification is preferred, so a security key without a PIN still
    /// registers (its sign-ins are `aal1`).
    ///
    /// # Errors
    /// `PasskeysUnavailable`; `ReauthenticationRequired`, `InvalidCredentials`; the session's errors.
    pub async fn passkey_registration_options(
        &self,
        principal: &Principal,
        name: Option<String>,
        password: Option<String>,
    ) -> Result<(Uuid, CreationChallengeResponse), ApiError> {
        let webauthn = self.webauthn()?;
        let name = passkey_name(name)?;
        let (context, _) = self.session(principal).await?;
        let user = &context.user;
        self.reauthenticated(principal, user, password).await?;
        let existing = self.stores.passkeys.passkeys(user.id).await?;
        let display = user.display_name.clone().unwrap_or_else(|| user.email.clone());
        let builder = webauthn
            .new_challenge_register_builder(user.id.as_bytes(), &user.email, &display)
            .map_err(internal)?
            .user_verification_policy(UserVerificationPolicy::Preferred)
            .require_resident_key(true)
            .exclude_credentials(Some(existing.into_iter().map(|p| p.credential.cred_id).collect()));
        let (options, state) = webauthn.generate_challenge_register(builder).map_err(internal)?;
        let id = self.keep_for(&Ceremony::Registration { user_id: user.id, name, state }, CEREMONY_TTL).await?;
        Ok((id, options))
    }

    /// Finishes a registration the principal's user started: the new passkey.
    ///
    /// # Errors
    /// `CeremonyExpired` for an unknown, used or expired ceremony or one of another user;
    /// `PasskeyInvalid` for a credential that fails verification; `PasskeyExists`; the session's errors.
    pub async fn register_passkey(
        &self,
        principal: &Principal,
        ceremony_id: Uuid,
        credential: &RegisterPublicKeyCredential,
        name: Option<String>,
    ) -> Result<Passkey, ApiError> {
        let webauthn = self.webauthn()?;
        let name = passkey_name(name)?;
        self.session(principal).await?;
        let user_id = principal.claims.sub;
        let Ceremony::Registration { user_id: started_by, name: asked, state } =
            self.take_ceremony(ceremony_id).await?
        else {
            return Err(ApiError::CeremonyExpired);
        };
        if started_by != user_id {
            return Err(ApiError::CeremonyExpired);
        }
        let mut verified = webauthn.register_credential(credential, &state, None).map_err(refused)?;
        // webauthn-rs keeps the transports only from attested formats; with `none` (what passkeys send)
        // the browser's list is still the best hint for `allowCredentials`, and nothing more.
        if verified.transports.is_none() {
            verified.transports.clone_from(&credential.response.transports);
        }
        let passkey = Passkey {
            id: Uuid::new_v4(),
            user_id,
            name: name.or(asked).unwrap_or_else(|| "Passkey".to_owned()),
            created_at: self.clock.now(),
            last_used_at: None,
            credential: verified,
        };
        match self.stores.passkeys.add_passkey(&passkey).await {
            Err(StoreError::Conflict(_)) => return Err(ApiError::PasskeyExists),
            other => other?,
        }
        metrics::counter!("identsphere_passkeys_registered_total").increment(1);
        self.changed(&[Changed::User(user_id)]).await;
        Ok(passkey)
    }

    /// The principal's passkeys.
    ///
    /// # Errors
    /// The session's errors.
    pub async fn passkeys(&self, principal: &Principal) -> Result<Vec<Passkey>, ApiError> {
        self.session(principal).await?;
        Ok(self.stores.passkeys.passkeys(principal.claims.sub).await?)
    }

    /// Renames one of the principal's passkeys.
    ///
    /// # Errors
    /// `PasskeyNotFound`; `InvalidRequest` for an empty or too long name; the session's errors.
    pub async fn rename_passkey(&self, principal: &Principal, id: Uuid, name: &str) -> Result<Passkey, ApiError> {
        let name = passkey_name(Some(name.to_owned()))?
            .ok_or_else(|| ApiError::invalid_field("name", "name must not be blank"))?;
        self.session(principal).await?;
        self.stores.passkeys.rename_passkey(principal.claims.sub, id, &name).await?.ok_or(ApiError::PasskeyNotFound)
    }

    /// Deletes one of the principal's passkeys: from an `aal2` session or one that signed in recently
    /// (or sends the password), and never the last passkey of a user an organization admits only with one.
    ///
    /// # Errors
    /// `PasskeyNotFound`; `ReauthenticationRequired`, `InvalidCredentials`; `LastSignInMethod`; the
    /// session's errors.
    pub async fn remove_passkey(
        &self,
        principal: &Principal,
        id: Uuid,
        password: Option<String>,
    ) -> Result<(), ApiError> {
        let (context, _) = self.session(principal).await?;
        let user_id = principal.claims.sub;
        if principal.claims.aal != Aal::Aal2 {
            self.reauthenticated(principal, &context.user, password).await?;
        }
        let passkeys = self.stores.passkeys.passkeys(user_id).await?;
        if !passkeys.iter().any(|p| p.id == id) {
            return Err(ApiError::PasskeyNotFound);
        }
        if passkeys.len() == 1 {
            let orgs = self.stores.organizations.orgs_of(user_id).await?;
            let only_passkeys = |methods: &[AuthMethod]| !methods.iter().any(|m| *m != AuthMethod::Passkey);
            if orgs.iter().any(|(org, _)| only_passkeys(&org.policy.sessions.auth_methods)) {
                return Err(ApiError::LastSignInMethod);
            }
        }
        if !self.stores.passkeys.remove_passkey(user_id, id).await? {
            return Err(ApiError::PasskeyNotFound);
        }
        self.changed(&[Changed::User(user_id)]).await;
        Ok(())
    }

    /// Starts a passkey authentication: the options for `navigator.credentials.get()`. For a sign-in
    /// the credential list is empty (the browser offers the user's passkeys for our RP ID), so the answer
    /// says nothing about any account. For a second factor or a step-up it lists the user's passkeys.
    ///
    /// # Errors
    /// `PasskeysUnavailable`; `RateLimited` (sign-ins per client address); `MfaNotEnrolled` for a user
    /// without a passkey; the mfa token's or the session's errors.
    pub async fn passkey_authentication_options(
        &self,
        asker: PasskeyAsker<'_>,
        organization: Option<&OrgRef>,
        client_ip: Option<&str>,
    ) -> Result<(Uuid, RequestChallengeResponse), ApiError> {
        let webauthn = self.webauthn()?;
        let (bound, user_id) = match asker {
            PasskeyAsker::SignIn => {
                // Each sign-in starts here: the sign-in limits apply, and bound what the store keeps.
                self.limit(Limit::SigninIp, client_ip, true).await?;
                if let Some(org) = organization
                    && let Some(org) = self.stores.accounts.find_org(org).await?
                {
                    self.org_limit(&org, OrgLimit::SigninIp, client_ip).await?;
                }
                (CeremonyFor::SignIn, None)
            }
            PasskeyAsker::MfaToken(token) => {
                let claims = self.live_mfa_claims(token).await?;
                (CeremonyFor::MfaToken { jti: claims.jti, user_id: claims.sub }, Some(claims.sub))
            }
            PasskeyAsker::Session(principal) => {
                self.session(principal).await?;
                let (sid, user_id) = (principal.claims.sid, principal.claims.sub);
                (CeremonyFor::Session { sid, user_id }, Some(user_id))
            }
        };
        let credentials = match user_id {
            Some(user_id) => {
                let passkeys = self.stores.passkeys.passkeys(user_id).await?;
                if passkeys.is_empty() {
                    return Err(ApiError::MfaNotEnrolled);
                }
                passkeys.into_iter().map(|p| p.credential).collect()
            }
            None => Vec::new(),
        };
        let builder = webauthn
            .new_challenge_authenticate_builder(credentials, Some(UserVerificationPolicy::Preferred))
            .map_err(internal)?;
        let (options, state) = webauthn.generate_challenge_authenticate(builder).map_err(internal)?;
        let id = self.keep_for(&Ceremony::Authentication { bound, state }, CEREMONY_TTL).await?;
        Ok((id, options))
    }

    /// Signs in with a passkey. A user-verified passkey is multi-factor (NIST 800-63B): the session starts
    /// at `aal2`. One without user verification counts as one factor: `aal1`, and the TOTP factor is due
    /// when the user has one or the organization requires a second factor.
    ///
    /// # Errors
    /// `CeremonyExpired`; `PasskeyInvalid`; `AccountDisabled`, `OrganizationNotFound`, `NotAMember`,
    /// `AuthMethodNotAllowed` after the passkey is proven; store failures.
    pub async fn passkey_sign_in(
        &self,
        ceremony_id: Uuid,
        credential: &PublicKeyCredential,
        organization: Option<OrgRef>,
        origin: Origin,
    ) -> Result<LoginOutcome, ApiError> {
        let result = self.passkey_sign_in_uncounted(ceremony_id, credential, organization, origin).await;
        let label = match &result {
            Ok(LoginOutcome::MfaRequired { .. }) => "mfa_required",
            other => super::core::outcome(other),
        };
        metrics::counter!("identsphere_auth_signins_total", "method" => "passkey", "result" => label).increment(1);
        result
    }

    async fn passkey_sign_in_uncounted(
        &self,
        ceremony_id: Uuid,
        credential: &PublicKeyCredential,
        organization: Option<OrgRef>,
        origin: Origin,
    ) -> Result<LoginOutcome, ApiError> {
        let Ceremony::Authentication { bound: CeremonyFor::SignIn, state } = self.take_ceremony(ceremony_id).await?
        else {
            return Err(ApiError::CeremonyExpired);
        };
        let proven = self.prove_passkey(state, credential, None, origin.ip.as_deref()).await?;
        let user_id = proven.passkey.user_id;
        let account = self.stores.lifecycle.user(user_id).await?.ok_or(ApiError::PasskeyInvalid)?;
        if account.disabled {
            return Err(ApiError::AccountDisabled);
        }
        let org = match organization {
            Some(org) => {
                let org = self.stores.accounts.find_org(&org).await?.ok_or(ApiError::OrganizationNotFound)?;
                self.member_or_joined_by_domain(user_id, &org, origin.ip.as_deref()).await?;
                org
            }
            None => self.stores.accounts.most_recent_org(user_id).await?.ok_or(ApiError::NotAMember)?,
        };
        admit(&org, AuthMethod::Passkey)?;
        self.sso_gate(org.id, &account.user.email, None).await?;
        let now = self.clock.now();
        self.stores.accounts.touch_membership(user_id, org.id, now).await?;
        let mut family = self.new_family(user_id, org.id, &org.policy, AuthMethod::Passkey, now);
        if proven.user_verified {
            family.aal = Aal::Aal2;
        } else {
            // The passkey was one factor; only the TOTP factor can be the second.
            let factors: Vec<Factor> =
                self.second_factors(user_id).await?.into_iter().filter(|f| *f == Factor::Totp).collect();
            if !factors.is_empty() || org.policy.sessions.mfa_required {
                return self.second_factor_due(&family, &account.user, factors, now);
            }
        }
        let sign_in = self.start_family(family, account.user, origin, &org.policy.sessions, now).await?;
        Ok(LoginOutcome::SignedIn(Box::new(sign_in)))
    }

    /// Checks a passkey as the second factor of `bound` (an mfa token's sign-in or a session's step-up):
    /// the ceremony must have been started for it, and the passkey must be that user's. User
    /// verification is not needed: the passkey is the second factor.
    pub(super) async fn passkey_second_factor(
        &self,
        bound: &CeremonyFor,
        ceremony_id: Uuid,
        credential: &PublicKeyCredential,
    ) -> Result<(), ApiError> {
        let Ceremony::Authentication { bound: started_for, state } = self.take_ceremony(ceremony_id).await? else {
            return Err(ApiError::CeremonyExpired);
        };
        let user_id = match (&started_for, bound) {
            (CeremonyFor::MfaToken { jti: a, user_id }, CeremonyFor::MfaToken { jti: b, .. })
            | (CeremonyFor::Session { sid: a, user_id }, CeremonyFor::Session { sid: b, .. })
                if a == b =>
            {
                *user_id
            }
            _ => return Err(ApiError::CeremonyExpired),
        };
        self.prove_passkey(state, credential, Some(user_id), None).await.map(drop)
    }

    /// Verifies `credential` against the passkey it names (of `user_id`, when the ceremony was for one)
    /// and records the use. A signature counter that did not move forward means two copies of the key
    /// exist: refused, and written to the audit log of the user's organizations.
    async fn prove_passkey(
        &self,
        mut state: AuthenticationState,
        credential: &PublicKeyCredential,
        user_id: Option<Uuid>,
        ip: Option<&str>,
    ) -> Result<Proven, ApiError> {
        let webauthn = self.webauthn()?;
        let passkey =
            self.stores.passkeys.passkey_by_credential(&credential.raw_id).await?.ok_or(ApiError::PasskeyInvalid)?;
        let handle_matches =
            credential.response.user_handle.as_deref().is_none_or(|handle| handle == passkey.user_id.as_bytes());
        if user_id.is_some_and(|u| u != passkey.user_id) || !handle_matches {
            return Err(ApiError::PasskeyInvalid);
        }
        state.set_allowed_credentials(vec![passkey.credential.clone()]);
        let result = match webauthn.authenticate_credential(credential, &state) {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => {
                self.cloned_passkey(&passkey, ip).await;
                return Err(ApiError::PasskeyInvalid);
            }
            Err(err) => return Err(refused(err)),
        };
        let used = PasskeyUse {
            id: passkey.id,
            counter: result.counter(),
            backed_up: result.backup_state(),
            at: self.clock.now(),
        };
        if !self.stores.passkeys.use_passkey(&used).await? {
            // Another use with the same counter won the race, or the passkey was deleted meanwhile.
            if self.stores.passkeys.passkey_by_credential(&credential.raw_id).await?.is_some() {
                self.cloned_passkey(&passkey, ip).await;
            }
            return Err(ApiError::PasskeyInvalid);
        }
        Ok(Proven { passkey, user_verified: result.user_verified() })
    }

    /// Writes a counter regression to the audit log of every organization of the passkey's user.
    async fn cloned_passkey(&self, passkey: &Passkey, ip: Option<&str>) {
        tracing::warn!(user = %passkey.user_id, passkey = %passkey.id, "passkey signature counter went back: refused");
        metrics::counter!("identsphere_passkey_counter_regressions_total").increment(1);
        let audit = Audit {
            at: self.clock.now(),
            actor: AuditActor::User(passkey.user_id),
            ip: ip.map(str::to_owned),
            action: "passkey.counter_regressed",
            target: Some(passkey.id.to_string()),
        };
        let orgs = match self.stores.organizations.orgs_of(passkey.user_id).await {
            Ok(orgs) => orgs,
            Err(err) => return tracing::warn!(error = %err, "could not audit a passkey counter regression"),
        };
        for (org, _) in &orgs {
            if let Err(err) = self.stores.admin.record(org.id, &audit).await {
                tracing::warn!(error = %err, "could not audit a passkey counter regression");
            }
        }
    }
}

/// A passkey name as given, trimmed (at most 100 characters, no control characters); `None` when blank.
fn passkey_name(raw: Option<String>) -> Result<Option<String>, ApiError> {
    display_text("name", raw)
}

/// A credential or assertion webauthn-rs refused: the client's problem, its reason only in the log.
fn refused(err: WebauthnError) -> ApiError {
    tracing::info!(reason = %err, "passkey refused");
    ApiError::PasskeyInvalid
}

fn internal(err: WebauthnError) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("webauthn: {err}"))
}
