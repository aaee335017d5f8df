//! The HTTP server: one router for every surface, built by [`app`] so tests can drive it
//! in-process, and [`serve`] to bind it.

mod artifacts;
mod error;
pub mod gate;
mod govern;
mod ingest;
mod mlflow;
mod mlflow_logged;
mod mlflow_registry;
mod ops;
mod serving;

pub use error::{ApiError, MlflowError};
pub use govern::report_json;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use freshet_ingest::service::IngestService;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tower_http::trace::TraceLayer;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub ingest: Arc<IngestService>,
    pub registry: prometheus::Registry,
    pub tracking: Arc<dyn freshet_registry::Store>,
    pub artifacts: Arc<dyn freshet_registry::artifacts::ArtifactStore>,
    /// The lake, for feedback labels and inference reads.
    pub lake: freshet_lake::Lake,
    /// The label tables, kept open between feedback calls.
    pub labels: Arc<freshet_serve::feedback::LabelTables>,
    /// Scoring against the served models.
    pub scorer: Arc<freshet_serve::service::Scorer>,
    /// Drift, live accuracy and alerts per model, from the loops.
    pub monitoring: Arc<crate::monitoring::Monitoring>,
    pub ready: Arc<AtomicBool>,
    /// Authentication, authorization and the audit chain, in front of every route.
    pub governance: Arc<freshet_govern::Governance>,
}

/// The whole HTTP surface.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .merge(ingest::router())
        .merge(mlflow::router())
        .merge(mlflow_logged::router())
        .merge(mlflow_registry::router())
        .merge(artifacts::router())
        .merge(serving::router())
        .merge(ops::router())
        .merge(govern::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            gate::gate,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve until `shutdown` resolves; marks the server not ready first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    max_body_bytes: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ready = state.ready.clone();
    ready.store(true, Ordering::SeqCst);
    axum::serve(listener, app(state, max_body_bytes))
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::SeqCst);
        })
        .await
}
