//! Errors of the audit chain. Messages name a sequence number, a path or an I/O cause,
//! never a value taken from a record (details, principals and resources stay out).

use std::path::PathBuf;

/// What can go wrong while writing, reading or verifying the audit chain.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file or directory of the chain could not be read or written.
    #[error("audit io at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The signing key or public key file is missing, unreadable or malformed.
    #[error("audit key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    /// A complete record on disk cannot be read back (not a torn tail): the chain was
    /// damaged or edited. `verify` says more.
    #[error("audit record corrupt in {path} after seq {after_seq}: {reason}")]
    Corrupt {
        path: PathBuf,
        after_seq: u64,
        reason: &'static str,
    },
    /// The records end before the newest signed checkpoint: the chain was cut back and
    /// appending would reuse sequence numbers that a checkpoint already vouches for.
    #[error(
        "audit chain ends at seq {last_seq} but a signed checkpoint covers seq {checkpoint_seq}"
    )]
    BehindCheckpoint { last_seq: u64, checkpoint_seq: u64 },
    /// A field of an event is too long to be framed (over 4 GiB) or otherwise unusable.
    #[error("audit event field {field} rejected: {reason}")]
    InvalidEvent {
        field: &'static str,
        reason: &'static str,
    },
    /// Another process holds the chain's lock: two writers would fork the chain.
    #[error("audit directory {path} is locked by another writer")]
    Locked { path: PathBuf },
    /// The writer stopped after an earlier write failure or after `close`.
    #[error("audit log is closed")]
    Closed,
    /// The writer could not make a batch durable; the records of the batch were not
    /// acknowledged.
    #[error("audit write failed: {0}")]
    WriteFailed(String),
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn key(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AuditError::Key {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
