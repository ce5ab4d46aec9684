//! `/v1/organizations` and `/v1/organizations/{org}`: create, list, read and update organizations.
//!
//! Every route needs an access token (`Principal`). Reading needs membership; updating and managing
//! members needs `admin` (owners for anything touching an owner, and to disable). An organization the user
//! is not a member of is `organization_not_found`, like one that does not exist.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::Duration;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::json::ApiJson;
use crate::model::{
    OrgRateLimits, OrgUpdate, PolicyAsked, PolicyUpdate, Role, SLUG_PATTERN, SignupMode, display_text, parse_slug,
};
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{Caller, NewOrganization, Principal};

/// A new organization. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Acme Corp", "slug": "acme"})))]
pub(crate) struct CreateBody {
    /// Display name: trimmed, 1 to 100 characters without control characters.
    #[schema(schema_with = required_name_schema)]
    name: String,
    /// 1 to 63 of `a-z`, `0-9` and `-`, not starting or ending with `-`; drawn from the name when absent.
    #[serde(default)]
    #[schema(schema_with = slug_schema)]
    slug: Option<String>,
}

/// What to change. Unknown fields are refused; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "Acme Inc", "signup": {"mode": "domains", "domains": ["acme.com"]}})))]
pub(crate) struct UpdateBody {
    /// New display name.
    #[serde(default)]
    #[schema(schema_with = optional_name_schema)]
    name: Option<String>,
    /// New slug; the id stays, so references by id keep working.
    #[serde(default)]
    #[schema(schema_with = slug_schema)]
    slug: Option<String>,
    /// New sign-up policy.
    #[serde(default)]
    signup: Option<SignupJson>,
    /// Disable (`true`, owners only: its sessions stop refreshing, nobody signs in) or enable it.
    #[serde(default)]
    disabled: Option<bool>,
    /// Policy fields to change (owners only); absent fields stay as they are.
    #[serde(default)]
    policy: Option<PolicyBody>,
}

/// Policy fields to change. Unknown fields are refused.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"mfa_required": true, "access_token_ttl": 300})))]
pub(crate) struct PolicyBody {
    /// Members must sign in with a second factor; members without one enroll it at sign-in.
    #[serde(default)]
    mfa_required: Option<bool>,
    /// The sign-in methods allowed (at least one): `password`, `passkey`, `social_oauth`.
    #[serde(default)]
    #[schema(schema_with = auth_methods_schema)]
    auth_methods: Option<Vec<String>>,
    /// Access-token lifetime in seconds, from 60 to the server's; `null` for the server's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 60)]
    access_token_ttl: Option<Option<u32>>,
    /// Absolute session lifetime in seconds, from 300 to the server's; `null` for the server's.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, minimum = 300)]
    refresh_token_ttl: Option<Option<u32>>,
    /// Limits counted on top of the server's for requests naming the organization; replaces the previous ones.
    #[serde(default)]
    #[schema(schema_with = rate_limits_schema)]
    rate_limits: Option<OrgRateLimits>,
}

impl PolicyBody {
    /// The change asked for, within the server's bounds (`PolicyUpdate::within`).
    fn within(self, server_access: Duration, server_refresh: Duration) -> Result<PolicyUpdate, ApiError> {
        PolicyUpdate::within(
            PolicyAsked {
                mfa_required: self.mfa_required,
                auth_methods: self.auth_methods,
                access_ttl: self.access_token_ttl,
                refresh_ttl: self.refresh_token_ttl,
                rate_limits: self.rate_limits,
            },
            server_access,
            server_refresh,
        )
    }
}

/// A field that may be `null`: present (`Some`, with `null` as `None`) or absent (`None`, by `default`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(de: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// The caller's organizations.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct OrgList<'a> {
    organizations: Vec<OrgJson<'a>>,
}

fn optional_name_schema() -> utoipa::openapi::Object {
    display_text_schema(true)
}

fn slug_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type, schema::SchemaType};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(SLUG_PATTERN))
        .build()
}

/// The errors of `create_organization`.
pub(crate) fn create_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.push(ApiError::SlugTaken);
    all
}

/// `POST /v1/organizations` — requires an access token. Creates an organization; the caller is its owner.
#[utoipa::path(
    post,
    path = "/v1/organizations",
    tag = "organizations",
    summary = "Create an organization",
    description = "The caller becomes its owner. Sign-up starts `closed`. Without `slug`, one is drawn from the name.",
    request_body = CreateBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 201, description = "Created.", body = OrgJson)),
)]
pub(crate) async fn create_organization(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let CreateBody { name, slug: raw_slug } = body.0;
    let name =
        display_text("name", Some(name))?.ok_or_else(|| ApiError::invalid_field("name", "name must not be blank"))?;
    let new = NewOrganization { name, slug: raw_slug.map(parse_slug).transpose()? };
    let org = state.service.create_org(&principal, new).await?;
    Ok(HttpResponse::Created().json(OrgJson::new(&org, Role::Owner)))
}

/// The errors of `list_organizations`.
pub(crate) fn list_errors() -> Vec<ApiError> {
    errors::live_session()
}

/// `GET /v1/organizations` — requires an access token. The caller's organizations.
#[utoipa::path(
    get,
    path = "/v1/organizations",
    tag = "organizations",
    summary = "List my organizations",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The caller's organizations, by name, with the caller's role.", body = OrgList)),
)]
pub(crate) async fn list_organizations(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let orgs = state.service.my_orgs(&principal).await?;
    let organizations = orgs.iter().map(|(org, role)| OrgJson::new(org, *role)).collect();
    Ok(HttpResponse::Ok().json(OrgList { organizations }))
}

/// The errors of `get_organization`.
pub(crate) fn read_errors() -> Vec<ApiError> {
    errors::organization()
}

/// `GET /v1/organizations/{org}` — requires membership.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}",
    tag = "organizations",
    summary = "Read an organization",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The organization, with the caller's role.", body = OrgJson)),
)]
pub(crate) async fn get_organization(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (org, role) = state.service.member_org(&caller, &path_org(&path)?).await?;
    Ok(HttpResponse::Ok().json(OrgJson::new(&org, role)))
}

/// The errors of `update_organization`.
pub(crate) fn update_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.extend(errors::json_body());
    all.extend([ApiError::CsrfRejected, ApiError::InsufficientRole, ApiError::SlugTaken]);
    all
}

/// `PATCH /v1/organizations/{org}` — requires `admin` (`owner` to disable or enable).
#[utoipa::path(
    patch,
    path = "/v1/organizations/{org}",
    tag = "organizations",
    summary = "Update an organization",
    description = "Name, slug and sign-up policy need `admin`; `disabled` needs `owner`. A disabled organization's \
                   sessions stop refreshing and nobody signs in to it. Renaming the slug keeps the id.",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body = UpdateBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The organization afterwards.", body = OrgJson)),
)]
pub(crate) async fn update_organization(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<UpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let UpdateBody { name, slug: raw_slug, signup: raw_signup, disabled, policy: raw_policy } = body.0;
    let name = match name {
        Some(name) => Some(
            display_text("name", Some(name))?
                .ok_or_else(|| ApiError::invalid_field("name", "name must not be blank"))?,
        ),
        None => None,
    };
    let update = OrgUpdate {
        name,
        slug: raw_slug.map(parse_slug).transpose()?,
        signup: raw_signup.map(|json| SignupMode::parse(&json.mode, json.domains)).transpose()?,
        disabled,
        policy: raw_policy.unwrap_or_default().within(state.config.access_token_ttl, state.config.refresh_token_ttl)?,
    };
    let (org, role) = state.service.update_org(&caller, &path_org(&path)?, update).await?;
    Ok(HttpResponse::Ok().json(OrgJson::new(&org, role)))
}
