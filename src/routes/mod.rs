//! The routes of `API.md`, one module per resource, and the routing table.

pub mod auth;
pub mod health;
pub mod well_known;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{Resource, web};

use crate::error::ApiError;
use crate::http::json::BODY_LIMIT;
use crate::http::middleware::catch_panic;

/// A resource whose handler panics become enveloped `500`s and that answers `405 method_not_allowed`
/// (with `Allow`) to methods it does not route.
pub(crate) fn resource(
    path: &str,
    allow: &'static str,
) -> Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path)
        .default_service(web::to(move || async move { Err::<(), _>(ApiError::MethodNotAllowed { allow }) }))
        .wrap(from_fn(catch_panic))
}

/// `/metrics`, on the main port or on the separate metrics port.
pub fn metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics", "GET").route(web::get().to(health::get_metrics)));
}

/// A listener that serves only `/metrics` (and the envelope's 404 for anything else).
pub fn metrics_only(cfg: &mut web::ServiceConfig) {
    metrics(cfg);
    cfg.default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
}

/// The routing table of the API (`/metrics` is added by `metrics` where it is served).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(BODY_LIMIT))
        .service(resource("/v1/auth/register", "POST").route(web::post().to(auth::register_user)))
        .service(resource("/v1/auth/login", "POST").route(web::post().to(auth::login_user)))
        .service(resource("/v1/auth/refresh", "POST").route(web::post().to(auth::refresh_session)))
        .service(resource("/v1/auth/logout", "POST").route(web::post().to(auth::logout_session)))
        .service(resource("/v1/auth/session", "GET").route(web::get().to(auth::get_session)))
        .service(resource("/.well-known/jwks.json", "GET").route(web::get().to(well_known::get_jwks)))
        .service(
            resource("/.well-known/openid-configuration", "GET")
                .route(web::get().to(well_known::get_openid_configuration)),
        )
        .service(resource("/healthz", "GET").route(web::get().to(health::get_health)))
        .service(resource("/readyz", "GET").route(web::get().to(health::get_readiness)))
        .default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
}
