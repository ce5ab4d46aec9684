//! `/v1/auth/oauth/*` and `/v1/auth/identities/*`: signing in through a provider (the browser is redirected
//! there and back), collecting a sign-in with a one-time code, and the identities linked to an account.
//!
//! The browser that starts a sign-in gets a binding cookie (`identsphere_oauth`, HttpOnly, scoped to
//! `/v1/auth/oauth`); the callback must come from the same browser, so nobody can sign a victim in to the
//! attacker's account (login CSRF). Tokens never travel in a URL: the callback sets the session cookies, or
//! hands the app a one-time code.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{FromRequest as _, HttpRequest, HttpResponse, HttpResponseBuilder, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::credentials::{cookie, set_session_cookies};
use crate::http::json::{ApiJson, OptionalJson};
use crate::model::Identity;
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{Callback, Finished, Principal, Started};

/// The browser binding of a provider sign-in.
const BINDING_COOKIE: &str = "identsphere_oauth";
const BINDING_PATH: &str = "/v1/auth/oauth";

/// `GET …/authorize`'s query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuthorizeQuery {
    /// Where the browser comes back: one of `IDENTSPHERE_ALLOWED_REDIRECT_URIS`.
    redirect_uri: String,
    /// The organization to sign in to (id or slug); without it, the user's most recently used one.
    #[serde(default)]
    organization: Option<String>,
    /// For apps without cookies: `base64url(SHA-256(code_verifier))`. The callback then hands back a one-time
    /// `code` for `POST /v1/auth/oauth/token` instead of setting cookies.
    #[serde(default)]
    code_challenge: Option<String>,
}

/// The provider's callback query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// A one-time code to exchange. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeExchangeBody {
    /// From the redirect's query.
    #[schema(max_length = 64)]
    code: String,
    /// The PKCE verifier whose challenge the authorize call carried; without a challenge, the browser that
    /// started the sign-in proves it with its cookie.
    #[serde(default)]
    #[schema(max_length = 128)]
    code_verifier: Option<String>,
}

/// Where a link starts. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentityLinkBody {
    /// Where the browser comes back once linked (`?linked=<provider>`): an allowed redirect URI.
    redirect_uri: String,
}

/// A link started: send the browser there.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LinkStarted {
    /// The provider's authorization URL.
    authorize_url: String,
}

/// The password, typed again, for a session whose sign-in is not recent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnlinkBody {
    /// The user's password.
    #[schema(max_length = 256)]
    password: String,
}

/// An identity linked to the account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct IdentityView<'a> {
    /// Its id.
    id: Uuid,
    /// A platform provider's name, or `sso:<connection id>`.
    provider: &'a str,
    /// The address the provider gave at the last sign-in.
    #[schema(required = true)]
    email: Option<&'a str>,
    /// When it was linked.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Its last sign-in.
    #[serde(with = "time::serde::rfc3339::option")]
    last_used_at: Option<OffsetDateTime>,
}

impl<'a> From<&'a Identity> for IdentityView<'a> {
    fn from(i: &'a Identity) -> Self {
        Self {
            id: i.id,
            provider: &i.provider,
            email: i.email.as_deref(),
            created_at: i.created_at,
            last_used_at: i.last_used_at,
        }
    }
}

/// The account's identities.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct IdentityList<'a> {
    /// Oldest first.
    identities: Vec<IdentityView<'a>>,
}

/// The errors of `authorize`.
pub(crate) fn authorize_errors() -> Vec<ApiError> {
    let mut all = Vec::from(errors::server());
    all.extend([
        ApiError::invalid_field("redirect_uri", ""),
        ApiError::ProviderNotFound,
        ApiError::RedirectUriNotAllowed,
        ApiError::OAuthProviderError,
        ApiError::OAuthProviderUnavailable,
        errors::rate_limited(),
    ]);
    all
}

/// `GET /v1/auth/oauth/{provider}/authorize` — public: starts a sign-in at a provider.
#[utoipa::path(
    get,
    path = "/v1/auth/oauth/{provider}/authorize",
    tag = "social",
    summary = "Start a sign-in at a provider",
    description = "Redirects the browser to the provider with `state`, `nonce` and PKCE S256, and sets the \
                   `identsphere_oauth` cookie that binds the sign-in to this browser. `redirect_uri` must be one of \
                   `IDENTSPHERE_ALLOWED_REDIRECT_URIS` (`redirect_uri_not_allowed` otherwise, as JSON: no open \
                   redirect). Other errors come back to `redirect_uri` as `?error=<code>`.",
    params(("provider" = String, Path, description = "A platform provider's name (`google`, `github`, …)."), AuthorizeQuery),
    security(()),
    responses((status = 302, description = "To the provider.", headers(("Location" = String), ("Set-Cookie" = String)))),
)]
pub(crate) async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = query::<AuthorizeQuery>(req.query_string())?;
    let ip = origin(&req, &state).ip;
    let started = state
        .service
        .oauth_authorize(&provider, &query.redirect_uri, query.organization, query.code_challenge, None, ip.as_deref())
        .await;
    match started {
        Ok(started) => Ok(to_provider(&state, started)),
        Err(err @ (ApiError::RedirectUriNotAllowed | ApiError::ProviderNotFound)) => Err(err),
        Err(err) => Ok(back_with_error(&query.redirect_uri, &err, &state)),
    }
}

/// The errors of `callback` that are answered here, not at the app's `redirect_uri`.
pub(crate) fn callback_errors() -> Vec<ApiError> {
    let mut all = Vec::from(errors::server());
    all.push(ApiError::OAuthStateInvalid);
    all
}

/// `GET /v1/auth/oauth/{provider}/callback` — the provider sends the browser here.
#[utoipa::path(
    get,
    path = "/v1/auth/oauth/{provider}/callback",
    tag = "social",
    summary = "The provider's callback",
    description = "Exchanges the code, validates the ID token (signature by the provider's keys, `iss`, `aud`, \
                   `azp`, `exp`, `nonce`), signs the identity's account in and redirects to the `redirect_uri` with \
                   the session cookies set — or with `?code=` (one-time, one minute) when the sign-in must be \
                   collected at `POST /v1/auth/oauth/token` (the app sent a `code_challenge`, or a second factor is \
                   due), or `?linked=<provider>` after a link, or `?error=<code>`. A callback whose `state` is \
                   unknown, used or from another browser is `400 oauth_state_invalid` here: there is nowhere safe \
                   to send it.",
    params(("provider" = String, Path, description = "The provider."), CallbackQuery),
    security(()),
    responses((status = 302, description = "Back to the app.", headers(("Location" = String), ("Set-Cookie" = String)))),
)]
pub(crate) async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = query::<CallbackQuery>(req.query_string()).unwrap_or_default();
    let browser = cookie(&req, BINDING_COOKIE);
    let call = Callback {
        provider: &provider,
        state: query.state.as_deref(),
        code: query.code.as_deref(),
        error: query.error.as_deref(),
        browser: browser.as_deref(),
    };
    let (redirect_uri, finished) = state.service.oauth_callback(call, origin(&req, &state)).await;
    let Some(redirect_uri) = redirect_uri else { return Err(finished.err().unwrap_or(ApiError::OAuthStateInvalid)) };
    let secure = state.config.public_url.secure_cookies;
    Ok(match finished {
        Ok(Finished::SignedIn(sign_in)) => {
            let mut response = redirect(&redirect_uri, &[]);
            set_session_cookies(&mut response, &sign_in, &state.config.cookies);
            response.cookie(binding_cookie(String::new(), secure, time::Duration::ZERO)).finish()
        }
        // The browser binding stays until the code is collected: without an app challenge it is the proof.
        Ok(Finished::Collect(code)) => redirect(&redirect_uri, &[("code", &code.to_string())]).finish(),
        Ok(Finished::Linked) => {
            let mut response = redirect(&redirect_uri, &[("linked", &provider)]);
            response.cookie(binding_cookie(String::new(), secure, time::Duration::ZERO)).finish()
        }
        Err(err) => back_with_error(&redirect_uri, &err, &state),
    })
}

/// The errors of `exchange_code`.
pub(crate) fn exchange_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend(errors::server());
    all.extend([
        ApiError::SsoRequired,
        ApiError::OAuthCodeInvalid,
        ApiError::AccountDisabled,
        ApiError::NotAMember,
        ApiError::AuthMethodNotAllowed,
    ]);
    all
}

/// `POST /v1/auth/oauth/token` — public: the one-time code is the credential.
#[utoipa::path(
    post,
    path = "/v1/auth/oauth/token",
    tag = "social",
    summary = "Collect a provider sign-in with its one-time code",
    description = "Answers like a login: the token response (with the session cookies), or `mfa_required`. The code \
                   works once, for one minute; with the `code_verifier` of the authorize call's `code_challenge`, \
                   or, without a challenge, from the browser that started the sign-in (its `identsphere_oauth` \
                   cookie). `oauth_code_invalid` otherwise.",
    request_body = CodeExchangeBody,
    security(()),
    responses((status = 200, description = "The token response, or the second-factor step.", body = inline(LoginResponse))),
)]
pub(crate) async fn exchange_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<CodeExchangeBody>,
) -> Result<HttpResponse, ApiError> {
    let CodeExchangeBody { code, code_verifier } = body.0;
    let browser = cookie(&req, BINDING_COOKIE);
    let outcome =
        state.service.oauth_collect(&code, code_verifier.as_deref(), browser.as_deref(), origin(&req, &state)).await?;
    Ok(login_response(StatusCode::OK, outcome, &state))
}

/// The errors of `link_identity`.
pub(crate) fn link_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::ProviderNotFound,
        ApiError::RedirectUriNotAllowed,
        ApiError::ReauthenticationRequired,
        ApiError::OAuthProviderUnavailable,
        ApiError::OAuthProviderError,
        errors::rate_limited(),
    ]);
    all
}

/// `POST /v1/auth/identities/{provider}/link` — an access token that signed in recently.
#[utoipa::path(
    post,
    path = "/v1/auth/identities/{provider}/link",
    tag = "social",
    summary = "Link a provider identity to the account",
    description = "Starts the provider flow for the session's user: send the browser to `authorize_url` (the \
                   response sets the binding cookie). The callback links the identity and redirects to \
                   `redirect_uri?linked=<provider>`; an identity of another account is `identity_taken`. Needs a \
                   sign-in within the reauthentication window (`reauthentication_required`).",
    params(("provider" = String, Path, description = "The provider.")),
    request_body = IdentityLinkBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "Where to send the browser.", body = LinkStarted)),
)]
pub(crate) async fn link_identity(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
    body: ApiJson<IdentityLinkBody>,
) -> Result<HttpResponse, ApiError> {
    let principal = Principal::extract(&req).await?;
    let ip = origin(&req, &state).ip;
    let started = state
        .service
        .oauth_authorize(&provider, &body.0.redirect_uri, None, None, Some(&principal), ip.as_deref())
        .await?;
    let secure = state.config.public_url.secure_cookies;
    Ok(HttpResponse::Ok()
        .cookie(binding_cookie(started.browser, secure, time::Duration::minutes(10)))
        .json(LinkStarted { authorize_url: started.location }))
}

/// `GET /v1/auth/identities` — an access token.
#[utoipa::path(
    get,
    path = "/v1/auth/identities",
    tag = "social",
    summary = "The account's provider identities",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "Oldest first.", body = IdentityList)),
)]
pub(crate) async fn list_identities(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let identities = state.service.identities(&principal).await?;
    Ok(HttpResponse::Ok().json(IdentityList { identities: identities.iter().map(IdentityView::from).collect() }))
}

/// The errors of `unlink_identity`.
pub(crate) fn unlink_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([
        ApiError::IdentityNotFound,
        ApiError::ReauthenticationRequired,
        ApiError::InvalidCredentials,
        ApiError::LastSignInMethod,
        errors::rate_limited(),
    ]);
    all
}

/// `DELETE /v1/auth/identities/{id}` — an access token that signed in recently (or the password).
#[utoipa::path(
    delete,
    path = "/v1/auth/identities/{id}",
    tag = "social",
    summary = "Unlink a provider identity",
    description = "Never the last way to sign in: an account without a password or a passkey keeps its last \
                   identity (`last_sign_in_method`).",
    params(("id" = Uuid, Path, description = "The identity's id.")),
    request_body(content = Option<UnlinkBody>, description = "The password, when the sign-in is not recent."),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Unlinked.")),
)]
pub(crate) async fn unlink_identity(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: OptionalJson<UnlinkBody>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::IdentityNotFound)?;
    state.service.unlink_identity(&principal, id, body.0.map(|b| b.password)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The one sentence a bad query of these routes gets: it never echoes what was sent.
pub(crate) const QUERY_REFUSED: &str =
    "redirect_uri is required; code, state, error, organization and code_challenge are text";

/// Parses a query string of these routes.
pub(crate) fn query<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T, ApiError> {
    web::Query::<T>::from_query(raw)
        .map(web::Query::into_inner)
        .map_err(|_| ApiError::invalid_field("redirect_uri", QUERY_REFUSED))
}

fn binding_cookie(value: String, secure: bool, max_age: time::Duration) -> Cookie<'static> {
    // `Lax`: the provider's redirect back is a top-level navigation, which `Lax` lets carry the cookie.
    Cookie::build(BINDING_COOKIE, value)
        .http_only(true)
        .same_site(SameSite::Lax)
        .path(BINDING_PATH)
        .secure(secure)
        .max_age(max_age)
        .finish()
}

fn to_provider(state: &AppState, started: Started) -> HttpResponse {
    let secure = state.config.public_url.secure_cookies;
    HttpResponse::Found()
        .insert_header((LOCATION, started.location))
        .cookie(binding_cookie(started.browser, secure, time::Duration::minutes(10)))
        .finish()
}

/// A `302` to the app's allowed `redirect_uri` with `params` added to its query.
fn redirect(redirect_uri: &str, params: &[(&str, &str)]) -> HttpResponseBuilder {
    // The URI was parsed when the sign-in started (it is an allowed one); it parses again.
    let location = match url::Url::parse(redirect_uri) {
        Ok(mut url) => {
            if !params.is_empty() {
                url.query_pairs_mut().extend_pairs(params);
            }
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    };
    let mut response = HttpResponse::Found();
    response.insert_header((LOCATION, location));
    response
}

fn back_with_error(redirect_uri: &str, err: &ApiError, state: &AppState) -> HttpResponse {
    if let ApiError::Internal(cause) | ApiError::ServiceUnavailable(cause) = err {
        tracing::warn!(error = %cause, "provider sign-in failed");
    }
    let secure = state.config.public_url.secure_cookies;
    redirect(redirect_uri, &[("error", err.catalog().0)])
        .cookie(binding_cookie(String::new(), secure, time::Duration::ZERO))
        .finish()
}
