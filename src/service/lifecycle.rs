//! The account lifecycle: email verification, password reset by mail, password change.
//!
//! Links carry 256 random bits; only their SHA-256 is stored, and each works once before it expires
//! (verify 24 h, reset 1 h). Mail goes out in the background, so a request that may send one answers
//! in the same time whether an account exists or not.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use identsphere_actors::{Aal, Changed, RevokeReason};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::core::{Principal, Service};
use super::limits::Limit;
use crate::auth::password::Verified;
use crate::error::ApiError;
use crate::mail::MailKind;
use crate::model::{Email, LinkPurpose, NewLink, Password, SecretHash};

/// How long an email-verification link works.
const VERIFY_LINK_TTL: Duration = Duration::hours(24);
/// How long a password-reset link works.
const RESET_LINK_TTL: Duration = Duration::hours(1);
/// Random bytes of a link token.
const LINK_TOKEN_BYTES: usize = 32;

impl Service {
    /// Makes a link for `user_id` and mails it to `to`, in the background: failures are logged and
    /// counted, never shown to the requester.
    pub(super) fn send_link(&self, user_id: Uuid, to: String, purpose: LinkPurpose, now: OffsetDateTime) {
        let service = self.clone();
        let (kind, ttl) = match purpose {
            LinkPurpose::VerifyEmail => (MailKind::VerifyEmail, VERIFY_LINK_TTL),
            LinkPurpose::ResetPassword => (MailKind::ResetPassword, RESET_LINK_TTL),
        };
        self.deliver(kind, async move {
            let (token, token_hash) = new_link_token()?;
            let link =
                NewLink { token_hash, user_id, purpose, email: to.clone(), created_at: now, expires_at: now + ttl };
            service.stores.lifecycle.add_link(&link).await?;
            service.collaborators.mailer.send(kind, &to, &token, None).await
        });
    }

    /// Runs `sending` in the background, counting and logging its outcome.
    pub(super) fn deliver(
        &self,
        kind: MailKind,
        sending: impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        tokio::spawn(async move {
            let result = sending.await;
            let label = if result.is_ok() { "sent" } else { "failed" };
            metrics::counter!("identsphere_email_deliveries_total", "kind" => kind.as_str(), "result" => label)
                .increment(1);
            if let Err(err) = result {
                tracing::error!(kind = kind.as_str(), error = format!("{err:#}"), "mail not delivered");
            }
        });
    }

    /// Marks an email verified with the token of its link.
    ///
    /// # Errors
    /// `LinkInvalid` for an unknown, expired or used link (or one sent to an address the user no longer
    /// has); `RateLimited`.
    pub async fn verify_email(&self, token: &str, client_ip: Option<&str>) -> Result<(), ApiError> {
        self.limit(Limit::LinkIp, client_ip, true).await?;
        let hash = parse_link(token)?;
        let user_id =
            self.stores.lifecycle.verify_email(&hash, self.clock.now()).await?.ok_or(ApiError::LinkInvalid)?;
        self.changed(&[Changed::User(user_id)]).await;
        Ok(())
    }

    /// Sends the principal's user a new verification link, unless the address is verified already.
    ///
    /// # Errors
    /// `RateLimited`; the session's errors.
    pub async fn resend_verification(&self, principal: &Principal, client_ip: Option<&str>) -> Result<(), ApiError> {
        let (context, _) = self.session(principal).await?;
        self.limit(Limit::EmailIp, client_ip, true).await?;
        let email = Email::parse(&context.user.email)?;
        self.limit(Limit::EmailAccount, Some(email.normalized()), true).await?;
        if !context.user.email_verified {
            self.send_link(context.user.id, context.user.email.clone(), LinkPurpose::VerifyEmail, self.clock.now());
        }
        Ok(())
    }

    /// Sends a reset link if an enabled account has this email; answers the same either way.
    ///
    /// # Errors
    /// `RateLimited` (per client address, and per email whether it has an account or not).
    pub async fn forgot_password(&self, email: &Email, client_ip: Option<&str>) -> Result<(), ApiError> {
        self.limit(Limit::EmailIp, client_ip, true).await?;
        self.limit(Limit::EmailAccount, Some(email.normalized()), true).await?;
        let service = self.clone();
        let email = email.clone();
        let now = self.clock.now();
        // Even the lookup runs after the answer: its time must not tell whether the account exists.
        tokio::spawn(async move {
            match service.stores.accounts.credentials(email.normalized()).await {
                Ok(Some(credentials)) if !credentials.disabled => {
                    service.send_link(credentials.user.id, credentials.user.email, LinkPurpose::ResetPassword, now);
                }
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "password reset: looking up the account failed"),
            }
        });
        Ok(())
    }

    /// Sets a new password with the token of a reset link, and ends every session of the user.
    ///
    /// # Errors
    /// `LinkInvalid`; `RateLimited`.
    pub async fn reset_password(
        &self,
        token: &str,
        password: Password,
        client_ip: Option<&str>,
    ) -> Result<(), ApiError> {
        self.limit(Limit::LinkIp, client_ip, true).await?;
        let hash = parse_link(token)?;
        let password_hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        let user_id =
            self.stores.lifecycle.reset_password(&hash, &password_hash, now).await?.ok_or(ApiError::LinkInvalid)?;
        self.end_user_families(user_id, None, RevokeReason::PasswordReset, now).await
    }

    /// Changes the principal's password after checking the current one, and ends the user's other
    /// sessions. A user with a second factor needs an `aal2` session.
    ///
    /// # Errors
    /// `InvalidCredentials` for a wrong current password; `InsufficientAal`; `RateLimited`; the
    /// session's errors.
    pub async fn change_password(&self, principal: &Principal, current: String, new: Password) -> Result<(), ApiError> {
        let (context, _) = self.session(principal).await?;
        let user_id = context.user.id;
        if principal.claims.aal != Aal::Aal2 && !self.second_factors(user_id).await?.is_empty() {
            return Err(ApiError::InsufficientAal);
        }
        self.check_password(user_id, &context.user.email, current).await?;
        let password_hash = self.hasher.hash(new).await?;
        let now = self.clock.now();
        self.stores.lifecycle.change_password(user_id, &password_hash, now).await?;
        self.end_user_families(user_id, Some(principal.claims.sid), RevokeReason::PasswordChanged, now).await
    }
}

impl Service {
    /// Checks a password the signed-in user typed again: a wrong one counts against the account like a
    /// failed sign-in.
    ///
    /// # Errors
    /// `InvalidCredentials`; `RateLimited` after too many failures.
    pub(super) async fn check_password(&self, user_id: Uuid, email: &str, password: String) -> Result<(), ApiError> {
        let email = Email::parse(email)?;
        let account = email.normalized();
        self.limit(Limit::SigninAccountFailures, Some(account), false).await?;
        let stored = self.stores.lifecycle.user(user_id).await?.and_then(|c| c.password_hash);
        if !matches!(self.hasher.verify(password, stored).await?, Verified::Yes { .. }) {
            let _ = self.limit(Limit::SigninAccountFailures, Some(account), true).await;
            return Err(ApiError::InvalidCredentials);
        }
        Ok(())
    }
}

/// A new link token (256 random bits, base64url) and its stored form.
pub(super) fn new_link_token() -> anyhow::Result<(String, SecretHash)> {
    let mut raw = [0u8; LINK_TOKEN_BYTES];
    SystemRandom::new().fill(&mut raw).map_err(|_| anyhow::anyhow!("no randomness"))?;
    let token = B64URL.encode(raw);
    let hash = link_hash(&token);
    Ok((token, hash))
}

/// The stored form of a link token.
fn link_hash(token: &str) -> SecretHash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    hash
}

/// The stored form of a link token as sent: 43 base64url characters, else no token of ours.
pub(super) fn link_token_hash(token: &str) -> Option<SecretHash> {
    let token = token.trim();
    B64URL.decode(token).ok().filter(|raw| raw.len() == LINK_TOKEN_BYTES).map(|_| link_hash(token))
}

/// A link token as sent, or `LinkInvalid`.
fn parse_link(token: &str) -> Result<SecretHash, ApiError> {
    link_token_hash(token).ok_or(ApiError::LinkInvalid)
}
