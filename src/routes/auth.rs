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
    ACCESS_COOKIE, REFRESH_COOKIE, bearer, check_csrf, cleared_session_cookies, cookie, refresh_token,
    set_session_cookies,
};
use crate::http::json::{ApiJson, OptionalJson};
use crate::routes::{errors, string_enum};
use crate::service::{FACTORS, LoginOutcome, LogoutCredentials, LogoutScope, Principal, Registration, SignIn};
use crate::startup::AppState;
use crate::store::SessionContext;

/// Longest display name kept, in characters.
const MAX_DISPLAY_NAME: usize = 100;
/// Longest `User-Agent` kept with a session.
const MAX_USER_AGENT: usize = 512;
/// The characters `str::trim` removes (Unicode `White_Space`), as the inside of a regex class: the
/// patterns of the OpenAPI description spell them out, since `\s` differs between regex dialects.
macro_rules! white_space {
    () => {
        r"\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000"
    };
}
/// The characters `char::is_control` holds for, as the inside of a regex class.
macro_rules! control {
    () => {
        r"\x00-\x1F\x7F-\x9F"
    };
}
/// What `register_user` accepts as a display name: white space around at most `MAX_DISPLAY_NAME`
/// characters without control characters that start and end with neither.
#[rustfmt::skip]
const DISPLAY_NAME_PATTERN: &str = concat!(
    "^[", white_space!(), "]*",
    "(?:[^", control!(), white_space!(), "]",
    "(?:[^", control!(), "]{0,98}", // MAX_DISPLAY_NAME - 2: a test holds them together
    "[^", control!(), white_space!(), "])?)?",
    "[", white_space!(), "]*$",
);
/// What `org_ref` does not refuse as blank: anything but white space.
const NOT_BLANK_PATTERN: &str = concat!("[^", white_space!(), "]");

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

/// The user, as the token and session responses show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub(crate) struct UserJson<'a> {
    /// User id (`sub`).
    id: Uuid,
    /// The email as typed at registration.
    email: &'a str,
    email_verified: bool,
    #[schema(required = true)]
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

/// A session family: one sign-in and its refreshes, in one organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
struct SessionJson {
    /// Session family id (`sid`), the same across refreshes.
    id: Uuid,
    organization_id: Uuid,
    /// Assurance level: `aal1` one factor, `aal2` a second factor verified.
    #[schema(schema_with = aal_schema)]
    aal: Aal,
    /// How the user originally authenticated.
    #[schema(schema_with = auth_method_schema)]
    auth_method: AuthMethod,
    /// When the user originally authenticated (Unix seconds).
    auth_time: i64,
    /// The family's absolute end: no refresh after it.
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

pub(crate) fn display_name_schema() -> utoipa::openapi::Object {
    display_text_schema(true)
}

/// The schema of a display text as `display_text` reads it (a user's or an organization's name); `null` is
/// allowed where the field is optional.
pub(crate) fn display_text_schema(nullable: bool) -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type, schema::SchemaType};
    let types = if nullable { vec![Type::String, Type::Null] } else { vec![Type::String] };
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter(types))
        .description(Some(
            "Trimmed (Unicode white space), then at most 100 characters without control characters. Blank \
             means none.",
        ))
        .pattern(Some(DISPLAY_NAME_PATTERN))
        .build()
}

fn organization_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type, schema::SchemaType};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some("An organization id (UUID) or slug. Must not be blank."))
        .pattern(Some(NOT_BLANK_PATTERN))
        .build()
}

fn aal_schema() -> utoipa::openapi::Object {
    string_enum([Aal::Aal1, Aal::Aal2].map(Aal::as_str))
}

fn auth_method_schema() -> utoipa::openapi::Object {
    string_enum([AuthMethod::Password, AuthMethod::Passkey, AuthMethod::SocialOauth].map(AuthMethod::as_str))
}

fn bearer_schema() -> utoipa::openapi::Object {
    string_enum([TOKEN_TYPE])
}

fn role_schema() -> utoipa::openapi::Object {
    string_enum([Role::Owner, Role::Admin, Role::Member].map(Role::as_str))
}

/// The `token_type` of every token response.
const TOKEN_TYPE: &str = "Bearer";

const SESSION_LINK: &str = "Read the session with the new access token.";
const REFRESH_LINK: &str = "Rotate the new refresh token.";
const LOGOUT_LINK: &str = "End the session with the new refresh token.";

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

/// What a completed sign-in or refresh returns; the same response sets both session cookies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TokenResponse<'a> {
    #[schema(schema_with = bearer_schema)]
    token_type: &'static str,
    /// An RS256 JWT (`typ: access`), verifiable with the JWKS.
    access_token: &'a str,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// Opaque to clients: send it to `/v1/auth/refresh` or `/v1/auth/logout`.
    refresh_token: &'a str,
    user: UserJson<'a>,
    session: SessionJson,
    /// Only at a sign-up into an organization that takes the address's domain: the organization the
    /// account joins once its address is verified (the emailed link). Until then the session is in the
    /// account's new personal organization; after verifying, sign in or switch with `organization`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pending_organization: Option<PendingOrganizationJson<'a>>,
}

/// An organization an account joins once its address is verified.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = PendingOrganization)]
struct PendingOrganizationJson<'a> {
    id: Uuid,
    slug: &'a str,
    name: &'a str,
    /// Always `email_verified`: what the membership waits for.
    #[schema(schema_with = joins_when_schema)]
    joins_when: &'static str,
}

fn joins_when_schema() -> utoipa::openapi::Object {
    string_enum(["email_verified"])
}

/// The organization of a session, with the user's role in it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Organization)]
struct OrganizationJson<'a> {
    id: Uuid,
    slug: &'a str,
    name: &'a str,
    #[schema(schema_with = role_schema)]
    role: &'static str,
}

/// A second factor enrolled.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Factor)]
struct FactorJson {
    /// The factor type.
    #[serde(rename = "type")]
    #[schema(schema_with = factor_type_schema)]
    kind: &'static str,
    /// When it was confirmed.
    #[serde(with = "time::serde::rfc3339")]
    confirmed_at: OffsetDateTime,
}

fn factor_type_schema() -> utoipa::openapi::Object {
    string_enum(FACTORS)
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

impl<'a> From<&'a SignIn> for TokenResponse<'a> {
    fn from(sign_in: &'a SignIn) -> Self {
        Self {
            token_type: TOKEN_TYPE,
            access_token: &sign_in.access.token,
            expires_in: sign_in.access.expires_in,
            refresh_token: &sign_in.refresh_token,
            user: (&sign_in.user).into(),
            session: (&sign_in.family).into(),
            pending_organization: sign_in.pending.as_ref().map(|org| PendingOrganizationJson {
                id: org.id,
                slug: &org.slug,
                name: &org.name,
                joins_when: "email_verified",
            }),
        }
    }
}

/// `body` (the token response, or a response that contains it) with both session cookies.
pub(crate) fn with_session_cookies(
    status: StatusCode,
    sign_in: &SignIn,
    state: &AppState,
    body: impl Serialize,
) -> HttpResponse {
    let mut response = HttpResponseBuilder::new(status);
    set_session_cookies(&mut response, sign_in, state.config.public_url.secure_cookies);
    response.json(body)
}

/// The token response with both session cookies.
pub(crate) fn token_response(status: StatusCode, sign_in: &SignIn, state: &AppState) -> HttpResponse {
    with_session_cookies(status, sign_in, state, TokenResponse::from(sign_in))
}

pub(crate) fn origin(req: &HttpRequest, state: &AppState) -> Origin {
    Origin {
        user_agent: req
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect()),
        ip: client_ip(req, &state.config.trusted_proxies, state.config.client_ip_header).map(|ip| ip.to_string()),
    }
}

/// A display text (a user's or an organization's name) as `DISPLAY_NAME_PATTERN` describes it: trimmed,
/// at most `MAX_DISPLAY_NAME` characters without control characters; blank is none.
pub(crate) fn display_text(field: &'static str, text: Option<String>) -> Result<Option<String>, ApiError> {
    match text.map(|n| n.trim().to_owned()) {
        Some(name) if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) => {
            Err(ApiError::invalid_field(
                field,
                format!("{field} must be at most 100 characters, without control characters"),
            ))
        }
        Some(name) if name.is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub(crate) fn org_ref(organization: Option<String>) -> Result<Option<OrgRef>, ApiError> {
    match organization.as_deref().map(str::trim) {
        None => Ok(None),
        Some("") => Err(ApiError::invalid_field("organization", "organization must not be empty")),
        Some(raw) => OrgRef::parse(raw).map(Some).ok_or(ApiError::OrganizationNotFound),
    }
}

/// The errors of `register_user`.
pub(crate) fn register_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([
        ApiError::InvalidEmail(""),
        ApiError::WeakPassword(""),
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

/// The answer to a sign-in: the token response with the session cookies, or the second-factor step
/// without any.
fn login_response(status: StatusCode, outcome: LoginOutcome, state: &AppState) -> HttpResponse {
    match outcome {
        LoginOutcome::SignedIn(sign_in) => {
            let body = LoginResponse::SignedIn(Box::new(TokenResponse::from(&*sign_in)));
            with_session_cookies(status, &sign_in, state, body)
        }
        LoginOutcome::MfaRequired { mfa_token, enrollment_required } => {
            HttpResponse::build(status).json(LoginResponse::MfaRequired(MfaRequired {
                mfa_required: true,
                mfa_token: &mfa_token,
                factors: if enrollment_required { &[] } else { &FACTORS },
                enrollment_required,
            }))
        }
    }
}

/// The password was right and a second factor is due: no session yet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MfaRequired<'a> {
    /// Always `true`.
    mfa_required: bool,
    /// An RS256 JWT (`typ: mfa`): send it with a code to `/v1/auth/mfa/verify` within 5 minutes; it works
    /// once.
    mfa_token: &'a str,
    /// The factor types the user can complete the sign-in with (a recovery code always works too);
    /// empty when the user has none yet.
    #[schema(value_type = Vec<String>)]
    factors: &'a [&'static str],
    /// The organization requires a second factor and the user has none: enroll one with the mfa token
    /// (`/v1/auth/mfa/totp`, then `/v1/auth/mfa/totp/confirm`, which completes the sign-in).
    enrollment_required: bool,
}

/// What login answers with: a session, or the second-factor step.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum LoginResponse<'a> {
    SignedIn(Box<TokenResponse<'a>>),
    MfaRequired(MfaRequired<'a>),
}

/// The errors of `refresh_session`.
pub(crate) fn refresh_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend([
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
        state.service.logout(credentials, scope).await.map(|()| scope)
    };
    match outcome.await {
        Ok(scope) => {
            let mut response = HttpResponse::NoContent();
            // `others` ends the other sessions: this one, and its cookies, stay.
            if scope != LogoutScope::Others {
                for cookie in cleared_session_cookies(secure) {
                    response.cookie(cookie);
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_display_name_pattern_allows_max_display_name_characters() {
        assert!(DISPLAY_NAME_PATTERN.contains(&format!("]{{0,{}}}[", MAX_DISPLAY_NAME - 2)));
    }
}
