//! A model bound to topics: every event on the input topic is scored by whatever the
//! model's router serves (champion, canary and shadow all apply, and the request is
//! captured like an HTTP one), and the answer goes to the output topic with the
//! event's key.
//!
//! At least once: a round's answers are flushed to the broker before the round's
//! offsets are committed to the group, so a crash answers some events twice and none
//! never. Consumers de-duplicate on the `freshet-client-request-id` header
//! (`<topic>/<partition>/<offset>` of the event, the same on every retry); the
//! `freshet-request-id` header names the captured request (lineage reads it).

use crate::error::ConnectError;
use freshet_core::config_connect::{KafkaBindSpec, StartPosition};
use freshet_ingest::health::SourceHealth;
use freshet_serve::service::{Protocol, ScoreInput, Scorer};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Counts answers the broker refused.
struct DeliveryCtx {
    failed: Arc<AtomicU64>,
}

impl ClientContext for DeliveryCtx {}

impl ProducerContext for DeliveryCtx {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn base_config(spec: &KafkaBindSpec) -> ClientConfig {
    let mut c = ClientConfig::new();
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
    let consumer: BaseConsumer<DefaultConsumerContext> = base_config(spec)
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
    let failed = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<DeliveryCtx> = base_config(spec)
        .set("linger.ms", "2")
        .set("acks", "all")
        .create_with_context(DeliveryCtx {
            failed: failed.clone(),
        })?;

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
            return Ok(());
        }
        let mut reached: BTreeMap<i32, i64> = BTreeMap::new();
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
            body.clear();
            body.extend_from_slice(b"{\"dataframe_records\":[");
            body.extend_from_slice(m.payload().unwrap_or(b"null"));
            body.extend_from_slice(b"]}");
            let scored = scorer.score(
                model,
                Protocol::Invocations,
                ScoreInput {
                    content_type: Some("application/json"),
                    body: &body,
                    version: None,
                    client_request_id: Some(&client_id),
                    routing_key: routing,
                },
            );
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
            let mut record = BaseRecord::to(&spec.output)
                .payload(&answer)
                .headers(headers);
            if let Some(k) = key {
                record = record.key(k);
            }
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
            let e = reached.entry(m.partition()).or_insert(m.offset());
            *e = (*e).max(m.offset());
        }
        if reached.is_empty() {
            continue;
        }
        // Answers first, then the position: at least once.
        producer.flush(Duration::from_secs(30))?;
        let lost = failed.swap(0, Ordering::Relaxed);
        if lost > 0 {
            return Err(ConnectError::Kafka(format!(
                "{lost} answers were not delivered to {}; resuming from the last committed offsets",
                spec.output
            )));
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in &reached {
            tpl.add_partition_offset(&spec.input, *p, Offset::Offset(o + 1))?;
        }
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(binding = %name, error = %e, "kafka offsets not committed; events may be answered again");
        }
    }
}
