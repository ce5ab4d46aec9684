//! The routes of `API.md`, one module per resource, and the routing table.
//!
//! The routing table (`routing_table!` below) is the only place a route is added: it registers each
//! route with actix, lists it in `route_table()`, names the errors it can answer with and takes its
//! OpenAPI operation from the handler's `#[utoipa::path]`, so a route cannot be served without being
//! described (`crate::openapi`, and the `openapi` tests check the description matches the table).

pub mod auth;
pub mod health;
pub mod revocations;
pub mod well_known;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{Resource, Route, web};

use crate::error::ApiError;
use crate::http::json::BODY_LIMIT;
use crate::http::middleware::catch_panic;

/// One route of the API.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    /// The path, as actix and OpenAPI write it.
    pub path: &'static str,
    /// The HTTP method, upper case (`GET`, `POST`).
    pub method: &'static str,
    route: fn() -> Route,
    errors: fn() -> Vec<ApiError>,
}

impl Endpoint {
    /// Every error the route can answer with, one value per catalog row (for its description).
    #[must_use]
    pub fn errors(&self) -> Vec<ApiError> {
        (self.errors)()
    }
}

/// Declares the routing table: `METHOD "path" => module::handler, errors: module::errors_fn;`.
macro_rules! routing_table {
    ($($method:ident $path:literal => $module:ident :: $handler:ident, errors: $errors:path;)+) => {
        static ROUTES: &[Endpoint] = &[$(
            Endpoint {
                path: $path,
                method: stringify!($method),
                route: || web::method(Method::$method).to($module::$handler),
                errors: $errors,
            },
        )+];

        /// The operations of the routing table, as each handler's `#[utoipa::path]` describes them.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($($module::$handler),+))]
        pub(crate) struct Operations;
    };
}

routing_table! {
    POST "/v1/auth/register" => auth::register_user, errors: auth::register_errors;
    POST "/v1/auth/login" => auth::login_user, errors: auth::login_errors;
    POST "/v1/auth/refresh" => auth::refresh_session, errors: auth::refresh_errors;
    POST "/v1/auth/logout" => auth::logout_session, errors: auth::logout_errors;
    GET "/v1/auth/session" => auth::get_session, errors: auth::session_errors;
    GET "/v1/revocations" => revocations::get_revocations, errors: revocations::feed_errors;
    GET "/.well-known/jwks.json" => well_known::get_jwks, errors: well_known::discovery_errors;
    GET "/.well-known/openid-configuration" => well_known::get_openid_configuration,
        errors: well_known::discovery_errors;
    GET "/openapi.json" => well_known::get_openapi, errors: well_known::discovery_errors;
    GET "/healthz" => health::get_health, errors: health::health_errors;
    GET "/readyz" => health::get_readiness, errors: health::readiness_errors;
    GET "/metrics" => health::get_metrics, errors: health::health_errors;
}

/// The path `metrics` serves, on the main port or on the separate metrics port.
const METRICS_PATH: &str = "/metrics";

/// Every route of the API, `/metrics` included (served by `metrics`, wherever it is served).
#[must_use]
pub fn route_table() -> &'static [Endpoint] {
    ROUTES
}

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

/// Registers one route of the table. A path takes one method (a unit test holds the table to it).
fn register(cfg: &mut web::ServiceConfig, endpoint: &Endpoint) {
    cfg.service(resource(endpoint.path, endpoint.method).route((endpoint.route)()));
}

/// `/metrics`, on the main port or on the separate metrics port.
pub fn metrics(cfg: &mut web::ServiceConfig) {
    for endpoint in ROUTES.iter().filter(|e| e.path == METRICS_PATH) {
        register(cfg, endpoint);
    }
}

/// A listener that serves only `/metrics` (and the envelope's 404 for anything else).
pub fn metrics_only(cfg: &mut web::ServiceConfig) {
    metrics(cfg);
    cfg.default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
}

/// The routing table of the API (`/metrics` is added by `metrics` where it is served).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(BODY_LIMIT));
    for endpoint in ROUTES.iter().filter(|e| e.path != METRICS_PATH) {
        register(cfg, endpoint);
    }
    cfg.default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
}

/// A string schema that takes only `values` (the wire names, from the code that writes them).
pub(crate) fn string_enum<const N: usize>(values: [&str; N]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::Type::String).enum_values(Some(values)).build()
}

/// The errors routes have in common, for the routes' error lists.
pub(crate) mod errors {
    use crate::error::ApiError;
    use crate::http::json::BODY_LIMIT;

    /// Any route: a bug, a handler's panic included, is an enveloped `500`.
    pub(crate) fn bug() -> ApiError {
        ApiError::Internal(anyhow::anyhow!("a bug"))
    }

    /// A route that reads a backing store: `503` when it is unreachable, and `500`.
    pub(crate) fn server() -> [ApiError; 2] {
        [ApiError::ServiceUnavailable(anyhow::anyhow!("a store is unreachable")), bug()]
    }

    /// A route that reads a JSON body: malformed, unknown or missing fields, too large, not JSON.
    pub(crate) fn json_body() -> Vec<ApiError> {
        vec![
            ApiError::InvalidRequest { message: String::new(), param: None },
            ApiError::PayloadTooLarge { limit: BODY_LIMIT },
            ApiError::UnsupportedMediaType,
        ]
    }

    /// A route under an abuse limit.
    pub(crate) fn rate_limited() -> ApiError {
        ApiError::RateLimited { retry_after: 1 }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeSet;
    use std::rc::Rc;

    use actix_web::dev::Service as _;
    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, http::StatusCode};

    use super::*;

    #[test]
    fn each_path_is_routed_once_with_one_method() {
        let mut paths = BTreeSet::new();
        for endpoint in route_table() {
            assert!(paths.insert(endpoint.path), "{} is in the table twice", endpoint.path);
            assert!(["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&endpoint.method), "{endpoint:?}");
        }
        assert!(paths.contains(METRICS_PATH));
    }

    /// The paths of every resource actix routes, read from the application's resource map (whose `Debug`
    /// is the only way to list it).
    async fn routed_paths() -> BTreeSet<String> {
        let map = Rc::new(RefCell::new(String::new()));
        let seen = Rc::clone(&map);
        let app = init_service(
            App::new()
                .wrap_fn(move |req, srv| {
                    *seen.borrow_mut() = format!("{:?}", req.request().resource_map());
                    srv.call(req)
                })
                .configure(configure)
                .configure(metrics),
        )
        .await;
        let response = call_service(&app, TestRequest::get().uri("/no/such/route").to_request()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let map = map.borrow();
        map.split("Single(\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .filter(|path| !path.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[actix_web::test]
    async fn the_routing_table_is_everything_actix_routes() {
        let table: BTreeSet<String> = route_table().iter().map(|e| e.path.to_owned()).collect();
        assert_eq!(routed_paths().await, table, "a route was added outside `routing_table!`");
    }
}
