//! Liveness, readiness and metrics: for the orchestrator and Prometheus.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use futures_util::future::join_all;
use serde_json::json;

use crate::error::ApiError;
use crate::startup::AppState;

/// How long readiness waits for each backing store.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz` — public. The process is up and serving.
pub async fn get_health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// `GET /readyz` — public. Every backing store answers and the server is not draining;
/// `503 service_unavailable` otherwise.
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
    let mut checks = serde_json::Map::new();
    for result in results {
        checks.insert(result.map_err(ApiError::ServiceUnavailable)?.to_owned(), json!("ok"));
    }
    Ok(HttpResponse::Ok().json(json!({ "status": "ready", "checks": checks })))
}

/// `GET /metrics` — Prometheus text format.
pub async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(state.metrics.render())
}
