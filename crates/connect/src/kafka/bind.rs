//! A model bound to topics: every event on the input topic is scored by whatever the
//! model's router serves (champion, canary and shadow all apply, and the request is
//! captured like an HTTP one), and the answer goes to the output topic with the
//! event's key.
//!
//! At least once: a round's offsets are committed to the group only once every answer
//! of that round and of the rounds before it is delivered, so a crash answers some events twice and none
//! never. Consumers de-duplicate on the `freshet-client-request-id` header
//! (`<topic>/<partition>/<offset>` of the event, the same on every retry); the
//! `freshet-request-id` header names the captured request (lineage reads it).

use crate::error::ConnectError;
use crate::prediction::score_event;
use freshet_core::config_connect::{KafkaBindSpec, StartPosition};
use freshet_ingest::health::SourceHealth;
use freshet_serve::error::ServeError;
use freshet_serve::service::Scorer;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Tuning of a binding.
#[derive(Debug, Clone)]
pub struct BindOptions {
    /// Events scored per round (one flush and one offset commit per round).
    pub max_batch: usize,
    /// How long a round waits for events before answering what it has.
    pub linger: Duration,
}

impl Default for BindOptions {
    fn default() -> Self {
        Self {
            max_batch: 2_000,
            linger: Duration::from_millis(5),
        }
    }
}

/// Answers not yet delivered, per round, and how many the broker refused.
#[derive(Default)]
struct Deliveries {
    pending: Mutex<BTreeMap<u64, usize>>,
    failed: AtomicU64,
}

struct DeliveryCtx {
    deliveries: Arc<Deliveries>,
}

impl ClientContext for DeliveryCtx {}

impl ProducerContext for DeliveryCtx {
    /// The round the answer belongs to.
    type DeliveryOpaque = Box<u64>;
    fn delivery(&self, result: &DeliveryResult<'_>, round: Box<u64>) {
        if result.is_err() {
            self.deliveries.failed.fetch_add(1, Ordering::Relaxed);
        }
        let mut pending = self
            .deliveries
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = pending.get_mut(&round) {
            *n = n.saturating_sub(1);
        }
        drop(pending);
    }
}

/// Rounds whose answers may be in flight at once before the loop waits.
const MAX_ROUNDS_IN_FLIGHT: usize = 8;

fn base_config(spec: &KafkaBindSpec, defaults: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    // Latency defaults first, so `options` can override them.
    for (k, v) in defaults {
        c.set(*k, *v);
    }
    for (k, v) in &spec.options {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &spec.brokers);
    c.set_log_level(rdkafka::config::RDKafkaLogLevel::Error);
    c
}

/// The `health` key of a binding.
pub fn binding_name(model: &str, spec: &KafkaBindSpec) -> String {
    format!("{model}:{}->{}", spec.input, spec.output)
}

/// Score `spec.input` into `spec.output` for `model` until `stop` turns true.
pub async fn run_binding(
    scorer: Arc<Scorer>,
    model: String,
    spec: KafkaBindSpec,
    opts: BindOptions,
    health: SourceHealth,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    tokio::task::spawn_blocking(move || bind_loop(&scorer, &model, &spec, &opts, &health, &stop))
        .await
        .map_err(|e| ConnectError::Task(e.to_string()))?
}

fn bind_loop(
    scorer: &Scorer,
    model: &str,
    spec: &KafkaBindSpec,
    opts: &BindOptions,
    health: &SourceHealth,
    stop: &watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let name = binding_name(model, spec);
    // A broker may hold a fetch until fetch.wait.max.ms even when records are there;
    // answers are latency-bound, so the wait is short.
    let consumer: BaseConsumer<DefaultConsumerContext> =
        base_config(spec, &[("fetch.wait.max.ms", "100")])
            .set("group.id", &spec.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match spec.start {
                    StartPosition::Earliest => "earliest",
                    StartPosition::Latest => "latest",
                },
            )
            .create()?;
    let deliveries = Arc::new(Deliveries::default());
    let producer: ThreadedProducer<DeliveryCtx> = base_config(spec, &[("linger.ms", "2")])
        .set("acks", "all")
        .create_with_context(DeliveryCtx {
            deliveries: deliveries.clone(),
        })?;
    // Rounds answered, oldest first, with the offsets they reach.
    let mut rounds: VecDeque<(u64, BTreeMap<i32, i64>)> = VecDeque::new();
    let mut round_id = 0u64;

    // Wait for the brokers and the input topic.
    let mut pause = Duration::from_millis(250);
    health.connecting(&name, format!("connecting to {}", spec.brokers));
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        match consumer.fetch_metadata(Some(&spec.input), Duration::from_secs(3)) {
            Ok(md)
                if md
                    .topics()
                    .iter()
                    .any(|t| t.error().is_none() && !t.partitions().is_empty()) =>
            {
                break;
            }
            Ok(_) => health.down(&name, format!("kafka topic missing: {}", spec.input)),
            Err(e) => health.down(
                &name,
                format!("kafka brokers {} unreachable: {e}", spec.brokers),
            ),
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(10));
    }
    match &spec.partitions {
        Some(ps) => {
            let mut tpl = TopicPartitionList::new();
            for p in ps {
                tpl.add_partition(&spec.input, *p);
            }
            consumer.assign(&tpl)?;
        }
        None => consumer.subscribe(&[&spec.input])?,
    }
    health.up(&name);

    let mut body = Vec::with_capacity(1024);
    loop {
        if *stop.borrow() {
            // Deliver what was answered and record the position, so a restart does not
            // answer those events again.
            producer.flush(Duration::from_secs(10))?;
            return commit_delivered(
                &consumer,
                &deliveries,
                &mut rounds,
                &spec.input,
                &name,
                &spec.output,
            );
        }
        let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
        round_id += 1;
        let mut answered = 0usize;
        let deadline = Instant::now() + opts.linger;
        let mut n = 0;
        while n < opts.max_batch {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match consumer.poll(left) {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::AllBrokersDown)
                            | Some(RDKafkaErrorCode::BrokerTransportFailure)
                    ) {
                        health.down(&name, format!("kafka brokers unreachable: {e}"));
                    }
                    break;
                }
            };
            health.up(&name);
            n += 1;
            let client_id = format!("{}/{}/{}", m.topic(), m.partition(), m.offset());
            let key = m.key();
            let routing = key.and_then(|k| std::str::from_utf8(k).ok());
            // No version served yet (at start-up, before the router loads one): the
            // event waits rather than being answered with an error.
            let scored = loop {
                match score_event(scorer, model, m.payload(), &client_id, routing, &mut body) {
                    Err(ServeError::NotServed(_)) if !*stop.borrow() => {
                        health.down(
                            &name,
                            format!("model {model} has no served version yet; events wait"),
                        );
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    other => break other,
                }
            };
            if *stop.borrow() && matches!(scored, Err(ServeError::NotServed(_))) {
                // Not answered: its offset is not committed, so it is read again.
                break;
            }
            health.up(&name);
            let (answer, headers) = match &scored {
                Ok(s) => (
                    s.body.clone(),
                    OwnedHeaders::new()
                        .insert(Header {
                            key: "freshet-request-id",
                            value: Some(s.request_id.as_str()),
                        })
                        .insert(Header {
                            key: "freshet-client-request-id",
                            value: Some(client_id.as_str()),
                        })
                        .insert(Header {
                            key: "freshet-version",
                            value: Some(s.version.to_string().as_str()),
                        }),
                ),
                Err(e) => (
                    serde_json::to_vec(&serde_json::json!({ "error": e.to_string() }))
                        .unwrap_or_default(),
                    OwnedHeaders::new()
                        .insert(Header {
                            key: "freshet-client-request-id",
                            value: Some(client_id.as_str()),
                        })
                        .insert(Header {
                            key: "freshet-error",
                            value: Some("1"),
                        }),
                ),
            };
            let mut record = BaseRecord::with_opaque_to(&spec.output, Box::new(round_id))
                .payload(&answer)
                .headers(headers);
            if let Some(k) = key {
                record = record.key(k);
            }
            // Counted before it is sent, so its delivery always finds the count.
            *deliveries
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(round_id)
                .or_insert(0) += 1;
            // A full queue drains as the producer's thread delivers.
            let mut record = Some(record);
            while let Some(r) = record.take() {
                if let Err((e, back)) = producer.send(r) {
                    if e.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                        return Err(ConnectError::Kafka(format!(
                            "cannot queue an answer to {}: {e}",
                            spec.output
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    record = Some(back);
                }
            }
            answered += 1;
            let e = reached.entry(m.partition()).or_insert(m.offset());
            *e = (*e).max(m.offset());
        }
        if answered > 0 {
            rounds.push_back((round_id, reached));
        }
        commit_delivered(
            &consumer,
            &deliveries,
            &mut rounds,
            &spec.input,
            &name,
            &spec.output,
        )?;
    }
}

/// Commit the offsets of the oldest rounds whose answers are all delivered (answers
/// first, then the position: at least once); wait while too many rounds are in flight.
fn commit_delivered(
    consumer: &BaseConsumer<DefaultConsumerContext>,
    deliveries: &Deliveries,
    rounds: &mut VecDeque<(u64, BTreeMap<i32, i64>)>,
    input: &str,
    name: &str,
    output: &str,
) -> Result<(), ConnectError> {
    let mut done: BTreeMap<i32, i64> = BTreeMap::new();
    let started = Instant::now();
    while let Some((id, _)) = rounds.front() {
        let lost = deliveries.failed.swap(0, Ordering::Relaxed);
        if lost > 0 {
            return Err(ConnectError::Kafka(format!(
                "{lost} answers were not delivered to {output}; resuming from the last committed offsets"
            )));
        }
        let left = {
            let pending = deliveries.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.get(id).copied().unwrap_or(0)
        };
        if left == 0 {
            deliveries
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
            if let Some((_, reached)) = rounds.pop_front() {
                done.extend(reached);
            }
            continue;
        }
        if rounds.len() <= MAX_ROUNDS_IN_FLIGHT {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(ConnectError::Kafka(format!(
                "answers to {output} not delivered within 30 s; resuming from the last committed offsets"
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if done.is_empty() {
        return Ok(());
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &done {
        tpl.add_partition_offset(input, *p, Offset::Offset(o + 1))?;
    }
    if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
        tracing::warn!(binding = %name, error = %e, "kafka offsets not committed; events may be answered again");
    }
    Ok(())
}
