//! `freshet up`: run the server.

use crate::cli::UpArgs;
use crate::runtime::{Runtime, load_config};
use crate::server::{serve, serve_tls, tls_config};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub async fn run(config_path: &Path, args: UpArgs) -> Result<()> {
    let (mut config, base) = load_config(config_path)?;
    if let Some(l) = args.listen {
        config.server.listen = l;
    }
    let listen = config.server.listen.clone();
    let max_body = config.server.max_body_bytes.get();
    // Before anything starts: a missing or wrong certificate stops `up` at once.
    let tls = tls_config(&config, &base)?;
    let mut runtime = Runtime::start(config, base).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    crate::governance::check_listener(&runtime.config, addr)?;
    // Before anything that leads (loops, rollouts, maintenance) starts.
    runtime.start_cluster(addr).await?;
    if let Some(f) = &args.addr_file {
        std::fs::write(f, addr.to_string())
            .with_context(|| format!("cannot write {}", f.display()))?;
    }
    if !args.no_sources {
        runtime.start_sources();
    }
    runtime.start_maintenance();
    runtime.start_serving(std::time::Duration::from_millis(250));
    if !args.no_sources {
        runtime.start_model_topics();
    }
    runtime.start_rollouts(std::time::Duration::from_secs(1));
    // External training jobs log to this server: give them the address it really has.
    runtime.config.server.listen = addr.to_string();
    runtime.start_loops(std::time::Duration::from_secs(1), Arc::new(log_loop_event))?;
    tracing::info!(%addr, tls = if tls.is_some() { "on" } else { "off" }, lake = %runtime.lake.root(), streams = runtime.config.streams.len(), "freshet is up");
    let state = runtime.app_state(Arc::new(AtomicBool::new(false)));
    match tls {
        Some(tls) => serve_tls(listener, tls, state, max_body, shutdown_signal()).await?,
        None => serve(listener, state, max_body, shutdown_signal()).await?,
    }
    tracing::info!("shutting down: committing buffered records");
    runtime.shutdown().await;
    Ok(())
}

/// One short line per loop event, with the fields an operator scans for.
fn log_loop_event(model: &str, e: &freshet_control::controller::LoopEvent) {
    use freshet_control::controller::LoopEvent as E;
    match e {
        E::DriftDetected { rows, reason } => {
            tracing::info!(model, rows, %reason, "loop: drift detected")
        }
        E::Coalesced { reason } => tracing::info!(model, %reason, "loop: trigger coalesced"),
        E::Trained {
            version,
            trigger,
            table_version,
            train_rows,
            gates,
            outcome,
            ..
        } => tracing::info!(
            model,
            version,
            %trigger,
            table_version,
            train_rows,
            gates_passed = gates.passed,
            %outcome,
            "loop: trained"
        ),
        E::JobFailed { reason } => tracing::warn!(model, %reason, "loop: training job failed"),
        E::RolloutSuperseded { version, outcome } => {
            tracing::info!(model, version, %outcome, "loop: rollout superseded by a drift")
        }
        // Every tick: a line when the served traffic drifted, else only at debug (the
        // figures are on /metrics).
        E::Monitored { version, report } if report.dataset.drifted => tracing::info!(
            model,
            version,
            window_rows = report.window_rows,
            drifted_columns = report.dataset.drifted_columns,
            columns = report.dataset.columns,
            "loop: served traffic drifted"
        ),
        E::Monitored { version, report } => tracing::debug!(
            model,
            version,
            window_rows = report.window_rows,
            "loop: served traffic tested for drift, none"
        ),
        E::LiveAccuracy {
            version,
            accuracy,
            labelled,
        } => tracing::debug!(model, version, accuracy, labelled, "loop: live accuracy"),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
