//! The Kafka source.
//!
//! One consumer per stream, on its own thread. Each partition's position lives in the
//! stream's event table: a submission of a partition's records carries the Delta `txn`
//! `kafka:<topic>:<partition>` at its last offset, written in the same commit as the
//! rows, and follows on from the position before it (`Txn::after`). On assignment the
//! consumer seeks every partition to the table's position + 1, so a crash, a restart or
//! a rebalance neither loses nor duplicates a record; a stale submission (one that does
//! not follow on from the table) is refused by the sink, never written twice. Offsets
//! committed to the group are a hint for lag tools only.

pub mod bind;
pub mod decode;
pub mod feedback;
pub mod sink;

use crate::error::ConnectError;
use decode::{RecordDecoder, RecordMeta};
use freshet_core::config_connect::{KafkaSourceConfig, StartPosition};
use freshet_ingest::IngestError;
use freshet_ingest::batch::Ack;
use freshet_ingest::decode::DecodedRecord;
use freshet_ingest::health::SourceHealth;
use freshet_ingest::service::{IngestService, StreamRuntime};
use freshet_ingest::sink::Txn;
use prometheus::{IntGaugeVec, Opts, Registry};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// The transaction id of a topic partition.
pub fn partition_app_id(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}:{partition}")
}

/// Tuning of the consumer loop.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Records gathered into one round of submissions (one per partition).
    pub max_batch: usize,
    /// How long a round waits for records before submitting what it has.
    pub linger: Duration,
    /// Rounds awaiting their commit at once.
    pub max_in_flight: usize,
    /// How often consumer lag is measured.
    pub lag_every: Duration,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            max_batch: 20_000,
            linger: Duration::from_millis(50),
            max_in_flight: 4,
            lag_every: Duration::from_secs(5),
        }
    }
}

/// Consumer lag per partition, on `/metrics`.
#[derive(Debug, Clone)]
pub struct KafkaMetrics {
    pub lag: IntGaugeVec,
}

impl KafkaMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let lag = IntGaugeVec::new(
            Opts::new(
                "freshet_source_lag_records",
                "Records in the partition this consumer has not read yet",
            ),
            &["stream", "topic", "partition"],
        )?;
        registry.register(Box::new(lag.clone()))?;
        Ok(Self { lag })
    }
}

/// A partition this consumer owns.
#[derive(Debug)]
struct PartState {
    app_id: String,
    source: Arc<str>,
    id_prefix: String,
    /// The next offset to take; smaller ones were taken already (a refetch after a seek).
    next: Option<i64>,
    /// The position the next submission follows on (-1: none committed).
    prev_version: i64,
    /// The partition's offsets went below the table's position (reported once).
    went_back: bool,
}

/// A round (one submission per partition) awaiting its commits, and the offsets it reaches.
struct InFlight {
    acks: Vec<Ack>,
    reached: Vec<(String, i32, i64)>,
}

struct Shared {
    rt: Handle,
    service: Arc<IngestService>,
    stream: String,
    start: StartPosition,
    health: SourceHealth,
    parts: Mutex<HashMap<(String, i32), PartState>>,
    in_flight: Mutex<VecDeque<InFlight>>,
    /// An error found inside a callback or the worker; the loop returns it.
    fatal: Mutex<Option<String>>,
    /// Rounds on their way to the worker, which decodes and submits them in order.
    work: Mutex<Option<std::sync::mpsc::SyncSender<Work>>>,
}

/// A partition's share of a round: raw records, decoded on the worker.
struct PartRound {
    source: Arc<str>,
    id_prefix: String,
    txn: Txn,
    topic: String,
    partition: i32,
    records: Vec<Raw>,
}

/// A record as polled, owned so the worker can decode it while the next round is polled.
struct Raw {
    offset: i64,
    payload: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    timestamp_ms: Option<i64>,
    /// Only the mapped headers, and only when some header is mapped.
    headers: Vec<(String, Vec<u8>)>,
}

enum Work {
    Round(Vec<PartRound>),
    /// Answered once every round sent before it is submitted.
    Flush(std::sync::mpsc::Sender<()>),
}

impl Shared {
    fn lock_parts(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), PartState>> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, why: String) {
        let mut f = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert(why);
    }

    /// Wait until the worker has submitted every round handed to it.
    fn flush_worker(&self) {
        let tx = self.work.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(tx) = tx {
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            if tx.send(Work::Flush(done_tx)).is_ok() {
                let _ = done_rx.recv();
            }
        }
    }

    /// Wait for every round in flight; the first failure is returned.
    fn drain(&self) -> Result<Vec<(String, i32, i64)>, String> {
        let mut reached = Vec::new();
        loop {
            let next = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop_front();
            let Some(f) = next else {
                return Ok(reached);
            };
            for ack in f.acks {
                wait_ack(&self.rt, ack)?;
            }
            reached.extend(f.reached);
        }
    }

    /// The position of every partition in `tpl`, from the table, set as its offset.
    fn position_from_table(&self, tpl: &mut TopicPartitionList) -> Result<(), String> {
        let mut parts = self.lock_parts();
        let wanted: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        for (topic, partition) in wanted {
            let app_id = partition_app_id(&topic, partition);
            let committed = self
                .rt
                .block_on(self.service.sink().txn_version(&self.stream, &app_id))
                .map_err(|e| format!("cannot read the position of {app_id}: {e}"))?;
            let offset = start_offset(committed, self.start);
            tpl.set_partition_offset(&topic, partition, offset)
                .map_err(|e| e.to_string())?;
            tracing::info!(
                stream = %self.stream,
                topic = %topic,
                partition,
                from = committed.map_or(-1, |c| c + 1),
                "kafka partition assigned"
            );
            parts.insert(
                (topic.clone(), partition),
                PartState {
                    id_prefix: hex::encode(&Sha256::digest(app_id.as_bytes())[..8]),
                    source: app_id.as_str().into(),
                    app_id,
                    next: committed.map(|c| c + 1),
                    prev_version: committed.unwrap_or(-1),
                    went_back: false,
                },
            );
        }
        Ok(())
    }
}

/// Where a partition starts: after the position the table holds, else at `start`.
pub(crate) fn start_offset(committed: Option<i64>, start: StartPosition) -> Offset {
    match (committed, start) {
        (Some(c), _) => Offset::Offset(c + 1),
        (None, StartPosition::Earliest) => Offset::Beginning,
        (None, StartPosition::Latest) => Offset::End,
    }
}

fn wait_ack(rt: &Handle, ack: Ack) -> Result<(), String> {
    match rt.block_on(ack) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(IngestError::ShuttingDown.to_string()),
    }
}

/// The consumer's context: reports broker trouble and places assigned partitions at
/// the table's positions.
struct Ctx {
    shared: Arc<Shared>,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if matches!(
            code,
            Some(RDKafkaErrorCode::AllBrokersDown)
                | Some(RDKafkaErrorCode::BrokerTransportFailure)
                | Some(RDKafkaErrorCode::Resolve)
        ) {
            self.shared.health.down(
                &self.shared.stream,
                format!("kafka brokers unreachable: {reason}"),
            );
        } else {
            tracing::warn!(stream = %self.shared.stream, error = %error, "kafka client error");
        }
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr as E;
        let shared = &self.shared;
        match err {
            E::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Err(e) = shared.position_from_table(tpl) {
                    shared.fail(e);
                    let _ = consumer.unassign();
                    return;
                }
                if let Err(e) = consumer.assign(tpl) {
                    shared.fail(format!("cannot assign partitions: {e}"));
                }
            }
            _ => {
                // Let the rounds in flight commit before the partitions go to another
                // consumer: they would be fenced anyway, but committed work is not redone.
                shared.flush_worker();
                if let Err(e) = shared.drain() {
                    shared.fail(e);
                }
                let revoked: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let mut parts = shared.lock_parts();
                for k in &revoked {
                    parts.remove(k);
                }
                drop(parts);
                tracing::info!(stream = %shared.stream, partitions = revoked.len(), "kafka partitions revoked");
                let _ = consumer.unassign();
            }
        }
    }
}

/// Read the stream's topics into its table until `stop` turns true. Returns an error
/// (and is restarted from the table by the caller) when a commit fails.
pub async fn run_kafka(
    service: Arc<IngestService>,
    stream: String,
    cfg: KafkaSourceConfig,
    opts: KafkaOptions,
    health: SourceHealth,
    metrics: KafkaMetrics,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || {
        consume(rt, service, stream, cfg, opts, health, metrics, stop)
    })
    .await
    .map_err(|e| ConnectError::Task(e.to_string()))?
}

/// The consumer settings of a Kafka source: the user's `options`, then what exactly-once
/// needs (no auto-commit, no auto offset store) on top.
pub(crate) fn client_config(cfg: &KafkaSourceConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in &cfg.options {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("partition.assignment.strategy", "range,roundrobin")
        .set(
            "auto.offset.reset",
            match cfg.start {
                StartPosition::Earliest => "earliest",
                StartPosition::Latest => "latest",
            },
        );
    c.set_log_level(rdkafka::config::RDKafkaLogLevel::Error);
    c
}

/// Everything the consumer thread needs to run its loop.
struct Loop<'a> {
    consumer: &'a BaseConsumer<Ctx>,
    shared: &'a Shared,
    opts: &'a KafkaOptions,
    stream: &'a str,
    health: &'a SourceHealth,
    metrics: &'a KafkaMetrics,
    stop: &'a watch::Receiver<bool>,
    /// The mapped header names (read only when some header is mapped).
    headers: Vec<String>,
}

#[allow(clippy::too_many_arguments)]
fn consume(
    rt: Handle,
    service: Arc<IngestService>,
    stream: String,
    cfg: KafkaSourceConfig,
    opts: KafkaOptions,
    health: SourceHealth,
    metrics: KafkaMetrics,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let srt: Arc<StreamRuntime> = service.stream(&stream)?.clone();
    let decoder = RecordDecoder::new(
        srt.pipeline.input_schema(),
        cfg.format,
        &cfg.metadata,
        cfg.max_record_bytes.get(),
    );
    let (work_tx, work_rx) = std::sync::mpsc::sync_channel::<Work>(2);
    let shared = Arc::new(Shared {
        rt: rt.clone(),
        service: service.clone(),
        stream: stream.clone(),
        start: cfg.start,
        health: health.clone(),
        parts: Mutex::new(HashMap::new()),
        in_flight: Mutex::new(VecDeque::new()),
        fatal: Mutex::new(None),
        work: Mutex::new(Some(work_tx)),
    });
    let consumer: BaseConsumer<Ctx> = client_config(&cfg).create_with_context(Ctx {
        shared: shared.clone(),
    })?;
    // Decoding and the pipeline run on a worker, so the next round is polled meanwhile.
    let worker = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("kafka-{stream}"))
            .spawn(move || work_loop(&shared, &srt, &decoder, work_rx))
            .map_err(|e| ConnectError::Task(e.to_string()))?
    };
    let lp = Loop {
        consumer: &consumer,
        shared: &shared,
        opts: &opts,
        stream: &stream,
        health: &health,
        metrics: &metrics,
        stop: &stop,
        headers: if cfg.metadata.headers.is_empty() {
            Vec::new()
        } else {
            cfg.metadata.headers.keys().cloned().collect()
        },
    };
    let result = start(&lp, &cfg).and_then(|started| if started { poll_loop(&lp) } else { Ok(()) });
    // The worker ends once its channel closes, after submitting what it was given.
    shared.work.lock().unwrap_or_else(|e| e.into_inner()).take();
    let _ = worker.join();
    // Whatever was submitted is committed (or fails) before the consumer goes.
    match shared.drain() {
        Ok(reached) => commit_hint(&consumer, &reached),
        Err(e) if result.is_ok() => return Err(ConnectError::Kafka(e)),
        Err(_) => {}
    }
    result
}

/// Wait for the brokers and topics, then join the group or assign the partitions;
/// false when stopped first.
fn start(lp: &Loop<'_>, cfg: &KafkaSourceConfig) -> Result<bool, ConnectError> {
    if !wait_for_topics(
        lp.consumer,
        &cfg.brokers,
        &cfg.topics,
        lp.stream,
        lp.health,
        lp.stop,
    ) {
        return Ok(false);
    }
    match &cfg.partitions {
        Some(ps) => {
            let mut tpl = TopicPartitionList::new();
            for t in &cfg.topics {
                for p in ps {
                    tpl.add_partition(t, *p);
                }
            }
            lp.shared
                .position_from_table(&mut tpl)
                .map_err(ConnectError::Kafka)?;
            lp.consumer.assign(&tpl)?;
        }
        None => {
            let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
            lp.consumer.subscribe(&topics)?;
        }
    }
    Ok(true)
}

/// Decode and submit rounds in the order they were polled.
fn work_loop(
    shared: &Shared,
    srt: &StreamRuntime,
    decoder: &RecordDecoder,
    rx: std::sync::mpsc::Receiver<Work>,
) {
    for work in rx {
        match work {
            Work::Flush(done) => {
                let _ = done.send(());
            }
            Work::Round(parts) => {
                if let Err(e) = submit_round(shared, srt, decoder, parts) {
                    shared.fail(e.to_string());
                }
            }
        }
    }
}

fn poll_loop(lp: &Loop<'_>) -> Result<(), ConnectError> {
    let (shared, stream, health) = (lp.shared, lp.stream, lp.health);
    // A round must fit in the ingest buffer with room to spare, whatever it is set to.
    let max_batch = lp.opts.max_batch.min(shared.service.capacity() / 4).max(1);
    let mut last_lag = Instant::now();
    loop {
        if *lp.stop.borrow() {
            return Ok(());
        }
        if let Some(why) = shared
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(ConnectError::Kafka(why));
        }
        // Gather a round: per partition, its records in offset order.
        let mut round: BTreeMap<(String, i32), Vec<Raw>> = BTreeMap::new();
        let mut taken = 0usize;
        let deadline = Instant::now() + lp.opts.linger;
        while taken < max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(polled) = lp.consumer.poll(left) else {
                break;
            };
            let m = match polled {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(stream = %stream, error = %e, "kafka poll error");
                    break;
                }
            };
            let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
            if !take(shared, health, stream, topic, partition, offset) {
                continue;
            }
            let headers = match (lp.headers.is_empty(), m.headers()) {
                (false, Some(hs)) => hs
                    .iter()
                    .filter(|h| lp.headers.iter().any(|n| n == h.key))
                    .filter_map(|h| h.value.map(|v| (h.key.to_string(), v.to_vec())))
                    .collect(),
                _ => Vec::new(),
            };
            let raw = Raw {
                offset,
                payload: m.payload().map(<[u8]>::to_vec),
                key: m.key().map(<[u8]>::to_vec),
                timestamp_ms: m.timestamp().to_millis(),
                headers,
            };
            match round.get_mut(&(topic.to_string(), partition)) {
                Some(v) => v.push(raw),
                None => {
                    round.insert((topic.to_string(), partition), vec![raw]);
                }
            }
            taken += 1;
        }
        if !round.is_empty() {
            let parts = plan_round(shared, round);
            let tx = shared
                .work
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            match tx {
                Some(tx) if tx.send(Work::Round(parts)).is_ok() => {}
                _ => return Err(ConnectError::Task("the kafka worker stopped".into())),
            }
        }
        reap(shared, lp.consumer, lp.opts.max_in_flight).map_err(ConnectError::Kafka)?;
        if last_lag.elapsed() >= lp.opts.lag_every {
            last_lag = Instant::now();
            measure_lag(lp.consumer, shared, lp.metrics);
            // Down and idle: nothing polled proves the brokers are back, so ask them.
            let back_in_order = !shared.lock_parts().values().any(|s| s.went_back);
            if back_in_order
                && !health.is_up(stream)
                && lp
                    .consumer
                    .fetch_metadata(None, Duration::from_secs(2))
                    .is_ok()
            {
                health.up(stream);
            }
        }
    }
}

/// Whether a polled record is new to its partition (and note it taken).
fn take(
    shared: &Shared,
    health: &SourceHealth,
    stream: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> bool {
    let mut parts = shared.lock_parts();
    let Some(state) = parts.get_mut(&(topic.to_string(), partition)) else {
        return false; // revoked while this record was queued
    };
    if let Some(n) = state.next
        && offset < n
    {
        // Assigned at the table's position, the client never sends less: the
        // partition's log went back (the topic was recreated or truncated). Its
        // records are skipped until they pass the table's position, and the source
        // says so rather than re-using offsets the table already holds.
        if !state.went_back {
            state.went_back = true;
            health.down(
                stream,
                format!(
                    "partition {topic}/{partition} restarted at offset {offset}, below the \
                     table's position {n}: the topic was recreated or truncated; its \
                     records are skipped until they pass {n}"
                ),
            );
        }
        return false;
    }
    state.next = Some(offset + 1);
    if !state.went_back {
        health.up(stream);
    }
    true
}

/// Wait until the brokers answer and the topics exist, reporting why not; false when
/// stopped first.
pub(crate) fn wait_for_topics<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    brokers: &str,
    topics: &[String],
    stream: &str,
    health: &SourceHealth,
    stop: &watch::Receiver<bool>,
) -> bool {
    let mut pause = Duration::from_millis(250);
    health.connecting(stream, format!("connecting to {brokers}"));
    loop {
        if *stop.borrow() {
            return false;
        }
        let missing = match consumer.fetch_metadata(None, Duration::from_secs(3)) {
            Ok(md) => topics
                .iter()
                .filter(|t| {
                    !md.topics().iter().any(|mt| {
                        mt.name() == t.as_str()
                            && mt.error().is_none()
                            && !mt.partitions().is_empty()
                    })
                })
                .cloned()
                .collect::<Vec<_>>(),
            Err(e) => {
                health.down(stream, format!("kafka brokers {brokers} unreachable: {e}"));
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if missing.is_empty() {
            health.up(stream);
            return true;
        }
        health.down(
            stream,
            format!("kafka topics missing: {}", missing.join(", ")),
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Give each partition's share of a round its transaction, in poll order (so each
/// follows on from the one before).
fn plan_round(shared: &Shared, round: BTreeMap<(String, i32), Vec<Raw>>) -> Vec<PartRound> {
    let mut parts = shared.lock_parts();
    let mut out = Vec::with_capacity(round.len());
    for ((topic, partition), records) in round {
        let Some(state) = parts.get_mut(&(topic.clone(), partition)) else {
            continue;
        };
        let last = records.last().map_or(-1, |r| r.offset);
        let txn = Txn {
            app_id: state.app_id.clone(),
            version: last,
            after: Some(state.prev_version),
        };
        state.prev_version = last;
        out.push(PartRound {
            source: state.source.clone(),
            id_prefix: state.id_prefix.clone(),
            txn,
            topic,
            partition,
            records,
        });
    }
    out
}

/// Decode a round and submit it: one submission per partition, each with its position.
fn submit_round(
    shared: &Shared,
    srt: &StreamRuntime,
    decoder: &RecordDecoder,
    parts: Vec<PartRound>,
) -> Result<(), ConnectError> {
    let mut acks = Vec::with_capacity(parts.len());
    let mut reached = Vec::with_capacity(parts.len());
    for p in parts {
        let offsets: Vec<i64> = p.records.iter().map(|r| r.offset).collect();
        let records: Vec<DecodedRecord> = p
            .records
            .iter()
            .map(|r| {
                decoder.decode(
                    r.payload.as_deref(),
                    RecordMeta {
                        topic: &p.topic,
                        partition: p.partition,
                        offset: r.offset,
                        key: r.key.as_deref(),
                        timestamp_ms: r.timestamp_ms,
                    },
                    |name| {
                        r.headers
                            .iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| v.as_slice())
                    },
                )
            })
            .collect();
        let last = p.txn.version;
        let (_, ack) = shared.rt.block_on(shared.service.submit(
            srt,
            records,
            offsets,
            p.source,
            &p.id_prefix,
            Some(p.txn),
            false,
        ))?;
        acks.push(ack);
        reached.push((p.topic, p.partition, last));
    }
    shared
        .in_flight
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_back(InFlight { acks, reached });
    Ok(())
}

/// Collect finished rounds (waiting when too many are in flight) and pass their
/// offsets to the group as a hint.
fn reap(shared: &Shared, consumer: &BaseConsumer<Ctx>, max_in_flight: usize) -> Result<(), String> {
    use tokio::sync::oneshot::error::TryRecvError;
    let mut reached = Vec::new();
    loop {
        let mut q = shared.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let must_wait = q.len() > max_in_flight.max(1);
        let Some(front) = q.front_mut() else { break };
        // Keep the acks still pending; the first failure ends the source.
        let mut pending = Vec::new();
        for mut ack in std::mem::take(&mut front.acks) {
            match ack.try_recv() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.to_string()),
                Err(TryRecvError::Closed) => return Err(IngestError::ShuttingDown.to_string()),
                Err(TryRecvError::Empty) => pending.push(ack),
            }
        }
        front.acks = pending;
        if front.acks.is_empty() {
            if let Some(f) = q.pop_front() {
                reached.extend(f.reached);
            }
            continue;
        }
        if !must_wait {
            break;
        }
        let Some(f) = q.pop_front() else { break };
        drop(q);
        for ack in f.acks {
            wait_ack(&shared.rt, ack)?;
        }
        reached.extend(f.reached);
    }
    commit_hint(consumer, &reached);
    Ok(())
}

/// Tell the group how far the table is (for lag tools); failures only matter to them.
fn commit_hint(consumer: &BaseConsumer<Ctx>, reached: &[(String, i32, i64)]) {
    if reached.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p, o) in reached {
        let _ = tpl.add_partition_offset(t, *p, Offset::Offset(o + 1));
    }
    if let Err(e) = consumer.commit(&tpl, rdkafka::consumer::CommitMode::Async) {
        tracing::debug!(error = %e, "kafka offset hint not committed");
    }
}

fn measure_lag(consumer: &BaseConsumer<Ctx>, shared: &Shared, metrics: &KafkaMetrics) {
    let owned: Vec<((String, i32), Option<i64>)> = shared
        .lock_parts()
        .iter()
        .map(|(k, s)| (k.clone(), s.next))
        .collect();
    for ((topic, partition), next) in owned {
        match consumer.fetch_watermarks(&topic, partition, Duration::from_secs(1)) {
            Ok((low, high)) => {
                let lag = (high - next.unwrap_or(low)).max(0);
                metrics
                    .lag
                    .with_label_values(&[&shared.stream, &topic, &partition.to_string()])
                    .set(lag);
            }
            Err(e) => {
                tracing::debug!(topic = %topic, partition, error = %e, "kafka watermarks unavailable")
            }
        }
    }
}
