//! The ingest service: every configured stream's pipeline and committer, and the one
//! entry point all sources use ([`IngestService::submit_decoded`]).

use crate::batch::{Ack, CommitObserver, Committer};
use crate::decode::{self, DecodedRecord};
use crate::error::{IngestError, Result};
use crate::metrics::IngestMetrics;
use crate::pipeline::{Pipeline, Rejection};
use crate::process::pii::PiiKey;
use crate::sink::{DeadLetter, RowMeta, Submission, TableSink, Txn};
use crate::source::generator::Generator;
use freshet_core::config::{FreshetConfig, SourceConfig};
use freshet_core::{Clock, ConfigError, Schema};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// A stream's compiled pipeline and its committer.
#[derive(Debug)]
pub struct StreamRuntime {
    pub name: String,
    pub pipeline: Arc<Pipeline>,
    pub committer: Committer,
    pub source: SourceConfig,
}

/// The answer to an ingest request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IngestOutcome {
    pub stream: String,
    pub accepted: usize,
    pub rejected: usize,
    pub filtered: usize,
    /// Event-table version holding the accepted records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// True when this request repeats an `Idempotency-Key` that was already committed:
    /// nothing was written again.
    pub replayed: bool,
    pub rejections: Vec<Rejection>,
}

/// Body formats the HTTP source accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// A JSON array of objects or NDJSON, told apart by the first byte.
    Json,
    /// NDJSON, declared by the content type: one record per line, whatever the first byte.
    Ndjson,
    Csv,
}

/// Schemas a stream's table is created with: the pipeline's output plus system columns.
pub fn stream_input_schema(
    name: &str,
    cfg: &freshet_core::config::StreamConfig,
) -> Result<Schema, ConfigError> {
    match (&cfg.source, &cfg.schema) {
        (_, Some(s)) => Ok(s.to_schema()),
        (SourceConfig::Generator(g), None) => Ok(Generator::new(g).schema().clone()),
        (_, None) => Err(ConfigError::new(
            format!("streams.{name}.schema"),
            "required for http, file, kafka, pulsar and postgres_cdc sources",
        )),
    }
}

/// Build every stream's pipeline (without starting anything); used by `freshet validate`.
pub fn build_pipelines(
    config: &FreshetConfig,
    key: Option<PiiKey>,
) -> Result<BTreeMap<String, Pipeline>, Vec<ConfigError>> {
    let mut out = BTreeMap::new();
    let mut errs = Vec::new();
    for (name, s) in &config.streams {
        let path = format!("streams.{name}");
        let built = stream_input_schema(name, s)
            .and_then(|input| Pipeline::build(input, &s.transforms, key.clone(), &path));
        match built {
            Ok(p) => {
                out.insert(name.clone(), p);
            }
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() { Ok(out) } else { Err(errs) }
}

/// All streams of a configuration, ready to accept records.
pub struct IngestService {
    streams: BTreeMap<String, Arc<StreamRuntime>>,
    sink: Arc<dyn TableSink>,
    clock: Arc<dyn Clock>,
    metrics: IngestMetrics,
    ack_timeout: Duration,
    in_flight_keys: Mutex<HashSet<String>>,
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl std::fmt::Debug for IngestService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestService")
            .field("streams", &self.streams.keys())
            .finish_non_exhaustive()
    }
}

impl IngestService {
    /// Start a committer per stream. Must be called inside a Tokio runtime.
    pub fn start(
        config: &FreshetConfig,
        pipelines: BTreeMap<String, Pipeline>,
        sink: Arc<dyn TableSink>,
        clock: Arc<dyn Clock>,
        metrics: IngestMetrics,
    ) -> Self {
        let capacity = config.server.max_buffered_records.get();
        let permits = Arc::new(Semaphore::new(capacity));
        let observer: Arc<dyn CommitObserver> = Arc::new(metrics.clone());
        let mut streams = BTreeMap::new();
        for (name, pipeline) in pipelines {
            let Some(cfg) = config.streams.get(&name) else {
                continue;
            };
            let (committer, _task) = Committer::spawn(
                &name,
                cfg.commit.clone(),
                sink.clone(),
                observer.clone(),
                permits.clone(),
                capacity,
            );
            streams.insert(
                name.clone(),
                Arc::new(StreamRuntime {
                    name,
                    pipeline: Arc::new(pipeline),
                    committer,
                    source: cfg.source.clone(),
                }),
            );
        }
        Self {
            streams,
            sink,
            clock,
            metrics,
            ack_timeout: Duration::from_millis(config.server.ack_timeout_ms.get()),
            in_flight_keys: Mutex::new(HashSet::new()),
            permits,
            capacity,
        }
    }

    pub fn stream(&self, name: &str) -> Result<&Arc<StreamRuntime>> {
        self.streams
            .get(name)
            .ok_or_else(|| IngestError::UnknownStream(name.to_string()))
    }

    pub fn streams(&self) -> impl Iterator<Item = &Arc<StreamRuntime>> {
        self.streams.values()
    }

    pub fn sink(&self) -> &Arc<dyn TableSink> {
        &self.sink
    }

    pub fn metrics(&self) -> &IngestMetrics {
        &self.metrics
    }

    /// The most records that can wait for their commit at once, across streams
    /// (`server.max_buffered_records`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records accepted and not yet committed, across streams.
    pub fn buffered(&self) -> usize {
        self.capacity
            .saturating_sub(self.permits.available_permits())
    }

    /// Handle an HTTP body: decode, process, commit, and answer after the commit.
    pub async fn ingest_http(
        &self,
        stream: &str,
        body: &[u8],
        format: BodyFormat,
        idempotency_key: Option<&str>,
    ) -> Result<IngestOutcome> {
        let started = Instant::now();
        let rt = self.stream(stream)?.clone();
        let schema = rt.pipeline.input_schema();
        // No request holds more records than the buffer: refused while decoding, not
        // after (a body of tiny records would decode to many times its size first).
        let max = self.capacity;
        let records = match format {
            BodyFormat::Json => decode::decode_json_body_at_most(body, schema, max)?,
            BodyFormat::Ndjson => decode::decode_ndjson_at_most(body, schema, 1, max)?,
            BodyFormat::Csv => decode::decode_csv_at_most(body, schema, max)?,
        };
        let _key_guard = match idempotency_key {
            Some(k) => Some(self.claim_key(stream, k)?),
            None => None,
        };
        let txn = idempotency_key.map(|k| Txn {
            app_id: format!("http:{k}"),
            after: None,
            version: 1,
        });
        if let Some(t) = &txn {
            let done = self
                .sink
                .txn_version(stream, &t.app_id)
                .await
                .map_err(IngestError::Commit)?;
            if done.is_some_and(|v| v >= t.version) {
                // Already committed: answer as before without writing anything.
                let processed = rt.pipeline.process(records);
                return Ok(IngestOutcome {
                    stream: stream.to_string(),
                    accepted: processed.rows.len(),
                    rejected: processed.rejections.len(),
                    filtered: processed.filtered,
                    version: None,
                    replayed: true,
                    rejections: processed.rejections,
                });
            }
        }
        let id_prefix = match idempotency_key {
            Some(k) => hex::encode(&Sha256::digest(format!("{stream}\u{0}{k}").as_bytes())[..12]),
            None => uuid::Uuid::now_v7().simple().to_string(),
        };
        let (outcome, ack) = self
            .submit_decoded(
                &rt,
                records,
                "http".into(),
                &id_prefix,
                0,
                txn.clone(),
                true,
            )
            .await?;
        let receipt = match tokio::time::timeout(self.ack_timeout, ack).await {
            Ok(Ok(Ok(r))) => r,
            Ok(Ok(Err(e))) => {
                // Another node may have committed this very key first (the commit lost
                // the race to a commit carrying the same key): then the batch is
                // stored, and the answer is the replay's.
                if let Some(t) = &txn
                    && let Ok(Some(v)) = self.sink.txn_version(stream, &t.app_id).await
                    && v >= t.version
                {
                    return Ok(IngestOutcome {
                        version: None,
                        replayed: true,
                        ..outcome
                    });
                }
                return Err(e);
            }
            Ok(Err(_)) => return Err(IngestError::ShuttingDown),
            Err(_) => return Err(IngestError::AckTimeout(self.ack_timeout.as_millis() as u64)),
        };
        self.metrics
            .ack_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(IngestOutcome {
            version: receipt.version,
            ..outcome
        })
    }

    /// Process decoded records and submit them; record `i` has source position
    /// `first_position + i`. `fail_fast` chooses backpressure by failing (HTTP) over
    /// waiting for room (file, generator).
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_decoded(
        &self,
        rt: &StreamRuntime,
        records: Vec<DecodedRecord>,
        source: Arc<str>,
        id_prefix: &str,
        first_position: i64,
        txn: Option<Txn>,
        fail_fast: bool,
    ) -> Result<(IngestOutcome, Ack)> {
        let positions = (0..records.len() as i64)
            .map(|i| first_position + i)
            .collect();
        self.submit(rt, records, positions, source, id_prefix, txn, fail_fast)
            .await
    }

    /// Process decoded records with an explicit source position per record (byte
    /// offsets for files) and submit them.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit(
        &self,
        rt: &StreamRuntime,
        records: Vec<DecodedRecord>,
        positions: Vec<i64>,
        source: Arc<str>,
        id_prefix: &str,
        txn: Option<Txn>,
        fail_fast: bool,
    ) -> Result<(IngestOutcome, Ack)> {
        self.submit_ordered(
            rt, records, positions, None, source, id_prefix, txn, fail_fast,
        )
        .await
    }

    /// [`submit`](Self::submit) for a source whose positions do not follow its
    /// transaction versions: `orders` gives each record's place in the version's unit
    /// (see [`DeadLetter::order`](crate::sink::DeadLetter::order)); by default a
    /// record's order is its position.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit_ordered(
        &self,
        rt: &StreamRuntime,
        records: Vec<DecodedRecord>,
        positions: Vec<i64>,
        orders: Option<Vec<i64>>,
        source: Arc<str>,
        id_prefix: &str,
        txn: Option<Txn>,
        fail_fast: bool,
    ) -> Result<(IngestOutcome, Ack)> {
        let n = records.len();
        self.metrics
            .records_in
            .with_label_values(&[&rt.name])
            .inc_by(n as u64);
        let permit = if fail_fast {
            rt.committer.try_reserve(n)?
        } else {
            rt.committer.reserve(n).await?
        };
        let processed = rt.pipeline.process(records);
        let meta = |i: usize| RowMeta {
            position: positions.get(i).copied().unwrap_or(i as i64),
        };
        let submission = Submission {
            meta: processed.positions.iter().map(|&i| meta(i)).collect(),
            dead: processed
                .rejections
                .iter()
                .map(|r| DeadLetter {
                    rejection: r.clone(),
                    meta: meta(r.index),
                    order: orders
                        .as_ref()
                        .and_then(|o| o.get(r.index).copied())
                        .unwrap_or(meta(r.index).position),
                })
                .collect(),
            rows: processed.rows,
            source,
            id_prefix: id_prefix.into(),
            ingested_at: self.clock.now_micros(),
            txn,
        };
        let accepted = submission.rows.len();
        self.metrics
            .records_rejected
            .with_label_values(&[&rt.name])
            .inc_by(processed.rejections.len() as u64);
        self.metrics
            .records_filtered
            .with_label_values(&[&rt.name])
            .inc_by(processed.filtered as u64);
        self.metrics.buffered_records.set(self.buffered() as i64);
        let ack = rt.committer.submit(submission, permit)?;
        Ok((
            IngestOutcome {
                stream: rt.name.clone(),
                accepted,
                rejected: processed.rejections.len(),
                filtered: processed.filtered,
                version: None,
                replayed: false,
                rejections: processed.rejections,
            },
            ack,
        ))
    }

    fn claim_key(&self, stream: &str, key: &str) -> Result<KeyGuard<'_>> {
        if key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(IngestError::BadRequest(
                "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
            ));
        }
        let full = format!("{stream}\u{0}{key}");
        let mut set = self
            .in_flight_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !set.insert(full.clone()) {
            return Err(IngestError::Conflict(
                "a request with this Idempotency-Key is still being processed".into(),
            ));
        }
        Ok(KeyGuard {
            set: &self.in_flight_keys,
            key: full,
        })
    }
}

struct KeyGuard<'a> {
    set: &'a Mutex<HashSet<String>>,
    key: String,
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}
