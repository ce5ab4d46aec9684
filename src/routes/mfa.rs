//! `/v1/auth/mfa/*`: TOTP enrollment, confirmation and removal, and the second-factor check that
//! completes a sign-in (mfa token) or steps a session up to `aal2`.
//!
//! Removal needs an `aal2` access token (`Principal`). Enrollment, confirmation and `mfa/verify` take an
//! mfa token in the body or, without one, an access token: a sign-in that must enroll a factor has no
//! session yet, only its mfa token.

use actix_web::http::StatusCode;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::http::json::{ApiJson, OptionalJson};
use crate::routes::auth::{TokenResponse, origin, token_response, with_session_cookies};
use crate::routes::errors;
use crate::service::{MfaProof, Principal};
use crate::startup::AppState;

/// The mfa token of a sign-in that must enroll a second factor first. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"mfa_token": "eyJ..."})))]
pub(crate) struct EnrollBody {
    /// From the `mfa_required` answer with `enrollment_required`; without it, the access token's user
    /// enrolls.
    #[serde(default)]
    mfa_token: Option<String>,
}

/// A second-factor code. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"code": "123456"})))]
pub(crate) struct CodeBody {
    /// The mfa token of a sign-in that enrolls its factor (`enrollment_required`); without it, the
    /// access token's user enrolls.
    #[serde(default)]
    mfa_token: Option<String>,
    /// The 6-digit code of the authenticator app.
    #[schema(max_length = 64)]
    code: String,
}

/// Who a request of these routes speaks for: the mfa token in its body or, without one, its access token.
async fn proof_of<'a>(req: &HttpRequest, mfa_token: Option<&'a str>) -> Result<Proof<'a>, ApiError> {
    match mfa_token {
        Some(token) => Ok(Proof::MfaToken(token)),
        None => Ok(Proof::Session(Principal::extract(req).await?)),
    }
}

/// An owned [`MfaProof`].
enum Proof<'a> {
    MfaToken(&'a str),
    Session(Principal),
}

impl Proof<'_> {
    fn as_proof(&self) -> MfaProof<'_> {
        match self {
            Self::MfaToken(token) => MfaProof::MfaToken(token),
            Self::Session(principal) => MfaProof::Session(principal),
        }
    }
}

/// A second-factor code and, to complete a sign-in, the mfa token. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"mfa_token": "eyJ...", "code": "123456"})))]
pub(crate) struct VerifyBody {
    /// From the login's `mfa_required` answer. Without it the request steps the session of the access
    /// token up to `aal2`.
    #[serde(default)]
    mfa_token: Option<String>,
    /// A 6-digit TOTP code, or a recovery code (`XXXX-XXXX-XXXX-XXXX`, dashes and case ignored).
    #[schema(max_length = 64)]
    code: String,
}

/// A TOTP enrollment waiting for its first code.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EnrollmentResponse<'a> {
    /// The shared secret in base32, for typing into an authenticator app.
    secret: &'a str,
    /// `otpauth://totp/…`: what the QR code encodes.
    otpauth_uri: &'a str,
    /// The QR code of `otpauth_uri`: a `data:image/svg+xml;base64,…` URI.
    qr_svg: &'a str,
}

/// The session raised to `aal2`, and the recovery codes, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ConfirmResponse<'a> {
    #[serde(flatten)]
    tokens: TokenResponse<'a>,
    /// Ten single-use codes that stand in for the authenticator app. Stored hashed: never shown again.
    recovery_codes: &'a [String],
}

/// The errors of `enroll_totp`.
pub(crate) fn enroll_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.push(ApiError::MfaAlreadyEnrolled);
    all
}

/// `POST /v1/auth/mfa/totp` — requires an access token, or the mfa token of a sign-in that must enroll.
/// Starts a TOTP enrollment (a new secret each time, until one is confirmed).
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/totp",
    tag = "mfa",
    summary = "Start a TOTP enrollment",
    description = "Returns a new secret as base32, as an `otpauth://` URI and as a QR code. The factor is not \
                   active until `/v1/auth/mfa/totp/confirm` accepts a first code. A user with an active factor \
                   gets `mfa_already_enrolled`. A sign-in into an organization that requires a second factor, by \
                   a user without one, answers `mfa_required` with `enrollment_required`: its mfa token, in the \
                   body here, stands in for the session that does not exist yet.",
    request_body(content = Option<EnrollBody>, description = "Only to enroll with an mfa token; none (or `{}`) with \
                                                             an access token."),
    security((), ("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The enrollment.", body = EnrollmentResponse)),
)]
pub(crate) async fn enroll_totp(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<EnrollBody>,
) -> Result<HttpResponse, ApiError> {
    let proof = proof_of(&req, body.0.as_ref().and_then(|b| b.mfa_token.as_deref())).await?;
    let enrollment = state.service.enroll_totp(proof.as_proof()).await?;
    Ok(HttpResponse::Ok().json(EnrollmentResponse {
        secret: &enrollment.secret,
        otpauth_uri: &enrollment.otpauth_uri,
        qr_svg: &enrollment.qr_svg,
    }))
}

/// The errors of `confirm_totp`.
pub(crate) fn confirm_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([ApiError::MfaNotEnrolled, ApiError::MfaInvalidCode, errors::rate_limited()]);
    all
}

/// `POST /v1/auth/mfa/totp/confirm` — requires an access token, or an mfa token in the body. Activates
/// the waiting TOTP factor with its first code, returns the recovery codes once and raises the session
/// to `aal2` (or completes the mfa token's sign-in at `aal2`).
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/totp/confirm",
    tag = "mfa",
    summary = "Activate TOTP with a first code",
    description = "On success the factor is active, ten recovery codes are returned (this once) and the session \
                   is raised to `aal2`: a new token pair for the same `sid`. With `mfa_token`, the sign-in it \
                   stands for completes at `aal2` instead, and the token is spent. Abuse limit: 5 wrong codes per \
                   user (and per mfa token) in 15 minutes (`rate_limited`).",
    request_body = CodeBody,
    security((), ("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The token response at `aal2`, with the recovery codes. Both session \
                                             cookies are set.", body = ConfirmResponse)),
)]
pub(crate) async fn confirm_totp(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<CodeBody>,
) -> Result<HttpResponse, ApiError> {
    let CodeBody { mfa_token, code } = body.0;
    let proof = proof_of(&req, mfa_token.as_deref()).await?;
    let origin = origin(&req, &state);
    let (sign_in, recovery_codes) = state.service.confirm_totp(proof.as_proof(), &code, origin).await?;
    let body = ConfirmResponse { tokens: TokenResponse::from(&sign_in), recovery_codes: &recovery_codes };
    Ok(with_session_cookies(StatusCode::OK, &sign_in, &state, body))
}

/// The errors of `remove_totp`.
pub(crate) fn remove_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend([ApiError::InsufficientAal, ApiError::MfaNotEnrolled]);
    all
}

/// `DELETE /v1/auth/mfa/totp` — requires an `aal2` access token. Removes the TOTP factor and the
/// recovery codes.
#[utoipa::path(
    delete,
    path = "/v1/auth/mfa/totp",
    tag = "mfa",
    summary = "Remove the TOTP factor",
    description = "Needs a session at `aal2` (`insufficient_aal` otherwise: step up with `/v1/auth/mfa/verify`). \
                   The recovery codes go with it.",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Removed.")),
)]
pub(crate) async fn remove_totp(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    state.service.remove_totp(&principal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `verify_mfa`.
pub(crate) fn verify_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([ApiError::MfaInvalidCode, errors::rate_limited()]);
    all
}

/// `POST /v1/auth/mfa/verify` — authenticated by the mfa token in the body, or else by an access token.
/// Completes a sign-in at `aal2`, or steps the session up to `aal2` (same `sid`).
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/verify",
    tag = "mfa",
    summary = "Check a second-factor code: finish a sign-in, or step up",
    description = "With `mfa_token`: completes the sign-in that answered `mfa_required`; the mfa token works once \
                   and for 5 minutes. Without it: the access token's session is raised to `aal2`, keeping its \
                   `sid`. A TOTP code is accepted once (±30 s of clock skew); a recovery code is spent. Abuse \
                   limit: 5 wrong codes per mfa token and per user in 15 minutes (`rate_limited`).",
    request_body = VerifyBody,
    security((), ("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The token response at `aal2`. Both session cookies are set.",
               body = TokenResponse)),
)]
pub(crate) async fn verify_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<VerifyBody>,
) -> Result<HttpResponse, ApiError> {
    let VerifyBody { mfa_token, code } = body.0;
    let proof = proof_of(&req, mfa_token.as_deref()).await?;
    let sign_in = state.service.verify_mfa(proof.as_proof(), &code, origin(&req, &state)).await?;
    Ok(token_response(StatusCode::OK, &sign_in, &state))
}
