//! The outermost layer every request passes: request id, one log line, panics and stray errors.
//!
//! Whatever a lower layer answers with — actix's own 404/405, a payload error, a panic — leaves here in
//! the error envelope with an `X-Request-Id`. The cause of a `5xx` is logged under that id, never sent.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError, web};
use futures_util::FutureExt as _;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::ApiError;
use crate::http::cors;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served, in request extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// A client's id is echoed only if it is short and plain (no header or log injection).
fn sane(id: &HeaderValue) -> Option<String> {
    let id = id.to_str().ok()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    (!id.is_empty() && id.len() <= 128 && id.chars().all(plain)).then(|| id.to_owned())
}

/// The error a bare status stands for, when a layer below answered without our envelope.
fn envelope_for(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed { allow: "" },
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: crate::http::json::BODY_LIMIT },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        s if s.is_client_error() => {
            ApiError::InvalidRequest { message: "the request is malformed".to_owned(), param: None }
        }
        s => ApiError::Internal(anyhow::anyhow!("a lower layer answered {s} without an error envelope")),
    }
}

/// Request id, envelope enforcement and the per-request log line; the last line of defence against
/// panics.
///
/// Runs before routing, so it must not hold a clone of the request while the inner service runs (the
/// router needs it unshared); `catch_panic` turns a handler's panic into a response after routing.
///
/// # Errors
/// Only if a layer below fails without a response (no request left to answer with): the error is then
/// rendered by actix, still in the envelope when it is ours.
pub async fn outermost(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = req.headers().get(&REQUEST_ID).and_then(sane).unwrap_or_else(|| Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.path());

    let outcome = AssertUnwindSafe(next.call(req).instrument(span.clone())).catch_unwind().await;
    let mut response = match outcome {
        Ok(Ok(response)) => response.map_into_boxed_body(),
        Ok(Err(err)) => {
            let _entered = span.enter();
            tracing::error!(error = %err, "request failed without a response");
            return Err(err);
        }
        Err(_) => {
            let _entered = span.enter();
            tracing::error!("request panicked before routing");
            return Err(ApiError::Internal(anyhow::anyhow!("panicked before routing")).into());
        }
    };

    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let ours = response.response().error().and_then(|e| e.as_error::<ApiError>());
        match ours {
            Some(err @ ApiError::Internal(_)) => {
                let _entered = span.enter();
                tracing::error!(error = %ErrorChain(err), "request failed");
            }
            Some(err @ ApiError::ServiceUnavailable(_)) => {
                let _entered = span.enter();
                tracing::warn!(error = %ErrorChain(err), "request refused: unavailable");
            }
            Some(_) => {}
            None => {
                if status.is_server_error() {
                    let cause = response.response().error().map(ToString::to_string).unwrap_or_default();
                    let _entered = span.enter();
                    tracing::error!(%cause, "request failed outside the API's errors");
                }
                let mut fresh = envelope_for(status).error_response();
                if let Some(allow) = response.headers().get(header::ALLOW).cloned() {
                    fresh.headers_mut().insert(header::ALLOW, allow);
                }
                response = ServiceResponse::new(response.request().clone(), fresh);
            }
        }
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let state = response.request().app_data::<web::Data<AppState>>().cloned();
    if let Some(origin) =
        state.and_then(|s| cors::allowed_origin(response.request().headers(), &s.config.allowed_origins))
    {
        cors::allow(response.headers_mut(), origin);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let route = response.request().match_pattern().unwrap_or_else(|| "unmatched".to_owned());
    record(&route, response.request(), response.status(), elapsed);
    let _entered = span.enter();
    tracing::info!(%route, status = response.status().as_u16(), latency_ms = elapsed * 1e3, "served");
    Ok(response)
}

/// Turns a handler's panic into an enveloped `500`; wraps every routed resource.
///
/// # Errors
/// Those of the inner service, unchanged.
pub async fn catch_panic(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let http_req = req.request().clone();
    match AssertUnwindSafe(next.call(req)).catch_unwind().await {
        Ok(result) => result.map(ServiceResponse::map_into_boxed_body),
        Err(_) => Ok(ServiceResponse::new(
            http_req,
            actix_web::HttpResponse::from_error(ApiError::Internal(anyhow::anyhow!("the handler panicked"))),
        )),
    }
}

/// Request count and latency by route template, method and status class: bounded labels only.
fn record(route: &str, req: &actix_web::HttpRequest, status: StatusCode, seconds: f64) {
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m,
        _ => "other",
    };
    let class = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    let labels = [("route", route.to_owned()), ("method", method.to_owned()), ("status", class.to_owned())];
    metrics::counter!("identsphere_http_requests_total", &labels).increment(1);
    metrics::histogram!("identsphere_http_request_duration_seconds", &labels).record(seconds);
}

/// Renders an `ApiError`'s whole source chain in one log field.
struct ErrorChain<'a>(&'a ApiError);

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut source = std::error::Error::source(self.0);
        let mut first = true;
        while let Some(cause) = source {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{cause}")?;
            first = false;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::test as actix_test;
    use actix_web::{App, web};
    use serde_json::Value;

    async fn body(response: ServiceResponse<BoxBody>) -> (StatusCode, bool, Value) {
        let status = response.status();
        let has_id = response.headers().contains_key(REQUEST_ID);
        (status, has_id, actix_test::read_body_json(response).await)
    }

    #[actix_web::test]
    async fn a_panicking_handler_answers_an_enveloped_500_with_a_request_id() {
        let app = actix_test::init_service(App::new().wrap(from_fn(outermost)).service(
            crate::routes::resource("/boom", "GET").route(web::get().to(|| async {
                panic!("a bug");
                #[expect(unreachable_code, reason = "the handler's type needs a response")]
                ""
            })),
        ))
        .await;
        let response = actix_test::call_service(&app, actix_test::TestRequest::get().uri("/boom").to_request()).await;
        let (status, has_id, body) = body(response).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(has_id);
        assert_eq!(body["error"]["code"], "internal_error");
        assert!(!body.to_string().contains("a bug"), "the panic message stays in the log");
    }

    #[actix_web::test]
    async fn bare_errors_from_lower_layers_are_put_in_the_envelope() {
        let app = actix_test::init_service(
            App::new().wrap(from_fn(outermost)).route("/only-get", web::get().to(|| async { "" })),
        )
        .await;
        let response =
            actix_test::call_service(&app, actix_test::TestRequest::get().uri("/elsewhere").to_request()).await;
        let (status, has_id, body) = body(response).await;
        assert_eq!((status, has_id), (StatusCode::NOT_FOUND, true));
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }

    #[test]
    fn only_plain_request_ids_are_echoed() {
        assert_eq!(sane(&HeaderValue::from_static("abc-123_x.y:z")).as_deref(), Some("abc-123_x.y:z"));
        assert_eq!(sane(&HeaderValue::from_static("has space")), None);
        assert_eq!(sane(&HeaderValue::from_static("")), None);
        assert_eq!(sane(&HeaderValue::from_str(&"a".repeat(129)).unwrap()), None);
        assert_eq!(sane(&HeaderValue::from_static("a\"b")), None);
    }
}
