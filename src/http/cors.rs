//! Cross-origin requests (CORS) from the browser apps of `IDENTSPHERE_ALLOWED_ORIGINS`: the list the CSRF check
//! already trusts with cookie-authenticated writes, so an origin that may write may also read the answers. Any
//! other origin gets no CORS header at all (and never a wildcard: the answers carry credentials).

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;

/// What an app may read besides the CORS-safelisted headers: the id to quote in a support request, and when
/// to retry.
const EXPOSED: &str = "x-request-id, retry-after";
/// What the SDKs send.
const ALLOWED_HEADERS: &str = "authorization, content-type, x-request-id";
/// How long a browser may reuse a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The request's `Origin` when it is an allowed one (compared as the CSRF check compares it).
pub(crate) fn allowed_origin(headers: &HeaderMap, allowed: &[String]) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let normalized = origin.to_str().ok()?.trim().to_ascii_lowercase();
    allowed.contains(&normalized).then(|| origin.clone())
}

/// Lets `origin` read the response, cookies included.
pub(crate) fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin for one
/// of the route's methods (`allow`); `None` for anything else, which the route answers as before. The
/// outermost layer adds the origin's headers.
pub(crate) fn preflight(req: &HttpRequest, allow: &str) -> Option<HttpResponse> {
    if req.method() != Method::OPTIONS {
        return None;
    }
    let asked = req.headers().get(header::ACCESS_CONTROL_REQUEST_METHOD)?.to_str().ok()?;
    let state = req.app_data::<web::Data<AppState>>()?;
    allowed_origin(req.headers(), &state.config.allowed_origins)?;
    if !allow.split(", ").any(|method| method == asked) {
        return None;
    }
    Some(
        HttpResponse::NoContent()
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, allow))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE))
            .finish(),
    )
}
