//! Publishing to one Pulsar topic: a producer on its owning broker that sends messages
//! as batches (one entry per batch, each entry with a CRC32-C checksum) and hands back
//! a receipt per entry that resolves when the broker has persisted it. The binding's
//! answers and the prediction sink publish through it.
//!
//! Sequence ids follow on from the broker's last one for the producer, one per message
//! (an entry carries its first and last). The broker names the producer, so a new
//! producer after a lost connection is a new name and broker-side de-duplication does not
//! apply: an entry sent again may be stored twice (at least once; consumers de-duplicate
//! on the key). A lost connection, a receipt out of order or one that does not come
//! within [`SEND_TIMEOUT`] fails every receipt still waiting; the owner creates a new
//! producer and sends again. An entry holds messages of several keys and carries no key
//! of its own, so Key_Shared consumers of the topic see entries, not keys.

use super::client::{Connection, Event, PulsarError, Writer};
use super::proto::{MessageIdData, MessageMetadata};
use super::wire;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Messages in one entry at most (consumers read batches of up to 4,096).
pub const MAX_BATCH_MESSAGES: usize = 1_000;
/// How long a receipt may take (Pulsar's clients default to 30 s as well).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// One message to publish.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutMessage {
    /// The partition key (`message.partition_key()` to a client).
    pub key: Option<String>,
    pub value: Vec<u8>,
    pub properties: Vec<(String, String)>,
}

/// Resolves when the broker has persisted an entry (or refused it, or the connection
/// went first); the entry holds `msgs[first..first + messages]` of what was sent.
pub struct Receipt {
    pub first: usize,
    pub messages: usize,
    rx: oneshot::Receiver<Result<MessageIdData, PulsarError>>,
}

impl Receipt {
    /// The broker's answer, or [`PulsarError::Timeout`] after [`SEND_TIMEOUT`].
    pub async fn wait(self) -> Result<MessageIdData, PulsarError> {
        match tokio::time::timeout(SEND_TIMEOUT, self.rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(PulsarError::Lost("the producer went away".into())),
            Err(_) => Err(PulsarError::Timeout("a message's receipt")),
        }
    }
}

/// Senders of the receipts not yet answered, in sending order (the broker answers a
/// producer's entries in order).
type Waiting = VecDeque<(u64, oneshot::Sender<Result<MessageIdData, PulsarError>>)>;

/// Receipts not yet answered, and why the connection ended once it has.
#[derive(Default)]
struct Pending {
    waiting: Waiting,
    ended: Option<String>,
}

/// A producer on one topic.
pub struct Producer {
    writer: Writer,
    producer_id: u64,
    name: String,
    next_sequence: u64,
    max_entry: usize,
    pending: Arc<Mutex<Pending>>,
    reading: tokio::task::JoinHandle<()>,
}

impl Producer {
    /// Create a producer on `topic` (a full name), starting from broker `addr`.
    pub async fn create(addr: &str, topic: &str) -> Result<Self, PulsarError> {
        let mut conn = Connection::to_owner(addr, topic).await?;
        let producer_id = super::new_consumer_id();
        let (name, last) = conn.create_producer(producer_id, topic).await?;
        // Room for the batch framing and metadata under the broker's limit.
        let max_entry = conn.max_message().saturating_sub(64 << 10).max(64 << 10);
        let (mut reader, writer) = conn.into_split();
        let pending = Arc::new(Mutex::new(Pending::default()));
        let shared = pending.clone();
        let reading = tokio::spawn(async move {
            let why = loop {
                let (sequence_id, answer) = match reader.next_event().await {
                    Ok(Event::Receipt { sequence_id, id }) => (sequence_id, Ok(id)),
                    Ok(Event::SendFailed {
                        sequence_id,
                        message,
                    }) => (
                        sequence_id,
                        Err(PulsarError::Refused {
                            what: "a message",
                            message,
                        }),
                    ),
                    Ok(Event::ProducerClosed) => {
                        break "the broker closed the producer (the topic moved or was unloaded)"
                            .to_string();
                    }
                    Ok(_) => continue,
                    Err(e) => break e.to_string(),
                };
                let mut p = lock(&shared);
                match p.waiting.front() {
                    Some((expected, _)) if *expected == sequence_id => {
                        if let Some((_, tx)) = p.waiting.pop_front() {
                            let _ = tx.send(answer);
                        }
                    }
                    other => {
                        break format!(
                            "a receipt for sequence id {sequence_id} while {} was next",
                            other.map_or_else(|| "none".to_string(), |(e, _)| e.to_string())
                        );
                    }
                }
            };
            let mut p = lock(&shared);
            for (_, tx) in p.waiting.drain(..) {
                let _ = tx.send(Err(PulsarError::Lost(why.clone())));
            }
            p.ended = Some(why);
        });
        Ok(Self {
            writer,
            producer_id,
            name,
            next_sequence: u64::try_from(last.saturating_add(1)).unwrap_or(0),
            max_entry,
            pending,
            reading,
        })
    }

    /// Send `msgs` in order, as entries of at most [`MAX_BATCH_MESSAGES`] messages and
    /// the broker's size limit; one receipt per entry. A message over the limit on its
    /// own goes alone, and the broker's refusal comes back in its receipt.
    pub async fn send(&mut self, msgs: &[OutMessage]) -> Result<Vec<Receipt>, PulsarError> {
        let mut receipts = Vec::new();
        let mut payload = Vec::new();
        let mut start = 0;
        while start < msgs.len() {
            payload.clear();
            let mut end = start;
            while end < msgs.len() && end - start < MAX_BATCH_MESSAGES {
                let m = &msgs[end];
                let size = m.value.len()
                    + m.key.as_ref().map_or(0, String::len)
                    + m.properties
                        .iter()
                        .map(|(k, v)| k.len() + v.len() + 8)
                        .sum::<usize>()
                    + 16;
                if end > start && payload.len() + size > self.max_entry {
                    break;
                }
                let props: Vec<(&str, &str)> = m
                    .properties
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                wire::push_batch_message(&mut payload, m.key.as_deref(), &props, &m.value);
                end += 1;
            }
            let mut receipt = self.send_entry(&payload, end - start).await?;
            receipt.first = start;
            receipts.push(receipt);
            start = end;
        }
        Ok(receipts)
    }

    async fn send_entry(&mut self, payload: &[u8], count: usize) -> Result<Receipt, PulsarError> {
        let sequence_id = self.next_sequence;
        let n = i32::try_from(count).unwrap_or(i32::MAX);
        let metadata = MessageMetadata {
            producer_name: self.name.clone(),
            sequence_id,
            publish_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            num_messages_in_batch: Some(n),
            uncompressed_size: Some(u32::try_from(payload.len()).unwrap_or(u32::MAX)),
            ..Default::default()
        };
        let (tx, rx) = oneshot::channel();
        {
            let mut p = lock(&self.pending);
            if let Some(why) = &p.ended {
                return Err(PulsarError::Lost(why.clone()));
            }
            p.waiting.push_back((sequence_id, tx));
        }
        self.next_sequence += count as u64;
        self.writer
            .send_entry(self.producer_id, &metadata, n, payload)
            .await?;
        Ok(Receipt {
            first: 0,
            messages: count,
            rx,
        })
    }

    /// Close the producer and its connection.
    pub async fn close(mut self) {
        self.writer.close_producer(self.producer_id).await;
        self.reading.abort();
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.reading.abort();
    }
}

fn lock(p: &Mutex<Pending>) -> std::sync::MutexGuard<'_, Pending> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    //! The producer against a broker double on 127.0.0.1 that speaks the handshake,
    //! the lookup and the producer commands, records every entry sent and answers as a
    //! test tells it to.
    use super::*;
    use crate::pulsar::proto::{
        BaseCommand, CommandConnected, CommandLookupTopicResponse, CommandProducerSuccess,
        CommandSendError, CommandSendReceipt, CommandType, LookupType,
    };
    use crate::pulsar::wire::{self, Single};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// How the double answers the i-th entry it received.
    enum Reply {
        Receipt(usize),
        Error(usize),
    }

    /// One entry as the double received it: its sequence ids and messages.
    struct Sent {
        sequence_id: u64,
        highest: Option<u64>,
        messages: Vec<Single>,
    }

    /// Serve one producer: wait for `entries` sends, then answer with `replies`; give
    /// back what was sent.
    async fn double(
        listener: TcpListener,
        max_message: i32,
        entries: usize,
        replies: Vec<Reply>,
    ) -> Vec<Sent> {
        let (mut tcp, _) = listener.accept().await.expect("a client");
        let mut sent = Vec::new();
        while sent.len() < entries {
            let size = tcp.read_u32().await.expect("a frame") as usize;
            let mut buf = vec![0; size];
            tcp.read_exact(&mut buf).await.expect("the frame");
            let f = wire::decode_frame(&buf).expect("a valid frame");
            let c = f.command;
            let answer = if c.connect.is_some() {
                BaseCommand {
                    connected: Some(CommandConnected {
                        server_version: "double".into(),
                        protocol_version: Some(15),
                        max_message_size: Some(max_message),
                    }),
                    ..BaseCommand::of(CommandType::Connected)
                }
            } else if let Some(l) = c.lookup_topic {
                BaseCommand {
                    lookup_topic_response: Some(CommandLookupTopicResponse {
                        response: Some(LookupType::Connect as i32),
                        request_id: l.request_id,
                        ..Default::default()
                    }),
                    ..BaseCommand::of(CommandType::LookupResponse)
                }
            } else if let Some(p) = c.producer {
                BaseCommand {
                    producer_success: Some(CommandProducerSuccess {
                        request_id: p.request_id,
                        producer_name: "double-1".into(),
                        last_sequence_id: Some(41),
                        producer_ready: None,
                    }),
                    ..BaseCommand::of(CommandType::ProducerSuccess)
                }
            } else if let Some(s) = c.send {
                let payload = f.payload.expect("a send carries its entry");
                assert_eq!(payload.metadata.producer_name, "double-1");
                assert_eq!(payload.metadata.sequence_id, s.sequence_id);
                let messages = wire::messages(&payload, 64 << 20).expect("a readable batch");
                assert_eq!(s.num_messages, Some(messages.len() as i32));
                sent.push(Sent {
                    sequence_id: s.sequence_id,
                    highest: s.highest_sequence_id,
                    messages,
                });
                continue;
            } else {
                continue;
            };
            tcp.write_all(&wire::encode_command(&answer))
                .await
                .expect("an answer");
        }
        for r in replies {
            let cmd = match r {
                Reply::Receipt(i) => BaseCommand {
                    send_receipt: Some(CommandSendReceipt {
                        producer_id: 0,
                        sequence_id: sent[i].sequence_id,
                        message_id: Some(MessageIdData {
                            ledger_id: 7,
                            entry_id: i as u64,
                            ..Default::default()
                        }),
                    }),
                    ..BaseCommand::of(CommandType::SendReceipt)
                },
                Reply::Error(i) => BaseCommand {
                    send_error: Some(CommandSendError {
                        producer_id: 0,
                        sequence_id: sent[i].sequence_id,
                        error: 0,
                        message: "message too large".into(),
                    }),
                    ..BaseCommand::of(CommandType::SendError)
                },
            };
            tcp.write_all(&wire::encode_command(&cmd))
                .await
                .expect("a reply");
        }
        // Hold the connection until the client is done with it.
        let _ = tcp.read_u32().await;
        sent
    }

    fn message(i: usize, size: usize) -> OutMessage {
        OutMessage {
            key: Some(format!("k{i}")),
            value: vec![b'a' + (i % 26) as u8; size],
            properties: vec![("n".into(), i.to_string())],
        }
    }

    async fn start(
        max_message: i32,
        entries: usize,
        replies: Vec<Reply>,
    ) -> (String, tokio::task::JoinHandle<Vec<Sent>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr = listener.local_addr().expect("an address").to_string();
        let served = tokio::spawn(double(listener, max_message, entries, replies));
        (addr, served)
    }

    #[tokio::test]
    async fn entries_split_by_count_and_size_carry_sequence_ids_and_read_back() {
        // 2,100 small messages: entries of 1,000, 1,000 and 100.
        let (addr, served) = start(
            5 << 20,
            3,
            vec![Reply::Receipt(0), Reply::Receipt(1), Reply::Receipt(2)],
        )
        .await;
        let mut p = Producer::create(&addr, "persistent://public/default/t")
            .await
            .expect("a producer");
        let msgs: Vec<OutMessage> = (0..2_100).map(|i| message(i, 8)).collect();
        let receipts = p.send(&msgs).await.expect("sent");
        let shape: Vec<(usize, usize)> = receipts.iter().map(|r| (r.first, r.messages)).collect();
        assert_eq!(shape, [(0, 1_000), (1_000, 1_000), (2_000, 100)]);
        for (i, r) in receipts.into_iter().enumerate() {
            assert_eq!(r.wait().await.expect("persisted").entry_id, i as u64);
        }
        p.close().await;
        let sent = served.await.expect("the double");
        // Sequence ids follow on from the broker's last (41), one per message.
        let seqs: Vec<(u64, Option<u64>)> =
            sent.iter().map(|s| (s.sequence_id, s.highest)).collect();
        assert_eq!(
            seqs,
            [
                (42, Some(1_041)),
                (1_042, Some(2_041)),
                (2_042, Some(2_141))
            ]
        );
        let back: Vec<&Single> = sent.iter().flat_map(|s| &s.messages).collect();
        assert_eq!(back.len(), 2_100);
        for (i, m) in back.iter().enumerate() {
            assert_eq!(m.key.as_deref(), Some(format!("k{i}").as_str()));
            assert_eq!(m.value.as_deref(), Some(msgs[i].value.as_slice()));
            assert_eq!(m.properties, vec![("n".to_string(), i.to_string())]);
        }
    }

    #[tokio::test]
    async fn entries_keep_to_the_size_the_broker_advertises() {
        // 128 KiB advertised: 64 KiB of room per entry, so 20 messages of 10 KB go
        // six to an entry.
        let (addr, served) = start(128 << 10, 4, (0..4).map(Reply::Receipt).collect()).await;
        let mut p = Producer::create(&addr, "t").await.expect("a producer");
        let msgs: Vec<OutMessage> = (0..20).map(|i| message(i, 10_000)).collect();
        let receipts = p.send(&msgs).await.expect("sent");
        let sizes: Vec<usize> = receipts.iter().map(|r| r.messages).collect();
        assert_eq!(sizes, [6, 6, 6, 2]);
        for r in receipts {
            r.wait().await.expect("persisted");
        }
        p.close().await;
        served.await.expect("the double");
    }

    #[tokio::test]
    async fn a_refused_entry_says_so_and_a_receipt_out_of_order_fails_the_producer() {
        let (addr, served) = start(5 << 20, 3, vec![Reply::Error(0), Reply::Receipt(2)]).await;
        let mut p = Producer::create(&addr, "t").await.expect("a producer");
        let msgs: Vec<OutMessage> = (0..3_000).map(|i| message(i, 4)).collect();
        let mut receipts = p.send(&msgs).await.expect("sent").into_iter();
        let first = receipts.next().expect("three entries");
        assert!(
            matches!(first.wait().await, Err(PulsarError::Refused { ref message, .. }) if message == "message too large")
        );
        // The third entry's receipt came while the second's was due.
        for r in receipts {
            let err = r.wait().await.expect_err("the producer failed");
            assert!(err.to_string().contains("sequence id 2042"), "{err}");
        }
        let err = p.send(&msgs[..1]).await.err().expect("a failed producer");
        assert!(err.to_string().contains("sequence id 2042"), "{err}");
        drop(p);
        served.await.expect("the double");
    }
}
