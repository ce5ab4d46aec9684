//! `/v1/auth/sessions*`: the caller's live sessions, and ending one.

use actix_web::{HttpResponse, web};

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::*;

/// The errors of `list_sessions`.
pub(crate) fn sessions_errors() -> Vec<ApiError> {
    errors::live_session()
}

/// `GET /v1/auth/sessions` — requires an access token. The caller's live sessions.
#[utoipa::path(
    get,
    path = "/v1/auth/sessions",
    tag = "auth",
    summary = "List my sessions",
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 200, description = "Live sessions, newest first; `current` marks the caller's.", body = SessionList)),
)]
pub(crate) async fn list_sessions(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let sessions = state.service.sessions(&principal).await?;
    let current = Some(principal.claims.sid);
    let sessions = sessions.iter().map(|s| SessionItem::new(s, current)).collect();
    Ok(HttpResponse::Ok().json(SessionList { sessions }))
}

/// The errors of `end_session`.
pub(crate) fn end_session_errors() -> Vec<ApiError> {
    let mut all = errors::live_session_unsafe();
    all.push(ApiError::SessionNotFound);
    all
}

/// `DELETE /v1/auth/sessions/{id}` — requires an access token. Ends one of the caller's sessions.
#[utoipa::path(
    delete,
    path = "/v1/auth/sessions/{id}",
    tag = "auth",
    summary = "End one of my sessions",
    description = "Like a logout of that session: its access tokens fail at once with `token_revoked`.",
    params(("id" = String, Path, description = "Session (family) id")),
    security(("bearer" = []), ("access_cookie" = [])),
    responses((status = 204, description = "Ended.")),
)]
pub(crate) async fn end_session(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let sid = path_uuid(&path, ApiError::SessionNotFound)?;
    state.service.end_session(&principal, sid).await?;
    Ok(HttpResponse::NoContent().finish())
}
