//! The one shape of every error response: the envelope, written from an `ApiError`'s catalog row.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::ApiError;

/// Seconds a client should wait before retrying after `service_unavailable`.
const RETRY_UNAVAILABLE_SECS: u64 = 5;

/// The `error` object of the envelope.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    /// Stable, machine-readable: one row of the error catalog.
    code: &'static str,
    /// For humans; never contains secrets and may change.
    message: String,
    /// The family of the error.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The offending request field, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    param: Option<&'a str>,
}

/// The one shape of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ErrorEnvelope)]
pub(crate) struct Envelope<'a> {
    error: ErrorBody<'a>,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.catalog().1
    }

    fn error_response(&self) -> HttpResponse {
        let (code, status, kind) = self.catalog();
        let param = self.param();
        let mut response = HttpResponse::build(status);
        match self {
            Self::ServiceUnavailable(_) | Self::OAuthProviderUnavailable => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_UNAVAILABLE_SECS)));
            }
            Self::RateLimited { retry_after } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from(*retry_after)));
            }
            _ => {}
        }
        if let Self::MethodNotAllowed { allow } = self
            && !allow.is_empty()
        {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        response.json(Envelope { error: ErrorBody { code, message: self.to_string(), kind, param } })
    }
}
