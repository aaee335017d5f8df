//! Inference capture: every prediction (shadow ones too) as a row of the Delta table
//! `inference/<model>`, written off the request path.
//!
//! Requests hand rows to a bounded buffer and move on; a background writer groups them
//! per model and commits every `flush_ms` or `flush_rows`. When the buffer is full the
//! row is counted in `freshet_inference_capture_dropped_total` instead of slowing the
//! answer down: serving latency wins over capture under overload, and the loss is
//! visible. [`Capture::shutdown`] commits whatever is buffered.

use freshet_core::{Field, FieldType, Schema, Value};
use freshet_lake::{Lake, RowBatchBuilder, Table};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// One captured prediction (one row of a request).
#[derive(Debug, Clone)]
pub struct InferenceRow {
    pub request_id: Arc<str>,
    pub client_request_id: Option<Arc<str>>,
    pub at_micros: i64,
    pub model: Arc<str>,
    pub version: i64,
    /// `champion`, `challenger` or `shadow`.
    pub variant: &'static str,
    pub routing_key: Option<Arc<str>>,
    /// Index of the row within its request.
    pub row: i64,
    /// The model's inputs as a JSON object.
    pub features: String,
    /// The prediction as JSON (the label value or the regression value).
    pub prediction: String,
    /// Class probabilities as a JSON array (classifiers).
    pub probabilities: Option<String>,
    pub latency_micros: i64,
}

/// Capture settings.
#[derive(Debug, Clone, Copy)]
pub struct CaptureOptions {
    /// Rows buffered between requests and the writer.
    pub buffer_rows: usize,
    /// Commit when this many rows wait for one model…
    pub flush_rows: usize,
    /// …or this long after the first of them arrived.
    pub flush_ms: u64,
}

impl Default for CaptureOptions {
    fn default() -> Self {
        Self {
            buffer_rows: 200_000,
            flush_rows: 20_000,
            flush_ms: 1_000,
        }
    }
}

/// The columns of `inference/<model>`.
pub fn inference_schema() -> Schema {
    Schema::new(vec![
        Field::new("request_id", FieldType::String),
        Field::new("client_request_id", FieldType::String),
        Field::new("ts", FieldType::Timestamp),
        Field::new("model", FieldType::String),
        Field::new("version", FieldType::Int),
        Field::new("variant", FieldType::String),
        Field::new("routing_key", FieldType::String),
        Field::new("row", FieldType::Int),
        Field::new("features", FieldType::String),
        Field::new("prediction", FieldType::String),
        Field::new("probabilities", FieldType::String),
        Field::new("latency_us", FieldType::Int),
        Field::new("date", FieldType::Date),
    ])
}

/// The capture buffer and its writer.
pub struct Capture {
    tx: mpsc::Sender<InferenceRow>,
    closed: Arc<std::sync::atomic::AtomicBool>,
    writer: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    dropped: prometheus::IntCounterVec,
    written: prometheus::IntCounterVec,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture").finish_non_exhaustive()
    }
}

impl Capture {
    /// Start the writer. Counters are registered in `registry` (an already registered
    /// name is reused, so tests can start several).
    pub fn start(lake: Lake, opts: CaptureOptions, registry: &prometheus::Registry) -> Self {
        Self::spawn(lake, opts, registry, HashMap::new())
    }

    /// Start the writer with prediction sinks per model, fed after each commit.
    pub fn start_with_sinks(
        lake: Lake,
        opts: CaptureOptions,
        registry: &prometheus::Registry,
        sinks: &HashMap<String, Vec<crate::sinks::SinkSpec>>,
        external: Option<&crate::sinks::SinkFactory>,
    ) -> Result<Self, String> {
        let sink_dropped = crate::sinks::dropped_counter(registry);
        let mut running: HashMap<String, Vec<crate::sinks::Sink>> = HashMap::new();
        for (model, specs) in sinks {
            let started = specs
                .iter()
                .map(|s| crate::sinks::Sink::start(model, s, sink_dropped.clone(), external))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("models.{model}.sinks: {e}"))?;
            running.insert(model.clone(), started);
        }
        Ok(Self::spawn(lake, opts, registry, running))
    }

    fn spawn(
        lake: Lake,
        opts: CaptureOptions,
        registry: &prometheus::Registry,
        running: HashMap<String, Vec<crate::sinks::Sink>>,
    ) -> Self {
        let dropped = counter(
            registry,
            "freshet_inference_capture_dropped_total",
            "Predictions not captured because the capture buffer was full",
        );
        let written = counter(
            registry,
            "freshet_inference_captured_total",
            "Predictions committed to inference/<model>",
        );
        let (tx, rx) = mpsc::channel(opts.buffer_rows.max(1));
        let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = tokio::spawn(write_loop(
            lake,
            opts,
            rx,
            written.clone(),
            closed.clone(),
            running,
        ));
        Self {
            tx,
            closed,
            writer: tokio::sync::Mutex::new(Some(writer)),
            dropped,
            written,
        }
    }

    /// Hand a row to the writer; `false` (and a counted drop) when the buffer is full.
    pub fn offer(&self, row: InferenceRow) -> bool {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            self.dropped.with_label_values(&[&row.model]).inc();
            return false;
        }
        match self.tx.try_send(row) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(r) | mpsc::error::TrySendError::Closed(r)) => {
                self.dropped.with_label_values(&[&r.model]).inc();
                false
            }
        }
    }

    /// Rows dropped so far for `model`.
    pub fn dropped(&self, model: &str) -> u64 {
        self.dropped.with_label_values(&[model]).get()
    }

    /// Rows committed so far for `model`.
    pub fn written(&self, model: &str) -> u64 {
        self.written.with_label_values(&[model]).get()
    }

    /// Commit everything buffered and stop; later rows count as dropped.
    pub async fn shutdown(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(w) = self.writer.lock().await.take() {
            let _ = w.await;
        }
    }
}

fn counter(registry: &prometheus::Registry, name: &str, help: &str) -> prometheus::IntCounterVec {
    // The names are fixed and valid, so building cannot fail.
    let c = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), &["model"])
        .expect("a valid metric name");
    // A second capture in one process (tests) keeps its own unregistered counter.
    let _ = registry.register(Box::new(c.clone()));
    c
}

struct Pending {
    rows: Vec<InferenceRow>,
    since: tokio::time::Instant,
}

async fn write_loop(
    lake: Lake,
    opts: CaptureOptions,
    mut rx: mpsc::Receiver<InferenceRow>,
    written: prometheus::IntCounterVec,
    stop: Arc<std::sync::atomic::AtomicBool>,
    sinks: HashMap<String, Vec<crate::sinks::Sink>>,
) {
    let schema = inference_schema();
    let mut tables: HashMap<String, Table> = HashMap::new();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let tick = Duration::from_millis(opts.flush_ms.clamp(10, 1_000) / 2 + 1);
    let mut failures_while_closing = 0u32;
    loop {
        let closed = match tokio::time::timeout(tick, rx.recv()).await {
            Ok(Some(row)) => {
                let p = pending
                    .entry(row.model.to_string())
                    .or_insert_with(|| Pending {
                        rows: Vec::new(),
                        since: tokio::time::Instant::now(),
                    });
                if p.rows.is_empty() {
                    p.since = tokio::time::Instant::now();
                }
                p.rows.push(row);
                // Take whatever else is already waiting without another wake-up.
                while p.rows.len() < opts.flush_rows {
                    match rx.try_recv() {
                        Ok(r) if *r.model == *p.rows[0].model => p.rows.push(r),
                        Ok(r) => {
                            pending
                                .entry(r.model.to_string())
                                .or_insert_with(|| Pending {
                                    rows: Vec::new(),
                                    since: tokio::time::Instant::now(),
                                })
                                .rows
                                .push(r);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                false
            }
            Ok(None) => true,
            Err(_) => false,
        };
        // Once stopping, take everything already offered, then commit it all.
        let closed = closed || {
            let stopping = stop.load(std::sync::atomic::Ordering::Acquire);
            if stopping {
                while let Ok(r) = rx.try_recv() {
                    pending
                        .entry(r.model.to_string())
                        .or_insert_with(|| Pending {
                            rows: Vec::new(),
                            since: tokio::time::Instant::now(),
                        })
                        .rows
                        .push(r);
                }
            }
            stopping
        };
        let due: Vec<String> = pending
            .iter()
            .filter(|(_, p)| {
                !p.rows.is_empty()
                    && (closed
                        || p.rows.len() >= opts.flush_rows
                        || p.since.elapsed() >= Duration::from_millis(opts.flush_ms))
            })
            .map(|(m, _)| m.clone())
            .collect();
        for model in due {
            let Some(p) = pending.get_mut(&model) else {
                continue;
            };
            let rows = std::mem::take(&mut p.rows);
            let n = rows.len() as u64;
            match commit(&lake, &schema, &mut tables, &model, &rows).await {
                Ok(()) => {
                    written.with_label_values(&[&model]).inc_by(n);
                    if let Some(list) = sinks.get(&model).filter(|l| !l.is_empty()) {
                        let batch = Arc::new(crate::sinks::ndjson(&rows));
                        for sink in list {
                            sink.offer(batch.clone(), n);
                        }
                    }
                }
                Err(e) if closed && failures_while_closing >= 10 => {
                    tracing::error!(model, rows = n, error = %e, "inference capture gave up at shutdown; rows lost");
                }
                Err(e) => {
                    failures_while_closing += u32::from(closed);
                    tracing::error!(model, rows = n, error = %e, "inference capture commit failed; retrying");
                    // Keep the rows for the next round rather than lose them.
                    p.rows = rows;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        if closed && pending.values().all(|p| p.rows.is_empty()) {
            return;
        }
    }
}

async fn commit(
    lake: &Lake,
    schema: &Schema,
    tables: &mut HashMap<String, Table>,
    model: &str,
    rows: &[InferenceRow],
) -> Result<(), freshet_lake::LakeError> {
    if !tables.contains_key(model) {
        let name = format!("inference/{model}");
        let t = crate::feedback::open_table(lake, &name, schema).await?;
        tables.insert(model.to_string(), t);
    }
    let Some(table) = tables.get(model) else {
        return Ok(());
    };
    let mut b = RowBatchBuilder::new(schema, rows.len());
    let str_or_null = |b: &mut RowBatchBuilder, col: usize, s: Option<&str>| match s {
        Some(s) => b.push_str(col, s),
        None => b.push(col, &Value::Null),
    };
    for r in rows {
        b.push_str(0, &r.request_id);
        str_or_null(&mut b, 1, r.client_request_id.as_deref());
        b.push(2, &Value::Timestamp(r.at_micros));
        b.push_str(3, &r.model);
        b.push(4, &Value::Int(r.version));
        b.push_str(5, r.variant);
        str_or_null(&mut b, 6, r.routing_key.as_deref());
        b.push(7, &Value::Int(r.row));
        b.push_str(8, &r.features);
        b.push_str(9, &r.prediction);
        str_or_null(&mut b, 10, r.probabilities.as_deref());
        b.push(11, &Value::Int(r.latency_micros));
        b.push(
            12,
            &Value::Date(freshet_core::clock::micros_to_epoch_days(r.at_micros)),
        );
        b.end_row();
    }
    table.append(b.finish()?, &[]).await?;
    Ok(())
}
