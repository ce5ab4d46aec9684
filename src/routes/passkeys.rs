//! `/v1/auth/passkeys/*`: registering, listing, renaming and deleting passkeys (an access token), and
//! signing in with one (public: the passkey is the credential).
//!
//! Options and credentials are WebAuthn JSON exactly as browsers produce it: the options go to
//! `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` (or
//! `navigator.credentials.create({publicKey})` after decoding the base64url fields), and the credential
//! comes back as `credential.toJSON()` gives it.

use actix_web::http::StatusCode;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs_core::proto::{
    CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::json::{ApiJson, OptionalJson};
use crate::model::Passkey;
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{PasskeyAsker, Principal};

/// What to call the new passkey, and the password for a session whose sign-in is not recent. Unknown
/// fields are refused.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "MacBook Touch ID"})))]
pub(crate) struct RegistrationOptionsBody {
    /// A name for the passkey (at most 100 characters); `Passkey` when none is given here or at
    /// registration.
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
    /// The user's password, typed again: needed when the session signed in longer ago than the
    /// reauthentication window (10 minutes by default).
    #[serde(default)]
    #[schema(max_length = 256)]
    password: Option<String>,
}

/// A started ceremony: its id, and the options for the browser.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct CeremonyResponse<T: Serialize> {
    /// Send it back with the credential, within 5 minutes; it works once.
    ceremony_id: Uuid,
    /// `{"publicKey": …}`: `PublicKeyCredentialCreationOptionsJSON` or
    /// `PublicKeyCredentialRequestOptionsJSON`, base64url fields.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    options: T,
}

/// A registration to finish. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrationBody {
    /// From the options.
    ceremony_id: Uuid,
    /// What `navigator.credentials.create()` resolved to, as `credential.toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: Box<RegisterPublicKeyCredential>,
    /// A name for the passkey; overrides the one given with the options.
    #[serde(default)]
    #[schema(max_length = 100)]
    name: Option<String>,
}

/// A new name. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "YubiKey 5C"})))]
pub(crate) struct RenameBody {
    /// 1 to 100 characters, no control characters.
    #[schema(max_length = 100)]
    name: String,
}

/// The password, typed again, for a session whose sign-in is not recent and not `aal2`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteBody {
    /// The user's password.
    #[schema(max_length = 256)]
    password: String,
}

/// What an authentication ceremony is for. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({}), json!({"mfa_token": "eyJ..."}), json!({"step_up": true})))]
pub(crate) struct AuthenticationOptionsBody {
    /// The organization a sign-in is for (id or slug): its abuse limits apply from here. Name it again at
    /// `/v1/auth/passkeys/authentication`.
    #[serde(default)]
    organization: Option<String>,
    /// The mfa token of a password sign-in that answered `mfa_required` with `passkey`: the passkey is its
    /// second factor, finished at `/v1/auth/mfa/verify`.
    #[serde(default)]
    mfa_token: Option<String>,
    /// `true`: the passkey steps the session of the access token up to `aal2`, finished at
    /// `/v1/auth/mfa/verify`.
    #[serde(default)]
    step_up: bool,
}

/// A passkey sign-in to finish. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthenticationBody {
    /// From the options.
    ceremony_id: Uuid,
    /// What `navigator.credentials.get()` resolved to, as `credential.toJSON()` gives it.
    #[schema(value_type = Object)]
    credential: Box<PublicKeyCredential>,
    /// The organization to sign in to (id or slug); without it, the user's most recently used one.
    #[serde(default)]
    organization: Option<String>,
}

/// A registered passkey.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PasskeyView {
    /// Its id.
    id: Uuid,
    /// What the user calls it.
    name: String,
    /// When it was registered.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Its last use; `null` before the first.
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
    /// Synced across the user's devices (backup state).
    backed_up: bool,
    /// How the browser reaches it (`internal`, `hybrid`, `usb`, `nfc`, `ble`): hints only.
    transports: Vec<String>,
}

impl From<&Passkey> for PasskeyView {
    fn from(p: &Passkey) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
            backed_up: p.backed_up(),
            transports: p.transports(),
        }
    }
}

/// The user's passkeys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PasskeyList {
    /// Oldest first.
    passkeys: Vec<PasskeyView>,
}

/// The errors of `registration_options`.
pub(crate) fn registration_options_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::PasskeysUnavailable,
        ApiError::ReauthenticationRequired,
        ApiError::InvalidCredentials,
        errors::rate_limited(),
    ]);
    all
}

/// `POST /v1/auth/passkeys/registration/options` — requires an access token that signed in recently.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/registration/options",
    tag = "passkeys",
    summary = "Start registering a passkey",
    description = "Returns the options for `navigator.credentials.create()`: a discoverable credential (resident \
                   key) is required and user verification preferred; the user's passkeys are excluded. The \
                   session must have signed in within the reauthentication window (10 minutes by default), or \
                   the body carries the password again (`reauthentication_required` otherwise): an access token \
                   alone cannot plant a credential. The ceremony lives 5 minutes and works once.",
    request_body(content = Option<RegistrationOptionsBody>, description = "Optional."),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The ceremony.", body = inline(CeremonyResponse<serde_json::Value>))),
)]
pub(crate) async fn registration_options(
    state: web::Data<AppState>,
    principal: Principal,
    body: OptionalJson<RegistrationOptionsBody>,
) -> Result<HttpResponse, ApiError> {
    let RegistrationOptionsBody { name, password } = body.0.unwrap_or_default();
    let (ceremony_id, options) = state.service.passkey_registration_options(&principal, name, password).await?;
    Ok(HttpResponse::Ok().json(CeremonyResponse::<CreationChallengeResponse> { ceremony_id, options }))
}

/// The errors of `register_passkey`.
pub(crate) fn registration_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::PasskeysUnavailable,
        ApiError::CeremonyExpired,
        ApiError::PasskeyInvalid,
        ApiError::PasskeyExists,
    ]);
    all
}

/// `POST /v1/auth/passkeys/registration` — requires the access token of the session that started the
/// ceremony's user.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/registration",
    tag = "passkeys",
    summary = "Finish registering a passkey",
    description = "Verifies the attestation (origin, RP ID, challenge, signature; attestation format `none` and \
                   self-attestation are accepted) and stores the passkey. `ceremony_expired` for a ceremony \
                   that is unknown, used, older than 5 minutes or another user's; `passkey_invalid` for a \
                   credential that fails verification; `passkey_exists` for a credential registered already.",
    request_body = RegistrationBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 201, description = "The passkey.", body = PasskeyView)),
)]
pub(crate) async fn register_passkey(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<RegistrationBody>,
) -> Result<HttpResponse, ApiError> {
    let RegistrationBody { ceremony_id, credential, name } = body.0;
    let passkey = state.service.register_passkey(&principal, ceremony_id, &credential, name).await?;
    Ok(HttpResponse::Created().json(PasskeyView::from(&passkey)))
}

/// `GET /v1/auth/passkeys` — requires an access token.
#[utoipa::path(
    get,
    path = "/v1/auth/passkeys",
    tag = "passkeys",
    summary = "List the user's passkeys",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The passkeys, oldest first.", body = PasskeyList)),
)]
pub(crate) async fn list_passkeys(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let passkeys = state.service.passkeys(&principal).await?;
    Ok(HttpResponse::Ok().json(PasskeyList { passkeys: passkeys.iter().map(PasskeyView::from).collect() }))
}

/// The errors of `rename_passkey`.
pub(crate) fn rename_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.push(ApiError::PasskeyNotFound);
    all
}

/// `PATCH /v1/auth/passkeys/{id}` — requires an access token.
#[utoipa::path(
    patch,
    path = "/v1/auth/passkeys/{id}",
    tag = "passkeys",
    summary = "Rename a passkey",
    params(("id" = Uuid, Path, description = "The passkey's id.")),
    request_body = RenameBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The passkey.", body = PasskeyView)),
)]
pub(crate) async fn rename_passkey(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: ApiJson<RenameBody>,
) -> Result<HttpResponse, ApiError> {
    let id = passkey_id(&id)?;
    let passkey = state.service.rename_passkey(&principal, id, &body.0.name).await?;
    Ok(HttpResponse::Ok().json(PasskeyView::from(&passkey)))
}

/// The errors of `delete_passkey`.
pub(crate) fn delete_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::PasskeyNotFound,
        ApiError::ReauthenticationRequired,
        ApiError::InvalidCredentials,
        ApiError::LastSignInMethod,
        errors::rate_limited(),
    ]);
    all
}

/// `DELETE /v1/auth/passkeys/{id}` — requires an `aal2` access token, or one that signed in recently.
#[utoipa::path(
    delete,
    path = "/v1/auth/passkeys/{id}",
    tag = "passkeys",
    summary = "Delete a passkey",
    description = "From an `aal2` session, or one that signed in within the reauthentication window, or with the \
                   password in the body (`reauthentication_required` otherwise). Never the last passkey of a \
                   user who belongs to an organization that admits only passkeys (`last_sign_in_method`).",
    params(("id" = Uuid, Path, description = "The passkey's id.")),
    request_body(content = Option<DeleteBody>, description = "The password, when needed."),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Deleted.")),
)]
pub(crate) async fn delete_passkey(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: OptionalJson<DeleteBody>,
) -> Result<HttpResponse, ApiError> {
    let id = passkey_id(&id)?;
    state.service.remove_passkey(&principal, id, body.0.map(|b| b.password)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `authentication_options`.
pub(crate) fn authentication_options_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::PasskeysUnavailable,
        ApiError::MfaNotEnrolled,
        ApiError::OrganizationNotFound,
        errors::rate_limited(),
    ]);
    all
}

/// `POST /v1/auth/passkeys/authentication/options` — public for a sign-in; with an mfa token for a
/// second factor; with an access token and `step_up` for a step-up.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/authentication/options",
    tag = "passkeys",
    summary = "Start a passkey sign-in, second factor or step-up",
    description = "Returns the options for `navigator.credentials.get()`. For a sign-in, `allowCredentials` is \
                   empty (discoverable credentials: the browser offers the passkeys it has for our RP ID, also \
                   in conditional UI), so the answer is the same whether or not any account exists; abuse \
                   limit: sign-ins per client address. With `mfa_token` (a password sign-in that answered \
                   `mfa_required` with `passkey`), or with `step_up` and an access token, it lists the user's \
                   passkeys and the ceremony is finished at `/v1/auth/mfa/verify` (`mfa_not_enrolled` for a user \
                   without one). The ceremony lives 5 minutes and works once.",
    request_body(content = Option<AuthenticationOptionsBody>, description = "Optional for a sign-in."),
    security((), ("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The ceremony.", body = inline(CeremonyResponse<serde_json::Value>))),
)]
pub(crate) async fn authentication_options(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<AuthenticationOptionsBody>,
) -> Result<HttpResponse, ApiError> {
    let AuthenticationOptionsBody { organization, mfa_token, step_up } = body.0.unwrap_or_default();
    let organization = org_ref(organization)?;
    let principal = if step_up { Some(Principal::extract(&req).await?) } else { None };
    let asker = match (&mfa_token, &principal) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_field("step_up", "send `mfa_token` or `step_up`, not both"));
        }
        (Some(token), None) => PasskeyAsker::MfaToken(token),
        (None, Some(principal)) => PasskeyAsker::Session(principal),
        (None, None) => PasskeyAsker::SignIn,
    };
    let ip = origin(&req, &state).ip;
    let (ceremony_id, options) =
        state.service.passkey_authentication_options(asker, organization.as_ref(), ip.as_deref()).await?;
    Ok(HttpResponse::Ok().json(CeremonyResponse::<RequestChallengeResponse> { ceremony_id, options }))
}

/// The errors of `sign_in_with_passkey`.
pub(crate) fn authentication_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend(errors::server());
    all.extend([
        ApiError::SsoRequired,
        ApiError::PasskeysUnavailable,
        ApiError::CeremonyExpired,
        ApiError::PasskeyInvalid,
        ApiError::AccountDisabled,
        ApiError::OrganizationNotFound,
        ApiError::NotAMember,
        ApiError::AuthMethodNotAllowed,
        errors::rate_limited(),
    ]);
    all
}

/// `POST /v1/auth/passkeys/authentication` — public: the passkey is the credential.
#[utoipa::path(
    post,
    path = "/v1/auth/passkeys/authentication",
    tag = "passkeys",
    summary = "Sign in with a passkey",
    description = "Verifies the assertion of a sign-in ceremony and signs the passkey's user in (`auth_method: \
                   passkey`). With user verification (PIN, biometrics) the passkey is multi-factor and the \
                   session is `aal2`; without, it is `aal1`, and a user with TOTP (or an organization that \
                   requires a second factor) gets `mfa_required` as after a password. `passkey_invalid` for a \
                   passkey that is unknown or deleted, of an origin or RP ID that is not ours, badly signed, or \
                   whose signature counter went back (a cloned authenticator: written to the audit log too).",
    request_body = AuthenticationBody,
    security(()),
    responses((status = 200, description = "The token response with both session cookies (or the second-factor \
                                             step, without cookies).",
               body = inline(LoginResponse),
               headers(("Set-Cookie" = String, description = "`identsphere_at` and `identsphere_rt`, as for a login.")))),
)]
pub(crate) async fn sign_in_with_passkey(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<AuthenticationBody>,
) -> Result<HttpResponse, ApiError> {
    let AuthenticationBody { ceremony_id, credential, organization } = body.0;
    let outcome =
        state.service.passkey_sign_in(ceremony_id, &credential, org_ref(organization)?, origin(&req, &state)).await?;
    Ok(login_response(StatusCode::OK, outcome, &state))
}

fn passkey_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::PasskeyNotFound)
}
