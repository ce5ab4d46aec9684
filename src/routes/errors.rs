//! The errors routes have in common, for the routes' error lists.

use crate::error::ApiError;
use crate::http::json::BODY_LIMIT;

/// Any route: a bug, a handler's panic included, is an enveloped `500`.
pub(crate) fn bug() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("a bug"))
}

/// A route that reads a backing store: `503` when it is unreachable, and `500`.
pub(crate) fn server() -> [ApiError; 2] {
    [ApiError::ServiceUnavailable(anyhow::anyhow!("a store is unreachable")), bug()]
}

/// A route that reads a JSON body: malformed, unknown or missing fields, too large, not JSON.
pub(crate) fn json_body() -> Vec<ApiError> {
    vec![
        ApiError::InvalidRequest { message: String::new(), param: None },
        ApiError::PayloadTooLarge { limit: BODY_LIMIT },
        ApiError::UnsupportedMediaType,
    ]
}

/// A route that needs a live session (an access token, checked against the session record): its
/// credential errors and the store's.
pub(crate) fn live_session() -> Vec<ApiError> {
    let mut all = vec![
        ApiError::TokenMissing,
        ApiError::TokenInvalid,
        ApiError::TokenExpired,
        ApiError::TokenRevoked,
        ApiError::AccountDisabled,
        ApiError::NotAMember,
    ];
    all.extend(server());
    all
}

/// A state-changing route that needs a live session: the CSRF rule applies to its cookie.
pub(crate) fn live_session_unsafe() -> Vec<ApiError> {
    let mut all = live_session();
    all.push(ApiError::CsrfRejected);
    all
}

/// A route under an abuse limit.
pub(crate) fn rate_limited() -> ApiError {
    ApiError::RateLimited { retry_after: 1 }
}

/// The errors of routes on one organization: a user acts from a session in it, under its policy.
pub(crate) fn organization() -> Vec<ApiError> {
    let mut all = live_session();
    all.extend([
        ApiError::OrganizationNotFound,
        ApiError::WrongOrganization,
        ApiError::InsufficientAal,
        ApiError::AuthMethodNotAllowed,
    ]);
    all
}
