//! Probes, Prometheus metrics and the cluster's view (`GET /v1/cluster`).

use super::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};
use std::sync::atomic::Ordering;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/cluster", get(cluster))
}

/// The nodes (alive or not, what each leads) and the leases with their fencing tokens,
/// as the registry database has them. A node on SQLite is alone and leads everything.
async fn cluster(State(s): State<AppState>) -> axum::response::Response {
    let Some(c) = s.cluster.clone() else {
        return axum::Json(serde_json::json!({
            "mode": "single",
            "detail": "the registry is in SQLite: this node is alone and leads every model",
            "models": s.models,
        }))
        .into_response();
    };
    match tokio::task::spawn_blocking(move || c.status()).await {
        Ok(Ok(status)) => {
            let mut body = serde_json::to_value(status).unwrap_or_default();
            body["mode"] = "cluster".into();
            axum::Json(body).into_response()
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot read the cluster tables");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "error": "the registry database does not answer; see the server log"
                })),
            )
                .into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the server listens and every connector source reaches its brokers. The
/// body says which source is not, and why (never a credential or a record).
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    let listening = s.ready.load(Ordering::SeqCst);
    let sources = s.sources.snapshot();
    let ok = listening && sources.values().all(|v| v.status == "up");
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ok { "ready" } else { "not ready" },
        "listening": listening,
        "sources": sources,
    });
    (status, axum::Json(body))
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    s.ingest
        .metrics()
        .buffered_records
        .set(s.ingest.buffered() as i64);
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(e) = encoder.encode(&s.registry.gather(), &mut buf) {
        tracing::error!(error = %e, "metrics encoding failed");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            Vec::new(),
        );
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        buf,
    )
}
