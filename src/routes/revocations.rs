//! `GET /v1/revocations`: the revocation feed, for resource servers (the SDKs) that verify tokens
//! locally and must learn of logouts and theft detection within seconds.
//!
//! Authenticated by the platform API key (`IDENTSPHERE_PLATFORM_API_KEY`, compared in constant time);
//! without one configured, the feed answers nobody.

use actix_web::{HttpRequest, HttpResponse, web};
use identsphere_actors::{RevocationPage, Revoked};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::credentials::bearer;
use crate::routes::errors;
use crate::service::PLATFORM_KEY_PREFIX;

/// Largest page the feed returns.
const MAX_LIMIT: usize = 1_000;

/// Where to continue and how much to take.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct FeedQuery {
    /// The `cursor` of the previous page; from the oldest entry still meaningful without it.
    #[param(pattern = r"^[0-9]{1,20}-[0-9]{1,20}$")]
    after: Option<String>,
    /// At most this many entries (1 to 1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// What a revocation covers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum Kind {
    /// Every access token of the session family `id` (the `sid` claim).
    Sid,
    /// The access token `id` (the `jti` claim).
    Jti,
}

/// One revocation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RevocationJson {
    /// What it covers.
    kind: Kind,
    /// The `sid` or `jti`.
    id: Uuid,
    /// Unix seconds after which every token it covers has expired anyway: drop the entry then.
    expires_at: i64,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FeedResponse {
    /// The revocations in the order they happened.
    revocations: Vec<RevocationJson>,
    /// Pass as `after` to get what follows.
    cursor: String,
}

impl From<RevocationPage> for FeedResponse {
    fn from(page: RevocationPage) -> Self {
        Self {
            revocations: page
                .revocations
                .into_iter()
                .map(|r| RevocationJson {
                    kind: match r.kind {
                        Revoked::Family => Kind::Sid,
                        Revoked::Token => Kind::Jti,
                    },
                    id: r.id,
                    expires_at: r.expires_at.unix_timestamp(),
                })
                .collect(),
            cursor: page.cursor,
        }
    }
}

/// The errors of `get_revocations`.
pub(crate) fn feed_errors() -> Vec<ApiError> {
    let mut all = vec![ApiError::invalid_field("after", ""), ApiError::TokenMissing, ApiError::TokenInvalid];
    all.extend(errors::server());
    all
}

/// `GET /v1/revocations` — requires the platform API key. Revoked session families and tokens, in order,
/// with a cursor to continue from; entries drop out once the tokens they cover have expired.
#[utoipa::path(
    get,
    path = "/v1/revocations",
    tag = "revocations",
    summary = "The revocation feed",
    description = "Poll it every few seconds with the last `cursor` and reject tokens whose `sid` or `jti` is \
                   listed until `expires_at`. Entries older than the longest access-token lifetime drop out.",
    params(FeedQuery),
    security(("platform_api_key" = []), ("api_key" = [])),
    responses((status = 200, description = "A page of the feed.", body = FeedResponse)),
)]
pub(crate) async fn get_revocations(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let key = bearer(&req)?.ok_or(ApiError::TokenMissing)?;
    // A platform key made by `identsphere admin create-key`, or the one configured.
    if key.starts_with(PLATFORM_KEY_PREFIX) {
        state.service.authenticate_key(&key, None).await?;
    } else {
        let configured = state.config.platform_api_key.as_ref().ok_or(ApiError::TokenInvalid)?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(key.as_bytes(), configured.expose().as_bytes()).is_err() {
            return Err(ApiError::TokenInvalid);
        }
    }
    let (cursor, limit) = feed_query(req.query_string())?;
    let page = state.service.revocations(cursor.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(FeedResponse::from(page)))
}

/// The feed's query: the cursor to continue `after` and the page's size.
///
/// # Errors
/// `invalid_request` naming `after` or `limit`.
pub(crate) fn feed_query(raw: &str) -> Result<(Option<String>, usize), ApiError> {
    let query = web::Query::<FeedQuery>::from_query(raw)
        .map_err(|_| ApiError::invalid_field("after", "after must be a cursor and limit a number from 1 to 1000"))?
        .into_inner();
    let cursor = query.after;
    if let Some(cursor) = &cursor {
        let valid = cursor.split_once('-').is_some_and(|(a, b)| {
            [a, b].iter().all(|part| !part.is_empty() && part.len() <= 20 && part.bytes().all(|c| c.is_ascii_digit()))
        });
        if !valid {
            return Err(ApiError::invalid_field("after", "after must be the cursor of a previous page"));
        }
    }
    let limit = query.limit.unwrap_or(MAX_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "limit must be from 1 to 1000"));
    }
    Ok((cursor, limit))
}
