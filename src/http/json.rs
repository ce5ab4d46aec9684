//! The JSON body extractors: content type, size limit and strict parsing, all mapped to the envelope.
//!
//! Parse errors name the offending field (`param`) but never echo the value the client sent: it may be
//! a password.

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures_util::FutureExt as _;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

pub use crate::model::parse_json as parse;

use crate::error::ApiError;

/// Largest request body accepted (`docs/api.md`).
pub const BODY_LIMIT: usize = 64 * 1024;

/// A required JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// A JSON body that may be absent (empty): `None` then.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

/// Whether the request's `Content-Type` is `mime` (parameters such as `charset` aside).
pub fn has_media_type(req: &HttpRequest, mime: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|given| given.trim().eq_ignore_ascii_case(mime))
}

/// Reads and parses the body; with `empty_is_none`, an empty (or blank) body of any type is `None`.
fn extract<T: DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    empty_is_none: bool,
) -> LocalBoxFuture<'static, Result<Option<T>, ApiError>> {
    let json = has_media_type(req, "application/json");
    let body = Bytes::from_request(req, payload);
    Box::pin(async move {
        let body = body.await.map_err(|err| match err.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit: BODY_LIMIT },
            _ => ApiError::InvalidRequest { message: "the request body could not be read".to_owned(), param: None },
        })?;
        if empty_is_none && body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse(&body).map(Some)
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let missing = || ApiError::InvalidRequest { message: "the request body is empty".to_owned(), param: None };
        Box::pin(extract(req, payload, false).map(move |value| value?.map(Self).ok_or_else(missing)))
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        Box::pin(extract(req, payload, true).map(|value| value.map(Self)))
    }
}
