//! Where credentials come from (bearer header, cookies), the session cookies we set, and the CSRF rule.
//!
//! `Principal` is the typed extractor of an authenticated access token: a handler that takes one is
//! authenticated, and cookie-authenticated unsafe requests have passed the origin check. `Caller` also
//! takes an API key (`Authorization: Bearer isk_…`), for the routes of the admin API.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, HttpResponseBuilder, web};
use futures_util::future::LocalBoxFuture;
use time::Duration;

use crate::app::AppState;
use crate::config::{CookieScope, PublicUrl};
use crate::error::ApiError;
use crate::service::{Caller, Principal, SignIn, is_api_key};

/// The access-token cookie.
pub const ACCESS_COOKIE: &str = "identsphere_at";
/// The refresh-token cookie, sent only to `/v1/auth`.
pub const REFRESH_COOKIE: &str = "identsphere_rt";
const REFRESH_COOKIE_PATH: &str = "/v1/auth";

/// The bearer token of the `Authorization` header, if there is one.
///
/// # Errors
/// `TokenInvalid` when the header is there but is not `Bearer <token>`.
pub fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| ApiError::TokenInvalid)?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(ApiError::TokenInvalid),
    }
}

/// A non-empty cookie's value.
#[must_use]
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.cookie(name).map(|c| c.value().to_owned()).filter(|v| !v.is_empty())
}

/// Refuses a cookie-authenticated unsafe request whose `Origin` (or, without one, `Sec-Fetch-Site:
/// cross-site`) is not ours or an allowed one.
///
/// # Errors
/// `CsrfRejected`.
pub fn check_csrf(req: &HttpRequest, public: &PublicUrl, allowed: &[String]) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
        return Ok(());
    }
    let headers = req.headers();
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let origin = origin.to_str().map_err(|_| ApiError::CsrfRejected)?.trim().to_ascii_lowercase();
            if origin == public.origin || allowed.contains(&origin) { Ok(()) } else { Err(ApiError::CsrfRejected) }
        }
        None => match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            Some(site) if site.eq_ignore_ascii_case("cross-site") => Err(ApiError::CsrfRejected),
            _ => Ok(()),
        },
    }
}

/// The refresh token a request presents: the one in its body, else the `identsphere_rt` cookie's, which
/// must pass the CSRF rule like any cookie credential.
///
/// # Errors
/// `CsrfRejected` for a cookie sent cross-site.
pub fn refresh_token(
    req: &HttpRequest,
    in_body: Option<String>,
    public: &PublicUrl,
    allowed: &[String],
) -> Result<Option<String>, ApiError> {
    if in_body.is_some() {
        return Ok(in_body);
    }
    let Some(token) = cookie(req, REFRESH_COOKIE) else { return Ok(None) };
    check_csrf(req, public, allowed)?;
    Ok(Some(token))
}

/// Both tokens a request presents, for a route that takes either (logout): the access token (bearer, else
/// the `identsphere_at` cookie's) and the refresh token (the body's, else the `identsphere_rt` cookie's). A
/// request without a bearer token that sends a session cookie must pass the CSRF rule.
///
/// # Errors
/// `TokenInvalid` for a malformed `Authorization` header; `CsrfRejected`.
pub fn session_credentials(
    req: &HttpRequest,
    refresh_in_body: Option<String>,
    public: &PublicUrl,
    allowed: &[String],
) -> Result<(Option<String>, Option<String>), ApiError> {
    let bearer_token = bearer(req)?;
    let cookie_access = if bearer_token.is_none() { cookie(req, ACCESS_COOKIE) } else { None };
    let cookie_refresh = if refresh_in_body.is_none() { cookie(req, REFRESH_COOKIE) } else { None };
    if bearer_token.is_none() && (cookie_access.is_some() || cookie_refresh.is_some()) {
        check_csrf(req, public, allowed)?;
    }
    Ok((bearer_token.or(cookie_access), refresh_in_body.or(cookie_refresh)))
}

fn session_cookie(
    name: &'static str,
    value: String,
    path: &'static str,
    scope: &CookieScope,
    max_age: Duration,
) -> Cookie<'static> {
    let same_site = match (scope.cross_site, name == REFRESH_COOKIE) {
        (true, _) => SameSite::None,
        (false, true) => SameSite::Strict,
        (false, false) => SameSite::Lax,
    };
    let mut cookie = Cookie::build(name, value)
        .http_only(true)
        .same_site(same_site)
        .path(path)
        .secure(scope.secure)
        .max_age(max_age)
        .finish();
    if let Some(domain) = &scope.domain {
        cookie.set_domain(domain.clone());
    }
    cookie
}

/// Sets both session cookies for a sign-in, each living as long as its token.
pub fn set_session_cookies(response: &mut HttpResponseBuilder, sign_in: &SignIn, scope: &CookieScope) {
    response.cookie(session_cookie(
        ACCESS_COOKIE,
        sign_in.access.token.clone(),
        "/",
        scope,
        Duration::seconds(sign_in.access.expires_in),
    ));
    response.cookie(session_cookie(
        REFRESH_COOKIE,
        sign_in.refresh_token.clone(),
        REFRESH_COOKIE_PATH,
        scope,
        sign_in.family.expires_at - sign_in.now,
    ));
}

/// The two cookies that clear the session cookies (the same scope, or a browser keeps the originals).
#[must_use]
pub fn cleared_session_cookies(scope: &CookieScope) -> [Cookie<'static>; 2] {
    [
        session_cookie(ACCESS_COOKIE, String::new(), "/", scope, Duration::ZERO),
        session_cookie(REFRESH_COOKIE, String::new(), REFRESH_COOKIE_PATH, scope, Duration::ZERO),
    ]
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = match bearer(req) {
            Ok(Some(token)) => Ok(token),
            Ok(None) => match cookie(req, ACCESS_COOKIE) {
                Some(token) => state
                    .as_ref()
                    .map_or(Ok(()), |s| check_csrf(req, &s.config.public_url, &s.config.allowed_origins))
                    .map(|()| token),
                None => Err(ApiError::TokenMissing),
            },
            Err(err) => Err(err),
        };
        let ip = request_ip(req, state.as_ref());
        Box::pin(async move {
            let state = state.ok_or_else(missing_state)?;
            let principal = state.service.authenticate(&token?).await?;
            Ok(Principal { ip, ..principal })
        })
    }
}

fn request_ip(req: &HttpRequest, state: Option<&web::Data<AppState>>) -> Option<String> {
    state
        .and_then(|s| crate::http::client_ip::client_ip(req, &s.config.trusted_proxies, s.config.client_ip_header))
        .map(|ip| ip.to_string())
}

fn missing_state() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("application state missing"))
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let key = match bearer(req) {
            Ok(Some(token)) if is_api_key(&token) => token,
            _ => {
                let user = Principal::from_request(req, payload);
                return Box::pin(async move { user.await.map(Caller::User) });
            }
        };
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let ip = request_ip(req, state.as_ref());
        Box::pin(async move {
            let state = state.ok_or_else(missing_state)?;
            Ok(Caller::Key(state.service.authenticate_key(&key, ip).await?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn public() -> PublicUrl {
        PublicUrl {
            base: "https://auth.example.com".into(),
            origin: "https://auth.example.com".into(),
            secure_cookies: true,
        }
    }

    #[test]
    fn csrf_allows_our_origin_and_listed_ones_only() {
        let allowed = vec!["https://app.example.com".to_owned()];
        let check = |req: TestRequest| check_csrf(&req.to_http_request(), &public(), &allowed);
        assert!(check(TestRequest::post().insert_header(("Origin", "https://auth.example.com"))).is_ok());
        assert!(check(TestRequest::post().insert_header(("Origin", "https://APP.example.com"))).is_ok());
        assert!(check(TestRequest::post().insert_header(("Origin", "https://evil.example"))).is_err());
        assert!(check(TestRequest::post().insert_header(("Origin", "null"))).is_err());
        assert!(check(TestRequest::post().insert_header(("Sec-Fetch-Site", "cross-site"))).is_err());
        assert!(check(TestRequest::post().insert_header(("Sec-Fetch-Site", "same-origin"))).is_ok());
        assert!(check(TestRequest::post()).is_ok(), "no browser signal: not a browser CSRF");
        assert!(check(TestRequest::get().insert_header(("Origin", "https://evil.example"))).is_ok());
    }

    #[test]
    fn bearer_must_be_well_formed() {
        let get = |value: &str| bearer(&TestRequest::get().insert_header(("Authorization", value)).to_http_request());
        assert_eq!(get("Bearer abc").unwrap().as_deref(), Some("abc"));
        assert_eq!(get("bearer abc").unwrap().as_deref(), Some("abc"));
        assert!(get("Basic abc").is_err());
        assert!(get("Bearer ").is_err());
        assert!(bearer(&TestRequest::get().to_http_request()).unwrap().is_none());
    }
}
