//! The audit chain: every mutating request and every decision of the loop and the rollout
//! controller, as hash-linked records sealed by signed checkpoints.
//!
//! # What is written where
//!
//! * **Records** live in `AuditConfig::dir` as append-only JSON-lines segment files named
//!   `seg-<first seq, 20 digits>.jsonl`, one record per line, each line ending in `\n`.
//!   A segment rolls over once it reaches `AuditConfig::segment_max_bytes`; the new file
//!   is named after the first sequence number it will hold. The directory also holds a
//!   `LOCK` file (an advisory `flock`, so two processes never fork one chain).
//! * **Checkpoints** live apart, in `AuditConfig::checkpoint_dir/checkpoints.jsonl`: one
//!   JSON line per checkpoint with `seq`, `hash` (the record hash at `seq`), `time`,
//!   `key_id` and `signature` (Ed25519, hex). One is written every `checkpoint_every`
//!   records or `checkpoint_interval`, whichever comes first, and on close.
//! * **Keys**: `AuditConfig::key_file` holds the Ed25519 signing key as 64 hex characters
//!   (the 32-byte seed), created with mode 0600 when missing. The public key is written
//!   beside it as `audit.pub` (64 hex characters) so an examiner can verify without the
//!   private key. The key id is the first 16 hex characters of SHA-256(public key).
//!
//! # Record line
//!
//! `{"seq":1,"time":"2025-01-02T03:04:05.123456789Z","principal":"…","action":"…",
//! "resource":"…","request_id":"…","outcome":"allowed","detail":{"k":"v"},
//! "prev_hash":"<64 hex>","hash":"<64 hex>"}` — exactly this field order and exactly the
//! bytes `serde_json` writes for it (no extra whitespace, no unknown or repeated fields);
//! `verify` rejects a line that is not byte-identical to its own re-serialisation, so a
//! record has one spelling only. Sequence numbers start at 1; the first record's
//! `prev_hash` is 64 zeros.
//!
//! # Canonical bytes
//!
//! `hash = lowercase hex(SHA-256(C))`, where, with `u32be`/`u64be` big-endian integers
//! and `field(s) = u32be(byte length of s) ‖ UTF-8 bytes of s`:
//!
//! ```text
//! C = field("freshet.audit.record.v1")
//!   ‖ u64be(seq)
//!   ‖ field(time)          RFC 3339, UTC, exactly 9 fractional digits, "Z"
//!   ‖ field(principal) ‖ field(action) ‖ field(resource) ‖ field(request_id)
//!   ‖ field(outcome)       allowed | denied | unauthenticated | succeeded | failed
//!   ‖ u32be(number of detail entries)
//!   ‖ for each entry in ascending byte order of its key: field(key) ‖ field(value)
//!   ‖ prev_hash            the previous record's 32 raw hash bytes (zeros for seq 1)
//! ```
//!
//! A checkpoint signs
//!
//! ```text
//! S = field("freshet.audit.checkpoint.v1") ‖ u64be(seq) ‖ hash at seq (32 raw bytes)
//!   ‖ field(time) ‖ field(key_id)
//! ```
//!
//! # Durability and crashes
//!
//! One writer thread owns the files. `append` sends the event over a channel; the writer
//! drains everything queued (group commit), writes the batch, calls `fdatasync` once and
//! only then acknowledges each sender, so an acknowledged record survives a crash. A crash
//! mid-write can leave a partial final line without its `\n`: that unacknowledged torn
//! tail is not tampering — `verify` reports it as `torn_tail` and `AuditLog::open` cuts
//! it off. A complete line that fails any check is tampering.
//!
//! # What `verify` catches
//!
//! An edited, deleted, inserted or reordered record, a deleted segment, a forged
//! checkpoint, a chain rewritten behind a checkpoint and a chain cut back behind its last
//! checkpoint: `VerifyReport::first_bad` names the first bad sequence number. Records after
//! the newest checkpoint can be cut off unnoticed; that window is `checkpoint_every` /
//! `checkpoint_interval` wide.
//!
//! # No secrets
//!
//! Callers pass identifiers, never credential values. As a second line of defence the
//! writer replaces the value of every detail whose key names a credential (`token`,
//! `secret`, `password`, `authorization`, `cookie`, `api_key`, `credential`, …) and every
//! value that looks like a bearer token or JWT with `[redacted]`, before hashing.

mod error;
mod keys;
mod log;
mod read;
mod record;
mod segments;
mod verify;
pub mod workload;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub use ed25519_dalek::VerifyingKey;
pub use error::AuditError;
pub use keys::{PUBLIC_KEY_FILE, key_id, load_public_key, load_signing_key_public};
pub use log::AuditLog;
pub use read::{RecordIter, export_jsonl, read_records};
pub use record::{AuditRecord, Checkpoint};
pub use verify::{Bad, BadReason, VerifyReport, VerifyingKeyOrPath, verify};

/// The checkpoint file inside `AuditConfig::checkpoint_dir`.
pub const CHECKPOINT_FILE: &str = "checkpoints.jsonl";

/// How a request or decision ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Authorised and carried out (a request).
    Allowed,
    /// Authenticated but refused by the authorisation check.
    Denied,
    /// No valid credential was presented.
    Unauthenticated,
    /// A decision of the loop or the rollout controller that took effect.
    Succeeded,
    /// A decision or an allowed request that failed while being carried out.
    Failed,
}

impl Outcome {
    /// The name used in records and in the canonical bytes.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Unauthenticated => "unauthenticated",
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the caller reports; the writer adds `seq`, `time` and the hashes.
///
/// `principal` is an identifier (a token id, an OIDC subject, `system:loop`), never a
/// credential or a personal value such as an e-mail address; `detail` holds small
/// identifiers (version, stage, reason code), never secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub principal: String,
    pub action: String,
    pub resource: String,
    pub request_id: String,
    pub outcome: Outcome,
    pub detail: BTreeMap<String, String>,
}

impl AuditEvent {
    /// An event without detail.
    pub fn new(
        principal: impl Into<String>,
        action: impl Into<String>,
        resource: impl Into<String>,
        request_id: impl Into<String>,
        outcome: Outcome,
    ) -> Self {
        AuditEvent {
            principal: principal.into(),
            action: action.into(),
            resource: resource.into(),
            request_id: request_id.into(),
            outcome,
            detail: BTreeMap::new(),
        }
    }

    /// Adds one detail entry (redacted on append if its key names a credential).
    pub fn with_detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.detail.insert(key.into(), value.into());
        self
    }
}

/// Where and how the chain is kept.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// The record segments.
    pub dir: PathBuf,
    /// The signed checkpoints, kept apart from the records (ideally another volume or a
    /// directory the records' writer cannot rewrite).
    pub checkpoint_dir: PathBuf,
    /// The Ed25519 signing key (hex seed), created with mode 0600 if missing; `audit.pub`
    /// is written beside it.
    pub key_file: PathBuf,
    /// A checkpoint after at most this many records (0 turns the count trigger off).
    pub checkpoint_every: u64,
    /// A checkpoint at most this long after the first record it does not yet cover.
    pub checkpoint_interval: Duration,
    /// A segment rolls over once it holds at least this many bytes.
    pub segment_max_bytes: u64,
}

impl AuditConfig {
    /// Defaults: a checkpoint every 10,000 records or 60 s, 64 MiB segments.
    pub fn new(
        dir: impl Into<PathBuf>,
        checkpoint_dir: impl Into<PathBuf>,
        key_file: impl Into<PathBuf>,
    ) -> Self {
        AuditConfig {
            dir: dir.into(),
            checkpoint_dir: checkpoint_dir.into(),
            key_file: key_file.into(),
            checkpoint_every: 10_000,
            checkpoint_interval: Duration::from_secs(60),
            segment_max_bytes: 64 * 1024 * 1024,
        }
    }

    /// Where the public key is written: `audit.pub` beside the key file.
    pub fn public_key_file(&self) -> PathBuf {
        keys::public_key_path(&self.key_file)
    }
}

/// The redaction placeholder.
pub(crate) const REDACTED: &str = "[redacted]";

const SECRET_KEY_MARKERS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "passphrase",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "credential",
    "private_key",
    "bearer",
    "jwt",
];

/// Replaces credential-looking detail values before they are hashed and written.
pub(crate) fn redact(ev: &mut AuditEvent) {
    for (k, v) in ev.detail.iter_mut() {
        let key = k.to_ascii_lowercase();
        if SECRET_KEY_MARKERS.iter().any(|m| key.contains(m)) || looks_like_credential(v) {
            *v = REDACTED.to_string();
        }
    }
    for v in [&mut ev.principal, &mut ev.resource, &mut ev.request_id] {
        if looks_like_credential(v) {
            *v = REDACTED.to_string();
        }
    }
}

fn looks_like_credential(v: &str) -> bool {
    let t = v.trim();
    let lower_prefix = t.get(..7).map(|p| p.to_ascii_lowercase());
    if lower_prefix.as_deref() == Some("bearer ") {
        return true;
    }
    // A JWT: three base64url parts, the header starting with `{"` encoded (`eyJ`).
    t.starts_with("eyJ") && t.matches('.').count() == 2 && t.len() > 20
}
