//! `/v1/auth/*`: register, login, refresh, logout and the session read.
//!
//! Handlers extract, authorize, call one `AuthService` function and map its result to the token
//! response and cookies. Public: register, login, refresh (refresh token), logout (access or refresh
//! token). `GET /v1/auth/session` requires an access token (`Principal`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use identsphere_actors::{Aal, AuthMethod, FamilyRecord, Origin, UserProfile};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Email, OrgRef, Password, Role};
use crate::error::ApiError;
use crate::http::client_ip::client_ip;
use crate::http::credentials::{
    ACCESS_COOKIE, REFRESH_COOKIE, bearer, check_csrf, cleared_session_cookies, cookie, set_session_cookies,
};
use crate::http::json::{ApiJson, OptionalJson};
use crate::service::{LogoutCredentials, LogoutScope, Principal, Registration, SignIn};
use crate::startup::AppState;
use crate::store::SessionContext;

/// Longest display name kept, in characters.
const MAX_DISPLAY_NAME: usize = 100;
/// Longest `User-Agent` kept with a session.
const MAX_USER_AGENT: usize = 512;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    email: String,
    password: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    organization: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    organization: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RefreshBody {
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ScopeName {
    Local,
    Others,
    Global,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LogoutBody {
    #[serde(default)]
    scope: Option<ScopeName>,
    #[serde(default)]
    refresh_token: Option<String>,
}

#[derive(Debug, Serialize)]
struct UserJson<'a> {
    id: Uuid,
    email: &'a str,
    email_verified: bool,
    display_name: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
}

impl<'a> From<&'a UserProfile> for UserJson<'a> {
    fn from(user: &'a UserProfile) -> Self {
        Self {
            id: user.id,
            email: &user.email,
            email_verified: user.email_verified,
            display_name: user.display_name.as_deref(),
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct SessionJson {
    id: Uuid,
    organization_id: Uuid,
    aal: Aal,
    auth_method: AuthMethod,
    auth_time: i64,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl From<&FamilyRecord> for SessionJson {
    fn from(family: &FamilyRecord) -> Self {
        Self {
            id: family.sid,
            organization_id: family.org_id,
            aal: family.aal,
            auth_method: family.auth_method,
            auth_time: family.auth_time.unix_timestamp(),
            expires_at: family.expires_at,
        }
    }
}

#[derive(Debug, Serialize)]
struct TokenResponse<'a> {
    token_type: &'static str,
    access_token: &'a str,
    expires_in: i64,
    refresh_token: &'a str,
    user: UserJson<'a>,
    session: SessionJson,
}

#[derive(Debug, Serialize)]
struct OrganizationJson<'a> {
    id: Uuid,
    slug: &'a str,
    name: &'a str,
    role: &'static str,
}

#[derive(Debug, Serialize)]
struct SessionResponse<'a> {
    user: UserJson<'a>,
    session: SessionJson,
    organization: OrganizationJson<'a>,
}

/// The token response with both session cookies.
fn token_response(status: StatusCode, sign_in: &SignIn, state: &AppState) -> HttpResponse {
    let mut response = HttpResponseBuilder::new(status);
    set_session_cookies(&mut response, sign_in, state.config.public_url.secure_cookies);
    response.json(TokenResponse {
        token_type: "Bearer",
        access_token: &sign_in.access.token,
        expires_in: sign_in.access.expires_in,
        refresh_token: &sign_in.refresh_token,
        user: (&sign_in.user).into(),
        session: (&sign_in.family).into(),
    })
}

fn origin(req: &HttpRequest, state: &AppState) -> Origin {
    Origin {
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        ip: client_ip(req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
    }
}

fn org_ref(organization: Option<String>) -> Result<Option<OrgRef>, ApiError> {
    match organization.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(ApiError::invalid_field("organization", "organization must not be empty")),
        Some(raw) => OrgRef::parse(raw).map(Some).ok_or(ApiError::OrganizationNotFound),
    }
}

/// `POST /v1/auth/register` — public. Creates an account (and a personal organization unless one that
/// allows sign-up is named) and signs it in: `201` token response.
pub(crate) async fn register_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let RegisterBody { email, password, display_name, organization } = body.0;
    let display_name = match display_name.map(|n| n.trim().to_owned()) {
        Some(name) if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) => {
            return Err(ApiError::invalid_field(
                "display_name",
                "display_name must be at most 100 characters, without control characters",
            ));
        }
        Some(name) if name.is_empty() => None,
        other => other,
    };
    let registration = Registration {
        email: Email::parse(&email)?,
        password: Password::parse(password)?,
        display_name,
        organization: org_ref(organization)?,
    };
    let sign_in = state.service.register(registration, origin(&req, &state)).await?;
    Ok(token_response(StatusCode::CREATED, &sign_in, &state))
}

/// `POST /v1/auth/login` — public. Email and password; `200` token response.
pub(crate) async fn login_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<LoginBody>,
) -> Result<HttpResponse, ApiError> {
    let LoginBody { email, password, organization } = body.0;
    let email = Email::parse(&email)?;
    let sign_in = state.service.login(&email, password, org_ref(organization)?, origin(&req, &state)).await?;
    Ok(token_response(StatusCode::OK, &sign_in, &state))
}

/// `POST /v1/auth/refresh` — authenticated by the refresh token (body, or the `identsphere_rt` cookie,
/// which must pass the CSRF rule). `200` token response with the new pair.
pub(crate) async fn refresh_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<RefreshBody>,
) -> Result<HttpResponse, ApiError> {
    let token = match body.0.and_then(|b| b.refresh_token) {
        Some(token) => token,
        None => {
            let token = cookie(&req, REFRESH_COOKIE).ok_or(ApiError::TokenMissing)?;
            check_csrf(&req, &state.config.public_url, &state.config.allowed_origins)?;
            token
        }
    };
    let ip = client_ip(&req, &state.config.trusted_proxies).map(|ip| ip.to_string());
    let sign_in = state.service.refresh(&token, ip.as_deref()).await?;
    Ok(token_response(StatusCode::OK, &sign_in, &state))
}

/// `POST /v1/auth/logout` — authenticated by the access token (bearer or cookie) or, if it expired, the
/// refresh token (body or cookie). `204`, cookies cleared; a revoked or invalid credential also clears
/// them.
pub(crate) async fn logout_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: OptionalJson<LogoutBody>,
) -> Result<HttpResponse, ApiError> {
    let secure = state.config.public_url.secure_cookies;
    let outcome = async {
        let (scope, body_refresh) = body.0.map_or((None, None), |b| (b.scope, b.refresh_token));
        let bearer_token = bearer(&req)?;
        let cookie_access = if bearer_token.is_none() { cookie(&req, ACCESS_COOKIE) } else { None };
        let cookie_refresh = if body_refresh.is_none() { cookie(&req, REFRESH_COOKIE) } else { None };
        if bearer_token.is_none() && (cookie_access.is_some() || cookie_refresh.is_some()) {
            check_csrf(&req, &state.config.public_url, &state.config.allowed_origins)?;
        }
        let credentials = LogoutCredentials {
            access: bearer_token.as_deref().or(cookie_access.as_deref()),
            refresh: body_refresh.as_deref().or(cookie_refresh.as_deref()),
        };
        let scope = match scope {
            None | Some(ScopeName::Local) => LogoutScope::Local,
            Some(ScopeName::Others) => LogoutScope::Others,
            Some(ScopeName::Global) => LogoutScope::Global,
        };
        state.service.logout(credentials, scope).await
    };
    match outcome.await {
        Ok(()) => {
            let mut response = HttpResponse::NoContent();
            for cookie in cleared_session_cookies(secure) {
                response.cookie(cookie);
            }
            Ok(response.finish())
        }
        Err(err @ (ApiError::TokenRevoked | ApiError::TokenInvalid | ApiError::TokenExpired)) => {
            let mut response = HttpResponse::from_error(err);
            for cookie in cleared_session_cookies(secure) {
                response.add_cookie(&cookie).map_err(|e| ApiError::Internal(e.into()))?;
            }
            Ok(response)
        }
        Err(err) => Err(err),
    }
}

/// `GET /v1/auth/session` — requires an access token. The user, the session and the organization with
/// the user's role.
pub(crate) async fn get_session(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let (SessionContext { family, user, organization, .. }, role): (SessionContext, Role) =
        state.service.session(&principal).await?;
    Ok(HttpResponse::Ok().json(SessionResponse {
        user: (&user).into(),
        session: (&family).into(),
        organization: OrganizationJson {
            id: organization.id,
            slug: &organization.slug,
            name: &organization.name,
            role: role.as_str(),
        },
    }))
}
