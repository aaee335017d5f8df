//! The HTTP server: one router for every surface, built by [`app`] so tests can drive it
//! in-process, and [`serve`] (plain HTTP) or [`serve_tls`] (HTTPS, `auth.tls`) to bind it.

mod artifacts;
mod dashboard;
mod error;
pub mod gate;
mod govern;
mod ingest;
mod lineage;
mod mlflow;
mod mlflow_access;
mod mlflow_logged;
mod mlflow_registry;
mod ops;
mod rollout;
mod serving;

pub use error::{ApiError, MlflowError};
pub use govern::report_json;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use freshet_ingest::service::IngestService;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
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
    /// Whether connector sources reach their brokers.
    pub sources: freshet_ingest::health::SourceHealth,
    /// Authentication, authorization and the audit chain, in front of every route.
    pub governance: Arc<freshet_govern::Governance>,
    /// The declared models (lineage looks for a request id in their captures).
    pub models: Vec<String>,
    /// Hand steps of rollouts (`/v1/models/{model}/rollout/...`), with the approvals.
    pub rollout: Arc<freshet_serve::rollout::RolloutController>,
    /// The nodes and leases (`GET /v1/cluster`), when the registry is in Postgres.
    pub cluster: Option<Arc<freshet_cluster::Cluster>>,
}

/// The whole HTTP surface.
pub fn app(state: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .merge(ingest::router())
        .merge(mlflow::router())
        .merge(mlflow_logged::router())
        .merge(mlflow_registry::router())
        .merge(mlflow_access::router())
        .merge(artifacts::router())
        .merge(serving::router())
        .merge(ops::router())
        .merge(govern::router())
        .merge(lineage::router())
        .merge(dashboard::router())
        .merge(rollout::router())
        .layer(axum::middleware::from_fn_with_state(
            gate::GateState {
                app: state.clone(),
                max_body_bytes,
            },
            gate::gate,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serve plain HTTP until `shutdown` resolves; marks the server not ready first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    max_body_bytes: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_on(listener, state, max_body_bytes, shutdown).await
}

/// Serve HTTPS until `shutdown` resolves, with the configuration [`tls_config`] built;
/// the same router, readiness and graceful shutdown as [`serve`]. A client that fails
/// the handshake (plain HTTP to this port, an untrusted certificate) is dropped without
/// holding up the others.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: AppState,
    max_body_bytes: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TlsListener::new(listener, tls)?;
    serve_on(listener, state, max_body_bytes, shutdown).await
}

async fn serve_on<L>(
    listener: L,
    state: AppState,
    max_body_bytes: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let ready = state.ready.clone();
    ready.store(true, Ordering::SeqCst);
    axum::serve(listener, app(state, max_body_bytes))
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::SeqCst);
        })
        .await
}

/// The TLS configuration of `auth.tls`, or `None` when it is not set: the certificate
/// chain and private key (PEM files, relative paths against `base`, the config file's
/// folder) read and checked to fit each other. Errors name the field and the file.
pub fn tls_config(
    config: &freshet_core::FreshetConfig,
    base: &Path,
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let Some(tls) = &config.auth.tls else {
        return Ok(None);
    };
    let cert_path = resolve(base, &tls.cert);
    let key_path = resolve(base, &tls.key);
    let cert_pem = read_pem_file("auth.tls.cert", &cert_path)?;
    let key_pem = read_pem_file("auth.tls.key", &key_path)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| {
            format!(
                "auth.tls.cert: {} is not a PEM certificate chain",
                cert_path.display()
            )
        })?;
    if certs.is_empty() {
        anyhow::bail!(
            "auth.tls.cert: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert_path.display()
        );
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "auth.tls.key: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key_path.display()
        ),
        e => anyhow::anyhow!(
            "auth.tls.key: {} is not a PEM private key: {e}",
            key_path.display()
        ),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .context("auth.tls: TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "auth.tls: the key {} does not fit the certificate {}",
                key_path.display(),
                cert_path.display()
            )
        })?;
    // The router speaks HTTP/1.1 only (axum's `http1`); say so, so that no client
    // negotiates h2.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(server)))
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn read_pem_file(field: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{field}: cannot read {}", path.display()))
}

/// How long a client may take over the TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP listener whose connections come out TLS-terminated. Handshakes run in their
/// own tasks, so one slow or hostile client cannot stall the accept loop; the loop ends
/// when the listener is dropped (at shutdown), which closes the port.
struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    fn new(tcp: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(tls);
        let (tx, ready) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    _ = tx.closed() => return,
                    r = tcp.accept() => match r {
                        Ok(c) => c,
                        Err(e) => {
                            accept_error(e).await;
                            continue;
                        }
                    },
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            let _ = tx.send((s, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

/// As axum does for plain TCP: a failed connection is the client's business; anything
/// else (e.g. out of file descriptors) is logged and backed off from.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task holds a sender until this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
