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
    runtime.start_loops(
        std::time::Duration::from_secs(1),
        Arc::new(|model: &str, e: &freshet_control::controller::LoopEvent| {
            tracing::info!(model, event = ?e, "loop")
        }),
    )?;
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
