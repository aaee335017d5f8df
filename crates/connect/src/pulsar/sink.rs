//! Predictions to a Pulsar topic (`sinks: [{ type: pulsar, url, topic }]` on a model):
//! every prediction committed to `inference/<model>` is published as one message, its
//! NDJSON line as the value, keyed `<request_id>/<row>`, with the property
//! `freshet-request-id` (a dead letter: keyed by its `event_id`, with
//! `freshet-event-id`). At least once: a batch whose receipts do not all come back is
//! sent again on a new producer (up to three tries), so a message may repeat and the key
//! lets consumers de-duplicate.

use super::client::{PulsarError, broker_addr};
use super::producer::{OutMessage, Producer};
use crate::prediction::{Head, NO_IDS, lines};
use freshet_core::config_pulsar::full_topic;
use freshet_serve::sinks::{ExternalSink, SinkFactory, SinkSpec, Undelivered};
use futures::FutureExt;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Tries per batch before its lines count as dropped.
const TRIES: u32 = 3;

/// A producer for one model's prediction topic, created on first use and again after
/// a lost connection.
pub struct PulsarSink {
    addr: String,
    topic: String,
    producer: Arc<Mutex<Option<Producer>>>,
}

impl PulsarSink {
    pub fn new(url: &str, topic: &str) -> Result<Self, String> {
        let addr = broker_addr(url)
            .ok_or_else(|| format!("pulsar sink: '{url}' is not pulsar://host:port"))?;
        Ok(Self {
            addr: addr.to_string(),
            topic: full_topic(topic),
            producer: Arc::new(Mutex::new(None)),
        })
    }
}

/// Send `msgs` on the sink's producer (creating it when there is none) and wait for
/// every receipt; a failure drops the producer so the next try starts afresh.
async fn send_all(
    slot: &Mutex<Option<Producer>>,
    addr: &str,
    topic: &str,
    msgs: &[OutMessage],
) -> Result<(), PulsarError> {
    let receipts = {
        let mut guard = slot.lock().await;
        let producer = match guard.as_mut() {
            Some(p) => p,
            None => guard.insert(Producer::create(addr, topic).await?),
        };
        match producer.send(msgs).await {
            Ok(r) => r,
            Err(e) => {
                *guard = None;
                return Err(e);
            }
        }
    };
    for r in receipts {
        if let Err(e) = r.wait().await {
            *slot.lock().await = None;
            return Err(e);
        }
    }
    Ok(())
}

impl ExternalSink for PulsarSink {
    fn deliver(&self, batch: Arc<Vec<u8>>) -> BoxFuture<'static, Result<(), Undelivered>> {
        let (slot, addr, topic) = (self.producer.clone(), self.addr.clone(), self.topic.clone());
        async move {
            let mut skipped = 0u64;
            let msgs: Vec<OutMessage> = lines(&batch)
                .filter_map(|line| {
                    let Some(head) = Head::of(line) else {
                        skipped += 1;
                        return None;
                    };
                    Some(OutMessage {
                        key: Some(head.key),
                        value: line.to_vec(),
                        properties: vec![(head.id_name.to_string(), head.id)],
                    })
                })
                .collect();
            let mut pause = Duration::from_millis(200);
            let mut last_error = None;
            for attempt in 1..=TRIES {
                match send_all(&slot, &addr, &topic, &msgs).await {
                    Ok(()) => {
                        last_error = None;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(topic = %topic, attempt, error = %e, "pulsar sink: batch not delivered");
                        last_error = Some(e.to_string());
                        if attempt < TRIES {
                            tokio::time::sleep(pause).await;
                            pause *= 2;
                        }
                    }
                }
            }
            match (last_error, skipped) {
                (None, 0) => Ok(()),
                (None, n) => Err(Undelivered {
                    lines: n,
                    reason: NO_IDS.into(),
                }),
                (Some(reason), n) => Err(Undelivered {
                    lines: msgs.len() as u64 + n,
                    reason,
                }),
            }
        }
        .boxed()
    }
}

/// Makes Pulsar sinks for the capture writer; other specs are not this module's.
pub fn factory() -> Box<SinkFactory> {
    Box::new(|_model, spec| match spec {
        SinkSpec::Pulsar { url, topic } => {
            Some(PulsarSink::new(url, topic).map(|s| Arc::new(s) as Arc<dyn ExternalSink>))
        }
        _ => None,
    })
}
