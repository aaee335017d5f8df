//! Pulsar's frames: `[total size][command size][command]`, and for a message (read, or
//! sent as a batch by a producer)
//! `[magic 0x0e01][CRC32-C]` (both optional in the protocol), `[metadata size]
//! [metadata][payload]`, optionally preceded by broker entry metadata (`0x0e02`). The
//! payload is decompressed and, when it is a batch, split into its messages.
//!
//! The checksum is verified when the frame carries one and accepted as absent when it
//! does not: the protocol makes it optional, and brokers that store messages without it
//! send them without it.

use super::proto::{BaseCommand, Compression, MessageMetadata, SingleMessageMetadata};
use prost::Message as _;

const MAGIC_CRC32C: u16 = 0x0e01;
const MAGIC_BROKER_ENTRY_METADATA: u16 = 0x0e02;
/// The most messages a batch may hold: what a message position has room for.
pub const MAX_BATCH: i32 = 4096;

/// A frame that does not follow the protocol, or a payload the source cannot read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WireError {
    #[error("truncated frame: {0}")]
    Truncated(&'static str),
    #[error("undecodable {what}: {why}")]
    Protobuf { what: &'static str, why: String },
    #[error("checksum mismatch: the frame says {expected:08x}, its bytes give {actual:08x}")]
    Checksum { expected: u32, actual: u32 },
}

/// A message's bytes as the broker sent them: the producer's metadata and its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct RawPayload {
    pub metadata: MessageMetadata,
    pub data: Vec<u8>,
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub command: BaseCommand,
    pub payload: Option<RawPayload>,
}

/// A command as a frame, ready to write.
pub fn encode_command(cmd: &BaseCommand) -> Vec<u8> {
    let len = cmd.encoded_len();
    let mut out = Vec::with_capacity(8 + len);
    out.extend_from_slice(&((len + 4) as u32).to_be_bytes());
    out.extend_from_slice(&(len as u32).to_be_bytes());
    cmd.encode(&mut out)
        .unwrap_or_else(|_| unreachable!("a Vec grows to fit"));
    out
}

/// A message frame to send: the command, then `[magic][CRC32-C][metadata size]
/// [metadata][payload]` (the checksum covers everything after it).
pub fn encode_message(cmd: &BaseCommand, metadata: &MessageMetadata, payload: &[u8]) -> Vec<u8> {
    let cmd_len = cmd.encoded_len();
    let meta_len = metadata.encoded_len();
    let tail_len = 4 + meta_len + payload.len();
    let total = 4 + cmd_len + 2 + 4 + tail_len;
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(cmd_len as u32).to_be_bytes());
    cmd.encode(&mut out)
        .unwrap_or_else(|_| unreachable!("a Vec grows to fit"));
    out.extend_from_slice(&MAGIC_CRC32C.to_be_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let tail_at = out.len();
    out.extend_from_slice(&(meta_len as u32).to_be_bytes());
    metadata
        .encode(&mut out)
        .unwrap_or_else(|_| unreachable!("a Vec grows to fit"));
    out.extend_from_slice(payload);
    let crc = crc32c::crc32c(&out[tail_at..]);
    out[crc_at..tail_at].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Append one message to a batch's payload: `[size][SingleMessageMetadata][value]`.
pub fn push_batch_message(
    out: &mut Vec<u8>,
    key: Option<&str>,
    properties: &[(&str, &str)],
    value: &[u8],
) {
    let sm = SingleMessageMetadata {
        properties: properties
            .iter()
            .map(|(k, v)| super::proto::KeyValue {
                key: (*k).to_string(),
                value: (*v).to_string(),
            })
            .collect(),
        partition_key: key.map(str::to_string),
        payload_size: i32::try_from(value.len()).unwrap_or(i32::MAX),
        ..Default::default()
    };
    out.extend_from_slice(&(sm.encoded_len() as u32).to_be_bytes());
    sm.encode(out)
        .unwrap_or_else(|_| unreachable!("a Vec grows to fit"));
    out.extend_from_slice(value);
}

fn take<'a>(buf: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
    if buf.len() < n {
        return Err(WireError::Truncated(what));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn u32_at(buf: &mut &[u8], what: &'static str) -> Result<u32, WireError> {
    let b = take(buf, 4, what)?;
    Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn peek_u16(buf: &[u8]) -> Option<u16> {
    (buf.len() >= 2).then(|| u16::from_be_bytes([buf[0], buf[1]]))
}

/// Decode a frame's bytes after its total-size word.
pub fn decode_frame(mut buf: &[u8]) -> Result<Frame, WireError> {
    let cmd_size = u32_at(&mut buf, "command size")? as usize;
    let cmd = take(&mut buf, cmd_size, "command")?;
    let command = BaseCommand::decode(cmd).map_err(|e| WireError::Protobuf {
        what: "command",
        why: e.to_string(),
    })?;
    if buf.is_empty() {
        return Ok(Frame {
            command,
            payload: None,
        });
    }
    if peek_u16(buf) == Some(MAGIC_BROKER_ENTRY_METADATA) {
        take(&mut buf, 2, "broker entry metadata")?;
        let n = u32_at(&mut buf, "broker entry metadata size")? as usize;
        take(&mut buf, n, "broker entry metadata")?;
    }
    if peek_u16(buf) == Some(MAGIC_CRC32C) {
        take(&mut buf, 2, "magic number")?;
        let expected = u32_at(&mut buf, "checksum")?;
        let actual = crc32c::crc32c(buf);
        if actual != expected {
            return Err(WireError::Checksum { expected, actual });
        }
    }
    let meta_size = u32_at(&mut buf, "metadata size")? as usize;
    let meta = take(&mut buf, meta_size, "metadata")?;
    let metadata = MessageMetadata::decode(meta).map_err(|e| WireError::Protobuf {
        what: "message metadata",
        why: e.to_string(),
    })?;
    Ok(Frame {
        command,
        payload: Some(RawPayload {
            metadata,
            data: buf.to_vec(),
        }),
    })
}

/// One message of an entry: the value (None for a null value) and what came with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Single {
    /// The message's index in its batch (-1 when the entry is not a batch).
    pub batch_index: i32,
    pub value: Option<Vec<u8>>,
    pub key: Option<String>,
    pub properties: Vec<(String, String)>,
    /// Milliseconds since the epoch: the event time when the producer set one.
    pub event_time_ms: Option<u64>,
}

/// Why an entry's messages cannot be read (the entry goes to the dead letters whole).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// The messages of one entry: decompressed, and split when it is a batch. Messages a
/// compacted topic marked as removed are left out.
pub fn messages(p: &RawPayload, max_uncompressed: usize) -> Result<Vec<Single>, Unreadable> {
    let m = &p.metadata;
    if m.encryption_algo.is_some() {
        return Err(Unreadable(
            "the message is encrypted; Freshet cannot decrypt Pulsar messages".into(),
        ));
    }
    if m.num_chunks_from_msg.is_some_and(|n| n > 1) {
        return Err(Unreadable(
            "the message is one chunk of a larger one; chunked messages are not read".into(),
        ));
    }
    let data = decompress(m, &p.data, max_uncompressed)?;
    let Some(count) = m.num_messages_in_batch else {
        return Ok(vec![Single {
            batch_index: -1,
            value: (!m.null_value.unwrap_or(false)).then_some(data),
            key: m.partition_key.clone(),
            properties: m
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            event_time_ms: m.event_time.filter(|t| *t > 0),
        }]);
    };
    if !(1..=MAX_BATCH).contains(&count) {
        return Err(Unreadable(format!(
            "a batch of {count} messages; Freshet reads batches of 1 to {MAX_BATCH}"
        )));
    }
    let mut out = Vec::with_capacity(count as usize);
    let mut buf = data.as_slice();
    for i in 0..count.max(0) {
        let bad = |what: &str| Unreadable(format!("batch message {i} of {count}: {what}"));
        let size = u32_at(&mut buf, "single metadata size").map_err(|e| bad(&e.to_string()))?;
        let raw =
            take(&mut buf, size as usize, "single metadata").map_err(|e| bad(&e.to_string()))?;
        let sm = SingleMessageMetadata::decode(raw).map_err(|e| bad(&e.to_string()))?;
        let len = usize::try_from(sm.payload_size).map_err(|_| bad("negative payload size"))?;
        let value = take(&mut buf, len, "single payload").map_err(|e| bad(&e.to_string()))?;
        if sm.compacted_out.unwrap_or(false) {
            continue;
        }
        out.push(Single {
            batch_index: i,
            value: (!sm.null_value.unwrap_or(false)).then(|| value.to_vec()),
            key: sm.partition_key.clone(),
            properties: sm
                .properties
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.clone()))
                .collect(),
            event_time_ms: sm.event_time.filter(|t| *t > 0),
        });
    }
    if !buf.is_empty() {
        return Err(Unreadable(format!(
            "{} bytes follow the {count} messages the batch declares",
            buf.len()
        )));
    }
    Ok(out)
}

fn decompress(m: &MessageMetadata, data: &[u8], max: usize) -> Result<Vec<u8>, Unreadable> {
    let kind = match m.compression {
        None => Compression::None,
        Some(c) => Compression::try_from(c).map_err(|_| {
            Unreadable(format!("compression type {c}, which Freshet does not know"))
        })?,
    };
    if kind == Compression::None {
        return Ok(data.to_vec());
    }
    let size = m.uncompressed_size.unwrap_or(0) as usize;
    if size > max {
        return Err(Unreadable(format!(
            "the message uncompresses to {size} bytes, over the limit of {max}"
        )));
    }
    let fail = |e: &dyn std::fmt::Display| Unreadable(format!("{kind:?} payload: {e}"));
    let out = match kind {
        Compression::None => unreachable!("handled above"),
        Compression::Lz4 => lz4_flex::block::decompress(data, size).map_err(|e| fail(&e))?,
        Compression::Zlib => {
            use std::io::Read;
            let mut out = Vec::with_capacity(size);
            flate2::read::ZlibDecoder::new(data)
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| fail(&e))?;
            out
        }
        Compression::Zstd => zstd::bulk::decompress(data, size.max(1)).map_err(|e| fail(&e))?,
        Compression::Snappy => {
            // The stream states its own length: check it before allocating.
            let n = snap::raw::decompress_len(data).map_err(|e| fail(&e))?;
            if n != size {
                return Err(Unreadable(format!(
                    "Snappy payload says {n} bytes uncompressed, the metadata says {size}"
                )));
            }
            snap::raw::Decoder::new()
                .decompress_vec(data)
                .map_err(|e| fail(&e))?
        }
    };
    if out.len() != size {
        return Err(Unreadable(format!(
            "{kind:?} payload uncompressed to {} bytes, the metadata says {size}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pulsar::proto::{CommandMessage, CommandType, KeyValue, MessageIdData};

    fn message_command() -> BaseCommand {
        BaseCommand {
            message: Some(CommandMessage {
                consumer_id: 1,
                message_id: MessageIdData {
                    ledger_id: 3,
                    entry_id: 7,
                    partition: None,
                    batch_index: None,
                },
                redelivery_count: None,
            }),
            ..BaseCommand::of(CommandType::Message)
        }
    }

    fn metadata() -> MessageMetadata {
        MessageMetadata {
            producer_name: "p".into(),
            sequence_id: 1,
            publish_time: 1_700_000_000_000,
            partition_key: Some("k1".into()),
            properties: vec![KeyValue {
                key: "trace".into(),
                value: "t1".into(),
            }],
            ..Default::default()
        }
    }

    /// A message frame (without its total-size word), with or without a checksum.
    fn message_frame(meta: &MessageMetadata, payload: &[u8], checksum: bool) -> Vec<u8> {
        let cmd = message_command().encode_to_vec();
        let meta = meta.encode_to_vec();
        let mut tail = (meta.len() as u32).to_be_bytes().to_vec();
        tail.extend_from_slice(&meta);
        tail.extend_from_slice(payload);
        let mut out = (cmd.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&cmd);
        if checksum {
            out.extend_from_slice(&MAGIC_CRC32C.to_be_bytes());
            out.extend_from_slice(&crc32c::crc32c(&tail).to_be_bytes());
        }
        out.extend_from_slice(&tail);
        out
    }

    #[test]
    fn a_message_frame_decodes_with_or_without_its_optional_checksum() {
        for checksum in [true, false] {
            let f =
                decode_frame(&message_frame(&metadata(), b"{\"a\":1}", checksum)).expect("decodes");
            assert_eq!(f.command, message_command());
            let p = f.payload.expect("a payload");
            let ms = messages(&p, 1 << 20).expect("readable");
            assert_eq!(ms.len(), 1);
            assert_eq!(ms[0].value.as_deref(), Some(&b"{\"a\":1}"[..]));
            assert_eq!(ms[0].key.as_deref(), Some("k1"));
            assert_eq!(ms[0].properties, vec![("trace".into(), "t1".into())]);
            assert_eq!(ms[0].batch_index, -1);
        }
    }

    #[test]
    fn a_corrupted_payload_fails_its_checksum_and_a_cut_frame_is_truncated() {
        let mut f = message_frame(&metadata(), b"{\"a\":1}", true);
        let last = f.len() - 1;
        f[last] ^= 0xff;
        assert!(matches!(decode_frame(&f), Err(WireError::Checksum { .. })));
        let f = message_frame(&metadata(), b"{\"a\":1}", false);
        // Cut inside the metadata.
        assert!(matches!(
            decode_frame(&f[..f.len() - 10]),
            Err(WireError::Truncated(_))
        ));
        assert!(matches!(
            decode_frame(&[0, 0, 0, 9, 1]),
            Err(WireError::Truncated(_))
        ));
    }

    fn batch(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let sm = SingleMessageMetadata {
                payload_size: v.map_or(0, |v| v.len() as i32),
                partition_key: Some(format!("k{i}")),
                null_value: v.is_none().then_some(true),
                ..Default::default()
            }
            .encode_to_vec();
            out.extend_from_slice(&(sm.len() as u32).to_be_bytes());
            out.extend_from_slice(&sm);
            out.extend_from_slice(v.unwrap_or_default());
        }
        out
    }

    #[test]
    fn a_batch_splits_into_its_messages_and_compressed_ones_are_read() {
        let body = batch(&[Some(b"one"), None, Some(b"three")]);
        let mut meta = MessageMetadata {
            num_messages_in_batch: Some(3),
            ..metadata()
        };
        let ms = messages(
            &RawPayload {
                metadata: meta.clone(),
                data: body.clone(),
            },
            1 << 20,
        )
        .expect("readable");
        let got: Vec<_> = ms
            .iter()
            .map(|m| (m.batch_index, m.value.clone(), m.key.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, Some(b"one".to_vec()), Some("k0".into())),
                (1, None, Some("k1".into())),
                (2, Some(b"three".to_vec()), Some("k2".into())),
            ]
        );
        meta.uncompressed_size = Some(body.len() as u32);
        let compressed: Vec<(Compression, Vec<u8>)> = vec![
            (Compression::Lz4, lz4_flex::block::compress(&body)),
            (
                Compression::Zstd,
                zstd::bulk::compress(&body, 3).expect("zstd"),
            ),
            (
                Compression::Snappy,
                snap::raw::Encoder::new()
                    .compress_vec(&body)
                    .expect("snappy"),
            ),
            (Compression::Zlib, {
                use std::io::Write;
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                e.write_all(&body).expect("zlib");
                e.finish().expect("zlib")
            }),
        ];
        for (kind, data) in compressed {
            meta.compression = Some(kind as i32);
            let ms = messages(
                &RawPayload {
                    metadata: meta.clone(),
                    data,
                },
                1 << 20,
            )
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert_eq!(ms.len(), 3, "{kind:?}");
            assert_eq!(ms[2].value.as_deref(), Some(&b"three"[..]), "{kind:?}");
        }
        // A batch that says more messages than it holds is unreadable, not a panic.
        meta.compression = None;
        meta.num_messages_in_batch = Some(4);
        let err = messages(
            &RawPayload {
                metadata: meta.clone(),
                data: body,
            },
            1 << 20,
        )
        .expect_err("short batch");
        assert!(err.0.contains("batch message 3 of 4"), "{err}");
        // A batch count beyond what a position holds, or bytes after the last message,
        // make the entry unreadable (a dead letter), never an allocation or a loss.
        meta.num_messages_in_batch = Some(i32::MAX);
        let err = messages(
            &RawPayload {
                metadata: meta.clone(),
                data: batch(&[Some(b"x")]),
            },
            1 << 20,
        )
        .expect_err("huge count");
        assert!(err.0.contains("batches of 1 to 4096"), "{err}");
        meta.num_messages_in_batch = Some(1);
        let err = messages(
            &RawPayload {
                metadata: meta.clone(),
                data: batch(&[Some(b"x"), Some(b"y")]),
            },
            1 << 20,
        )
        .expect_err("trailing bytes");
        assert!(err.0.contains("follow the 1 messages"), "{err}");
        meta.compression = Some(9);
        let err = messages(
            &RawPayload {
                metadata: meta.clone(),
                data: vec![1],
            },
            1 << 20,
        )
        .expect_err("unknown codec");
        assert!(err.0.contains("compression type 9"), "{err}");
        // An uncompressed size over the limit is refused before any work.
        meta.compression = Some(Compression::Zstd as i32);
        meta.uncompressed_size = Some(10 << 20);
        let err = messages(
            &RawPayload {
                metadata: meta,
                data: vec![1, 2, 3],
            },
            1 << 20,
        )
        .expect_err("too large");
        assert!(err.0.contains("over the limit"), "{err}");
    }

    #[test]
    fn an_encoded_command_reads_back() {
        let cmd = message_command();
        let bytes = encode_command(&cmd);
        let total = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        assert_eq!(total, bytes.len() - 4);
        assert_eq!(decode_frame(&bytes[4..]).expect("decodes").command, cmd);
    }

    #[test]
    fn a_sent_batch_carries_a_checksum_and_reads_back_message_by_message() {
        let mut payload = Vec::new();
        push_batch_message(
            &mut payload,
            Some("k1"),
            &[("freshet-request-id", "r1")],
            b"{\"a\":1}",
        );
        push_batch_message(&mut payload, None, &[], b"");
        let meta = MessageMetadata {
            num_messages_in_batch: Some(2),
            ..metadata()
        };
        let bytes = encode_message(&message_command(), &meta, &payload);
        let total = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        assert_eq!(total, bytes.len() - 4);
        let frame = decode_frame(&bytes[4..]).expect("decodes");
        let p = frame.payload.expect("a payload");
        let msgs = messages(&p, 1 << 20).expect("readable");
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].batch_index, 0);
        assert_eq!(msgs[0].key.as_deref(), Some("k1"));
        assert_eq!(msgs[0].value.as_deref(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(
            msgs[0].properties,
            vec![("freshet-request-id".to_string(), "r1".to_string())]
        );
        assert_eq!(msgs[1].key, None);
        assert_eq!(msgs[1].value.as_deref(), Some(&b""[..]));
        // The checksum covers the metadata and payload: a flipped bit is caught.
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(
            decode_frame(&bad[4..]),
            Err(WireError::Checksum { .. })
        ));
    }
}
