//! Prediction sinks: every committed prediction pushed downstream as NDJSON, to a file
//! or an HTTP webhook, or to a system whose client lives in another crate (Kafka, in
//! `freshet-connect`) through an [`ExternalSink`] made by the [`SinkFactory`] the
//! binary hands over.
//!
//! Sinks are fed by the capture writer after each commit to `inference/<model>`, so a
//! consumer never sees a prediction the table does not hold; the same sinks carry a
//! stream's dead letters after each commit to `dlq/<stream>` (the binary's lake sink
//! feeds them). Each sink has its own
//! bounded queue and task: a slow webhook delays only itself, and what it cannot take
//! is counted in `freshet_prediction_sink_dropped_total`, never silently lost.

use crate::capture::InferenceRow;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use freshet_core::model_spec::SinkSpec;

/// Batches queued per sink before new ones are dropped (and counted).
const QUEUE_BATCHES: usize = 1_024;

/// One prediction as a sink line.
#[derive(Serialize)]
struct Line<'a> {
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_id: Option<&'a str>,
    ts_micros: i64,
    model: &'a str,
    version: i64,
    variant: &'a str,
    row: i64,
    features: &'a serde_json::value::RawValue,
    prediction: &'a serde_json::value::RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    probabilities: Option<&'a serde_json::value::RawValue>,
    latency_us: i64,
}

/// Render rows as NDJSON (a row whose JSON fields do not parse is skipped).
pub fn ndjson(rows: &[InferenceRow]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rows.len() * 200);
    for r in rows {
        let raw = |s: &str| serde_json::value::RawValue::from_string(s.to_string()).ok();
        let (Some(features), Some(prediction)) = (raw(&r.features), raw(&r.prediction)) else {
            continue;
        };
        let probabilities = r.probabilities.as_deref().and_then(raw);
        let line = Line {
            request_id: &r.request_id,
            client_request_id: r.client_request_id.as_deref(),
            ts_micros: r.at_micros,
            model: &r.model,
            version: r.version,
            variant: r.variant,
            row: r.row,
            features: &features,
            prediction: &prediction,
            probabilities: probabilities.as_deref(),
            latency_us: r.latency_micros,
        };
        if serde_json::to_writer(&mut out, &line).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// Delivery to a system whose client library lives in another crate.
pub trait ExternalSink: Send + Sync + 'static {
    /// Deliver one batch of NDJSON lines (one prediction each), retrying as the system
    /// does; `Err` names how many lines could not be delivered (counted as dropped).
    fn deliver(
        &self,
        batch: Arc<Vec<u8>>,
    ) -> futures::future::BoxFuture<'static, Result<(), Undelivered>>;
}

/// Lines an [`ExternalSink`] could not deliver, and why (never a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undelivered {
    pub lines: u64,
    pub reason: String,
}

/// Makes the [`ExternalSink`] for a spec this crate cannot serve itself (`None` when the
/// factory does not know the spec either).
pub type SinkFactory =
    dyn Fn(&str, &SinkSpec) -> Option<Result<Arc<dyn ExternalSink>, String>> + Send + Sync;

/// A running sink.
#[derive(Debug)]
pub struct Sink {
    tx: mpsc::Sender<Arc<Vec<u8>>>,
    /// This sink's series of the drop counter.
    dropped: prometheus::IntCounter,
}

impl Sink {
    /// Start the sink's task. `model` labels its drop counter; `external` makes the
    /// sinks this crate has no client for.
    pub fn start(
        model: &str,
        spec: &SinkSpec,
        dropped: prometheus::IntCounterVec,
        external: Option<&SinkFactory>,
    ) -> Result<Self, String> {
        let (tx, rx) = mpsc::channel(QUEUE_BATCHES);
        let label = match spec {
            SinkSpec::Ndjson { path } => format!("ndjson:{path}"),
            // Only the origin: a webhook URL often holds its token.
            SinkSpec::Webhook { url, .. } => {
                format!("webhook:{}", freshet_core::secrets::url_origin(url))
            }
            SinkSpec::Kafka { topic, .. } => format!("kafka:{topic}"),
            SinkSpec::Pulsar { topic, .. } => format!("pulsar:{topic}"),
        };
        let task_dropped = dropped.with_label_values(&[model, &label]);
        match spec.clone() {
            SinkSpec::Ndjson { path } => {
                tokio::spawn(file_loop(PathBuf::from(path), rx, task_dropped.clone()));
            }
            SinkSpec::Webhook {
                url,
                timeout_ms,
                retries,
            } => {
                tokio::spawn(webhook_loop(
                    url,
                    timeout_ms,
                    retries,
                    rx,
                    task_dropped.clone(),
                ));
            }
            other => {
                let sink = external
                    .and_then(|make| make(model, &other))
                    .ok_or_else(|| format!("no client for the {label} sink in this build"))??;
                tokio::spawn(external_loop(sink, label, rx, task_dropped.clone()));
            }
        }
        Ok(Self {
            tx,
            dropped: task_dropped,
        })
    }

    /// Queue a batch of NDJSON lines; counted as dropped when the queue is full.
    pub fn offer(&self, batch: Arc<Vec<u8>>, rows: u64) {
        if self.tx.try_send(batch).is_err() {
            self.dropped.inc_by(rows);
        }
    }
}

/// The counter every sink counts its drops in.
pub fn dropped_counter(registry: &prometheus::Registry) -> prometheus::IntCounterVec {
    let c = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "freshet_prediction_sink_dropped_total",
            "Predictions a sink could not take (queue full, or delivery failed after retries)",
        ),
        &["model", "sink"],
    )
    .expect("a valid metric name");
    let _ = registry.register(Box::new(c.clone()));
    c
}

/// The counter dead-letter sinks (`streams.<s>.dead_letter_sinks`) count their drops in;
/// its first label is the stream.
pub fn dead_letter_dropped_counter(registry: &prometheus::Registry) -> prometheus::IntCounterVec {
    let c = prometheus::IntCounterVec::new(
        prometheus::Opts::new(
            "freshet_dead_letter_sink_dropped_total",
            "Dead letters a sink could not take (queue full, or delivery failed after retries)",
        ),
        &["stream", "sink"],
    )
    .expect("a valid metric name");
    let _ = registry.register(Box::new(c.clone()));
    c
}

fn lines(batch: &[u8]) -> u64 {
    batch.iter().filter(|b| **b == b'\n').count() as u64
}

async fn file_loop(
    path: PathBuf,
    mut rx: mpsc::Receiver<Arc<Vec<u8>>>,
    dropped: prometheus::IntCounter,
) {
    while let Some(batch) = rx.recv().await {
        let p = path.clone();
        let b = batch.clone();
        let written = tokio::task::spawn_blocking(move || {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)?;
            f.write_all(&b)?;
            f.flush()
        })
        .await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::warn!(path = %path.display(), "prediction sink could not write");
            dropped.inc_by(lines(&batch));
        }
    }
}

async fn external_loop(
    sink: Arc<dyn ExternalSink>,
    label: String,
    mut rx: mpsc::Receiver<Arc<Vec<u8>>>,
    dropped: prometheus::IntCounter,
) {
    while let Some(batch) = rx.recv().await {
        if let Err(e) = sink.deliver(batch).await {
            tracing::warn!(sink = %label, undelivered = e.lines, error = %e.reason, "sink could not deliver a batch");
            dropped.inc_by(e.lines);
        }
    }
}

async fn webhook_loop(
    url: String,
    timeout_ms: u64,
    retries: u32,
    mut rx: mpsc::Receiver<Arc<Vec<u8>>>,
    dropped: prometheus::IntCounter,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "prediction webhook client cannot start");
            return;
        }
    };
    while let Some(batch) = rx.recv().await {
        let mut delivered = false;
        for attempt in 0..=retries {
            let sent = client
                .post(&url)
                .header("content-type", "application/x-ndjson")
                .body(batch.as_ref().clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    delivered = true;
                    break;
                }
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    tracing::warn!(
                        status = r.status().as_u16(),
                        "prediction webhook refused a batch"
                    );
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await,
            }
        }
        if !delivered {
            dropped.inc_by(lines(&batch));
        }
    }
}
