//! The API's errors: one enum, one row of the catalog per variant (code, status, type); `http::error`
//! turns one into the response envelope, exactly once.
//!
//! Lower layers have their own small errors and convert with `From`. An `Internal` error is opaque to
//! the client; its cause is logged under the request id by the response middleware.

use actix_web::http::StatusCode;
use identsphere_actors::{FamilyError, Standing, StoreError};

/// Every error the API can answer with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, wrong type, missing or unknown field.
    #[error("{message}")]
    InvalidRequest {
        /// What is wrong, for a human.
        message: String,
        /// The offending field, when there is one.
        param: Option<String>,
    },
    /// The email fails validation.
    #[error("{0}")]
    InvalidEmail(&'static str),
    /// The password fails the policy.
    #[error("{message}")]
    WeakPassword {
        /// Which rule failed.
        message: &'static str,
        /// The field.
        param: &'static str,
    },
    /// Register with an email that already has an account.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Wrong password or unknown email: one message for both.
    #[error("wrong password or unknown email")]
    InvalidCredentials,
    /// No bearer token and no cookie where one is needed.
    #[error("no token was sent")]
    TokenMissing,
    /// Malformed, bad signature, unknown `kid`, wrong `alg`, `typ` or `iss`.
    #[error("the token is not valid")]
    TokenInvalid,
    /// `exp` has passed.
    #[error("the token has expired")]
    TokenExpired,
    /// The token's `jti` is denylisted or its session family was ended.
    #[error("the token has been revoked")]
    TokenRevoked,
    /// A rotated refresh token came back after the grace window; the family is revoked.
    #[error("this refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    /// A wrong, reused or unknown second-factor code.
    #[error("the code is wrong or was already used")]
    MfaInvalidCode,
    /// The action needs an `aal2` session: verify a second factor first (step-up).
    #[error("this action needs a session verified with a second factor")]
    InsufficientAal,
    /// A credential change from a session that did not authenticate recently: sign in again (or send the
    /// password where the route takes one).
    #[error("this action needs a recent sign-in: sign in again, or send your password")]
    ReauthenticationRequired,
    /// Acting on an organization from a session of another one: switch to it first.
    #[error("this session belongs to another organization: switch to this one first (refresh with `organization`)")]
    WrongOrganization,
    /// Enrolling a second factor while one is active: remove it first.
    #[error("a second factor is already active; remove it first")]
    MfaAlreadyEnrolled,
    /// Confirming or removing a second factor that is not there.
    #[error("no second factor is enrolled or waiting for confirmation")]
    MfaNotEnrolled,
    /// A passkey that cannot be verified: unknown or deleted, of another user, from an origin or for a
    /// relying party that is not ours, a bad signature, or a signature counter that went back (a clone).
    #[error("the passkey could not be verified")]
    PasskeyInvalid,
    /// A WebAuthn ceremony that is unknown, expired (5 minutes), already used, or for another step.
    #[error("this passkey ceremony is unknown, has expired or was already used: ask for new options")]
    CeremonyExpired,
    /// Registering a passkey that is registered already.
    #[error("this passkey is already registered")]
    PasskeyExists,
    /// No such passkey of the user.
    #[error("no such passkey")]
    PasskeyNotFound,
    /// Deleting the last passkey of a user with an organization that allows no other sign-in.
    #[error("this is your last passkey and one of your organizations allows only passkeys: register another first")]
    LastSignInMethod,
    /// The server has no WebAuthn relying party (its public base URL is an IP address).
    #[error("passkeys are not configured on this server")]
    PasskeysUnavailable,
    /// A `redirect_uri` that is not one of `IDENTSPHERE_ALLOWED_REDIRECT_URIS`.
    #[error("this redirect_uri is not allowed")]
    RedirectUriNotAllowed,
    /// A provider callback whose `state` is unknown, used, expired, for another provider, or from a browser that
    /// did not start the flow.
    #[error("this sign-in is unknown, has expired, was already used or was started in another browser: start again")]
    OAuthStateInvalid,
    /// A one-time sign-in code that is unknown, used or expired, or a `code_verifier` that does not match.
    #[error("this sign-in code is invalid, has expired or was already used")]
    OAuthCodeInvalid,
    /// The provider refused, or answered with something that fails validation (the ID token's signature,
    /// issuer, audience, expiry or nonce).
    #[error("the sign-in provider's answer could not be verified")]
    OAuthProviderError,
    /// A new provider identity without an address the provider asserts verified.
    #[error("the sign-in provider did not verify this account's email address")]
    OAuthEmailUnverified,
    /// No such sign-in provider.
    #[error("no such sign-in provider")]
    ProviderNotFound,
    /// No such identity of the user.
    #[error("no such identity")]
    IdentityNotFound,
    /// Linking a provider identity that belongs to another account.
    #[error("this identity is linked to another account")]
    IdentityTaken,
    /// The sign-in provider does not answer.
    #[error("the sign-in provider is unavailable, retry shortly")]
    OAuthProviderUnavailable,
    /// The organization requires addresses of this domain to sign in through its SSO connection.
    #[error("this organization requires you to sign in through its single sign-on")]
    SsoRequired,
    /// No such SSO connection, or none for the address's domain.
    #[error("no such single sign-on connection")]
    ConnectionNotFound,
    /// A domain verified for another organization's connection.
    #[error("this domain is verified for another single sign-on connection")]
    DomainTaken,
    /// An email-verification or password-reset link that is unknown, expired or already used.
    #[error("this link is invalid, has expired or was already used")]
    LinkInvalid,
    /// The user is not a member of the organization asked for.
    #[error("you are not a member of this organization")]
    NotAMember,
    /// The member's role does not allow the action.
    #[error("your role in this organization does not allow this")]
    InsufficientRole,
    /// The slug belongs to another organization.
    #[error("this slug is taken")]
    SlugTaken,
    /// The change would leave the organization without an owner.
    #[error("an organization keeps at least one owner")]
    LastOwner,
    /// No such member in the organization.
    #[error("no such member")]
    MemberNotFound,
    /// No such session of the user.
    #[error("no such session")]
    SessionNotFound,
    /// An invitation that is unknown, expired, revoked or used.
    #[error("this invitation is invalid, has expired, was revoked or was already used")]
    InvitationInvalid,
    /// An invitation for another email than the account's.
    #[error("this invitation is for another email address")]
    InvitationEmailMismatch,
    /// No such waiting invitation in the organization.
    #[error("no such invitation")]
    InvitationNotFound,
    /// No such live API key of the organization.
    #[error("no such API key")]
    ApiKeyNotFound,
    /// The user or organization is disabled.
    #[error("this account or organization is disabled")]
    AccountDisabled,
    /// The organization does not allow the sign-in method of this attempt or session.
    #[error("this organization does not allow this sign-in method")]
    AuthMethodNotAllowed,
    /// The organization does not take sign-ups of this email.
    #[error("this organization does not accept sign-ups")]
    SignupNotAllowed,
    /// A cookie-authenticated unsafe request from an origin that is not allowed.
    #[error("cross-site request refused")]
    CsrfRejected,
    /// No such organization.
    #[error("no such organization")]
    OrganizationNotFound,
    /// No such route.
    #[error("no such route")]
    NotFound,
    /// The route exists; the method does not.
    #[error("method not allowed on this route")]
    MethodNotAllowed {
        /// The methods the route takes, for the `Allow` header.
        allow: &'static str,
    },
    /// Body over the limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A body that is not `application/json`.
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    /// Too many attempts; retry after the given number of seconds.
    #[error("too many attempts; retry later")]
    RateLimited {
        /// Seconds until an attempt is allowed again (`Retry-After`).
        retry_after: u64,
    },
    /// A backing store is unreachable.
    #[error("a backing service is unavailable, retry shortly")]
    ServiceUnavailable(#[source] anyhow::Error),
    /// A bug. Details only in the server log.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// An `invalid_request` naming the offending field.
    pub fn invalid_field(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest { message: message.into(), param: Some(param.into()) }
    }

    /// The request field at fault, when there is one.
    #[must_use]
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { param, .. } => param.as_deref(),
            Self::InvalidEmail(_) => Some("email"),
            Self::WeakPassword { param, .. } => Some(param),
            _ => None,
        }
    }

    /// The catalog row: stable code, HTTP status and type.
    #[must_use]
    pub fn catalog(&self) -> (&'static str, StatusCode, &'static str) {
        use StatusCode as S;
        const REQ: &str = "invalid_request_error";
        const AUTHN: &str = "authentication_error";
        const PERM: &str = "permission_error";
        match self {
            Self::InvalidRequest { .. } => ("invalid_request", S::BAD_REQUEST, REQ),
            Self::InvalidEmail(_) => ("invalid_email", S::UNPROCESSABLE_ENTITY, REQ),
            Self::WeakPassword { .. } => ("weak_password", S::UNPROCESSABLE_ENTITY, REQ),
            Self::EmailTaken => ("email_taken", S::CONFLICT, "conflict_error"),
            Self::InvalidCredentials => ("invalid_credentials", S::UNAUTHORIZED, AUTHN),
            Self::TokenMissing => ("token_missing", S::UNAUTHORIZED, AUTHN),
            Self::TokenInvalid => ("token_invalid", S::UNAUTHORIZED, AUTHN),
            Self::TokenExpired => ("token_expired", S::UNAUTHORIZED, AUTHN),
            Self::TokenRevoked => ("token_revoked", S::UNAUTHORIZED, AUTHN),
            Self::RefreshTokenReused => ("refresh_token_reused", S::UNAUTHORIZED, AUTHN),
            Self::MfaInvalidCode => ("mfa_invalid_code", S::UNAUTHORIZED, AUTHN),
            Self::InsufficientAal => ("insufficient_aal", S::FORBIDDEN, PERM),
            Self::ReauthenticationRequired => ("reauthentication_required", S::FORBIDDEN, PERM),
            Self::WrongOrganization => ("wrong_organization", S::FORBIDDEN, PERM),
            Self::MfaAlreadyEnrolled => ("mfa_already_enrolled", S::CONFLICT, "conflict_error"),
            Self::MfaNotEnrolled => ("mfa_not_enrolled", S::CONFLICT, "conflict_error"),
            Self::PasskeyInvalid => ("passkey_invalid", S::UNAUTHORIZED, AUTHN),
            Self::CeremonyExpired => ("ceremony_expired", S::BAD_REQUEST, REQ),
            Self::PasskeyExists => ("passkey_exists", S::CONFLICT, "conflict_error"),
            Self::PasskeyNotFound => ("passkey_not_found", S::NOT_FOUND, REQ),
            Self::LastSignInMethod => ("last_sign_in_method", S::CONFLICT, "conflict_error"),
            Self::PasskeysUnavailable => ("passkeys_unavailable", S::NOT_FOUND, REQ),
            Self::RedirectUriNotAllowed => ("redirect_uri_not_allowed", S::BAD_REQUEST, REQ),
            Self::OAuthStateInvalid => ("oauth_state_invalid", S::BAD_REQUEST, REQ),
            Self::OAuthCodeInvalid => ("oauth_code_invalid", S::BAD_REQUEST, REQ),
            Self::OAuthProviderError => ("oauth_provider_error", S::UNAUTHORIZED, AUTHN),
            Self::OAuthEmailUnverified => ("oauth_email_unverified", S::FORBIDDEN, PERM),
            Self::ProviderNotFound => ("provider_not_found", S::NOT_FOUND, REQ),
            Self::IdentityNotFound => ("identity_not_found", S::NOT_FOUND, REQ),
            Self::IdentityTaken => ("identity_taken", S::CONFLICT, "conflict_error"),
            Self::OAuthProviderUnavailable => ("oauth_provider_unavailable", S::SERVICE_UNAVAILABLE, "api_error"),
            Self::SsoRequired => ("sso_required", S::FORBIDDEN, PERM),
            Self::ConnectionNotFound => ("connection_not_found", S::NOT_FOUND, REQ),
            Self::DomainTaken => ("domain_taken", S::CONFLICT, "conflict_error"),
            Self::LinkInvalid => ("link_invalid", S::BAD_REQUEST, REQ),
            Self::NotAMember => ("not_a_member", S::FORBIDDEN, PERM),
            Self::InsufficientRole => ("insufficient_role", S::FORBIDDEN, PERM),
            Self::SlugTaken => ("slug_taken", S::CONFLICT, "conflict_error"),
            Self::LastOwner => ("last_owner", S::CONFLICT, "conflict_error"),
            Self::MemberNotFound => ("member_not_found", S::NOT_FOUND, REQ),
            Self::SessionNotFound => ("session_not_found", S::NOT_FOUND, REQ),
            Self::InvitationInvalid => ("invitation_invalid", S::BAD_REQUEST, REQ),
            Self::InvitationEmailMismatch => ("invitation_email_mismatch", S::FORBIDDEN, PERM),
            Self::InvitationNotFound => ("invitation_not_found", S::NOT_FOUND, REQ),
            Self::ApiKeyNotFound => ("api_key_not_found", S::NOT_FOUND, REQ),
            Self::AccountDisabled => ("account_disabled", S::FORBIDDEN, PERM),
            Self::AuthMethodNotAllowed => ("auth_method_not_allowed", S::FORBIDDEN, PERM),
            Self::SignupNotAllowed => ("signup_not_allowed", S::FORBIDDEN, PERM),
            Self::CsrfRejected => ("csrf_rejected", S::FORBIDDEN, PERM),
            Self::OrganizationNotFound => ("organization_not_found", S::NOT_FOUND, REQ),
            Self::NotFound => ("not_found", S::NOT_FOUND, REQ),
            Self::MethodNotAllowed { .. } => ("method_not_allowed", S::METHOD_NOT_ALLOWED, REQ),
            Self::PayloadTooLarge { .. } => ("payload_too_large", S::PAYLOAD_TOO_LARGE, REQ),
            Self::UnsupportedMediaType => ("unsupported_media_type", S::UNSUPPORTED_MEDIA_TYPE, REQ),
            Self::RateLimited { .. } => ("rate_limited", S::TOO_MANY_REQUESTS, "rate_limit_error"),
            Self::ServiceUnavailable(_) => ("service_unavailable", S::SERVICE_UNAVAILABLE, "api_error"),
            Self::Internal(_) => ("internal_error", S::INTERNAL_SERVER_ERROR, "api_error"),
        }
    }

    /// One error of each variant, in catalog order: every row of the catalog, for the API description
    /// (`crate::app::openapi`). A variant missing here fails the `openapi` unit tests.
    #[must_use]
    pub fn every_kind() -> Vec<Self> {
        vec![
            Self::InvalidRequest { message: String::new(), param: None },
            Self::InvalidEmail(""),
            Self::WeakPassword { message: "", param: "password" },
            Self::EmailTaken,
            Self::InvalidCredentials,
            Self::TokenMissing,
            Self::TokenInvalid,
            Self::TokenExpired,
            Self::TokenRevoked,
            Self::RefreshTokenReused,
            Self::MfaInvalidCode,
            Self::InsufficientAal,
            Self::ReauthenticationRequired,
            Self::WrongOrganization,
            Self::MfaAlreadyEnrolled,
            Self::MfaNotEnrolled,
            Self::PasskeyInvalid,
            Self::CeremonyExpired,
            Self::PasskeyExists,
            Self::PasskeyNotFound,
            Self::LastSignInMethod,
            Self::PasskeysUnavailable,
            Self::RedirectUriNotAllowed,
            Self::OAuthStateInvalid,
            Self::OAuthCodeInvalid,
            Self::OAuthProviderError,
            Self::OAuthEmailUnverified,
            Self::ProviderNotFound,
            Self::IdentityNotFound,
            Self::IdentityTaken,
            Self::OAuthProviderUnavailable,
            Self::SsoRequired,
            Self::ConnectionNotFound,
            Self::DomainTaken,
            Self::LinkInvalid,
            Self::NotAMember,
            Self::InsufficientRole,
            Self::SlugTaken,
            Self::LastOwner,
            Self::MemberNotFound,
            Self::SessionNotFound,
            Self::InvitationInvalid,
            Self::InvitationEmailMismatch,
            Self::InvitationNotFound,
            Self::ApiKeyNotFound,
            Self::AccountDisabled,
            Self::AuthMethodNotAllowed,
            Self::SignupNotAllowed,
            Self::CsrfRejected,
            Self::OrganizationNotFound,
            Self::NotFound,
            Self::MethodNotAllowed { allow: "" },
            Self::PayloadTooLarge { limit: 0 },
            Self::UnsupportedMediaType,
            Self::RateLimited { retry_after: 0 },
            Self::ServiceUnavailable(anyhow::anyhow!("documentation")),
            Self::Internal(anyhow::anyhow!("documentation")),
        ]
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Self::ServiceUnavailable(err.into()),
            StoreError::Conflict(_) | StoreError::Internal(_) => Self::Internal(err.into()),
        }
    }
}

impl From<FamilyError> for ApiError {
    fn from(err: FamilyError) -> Self {
        match err {
            FamilyError::NotFound => Self::TokenInvalid,
            FamilyError::Reused => Self::RefreshTokenReused,
            FamilyError::Revoked => Self::TokenRevoked,
            FamilyError::Expired => Self::TokenExpired,
            FamilyError::Refused(Standing::Disabled | Standing::Allowed) => Self::AccountDisabled,
            FamilyError::Refused(Standing::Aal2Required) => Self::InsufficientAal,
            FamilyError::Refused(Standing::MethodNotAllowed) => Self::AuthMethodNotAllowed,
            FamilyError::Store(store) => store.into(),
            FamilyError::Unavailable => Self::ServiceUnavailable(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalog of `docs/api.md`, row by row: code, status, type. A change here is a breaking change.
    #[test]
    fn every_variant_maps_to_its_catalog_row() {
        let cases: Vec<(ApiError, &str, u16, &str)> = vec![
            (ApiError::invalid_field("x", "bad"), "invalid_request", 400, "invalid_request_error"),
            (ApiError::InvalidEmail("bad"), "invalid_email", 422, "invalid_request_error"),
            (
                ApiError::WeakPassword { message: "bad", param: "password" },
                "weak_password",
                422,
                "invalid_request_error",
            ),
            (ApiError::EmailTaken, "email_taken", 409, "conflict_error"),
            (ApiError::InvalidCredentials, "invalid_credentials", 401, "authentication_error"),
            (ApiError::TokenMissing, "token_missing", 401, "authentication_error"),
            (ApiError::TokenInvalid, "token_invalid", 401, "authentication_error"),
            (ApiError::TokenExpired, "token_expired", 401, "authentication_error"),
            (ApiError::TokenRevoked, "token_revoked", 401, "authentication_error"),
            (ApiError::RefreshTokenReused, "refresh_token_reused", 401, "authentication_error"),
            (ApiError::MfaInvalidCode, "mfa_invalid_code", 401, "authentication_error"),
            (ApiError::InsufficientAal, "insufficient_aal", 403, "permission_error"),
            (ApiError::ReauthenticationRequired, "reauthentication_required", 403, "permission_error"),
            (ApiError::WrongOrganization, "wrong_organization", 403, "permission_error"),
            (ApiError::MfaAlreadyEnrolled, "mfa_already_enrolled", 409, "conflict_error"),
            (ApiError::MfaNotEnrolled, "mfa_not_enrolled", 409, "conflict_error"),
            (ApiError::PasskeyInvalid, "passkey_invalid", 401, "authentication_error"),
            (ApiError::CeremonyExpired, "ceremony_expired", 400, "invalid_request_error"),
            (ApiError::PasskeyExists, "passkey_exists", 409, "conflict_error"),
            (ApiError::PasskeyNotFound, "passkey_not_found", 404, "invalid_request_error"),
            (ApiError::LastSignInMethod, "last_sign_in_method", 409, "conflict_error"),
            (ApiError::PasskeysUnavailable, "passkeys_unavailable", 404, "invalid_request_error"),
            (ApiError::RedirectUriNotAllowed, "redirect_uri_not_allowed", 400, "invalid_request_error"),
            (ApiError::OAuthStateInvalid, "oauth_state_invalid", 400, "invalid_request_error"),
            (ApiError::OAuthCodeInvalid, "oauth_code_invalid", 400, "invalid_request_error"),
            (ApiError::OAuthProviderError, "oauth_provider_error", 401, "authentication_error"),
            (ApiError::OAuthEmailUnverified, "oauth_email_unverified", 403, "permission_error"),
            (ApiError::ProviderNotFound, "provider_not_found", 404, "invalid_request_error"),
            (ApiError::IdentityNotFound, "identity_not_found", 404, "invalid_request_error"),
            (ApiError::IdentityTaken, "identity_taken", 409, "conflict_error"),
            (ApiError::OAuthProviderUnavailable, "oauth_provider_unavailable", 503, "api_error"),
            (ApiError::SsoRequired, "sso_required", 403, "permission_error"),
            (ApiError::ConnectionNotFound, "connection_not_found", 404, "invalid_request_error"),
            (ApiError::DomainTaken, "domain_taken", 409, "conflict_error"),
            (ApiError::LinkInvalid, "link_invalid", 400, "invalid_request_error"),
            (ApiError::NotAMember, "not_a_member", 403, "permission_error"),
            (ApiError::InsufficientRole, "insufficient_role", 403, "permission_error"),
            (ApiError::SlugTaken, "slug_taken", 409, "conflict_error"),
            (ApiError::LastOwner, "last_owner", 409, "conflict_error"),
            (ApiError::MemberNotFound, "member_not_found", 404, "invalid_request_error"),
            (ApiError::SessionNotFound, "session_not_found", 404, "invalid_request_error"),
            (ApiError::InvitationInvalid, "invitation_invalid", 400, "invalid_request_error"),
            (ApiError::InvitationEmailMismatch, "invitation_email_mismatch", 403, "permission_error"),
            (ApiError::InvitationNotFound, "invitation_not_found", 404, "invalid_request_error"),
            (ApiError::ApiKeyNotFound, "api_key_not_found", 404, "invalid_request_error"),
            (ApiError::AccountDisabled, "account_disabled", 403, "permission_error"),
            (ApiError::AuthMethodNotAllowed, "auth_method_not_allowed", 403, "permission_error"),
            (ApiError::SignupNotAllowed, "signup_not_allowed", 403, "permission_error"),
            (ApiError::CsrfRejected, "csrf_rejected", 403, "permission_error"),
            (ApiError::OrganizationNotFound, "organization_not_found", 404, "invalid_request_error"),
            (ApiError::NotFound, "not_found", 404, "invalid_request_error"),
            (ApiError::MethodNotAllowed { allow: "GET" }, "method_not_allowed", 405, "invalid_request_error"),
            (ApiError::PayloadTooLarge { limit: 1 }, "payload_too_large", 413, "invalid_request_error"),
            (ApiError::UnsupportedMediaType, "unsupported_media_type", 415, "invalid_request_error"),
            (ApiError::RateLimited { retry_after: 1 }, "rate_limited", 429, "rate_limit_error"),
            (ApiError::ServiceUnavailable(anyhow::anyhow!("down")), "service_unavailable", 503, "api_error"),
            (ApiError::Internal(anyhow::anyhow!("bug")), "internal_error", 500, "api_error"),
        ];
        for (err, code, status, kind) in cases {
            let (c, s, k) = err.catalog();
            assert_eq!((c, s.as_u16(), k), (code, status, kind), "{err:?}");
        }
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let err = ApiError::Internal(anyhow::anyhow!("relation users does not exist; password=hunter2"));
        assert_eq!(err.to_string(), "internal error");
        let err = ApiError::ServiceUnavailable(anyhow::anyhow!("redis://:secret@host refused"));
        assert_eq!(err.to_string(), "a backing service is unavailable, retry shortly");
    }
}
