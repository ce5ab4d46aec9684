//! The axum extractors: where a request's credential is found and which checks each extractor adds.
//!
//! The credential is `Authorization: Bearer <token>`, else the `identsphere_at` cookie. A cookie-only
//! unsafe request (`POST`, `PUT`, `PATCH`, `DELETE`) must come from an allowed origin, as IdentSphere
//! itself requires (`csrf_rejected`). Every extractor finds the [`IdentSphere`] in the request's
//! extensions, put there by [`IdentSphere::layer`].

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{Method, header};
use uuid::Uuid;

use crate::{AuthError, Claims, IdentSphere, Session};

/// The name of the access-token cookie IdentSphere sets.
const ACCESS_COOKIE: &str = "identsphere_at";

/// Any valid access token. Refuses with `401 token_missing`, `token_invalid`, `token_expired` or
/// `token_revoked` (or `403 csrf_rejected` for a cross-site cookie request).
///
/// ```
/// use identsphere_axum::Authenticated;
///
/// async fn handler(Authenticated(claims): Authenticated) -> String {
///     format!("user {} of organization {:?}", claims.sub, claims.org)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Authenticated(pub Claims);

/// The claims when a token was sent, `None` when none was. A token that was sent but does not verify is
/// still refused, so a client learns that its token has expired rather than being served anonymously.
/// `Option<Authenticated>` behaves the same way.
#[derive(Clone, Debug)]
pub struct MaybeAuthenticated(pub Option<Claims>);

/// A valid access token of a session with a verified second factor (`aal: aal2`); otherwise
/// `403 insufficient_aal`.
#[derive(Clone, Debug)]
pub struct RequireAal2(pub Claims);

/// A valid access token whose `org` is the organization of the route: the path parameter named by
/// [`crate::Builder::org_path_param`] (default `org_id`), or the id set with
/// [`crate::Builder::organization`]. Otherwise `403 not_a_member`.
#[derive(Clone, Debug)]
pub struct RequireOrg(pub Claims);

/// A valid access token whose session IdentSphere itself confirms is live (online mode), for endpoints
/// that must be exact: a logout is seen at once rather than at the next poll of the revocation feed.
/// Costs a round trip to `GET /v1/auth/session` per token and `online_cache_ttl`; refuses with
/// `503 service_unavailable` when IdentSphere cannot be reached.
#[derive(Clone, Debug)]
pub struct OnlineAuthenticated {
    /// The verified claims.
    pub claims: Claims,
    /// What IdentSphere says of the session now.
    pub session: Arc<Session>,
}

/// The verifier the layer put in the request.
fn verifier(parts: &Parts) -> Result<IdentSphere, AuthError> {
    parts.extensions.get::<IdentSphere>().cloned().ok_or_else(|| {
        tracing::error!("an IdentSphere extractor is used on a route without `.layer(identsphere.layer())`");
        AuthError::Internal
    })
}

/// The bearer token, else the access cookie (after the CSRF check); `None` when neither was sent.
fn credential(parts: &Parts, auth: &IdentSphere) -> Result<Option<String>, AuthError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    if let Some(token) = bearer {
        return Ok(Some(token.to_owned()));
    }
    let cookie = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == ACCESS_COOKIE && !value.is_empty())
        .map(|(_, value)| value.to_owned());
    if cookie.is_some() && !same_origin_allowed(parts, &auth.inner.allowed_origins) {
        return Err(AuthError::CsrfRejected);
    }
    Ok(cookie)
}

/// The CSRF rule for cookie-authenticated requests: safe methods pass; an unsafe one needs an `Origin`
/// that is allowed (or, with none configured, the request's own host), or, without `Origin`, no
/// `Sec-Fetch-Site: cross-site`.
fn same_origin_allowed(parts: &Parts, allowed: &[String]) -> bool {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE) {
        return true;
    }
    let value_of = |name| parts.headers.get(name).and_then(|v: &header::HeaderValue| v.to_str().ok());
    let Some(origin) = value_of(header::ORIGIN) else {
        return value_of(header::HeaderName::from_static("sec-fetch-site")) != Some("cross-site");
    };
    if allowed.is_empty() {
        let host = origin.split_once("://").map(|(_, host)| host);
        return host.is_some() && host == value_of(header::HOST);
    }
    allowed.iter().any(|a| a == origin)
}

/// Verifies the request's credential: `Ok(None)` when none was sent.
async fn verified(parts: &Parts) -> Result<Option<(IdentSphere, String, Claims)>, AuthError> {
    let auth = verifier(parts)?;
    let Some(token) = credential(parts, &auth)? else { return Ok(None) };
    let claims = auth.verify(&token).await?;
    Ok(Some((auth, token, claims)))
}

async fn required(parts: &Parts) -> Result<(IdentSphere, String, Claims), AuthError> {
    verified(parts).await?.ok_or(AuthError::TokenMissing)
}

impl<S: Send + Sync> FromRequestParts<S> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        required(parts).await.map(|(_, _, claims)| Self(claims))
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Authenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(verified(parts).await?.map(|(_, _, claims)| Self(claims)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuthenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(verified(parts).await?.map(|(_, _, claims)| claims)))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequireAal2 {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let (_, _, claims) = required(parts).await?;
        if claims.is_aal2() { Ok(Self(claims)) } else { Err(AuthError::InsufficientAal) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequireOrg {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (auth, _, claims) = required(parts).await?;
        let expected = match auth.inner.organization {
            Some(id) => id,
            None => {
                let name = &auth.inner.org_path_param;
                let params = RawPathParams::from_request_parts(parts, state).await.map_err(|_| AuthError::Internal)?;
                let Some((_, value)) = params.iter().find(|(key, _)| *key == name.as_str()) else {
                    tracing::error!(param = %name, "RequireOrg on a route without this path parameter");
                    return Err(AuthError::Internal);
                };
                Uuid::parse_str(value).map_err(|_| AuthError::NotAMember)?
            }
        };
        if claims.org == Some(expected) { Ok(Self(claims)) } else { Err(AuthError::NotAMember) }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OnlineAuthenticated {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let auth = verifier(parts)?;
        let token = credential(parts, &auth)?.ok_or(AuthError::TokenMissing)?;
        let (claims, session) = auth.verify_online(&token).await?;
        Ok(Self { claims, session })
    }
}
