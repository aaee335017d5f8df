//! A connection to a Pulsar broker for one consumer or one producer: the handshake, the
//! topic lookup (following redirects to the owning broker) and the subscription or
//! producer creation on a [`Connection`]; then it splits into a [`Reader`] of messages,
//! receipts and events (which its owner runs on a task of its own, as a frame half read
//! must never be dropped) and a [`Writer`] of flow permits, cumulative
//! acknowledgements, entries to publish, pongs and statistics requests, whose answers
//! come back through the reader as [`Event`]s.

use super::proto::{
    AckType, BaseCommand, CommandAck, CommandCloseConsumer, CommandCloseProducer, CommandConnect,
    CommandConsumerStats, CommandFlow, CommandGetLastMessageId, CommandLookupTopic,
    CommandPartitionedTopicMetadata, CommandProducer, CommandSend, CommandSubscribe, CommandType,
    InitialPosition, LookupType, MessageIdData, MessageMetadata, SubType,
};
use super::wire::{self, Frame, RawPayload};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Mutex;

/// Protocol version spoken (15: what the source needs, understood by every broker
/// since Pulsar 2.4).
const PROTOCOL_VERSION: i32 = 15;
/// The largest frame read when the broker does not say its limit (Pulsar's default
/// `maxMessageSize` is 5 MiB); frames may exceed the limit by their headers.
const DEFAULT_MAX_MESSAGE: usize = 5 << 20;
const FRAME_OVERHEAD: usize = 64 << 10;
/// Redirects followed in one lookup.
const MAX_REDIRECTS: usize = 8;
/// How long a request waits for its answer during set-up.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// What went wrong talking to the broker. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum PulsarError {
    #[error("cannot reach the broker at {addr}: {why}")]
    Unreachable { addr: String, why: String },
    #[error("the connection to the broker was lost: {0}")]
    Lost(String),
    #[error("the broker sent a frame Freshet cannot read: {0}")]
    Protocol(String),
    #[error("the broker refused {what}: {message}")]
    Refused { what: &'static str, message: String },
    #[error("no answer from the broker to {0} within {t} s", t = REQUEST_TIMEOUT.as_secs())]
    Timeout(&'static str),
}

/// The `host:port` of a `pulsar://host:port` URL.
pub fn broker_addr(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("pulsar://")?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)).then_some(rest)
}

/// What arrived on the connection while consuming.
#[derive(Debug)]
pub enum Event {
    /// An entry (one message, or a batch of them).
    Message {
        id: MessageIdData,
        payload: Option<RawPayload>,
    },
    /// The consumer became the active one of a failover subscription (or stopped being it).
    Active(bool),
    /// The broker closed the consumer (topic unloaded or moved): subscribe again.
    Closed,
    /// The answer to [`Writer::request_stats`]: the subscription's backlog.
    Backlog(Option<u64>),
    /// The answer to [`Writer::request_last_id`]: the topic's last message.
    LastMessage(MessageIdData),
    /// A topic that was terminated: nothing more will come.
    EndOfTopic,
    /// The broker persisted the entry sent with `sequence_id`.
    Receipt { sequence_id: u64, id: MessageIdData },
    /// The broker refused the entry sent with `sequence_id`.
    SendFailed { sequence_id: u64, message: String },
    /// The broker closed the producer (topic unloaded or moved): create it again.
    ProducerClosed,
}

/// One TCP connection to a broker.
pub struct Connection {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    addr: String,
    max_frame: usize,
    /// The largest message the broker takes, as it said (else Pulsar's default).
    max_message: usize,
    next_request: u64,
}

impl Connection {
    /// Connect to `addr` (`host:port`) and shake hands.
    pub async fn connect(addr: &str) -> Result<Self, PulsarError> {
        let unreachable = |why: String| PulsarError::Unreachable {
            addr: addr.to_string(),
            why,
        };
        let tcp = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (rd, wr) = tcp.into_split();
        let mut c = Self {
            rd: BufReader::with_capacity(256 << 10, rd),
            wr,
            addr: addr.to_string(),
            max_frame: DEFAULT_MAX_MESSAGE + FRAME_OVERHEAD,
            max_message: DEFAULT_MAX_MESSAGE,
            next_request: 1,
        };
        c.send(&BaseCommand {
            connect: Some(CommandConnect {
                client_version: concat!("freshet-", env!("CARGO_PKG_VERSION")).into(),
                protocol_version: Some(PROTOCOL_VERSION),
                ..Default::default()
            }),
            ..BaseCommand::of(CommandType::Connect)
        })
        .await?;
        let answer = c.answer("the connection", |_| true).await?;
        match answer.connected {
            Some(ok) => {
                if let Some(m) = ok.max_message_size.and_then(|m| usize::try_from(m).ok()) {
                    // Reading is lenient (at least the default); sending keeps to its word.
                    c.max_frame = m.max(DEFAULT_MAX_MESSAGE) + FRAME_OVERHEAD;
                    c.max_message = m;
                }
                Ok(c)
            }
            None => Err(refusal("the connection", &answer)),
        }
    }

    /// The broker this connection talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The largest message (metadata and payload) the broker takes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Create producer `producer_id` on `topic`; gives the name the broker chose and the
    /// last sequence id it holds for it (-1: none). Waits while the broker queues it.
    pub async fn create_producer(
        &mut self,
        producer_id: u64,
        topic: &str,
    ) -> Result<(String, i64), PulsarError> {
        let id = self.request_id();
        self.send(&BaseCommand {
            producer: Some(CommandProducer {
                topic: topic.to_string(),
                producer_id,
                request_id: id,
                producer_name: None,
            }),
            ..BaseCommand::of(CommandType::Producer)
        })
        .await?;
        loop {
            let answer = self
                .answer("the producer", |c| {
                    c.producer_success.as_ref().map(|s| s.request_id) == Some(id)
                        || c.error.as_ref().map(|e| e.request_id) == Some(id)
                })
                .await?;
            match answer.producer_success {
                Some(ok) if ok.producer_ready == Some(false) => continue,
                Some(ok) => return Ok((ok.producer_name, ok.last_sequence_id.unwrap_or(-1))),
                None => return Err(refusal("the producer", &answer)),
            }
        }
    }

    /// Connect to the broker that serves `topic`, starting from `addr`.
    pub async fn to_owner(addr: &str, topic: &str) -> Result<Self, PulsarError> {
        let mut conn = Self::connect(addr).await?;
        let mut authoritative = false;
        for _ in 0..MAX_REDIRECTS {
            let id = conn.request_id();
            conn.send(&BaseCommand {
                lookup_topic: Some(CommandLookupTopic {
                    topic: topic.to_string(),
                    request_id: id,
                    authoritative: Some(authoritative),
                }),
                ..BaseCommand::of(CommandType::Lookup)
            })
            .await?;
            let answer = conn
                .answer("the topic lookup", |c| {
                    c.lookup_topic_response.as_ref().map(|r| r.request_id) == Some(id)
                })
                .await?;
            let Some(r) = answer.lookup_topic_response else {
                return Err(refusal("the topic lookup", &answer));
            };
            let kind = r.response.and_then(|k| LookupType::try_from(k).ok());
            let target = r.broker_service_url.as_deref().and_then(broker_addr);
            match (kind, target) {
                (Some(LookupType::Failed), _) | (None, _) => {
                    return Err(PulsarError::Refused {
                        what: "the topic lookup",
                        message: r.message.unwrap_or_else(|| "lookup failed".into()),
                    });
                }
                (Some(LookupType::Connect), Some(t)) if t == conn.addr => return Ok(conn),
                (Some(LookupType::Connect), None) => return Ok(conn),
                (Some(LookupType::Connect), Some(t)) => return Self::connect(t).await,
                (Some(LookupType::Redirect), Some(t)) => {
                    authoritative = r.authoritative.unwrap_or(false);
                    if t != conn.addr {
                        conn = Self::connect(t).await?;
                    }
                }
                (Some(LookupType::Redirect), None) => {
                    return Err(PulsarError::Protocol(
                        "a lookup redirect without a pulsar:// broker URL".into(),
                    ));
                }
            }
        }
        Err(PulsarError::Protocol(format!(
            "the topic lookup was redirected more than {MAX_REDIRECTS} times"
        )))
    }

    /// The number of partitions of `topic` (0: not partitioned).
    pub async fn partitions(&mut self, topic: &str) -> Result<u32, PulsarError> {
        let id = self.request_id();
        self.send(&BaseCommand {
            partition_metadata: Some(CommandPartitionedTopicMetadata {
                topic: topic.to_string(),
                request_id: id,
            }),
            ..BaseCommand::of(CommandType::PartitionedMetadata)
        })
        .await?;
        let answer = self
            .answer("the partition metadata request", |c| {
                c.partition_metadata_response.as_ref().map(|r| r.request_id) == Some(id)
            })
            .await?;
        match answer.partition_metadata_response {
            Some(r) if r.response.unwrap_or(0) == 0 => Ok(r.partitions.unwrap_or(0)),
            Some(r) => Err(PulsarError::Refused {
                what: "the partition metadata request",
                message: r.message.unwrap_or_else(|| "failed".into()),
            }),
            None => Err(refusal("the partition metadata request", &answer)),
        }
    }

    /// Subscribe consumer `consumer_id` to `topic`.
    pub async fn subscribe(
        &mut self,
        consumer_id: u64,
        topic: &str,
        subscription: &str,
        sub_type: SubType,
        initial: InitialPosition,
        consumer_name: &str,
    ) -> Result<(), PulsarError> {
        let id = self.request_id();
        self.send(&BaseCommand {
            subscribe: Some(CommandSubscribe {
                topic: topic.to_string(),
                subscription: subscription.to_string(),
                sub_type: sub_type as i32,
                consumer_id,
                request_id: id,
                consumer_name: Some(consumer_name.to_string()),
                durable: Some(true),
                initial_position: Some(initial as i32),
            }),
            ..BaseCommand::of(CommandType::Subscribe)
        })
        .await?;
        let answer = self
            .answer("the subscription", |c| {
                c.success.as_ref().map(|s| s.request_id) == Some(id)
                    || c.error.as_ref().map(|e| e.request_id) == Some(id)
            })
            .await?;
        match answer.success {
            Some(_) => Ok(()),
            None => Err(refusal("the subscription", &answer)),
        }
    }

    /// Split into the reading and the writing halves, once subscribed.
    pub fn into_split(self) -> (Reader, Writer) {
        let wr = Arc::new(Mutex::new(self.wr));
        (
            Reader {
                rd: self.rd,
                max_frame: self.max_frame,
                pong: wr.clone(),
            },
            Writer {
                wr,
                next_request: self.next_request,
            },
        )
    }

    fn request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    async fn send(&mut self, cmd: &BaseCommand) -> Result<(), PulsarError> {
        send(&mut self.wr, cmd).await
    }

    /// Read frames until one `is` the answer (or an error answers instead); pings
    /// are answered meanwhile.
    async fn answer(
        &mut self,
        what: &'static str,
        is: impl Fn(&BaseCommand) -> bool,
    ) -> Result<BaseCommand, PulsarError> {
        let wait = async {
            loop {
                let f = read_frame(&mut self.rd, self.max_frame).await?;
                if f.command.r#type == CommandType::Ping as i32 {
                    send(&mut self.wr, &BaseCommand::pong()).await?;
                    continue;
                }
                if f.command.error.is_some() || is(&f.command) {
                    return Ok(f.command);
                }
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, wait)
            .await
            .map_err(|_| PulsarError::Timeout(what))?
    }
}

/// The reading half of a subscribed connection.
pub struct Reader {
    rd: BufReader<OwnedReadHalf>,
    max_frame: usize,
    /// Pings are answered here, so a consumer busy waiting for commits never misses one.
    pong: Arc<Mutex<OwnedWriteHalf>>,
}

impl Reader {
    /// The next thing that happened on the connection. Not cancel-safe: run it on a
    /// task of its own and pass the events on.
    pub async fn next_event(&mut self) -> Result<Event, PulsarError> {
        loop {
            let f = read_frame(&mut self.rd, self.max_frame).await?;
            let t = CommandType::try_from(f.command.r#type).ok();
            match t {
                Some(CommandType::Message) => {
                    let Some(m) = f.command.message else {
                        return Err(PulsarError::Protocol(
                            "a MESSAGE without its command".into(),
                        ));
                    };
                    return Ok(Event::Message {
                        id: m.message_id,
                        payload: f.payload,
                    });
                }
                Some(CommandType::ActiveConsumerChange) => {
                    let active = f
                        .command
                        .active_consumer_change
                        .and_then(|a| a.is_active)
                        .unwrap_or(false);
                    return Ok(Event::Active(active));
                }
                Some(CommandType::CloseConsumer) => return Ok(Event::Closed),
                Some(CommandType::ReachedEndOfTopic) => return Ok(Event::EndOfTopic),
                Some(CommandType::ConsumerStatsResponse) => {
                    let backlog = f
                        .command
                        .consumer_stats_response
                        .filter(|r| r.error_code.is_none())
                        .and_then(|r| r.msg_backlog);
                    return Ok(Event::Backlog(backlog));
                }
                Some(CommandType::GetLastMessageIdResponse) => {
                    if let Some(r) = f.command.get_last_message_id_response {
                        return Ok(Event::LastMessage(r.last_message_id));
                    }
                }
                Some(CommandType::Error) => {
                    // An answer to a request nobody waits for (statistics on a broker
                    // without them): the backlog is unknown.
                    return Ok(Event::Backlog(None));
                }
                Some(CommandType::Ping) => {
                    send(&mut *self.pong.lock().await, &BaseCommand::pong()).await?;
                }
                Some(CommandType::SendReceipt) => {
                    if let Some(r) = f.command.send_receipt {
                        return Ok(Event::Receipt {
                            sequence_id: r.sequence_id,
                            id: r.message_id.unwrap_or_default(),
                        });
                    }
                }
                Some(CommandType::SendError) => {
                    if let Some(r) = f.command.send_error {
                        return Ok(Event::SendFailed {
                            sequence_id: r.sequence_id,
                            message: r.message,
                        });
                    }
                }
                Some(CommandType::CloseProducer) => return Ok(Event::ProducerClosed),
                _ => {} // anything else is not the consumer's
            }
        }
    }
}

/// The writing half of a subscribed connection.
pub struct Writer {
    wr: Arc<Mutex<OwnedWriteHalf>>,
    next_request: u64,
}

impl Writer {
    fn request_id(&mut self) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        id
    }

    async fn send(&mut self, cmd: &BaseCommand) -> Result<(), PulsarError> {
        send(&mut *self.wr.lock().await, cmd).await
    }

    /// Let the broker send `permits` more messages.
    pub async fn flow(&mut self, consumer_id: u64, permits: u32) -> Result<(), PulsarError> {
        self.send(&BaseCommand {
            flow: Some(CommandFlow {
                consumer_id,
                message_permits: permits,
            }),
            ..BaseCommand::of(CommandType::Flow)
        })
        .await
    }

    /// Acknowledge every message up to and including `id`.
    pub async fn ack_cumulative(
        &mut self,
        consumer_id: u64,
        id: MessageIdData,
    ) -> Result<(), PulsarError> {
        self.send(&BaseCommand {
            ack: Some(CommandAck {
                consumer_id,
                ack_type: AckType::Cumulative as i32,
                message_id: vec![id],
            }),
            ..BaseCommand::of(CommandType::Ack)
        })
        .await
    }

    /// Ask for the consumer's statistics; the answer arrives as [`Event::Backlog`].
    pub async fn request_stats(&mut self, consumer_id: u64) -> Result<(), PulsarError> {
        let id = self.request_id();
        self.send(&BaseCommand {
            consumer_stats: Some(CommandConsumerStats {
                request_id: id,
                consumer_id,
            }),
            ..BaseCommand::of(CommandType::ConsumerStats)
        })
        .await
    }

    /// Ask for the topic's last message id; the answer arrives as [`Event::LastMessage`]
    /// (for brokers without consumer statistics).
    pub async fn request_last_id(&mut self, consumer_id: u64) -> Result<(), PulsarError> {
        let id = self.request_id();
        self.send(&BaseCommand {
            get_last_message_id: Some(CommandGetLastMessageId {
                consumer_id,
                request_id: id,
            }),
            ..BaseCommand::of(CommandType::GetLastMessageId)
        })
        .await
    }

    /// Send one entry (a message, or a batch of `count`) as producer `producer_id`; the
    /// broker answers with [`Event::Receipt`] or [`Event::SendFailed`] for `sequence_id`.
    pub async fn send_entry(
        &mut self,
        producer_id: u64,
        metadata: &MessageMetadata,
        count: i32,
        payload: &[u8],
    ) -> Result<(), PulsarError> {
        let cmd = BaseCommand {
            send: Some(CommandSend {
                producer_id,
                sequence_id: metadata.sequence_id,
                num_messages: Some(count),
                highest_sequence_id: Some(metadata.sequence_id + count.max(1) as u64 - 1),
            }),
            ..BaseCommand::of(CommandType::Send)
        };
        self.wr
            .lock()
            .await
            .write_all(&wire::encode_message(&cmd, metadata, payload))
            .await
            .map_err(|e| PulsarError::Lost(e.to_string()))
    }

    /// Close the producer (best effort: the connection goes next anyway).
    pub async fn close_producer(&mut self, producer_id: u64) {
        let id = self.request_id();
        let _ = self
            .send(&BaseCommand {
                close_producer: Some(CommandCloseProducer {
                    producer_id,
                    request_id: id,
                }),
                ..BaseCommand::of(CommandType::CloseProducer)
            })
            .await;
        let _ = self.wr.lock().await.flush().await;
    }

    /// Close the consumer (best effort: the connection goes next anyway).
    pub async fn close_consumer(&mut self, consumer_id: u64) {
        let id = self.request_id();
        let _ = self
            .send(&BaseCommand {
                close_consumer: Some(CommandCloseConsumer {
                    consumer_id,
                    request_id: id,
                }),
                ..BaseCommand::of(CommandType::CloseConsumer)
            })
            .await;
        let _ = self.wr.lock().await.flush().await;
    }
}

async fn send(wr: &mut OwnedWriteHalf, cmd: &BaseCommand) -> Result<(), PulsarError> {
    wr.write_all(&wire::encode_command(cmd))
        .await
        .map_err(|e| PulsarError::Lost(e.to_string()))
}

/// The next frame.
async fn read_frame(
    rd: &mut BufReader<OwnedReadHalf>,
    max_frame: usize,
) -> Result<Frame, PulsarError> {
    let size = rd
        .read_u32()
        .await
        .map_err(|e| PulsarError::Lost(e.to_string()))? as usize;
    if size > max_frame {
        return Err(PulsarError::Protocol(format!(
            "a frame of {size} bytes, over the {max_frame} the broker allows"
        )));
    }
    let mut buf = vec![0u8; size];
    rd.read_exact(&mut buf)
        .await
        .map_err(|e| PulsarError::Lost(e.to_string()))?;
    wire::decode_frame(&buf).map_err(|e| PulsarError::Protocol(e.to_string()))
}

fn refusal(what: &'static str, answer: &BaseCommand) -> PulsarError {
    match &answer.error {
        Some(e) => PulsarError::Refused {
            what,
            message: e.message.clone(),
        },
        None => PulsarError::Protocol(format!(
            "an unexpected answer (command {}) to {what}",
            answer.r#type
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::broker_addr;

    #[test]
    fn broker_urls_give_their_address() {
        assert_eq!(
            broker_addr("pulsar://127.0.0.1:6650"),
            Some("127.0.0.1:6650")
        );
        assert_eq!(
            broker_addr("pulsar://broker-1.internal:6650/"),
            Some("broker-1.internal:6650")
        );
        assert_eq!(broker_addr("pulsar+ssl://b:6651"), None);
        assert_eq!(broker_addr("pulsar://b"), None);
        assert_eq!(broker_addr("pulsar://:6650"), None);
        assert_eq!(broker_addr("http://b:6650"), None);
    }
}
