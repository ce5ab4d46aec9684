//! `/v1/organizations/{org}/invitations*` and `/v1/invitations/accept`: invite by email, list, revoke,
//! accept.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::json::ApiJson;
use crate::model::{Email, Invitation, Role};
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::*;

/// Who to invite, with which role. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "grace@example.com", "role": "member"})))]
pub(crate) struct InviteBody {
    /// Trimmed, then validated (`invalid_email`); only the account with this email may accept.
    #[schema(format = Email)]
    email: String,
    #[schema(schema_with = role_schema)]
    role: String,
}

/// An invitation's token. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptBody {
    /// The `token` query parameter of the invitation link.
    #[schema(max_length = 128)]
    token: String,
}

/// A waiting invitation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct InvitationJson<'a> {
    id: Uuid,
    organization_id: Uuid,
    email: &'a str,
    #[schema(schema_with = role_schema)]
    role: &'static str,
    #[schema(required = true)]
    invited_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl<'a> From<&'a Invitation> for InvitationJson<'a> {
    fn from(i: &'a Invitation) -> Self {
        Self {
            id: i.id,
            organization_id: i.org_id,
            email: &i.email,
            role: i.role.as_str(),
            invited_by: i.invited_by,
            created_at: i.created_at,
            expires_at: i.expires_at,
        }
    }
}

/// The organization's waiting invitations, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct InvitationList<'a> {
    invitations: Vec<InvitationJson<'a>>,
}

/// The errors of `create_invitation`.
pub(crate) fn invite_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.extend(errors::json_body());
    all.extend([
        ApiError::CsrfRejected,
        ApiError::InsufficientRole,
        ApiError::InvalidEmail(""),
        errors::rate_limited(),
    ]);
    all
}

/// `POST /v1/organizations/{org}/invitations` — requires `admin` (`owner` to invite an owner). Mails an
/// invitation link to the address.
#[utoipa::path(
    post,
    path = "/v1/organizations/{org}/invitations",
    tag = "organizations",
    summary = "Invite someone by email",
    description = "The link (`<link base>/accept-invitation?token=…`) is mailed in the background; it works once, for 7 \
                   days, for the account with this email only: accepted with `/v1/invitations/accept` when signed \
                   in, or at registration with `invitation`.",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body = InviteBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 201, description = "The invitation.", body = InvitationJson)),
)]
pub(crate) async fn create_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<InviteBody>,
) -> Result<HttpResponse, ApiError> {
    let InviteBody { email, role: raw_role } = body.0;
    let (email, role) = (Email::parse(&email)?, Role::from_field(&raw_role)?);
    let invitation = state.service.invite(&caller, &path_org(&path)?, &email, role).await?;
    Ok(HttpResponse::Created().json(InvitationJson::from(&invitation)))
}

/// The errors of `list_invitations`.
pub(crate) fn invitations_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.push(ApiError::InsufficientRole);
    all
}

/// `GET /v1/organizations/{org}/invitations` — requires `admin`.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/invitations",
    tag = "organizations",
    summary = "List waiting invitations",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "Invitations neither accepted, revoked nor expired.", body = InvitationList)),
)]
pub(crate) async fn list_invitations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let invitations = state.service.invitations(&caller, &path_org(&path)?).await?;
    Ok(HttpResponse::Ok().json(InvitationList { invitations: invitations.iter().map(InvitationJson::from).collect() }))
}

/// The errors of `revoke_invitation`.
pub(crate) fn revoke_errors() -> Vec<ApiError> {
    let mut all = invitations_errors();
    all.extend([ApiError::CsrfRejected, ApiError::InvitationNotFound]);
    all
}

/// `DELETE /v1/organizations/{org}/invitations/{invitation_id}` — requires `admin`.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/invitations/{invitation_id}",
    tag = "organizations",
    summary = "Revoke a waiting invitation",
    params(("org" = String, Path, description = "Organization id or slug"),
           ("invitation_id" = String, Path, description = "The invitation's id")),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Revoked: its link no longer works.")),
)]
pub(crate) async fn revoke_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    let id = path_uuid(&id, ApiError::InvitationNotFound)?;
    state.service.revoke_invitation(&caller, &path_org(&org)?, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of `accept_invitation`.
pub(crate) fn accept_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.extend(errors::json_body());
    all.extend([ApiError::InvitationInvalid, ApiError::InvitationEmailMismatch]);
    all
}

/// `POST /v1/invitations/accept` — requires an access token of the invited email's account.
#[utoipa::path(
    post,
    path = "/v1/invitations/accept",
    tag = "organizations",
    summary = "Accept an invitation",
    description = "The signed-in user joins the organization with the invitation's role (a member keeps their role). \
                   Switch the session there with `/v1/auth/refresh` and `organization`.",
    request_body = AcceptBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The organization joined, with the caller's role.", body = OrgJson)),
)]
pub(crate) async fn accept_invitation(
    state: web::Data<AppState>,
    principal: Principal,
    body: ApiJson<AcceptBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, role) = state.service.accept_invitation(&principal, &body.0.token).await?;
    Ok(HttpResponse::Ok().json(OrgJson::new(&org, role)))
}
