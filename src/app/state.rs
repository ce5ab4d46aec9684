//! What every handler can reach.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_web::web::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::service::Service;

/// What every handler can reach.
#[derive(Debug)]
pub struct AppState {
    /// The sign-in flows.
    pub service: Service,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// `/openapi.json`, serialized once.
    pub openapi: Bytes,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Set on SIGTERM: `/readyz` fails from then on.
    pub draining: AtomicBool,
}
