//! A model bound to Pulsar topics: every event on the input topic is scored by whatever
//! the model's router serves (champion, canary and shadow all apply, and the request is
//! captured like an HTTP one), and the answer is published to the output topic with the
//! event's key.
//!
//! At least once: a round's entries are acknowledged on the input subscription only
//! after the broker has persisted every answer of the round, so a crash answers some
//! events twice and none never. Consumers de-duplicate on the
//! `freshet-client-request-id` property (`<input>/<ledger>:<entry>:<batch index>` of
//! the event, the same on every redelivery); `freshet-request-id` names the captured
//! request (lineage reads it) and `freshet-version` the version that answered.

use super::client::{Connection, Event, PulsarError, Writer};
use super::producer::{OutMessage, Producer};
use super::proto::MessageIdData;
use super::wire::{self, RawPayload};
use super::{Permits, Subscription, backoff, spawn_reader};
use crate::error::ConnectError;
use crate::kafka::bind::BindOptions;
use crate::prediction::score_event;
use freshet_core::config_pulsar::PulsarBindSpec;
use freshet_ingest::health::SourceHealth;
use freshet_serve::error::ServeError;
use freshet_serve::service::Scorer;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Messages the broker may send ahead of the binding.
const PERMITS: u32 = 4_000;
/// The largest payload a compressed entry may uncompress to.
const MAX_UNCOMPRESSED: usize = 64 << 20;

/// The `health` key of a binding.
pub fn binding_name(model: &str, spec: &PulsarBindSpec) -> String {
    format!("{model}:{}->{}", spec.input, spec.output)
}

/// Score `spec.input` into `spec.output` for `model` until `stop` turns true. Waits out
/// an unreachable broker or a missing topic (reporting it under the binding's name).
pub async fn run_binding(
    scorer: Arc<Scorer>,
    model: String,
    spec: PulsarBindSpec,
    opts: BindOptions,
    health: SourceHealth,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let name = binding_name(&model, &spec);
    let output = spec.full_output();
    let sub = Subscription::new(
        &spec.url,
        &spec.full_input(),
        &spec.subscription,
        spec.subscription_type,
        spec.start,
        &format!("models.{model}.bind"),
    )?;
    let bound = Bound {
        scorer,
        model,
        input: spec.input.clone(),
        name: name.clone(),
        opts,
        health: health.clone(),
    };
    let mut pause = Duration::from_millis(250);
    health.connecting(&name, format!("connecting to {}", spec.url));
    loop {
        let Some((conn, consumer_id)) = sub.until_up(&name, &health, &mut stop).await else {
            return Ok(());
        };
        let producer = match Producer::create(&sub.addr, &output).await {
            Ok(p) => p,
            Err(e) => {
                health.down(
                    &name,
                    format!("pulsar: cannot publish to {}: {e}", spec.output),
                );
                tracing::warn!(binding = %name, error = %e, "pulsar producer failed; retrying");
                backoff(&mut pause, &mut stop).await;
                continue;
            }
        };
        health.up(&name);
        match bound.session(conn, consumer_id, producer, &mut stop).await {
            Ok(()) => return Ok(()),
            Err(End::Fatal(e)) => return Err(e),
            Err(End::Lost(e)) => {
                health.down(&name, format!("pulsar: {e}"));
                tracing::warn!(binding = %name, error = %e, "pulsar binding lost its broker; reconnecting");
                backoff(&mut pause, &mut stop).await;
            }
        }
    }
}

/// Why a session ended: the broker (reconnect), or something a reconnect does not mend
/// (the supervisor restarts the binding).
enum End {
    Lost(PulsarError),
    Fatal(ConnectError),
}

impl From<PulsarError> for End {
    fn from(e: PulsarError) -> Self {
        End::Lost(e)
    }
}

struct Bound {
    scorer: Arc<Scorer>,
    model: String,
    /// The input topic as configured (the prefix of client request ids).
    input: String,
    name: String,
    opts: BindOptions,
    health: SourceHealth,
}

/// Entries of one round, in arrival order.
type Entries = Vec<(MessageIdData, Option<RawPayload>)>;

impl Bound {
    async fn session(
        &self,
        conn: Connection,
        consumer_id: u64,
        mut producer: Producer,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        let (reader, mut writer) = conn.into_split();
        let (reading, mut rx) = spawn_reader(reader);
        let ended = self
            .rounds(&mut writer, &mut rx, consumer_id, &mut producer, stop)
            .await;
        reading.abort();
        if ended.is_ok() {
            writer.close_consumer(consumer_id).await;
            producer.close().await;
        }
        ended
    }

    async fn rounds(
        &self,
        writer: &mut Writer,
        rx: &mut mpsc::Receiver<Result<Event, PulsarError>>,
        consumer_id: u64,
        producer: &mut Producer,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), End> {
        let mut permits = Permits::new(PERMITS);
        writer.flow(consumer_id, PERMITS).await?;
        loop {
            // A round starts with its first entry and lingers for more.
            let mut entries: Entries = Vec::new();
            let mut messages = 0usize;
            let mut deadline: Option<Instant> = None;
            while messages < self.opts.max_batch {
                let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                let ev = tokio::select! {
                    _ = stop.changed() => {
                        if *stop.borrow() {
                            // Not answered: not acknowledged, so redelivered on restart.
                            return Ok(());
                        }
                        continue;
                    }
                    _ = tokio::time::sleep_until(until), if deadline.is_some() => break,
                    ev = rx.recv() => ev,
                };
                let Some(ev) = ev else {
                    return Err(PulsarError::Lost("the reader stopped".into()).into());
                };
                match ev? {
                    Event::Message { id, payload } => {
                        let n = permits.received(payload.as_ref());
                        messages += n as usize;
                        if let Some(more) = permits.due() {
                            writer.flow(consumer_id, more).await?;
                        }
                        entries.push((id, payload));
                        deadline.get_or_insert_with(|| Instant::now() + self.opts.linger);
                    }
                    Event::Closed => {
                        return Err(PulsarError::Lost(
                            "the broker closed the consumer (the topic moved or was unloaded)"
                                .into(),
                        )
                        .into());
                    }
                    Event::Active(active) => {
                        tracing::info!(binding = %self.name, active, "pulsar failover consumer change");
                    }
                    _ => {}
                }
            }
            let Some(last) = entries.last().map(|(id, _)| MessageIdData {
                batch_index: None,
                ..id.clone()
            }) else {
                continue;
            };
            let Some(answers) = self.score(entries, stop).await? else {
                return Ok(()); // stopped before a version was served
            };
            // Answers first, then the position: at least once. Stopping meanwhile leaves
            // the round unacknowledged (answered again after a restart).
            tokio::select! {
                published = self.publish(producer, answers) => published?,
                _ = stopped(stop) => return Ok(()),
            }
            writer.ack_cumulative(consumer_id, last).await?;
        }
    }

    /// Publish a round's answers and wait for every receipt. Answers the broker refuses
    /// (too large, say) are replaced by error answers naming the refusal, so the event
    /// is still answered and the round does not come back for ever; if those are
    /// refused too, the events are skipped with a warning.
    async fn publish(
        &self,
        producer: &mut Producer,
        answers: Vec<OutMessage>,
    ) -> Result<(), PulsarError> {
        let mut refused = Vec::new();
        for receipt in producer.send(&answers).await? {
            let (first, n) = (receipt.first, receipt.messages);
            match receipt.wait().await {
                Ok(_) => {}
                Err(PulsarError::Refused { message, .. }) => {
                    for a in &answers[first..first + n] {
                        let client_id = a
                            .properties
                            .iter()
                            .find(|(k, _)| k == "freshet-client-request-id")
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default();
                        refused.push(error_answer(
                            a.key.clone(),
                            client_id,
                            &format!("the broker refused the answer: {message}"),
                        ));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        tracing::warn!(binding = %self.name, answers = refused.len(), "pulsar binding: answers refused by the broker; sending error answers instead");
        for receipt in producer.send(&refused).await? {
            let n = receipt.messages;
            match receipt.wait().await {
                Ok(_) => {}
                Err(PulsarError::Refused { message, .. }) => {
                    tracing::warn!(binding = %self.name, events = n, error = %message, "pulsar binding: events left unanswered (even their error answers were refused)");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Score a round's events on a blocking thread; waits (reporting it) while the model
    /// has no served version. None when stopped while waiting.
    async fn score(
        &self,
        mut entries: Entries,
        stop: &watch::Receiver<bool>,
    ) -> Result<Option<Vec<OutMessage>>, End> {
        loop {
            let (scorer, model, input) =
                (self.scorer.clone(), self.model.clone(), self.input.clone());
            let done = tokio::task::spawn_blocking(move || {
                let answers = answer_round(&scorer, &model, &input, &entries);
                (entries, answers)
            })
            .await;
            let (back, answers) = match done {
                Ok(d) => d,
                Err(e) => {
                    return Err(End::Fatal(ConnectError::Task(format!(
                        "scoring a round of {} failed: {e}",
                        self.name
                    ))));
                }
            };
            match answers {
                Ok(a) => {
                    self.health.up(&self.name);
                    return Ok(Some(a));
                }
                Err(NotServed) => {
                    self.health.down(
                        &self.name,
                        format!(
                            "model {} has no served version yet; events wait",
                            self.model
                        ),
                    );
                    entries = back;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if *stop.borrow() {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// Resolves once `stop` turns true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The model serves no version yet.
struct NotServed;

/// An answer per message of the round's entries, in order; an entry that cannot be
/// read gets one error answer.
fn answer_round(
    scorer: &Scorer,
    model: &str,
    input: &str,
    entries: &Entries,
) -> Result<Vec<OutMessage>, NotServed> {
    let mut out = Vec::new();
    let mut body = Vec::with_capacity(1024);
    for (id, payload) in entries {
        let msgs = match payload {
            Some(p) => wire::messages(p, MAX_UNCOMPRESSED),
            None => Err(wire::Unreadable("a message without a payload".into())),
        };
        let msgs = match msgs {
            Ok(m) => m,
            Err(wire::Unreadable(why)) => {
                let client_id = format!("{input}/{}:{}:-1", id.ledger_id, id.entry_id);
                out.push(error_answer(None, client_id, &why));
                continue;
            }
        };
        for m in msgs {
            let client_id = format!("{input}/{}:{}:{}", id.ledger_id, id.entry_id, m.batch_index);
            let scored = score_event(
                scorer,
                model,
                m.value.as_deref(),
                &client_id,
                m.key.as_deref(),
                &mut body,
            );
            match scored {
                Ok(s) => out.push(OutMessage {
                    key: m.key,
                    value: s.body,
                    properties: vec![
                        ("freshet-request-id".into(), s.request_id),
                        ("freshet-client-request-id".into(), client_id),
                        ("freshet-version".into(), s.version.to_string()),
                    ],
                }),
                Err(ServeError::NotServed(_)) => return Err(NotServed),
                Err(e) => out.push(error_answer(m.key, client_id, &e.to_string())),
            }
        }
    }
    Ok(out)
}

fn error_answer(key: Option<String>, client_id: String, why: &str) -> OutMessage {
    OutMessage {
        key,
        value: serde_json::to_vec(&serde_json::json!({ "error": why })).unwrap_or_default(),
        properties: vec![
            ("freshet-client-request-id".into(), client_id),
            ("freshet-error".into(), "1".into()),
        ],
    }
}
