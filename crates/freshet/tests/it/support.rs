//! Shared helpers: a Freshet server running in-process on an ephemeral port, over a
//! temporary directory holding its `freshet.yaml`, PII key file and lake.

#![allow(dead_code)]

use freshet::runtime::{Runtime, load_config};
use freshet::server::{serve, serve_tls, tls_config};
use freshet_core::config::FileFormat;
use freshet_ingest::service::IngestService;
use freshet_ingest::source::file::{FileOptions, FileProgress, ingest_file};
use freshet_lake::{Lake, Table, TableInfo};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The PII key every test server uses (read from a key file, never from the environment).
pub const PII_KEY: &str = "it-test-key-0123456789abcdef";
/// The key version label of every test server.
pub const PII_KEY_VERSION: &str = "it-v1";

/// Options of a test server; `streams` is the YAML of the `streams:` mapping, indented
/// by two spaces.
#[derive(Debug, Clone)]
pub struct Options {
    pub streams: String,
    pub max_body_bytes: usize,
    pub max_buffered_records: usize,
    pub checkpoint_interval: u64,
    pub ack_timeout_ms: u64,
    /// Start generator and followed-file sources (`freshet up` does).
    pub start_sources: bool,
    /// Run the loop as `freshet up` does: serving refresh, rollouts and each model's
    /// controller, ticking quickly.
    pub start_loops: bool,
    /// More top-level YAML (e.g. `auth:` and `audit:` sections).
    pub extra_yaml: String,
    /// Serve HTTPS: PEM certificate chain and private key, written to `tls/cert.pem` and
    /// `tls/key.pem` in the server's folder and named by `auth.tls` (relative paths, as
    /// a user would). [`TestServer::url`] is then `https://` and the client trusts the
    /// certificate. Not with an `auth:` section in `extra_yaml`.
    pub tls: Option<(String, String)>,
}

impl Options {
    pub fn new(streams: &str) -> Self {
        Self {
            streams: streams.to_string(),
            max_body_bytes: 16 << 20,
            max_buffered_records: 100_000,
            checkpoint_interval: 50,
            ack_timeout_ms: 30_000,
            start_sources: false,
            start_loops: false,
            extra_yaml: String::new(),
            tls: None,
        }
    }
}

/// A running server. Call [`TestServer::shutdown`] at the end of a test.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub ingest: Arc<IngestService>,
    pub ready: Arc<AtomicBool>,
    /// Whether the server speaks HTTPS ([`Options::tls`]).
    pub tls: bool,
    lake: Lake,
    runtime: Option<Runtime>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// An HTTP answer, body read.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl TestServer {
    pub async fn start(streams: &str) -> Self {
        Self::start_with(Options::new(streams)).await
    }

    pub async fn start_with(opts: Options) -> Self {
        init_log_capture();
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("pii.key"), PII_KEY).expect("write key");
        let mut extra = opts.extra_yaml.clone();
        if let Some((cert, key)) = &opts.tls {
            assert!(
                !extra.contains("auth:"),
                "Options::tls writes its own auth: section"
            );
            std::fs::create_dir_all(dir.path().join("tls")).expect("tls dir");
            std::fs::write(dir.path().join("tls/cert.pem"), cert).expect("write cert");
            std::fs::write(dir.path().join("tls/key.pem"), key).expect("write key");
            extra.push_str("\nauth:\n  tls: { cert: tls/cert.pem, key: tls/key.pem }\n");
        }
        let yaml = format!(
            "server:
  listen: 127.0.0.1:0
  max_body_bytes: {max_body}
  max_buffered_records: {max_buf}
  ack_timeout_ms: {ack}
lake:
  path: lake
  checkpoint_interval: {ckpt}
  compaction: {{ enabled: false }}
pii:
  key_env: FRESHET_IT_KEY_THAT_IS_NEVER_SET
  key_file: pii.key
  key_version: {PII_KEY_VERSION}
streams:
{streams}
{extra}
",
            extra = extra,
            max_body = opts.max_body_bytes,
            max_buf = opts.max_buffered_records,
            ack = opts.ack_timeout_ms,
            ckpt = opts.checkpoint_interval,
            streams = opts.streams,
        );
        let cfg_path = dir.path().join("freshet.yaml");
        std::fs::write(&cfg_path, &yaml).expect("write config");
        let (config, base) =
            load_config(&cfg_path).unwrap_or_else(|e| panic!("{e:#}\n--- config ---\n{yaml}"));
        let max_body = config.server.max_body_bytes.get();
        // As `freshet up` does.
        let tls = tls_config(&config, &base).unwrap_or_else(|e| panic!("auth.tls: {e:#}"));
        let mut runtime = Runtime::start(config, base)
            .await
            .unwrap_or_else(|e| panic!("runtime: {e:#}"));
        if opts.start_sources {
            runtime.start_sources();
        }
        if opts.start_loops {
            runtime.start_serving(Duration::from_millis(100));
            runtime.start_rollouts(Duration::from_millis(200));
            runtime
                .start_loops(Duration::from_millis(200), Arc::new(|_: &str, _: &_| {}))
                .expect("start the loops");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let ready = Arc::new(AtomicBool::new(false));
        let state = runtime.app_state(ready.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let stopped = async move {
            let _ = stopped.await;
        };
        let server = match tls {
            Some(tls) => tokio::spawn(serve_tls(listener, tls, state, max_body, stopped)),
            None => tokio::spawn(serve(listener, state, max_body, stopped)),
        };
        // `serve` flips `ready` when it starts.
        for _ in 0..200 {
            if ready.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(60));
        if let Some((cert, _)) = &opts.tls {
            let ca = reqwest::Certificate::from_pem(cert.as_bytes()).expect("PEM certificate");
            client = client.add_root_certificate(ca);
        }
        let client = client.build().expect("client");
        Self {
            dir,
            addr,
            client,
            ingest: runtime.ingest.clone(),
            ready,
            tls: opts.tls.is_some(),
            lake: runtime.lake.clone(),
            runtime: Some(runtime),
            stop: Some(stop),
            server: Some(server),
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// The folder of the lake on disk.
    pub fn lake_dir(&self) -> PathBuf {
        self.lake.root().to_file_path().expect("local lake")
    }

    pub fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("running")
    }

    /// A fresh handle on table `name` (e.g. `events/x`), at its latest version.
    pub async fn table(&self, name: &str) -> Table {
        let url = self.lake.table_url(name).expect("table url");
        Table::open(url)
            .await
            .unwrap_or_else(|e| panic!("open {name}: {e}"))
    }

    pub async fn info(&self, name: &str) -> TableInfo {
        self.table(name)
            .await
            .info(None)
            .await
            .unwrap_or_else(|e| panic!("info {name}: {e}"))
    }

    /// Number of rows of table `name` at its latest version.
    pub async fn count(&self, name: &str) -> u64 {
        self.info(name).await.rows
    }

    /// Every row of table `name`, as JSON objects.
    pub async fn rows(&self, name: &str) -> Vec<serde_json::Value> {
        self.table(name)
            .await
            .head(None, usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("read {name}: {e}"))
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Resp {
        let r = self
            .client
            .get(format!("{}{path}", self.url()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        into_resp(r).await
    }

    /// `POST /v1/streams/{stream}/events` with an optional content type and key.
    pub async fn post(
        &self,
        stream: &str,
        body: impl Into<reqwest::Body>,
        content_type: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Resp {
        let mut req = self
            .client
            .post(format!("{}/v1/streams/{stream}/events", self.url()))
            .body(body);
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST to {stream}: {e}"));
        into_resp(r).await
    }

    /// POST a JSON body (array or NDJSON) and return the answer.
    pub async fn post_json(&self, stream: &str, body: impl Into<reqwest::Body>) -> Resp {
        self.post(stream, body, Some("application/json"), None)
            .await
    }

    /// Ingest a file with the file source, as `freshet ingest` does.
    pub async fn ingest_file(&self, stream: &str, path: &Path, format: FileFormat) -> FileProgress {
        let (_stop_tx, stop) = tokio::sync::watch::channel(false);
        let opts = FileOptions::new(format);
        ingest_file(&self.ingest, stream, path, &opts, stop, &|_| {})
            .await
            .unwrap_or_else(|e| panic!("ingest {}: {e}", path.display()))
    }

    /// The current metrics, as text.
    pub async fn metrics(&self) -> String {
        let r = self.get("/metrics").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }

    /// Stop serving and wait for buffered records to be committed.
    pub async fn shutdown(self) {
        drop(self.shutdown_keep_dir().await);
    }

    /// As [`shutdown`](Self::shutdown), handing back the temporary directory (config,
    /// key file and lake) for inspection; it is deleted when dropped.
    pub async fn shutdown_keep_dir(mut self) -> tempfile::TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("server stops within 10 s")
                .expect("server task")
                .expect("server io");
        }
        assert!(
            !self.ready.load(Ordering::SeqCst),
            "not ready once shutting down"
        );
        if let Some(rt) = self.runtime.take() {
            rt.shutdown().await;
        }
        self.dir
    }
}

pub async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await.expect("read body").to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// Poll `f` until it returns true or `timeout` passes; returns the last result.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The value of a Prometheus sample `name{labels}` in exposition text; labels must match
/// exactly those given (in any order).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ')?;
        let (n, l) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if n != name {
            continue;
        }
        let mut got: Vec<(String, String)> = l
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.to_string(), v.trim_matches('"').to_string()))
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        if got == want {
            return value.parse().ok();
        }
    }
    None
}

/// Every file under `root`, recursively.
pub fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

// ---- capture of the tracing output of the whole test binary ----

static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install (once) a global subscriber that records the log output of every test in
/// memory, at the levels an operator would turn on when debugging.
pub fn init_log_capture() {
    LOG.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = LogWriter(buf.clone());
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,freshet=trace,freshet_ingest=trace,freshet_lake=trace,tower_http=trace,\
             hyper=info,h2=info,reqwest=info,deltalake=info,object_store=info,datafusion=info",
        );
        let sub = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(sub);
        buf
    });
}

/// Everything logged so far by this test binary.
pub fn captured_log() -> Vec<u8> {
    LOG.get()
        .map(|b| b.lock().unwrap_or_else(|e| e.into_inner()).clone())
        .unwrap_or_default()
}

/// Train `model` on `rows` (the newest 20% held out) and register it as a version of
/// `name`, as the loop's built-in job does; returns the version.
pub fn publish_trained(
    srv: &TestServer,
    name: &str,
    model: freshet_learn::model::Model,
    rows: &[serde_json::Value],
) -> i64 {
    let outcome = freshet_learn::train::train_with_holdout(model, rows, 0.2, |_| {})
        .unwrap_or_else(|e| panic!("training {name}: {e}"));
    let rt = srv.runtime();
    let lineage = freshet_control::publish::Lineage {
        table: "events/s".into(),
        table_uri: "memory".into(),
        version: 0,
        rows: rows.len() as u64,
    };
    freshet_control::publish::publish(
        rt.tracking.as_ref(),
        rt.artifacts.as_ref(),
        name,
        &outcome,
        &lineage,
        0,
    )
    .unwrap_or_else(|e| panic!("publishing {name}: {e}"))
    .version
}

/// The payments stream the serving, rollout and live tests train on: `amount`,
/// `merchant` and the label `is_fraud`.
pub fn payments_schema() -> freshet_core::Schema {
    use freshet_core::{Field, FieldType};
    freshet_core::Schema::new(vec![
        Field::new("amount", FieldType::Float),
        Field::new("merchant", FieldType::String),
        Field::new("is_fraud", FieldType::Bool),
    ])
}
