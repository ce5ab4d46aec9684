//! `/v1/organizations/{org}/sso/connections` (an organization's own identity providers, managed by its owners
//! or its API keys; a domain verified by the platform operator's key) and `POST /v1/auth/sso/discover` (where
//! an address signs in through SSO).
//!
//! A connection's client secret goes in and never comes out: no response, log line or audit entry holds it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::json::ApiJson;
use crate::model::SsoConnection;
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{Caller, ConnectionUpdate, NewConnection};

/// A new connection. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({
    "issuer": "https://acme.okta.com",
    "client_id": "0oa1b2c3d4",
    "client_secret": "…",
    "domains": ["acme.com"],
    "enforce": false
})))]
pub(crate) struct ConnectionBody {
    /// The OpenID Connect issuer: `https://` on a host name (discovery at `/.well-known/openid-configuration`).
    #[schema(max_length = 2048)]
    issuer: String,
    /// The organization's client id at the provider.
    #[schema(min_length = 1, max_length = 2048)]
    client_id: String,
    /// Its client secret there: sealed at rest, never returned.
    #[schema(min_length = 1, max_length = 2048)]
    client_secret: String,
    /// The address domains it signs in; each counts once the platform operator verified it.
    #[serde(default)]
    #[schema(max_items = 100)]
    domains: Vec<String>,
    /// Members whose address is in a verified domain sign in to the organization only through it.
    #[serde(default)]
    enforce: bool,
}

/// What to change of a connection; absent fields stay. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"enforce": true})))]
pub(crate) struct ConnectionUpdateBody {
    #[serde(default)]
    #[schema(max_length = 2048)]
    issuer: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048)]
    client_id: Option<String>,
    /// A new secret replaces the old one.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 2048)]
    client_secret: Option<String>,
    /// The whole list: domains kept keep their verification, new ones start unverified.
    #[serde(default)]
    #[schema(max_items = 100)]
    domains: Option<Vec<String>>,
    #[serde(default)]
    enforce: Option<bool>,
}

/// A domain to verify. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"domain": "acme.com"})))]
pub(crate) struct DomainBody {
    /// One of the connection's domains.
    #[schema(max_length = 255)]
    domain: String,
}

/// An address to find the SSO of. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "ada@acme.com", "redirect_uri": "https://app.example.com/signed-in"})))]
pub(crate) struct DiscoverBody {
    #[schema(format = Email, max_length = 320)]
    email: String,
    /// Where the browser comes back: one of `IDENTSPHERE_ALLOWED_REDIRECT_URIS`.
    redirect_uri: String,
    /// For apps without cookies, as on `GET /v1/auth/oauth/{provider}/authorize`.
    #[serde(default)]
    #[schema(min_length = 43, max_length = 43)]
    code_challenge: Option<String>,
}

/// A domain of a connection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SsoDomain)]
struct DomainJson<'a> {
    domain: &'a str,
    /// Verified by the platform operator: only then does it count.
    verified: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    verified_at: Option<OffsetDateTime>,
}

/// A connection, without its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SsoConnection)]
struct ConnectionJson<'a> {
    id: Uuid,
    organization_id: Uuid,
    /// The provider name of its sign-ins: `sso:<id>` (`GET /v1/auth/oauth/sso:<id>/authorize`).
    provider: String,
    issuer: &'a str,
    client_id: &'a str,
    domains: Vec<DomainJson<'a>>,
    enforce: bool,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a SsoConnection> for ConnectionJson<'a> {
    fn from(c: &'a SsoConnection) -> Self {
        Self {
            id: c.id,
            organization_id: c.org_id,
            provider: c.provider(),
            issuer: &c.issuer,
            client_id: &c.client_id,
            domains: c
                .domains
                .iter()
                .map(|d| DomainJson {
                    domain: &d.domain,
                    verified: d.verified_at.is_some(),
                    verified_at: d.verified_at,
                })
                .collect(),
            enforce: c.enforce,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// The organization's connections.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ConnectionList<'a> {
    connections: Vec<ConnectionJson<'a>>,
}

/// Where an address signs in through SSO.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DiscoveredJson {
    /// Send the browser here (our authorize URL for the connection).
    authorize_url: String,
    connection_id: Uuid,
    organization_id: Uuid,
}

/// The errors of the routes on connections.
pub(crate) fn connections_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.extend([ApiError::CsrfRejected, ApiError::InsufficientRole]);
    all
}

/// The errors of `create_sso_connection`.
pub(crate) fn create_errors() -> Vec<ApiError> {
    let mut all = connections_errors();
    all.extend(errors::json_body());
    all
}

/// The errors of the routes on one connection.
pub(crate) fn connection_errors() -> Vec<ApiError> {
    let mut all = connections_errors();
    all.push(ApiError::ConnectionNotFound);
    all
}

/// The errors of `update_sso_connection`.
pub(crate) fn update_errors() -> Vec<ApiError> {
    let mut all = connection_errors();
    all.extend(errors::json_body());
    all
}

/// The errors of `verify_sso_domain`.
pub(crate) fn verify_errors() -> Vec<ApiError> {
    let mut all = update_errors();
    all.push(ApiError::DomainTaken);
    all
}

/// `POST /v1/organizations/{org}/sso/connections` — an owner, or the organization's API key.
#[utoipa::path(
    post,
    path = "/v1/organizations/{org}/sso/connections",
    tag = "sso",
    summary = "Add an SSO connection",
    description = "The organization's own OpenID Connect provider (Okta, Entra ID, Google Workspace, any OIDC \
                   issuer). Its sign-ins go through provider `sso:<id>`, into this organization only, for addresses \
                   of its **verified** domains only; domains start unverified (the platform operator verifies them, \
                   `…/verify-domain`). The client secret is sealed at rest and never returned.",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body = ConnectionBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 201, description = "The connection.", body = ConnectionJson)),
)]
pub(crate) async fn create_sso_connection(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<ConnectionBody>,
) -> Result<HttpResponse, ApiError> {
    let ConnectionBody { issuer, client_id, client_secret, domains, enforce } = body.0;
    let new = NewConnection { issuer, client_id, client_secret, domains, enforce };
    let connection = state.service.create_sso_connection(&caller, &path_org(&path)?, new).await?;
    Ok(HttpResponse::Created().json(ConnectionJson::from(&connection)))
}

/// `GET /v1/organizations/{org}/sso/connections` — an owner, or the organization's API key.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/sso/connections",
    tag = "sso",
    summary = "The organization's SSO connections",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "Oldest first.", body = ConnectionList)),
)]
pub(crate) async fn list_sso_connections(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let connections = state.service.sso_connections(&caller, &path_org(&path)?).await?;
    Ok(HttpResponse::Ok().json(ConnectionList { connections: connections.iter().map(ConnectionJson::from).collect() }))
}

/// The organization and connection of a path.
fn connection_path(path: web::Path<(String, String)>) -> Result<(crate::model::OrgRef, Uuid), ApiError> {
    let (org, id) = path.into_inner();
    Ok((path_org(&org)?, path_uuid(&id, ApiError::ConnectionNotFound)?))
}

/// `GET /v1/organizations/{org}/sso/connections/{connection_id}` — an owner, or the organization's API key.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/sso/connections/{connection_id}",
    tag = "sso",
    summary = "An SSO connection",
    params(("org" = String, Path, description = "Organization id or slug"), ("connection_id" = Uuid, Path)),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The connection.", body = ConnectionJson)),
)]
pub(crate) async fn get_sso_connection(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = connection_path(path)?;
    let connection = state.service.sso_connection(&caller, &org, id).await?;
    Ok(HttpResponse::Ok().json(ConnectionJson::from(&connection)))
}

/// `PATCH /v1/organizations/{org}/sso/connections/{connection_id}` — an owner, or the organization's API key.
#[utoipa::path(
    patch,
    path = "/v1/organizations/{org}/sso/connections/{connection_id}",
    tag = "sso",
    summary = "Change an SSO connection",
    description = "With `enforce`, members whose address is in a verified domain sign in to the organization only \
                   through this connection: a password, passkey or other provider sign-in into it, and moving a \
                   session of another organization into it, answer `sso_required`.",
    params(("org" = String, Path, description = "Organization id or slug"), ("connection_id" = Uuid, Path)),
    request_body = ConnectionUpdateBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The connection.", body = ConnectionJson)),
)]
pub(crate) async fn update_sso_connection(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ApiJson<ConnectionUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = connection_path(path)?;
    let ConnectionUpdateBody { issuer, client_id, client_secret, domains, enforce } = body.0;
    let update = ConnectionUpdate { issuer, client_id, client_secret, domains, enforce };
    let connection = state.service.update_sso_connection(&caller, &org, id, update).await?;
    Ok(HttpResponse::Ok().json(ConnectionJson::from(&connection)))
}

/// `DELETE /v1/organizations/{org}/sso/connections/{connection_id}` — an owner, or the organization's API key.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/sso/connections/{connection_id}",
    tag = "sso",
    summary = "Remove an SSO connection",
    description = "Its sign-ins stop; the identities linked through it sign in nowhere.",
    params(("org" = String, Path, description = "Organization id or slug"), ("connection_id" = Uuid, Path)),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Removed.")),
)]
pub(crate) async fn delete_sso_connection(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = connection_path(path)?;
    state.service.delete_sso_connection(&caller, &org, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /v1/organizations/{org}/sso/connections/{connection_id}/verify-domain` — a platform key.
#[utoipa::path(
    post,
    path = "/v1/organizations/{org}/sso/connections/{connection_id}/verify-domain",
    tag = "sso",
    summary = "Verify a domain of an SSO connection (platform operator)",
    description = "Only the platform's key (`isp_…`): a verified domain lets the organization's provider vouch for \
                   every address in it, so the operator checks that the organization owns it. A domain is verified \
                   for one connection at most (`domain_taken`).",
    params(("org" = String, Path, description = "Organization id or slug"), ("connection_id" = Uuid, Path)),
    request_body = DomainBody,
    security(("api_key" = [])),
    responses((status = 200, description = "The connection.", body = ConnectionJson)),
)]
pub(crate) async fn verify_sso_domain(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ApiJson<DomainBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = connection_path(path)?;
    let connection = state.service.verify_sso_domain(&caller, &org, id, &body.0.domain).await?;
    Ok(HttpResponse::Ok().json(ConnectionJson::from(&connection)))
}

/// The errors of `discover_sso`.
pub(crate) fn discover_errors() -> Vec<ApiError> {
    let mut all = errors::json_body();
    all.extend(errors::server());
    all.extend([ApiError::ConnectionNotFound, ApiError::RedirectUriNotAllowed, errors::rate_limited()]);
    all
}

/// `POST /v1/auth/sso/discover` — public.
#[utoipa::path(
    post,
    path = "/v1/auth/sso/discover",
    tag = "sso",
    summary = "Find the SSO of an address",
    description = "The authorize URL of the connection that verified the address's domain; `connection_not_found` \
                   when none did — the same answer whether or not an account has the address.",
    request_body = DiscoverBody,
    responses((status = 200, description = "Where to send the browser.", body = DiscoveredJson)),
)]
pub(crate) async fn discover_sso(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: ApiJson<DiscoverBody>,
) -> Result<HttpResponse, ApiError> {
    let ip = origin(&req, &state).ip;
    let DiscoverBody { email, redirect_uri, code_challenge } = body.0;
    let found = state.service.discover_sso(&email, &redirect_uri, code_challenge.as_deref(), ip.as_deref()).await?;
    Ok(HttpResponse::Ok().json(DiscoveredJson {
        authorize_url: found.authorize_url,
        connection_id: found.connection_id,
        organization_id: found.organization_id,
    }))
}
