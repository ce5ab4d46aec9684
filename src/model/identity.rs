//! Sign-in provider identities, and the provider flows in flight.

use time::OffsetDateTime;
use uuid::Uuid;

/// A user's identity at a sign-in provider: `(provider, subject)` names one user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Our id for it (the API's `id`).
    pub id: Uuid,
    /// Whose it is.
    pub user_id: Uuid,
    /// A platform provider's name, or `sso:<connection id>`.
    pub provider: String,
    /// The provider's id for the user.
    pub subject: String,
    /// The address the provider gave at the last sign-in.
    pub email: Option<String>,
    /// When it was linked.
    pub created_at: OffsetDateTime,
    /// Its last sign-in.
    pub last_used_at: Option<OffsetDateTime>,
}

/// A provider sign-in between the redirect to the provider and its callback.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OAuthFlow {
    /// The provider's path name.
    pub provider: String,
    /// Where the browser goes back; one of the allowed redirect URIs.
    pub redirect_uri: String,
    /// The organization to sign in to, as asked.
    pub organization: Option<String>,
    /// Our PKCE verifier with the provider.
    pub verifier: String,
    /// The ID token's expected nonce.
    pub nonce: String,
    /// SHA-256 of the value the browser that started the flow holds in its cookie.
    pub browser: [u8; 32],
    /// The app's PKCE challenge, for a sign-in collected with a one-time code.
    pub app_challenge: Option<String>,
    /// The user linking this identity to their account, when it is a link.
    pub link_user: Option<Uuid>,
}

/// A sign-in finished at the callback that the app collects with its one-time code
/// (`POST /v1/auth/oauth/token`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PendingSignIn {
    /// Who signed in.
    pub user_id: Uuid,
    /// Where.
    pub org_id: Uuid,
    /// The SSO connection it came through, if it did.
    #[serde(default)]
    pub via: Option<Uuid>,
    /// The app's PKCE challenge; without one, the browser binding proves the collector.
    pub app_challenge: Option<String>,
    /// SHA-256 of the browser binding of the flow.
    pub browser: [u8; 32],
}
