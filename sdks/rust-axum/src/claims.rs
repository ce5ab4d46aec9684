//! The claims of an IdentSphere access token, as the API reference (docs/api.md) lists them.
//!
//! `sub`, `exp`, `iat` and `typ` are required; every other claim is optional, so a token from a newer
//! server that drops or adds a claim still deserializes. Values this version does not know
//! (a new `aal` or `auth_method`) become `Unknown` rather than a refusal.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What kind of token this is (claim `typ`). Only [`TokenType::Access`] is accepted as a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TokenType {
    /// An access token: the only kind the extractors accept.
    Access,
    /// A refresh token: opaque to clients, verified only by IdentSphere.
    Refresh,
    /// A token that completes a sign-in with a second factor.
    Mfa,
    /// A kind this version of the SDK does not know.
    #[serde(other)]
    Unknown,
}

/// Authentication assurance level (claim `aal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Aal {
    /// One factor (a password, or a social sign-in).
    Aal1,
    /// A second factor was verified in this session.
    Aal2,
    /// A level this version of the SDK does not know; never treated as `aal2`.
    #[serde(other)]
    Unknown,
}

/// How the user originally authenticated (claim `auth_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// Email and password.
    Password,
    /// A passkey (WebAuthn).
    Passkey,
    /// A social OAuth provider.
    SocialOauth,
    /// A method this version of the SDK does not know.
    #[serde(other)]
    Unknown,
}

/// The verified claims of an access token.
///
/// Handlers get this from the extractors ([`crate::Authenticated`] and friends) only after the
/// signature, issuer, type, expiry and revocation checks have passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// The token type; always [`TokenType::Access`] once verified.
    pub typ: TokenType,
    /// The organization of this session.
    #[serde(default)]
    pub org: Option<Uuid>,
    /// The issuer: IdentSphere's public base URL (checked against the configured issuer).
    #[serde(default)]
    pub iss: Option<String>,
    /// The user's email, when known.
    #[serde(default)]
    pub email: Option<String>,
    /// Unique token id: what a `jti` revocation names.
    #[serde(default)]
    pub jti: Option<Uuid>,
    /// Session family id, the same across refreshes: what a `sid` revocation names.
    #[serde(default)]
    pub sid: Option<Uuid>,
    /// Assurance level of the session.
    #[serde(default)]
    pub aal: Option<Aal>,
    /// When the user originally authenticated, Unix seconds.
    #[serde(default)]
    pub auth_time: Option<i64>,
    /// How the user originally authenticated.
    #[serde(default)]
    pub auth_method: Option<AuthMethod>,
}

impl Claims {
    /// Whether a second factor was verified in this session (`aal: aal2`).
    #[must_use]
    pub fn is_aal2(&self) -> bool {
        self.aal == Some(Aal::Aal2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_four_required_claims_are_required() {
        let sub = Uuid::new_v4();
        let minimal: Claims =
            serde_json::from_value(serde_json::json!({"sub": sub, "exp": 2, "iat": 1, "typ": "access"})).unwrap();
        assert_eq!((minimal.sub, minimal.typ, minimal.org, minimal.aal), (sub, TokenType::Access, None, None));
        for missing in ["sub", "exp", "iat", "typ"] {
            let mut value = serde_json::json!({"sub": sub, "exp": 2, "iat": 1, "typ": "access"});
            value.as_object_mut().unwrap().remove(missing);
            assert!(serde_json::from_value::<Claims>(value).is_err(), "{missing} is required");
        }
    }

    #[test]
    fn the_full_claim_set_is_typed_and_unknown_values_are_not_aal2() {
        let value = serde_json::json!({
            "sub": Uuid::new_v4(), "org": Uuid::new_v4(), "iss": "https://auth.example.com", "exp": 2, "iat": 1,
            "typ": "access", "email": "a@b.c", "jti": Uuid::new_v4(), "sid": Uuid::new_v4(), "aal": "aal2",
            "auth_time": 1, "auth_method": "social_oauth"
        });
        let claims: Claims = serde_json::from_value(value).unwrap();
        assert!(claims.is_aal2());
        assert_eq!(claims.auth_method, Some(AuthMethod::SocialOauth));
        let future: Claims = serde_json::from_value(
            serde_json::json!({"sub": Uuid::new_v4(), "exp": 2, "iat": 1, "typ": "access", "aal": "aal3"}),
        )
        .unwrap();
        assert_eq!(future.aal, Some(Aal::Unknown));
        assert!(!future.is_aal2());
    }
}
