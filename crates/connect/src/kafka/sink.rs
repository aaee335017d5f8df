//! Predictions to a Kafka topic (`sinks: [{ type: kafka, brokers, topic }]` on a model):
//! every prediction committed to `inference/<model>` is produced as one message, its
//! NDJSON line as the value, keyed `<request_id>/<row>`, with the header
//! `freshet-request-id`. Dead letters (`dead_letter_sinks` on a stream) are keyed by
//! their `event_id`, with the header `freshet-event-id`. At least once: a message may repeat after a broker error, and
//! the key lets consumers de-duplicate.

use crate::prediction::{Head, NO_IDS, lines};
use freshet_serve::sinks::{ExternalSink, SinkFactory, SinkSpec, Undelivered};
use futures::FutureExt;
use futures::future::BoxFuture;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A producer for one model's prediction topic.
pub struct KafkaSink {
    producer: FutureProducer,
    topic: Arc<str>,
}

impl KafkaSink {
    pub fn new(
        brokers: &str,
        topic: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut c = ClientConfig::new();
        // A delivery that cannot finish within 30 s is reported (and counted) rather than
        // held for librdkafka's default five minutes; an option may say otherwise.
        c.set("message.timeout.ms", "30000").set("linger.ms", "5");
        for (k, v) in options {
            c.set(k, v);
        }
        c.set("bootstrap.servers", brokers);
        c.set_log_level(rdkafka::config::RDKafkaLogLevel::Error);
        let producer: FutureProducer = c
            .create()
            .map_err(|e| format!("kafka sink cannot start: {e}"))?;
        Ok(Self {
            producer,
            topic: Arc::from(topic),
        })
    }
}

impl ExternalSink for KafkaSink {
    fn deliver(&self, batch: Arc<Vec<u8>>) -> BoxFuture<'static, Result<(), Undelivered>> {
        let (producer, topic) = (self.producer.clone(), self.topic.clone());
        async move {
            let mut pending = Vec::new();
            let mut undelivered = 0u64;
            let mut reason = String::new();
            for line in lines(&batch) {
                let Some(head) = Head::of(line) else {
                    undelivered += 1;
                    reason = NO_IDS.into();
                    continue;
                };
                let headers = OwnedHeaders::new().insert(Header {
                    key: head.id_name,
                    value: Some(head.id.as_bytes()),
                });
                let mut record = FutureRecord::to(&topic)
                    .key(head.key.as_str())
                    .payload(line)
                    .headers(headers);
                loop {
                    match producer.send_result(record) {
                        Ok(delivery) => {
                            pending.push(delivery);
                            break;
                        }
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            record = r;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Err((e, _)) => {
                            undelivered += 1;
                            reason = e.to_string();
                            break;
                        }
                    }
                }
            }
            for delivery in pending {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => {
                        undelivered += 1;
                        reason = e.to_string();
                    }
                    Err(_) => {
                        undelivered += 1;
                        reason = "the producer went away".into();
                    }
                }
            }
            if undelivered == 0 {
                Ok(())
            } else {
                Err(Undelivered {
                    lines: undelivered,
                    reason,
                })
            }
        }
        .boxed()
    }
}

/// Makes Kafka sinks for the capture writer; other specs are not this crate's.
pub fn factory() -> Box<SinkFactory> {
    Box::new(|_model, spec| match spec {
        SinkSpec::Kafka {
            brokers,
            topic,
            options,
        } => Some(
            KafkaSink::new(brokers, topic, options).map(|s| Arc::new(s) as Arc<dyn ExternalSink>),
        ),
        _ => None,
    })
}
