//! The Pulsar source.
//!
//! One consumer per stream on a durable failover (or exclusive) subscription. The
//! topic's position lives in the stream's event table: every submission carries the
//! Delta `txn` `pulsar:<topic>` at the position of its last message, written in the same
//! commit as its rows, and follows on from the one before (`Txn::after`). Messages are
//! acknowledged (cumulatively) only after that commit. On start, and whenever the
//! consumer becomes the active one of a failover subscription, the position is read
//! back from the table, and redelivered messages at or below it are acknowledged
//! without being taken again: a crash between a commit and its acknowledgement neither
//! loses nor duplicates a message.
//!
//! A message's position packs its id: `ledger << 35 | entry << 12 | batch index`
//! ([`message_position`]); whole entries (a batch is one entry) are committed together.
//!
//! The client is Freshet's own ([`client`], [`wire`], [`proto`]): the `pulsar` crate
//! refuses message frames without the optional magic number and checksum, which the
//! protocol allows and brokers that store messages without them send.

pub mod bind;
pub mod client;
pub mod feedback;
pub mod producer;
pub mod proto;
pub mod sink;
pub mod wire;

use crate::error::ConnectError;
use crate::kafka::decode::{RecordDecoder, RecordMeta};
use client::{Connection, Event, PulsarError, Writer};
use freshet_core::config_connect::StartPosition;
use freshet_core::config_pulsar::{PulsarSourceConfig, PulsarSubscriptionType};
use freshet_ingest::IngestError;
use freshet_ingest::batch::Ack;
use freshet_ingest::decode::{DecodedRecord, RecordProblem};
use freshet_ingest::health::SourceHealth;
use freshet_ingest::service::{IngestService, StreamRuntime};
use freshet_ingest::sink::Txn;
use prometheus::{IntGaugeVec, Opts, Registry};
use proto::{InitialPosition, MessageIdData, SubType};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// The transaction id of a topic.
pub fn topic_app_id(topic: &str) -> String {
    format!("pulsar:{topic}")
}

// Ledger ids are numbered across a whole cluster and grow for ever; entry ids restart
// with each ledger, which Pulsar rolls over every 50,000 entries by default.
const LEDGER_BITS: u32 = 28;
const ENTRY_BITS: u32 = 23;
const BATCH_BITS: u32 = 12;

/// A message's position in the table: `ledger << 35 | entry << 12 | batch index`
/// (index 0 for a message that is not in a batch). Ids beyond that room (ledger ids
/// of 2^28 and more, entry ids of 2^23 and more, batches of more than 4,096 messages)
/// are refused rather than folded onto others.
pub fn message_position(ledger: u64, entry: u64, batch_index: i32) -> Result<i64, String> {
    let b = u64::try_from(batch_index.max(0)).unwrap_or(0);
    if ledger >= 1 << LEDGER_BITS || entry >= 1 << ENTRY_BITS || b >= 1 << BATCH_BITS {
        return Err(format!(
            "message {ledger}:{entry}:{batch_index} is beyond what a position holds \
             (ledger < 2^{LEDGER_BITS}, entry < 2^{ENTRY_BITS}, batch index < 2^{BATCH_BITS})"
        ));
    }
    Ok(((ledger << (ENTRY_BITS + BATCH_BITS)) | (entry << BATCH_BITS) | b) as i64)
}

/// The `(ledger, entry, batch index)` of a position.
pub fn position_message(p: i64) -> (u64, u64, u64) {
    let p = p.max(0) as u64;
    (
        p >> (ENTRY_BITS + BATCH_BITS),
        (p >> BATCH_BITS) & ((1 << ENTRY_BITS) - 1),
        p & ((1 << BATCH_BITS) - 1),
    )
}

/// Tuning of the consumer loop.
#[derive(Debug, Clone)]
pub struct PulsarOptions {
    /// Messages gathered into one submission.
    pub max_batch: usize,
    /// How long a submission waits for messages before going with what it has.
    pub linger: Duration,
    /// Messages the broker may send ahead (flow permits).
    pub permits: u32,
    /// Submissions awaiting their commit at once.
    pub max_in_flight: usize,
    /// How often the subscription's backlog is asked for.
    pub stats_every: Duration,
    /// The largest payload a compressed entry may uncompress to.
    pub max_uncompressed: usize,
}

impl Default for PulsarOptions {
    fn default() -> Self {
        Self {
            max_batch: 20_000,
            linger: Duration::from_millis(50),
            permits: 5_000,
            max_in_flight: 4,
            stats_every: Duration::from_secs(5),
            max_uncompressed: 64 << 20,
        }
    }
}

/// The subscription's backlog, on `/metrics`.
#[derive(Debug, Clone)]
pub struct PulsarMetrics {
    pub backlog: IntGaugeVec,
}

impl PulsarMetrics {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let backlog = IntGaugeVec::new(
            Opts::new(
                "freshet_source_backlog_messages",
                "Messages in the subscription not acknowledged yet (the broker's count)",
            ),
            &["stream", "topic", "subscription"],
        )?;
        registry.register(Box::new(backlog.clone()))?;
        Ok(Self { backlog })
    }
}

/// A consumer id for a new connection. Ids are the connection's own in the protocol,
/// but some brokers (pulsar-lite) keep them per broker and keep a killed process's
/// consumer a while: a fresh id per subscription never collides with one.
fn new_consumer_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    (u64::from(std::process::id()) << 32 | nanos) ^ NEXT.fetch_add(1, Ordering::Relaxed) << 20
}

/// Read the stream's topic into its table until `stop` turns true. Waits out an
/// unreachable broker (reporting it); returns an error when a commit fails, and the
/// caller restarts it from the table.
pub async fn run_pulsar(
    service: Arc<IngestService>,
    stream: String,
    cfg: PulsarSourceConfig,
    opts: PulsarOptions,
    health: SourceHealth,
    metrics: PulsarMetrics,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let srt: Arc<StreamRuntime> = service.stream(&stream)?.clone();
    let topic = cfg.full_topic();
    let sub = Subscription::new(
        &cfg.url,
        &topic,
        &cfg.subscription,
        cfg.subscription_type,
        cfg.start,
        &format!("streams.{stream}.source"),
    )?;
    let decoder = RecordDecoder::new(
        srt.pipeline.input_schema(),
        cfg.format,
        &cfg.metadata.as_record_metadata(),
        cfg.max_record_bytes.get(),
    );
    let mut pause = Duration::from_millis(250);
    health.connecting(&stream, format!("connecting to {}", cfg.url));
    loop {
        let Some((conn, consumer_id)) = sub.until_up(&stream, &health, &mut stop).await else {
            return Ok(());
        };
        let mut session = Session {
            service: &service,
            srt: &srt,
            decoder: &decoder,
            stream: &stream,
            topic: &topic,
            subscription: &cfg.subscription,
            opts: &opts,
            health: &health,
            metrics: &metrics,
            consumer_id,
            app_id: topic_app_id(&topic),
            source: topic_app_id(&topic).into(),
            id_prefix: hex::encode(&Sha256::digest(topic_app_id(&topic).as_bytes())[..8]),
            table_pos: None,
            prev_version: -1,
            pending: Round::default(),
            in_flight: VecDeque::new(),
            acked_up_to: None,
            unacked_skipped: None,
            permits: Permits::new(opts.permits),
            stats_answered: None,
            stats_asked: 0,
        };
        match session.run(conn, &mut stop).await {
            Ok(()) => return Ok(()),
            Err(SessionEnd::Connection(e)) => {
                health.down(&stream, format!("pulsar: {e}"));
                tracing::warn!(stream = %stream, error = %e, "pulsar connection lost; reconnecting");
                backoff(&mut pause, &mut stop).await;
            }
            Err(SessionEnd::Fatal(e)) => return Err(e),
        }
    }
}

/// Flow-permit accounting of a consumer: the broker may send `window` messages ahead;
/// messages are counted as they arrive (a batch entry counts its messages) and handed
/// back once half the window is used.
pub(crate) struct Permits {
    window: u32,
    outstanding: u32,
}

impl Permits {
    pub(crate) fn new(window: u32) -> Self {
        Self {
            window,
            outstanding: 0,
        }
    }

    /// Count an entry; gives how many messages it holds.
    pub(crate) fn received(&mut self, payload: Option<&wire::RawPayload>) -> u32 {
        let n = payload
            .and_then(|p| p.metadata.num_messages_in_batch)
            .unwrap_or(1)
            .max(1) as u32;
        self.outstanding = self.outstanding.saturating_add(n);
        n
    }

    /// The permits to hand back now, if it is time to.
    pub(crate) fn due(&mut self) -> Option<u32> {
        (self.outstanding >= self.window / 2).then(|| std::mem::take(&mut self.outstanding))
    }
}

/// Sleep `pause` (or until stopped) and double it, up to 10 s.
async fn backoff(pause: &mut Duration, stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(*pause) => {}
        _ = stop.changed() => {}
    }
    *pause = (*pause * 2).min(Duration::from_secs(10));
}

/// A durable subscription to one topic, as the source and feedback topics make it.
pub(crate) struct Subscription {
    pub url: String,
    pub addr: String,
    pub topic: String,
    pub name: String,
    pub sub_type: SubType,
    pub initial: InitialPosition,
}

impl Subscription {
    /// `base` is the settings' key path, for errors.
    pub(crate) fn new(
        url: &str,
        topic: &str,
        name: &str,
        sub_type: PulsarSubscriptionType,
        start: StartPosition,
        base: &str,
    ) -> Result<Self, ConnectError> {
        let Some(addr) = client::broker_addr(url).map(str::to_string) else {
            return Err(ConnectError::Pulsar(format!(
                "{base}.url: '{url}' is not pulsar://host:port"
            )));
        };
        let sub_type = match sub_type {
            PulsarSubscriptionType::Failover => SubType::Failover,
            PulsarSubscriptionType::Exclusive => SubType::Exclusive,
            PulsarSubscriptionType::Shared | PulsarSubscriptionType::KeyShared => {
                return Err(ConnectError::Pulsar(format!(
                    "{base}.subscription_type: only failover and exclusive subscriptions are \
                     read exactly once"
                )));
            }
        };
        Ok(Self {
            url: url.to_string(),
            addr,
            topic: topic.to_string(),
            name: name.to_string(),
            sub_type,
            initial: match start {
                StartPosition::Earliest => InitialPosition::Earliest,
                StartPosition::Latest => InitialPosition::Latest,
            },
        })
    }

    async fn subscribe(&self) -> Result<(Connection, u64), PulsarError> {
        let topic = &self.topic;
        let mut conn = Connection::to_owner(&self.addr, topic).await?;
        let partitions = conn.partitions(topic).await?;
        if partitions > 0 {
            return Err(PulsarError::Refused {
                what: "the topic",
                message: format!(
                    "it is partitioned ({partitions} partitions); name one partition \
                     ({topic}-partition-0) per subscription"
                ),
            });
        }
        let consumer_id = new_consumer_id();
        let consumer_name = format!("freshet-{}", std::process::id());
        conn.subscribe(
            consumer_id,
            topic,
            &self.name,
            self.sub_type,
            self.initial,
            &consumer_name,
        )
        .await?;
        Ok((conn, consumer_id))
    }

    /// Subscribe, retrying with backoff and reporting to `health` under `key` until it
    /// works; None when stopped first.
    pub(crate) async fn until_up(
        &self,
        key: &str,
        health: &SourceHealth,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(Connection, u64)> {
        let mut pause = Duration::from_millis(250);
        loop {
            if *stop.borrow() {
                return None;
            }
            match self.subscribe().await {
                Ok(c) => {
                    tracing::info!(source = %key, topic = %self.topic, subscription = %self.name, broker = %c.0.addr(), "pulsar subscribed");
                    return Some(c);
                }
                Err(e) => {
                    health.down(key, format!("pulsar: {e}"));
                    tracing::warn!(source = %key, url = %self.url, error = %e, "pulsar subscription failed; retrying");
                    backoff(&mut pause, stop).await;
                }
            }
        }
    }
}

/// Run `reader` on a task of its own, passing its events on (it ends with the first
/// error, or when the receiver goes).
pub(crate) fn spawn_reader(
    mut reader: client::Reader,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::Receiver<Result<Event, PulsarError>>,
) {
    // Entries wait here while the consumer submits: a few, as one may be megabytes.
    let (tx, rx) = mpsc::channel::<Result<Event, PulsarError>>(16);
    let task = tokio::spawn(async move {
        loop {
            let ev = reader.next_event().await;
            let end = ev.is_err();
            if tx.send(ev).await.is_err() || end {
                return;
            }
        }
    });
    (task, rx)
}

/// Why a session ended: the connection (reconnect), or something a reconnect does not
/// mend (the caller restarts the source from the table).
enum SessionEnd {
    Connection(PulsarError),
    Fatal(ConnectError),
}

impl From<PulsarError> for SessionEnd {
    fn from(e: PulsarError) -> Self {
        SessionEnd::Connection(e)
    }
}

/// Messages gathered for the next submission.
#[derive(Default)]
struct Round {
    records: Vec<DecodedRecord>,
    positions: Vec<i64>,
    /// The last entry's id and the position of its last message.
    last: Option<(MessageIdData, i64)>,
    since: Option<Instant>,
}

/// A submission awaiting its commit, and the entry to acknowledge after it.
struct InFlight {
    ack: Ack,
    last: MessageIdData,
}

struct Session<'a> {
    service: &'a Arc<IngestService>,
    srt: &'a Arc<StreamRuntime>,
    decoder: &'a RecordDecoder,
    stream: &'a str,
    topic: &'a str,
    subscription: &'a str,
    opts: &'a PulsarOptions,
    health: &'a SourceHealth,
    metrics: &'a PulsarMetrics,
    consumer_id: u64,
    app_id: String,
    source: Arc<str>,
    id_prefix: String,
    /// The table's position when last read (None: nothing committed yet).
    table_pos: Option<i64>,
    /// The position the next submission follows on (-1: none).
    prev_version: i64,
    pending: Round,
    in_flight: VecDeque<InFlight>,
    /// The last entry acknowledged.
    acked_up_to: Option<(u64, u64)>,
    /// An entry already in the table, redelivered, to acknowledge.
    unacked_skipped: Option<MessageIdData>,
    permits: Permits,
    /// Whether the broker answers consumer statistics (None: not known yet).
    stats_answered: Option<bool>,
    stats_asked: u32,
}

impl Session<'_> {
    async fn run(
        &mut self,
        conn: Connection,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), SessionEnd> {
        self.read_position().await?;
        let (reader, mut writer) = conn.into_split();
        let (reading, mut rx) = spawn_reader(reader);
        let result = self.consume(&mut writer, &mut rx, stop).await;
        reading.abort();
        // What was submitted is committed (or fails) before the session ends; its
        // acknowledgement is best effort (a redelivery is skipped by position).
        let drained = self.drain(&mut writer).await;
        if result.is_ok() {
            writer.close_consumer(self.consumer_id).await;
        }
        result.and(drained)
    }

    async fn read_position(&mut self) -> Result<(), SessionEnd> {
        let pos = self
            .service
            .sink()
            .txn_version(self.stream, &self.app_id)
            .await
            .map_err(|e| {
                SessionEnd::Fatal(ConnectError::Pulsar(format!(
                    "cannot read the position of {}: {e}",
                    self.app_id
                )))
            })?;
        self.table_pos = pos;
        self.prev_version = pos.unwrap_or(-1);
        let (l, e, b) = position_message(pos.unwrap_or(0));
        tracing::info!(stream = %self.stream, topic = %self.topic, committed = pos.is_some(), ledger = l, entry = e, batch = b, "pulsar position read from the table");
        Ok(())
    }

    async fn consume(
        &mut self,
        writer: &mut Writer,
        rx: &mut mpsc::Receiver<Result<Event, PulsarError>>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), SessionEnd> {
        writer.flow(self.consumer_id, self.opts.permits).await?;
        let mut stats = tokio::time::interval(self.opts.stats_every);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let linger = self
                .pending
                .since
                .map(|t| t + self.opts.linger)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = stop.changed() => {
                    if *stop.borrow() {
                        self.submit().await?;
                        return Ok(());
                    }
                }
                done = front_done(&mut self.in_flight) => {
                    let (res, last) = done;
                    committed(res)?;
                    self.acknowledge(writer, last).await?;
                }
                _ = tokio::time::sleep_until(linger), if self.pending.since.is_some() => {
                    self.submit().await?;
                }
                _ = stats.tick() => {
                    // Consumer statistics where the broker has them; else how far the
                    // topic's last message is (a broker without them never answers).
                    if self.stats_answered == Some(false) || self.stats_asked >= 2 && self.stats_answered.is_none() {
                        self.stats_answered = Some(false);
                        writer.request_last_id(self.consumer_id).await?;
                    } else {
                        self.stats_asked += 1;
                        writer.request_stats(self.consumer_id).await?;
                    }
                }
                ev = rx.recv() => {
                    let Some(ev) = ev else {
                        return Err(SessionEnd::Connection(PulsarError::Lost("the reader stopped".into())));
                    };
                    self.on_event(writer, ev?).await?;
                }
            }
            // A round must fit in the ingest buffer with room to spare, whatever it is set to.
            let max_batch = self.opts.max_batch.min(self.service.capacity() / 4).max(1);
            if self.pending.records.len() >= max_batch {
                self.submit().await?;
            }
            while self.in_flight.len() > self.opts.max_in_flight {
                let (res, last) = front_done(&mut self.in_flight).await;
                committed(res)?;
                self.acknowledge(writer, last).await?;
            }
            if self.in_flight.is_empty()
                && self.pending.records.is_empty()
                && let Some(id) = self.unacked_skipped.take()
            {
                self.acknowledge(writer, id).await?;
            }
        }
    }

    async fn on_event(&mut self, writer: &mut Writer, ev: Event) -> Result<(), SessionEnd> {
        match ev {
            Event::LastMessage(last) => {
                // From the last entry acknowledged, else the table's position.
                let from = self.acked_up_to.or_else(|| {
                    self.table_pos.map(|p| {
                        let (l, e, _) = position_message(p);
                        (l, e)
                    })
                });
                let behind = match from {
                    _ if last.entry_id == u64::MAX => Some(0), // an empty topic
                    Some((l, e)) if (last.ledger_id, last.entry_id) <= (l, e) => Some(0),
                    Some((l, e)) if last.ledger_id == l => Some(last.entry_id - e),
                    _ => None, // entries of other ledgers cannot be counted from ids
                };
                if let Some(b) = behind {
                    self.metrics
                        .backlog
                        .with_label_values(&[self.stream, self.topic, self.subscription])
                        .set(i64::try_from(b).unwrap_or(i64::MAX));
                }
            }
            Event::Backlog(b) => {
                self.stats_answered = Some(b.is_some());
                if let Some(b) = b {
                    self.metrics
                        .backlog
                        .with_label_values(&[self.stream, self.topic, self.subscription])
                        .set(i64::try_from(b).unwrap_or(i64::MAX));
                }
            }
            Event::Active(active) => {
                tracing::info!(stream = %self.stream, topic = %self.topic, active, "pulsar failover consumer change");
                if active {
                    // Another node may have committed while this one stood by.
                    self.submit().await?;
                    self.drain(writer).await?;
                    self.read_position().await?;
                }
            }
            Event::Closed => {
                return Err(SessionEnd::Connection(PulsarError::Lost(
                    "the broker closed the consumer (the topic moved or was unloaded)".into(),
                )));
            }
            Event::EndOfTopic => {
                self.health.down(
                    self.stream,
                    format!(
                        "pulsar topic {} was terminated: no more messages will come",
                        self.topic
                    ),
                );
            }
            // A consumer's connection carries no producer.
            Event::Receipt { .. } | Event::SendFailed { .. } | Event::ProducerClosed => {}
            Event::Message { id, payload } => {
                self.permits.received(payload.as_ref());
                if let Some(n) = self.permits.due() {
                    writer.flow(self.consumer_id, n).await?;
                }
                self.take(id, payload)?;
                self.health.up(self.stream);
            }
        }
        Ok(())
    }

    /// Decode an entry into the pending round, unless the table holds it already.
    fn take(
        &mut self,
        id: MessageIdData,
        payload: Option<wire::RawPayload>,
    ) -> Result<(), SessionEnd> {
        let first = message_position(id.ledger_id, id.entry_id, 0)
            .map_err(|e| SessionEnd::Fatal(ConnectError::Pulsar(e)))?;
        // The last position taken: the round's, else the last submitted (or the table's).
        let seen = self
            .pending
            .last
            .as_ref()
            .map_or(self.prev_version, |(_, p)| *p);
        if seen >= 0 && first <= seen {
            // Redelivered and taken already: skipped. One the table holds is acknowledged
            // (once nothing newer awaits its commit).
            if self.pending.last.is_none() && self.table_pos.is_some_and(|t| first <= t) {
                self.unacked_skipped = Some(id);
            }
            return Ok(());
        }
        let publish_ms = payload
            .as_ref()
            .and_then(|p| i64::try_from(p.metadata.publish_time).ok());
        let msgs = match payload.as_ref() {
            None => Err(wire::Unreadable("a message without a payload".into())),
            Some(p) => wire::messages(p, self.opts.max_uncompressed),
        };
        let mut last_pos = first;
        match msgs {
            Ok(msgs) if !msgs.is_empty() => {
                for m in msgs {
                    let pos = message_position(id.ledger_id, id.entry_id, m.batch_index)
                        .map_err(|e| SessionEnd::Fatal(ConnectError::Pulsar(e)))?;
                    let rec = self.decoder.decode(
                        m.value.as_deref(),
                        RecordMeta {
                            topic: self.topic,
                            partition: -1,
                            offset: pos,
                            key: m.key.as_deref().map(str::as_bytes),
                            timestamp_ms: publish_ms,
                        },
                        |name| {
                            m.properties
                                .iter()
                                .find(|(k, _)| k == name)
                                .map(|(_, v)| v.as_bytes())
                        },
                    );
                    self.pending.records.push(rec);
                    self.pending.positions.push(pos);
                    last_pos = last_pos.max(pos);
                }
            }
            // Every message of a batch compacted out: nothing to land, the position moves.
            Ok(_) => {}
            Err(wire::Unreadable(why)) => {
                self.pending.records.push(DecodedRecord {
                    values: vec![freshet_core::Value::Null; self.srt.pipeline.input_schema().len()],
                    problem: Some(RecordProblem::Malformed(format!(
                        "entry {}:{} of {}: {why}",
                        id.ledger_id, id.entry_id, self.topic
                    ))),
                });
                self.pending.positions.push(first);
            }
        }
        self.pending.last = Some((id, last_pos));
        self.pending.since.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Submit the pending round with its position.
    async fn submit(&mut self) -> Result<(), SessionEnd> {
        let round = std::mem::take(&mut self.pending);
        let Some((last_id, last_pos)) = round.last else {
            return Ok(());
        };
        let txn = Txn {
            app_id: self.app_id.clone(),
            version: last_pos,
            after: Some(self.prev_version),
        };
        self.prev_version = last_pos;
        let (_, ack) = self
            .service
            .submit(
                self.srt,
                round.records,
                round.positions,
                self.source.clone(),
                &self.id_prefix,
                Some(txn),
                false,
            )
            .await
            .map_err(|e| SessionEnd::Fatal(e.into()))?;
        self.in_flight.push_back(InFlight { ack, last: last_id });
        Ok(())
    }

    /// Wait for every submission in flight and acknowledge what it reached.
    async fn drain(&mut self, writer: &mut Writer) -> Result<(), SessionEnd> {
        while let Some(f) = self.in_flight.pop_front() {
            committed(match f.ack.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(IngestError::ShuttingDown),
            })?;
            // The commit is what counts; an acknowledgement lost with the connection
            // only means a redelivery, skipped by position.
            let _ = self.acknowledge(writer, f.last).await;
        }
        Ok(())
    }

    async fn acknowledge(
        &mut self,
        writer: &mut Writer,
        id: MessageIdData,
    ) -> Result<(), SessionEnd> {
        let key = (id.ledger_id, id.entry_id);
        if self.acked_up_to.is_some_and(|a| a >= key) {
            return Ok(());
        }
        writer
            .ack_cumulative(
                self.consumer_id,
                MessageIdData {
                    batch_index: None,
                    ..id
                },
            )
            .await?;
        self.acked_up_to = Some(key);
        Ok(())
    }
}

/// The first submission in flight, once its commit is decided.
async fn front_done(q: &mut VecDeque<InFlight>) -> (Result<(), IngestError>, MessageIdData) {
    let Some(f) = q.front_mut() else {
        return std::future::pending().await;
    };
    let res = match (&mut f.ack).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(IngestError::ShuttingDown),
    };
    let last = f.last.clone();
    q.pop_front();
    (res, last)
}

fn committed(res: Result<(), IngestError>) -> Result<(), SessionEnd> {
    res.map_err(|e| SessionEnd::Fatal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_count_batch_messages_and_come_back_at_half_the_window() {
        use super::proto::MessageMetadata;
        let entry = |n: Option<i32>| wire::RawPayload {
            metadata: MessageMetadata {
                num_messages_in_batch: n,
                ..Default::default()
            },
            data: Vec::new(),
        };
        let mut p = Permits::new(10);
        assert_eq!(p.received(Some(&entry(None))), 1);
        assert_eq!(p.received(None), 1);
        assert_eq!(p.due(), None);
        assert_eq!(p.received(Some(&entry(Some(3)))), 3);
        assert_eq!(p.due(), Some(5));
        assert_eq!(p.due(), None);
        assert_eq!(
            p.received(Some(&entry(Some(0)))),
            1,
            "a batch counts at least one"
        );
    }

    #[test]
    fn positions_pack_message_ids_in_order_and_refuse_what_does_not_fit() {
        let a = message_position(0, 5, -1).expect("fits");
        let b = message_position(0, 5, 3).expect("fits");
        let c = message_position(0, 6, 0).expect("fits");
        let d = message_position(1, 0, 0).expect("fits");
        assert!(a < b && b < c && c < d);
        assert_eq!(position_message(b), (0, 5, 3));
        let big = message_position((1 << 28) - 1, (1 << 23) - 1, 4095).expect("fits");
        assert!(big > 0);
        assert_eq!(position_message(big), ((1 << 28) - 1, (1 << 23) - 1, 4095));
        assert!(message_position(1 << 28, 0, 0).is_err());
        assert!(message_position(0, 1 << 23, 0).is_err());
        assert!(message_position(0, 0, 4096).is_err());
    }
}
