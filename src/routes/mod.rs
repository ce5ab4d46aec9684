//! The routes of `docs/api.md`, one module per resource, and the routing table.
//!
//! The routing table (`routing_table!` below) is the only place a route is added: it registers each
//! route with actix, lists it in `route_table()`, names the errors it can answer with and takes its
//! OpenAPI operation from the handler's `#[utoipa::path]`, so a route cannot be served without being
//! described (`crate::app::openapi`, and the `openapi` tests check the description matches the table).

pub mod account;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod common;
pub mod docs;
pub mod errors;
pub mod health;
pub mod import;
pub mod invitations;
pub mod members;
pub mod mfa;
pub mod oauth;
pub mod organizations;
pub mod passkeys;
pub mod revocations;
pub mod sessions;
pub mod sso;
pub mod well_known;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, Resource, Route, web};

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
    GET "/v1/auth/session" => auth::get_session, errors: errors::live_session;
    POST "/v1/auth/mfa/totp" => mfa::enroll_totp, errors: mfa::enroll_errors;
    DELETE "/v1/auth/mfa/totp" => mfa::remove_totp, errors: mfa::remove_errors;
    POST "/v1/auth/mfa/totp/confirm" => mfa::confirm_totp, errors: mfa::confirm_errors;
    POST "/v1/auth/mfa/verify" => mfa::verify_mfa, errors: mfa::verify_errors;
    POST "/v1/auth/passkeys/registration/options" => passkeys::registration_options,
        errors: passkeys::registration_options_errors;
    POST "/v1/auth/passkeys/registration" => passkeys::register_passkey, errors: passkeys::registration_errors;
    GET "/v1/auth/passkeys" => passkeys::list_passkeys, errors: errors::live_session;
    PATCH "/v1/auth/passkeys/{id}" => passkeys::rename_passkey, errors: passkeys::rename_errors;
    DELETE "/v1/auth/passkeys/{id}" => passkeys::delete_passkey, errors: passkeys::delete_errors;
    POST "/v1/auth/passkeys/authentication/options" => passkeys::authentication_options,
        errors: passkeys::authentication_options_errors;
    POST "/v1/auth/passkeys/authentication" => passkeys::sign_in_with_passkey,
        errors: passkeys::authentication_errors;
    GET "/v1/auth/oauth/{provider}/authorize" => oauth::authorize, errors: oauth::authorize_errors;
    GET "/v1/auth/oauth/{provider}/callback" => oauth::callback, errors: oauth::callback_errors;
    POST "/v1/auth/oauth/token" => oauth::exchange_code, errors: oauth::exchange_errors;
    GET "/v1/auth/identities" => oauth::list_identities, errors: errors::live_session;
    POST "/v1/auth/identities/{provider}/link" => oauth::link_identity, errors: oauth::link_errors;
    DELETE "/v1/auth/identities/{id}" => oauth::unlink_identity, errors: oauth::unlink_errors;
    POST "/v1/auth/sso/discover" => sso::discover_sso, errors: sso::discover_errors;
    POST "/v1/auth/email/verify" => account::verify_email, errors: account::link_errors;
    POST "/v1/auth/email/verify/resend" => account::resend_verification, errors: account::resend_errors;
    POST "/v1/auth/password/forgot" => account::forgot_password, errors: account::forgot_errors;
    POST "/v1/auth/password/reset" => account::reset_password, errors: account::reset_errors;
    POST "/v1/auth/password" => account::change_password, errors: account::change_errors;
    GET "/v1/auth/sessions" => sessions::list_sessions, errors: sessions::sessions_errors;
    DELETE "/v1/auth/sessions/{id}" => sessions::end_session, errors: sessions::end_session_errors;
    POST "/v1/organizations" => organizations::create_organization, errors: organizations::create_errors;
    GET "/v1/organizations" => organizations::list_organizations, errors: organizations::list_errors;
    GET "/v1/organizations/{org}" => organizations::get_organization, errors: organizations::read_errors;
    PATCH "/v1/organizations/{org}" => organizations::update_organization, errors: organizations::update_errors;
    GET "/v1/organizations/{org}/members" => members::list_members, errors: members::members_errors;
    PATCH "/v1/organizations/{org}/members/{user_id}" => members::change_member,
        errors: members::role_errors;
    DELETE "/v1/organizations/{org}/members/{user_id}" => members::remove_member,
        errors: members::member_errors;
    POST "/v1/organizations/{org}/invitations" => invitations::create_invitation,
        errors: invitations::invite_errors;
    GET "/v1/organizations/{org}/invitations" => invitations::list_invitations,
        errors: invitations::invitations_errors;
    DELETE "/v1/organizations/{org}/invitations/{invitation_id}" => invitations::revoke_invitation,
        errors: invitations::revoke_errors;
    POST "/v1/invitations/accept" => invitations::accept_invitation, errors: invitations::accept_errors;
    POST "/v1/organizations/{org}/sso/connections" => sso::create_sso_connection, errors: sso::create_errors;
    GET "/v1/organizations/{org}/sso/connections" => sso::list_sso_connections, errors: sso::connections_errors;
    GET "/v1/organizations/{org}/sso/connections/{connection_id}" => sso::get_sso_connection,
        errors: sso::connection_errors;
    PATCH "/v1/organizations/{org}/sso/connections/{connection_id}" => sso::update_sso_connection,
        errors: sso::update_errors;
    DELETE "/v1/organizations/{org}/sso/connections/{connection_id}" => sso::delete_sso_connection,
        errors: sso::connection_errors;
    POST "/v1/organizations/{org}/sso/connections/{connection_id}/verify-domain" => sso::verify_sso_domain,
        errors: sso::verify_errors;
    GET "/v1/organizations/{org}/audit-log" => audit::get_audit_log, errors: audit::audit_errors;
    POST "/v1/organizations/{org}/api-keys" => admin::create_api_key, errors: admin::create_key_errors;
    GET "/v1/organizations/{org}/api-keys" => admin::list_api_keys, errors: admin::key_errors;
    DELETE "/v1/organizations/{org}/api-keys/{key_id}" => admin::revoke_api_key, errors: admin::revoke_key_errors;
    GET "/v1/organizations/{org}/users" => admin::list_users, errors: admin::list_users_errors;
    POST "/v1/organizations/{org}/users" => admin::create_user, errors: admin::create_user_errors;
    POST "/v1/organizations/{org}/users/import" => import::import_users, errors: import::import_errors;
    GET "/v1/organizations/{org}/users/export" => import::export_users, errors: import::export_errors;
    GET "/v1/organizations/{org}/users/{user_id}" => admin::get_user, errors: admin::user_errors;
    // Changing a user is changing their membership: the same refusals as the members routes.
    PATCH "/v1/organizations/{org}/users/{user_id}" => admin::update_user, errors: members::role_errors;
    DELETE "/v1/organizations/{org}/users/{user_id}" => admin::delete_user, errors: members::member_errors;
    GET "/v1/organizations/{org}/users/{user_id}/sessions" => admin::list_user_sessions, errors: admin::user_errors;
    DELETE "/v1/organizations/{org}/users/{user_id}/sessions" => admin::end_user_sessions,
        errors: members::member_errors;
    GET "/v1/revocations" => revocations::get_revocations, errors: revocations::feed_errors;
    GET "/.well-known/jwks.json" => well_known::get_jwks, errors: well_known::discovery_errors;
    GET "/.well-known/openid-configuration" => well_known::get_openid_configuration,
        errors: well_known::discovery_errors;
    GET "/openapi.json" => well_known::get_openapi, errors: well_known::discovery_errors;
    GET "/docs" => docs::get_docs, errors: docs::docs_errors;
    GET "/docs/swagger-ui-bundle.js" => docs::get_docs_script, errors: docs::docs_errors;
    GET "/docs/swagger-ui.css" => docs::get_docs_styles, errors: docs::docs_errors;
    GET "/docs/init.js" => docs::get_docs_init, errors: docs::docs_errors;
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
/// (with `Allow`) to methods it does not route — but a CORS preflight from an allowed origin.
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
        .default_service(web::to(move |req: HttpRequest| async move {
            crate::http::cors::preflight(&req, allow).ok_or(ApiError::MethodNotAllowed { allow })
        }))
        .wrap(from_fn(catch_panic))
}

/// The `Allow` header of each path: its methods, in the table's order.
static ALLOWED: LazyLock<BTreeMap<&'static str, String>> = LazyLock::new(|| {
    let mut allowed: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for endpoint in ROUTES {
        allowed.entry(endpoint.path).or_default().push(endpoint.method);
    }
    allowed.into_iter().map(|(path, methods)| (path, methods.join(", "))).collect()
});

/// Registers one path of the table with every method the table gives it.
fn register(cfg: &mut web::ServiceConfig, path: &'static str) {
    let allow = ALLOWED.get(path).map_or("", String::as_str);
    let mut routed = resource(path, allow);
    for endpoint in ROUTES.iter().filter(|e| e.path == path) {
        routed = routed.route((endpoint.route)());
    }
    cfg.service(routed);
}

/// `/metrics`, on the main port or on the separate metrics port.
pub fn metrics(cfg: &mut web::ServiceConfig) {
    register(cfg, METRICS_PATH);
}

/// A listener that serves only `/metrics` (and the envelope's 404 for anything else).
pub fn metrics_only(cfg: &mut web::ServiceConfig) {
    metrics(cfg);
    cfg.default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
}

/// The routing table of the API (`/metrics` is added by `metrics` where it is served).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(BODY_LIMIT));
    for path in ALLOWED.keys().filter(|path| **path != METRICS_PATH) {
        register(cfg, path);
    }
    cfg.default_service(web::to(|| async { Err::<(), _>(ApiError::NotFound) }));
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
    fn each_path_and_method_is_routed_once() {
        let mut routes = BTreeSet::new();
        for endpoint in route_table() {
            assert!(routes.insert((endpoint.path, endpoint.method)), "{endpoint:?} is in the table twice");
            assert!(["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&endpoint.method), "{endpoint:?}");
        }
        assert!(routes.iter().any(|(path, _)| *path == METRICS_PATH));
        assert_eq!(ALLOWED.get("/v1/auth/mfa/totp").map(String::as_str), Some("POST, DELETE"));
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
