//! Labels from a Pulsar topic: each message is one feedback object (as `POST
//! /v1/models/<name>/feedback` takes), accepted as that route accepts it (a live
//! champion learns it on arrival) and committed to `labels/<model>` with the topic's
//! position as the Delta `txn` `pulsar:<topic>` in the same commit; the messages are
//! acknowledged after it. Redelivered messages at or below that position are
//! acknowledged and not taken again, so a crash or restart neither loses nor repeats a
//! label. A message that is not a feedback object is skipped with a warning naming its
//! message id (never its content).

use super::client::{Event, PulsarError};
use super::{Permits, Subscription, backoff, message_position, spawn_reader, topic_app_id, wire};
use crate::error::ConnectError;
use crate::kafka::feedback::LabelSink;
use freshet_core::config_pulsar::PulsarFeedbackSpec;
use freshet_ingest::health::SourceHealth;
use freshet_serve::feedback::{LabelRow, Position, accept, parse_feedback};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The `health` key of a feedback topic.
pub fn feedback_name(model: &str, spec: &PulsarFeedbackSpec) -> String {
    format!("{model}:feedback<-{}", spec.topic)
}

const PERMITS: u32 = 2_000;
const MAX_ROWS: usize = 5_000;
const LINGER: Duration = Duration::from_millis(50);

/// Why a feedback session ended: the broker (reconnect), or the label table (the
/// supervisor restarts the feedback topic).
enum End {
    Lost(PulsarError),
    Labels(String),
}

impl From<PulsarError> for End {
    fn from(e: PulsarError) -> Self {
        End::Lost(e)
    }
}

/// Read `spec.topic` into `labels/<model>` until `stop` turns true.
pub async fn run_feedback(
    sink: Arc<LabelSink>,
    model: String,
    spec: PulsarFeedbackSpec,
    health: SourceHealth,
    mut stop: watch::Receiver<bool>,
) -> Result<(), ConnectError> {
    let name = feedback_name(&model, &spec);
    let topic = spec.full_topic();
    let sub = Subscription::new(
        &spec.url,
        &topic,
        &spec.subscription,
        spec.subscription_type,
        spec.start,
        &format!("models.{model}.feedback"),
    )?;
    let app_id = topic_app_id(&topic);
    let mut pause = Duration::from_millis(250);
    health.connecting(&name, format!("connecting to {}", spec.url));
    loop {
        let Some((conn, consumer_id)) = sub.until_up(&name, &health, &mut stop).await else {
            return Ok(());
        };
        let pos = sink
            .tables
            .position(&sink.lake, &model, &app_id)
            .await
            .map_err(|e| {
                ConnectError::Pulsar(format!("cannot read the position of {app_id}: {e}"))
            })?;
        let (reader, mut writer) = conn.into_split();
        let (reading, mut rx) = spawn_reader(reader);
        let mut taken = pos.unwrap_or(-1);
        let mut committed = taken;
        let mut rows: Vec<LabelRow> = Vec::new();
        let mut last: Option<super::proto::MessageIdData> = None;
        let mut since: Option<Instant> = None;
        let mut permits = Permits::new(PERMITS);
        let ended: Result<(), End> = async {
            writer.flow(consumer_id, PERMITS).await?;
            loop {
                let linger = since.map_or_else(|| Instant::now() + Duration::from_secs(3600), |t| t + LINGER);
                tokio::select! {
                    _ = stop.changed() => {
                        if *stop.borrow() {
                            return Ok(());
                        }
                    }
                    _ = tokio::time::sleep_until(linger), if since.is_some() => {}
                    ev = rx.recv() => {
                        let Some(ev) = ev else {
                            return Err(PulsarError::Lost("the reader stopped".into()).into());
                        };
                        match ev? {
                            Event::Active(true) => {
                                // Another node may have committed while this one stood by:
                                // what is pending is redelivered from the subscription.
                                rows.clear();
                                last = None;
                                since = None;
                                let p = sink
                                    .tables
                                    .position(&sink.lake, &model, &app_id)
                                    .await
                                    .map_err(|e| End::Labels(format!("cannot read the position of {app_id}: {e}")))?;
                                taken = p.unwrap_or(-1);
                                committed = taken;
                            }
                            Event::Closed => {
                                return Err(PulsarError::Lost("the broker closed the consumer".into()).into());
                            }
                            Event::Message { id, payload } => {
                                health.up(&name);
                                permits.received(payload.as_ref());
                                if let Some(n) = permits.due() {
                                    writer.flow(consumer_id, n).await?;
                                }
                                let first = message_position(id.ledger_id, id.entry_id, 0)
                                    .map_err(PulsarError::Protocol)?;
                                if first <= taken {
                                    // In the table already: acknowledge it with the next commit.
                                    last = Some(id);
                                    since.get_or_insert_with(Instant::now);
                                    continue;
                                }
                                take(&name, &id, payload.as_ref(), &mut rows, &mut taken)?;
                                last = Some(id);
                                since.get_or_insert_with(Instant::now);
                            }
                            _ => {}
                        }
                    }
                }
                let due = since.is_some_and(|t| t.elapsed() >= LINGER) || rows.len() >= MAX_ROWS;
                if due && let Some(id) = last.take() {
                    since = None;
                    let positions = vec![Position {
                        app_id: app_id.clone(),
                        version: taken,
                    }];
                    if !rows.is_empty() || taken > committed {
                        accept(&sink.tables, &sink.lake, sink.live.as_deref(), &model, &rows, positions)
                            .await
                            .map_err(|e| End::Labels(e.to_string()))?;
                    }
                    rows.clear();
                    committed = taken;
                    writer.ack_cumulative(consumer_id, super::proto::MessageIdData { batch_index: None, ..id }).await?;
                }
            }
        }
        .await;
        reading.abort();
        match ended {
            Ok(()) => {
                writer.close_consumer(consumer_id).await;
                return Ok(());
            }
            Err(End::Labels(message)) => {
                return Err(ConnectError::Pulsar(format!(
                    "labels not committed: {message}"
                )));
            }
            Err(End::Lost(e)) => {
                health.down(&name, format!("pulsar: {e}"));
                tracing::warn!(source = %name, error = %e, "pulsar connection lost; reconnecting");
                backoff(&mut pause, &mut stop).await;
            }
        }
    }
}

/// Parse an entry's messages into label rows; `taken` moves to its last message.
fn take(
    name: &str,
    id: &super::proto::MessageIdData,
    payload: Option<&wire::RawPayload>,
    rows: &mut Vec<LabelRow>,
    taken: &mut i64,
) -> Result<(), PulsarError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let msgs = match payload {
        Some(p) => wire::messages(p, 64 << 20),
        None => Err(wire::Unreadable("a message without a payload".into())),
    };
    let mut last = message_position(id.ledger_id, id.entry_id, 0).map_err(PulsarError::Protocol)?;
    match msgs {
        Ok(msgs) => {
            for m in msgs {
                last = last.max(
                    message_position(id.ledger_id, id.entry_id, m.batch_index)
                        .map_err(PulsarError::Protocol)?,
                );
                match parse_feedback(m.value.as_deref().unwrap_or_default(), now) {
                    Ok(mut labels) => rows.append(&mut labels),
                    Err(e) => tracing::warn!(
                        source = %name,
                        ledger = id.ledger_id,
                        entry = id.entry_id,
                        batch = m.batch_index,
                        error = %e,
                        "feedback message skipped"
                    ),
                }
            }
        }
        Err(wire::Unreadable(why)) => tracing::warn!(
            source = %name,
            ledger = id.ledger_id,
            entry = id.entry_id,
            error = %why,
            "feedback message skipped"
        ),
    }
    *taken = last;
    Ok(())
}
