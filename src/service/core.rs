//! The service itself: what it holds, how it is put together, and the shapes its flows answer with.

use identsphere_actors::{FamilyRecord, Registry, Stamp, UserProfile};
use time::{Duration, OffsetDateTime};

use std::collections::BTreeMap;

use crate::auth::keys::Sealer;
use crate::auth::oauth::ProviderClient;
use crate::auth::password::PasswordHasher;
use crate::auth::tokens::{AccessToken, Claims, Tokens};
use crate::clock::Clock;
use crate::config::ProviderConfig;
use crate::config::RateLimits;
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::model::{Email, OrgRef, Organization, Password};
use crate::store::Stores;

use super::session_cache::SessionCache;

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

/// Session settings and abuse limits from configuration.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// A family's absolute lifetime (the refresh-token lifetime).
    pub refresh: Duration,
    /// How long a spent refresh token may be replayed.
    pub grace: Duration,
    /// How recent a sign-in must be to change a credential without the password.
    pub reauthentication: Duration,
    /// The abuse limits.
    pub limits: RateLimits,
    /// Whether user import takes MD5 and SHA-1 hashes.
    pub allow_weak_hashes: bool,
}

/// What the flows need besides the stores: secrets at rest, mail, and the name users know us by.
#[derive(Clone, Debug)]
pub struct Collaborators {
    /// Seals second-factor secrets under the key-encryption key.
    pub sealer: Sealer,
    /// Sends the lifecycle mail.
    pub mailer: Mailer,
    /// The issuer authenticator apps show next to a TOTP code.
    pub product_name: String,
    /// Verifies passkeys for our relying party; `None` while passkeys are off.
    pub webauthn: Option<std::sync::Arc<webauthn_rs_core::WebauthnCore>>,
    /// The sign-in providers and where their sign-ins may return to.
    pub social: std::sync::Arc<SocialSettings>,
}

/// The platform's providers and where sign-ins may return to.
#[derive(Debug)]
pub struct SocialSettings {
    /// Talks to the providers.
    pub client: ProviderClient,
    /// The configured providers by path name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `IDENTSPHERE_ALLOWED_REDIRECT_URIS`: exact URLs, or origins.
    pub redirect_uris: Vec<String>,
    /// The public base URL: our callbacks are under it.
    pub public_base: String,
    /// IdentSphere runs on plain HTTP on a loopback address (development and tests): an organization's
    /// connection may then point at a loopback issuer.
    pub loopback: bool,
}

/// The sign-in flows over one server's stores, keys and actors.
#[derive(Clone)]
pub struct Service {
    pub(super) stores: Stores,
    pub(super) hasher: PasswordHasher,
    pub(super) tokens: Tokens,
    pub(super) registry: Registry,
    pub(super) clock: Clock,
    pub(super) refresh_ttl: Duration,
    pub(super) grace: Duration,
    pub(super) reauthentication: Duration,
    pub(super) limits: RateLimits,
    pub(super) allow_weak_hashes: bool,
    pub(super) collaborators: Collaborators,
    pub(super) sessions: SessionCache,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("tokens", &self.tokens).finish_non_exhaustive()
    }
}

impl Service {
    /// Puts the pieces together.
    #[must_use]
    pub fn new(
        stores: Stores,
        hasher: PasswordHasher,
        tokens: Tokens,
        registry: Registry,
        clock: Clock,
        settings: Settings,
        collaborators: Collaborators,
    ) -> Self {
        Self {
            stores,
            hasher,
            tokens,
            registry,
            clock,
            refresh_ttl: settings.refresh,
            grace: settings.grace,
            reauthentication: settings.reauthentication,
            limits: settings.limits,
            allow_weak_hashes: settings.allow_weak_hashes,
            collaborators,
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
}

/// A claim's Unix time as a time.
pub(super) fn unix_time(seconds: i64) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::from_unix_timestamp(seconds).map_err(|e| ApiError::Internal(e.into()))
}

/// The bounded label of an outcome: `success`, or the error's catalog code.
pub(super) fn outcome<T>(result: &Result<T, ApiError>) -> &'static str {
    result.as_ref().map_or_else(|err| err.catalog().0, |_| "success")
}

/// Counts a token verification by its result and passes it on.
pub(super) fn verified<T>(token: &'static str, result: Result<T, ApiError>) -> Result<T, ApiError> {
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
