//! Errors of the ingest crate. HTTP status mapping happens in one place, in the binary.

use freshet_core::ConfigError;

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request body is not well-formed JSON/NDJSON/CSV.
    #[error("malformed input at line {line}, column {column}: {message}")]
    Malformed {
        line: usize,
        column: usize,
        message: String,
    },
    /// The stream does not exist.
    #[error("unknown stream '{0}'")]
    UnknownStream(String),
    /// Too many records are waiting for a commit; the client should retry later.
    #[error("ingest is saturated: {0}")]
    Saturated(String),
    /// The same `Idempotency-Key` is being processed by another request.
    #[error("{0}")]
    Conflict(String),
    /// A request carries more records than can ever be buffered at once.
    #[error("{0}")]
    TooLarge(String),
    /// The commit did not finish in time; the records are still committed later.
    #[error("commit did not finish within {0} ms")]
    AckTimeout(u64),
    /// Writing to the lake failed; nothing of the submission was acknowledged.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The service is shutting down.
    #[error("shutting down")]
    ShuttingDown,
    /// A configuration problem found when building a stream.
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("bad request: {0}")]
    BadRequest(String),
}
