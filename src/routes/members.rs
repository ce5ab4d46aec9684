//! `/v1/organizations/{org}/members*`: list, re-role and remove members.
//!
//! Reading needs membership; changing needs `admin` (`owner` for anything touching an owner).

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::json::ApiJson;
use crate::model::{MembershipChange, Role};
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::*;

/// A member's new role. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    #[schema(schema_with = role_schema)]
    role: String,
}

/// A member.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MemberJson<'a> {
    user: UserJson<'a>,
    #[schema(schema_with = role_schema)]
    role: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
}

/// The members, owners first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MemberList<'a> {
    members: Vec<MemberJson<'a>>,
}

/// The errors of `list_members`.
pub(crate) fn members_errors() -> Vec<ApiError> {
    errors::organization()
}

/// `GET /v1/organizations/{org}/members` — requires membership.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/members",
    tag = "organizations",
    summary = "List the members",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The members, owners first.", body = MemberList)),
)]
pub(crate) async fn list_members(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let members = state.service.members(&caller, &path_org(&path)?).await?;
    let members = members
        .iter()
        .map(|m| MemberJson { user: (&m.user).into(), role: m.role.as_str(), joined_at: m.joined_at })
        .collect();
    Ok(HttpResponse::Ok().json(MemberList { members }))
}

/// The errors of `change_member` and `remove_member`.
pub(crate) fn member_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.extend([ApiError::CsrfRejected, ApiError::InsufficientRole, ApiError::MemberNotFound, ApiError::LastOwner]);
    all
}

/// The errors of `change_member`.
pub(crate) fn role_errors() -> Vec<ApiError> {
    let mut all = member_errors();
    all.extend(errors::json_body());
    all
}

/// `PATCH /v1/organizations/{org}/members/{user_id}` — requires `admin`; `owner` to touch an owner or make one.
#[utoipa::path(
    patch,
    path = "/v1/organizations/{org}/members/{user_id}",
    tag = "organizations",
    summary = "Change a member's role",
    description = "The last owner cannot be demoted (`last_owner`).",
    params(("org" = String, Path, description = "Organization id or slug"),
           ("user_id" = String, Path, description = "The member's user id")),
    request_body = RoleBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Changed.")),
)]
pub(crate) async fn change_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ApiJson<RoleBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let role = Role::from_field(&body.0.role)?;
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    state.service.change_member(&caller, &path_org(&org)?, user, MembershipChange::Role(role)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /v1/organizations/{org}/members/{user_id}` — requires `admin` (`owner` for an owner), or is the
/// member themself leaving.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/members/{user_id}",
    tag = "organizations",
    summary = "Remove a member, or leave",
    description = "The member's sessions in the organization end at once. The last owner cannot leave or be removed \
                   (`last_owner`).",
    params(("org" = String, Path, description = "Organization id or slug"),
           ("user_id" = String, Path, description = "The member's user id")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Removed.")),
)]
pub(crate) async fn remove_member(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    state.service.change_member(&caller, &path_org(&org)?, user, MembershipChange::Remove).await?;
    Ok(HttpResponse::NoContent().finish())
}
