//! `/v1/organizations/{org}/audit-log`: who changed what in an organization, newest first.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::common::*;
use crate::routes::errors;
use crate::service::*;

/// Which page of the audit log. Unknown parameters are refused.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// The `next` of the previous page: entries older than it.
    #[param(pattern = r"^[0-9]{1,25}\.[0-9a-f]{32}$")]
    before: Option<String>,
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
}

/// One entry of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditJson<'a> {
    id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    /// The user who acted (`null` when a key did, or once the user is deleted).
    #[schema(required = true)]
    actor_id: Option<Uuid>,
    /// The API key that acted (`null` when a user did).
    #[schema(required = true)]
    actor_key_id: Option<Uuid>,
    /// `organization.created`, `organization.updated`, `member.role_changed`, `member.removed`, `member.left`,
    /// `member.disabled`, `member.enabled`, `invitation.created`, `invitation.revoked`, `invitation.accepted`,
    /// `user.created`, `user.deleted`, `user.sessions_ended`, `api_key.created`, `api_key.revoked`.
    action: &'a str,
    /// What it was on: a user or invitation id (with the role given), or the fields changed.
    #[schema(required = true)]
    target: Option<&'a str>,
    /// The client address it came from.
    #[schema(required = true)]
    ip: Option<&'a str>,
}

/// A page of the audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditPage<'a> {
    events: Vec<AuditJson<'a>>,
    /// Pass as `before` for the next, older page; `null` on the last page.
    #[schema(required = true)]
    next: Option<String>,
}

/// Entries of a page when `limit` is not given.
const AUDIT_PAGE: u32 = 50;

/// The audit log's query: the cursor to page from (`before`) and the page's size.
///
/// # Errors
/// `invalid_request` naming `before` or `limit`.
pub(crate) fn audit_query(raw: &str) -> Result<(Option<(OffsetDateTime, Uuid)>, u32), ApiError> {
    let bad = || ApiError::invalid_field("before", "before must be the next of a previous page, limit 1 to 200");
    let query = web::Query::<AuditQuery>::from_query(raw).map_err(|_| bad())?.into_inner();
    let before = query.before.as_deref().map(|raw| audit_cursor(raw).ok_or_else(bad)).transpose()?;
    let limit = query.limit.unwrap_or(AUDIT_PAGE);
    if !(1..=crate::service::AUDIT_PAGE_MAX).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "limit must be from 1 to 200"));
    }
    Ok((before, limit))
}

/// `<nanoseconds>.<id, 32 lower-case hex>`, exactly as `next` writes it (and the description's pattern says).
fn audit_cursor(raw: &str) -> Option<(OffsetDateTime, Uuid)> {
    let (nanos, id) = raw.split_once('.')?;
    let digits = (1..=25).contains(&nanos.len()) && nanos.bytes().all(|b| b.is_ascii_digit());
    let simple = id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !(digits && simple) {
        return None;
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(nanos.parse().ok()?).ok()?;
    Some((at, Uuid::try_parse(id).ok()?))
}

/// The errors of `get_audit_log`.
pub(crate) fn audit_errors() -> Vec<ApiError> {
    let mut all = errors::organization();
    all.extend([ApiError::InsufficientRole, ApiError::invalid_field("before", "")]);
    all
}

/// `GET /v1/organizations/{org}/audit-log` — requires `admin`. Who changed what in the organization, when,
/// from where.
#[utoipa::path(
    get,
    path = "/v1/organizations/{org}/audit-log",
    tag = "organizations",
    summary = "The organization's audit log",
    description = "Every change to the organization, its members and invitations, written in the same transaction as \
                   the change: who, what, when, from which address. Newest first, paged with `next`.",
    params(("org" = String, Path, description = "Organization id or slug"), AuditQuery),
    security(("bearer" = []), ("access_cookie" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of the audit log.", body = AuditPage)),
)]
pub(crate) async fn get_audit_log(
    state: web::Data<AppState>,
    caller: Caller,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (before, limit) = audit_query(req.query_string())?;
    let events = state.service.audit_log(&caller, &path_org(&path)?, before, limit).await?;
    let next = (events.len() == usize::try_from(limit).unwrap_or(usize::MAX))
        .then(|| events.last().map(|e| format!("{}.{}", e.at.unix_timestamp_nanos(), e.id.simple())))
        .flatten();
    let events = events
        .iter()
        .map(|e| AuditJson {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            actor_key_id: e.actor_key_id,
            action: &e.action,
            target: e.target.as_deref(),
            ip: e.ip.as_deref(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(AuditPage { events, next }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_cursor_is_exactly_what_next_writes() {
        let id = Uuid::now_v7();
        let next = format!("1790000000000000000.{}", id.simple());
        assert_eq!(audit_cursor(&next).map(|(_, found)| found), Some(id));
        for bad in [
            format!("+1790000000000000000.{}", id.simple()),
            format!("-1.{}", id.simple()),
            format!("1790000000000000000.{}", id.hyphenated()),
            format!("1790000000000000000.{}", id.simple().to_string().to_uppercase()),
            format!("{}.{}", "1".repeat(26), id.simple()),
            "1790000000000000000".to_owned(),
        ] {
            assert_eq!(audit_cursor(&bad), None, "{bad}");
        }
    }
}
