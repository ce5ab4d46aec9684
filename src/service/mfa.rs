//! The second factor: TOTP enrollment and removal, recovery codes, completing a sign-in with an mfa
//! token, and step-up of a live session to `aal2`.
//!
//! Codes are checked here, once: a TOTP time step is accepted at most once (the store's conditional
//! update), a recovery code is spent on use, and wrong codes count against the mfa token and the user.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use identsphere_actors::{Aal, Changed, FamilyRecord, UserProfile};
use time::OffsetDateTime;
use totp_rs::{Builder, Totp};
use uuid::Uuid;

use super::core::{Principal, Service, SignIn, unix_time};
use super::limits::Limit;
use crate::auth::tokens::Claims;
use crate::error::ApiError;
use crate::model::admit;
use crate::model::{CeremonyFor, OrgRef, SecretHash};

/// Recovery codes issued at confirmation.
const RECOVERY_CODES: usize = 10;
/// Random bytes per recovery code: 80 bits, 16 base32 characters.
const RECOVERY_CODE_BYTES: usize = 10;
/// Random bytes of a TOTP secret (RFC 4226 recommends 160 bits).
const TOTP_SECRET_BYTES: usize = 20;
/// The factor types `mfa_required` lists.
pub const FACTORS: [&str; 2] = ["totp", "passkey"];

/// A second factor a user has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// An authenticator app (with its recovery codes).
    Totp,
    /// A passkey.
    Passkey,
}

impl Factor {
    /// The name `mfa_required` lists.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Totp => FACTORS[0],
            Self::Passkey => FACTORS[1],
        }
    }
}

/// What proves the second factor at `mfa/verify`.
#[derive(Debug)]
pub enum SecondFactor<'a> {
    /// A TOTP code or a recovery code.
    Code(&'a str),
    /// A passkey assertion, in the ceremony started for this sign-in or session.
    Passkey {
        /// The ceremony of `passkeys/authentication/options`.
        ceremony_id: uuid::Uuid,
        /// What `navigator.credentials.get()` gave.
        credential: &'a webauthn_rs_core::proto::PublicKeyCredential,
    },
}

/// What login ended with.
#[derive(Clone, Debug)]
pub enum LoginOutcome {
    /// Signed in: the token response.
    SignedIn(Box<SignIn>),
    /// The password was right and a second factor is due: complete with `mfa/verify`, or, when the
    /// user has none and the organization requires one, enroll it with the mfa token first.
    MfaRequired {
        /// The mfa token (`typ: mfa`), single-use, 5 minutes.
        mfa_token: String,
        /// The factors the user can complete the sign-in with; none: enroll and confirm one first
        /// (`mfa/totp`, `mfa/totp/confirm`).
        factors: Vec<Factor>,
    },
}

/// A TOTP enrollment waiting for its first code.
#[derive(Clone)]
pub struct TotpEnrollment {
    /// The shared secret, base32, for manual entry.
    pub secret: String,
    /// The `otpauth://totp/…` URI authenticator apps import.
    pub otpauth_uri: String,
    /// The URI as a QR code: an SVG `data:` URI.
    pub qr_svg: String,
}

impl std::fmt::Debug for TotpEnrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrollment").finish_non_exhaustive()
    }
}

/// Who presents a second-factor code (`mfa/verify`) or enrolls one (`mfa/totp`, `mfa/totp/confirm`).
#[derive(Debug)]
pub enum MfaProof<'a> {
    /// A sign-in waiting for its second factor (or, in an organization that requires one, its enrollment).
    MfaToken(&'a str),
    /// A live session stepping up, or enrolling.
    Session(&'a Principal),
}

impl Service {
    /// Whether the user has a confirmed TOTP factor.
    async fn has_totp(&self, user_id: Uuid) -> Result<bool, ApiError> {
        Ok(self.stores.factors.totp(user_id).await?.is_some_and(|f| f.confirmed_at.is_some()))
    }

    /// The second factors the user has: a confirmed TOTP factor, passkeys (while passkeys are on).
    pub(super) async fn second_factors(&self, user_id: Uuid) -> Result<Vec<Factor>, ApiError> {
        let mut factors = Vec::new();
        if self.has_totp(user_id).await? {
            factors.push(Factor::Totp);
        }
        if self.collaborators.webauthn.is_some() && !self.stores.passkeys.passkeys(user_id).await?.is_empty() {
            factors.push(Factor::Passkey);
        }
        Ok(factors)
    }

    /// The answer to a right password when a second factor is due: an mfa token for the family the
    /// sign-in will start.
    pub(super) fn second_factor_due(
        &self,
        family: &FamilyRecord,
        user: &UserProfile,
        factors: Vec<Factor>,
        now: OffsetDateTime,
    ) -> Result<LoginOutcome, ApiError> {
        let mfa_token = self.tokens.issue_mfa(family, user, now)?;
        Ok(LoginOutcome::MfaRequired { mfa_token, factors })
    }

    /// The user a proof speaks for, with the mfa token's claims when it is one (not spent by this).
    async fn prover(&self, proof: &MfaProof<'_>) -> Result<(UserProfile, Option<Claims>), ApiError> {
        match proof {
            MfaProof::Session(principal) => Ok((self.session(principal).await?.0.user.clone(), None)),
            MfaProof::MfaToken(token) => {
                let claims = self.live_mfa_claims(token).await?;
                let credentials = self.stores.lifecycle.user(claims.sub).await?.ok_or(ApiError::TokenInvalid)?;
                if credentials.disabled {
                    return Err(ApiError::AccountDisabled);
                }
                Ok((credentials.user, Some(claims)))
            }
        }
    }

    /// Starts (or restarts) a TOTP enrollment for the user of a session that signed in recently (or
    /// sends the password), or of an mfa token that asks for one.
    ///
    /// # Errors
    /// `MfaAlreadyEnrolled` when a factor is active; `ReauthenticationRequired`, `InvalidCredentials`;
    /// the session's or the mfa token's errors; store failures.
    pub async fn enroll_totp(&self, proof: MfaProof<'_>, password: Option<String>) -> Result<TotpEnrollment, ApiError> {
        let (user, _) = self.prover(&proof).await?;
        if let MfaProof::Session(principal) = proof {
            self.reauthenticated(principal, &user, password).await?;
        }
        if self.has_totp(user.id).await? {
            return Err(ApiError::MfaAlreadyEnrolled);
        }
        let mut secret = vec![0u8; TOTP_SECRET_BYTES];
        SystemRandom::new().fill(&mut secret).map_err(|_| internal("no randomness"))?;
        let sealed = self.collaborators.sealer.seal(&owner(user.id), &secret).map_err(ApiError::Internal)?;
        if !self.stores.factors.begin_totp(user.id, &sealed, self.clock.now()).await? {
            return Err(ApiError::MfaAlreadyEnrolled);
        }
        let totp = self.totp(secret, &user.email)?;
        let otpauth_uri = totp.to_url().map_err(|e| internal_from(&e))?;
        let qr = qrcode::QrCode::new(otpauth_uri.as_bytes()).map_err(|e| internal_from(&e))?;
        let svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
        Ok(TotpEnrollment {
            secret: totp.secret().to_base32(),
            otpauth_uri,
            qr_svg: format!("data:image/svg+xml;base64,{}", B64.encode(svg)),
        })
    }

    /// Confirms the waiting enrollment with its first code: the factor becomes active, the user gets
    /// new recovery codes (returned once, stored hashed) and the session is raised to `aal2` (it presents
    /// its refresh token too) — or, with an mfa token, the sign-in it stands for completes at `aal2`.
    ///
    /// # Errors
    /// `MfaNotEnrolled` without a waiting enrollment; `MfaInvalidCode`; `RateLimited` after too many
    /// wrong codes; the session's, its refresh token's or the mfa token's errors.
    pub async fn confirm_totp(
        &self,
        proof: MfaProof<'_>,
        code: &str,
        refresh: Option<&str>,
        origin: identsphere_actors::Origin,
    ) -> Result<(SignIn, Vec<String>), ApiError> {
        let (user, mfa_claims) = self.prover(&proof).await?;
        if let MfaProof::Session(principal) = proof {
            self.same_family_refresh(principal, refresh).await?;
        }
        let factor = self.stores.factors.totp(user.id).await?;
        let Some(factor) = factor.filter(|f| f.confirmed_at.is_none()) else {
            return Err(ApiError::MfaNotEnrolled);
        };
        let mfa_jti = mfa_claims.as_ref().map(|claims| claims.jti);
        self.limit(Limit::MfaUserFailures, Some(&user.id.to_string()), false).await?;
        self.limit(Limit::MfaTokenFailures, mfa_jti.map(|jti| jti.to_string()).as_deref(), false).await?;
        let now = self.clock.now();
        let totp = self.totp(self.open_secret(user.id, &factor.sealed_secret)?, &user.email)?;
        let Some(step) = totp_step(&totp, code, now) else {
            return Err(self.wrong_code(user.id, mfa_jti).await);
        };
        let codes = recovery_codes()?;
        let hashes: Vec<SecretHash> = codes.iter().filter_map(|c| recovery_hash(c)).collect();
        if !self.stores.factors.confirm_totp(user.id, step, &hashes, now).await? {
            return Err(ApiError::MfaNotEnrolled);
        }
        self.changed(&[Changed::User(user.id)]).await;
        let sign_in = match (proof, mfa_claims) {
            (_, Some(claims)) => self.complete_sign_in(&claims, origin, now).await?,
            (MfaProof::Session(principal), None) => self.elevate(principal, now).await?,
            (MfaProof::MfaToken(_), None) => return Err(ApiError::TokenInvalid),
        };
        Ok((sign_in, codes))
    }

    /// Removes the user's TOTP factor and recovery codes. Needs an `aal2` session that signed in
    /// recently (or sends the password).
    ///
    /// # Errors
    /// `InsufficientAal`; `ReauthenticationRequired`, `InvalidCredentials`; `MfaNotEnrolled` without a
    /// factor; the session's errors.
    pub async fn remove_totp(&self, principal: &Principal, password: Option<String>) -> Result<(), ApiError> {
        let (context, _) = self.session(principal).await?;
        if principal.claims.aal != Aal::Aal2 {
            return Err(ApiError::InsufficientAal);
        }
        self.reauthenticated(principal, &context.user, password).await?;
        if !self.stores.factors.remove_totp(principal.claims.sub).await? {
            return Err(ApiError::MfaNotEnrolled);
        }
        self.changed(&[Changed::User(principal.claims.sub)]).await;
        Ok(())
    }

    /// Checks a second factor (a TOTP code, a recovery code or a passkey): with an mfa token it completes
    /// the sign-in at `aal2`; with a live session that presents its refresh token too, it raises that
    /// session to `aal2` (same `sid`).
    ///
    /// # Errors
    /// `MfaInvalidCode` for a wrong, replayed or spent code; `RateLimited` after too many wrong ones;
    /// `PasskeyInvalid`, `CeremonyExpired` for a passkey; `TokenInvalid` for an mfa token that is not ours
    /// or was used; `TokenExpired`; `AccountDisabled`; the refresh token's errors.
    pub async fn verify_mfa(
        &self,
        proof: MfaProof<'_>,
        factor: SecondFactor<'_>,
        refresh: Option<&str>,
        origin: identsphere_actors::Origin,
    ) -> Result<SignIn, ApiError> {
        let now = self.clock.now();
        match proof {
            MfaProof::Session(principal) => {
                self.session(principal).await?;
                self.same_family_refresh(principal, refresh).await?;
                let (sid, user_id) = (principal.claims.sid, principal.claims.sub);
                match factor {
                    SecondFactor::Code(code) => self.check_code(user_id, None, code, now).await?,
                    SecondFactor::Passkey { ceremony_id, credential } => {
                        let bound = CeremonyFor::Session { sid, user_id };
                        self.passkey_second_factor(&bound, ceremony_id, credential).await?;
                    }
                }
                self.elevate(principal, now).await
            }
            MfaProof::MfaToken(token) => {
                let claims = self.live_mfa_claims(token).await?;
                match factor {
                    SecondFactor::Code(code) => self.check_code(claims.sub, Some(claims.jti), code, now).await?,
                    SecondFactor::Passkey { ceremony_id, credential } => {
                        let bound = CeremonyFor::MfaToken { jti: claims.jti, user_id: claims.sub };
                        self.passkey_second_factor(&bound, ceremony_id, credential).await?;
                    }
                }
                self.complete_sign_in(&claims, origin, now).await
            }
        }
    }

    /// Completes the sign-in an mfa token stands for, at `aal2`: spends the token and starts its family,
    /// if the user and the organization still allow it.
    async fn complete_sign_in(
        &self,
        claims: &Claims,
        origin: identsphere_actors::Origin,
        now: OffsetDateTime,
    ) -> Result<SignIn, ApiError> {
        if !self.stores.factors.spend_once(claims.jti, unix_time(claims.exp)?, now).await? {
            return Err(ApiError::TokenInvalid);
        }
        let credentials = self.stores.lifecycle.user(claims.sub).await?.ok_or(ApiError::TokenInvalid)?;
        let org = self.stores.accounts.find_org(&OrgRef::Id(claims.org)).await?.ok_or(ApiError::AccountDisabled)?;
        if credentials.disabled {
            return Err(ApiError::AccountDisabled);
        }
        admit(&org, claims.auth_method)?;
        // The family the mfa token stands for, starting now at `aal2`.
        let lifetime = self.refresh_ttl_in(&org.policy);
        let family = FamilyRecord {
            sid: claims.sid,
            aal: Aal::Aal2,
            auth_time: unix_time(claims.auth_time)?,
            ..FamilyRecord::start(claims.sub, claims.org, claims.auth_method, now, lifetime)
        };
        self.start_family(family, credentials.user, origin, &org.policy.sessions, now).await
    }

    /// The claims of an mfa token that is ours, unexpired and not spent yet. Checked before any code or
    /// passkey is, so a spent token never spends a recovery code or a TOTP step: the sign-in spends the
    /// token itself at the end (`complete_sign_in`), atomically.
    pub(super) async fn live_mfa_claims(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = self.tokens.verify_mfa(token, self.clock.now())?;
        if self.stores.factors.spent(claims.jti).await? {
            return Err(ApiError::TokenInvalid);
        }
        Ok(claims)
    }

    /// Refuses a credential change from a session whose sign-in is older than the reauthentication
    /// window, unless the user typed their password again.
    pub(super) async fn reauthenticated(
        &self,
        principal: &Principal,
        user: &UserProfile,
        password: Option<String>,
    ) -> Result<(), ApiError> {
        let signed_in = unix_time(principal.claims.auth_time)?;
        if self.clock.now() - signed_in <= self.reauthentication {
            return Ok(());
        }
        let password = password.ok_or(ApiError::ReauthenticationRequired)?;
        self.check_password(user.id, &user.email, password).await
    }

    /// Checks that a session raising itself presents its family's refresh token too: a new pair goes
    /// only to who could refresh anyway, never to the holder of an access token alone (which every
    /// resource server sees).
    async fn same_family_refresh(&self, principal: &Principal, refresh: Option<&str>) -> Result<(), ApiError> {
        let claims = self.live_refresh_claims(refresh, self.clock.now()).await?;
        if claims.sid != principal.claims.sid {
            return Err(ApiError::TokenInvalid);
        }
        Ok(())
    }

    /// Raises the principal's family to `aal2` through its organization's actor: a new token pair.
    async fn elevate(&self, principal: &Principal, now: OffsetDateTime) -> Result<SignIn, ApiError> {
        let rotation = self.registry.org(principal.claims.org).elevate(principal.claims.sid, now).await?;
        self.sign_in(rotation.family, rotation.subject.user, &rotation.subject.rules, now)
    }

    /// Accepts `code` for `user_id` once, or counts a failure against the user (and the mfa token).
    async fn check_code(
        &self,
        user_id: Uuid,
        mfa_jti: Option<Uuid>,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(), ApiError> {
        let user_key = user_id.to_string();
        let token_key = mfa_jti.map(|jti| jti.to_string());
        self.limit(Limit::MfaUserFailures, Some(&user_key), false).await?;
        self.limit(Limit::MfaTokenFailures, token_key.as_deref(), false).await?;
        let accepted = match code.trim() {
            digits if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                match self.stores.factors.totp(user_id).await?.filter(|f| f.confirmed_at.is_some()) {
                    Some(factor) => {
                        // The account name only labels the otpauth URI; checking needs none.
                        let totp = self.totp(self.open_secret(user_id, &factor.sealed_secret)?, "")?;
                        match totp_step(&totp, digits, now) {
                            Some(step) => self.stores.factors.accept_totp_step(user_id, step).await?,
                            None => false,
                        }
                    }
                    None => false,
                }
            }
            other => match recovery_hash(other) {
                Some(hash) => {
                    let spent = self.stores.factors.spend_recovery_code(user_id, &hash, now).await?;
                    if spent {
                        // The codes left are part of the session view.
                        self.changed(&[Changed::User(user_id)]).await;
                    }
                    spent
                }
                None => false,
            },
        };
        if accepted { Ok(()) } else { Err(self.wrong_code(user_id, mfa_jti).await) }
    }

    /// Counts a wrong code against the user and the mfa token; the answer stays `mfa_invalid_code`
    /// even when this one fills a counter (the next attempt is the one refused).
    async fn wrong_code(&self, user_id: Uuid, mfa_jti: Option<Uuid>) -> ApiError {
        let _ = self.limit(Limit::MfaUserFailures, Some(&user_id.to_string()), true).await;
        if let Some(jti) = mfa_jti {
            let _ = self.limit(Limit::MfaTokenFailures, Some(&jti.to_string()), true).await;
        }
        ApiError::MfaInvalidCode
    }

    fn open_secret(&self, user_id: Uuid, sealed: &[u8]) -> Result<Vec<u8>, ApiError> {
        self.collaborators.sealer.open(&owner(user_id), sealed).map_err(ApiError::Internal)
    }

    /// RFC 6238 with the parameters every authenticator app supports: SHA-1, 6 digits, 30 s, ±1 step.
    fn totp(&self, secret: Vec<u8>, account: &str) -> Result<Totp, ApiError> {
        // `:` separates issuer and account in the otpauth label.
        let issuer = self.collaborators.product_name.replace(':', " ");
        Builder::new()
            .with_secret(secret)
            .with_issuer(Some(issuer))
            .with_account_name(account.replace(':', " "))
            .build()
            .map_err(|e| internal_from(&e))
    }
}

/// The associated data binding a sealed TOTP secret to its user.
pub(super) fn owner(user_id: Uuid) -> String {
    format!("totp:{user_id}")
}

/// The time step `code` is valid for at `now` (±1 step), if any.
fn totp_step(totp: &Totp, code: &str, now: OffsetDateTime) -> Option<i64> {
    let now = u64::try_from(now.unix_timestamp()).ok()?;
    totp.check(code.trim(), now).and_then(|step| i64::try_from(step).ok())
}

/// Ten new recovery codes, `XXXX-XXXX-XXXX-XXXX` in base32.
fn recovery_codes() -> Result<Vec<String>, ApiError> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let rng = SystemRandom::new();
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; RECOVERY_CODE_BYTES];
            rng.fill(&mut bytes).map_err(|_| internal("no randomness"))?;
            // 80 bits, 5 at a time.
            let bits = bytes.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
            let chars: Vec<char> = (0..16)
                .rev()
                .map(|i| char::from(ALPHABET[usize::try_from((bits >> (i * 5)) & 31).unwrap_or(0)]))
                .collect();
            Ok(chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"))
        })
        .collect()
}

/// The stored form of a recovery code as typed: dashes and spaces dropped, case ignored. `None` for
/// anything that cannot be one.
fn recovery_hash(code: &str) -> Option<SecretHash> {
    let normalized: String =
        code.chars().filter(|c| *c != '-' && !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
    if normalized.len() != 16 || !normalized.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)) {
        return None;
    }
    digest(&SHA256, normalized.as_bytes()).as_ref().try_into().ok()
}

fn internal(what: &'static str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!(what))
}

fn internal_from(err: &dyn std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_distinct_and_hash_however_they_are_typed() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 19, "{code}");
        let typed = code.to_ascii_lowercase().replace('-', " ");
        assert_eq!(recovery_hash(code), recovery_hash(&typed));
        assert!(recovery_hash(code).is_some());
        assert_eq!(recovery_hash("123456"), None);
        assert_eq!(recovery_hash("AAAA-AAAA-AAAA-AAA1"), None, "1 is not base32");
    }
}
