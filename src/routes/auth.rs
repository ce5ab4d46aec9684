//! `/v1/auth/*`: register, login, refresh, logout and the session read.
//!
//! Handlers extract, authorize, call one `Service` function and map its result to the token
//! response and cookies. Public: register, login, refresh (refresh token), logout (access or refresh
//! token). `GET /v1/auth/session` requires an access token (`Principal`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::client_ip::client_ip;
use crate::http::credentials::{cleared_session_cookies, refresh_token, session_credentials};
use crate::http::json::{ApiJson, OptionalJson};
use crate::model::{Email, Password, SessionContext, display_text};
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{LogoutCredentials, LogoutScope, Principal, Registration};

/// A new account. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ada@example.com", "password": "correct horse battery staple",
                         "display_name": "Ada Lovelace"})))]
pub(crate) struct RegisterBody {
    /// Trimmed, then validated (`invalid_email`); compared case-insensitively, kept as typed.
    #[schema(format = Email)]
    email: String,
    /// At least 8 characters and at most 256 bytes, not a common password (`weak_password`).
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    #[serde(default)]
    #[schema(schema_with = display_name_schema)]
    display_name: Option<String>,
    /// Id or slug of an organization that allows sign-up; without it a personal organization is created.
    /// Must not be blank.
    #[serde(default)]
    #[schema(schema_with = organization_schema)]
    organization: Option<String>,
    /// The token of an invitation for this email: the account joins its organization with its role
    /// (instead of `organization`, whatever that organization's sign-up policy).
    #[serde(default)]
    #[schema(max_length = 128)]
    invitation: Option<String>,
}

/// Email and password. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ada@example.com", "password": "correct horse battery staple"})))]
pub(crate) struct LoginBody {
    /// Trimmed, then validated (`invalid_email`); compared case-insensitively.
    #[schema(format = Email)]
    email: String,
    /// The password, as registered.
    password: String,
    /// Id or slug of one of the user's organizations; default: the most recently used. Must not be
    /// blank.
    #[serde(default)]
    #[schema(schema_with = organization_schema)]
    organization: Option<String>,
}

/// The refresh token, unless the `identsphere_rt` cookie carries it. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    /// The refresh token of the last token response.
    #[serde(default)]
    refresh_token: Option<String>,
    /// Switch: id or slug of another organization of the user; the session moves there with this
    /// refresh (`not_a_member` otherwise). Must not be blank.
    #[serde(default)]
    #[schema(schema_with = organization_schema)]
    organization: Option<String>,
}

/// Which session families a logout ends.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum ScopeName {
    /// This session family (the default).
    Local,
    /// Every other session family of the user.
    Others,
    /// Every session family of the user.
    Global,
}

/// What to end and, if the access token expired, the refresh token. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogoutBody {
    /// Default `local`.
    #[serde(default)]
    scope: Option<ScopeName>,
    /// Authenticates the logout when no (unexpired) access token is sent.
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The session an access token belongs to.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SessionResponse<'a> {
    user: UserJson<'a>,
    session: SessionJson,
    organization: OrganizationJson<'a>,
    /// The second factors the user has enrolled (empty: none).
    factors: Vec<FactorJson>,
    /// Unused recovery codes (0 without a second factor).
    recovery_codes_left: u32,
}

/// The errors of `register_user`.
pub(crate) fn register_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([
        ApiError::SsoRequired,
        ApiError::InvalidEmail(""),
        ApiError::WeakPassword { message: "", param: "password" },
        ApiError::EmailTaken,
        ApiError::SignupNotAllowed,
        ApiError::AccountDisabled,
        ApiError::AuthMethodNotAllowed,
        ApiError::OrganizationNotFound,
        ApiError::InvitationInvalid,
        ApiError::InvitationEmailMismatch,
        errors::rate_limited(),
    ]);
    all.extend(errors::server());
    all
}

/// `POST /v1/auth/register` — public. Creates an account (and a personal organization unless one that
/// allows sign-up is named) and signs it in: `201` token response.
#[utoipa::path(
    post,
    path = "/v1/auth/register",
    tag = "auth",
    summary = "Create an account and sign it in",
    description = "Without `organization`, a new personal organization is created and the user is its owner. \
                   Abuse limit: sign-ups per client address (`rate_limited`).",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "Signed up and signed in: the token response. Both session cookies are set. \
                                      Or, into an organization that requires a second factor, `mfa_required` with \
                                      `enrollment_required` and an mfa token, and no cookies.",
         body = inline(LoginResponse), headers(("Set-Cookie" = String, description = "`identsphere_at` (access token, `HttpOnly; SameSite=Lax; Path=/`) and `identsphere_rt` (refresh token, `HttpOnly; SameSite=Strict; Path=/v1/auth`); `Secure` unless the public base URL is plain http on localhost; `Max-Age` the token lifetime.")),
         links(
            ("login" = (operation_id = "login_user", description = "Sign in again with the new account.",
                        request_body = json!({"email": "$request.body#/email",
                                              "password": "$request.body#/password"}))),
            ("session" = (operation_id = "get_session", description = SESSION_LINK,
                          parameters(("header.Authorization" = "Bearer {$response.body#/access_token}")))),
            ("refresh" = (operation_id = "refresh_session", description = REFRESH_LINK,
                          request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
            ("logout" = (operation_id = "logout_session", description = LOGOUT_LINK,
                         request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
         )),
    ),
)]
pub(crate) async fn register_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let RegisterBody { email, password, display_name, organization, invitation } = body.0;
    if organization.is_some() && invitation.is_some() {
        return Err(ApiError::invalid_field("invitation", "give organization or invitation, not both"));
    }
    let registration = Registration {
        email: Email::parse(&email)?,
        password: Password::parse(password)?,
        display_name: display_text("display_name", display_name)?,
        organization: org_ref(organization)?,
        invitation,
    };
    let outcome = state.service.register(registration, origin(&req, &state)).await?;
    Ok(login_response(StatusCode::CREATED, outcome, &state))
}

/// The errors of `login_user`.
pub(crate) fn login_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([
        ApiError::SsoRequired,
        ApiError::InvalidEmail(""),
        ApiError::InvalidCredentials,
        ApiError::AccountDisabled,
        ApiError::AuthMethodNotAllowed,
        ApiError::NotAMember,
        ApiError::OrganizationNotFound,
        errors::rate_limited(),
    ]);
    all.extend(errors::server());
    all
}

/// `POST /v1/auth/login` — public. Email and password; `200` token response.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    summary = "Sign in with email and password",
    description = "A wrong password and an unknown email get the same `invalid_credentials`. Abuse limits: \
                   attempts per client address and failures per account (`rate_limited`).",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in: the token response, and both session cookies are set. Or, when \
                                      the user has a second factor, `mfa_required` with an mfa token and no cookies.",
         body = inline(LoginResponse), headers(("Set-Cookie" = String, description = "`identsphere_at` (access token, `HttpOnly; SameSite=Lax; Path=/`) and `identsphere_rt` (refresh token, `HttpOnly; SameSite=Strict; Path=/v1/auth`); `Secure` unless the public base URL is plain http on localhost; `Max-Age` the token lifetime.")),
         links(
            ("session" = (operation_id = "get_session", description = SESSION_LINK,
                          parameters(("header.Authorization" = "Bearer {$response.body#/access_token}")))),
            ("refresh" = (operation_id = "refresh_session", description = REFRESH_LINK,
                          request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
            ("logout" = (operation_id = "logout_session", description = LOGOUT_LINK,
                         request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
         )),
    ),
)]
pub(crate) async fn login_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { email, password, organization } = body.0;
    let email = Email::parse(&email)?;
    let outcome = state.service.login(&email, password, org_ref(organization)?, origin(&req, &state)).await?;
    Ok(login_response(StatusCode::OK, outcome, &state))
}

/// The errors of `refresh_session`.
pub(crate) fn refresh_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([
        ApiError::SsoRequired,
        ApiError::TokenMissing,
        ApiError::TokenInvalid,
        ApiError::TokenExpired,
        ApiError::TokenRevoked,
        ApiError::RefreshTokenReused,
        ApiError::CsrfRejected,
        ApiError::AccountDisabled,
        ApiError::InsufficientAal,
        ApiError::AuthMethodNotAllowed,
        ApiError::NotAMember,
        ApiError::OrganizationNotFound,
        errors::rate_limited(),
    ]);
    all.extend(errors::server());
    all
}

/// `POST /v1/auth/refresh` — authenticated by the refresh token (body, or the `identsphere_rt` cookie,
/// which must pass the CSRF rule). `200` token response with the new pair.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    summary = "Exchange a refresh token for a new pair",
    description = "The refresh token comes from the body or, when the body has none, from the `identsphere_rt` \
                   cookie (then subject to the CSRF rule). Every refresh rotates; a spent token presented again \
                   within the grace window gets the same successor, after it `refresh_token_reused` and the \
                   whole session family is revoked. With `organization`, the session switches: it moves into \
                   that organization of the user (same `sid`, `auth_time`, `aal`), and the new tokens carry its id. \
                   An organization's policy applies to every refresh: a session below the `aal2` it requires is \
                   `insufficient_aal` (step up first), one of a sign-in method it no longer allows is \
                   `auth_method_not_allowed`. Abuse limit: refreshes per client address.",
    request_body = Option<RefreshBody>,
    security((), ("refresh_cookie" = [])),
    responses(
        (status = 200, description = "The token response with the new pair. Both session cookies are set.",
         body = TokenResponse, headers(("Set-Cookie" = String, description = "`identsphere_at` (access token, `HttpOnly; SameSite=Lax; Path=/`) and `identsphere_rt` (refresh token, `HttpOnly; SameSite=Strict; Path=/v1/auth`); `Secure` unless the public base URL is plain http on localhost; `Max-Age` the token lifetime.")),
         links(
            ("session" = (operation_id = "get_session", description = SESSION_LINK,
                          parameters(("header.Authorization" = "Bearer {$response.body#/access_token}")))),
            ("refresh" = (operation_id = "refresh_session", description = REFRESH_LINK,
                          request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
            ("logout" = (operation_id = "logout_session", description = LOGOUT_LINK,
                         request_body = json!({"refresh_token": "$response.body#/refresh_token"}))),
         )),
    ),
)]
pub(crate) async fn refresh_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let (body_token, organization) = body.0.map_or((None, None), |b| (b.refresh_token, b.organization));
    let config = &state.config;
    let token =
        refresh_token(&req, body_token, &config.public_url, &config.allowed_origins)?.ok_or(ApiError::TokenMissing)?;
    let ip = client_ip(&req, &config.trusted_proxies, config.client_ip_header).map(|ip| ip.to_string());
    let sign_in = state.service.refresh(&token, ip.as_deref(), org_ref(organization)?).await?;
    Ok(token_response(StatusCode::OK, &sign_in, &state))
}

/// The errors of `logout_session`.
pub(crate) fn logout_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([
        ApiError::TokenMissing,
        ApiError::TokenInvalid,
        ApiError::TokenExpired,
        ApiError::TokenRevoked,
        ApiError::CsrfRejected,
        ApiError::AccountDisabled,
    ]);
    all.extend(errors::server());
    all
}

/// `POST /v1/auth/logout` — authenticated by the access token (bearer or cookie) or, if it expired, the
/// refresh token (body or cookie). `204`, cookies cleared; a revoked or invalid credential also clears
/// them.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    summary = "End session families",
    description = "Authenticated by the access token (bearer or `identsphere_at` cookie) or, when there is none \
                   or it expired, by the refresh token (body or `identsphere_rt` cookie). Cookie-authenticated \
                   requests are subject to the CSRF rule. A `401` for an invalid, expired or revoked credential \
                   clears the session cookies too.",
    request_body = Option<LogoutBody>,
    security(("bearer" = []), ("access_cookie" = []), ("refresh_cookie" = []), ()),
    responses(
        (status = 204, description = "Logged out; both session cookies are cleared (kept with scope `others`, which ends only the other sessions).",
         headers(("Set-Cookie" = String, description = "`identsphere_at` and `identsphere_rt`, emptied with `Max-Age=0`."))),
    ),
)]
pub(crate) async fn logout_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<LogoutBody>,
) -> Result<HttpResponse, ApiError> {
    let outcome = async {
        let (scope, body_refresh) = body.0.map_or((None, None), |b| (b.scope, b.refresh_token));
        let (access, refresh) =
            session_credentials(&req, body_refresh, &state.config.public_url, &state.config.allowed_origins)?;
        let credentials = LogoutCredentials { access: access.as_deref(), refresh: refresh.as_deref() };
        let scope = match scope {
            None | Some(ScopeName::Local) => LogoutScope::Local,
            Some(ScopeName::Others) => LogoutScope::Others,
            Some(ScopeName::Global) => LogoutScope::Global,
        };
        state.service.logout(credentials, scope).await.map(|()| scope)
    };
    match outcome.await {
        Ok(scope) => {
            let mut response = HttpResponse::NoContent();
            // `others` ends the other sessions: this one, and its cookies, stay.
            if scope != LogoutScope::Others {
                for cookie in cleared_session_cookies(&state.config.cookies) {
                    response.cookie(cookie);
                }
            }
            Ok(response.finish())
        }
        Err(err @ (ApiError::TokenRevoked | ApiError::TokenInvalid | ApiError::TokenExpired)) => {
            let mut response = HttpResponse::from_error(err);
            for cookie in cleared_session_cookies(&state.config.cookies) {
                response.add_cookie(&cookie).map_err(|e| ApiError::Internal(e.into()))?;
            }
            Ok(response)
        }
        Err(err) => Err(err),
    }
}

/// `GET /v1/auth/session` — requires an access token. The user, the session and the organization with
/// the user's role.
#[utoipa::path(
    get,
    path = "/v1/auth/session",
    tag = "auth",
    summary = "The session of an access token",
    description = "Checked against the durable session record (or a view of it that nothing has changed since, \
                   on any replica): a revoked family is `token_revoked` at once.",
    security(("bearer" = []), ("access_cookie" = [])),
    responses(
        (status = 200, description = "The user, the session and the organization with the user's role.",
         body = SessionResponse),
    ),
)]
pub(crate) async fn get_session(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    // The family, user, organization, role and factors together: one read of the durable record, or a view
    // of it nothing has changed since.
    let (context, role) = state.service.session(&principal).await?;
    let SessionContext { family, user, organization, totp_confirmed_at, recovery_codes_left, .. } = &*context;
    Ok(HttpResponse::Ok().json(SessionResponse {
        factors: totp_confirmed_at.map(|confirmed_at| FactorJson { kind: "totp", confirmed_at }).into_iter().collect(),
        recovery_codes_left: *recovery_codes_left,
        user: user.into(),
        session: family.into(),
        organization: OrganizationJson {
            id: organization.id,
            slug: &organization.slug,
            name: &organization.name,
            role: role.as_str(),
        },
    }))
}
