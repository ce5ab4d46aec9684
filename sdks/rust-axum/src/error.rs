//! Why a request was refused, mapped once to IdentSphere's error envelope and status codes
//! (`docs/api.md`, "Error catalog"), so an axum app answers exactly as IdentSphere itself would.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A refusal by an extractor or by [`crate::IdentSphere::verify`].
///
/// As a response it is the IdentSphere envelope:
/// `{"error": {"code": "token_invalid", "message": "…", "type": "authentication_error"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer token and no `identsphere_at` cookie (`401 token_missing`).
    #[error("no token was sent")]
    TokenMissing,
    /// Malformed, bad signature, unknown `kid`, wrong `alg`, `typ` or `iss` (`401 token_invalid`).
    #[error("the token is not valid")]
    TokenInvalid,
    /// `exp` has passed (`401 token_expired`).
    #[error("the token has expired")]
    TokenExpired,
    /// The token's `jti` or its session (`sid`) was revoked (`401 token_revoked`).
    #[error("the token has been revoked")]
    TokenRevoked,
    /// The route needs a session with a verified second factor (`403 insufficient_aal`).
    #[error("this action needs a session with a second factor")]
    InsufficientAal,
    /// The token's organization is not the one the route is for (`403 not_a_member`).
    #[error("you are not a member of this organization")]
    NotAMember,
    /// The user or organization is disabled, as IdentSphere answered in online mode
    /// (`403 account_disabled`).
    #[error("this account or organization is disabled")]
    AccountDisabled,
    /// A cookie-authenticated unsafe request from an origin that is not allowed (`403 csrf_rejected`).
    #[error("cross-site request refused")]
    CsrfRejected,
    /// IdentSphere could not be asked and the answer could not be known without it: no signing keys
    /// were ever fetched, or online mode could not reach `/v1/auth/session` (`503 service_unavailable`).
    #[error("the authentication service is unavailable, retry shortly")]
    ServiceUnavailable,
    /// The app is wired wrongly (no [`crate::IdentSphere`] layer, no organization to compare with):
    /// logged, and answered as an opaque `500 internal_error`.
    #[error("internal error")]
    Internal,
}

impl AuthError {
    /// The stable error code of the catalog (`token_invalid`, …).
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.parts().0
    }

    /// The HTTP status this refusal is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.parts().1
    }

    fn parts(&self) -> (&'static str, StatusCode, &'static str) {
        const AUTHN: &str = "authentication_error";
        const PERM: &str = "permission_error";
        match self {
            Self::TokenMissing => ("token_missing", StatusCode::UNAUTHORIZED, AUTHN),
            Self::TokenInvalid => ("token_invalid", StatusCode::UNAUTHORIZED, AUTHN),
            Self::TokenExpired => ("token_expired", StatusCode::UNAUTHORIZED, AUTHN),
            Self::TokenRevoked => ("token_revoked", StatusCode::UNAUTHORIZED, AUTHN),
            Self::InsufficientAal => ("insufficient_aal", StatusCode::FORBIDDEN, PERM),
            Self::NotAMember => ("not_a_member", StatusCode::FORBIDDEN, PERM),
            Self::AccountDisabled => ("account_disabled", StatusCode::FORBIDDEN, PERM),
            Self::CsrfRejected => ("csrf_rejected", StatusCode::FORBIDDEN, PERM),
            Self::ServiceUnavailable => ("service_unavailable", StatusCode::SERVICE_UNAVAILABLE, "api_error"),
            Self::Internal => ("internal_error", StatusCode::INTERNAL_SERVER_ERROR, "api_error"),
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let (code, status, kind) = self.parts();
        let body = serde_json::json!({"error": {"code": code, "message": self.to_string(), "type": kind}});
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        match self {
            Self::ServiceUnavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            Self::TokenMissing | Self::TokenInvalid | Self::TokenExpired | Self::TokenRevoked => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_maps_to_its_row_of_the_catalog() {
        let cases = [
            (AuthError::TokenMissing, "token_missing", 401, "authentication_error"),
            (AuthError::TokenInvalid, "token_invalid", 401, "authentication_error"),
            (AuthError::TokenExpired, "token_expired", 401, "authentication_error"),
            (AuthError::TokenRevoked, "token_revoked", 401, "authentication_error"),
            (AuthError::InsufficientAal, "insufficient_aal", 403, "permission_error"),
            (AuthError::NotAMember, "not_a_member", 403, "permission_error"),
            (AuthError::AccountDisabled, "account_disabled", 403, "permission_error"),
            (AuthError::CsrfRejected, "csrf_rejected", 403, "permission_error"),
            (AuthError::ServiceUnavailable, "service_unavailable", 503, "api_error"),
            (AuthError::Internal, "internal_error", 500, "api_error"),
        ];
        for (error, code, status, kind) in cases {
            let (c, s, k) = error.parts();
            assert_eq!((c, s.as_u16(), k), (code, status, kind), "{error:?}");
        }
    }
}
