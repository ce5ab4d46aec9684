//! `/v1/auth/email/*` and `/v1/auth/password*`: email verification, password reset by mail, password
//! change.
//!
//! Public: verifying an email and resetting a password (the link's token authenticates), asking for a
//! reset (always `202`, whether the email has an account or not). Resending a verification and changing
//! the password need an access token (`Principal`); a user with a second factor changes the password
//! only from an `aal2` session.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::client_ip::client_ip;
use crate::http::json::ApiJson;
use crate::model::{Email, Password};
use crate::routes::errors;
use crate::service::Principal;

/// The token of a link. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkBody {
    /// The `token` query parameter of the link in the mail.
    #[schema(max_length = 128)]
    token: String,
}

/// The email that forgot its password. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ada@example.com"})))]
pub(crate) struct ForgotBody {
    /// Trimmed, then validated (`invalid_email`).
    #[schema(format = Email)]
    email: String,
}

/// A reset link's token and the new password. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetBody {
    /// The `token` query parameter of the reset link.
    #[schema(max_length = 128)]
    token: String,
    /// The new password: at least 8 characters and at most 256 bytes, not a common password.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

/// The current password and a new one. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeBody {
    /// The password in use.
    current_password: String,
    /// The new password: at least 8 characters and at most 256 bytes, not a common password.
    #[schema(min_length = 8, max_length = 256)]
    new_password: String,
}

/// A request that may send mail was taken.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct Accepted {
    /// What happens next, for humans.
    message: &'static str,
}

fn ip(req: &HttpRequest, state: &AppState) -> Option<String> {
    client_ip(req, &state.config.trusted_proxies, state.config.client_ip_header).map(|ip| ip.to_string())
}

/// The errors of `verify_email`.
pub(crate) fn link_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([ApiError::LinkInvalid, errors::rate_limited()]);
    all.extend(errors::server());
    all
}

/// `POST /v1/auth/email/verify` — public: the link's token authenticates. Marks the address verified.
#[utoipa::path(
    post,
    path = "/v1/auth/email/verify",
    tag = "account",
    summary = "Verify an email address with the link's token",
    description = "The link is sent at registration (and on resend) and works once, for 24 hours, for the address \
                   it was sent to. Abuse limit: link redemptions per client address.",
    request_body = LinkBody,
    responses((status = 204, description = "The address is verified (`email_verified: true`).")),
)]
pub(crate) async fn verify_email(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LinkBody>,
) -> Result<HttpResponse, ApiError> {
    state.service.verify_email(&body.0.token, ip(&req, &state).as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `resend_verification`.
pub(crate) fn resend_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.push(errors::rate_limited());
    all
}

/// `POST /v1/auth/email/verify/resend` — requires an access token. Mails a new verification link
/// unless the address is verified.
#[utoipa::path(
    post,
    path = "/v1/auth/email/verify/resend",
    tag = "account",
    summary = "Send the verification link again",
    description = "Nothing is sent when the address is verified already. Abuse limits: mails per client address \
                   and per account.",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 202, description = "Taken: a link is on its way unless the address is verified.",
               body = Accepted)),
)]
pub(crate) async fn resend_verification(
    state: web::Data<AppState>,
    req: HttpRequest,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    state.service.resend_verification(&principal, ip(&req, &state).as_deref()).await?;
    Ok(HttpResponse::Accepted().json(Accepted { message: "a verification link is on its way" }))
}

/// The errors of `forgot_password`.
pub(crate) fn forgot_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([ApiError::InvalidEmail(""), errors::rate_limited()]);
    all.extend(errors::server());
    all
}

/// `POST /v1/auth/password/forgot` — public. Mails a reset link if the email has an account; answers
/// `202` either way, in the same time.
#[utoipa::path(
    post,
    path = "/v1/auth/password/forgot",
    tag = "account",
    summary = "Ask for a password-reset link",
    description = "Always `202`, with the same body and timing whether or not the email has an account: the \
                   lookup and the mail happen after the answer. The link works once, for 1 hour. Abuse limits: \
                   requests per client address and per email.",
    request_body = ForgotBody,
    responses((status = 202, description = "Taken: if the email has an account, a link is on its way.",
               body = Accepted)),
)]
pub(crate) async fn forgot_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<ForgotBody>,
) -> Result<HttpResponse, ApiError> {
    let email = Email::parse(&body.0.email)?;
    state.service.forgot_password(&email, ip(&req, &state).as_deref()).await?;
    Ok(HttpResponse::Accepted().json(Accepted { message: "if this email has an account, a reset link is on its way" }))
}

/// The errors of `reset_password`.
pub(crate) fn reset_errors() -> Vec<ApiError> {
    let mut all = link_errors();
    all.push(ApiError::WeakPassword { message: "", param: "password" });
    all
}

/// `POST /v1/auth/password/reset` — public: the link's token authenticates. Sets the new password and
/// ends every session of the user.
#[utoipa::path(
    post,
    path = "/v1/auth/password/reset",
    tag = "account",
    summary = "Set a new password with a reset link's token",
    description = "Spends the link (and the user's other reset links) and signs the user out everywhere. Abuse \
                   limit: link redemptions per client address.",
    request_body = ResetBody,
    responses((status = 204, description = "The password is changed; every session of the user has ended.")),
)]
pub(crate) async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<ResetBody>,
) -> Result<HttpResponse, ApiError> {
    let ResetBody { token, password } = body.0;
    let password = Password::parse(password)?;
    state.service.reset_password(&token, password, ip(&req, &state).as_deref()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `change_password`.
pub(crate) fn change_errors() -> Vec<ApiError> {
    let mut all = resend_errors();
    all.extend(errors::json_body());
    all.extend([
        ApiError::InvalidCredentials,
        ApiError::WeakPassword { message: "", param: "password" },
        ApiError::InsufficientAal,
    ]);
    all
}

/// `POST /v1/auth/password` — requires an access token (`aal2` when the user has a second factor).
/// Changes the password and ends the user's other sessions.
#[utoipa::path(
    post,
    path = "/v1/auth/password",
    tag = "account",
    summary = "Change the password",
    description = "Needs the current password (`invalid_credentials` otherwise, counted like a failed sign-in) \
                   and, for a user with a second factor, a session at `aal2` (`insufficient_aal`). Every other \
                   session of the user ends; this one stays.",
    request_body = ChangeBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Changed; the user's other sessions have ended.")),
)]
pub(crate) async fn change_password(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<ChangeBody>,
) -> Result<HttpResponse, ApiError> {
    let ChangeBody { current_password, new_password } = body.0;
    let new_password = Password::parse_field(new_password, "new_password")?;
    state.service.change_password(&principal, current_password, new_password).await?;
    Ok(HttpResponse::NoContent().finish())
}
