//! Labels from a topic: each message is one feedback object (as `POST
//! /v1/models/<name>/feedback` takes), accepted exactly as that route accepts it (a live
//! champion learns it on arrival) and committed to `labels/<model>` with each
//! partition's offset as a Delta `txn` in the same commit. On assignment the consumer
//! seeks from that position, so a crash or restart neither loses nor repeats a label.
//! A message that is not a feedback object is skipped with a warning naming its topic,
//! partition and offset (never its content), and its offset still moves on.

use super::{partition_app_id, start_offset, wait_for_topics};
use crate::error::ConnectError;
use freshet_core::config_connect::{KafkaFeedbackSpec, StartPosition};
use freshet_ingest::health::SourceHealth;
use freshet_lake::Lake;
use freshet_serve::feedback::{LabelRow, LabelTables, Position, accept, parse_feedback};
use freshet_serve::live::LiveHub;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::watch;

/// Where labels go and how positions are read back.
pub struct LabelSink {
    pub tables: Arc<LabelTables>,
    pub lake: Lake,
    pub live: Option<Arc<LiveHub>>,
}

/// The `health` key of a feedback topic.
pub fn feedback_name(model: &str, spec: &KafkaFeedbackSpec) -> String {
    format!("{model}:feedback<-{}", spec.topic)
}

struct FbCtx {
    rt: Handle,
    sink: Arc<LabelSink>,
    model: String,
    start: StartPosition,
    /// The next offset per owned partition (smaller ones are already in the table).
    next: Mutex<HashMap<(String, i32), i64>>,
    fatal: Mutex<Option<String>>,
}

impl FbCtx {
    fn position(&self, tpl: &mut TopicPartitionList) -> Result<(), String> {
        let parts: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, partition) in parts {
            let app_id = partition_app_id(&topic, partition);
            let at = self
                .rt
                .block_on(
                    self.sink
                        .tables
                        .position(&self.sink.lake, &self.model, &app_id),
                )
                .map_err(|e| format!("cannot read the position of {app_id}: {e}"))?;
            let offset = start_offset(at, self.start);
            tpl.set_partition_offset(&topic, partition, offset)
                .map_err(|e| e.to_string())?;
            next.insert((topic, partition), at.map_or(0, |c| c + 1));
        }
        Ok(())
    }
}

impl ClientContext for FbCtx {}

impl ConsumerContext for FbCtx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: rdkafka::types::RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        use rdkafka::types::RDKafkaRespErr as E;
        if err == E::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            match self.position(tpl) {
                Ok(()) => {
                    if let Err(e) = consumer.assign(tpl) {
                        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(format!("cannot assign partitions: {e}"));
                    }
                }
                Err(e) => {
                    *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                    let _ = consumer.unassign();
                }
            }
        } else {
            // Rounds are committed before the next poll: nothing is in flight here.
            self.next.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let _ = consumer.unassign();
        }
    }
}

/// Read `spec.topic` into `labels/<model>` until `stop` turns true.
pub async fn run_feedback(
    sink: Arc<LabelSink>,
    model: String,
    spec: KafkaFeedbackSpec,
    health: SourceHealth,
    stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || feedback_loop(rt, sink, &model, &spec, &health, &stop))
        .await
        .map_err(|e| ConnectError::Task(e.to_string()))?
}

fn feedback_loop(
    rt: Handle,
    sink: Arc<LabelSink>,
    model: &str,
    spec: &KafkaFeedbackSpec,
    health: &SourceHealth,
    stop: &watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let name = feedback_name(model, spec);
    let mut cfg = ClientConfig::new();
    for (k, v) in &spec.options {
        cfg.set(k, v);
    }
    cfg.set("bootstrap.servers", &spec.brokers)
        .set("group.id", &spec.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("partition.assignment.strategy", "range,roundrobin");
    cfg.set_log_level(rdkafka::config::RDKafkaLogLevel::Error);
    let consumer: BaseConsumer<FbCtx> = cfg.create_with_context(FbCtx {
        rt: rt.clone(),
        sink: sink.clone(),
        model: model.to_string(),
        start: spec.start,
        next: Mutex::new(HashMap::new()),
        fatal: Mutex::new(None),
    })?;
    let topics = [spec.topic.clone()];
    if !wait_for_topics(&consumer, &spec.brokers, &topics, &name, health, stop) {
        return Ok(());
    }
    match &spec.partitions {
        Some(ps) => {
            let mut tpl = TopicPartitionList::new();
            for p in ps {
                tpl.add_partition(&spec.topic, *p);
            }
            consumer
                .context()
                .position(&mut tpl)
                .map_err(ConnectError::Kafka)?;
            consumer.assign(&tpl)?;
        }
        None => consumer.subscribe(&[&spec.topic])?,
    }
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if let Some(why) = consumer
            .context()
            .fatal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Err(ConnectError::Kafka(why));
        }
        let mut rows: Vec<LabelRow> = Vec::new();
        let mut reached: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_millis(50);
        while rows.len() < 5_000 {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match consumer.poll(left) {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!(source = %name, error = %e, "kafka poll error");
                    break;
                }
            };
            health.up(&name);
            let key = (m.topic().to_string(), m.partition());
            {
                let mut next = consumer
                    .context()
                    .next
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                match next.get_mut(&key) {
                    Some(n) if m.offset() >= *n => *n = m.offset() + 1,
                    _ => continue, // already in the table, or revoked
                }
            }
            let now = chrono_now_micros();
            match parse_feedback(m.payload().unwrap_or_default(), now) {
                Ok(mut labels) => rows.append(&mut labels),
                Err(e) => tracing::warn!(
                    source = %name,
                    topic = m.topic(),
                    partition = m.partition(),
                    offset = m.offset(),
                    error = %e,
                    "feedback message skipped"
                ),
            }
            reached.insert(key, m.offset());
        }
        if reached.is_empty() {
            continue;
        }
        let positions: Vec<Position> = reached
            .iter()
            .map(|((t, p), o)| Position {
                app_id: partition_app_id(t, *p),
                version: *o,
            })
            .collect();
        rt.block_on(accept(
            &sink.tables,
            &sink.lake,
            sink.live.as_deref(),
            model,
            &rows,
            positions,
        ))
        .map_err(|e| ConnectError::Kafka(format!("labels not committed: {e}")))?;
    }
}

fn chrono_now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
