//! Passkeys: a user's WebAuthn credentials, and the ceremonies that register and use them.

use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs_core::proto::{AuthenticationState, Credential, RegistrationState};

/// A registered passkey.
#[derive(Clone, Debug)]
pub struct Passkey {
    /// Our id for it (the API's `id`).
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// What the user calls it.
    pub name: String,
    /// When it was registered.
    pub created_at: OffsetDateTime,
    /// Its last sign-in or second factor.
    pub last_used_at: Option<OffsetDateTime>,
    /// The public key, signature counter, flags and transports, as webauthn-rs verifies them. The
    /// credential id inside is unique across users.
    pub credential: Credential,
}

impl Passkey {
    /// Whether the authenticator says the key is backed up (synced across the user's devices).
    #[must_use]
    pub const fn backed_up(&self) -> bool {
        self.credential.backup_state
    }

    /// The transports the browser reported (`internal`, `hybrid`, `usb`…): hints, not security.
    #[must_use]
    pub fn transports(&self) -> Vec<String> {
        self.credential.transports.iter().flatten().map(|t| t.as_ref().to_owned()).filter(|t| t != "unknown").collect()
    }
}

/// What a passkey sign-in or second factor changes on the passkey it used.
#[derive(Clone, Copy, Debug)]
pub struct PasskeyUse {
    /// The passkey.
    pub id: Uuid,
    /// The authenticator's new signature counter (0: it keeps none).
    pub counter: u32,
    /// Its backup state now.
    pub backed_up: bool,
    /// When.
    pub at: OffsetDateTime,
}

/// Who an authentication ceremony was started for.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CeremonyFor {
    /// Anyone: a discoverable sign-in, the passkey names its user.
    SignIn,
    /// The second factor of the sign-in of an mfa token (its `jti`), for its user.
    MfaToken { jti: Uuid, user_id: Uuid },
    /// The step-up of a live session (its `sid`), for its user.
    Session { sid: Uuid, user_id: Uuid },
}

/// A ceremony in flight, kept in the short-lived store for minutes and taken once. One type for every kind,
/// so an id of one kind presented for another is refused, never misread.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Ceremony {
    /// Registering a passkey for `user_id`.
    Registration { user_id: Uuid, name: Option<String>, state: RegistrationState },
    /// Proving a passkey.
    Authentication { bound: CeremonyFor, state: AuthenticationState },
    /// A sign-in at a provider, between the redirect and the callback.
    OAuth(Box<super::OAuthFlow>),
    /// A provider sign-in waiting for the app to collect it with a one-time code.
    OAuthCode(super::PendingSignIn),
}
