//! `GET /docs`: the interactive API reference (Swagger UI on this server's `/openapi.json`). Its assets are
//! vendored from npm (`assets/swagger-ui/`, `scripts/update-swagger-ui.sh`) and built into the binary, so the
//! page works with no outside network, behind any firewall.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::error::ApiError;
use crate::routes::errors;

const PAGE: &str = include_str!("../../assets/swagger-ui/index.html");
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Scripts and styles from this origin only (Swagger UI sets styles inline); no frame may embed the page.
const POLICY: &str =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'";

/// The errors of the reference's routes.
pub(crate) fn docs_errors() -> Vec<ApiError> {
    vec![errors::bug()]
}

/// `GET /docs` — public.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "discovery",
    summary = "The interactive API reference",
    description = "Swagger UI on `/openapi.json`, served from this server (no outside network needed).",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String)),
)]
pub(crate) async fn get_docs() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("Content-Security-Policy", POLICY))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(PAGE)
}

/// An asset of the page, cached for an hour (the bytes change only with the binary).
fn asset(content_type: &'static str, bytes: &'static [u8]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(bytes)
}

/// `GET /docs/swagger-ui-bundle.js` — public.
#[utoipa::path(
    get,
    path = "/docs/swagger-ui-bundle.js",
    tag = "discovery",
    summary = "Swagger UI's script, for the API reference page",
    responses((status = 200, description = "The script.", content_type = "text/javascript", body = String)),
)]
pub(crate) async fn get_docs_script() -> HttpResponse {
    asset(JAVASCRIPT, include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"))
}

/// `GET /docs/swagger-ui.css` — public.
#[utoipa::path(
    get,
    path = "/docs/swagger-ui.css",
    tag = "discovery",
    summary = "Swagger UI's styles, for the API reference page",
    responses((status = 200, description = "The styles.", content_type = "text/css", body = String)),
)]
pub(crate) async fn get_docs_styles() -> HttpResponse {
    asset("text/css; charset=utf-8", include_bytes!("../../assets/swagger-ui/swagger-ui.css"))
}

/// `GET /docs/init.js` — public.
#[utoipa::path(
    get,
    path = "/docs/init.js",
    tag = "discovery",
    summary = "The API reference page's own script: Swagger UI on /openapi.json",
    responses((status = 200, description = "The script.", content_type = "text/javascript", body = String)),
)]
pub(crate) async fn get_docs_init() -> HttpResponse {
    asset(JAVASCRIPT, include_bytes!("../../assets/swagger-ui/init.js"))
}
