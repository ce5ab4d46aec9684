//! The admin API: an organization's API keys (`/v1/organizations/{org}/api-keys`, managed by its
//! signed-in owners) and its users (`/v1/organizations/{org}/users`, managed by its admins or, server to
//! server, by an API key).
//!
//! Every route takes a `Caller`: an access token or an API key (`Authorization: Bearer isk_…`). A key acts
//! as an owner of its organization only; another organization answers `organization_not_found` like one
//! that does not exist.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::json::ApiJson;
use crate::model::{
    ApiKey, Email, MembershipChange, OrgUser, Password, Role, UserQuery, display_text, normalize_email as normalize,
};
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::{Caller, NewUser, USER_PAGE_MAX};

/// A new API key. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"name": "billing backend"})))]
pub(crate) struct KeyBody {
    /// What the key is for: trimmed, 1 to 100 characters without control characters.
    #[schema(schema_with = required_name_schema)]
    name: String,
}

/// An API key, without its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KeyJson<'a> {
    id: Uuid,
    name: &'a str,
    /// The user who created it.
    #[schema(required = true)]
    created_by: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// Its last use, to the minute.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    last_used_at: Option<OffsetDateTime>,
    revoked: bool,
}

impl<'a> From<&'a ApiKey> for KeyJson<'a> {
    fn from(key: &'a ApiKey) -> Self {
        Self {
            id: key.id,
            name: &key.name,
            created_by: key.created_by,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
            revoked: key.revoked,
        }
    }
}

/// A new API key with its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NewKeyJson<'a> {
    #[serde(flatten)]
    key: KeyJson<'a>,
    /// `isk_<id>_<secret>`: send it as `Authorization: Bearer …`. Stored hashed: never shown again.
    secret: &'a str,
}

/// The organization's API keys, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct KeyList<'a> {
    api_keys: Vec<KeyJson<'a>>,
}

/// A user to create in the organization. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"email": "grace@example.com", "password": "correct horse battery staple", "role": "member"})))]
pub(crate) struct NewUserBody {
    #[schema(format = Email)]
    email: String,
    /// The password the user signs in with (the password policy of registration applies).
    #[schema(min_length = 8, max_length = 256)]
    password: String,
    #[serde(default)]
    #[schema(schema_with = display_name_schema)]
    display_name: Option<String>,
    /// Default `member`; `owner` needs an owner (or a key).
    #[serde(default)]
    #[schema(schema_with = role_schema)]
    role: Option<String>,
}

/// What to change of a user in the organization. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"disabled": true})))]
pub(crate) struct UserUpdateBody {
    /// Disable (`true`: their sessions in the organization end, they sign in to it no more) or enable.
    disabled: bool,
}

/// A user as an organization's administrators see them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationUser)]
struct OrgUserJson<'a> {
    #[serde(flatten)]
    user: UserJson<'a>,
    #[schema(schema_with = role_schema)]
    role: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    joined_at: OffsetDateTime,
    /// Disabled in this organization by an administrator.
    disabled: bool,
    /// The user's id in the system they were imported from (`POST …/users/import`).
    #[schema(required = true)]
    external_id: Option<&'a str>,
}

impl<'a> From<&'a OrgUser> for OrgUserJson<'a> {
    fn from(u: &'a OrgUser) -> Self {
        Self {
            user: UserJson::from(&u.user),
            role: u.role.as_str(),
            joined_at: u.joined_at,
            disabled: u.disabled,
            external_id: u.external_id.as_deref(),
        }
    }
}

/// A page of users, by email.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct UserPage<'a> {
    users: Vec<OrgUserJson<'a>>,
    /// Pass as `after` for the next page; `null` on the last one.
    #[schema(required = true)]
    next: Option<String>,
}

/// The longest email, search or cursor the users list takes.
const MAX_EMAIL_CHARS: usize = 320;
use crate::service::MAX_EXTERNAL_ID_CHARS;

/// The query of `list_users`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UserListQuery {
    /// Only users whose email contains this (case ignored).
    #[param(max_length = 320)] // MAX_EMAIL_CHARS
    email: Option<String>,
    /// The `next` of the page before.
    #[param(max_length = 320)] // MAX_EMAIL_CHARS
    after: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// Only the user imported with this `external_id`.
    #[param(max_length = 255)] // MAX_EXTERNAL_ID_CHARS
    external_id: Option<String>,
}

/// The errors of the routes on keys.
pub(crate) fn key_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.extend([ApiError::CsrfRejected, ApiError::InsufficientRole]);
    all
}

/// The errors of `create_api_key`.
pub(crate) fn create_key_errors() -> Vec<ApiError> {
    let mut all = key_errors();
    all.extend(errors::json_body());
    all
}

/// The errors of `revoke_api_key`.
pub(crate) fn revoke_key_errors() -> Vec<ApiError> {
    let mut all = key_errors();
    all.push(ApiError::ApiKeyNotFound);
    all
}

/// `POST /v1/organizations/{org}/api-keys` — requires a signed-in `owner`. A new key, shown once.
#[utoipa::path(
    post,
    path = "/v1/organizations/{org}/api-keys",
    tag = "admin",
    summary = "Create an API key for the organization",
    description = "For the SaaS backend, server to server: the key acts as an owner of this organization on its \
                   routes and on the users routes. The secret is in this response only (stored as its SHA-256); \
                   its `isk_` prefix lets secret scanners find a leaked one. Only a signed-in owner makes keys \
                   (a key makes none).",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body = KeyBody,
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 201, description = "The key with its secret.", body = NewKeyJson)),
)]
pub(crate) async fn create_api_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<KeyBody>,
) -> Result<HttpResponse, ApiError> {
    let name = display_text("name", Some(body.0.name))?
        .ok_or_else(|| ApiError::invalid_field("name", "name must not be blank"))?;
    let minted = state.service.create_key(&caller, &path_org(&path)?, name).await?;
    Ok(HttpResponse::Created().json(NewKeyJson { key: KeyJson::from(&minted.key), secret: &minted.secret }))
}

/// `GET /v1/organizations/{org}/api-keys` — requires a signed-in `owner`.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/api-keys",
    tag = "admin",
    summary = "List the organization's API keys",
    params(("org" = String, Path, description = "Organization id or slug")),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "The keys, without secrets, oldest first.", body = KeyList)),
)]
pub(crate) async fn list_api_keys(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let keys = state.service.keys(&caller, &path_org(&path)?).await?;
    Ok(HttpResponse::Ok().json(KeyList { api_keys: keys.iter().map(KeyJson::from).collect() }))
}

/// `DELETE /v1/organizations/{org}/api-keys/{key_id}` — requires a signed-in `owner`.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/api-keys/{key_id}",
    tag = "admin",
    summary = "Revoke an API key",
    description = "From now on the key authenticates nothing (`token_revoked`).",
    params(("org" = String, Path, description = "Organization id or slug"), ("key_id" = Uuid, Path)),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Revoked.")),
)]
pub(crate) async fn revoke_api_key(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, id) = path.into_inner();
    let id = path_uuid(&id, ApiError::ApiKeyNotFound)?;
    state.service.revoke_key(&caller, &path_org(&org)?, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The errors of the routes on users.
pub(crate) fn users_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.push(ApiError::InsufficientRole);
    all
}

/// The errors of `list_users`.
pub(crate) fn list_users_errors() -> Vec<ApiError> {
    let mut all = users_errors();
    all.push(ApiError::InvalidRequest { message: String::new(), param: None });
    all
}

/// The errors of `create_user`.
pub(crate) fn create_user_errors() -> Vec<ApiError> {
    let mut all = users_errors();
    all.extend(errors::json_body());
    all.extend([
        ApiError::CsrfRejected,
        ApiError::InvalidEmail(""),
        ApiError::WeakPassword { message: "", param: "password" },
        ApiError::EmailTaken,
        errors::rate_limited(),
    ]);
    all
}

/// The errors of routes on one user.
pub(crate) fn user_errors() -> Vec<ApiError> {
    let mut all = users_errors();
    all.push(ApiError::MemberNotFound);
    all
}

/// `GET /v1/organizations/{org}/users` — requires `admin` or a key.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/users",
    tag = "admin",
    summary = "List the organization's users",
    description = "Its members by email, a page at a time, optionally only those whose email contains `email`.",
    params(("org" = String, Path, description = "Organization id or slug"), UserListQuery),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of users.", body = UserPage)),
)]
pub(crate) async fn list_users(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query = user_query(req.query_string())?;
    let limit = query.limit;
    let users = state.service.org_users(&caller, &path_org(&path)?, query).await?;
    let full = users.len() == usize::try_from(limit).unwrap_or(usize::MAX);
    let next = full.then(|| users.last().map(|u| normalize(&u.user.email))).flatten();
    Ok(HttpResponse::Ok().json(UserPage { users: users.iter().map(OrgUserJson::from).collect(), next }))
}

/// The users list's query: an email to search for, the page to continue after, the page's size.
///
/// # Errors
/// `invalid_request` naming `limit`.
pub(crate) fn user_query(raw: &str) -> Result<UserQuery, ApiError> {
    let bad = || ApiError::invalid_field("limit", "email and after must be text, limit from 1 to 200");
    let query = web::Query::<UserListQuery>::from_query(raw).map_err(|_| bad())?.into_inner();
    let limit = query.limit.unwrap_or(50);
    if !(1..=USER_PAGE_MAX).contains(&limit) {
        return Err(bad());
    }
    // An email is at most 320 characters (RFC 5321's 64 + @ + 255): so are a search and a cursor.
    for (name, text) in [("email", &query.email), ("after", &query.after)] {
        if text.as_ref().is_some_and(|t| t.chars().count() > MAX_EMAIL_CHARS) {
            return Err(ApiError::invalid_field(name, "email and after must be text, limit from 1 to 200"));
        }
    }
    let lower = |text: Option<String>| text.map(|t| normalize(t.trim())).filter(|t| !t.is_empty());
    if query.external_id.as_ref().is_some_and(|id| id.chars().count() > MAX_EXTERNAL_ID_CHARS) {
        return Err(ApiError::invalid_field("external_id", "external_id is at most 255 characters"));
    }
    Ok(UserQuery {
        email_contains: lower(query.email),
        after: lower(query.after),
        limit,
        external_id: query.external_id.filter(|id| !id.is_empty()),
    })
}

/// `POST /v1/organizations/{org}/users` — requires `admin` (`owner` for an owner) or a key.
#[utoipa::path(
    post,
    path = "/v1/organizations/{org}/users",
    tag = "admin",
    summary = "Create a user in the organization",
    description = "A new account that belongs to this organization, with the password it signs in with; a \
                   verification link is mailed. An email that already has an account is `email_taken` (as at \
                   registration): bring that account in with an invitation, which its owner accepts.",
    params(("org" = String, Path, description = "Organization id or slug")),
    request_body = NewUserBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 201, description = "The user.", body = OrgUserJson)),
)]
pub(crate) async fn create_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: ApiJson<NewUserBody>,
) -> Result<HttpResponse, ApiError> {
    let NewUserBody { email, password, display_name, role: raw_role } = body.0;
    let new = NewUser {
        email: Email::parse(&email)?,
        password: Password::parse(password)?,
        display_name: display_text("display_name", display_name)?,
        role: raw_role.as_deref().map(Role::from_field).transpose()?.unwrap_or(Role::Member),
    };
    let user = state.service.create_user(&caller, &path_org(&path)?, new).await?;
    Ok(HttpResponse::Created().json(OrgUserJson::from(&user)))
}

/// `GET /v1/organizations/{org}/users/{user_id}` — requires `admin` or a key.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/users/{user_id}",
    tag = "admin",
    summary = "Read a user of the organization",
    params(("org" = String, Path, description = "Organization id or slug"), ("user_id" = Uuid, Path)),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The user.", body = OrgUserJson)),
)]
pub(crate) async fn get_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    let user = state.service.org_user(&caller, &path_org(&org)?, user).await?;
    Ok(HttpResponse::Ok().json(OrgUserJson::from(&user)))
}

/// `PATCH /v1/organizations/{org}/users/{user_id}` — requires `admin` (`owner` for an owner) or a key.
#[utoipa::path(
    patch,
    path = "/v1/organizations/{org}/users/{user_id}",
    tag = "admin",
    summary = "Disable or enable a user in the organization",
    description = "A disabled user's sessions in the organization end at once (denylisted, in the revocation \
                   feed) and they sign in to it no more (`not_a_member`) until enabled; their account and other \
                   organizations are not this organization's to touch. The last enabled owner cannot be disabled.",
    params(("org" = String, Path, description = "Organization id or slug"), ("user_id" = Uuid, Path)),
    request_body = UserUpdateBody,
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "The user afterwards.", body = OrgUserJson)),
)]
pub(crate) async fn update_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: ApiJson<UserUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let (org, user) = (path_org(&org)?, path_uuid(&user, ApiError::MemberNotFound)?);
    state.service.change_member(&caller, &org, user, MembershipChange::Disable(body.0.disabled)).await?;
    let user = state.service.org_user(&caller, &org, user).await?;
    Ok(HttpResponse::Ok().json(OrgUserJson::from(&user)))
}

/// `DELETE /v1/organizations/{org}/users/{user_id}` — requires `admin` (`owner` for an owner) or a key.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/users/{user_id}",
    tag = "admin",
    summary = "Delete a user from the organization",
    description = "The user leaves the organization and their sessions in it end at once; the account itself is \
                   deleted when it belongs to no other organization (one that does is not this organization's to \
                   delete). The last enabled owner cannot be deleted.",
    params(("org" = String, Path, description = "Organization id or slug"), ("user_id" = Uuid, Path)),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Deleted.")),
)]
pub(crate) async fn delete_user(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    state.service.change_member(&caller, &path_org(&org)?, user, MembershipChange::Delete).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /v1/organizations/{org}/users/{user_id}/sessions` — requires `admin` or a key.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/users/{user_id}/sessions",
    tag = "admin",
    summary = "List a user's sessions in the organization",
    params(("org" = String, Path, description = "Organization id or slug"), ("user_id" = Uuid, Path)),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "Their live sessions in this organization, newest first.",
               body = SessionList)),
)]
pub(crate) async fn list_user_sessions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    let sessions = state.service.user_sessions(&caller, &path_org(&org)?, user).await?;
    let sessions = sessions.iter().map(|s| SessionItem::new(s, None)).collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// `DELETE /v1/organizations/{org}/users/{user_id}/sessions` — requires `admin` or a key.
#[utoipa::path(
    delete,
    path = "/v1/organizations/{org}/users/{user_id}/sessions",
    tag = "admin",
    summary = "End a user's sessions in the organization",
    description = "Like a logout of each: their access tokens fail at once with `token_revoked` and enter the \
                   revocation feed. Sessions in other organizations are not touched.",
    params(("org" = String, Path, description = "Organization id or slug"), ("user_id" = Uuid, Path)),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 204, description = "Ended.")),
)]
pub(crate) async fn end_user_sessions(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, user) = path.into_inner();
    let user = path_uuid(&user, ApiError::MemberNotFound)?;
    state.service.end_user_sessions(&caller, &path_org(&org)?, user).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_query_refuses_what_its_description_refuses() {
        let query = user_query("email=Grace&after=alan%40example.com&limit=2").unwrap();
        assert_eq!(
            (query.email_contains.as_deref(), query.after.as_deref(), query.limit),
            (Some("grace"), Some("alan@example.com"), 2)
        );
        let long = "\u{b1}".repeat(MAX_EMAIL_CHARS + 1);
        for raw in [format!("after={long}"), format!("email={long}"), "limit=0".to_owned(), "limit=201".to_owned()] {
            let err = user_query(&raw).unwrap_err();
            assert_eq!(err.catalog().0, "invalid_request", "{raw}");
        }
        assert!(
            user_query(&format!("after={}", "\u{b1}".repeat(MAX_EMAIL_CHARS))).is_ok(),
            "320 characters, not bytes"
        );
    }
}
