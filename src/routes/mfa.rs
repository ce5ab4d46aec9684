//! `/v1/auth/mfa/*`: TOTP enrollment, confirmation and removal, and the second-factor check that
//! completes a sign-in (mfa token) or steps a session up to `aal2`.
//!
//! Removal needs an `aal2` access token (`Principal`). Enrollment, confirmation and `mfa/verify` take an
//! mfa token in the body or, without one, an access token: a sign-in that must enroll a factor has no
//! session yet, only its mfa token.

use actix_web::http::StatusCode;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::credentials::refresh_token;
use crate::http::json::{ApiJson, OptionalJson};
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{MfaProof, Principal, SecondFactor};

/// The mfa token of a sign-in that must enroll a second factor first. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"mfa_token": "eyJ..."}), json!({"password": "correct horse battery staple"})))]
pub(crate) struct EnrollBody {
    /// From the `mfa_required` answer with `enrollment_required`; without it, the access token's user
    /// enrolls.
    #[serde(default)]
    mfa_token: Option<String>,
    /// The user's password, typed again: needed with an access token whose sign-in is older than the
    /// reauthentication window (10 minutes by default).
    #[serde(default)]
    #[schema(max_length = 256)]
    password: Option<String>,
}

/// The password, typed again, for a session whose sign-in is not recent. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"password": "correct horse battery staple"})))]
pub(crate) struct ReauthenticationBody {
    /// The user's password.
    #[schema(max_length = 256)]
    password: String,
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
    /// With an access token: the session's refresh token, unless the `identsphere_rt` cookie carries it.
    /// The new pair goes only to who holds it.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// Who a request of these routes speaks for: the mfa token in its body or, without one, its access token.
async fn proof_of<'a>(req: &HttpRequest, mfa_token: Option<&'a str>) -> Result<Proof<'a>, ApiError> {
    match mfa_token {
        Some(token) => Ok(Proof::MfaToken(token)),
        None => Ok(Proof::Session(Principal::extract(req).await?)),
    }
}

/// The refresh token a session presents beside its access token (body, else cookie); an mfa token needs
/// none.
fn session_refresh(
    req: &HttpRequest,
    state: &AppState,
    proof: &Proof<'_>,
    in_body: Option<String>,
) -> Result<Option<String>, ApiError> {
    match proof {
        Proof::MfaToken(_) => Ok(None),
        Proof::Session(_) => refresh_token(req, in_body, &state.config.public_url, &state.config.allowed_origins),
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

/// A second factor and, to complete a sign-in, the mfa token: a `code`, or a `passkey`. Unknown fields are
/// refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"mfa_token": "eyJ...", "code": "123456"})))]
pub(crate) struct VerifyBody {
    /// From the login's `mfa_required` answer. Without it the request steps the session of the access
    /// token up to `aal2`.
    #[serde(default)]
    mfa_token: Option<String>,
    /// A 6-digit TOTP code, or a recovery code (`XXXX-XXXX-XXXX-XXXX`, dashes and case ignored). Exactly
    /// one of `code` and `passkey`.
    #[serde(default)]
    #[schema(max_length = 64)]
    code: Option<String>,
    /// A passkey assertion, from a ceremony that `/v1/auth/passkeys/authentication/options` started with
    /// the same mfa token (or, for a step-up, the same session).
    #[serde(default)]
    passkey: Option<PasskeyAssertion>,
    /// For a step-up: the session's refresh token, unless the `identsphere_rt` cookie carries it. The new
    /// pair goes only to who holds it.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// A passkey assertion as the second factor.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasskeyAssertion {
    /// From the options.
    ceremony_id: uuid::Uuid,
    /// What `navigator.credentials.get()` resolved to, as `credential.toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: Box<webauthn_rs_core::proto::PublicKeyCredential>,
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
    all.extend([
        ApiError::MfaAlreadyEnrolled,
        ApiError::ReauthenticationRequired,
        ApiError::InvalidCredentials,
        errors::rate_limited(),
    ]);
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
                   body here, stands in for the session that does not exist yet. With an access token, the \
                   session must have signed in within the reauthentication window (10 minutes by default), or \
                   the body carries the password again: `reauthentication_required` otherwise, so an access token \
                   alone cannot plant a factor.",
    request_body(content = Option<EnrollBody>, description = "With an mfa token: the token. With an access token: \
                                                             none (or `{}`), or the password when the sign-in is \
                                                             not recent."),
    security((), ("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The enrollment.", body = EnrollmentResponse)),
)]
pub(crate) async fn enroll_totp(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<EnrollBody>,
) -> Result<HttpResponse, ApiError> {
    let (mfa_token, password) = body.0.map_or((None, None), |b| (b.mfa_token, b.password));
    let proof = proof_of(&req, mfa_token.as_deref()).await?;
    let enrollment = state.service.enroll_totp(proof.as_proof(), password).await?;
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
                   is raised to `aal2`: a new token pair for the same `sid`, for which the request presents the \
                   session's refresh token too (`refresh_token` in the body, or the `identsphere_rt` cookie; \
                   `token_missing` without it): an access token alone never yields a refresh token. With \
                   `mfa_token`, the sign-in it stands for completes at `aal2` instead, and the token is spent. Abuse limit: 5 wrong codes per \
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
    let CodeBody { mfa_token, code, refresh_token } = body.0;
    let proof = proof_of(&req, mfa_token.as_deref()).await?;
    let refresh = session_refresh(&req, &state, &proof, refresh_token)?;
    let origin = origin(&req, &state);
    let (sign_in, recovery_codes) =
        state.service.confirm_totp(proof.as_proof(), &code, refresh.as_deref(), origin).await?;
    let body = ConfirmResponse { tokens: TokenResponse::from(&sign_in), recovery_codes: &recovery_codes };
    Ok(with_session_cookies(StatusCode::OK, &sign_in, &state, body))
}

/// The errors of `remove_totp`.
pub(crate) fn remove_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::InsufficientAal,
        ApiError::MfaNotEnrolled,
        ApiError::ReauthenticationRequired,
        ApiError::InvalidCredentials,
        errors::rate_limited(),
    ]);
    all
}

/// `DELETE /v1/auth/mfa/totp` — requires an `aal2` access token. Removes the TOTP factor and the
/// recovery codes.
#[utoipa::path(
    delete,
    path = "/v1/auth/mfa/totp",
    tag = "mfa",
    summary = "Remove the TOTP factor",
    description = "Needs a session at `aal2` (`insufficient_aal` otherwise: step up with `/v1/auth/mfa/verify`) \
                   that signed in within the reauthentication window (10 minutes by default), or the password \
                   again in the body (`reauthentication_required` otherwise). The recovery codes go with it.",
    request_body(content = Option<ReauthenticationBody>, description = "The password, when the sign-in is not \
                                                                        recent."),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Removed.")),
)]
pub(crate) async fn remove_totp(
    state: web::Data<AppState>,
    principal: Principal,
    body: OptionalJson<ReauthenticationBody>,
) -> Result<HttpResponse, ApiError> {
    state.service.remove_totp(&principal, body.0.map(|b| b.password)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `verify_mfa`.
pub(crate) fn verify_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::MfaInvalidCode,
        ApiError::PasskeyInvalid,
        ApiError::CeremonyExpired,
        ApiError::PasskeysUnavailable,
        errors::rate_limited(),
    ]);
    all
}

/// `POST /v1/auth/mfa/verify` — authenticated by the mfa token in the body, or else by an access token.
/// Completes a sign-in at `aal2`, or steps the session up to `aal2` (same `sid`).
#[utoipa::path(
    post,
    path = "/v1/auth/mfa/verify",
    tag = "mfa",
    summary = "Check a second factor (a code or a passkey): finish a sign-in, or step up",
    description = "With `mfa_token`: completes the sign-in that answered `mfa_required`; the mfa token works once \
                   and for 5 minutes. Without it: the access token's session is raised to `aal2`, keeping its \
                   `sid`; the request presents the session's refresh token too (`refresh_token` in the body, or \
                   the `identsphere_rt` cookie; `token_missing` without it), since the answer carries a new \
                   refresh token and an access token alone never yields one. A TOTP code is accepted once (±30 s of clock skew); a recovery code is spent. Abuse \
                   limit: 5 wrong codes per mfa token and per user in 15 minutes (`rate_limited`). Instead of a \
                   code, `passkey` carries a passkey assertion from a ceremony started for the same mfa token \
                   (or session): `passkey_invalid` when it fails, `ceremony_expired` for a ceremony that is \
                   unknown, used, older than 5 minutes or started for another sign-in.",
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
    let VerifyBody { mfa_token, code, passkey, refresh_token } = body.0;
    let factor = match (&code, &passkey) {
        (Some(code), None) => SecondFactor::Code(code),
        (None, Some(p)) => SecondFactor::Passkey { ceremony_id: p.ceremony_id, credential: &p.credential },
        _ => return Err(ApiError::invalid_field("code", "send exactly one of `code` and `passkey`")),
    };
    let proof = proof_of(&req, mfa_token.as_deref()).await?;
    let refresh = session_refresh(&req, &state, &proof, refresh_token)?;
    let sign_in = state.service.verify_mfa(proof.as_proof(), factor, refresh.as_deref(), origin(&req, &state)).await?;
    Ok(token_response(StatusCode::OK, &sign_in, &state))
}
