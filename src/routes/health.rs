//! Liveness, readiness and metrics: for the orchestrator and Prometheus.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use futures_util::future::join_all;
use serde::Serialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::routes::common::*;
use crate::routes::errors;

/// How long readiness waits for each backing store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The process is up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    #[schema(schema_with = ok_schema)]
    status: &'static str,
}

/// Every backing store answered.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness {
    #[schema(schema_with = ready_schema)]
    status: &'static str,
    /// Each backing store by name, with `ok`.
    #[schema(value_type = BTreeMap<String, String>)]
    checks: BTreeMap<&'static str, &'static str>,
}

const HEALTHY: &str = "ok";
const READY: &str = "ready";

fn ok_schema() -> utoipa::openapi::Object {
    string_enum([HEALTHY])
}

fn ready_schema() -> utoipa::openapi::Object {
    string_enum([READY])
}

/// The errors of `get_health` and `get_metrics`.
pub(crate) fn health_errors() -> Vec<ApiError> {
    vec![errors::bug()]
}

/// The errors of `get_readiness`.
pub(crate) fn readiness_errors() -> Vec<ApiError> {
    errors::server().into()
}

/// `GET /healthz` — public. The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "The process is up and serving.", body = Health)),
)]
pub async fn get_health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: HEALTHY })
}

/// `GET /readyz` — public. Every backing store answers and the server is not draining;
/// `503 service_unavailable` otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness",
    description = "Every backing store answers within 2 s and the server is not shutting down; \
                   `503 service_unavailable` otherwise.",
    responses((status = 200, description = "Ready to serve.", body = Readiness)),
)]
pub async fn get_readiness(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::ServiceUnavailable(anyhow::anyhow!("draining: shutting down")));
    }
    let probes = &state.service.stores().probes;
    let results = join_all(probes.iter().map(|probe| async move {
        match tokio::time::timeout(PROBE_TIMEOUT, probe.ping()).await {
            Ok(Ok(())) => Ok(probe.name()),
            Ok(Err(err)) => Err(anyhow::anyhow!("{}: {err}", probe.name())),
            Err(_) => Err(anyhow::anyhow!("{}: no answer within {PROBE_TIMEOUT:?}", probe.name())),
        }
    }))
    .await;
    let mut checks = BTreeMap::new();
    for result in results {
        checks.insert(result.map_err(ApiError::ServiceUnavailable)?, HEALTHY);
    }
    Ok(HttpResponse::Ok().json(Readiness { status: READY, checks }))
}

/// `GET /metrics` — Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Served here unless `IDENTSPHERE_METRICS_BIND` moves it to a port of its own.",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4.",
               content_type = "text/plain; version=0.0.4; charset=utf-8", body = String)),
)]
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}
