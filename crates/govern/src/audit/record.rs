//! Records and checkpoints: their JSON lines and their canonical bytes (see the module docs
//! of `audit` for the exact layout).

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Outcome;

const RECORD_TAG: &str = "freshet.audit.record.v1";
const CHECKPOINT_TAG: &str = "freshet.audit.checkpoint.v1";

/// The hash before the first record.
pub(crate) const GENESIS: [u8; 32] = [0u8; 32];

/// One link of the chain, as stored and exported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    pub seq: u64,
    #[serde(with = "canonical_time")]
    pub time: DateTime<Utc>,
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub request_id: String,
    pub outcome: Outcome,
    pub detail: BTreeMap<String, String>,
    /// The previous record's hash, lowercase hex (64 zeros before seq 1).
    pub prev_hash: String,
    /// SHA-256 over this record's canonical bytes, lowercase hex.
    pub hash: String,
}

impl AuditRecord {
    /// Recomputes the hash from the fields; `None` if `prev_hash` is not 64 hex digits.
    pub fn compute_hash(&self) -> Option<String> {
        let prev = decode_hash(&self.prev_hash)?;
        let time = format_time(&self.time);
        let h = record_hash(
            &Head {
                seq: self.seq,
                time: &time,
                principal: &self.principal,
                action: &self.action,
                resource: &self.resource,
                request_id: &self.request_id,
                outcome: self.outcome,
            },
            self.detail.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            &prev,
        );
        Some(hex::encode(h))
    }
}

/// A signed seal over the chain up to `seq`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: u64,
    /// The hash of record `seq`, lowercase hex.
    pub hash: String,
    #[serde(with = "canonical_time")]
    pub time: DateTime<Utc>,
    /// First 16 hex digits of SHA-256 over the public key.
    pub key_id: String,
    /// Ed25519 signature over the checkpoint's canonical bytes, lowercase hex.
    pub signature: String,
}

/// A record line parsed without copying its strings (the verify hot path).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecord<'a> {
    pub seq: u64,
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    #[serde(borrow)]
    pub principal: Cow<'a, str>,
    #[serde(borrow)]
    pub action: Cow<'a, str>,
    #[serde(borrow)]
    pub resource: Cow<'a, str>,
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    pub outcome: Outcome,
    #[serde(borrow)]
    pub detail: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    #[serde(borrow)]
    pub prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    pub hash: Cow<'a, str>,
}

impl RawRecord<'_> {
    pub(crate) fn head(&self) -> Head<'_> {
        Head {
            seq: self.seq,
            time: &self.time,
            principal: &self.principal,
            action: &self.action,
            resource: &self.resource,
            request_id: &self.request_id,
            outcome: self.outcome,
        }
    }

    pub(crate) fn compute_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        record_hash(
            &self.head(),
            self.detail.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
            prev,
        )
    }
}

/// The fixed fields of a record, in canonical order.
pub(crate) struct Head<'a> {
    pub seq: u64,
    pub time: &'a str,
    pub principal: &'a str,
    pub action: &'a str,
    pub resource: &'a str,
    pub request_id: &'a str,
    pub outcome: Outcome,
}

fn field(h: &mut Sha256, s: &str) {
    // Fields are bounded well below 4 GiB on append (`MAX_FIELD_BYTES`); a longer one read
    // from disk saturates, which cannot collide with a correctly framed record of the
    // same content because the byte stream differs.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    h.update(len.to_be_bytes());
    h.update(s.as_bytes());
}

/// SHA-256 over the canonical bytes of a record.
pub(crate) fn record_hash<'d>(
    head: &Head<'_>,
    detail: impl ExactSizeIterator<Item = (&'d str, &'d str)>,
    prev: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    field(&mut h, RECORD_TAG);
    h.update(head.seq.to_be_bytes());
    field(&mut h, head.time);
    field(&mut h, head.principal);
    field(&mut h, head.action);
    field(&mut h, head.resource);
    field(&mut h, head.request_id);
    field(&mut h, head.outcome.as_str());
    let n = u32::try_from(detail.len()).unwrap_or(u32::MAX);
    h.update(n.to_be_bytes());
    for (k, v) in detail {
        field(&mut h, k);
        field(&mut h, v);
    }
    h.update(prev);
    h.finalize().into()
}

/// The bytes a checkpoint's signature covers; `None` if `hash` is not 64 hex digits.
pub(crate) fn checkpoint_bytes(seq: u64, hash: &str, time: &str, key_id: &str) -> Option<Vec<u8>> {
    let raw = decode_hash(hash)?;
    let mut out = Vec::with_capacity(4 + CHECKPOINT_TAG.len() + 8 + 32 + 4 + 40 + 4 + 16);
    let put = |s: &str, out: &mut Vec<u8>| {
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    put(CHECKPOINT_TAG, &mut out);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&raw);
    put(time, &mut out);
    put(key_id, &mut out);
    Some(out)
}

/// 64 lowercase hex digits to 32 bytes.
pub(crate) fn decode_hash(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// RFC 3339, UTC, nine fractional digits, `Z`.
pub(crate) fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Parses a time and insists it is spelled canonically.
pub(crate) fn parse_canonical_time(s: &str) -> Option<DateTime<Utc>> {
    // Cheap shape check first: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` is 30 bytes.
    if s.len() != 30 || !s.ends_with('Z') {
        return None;
    }
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    (format_time(&t) == s).then_some(t)
}

pub(crate) mod canonical_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_time(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| serde::de::Error::custom("time is not RFC 3339"))
    }
}
