//! Ingest: everything between a source and the lake.
//!
//! Sources ([`source`]: HTTP, file, generator) decode records against a stream's
//! schema; the [`pipeline`] runs the processors in order (validate, PII, then the
//! configured filter/derive/rename/drop) and routes every failure to the dead-letter
//! path with its stage, field and reason; the [`batch`] committer groups accepted
//! records into micro-batches bounded by rows, bytes and latency and hands them to a
//! [`sink::TableSink`], acknowledging a submission only after its commit.
//!
//! Depends on `freshet-core` only. The lake is reached through the [`sink::TableSink`]
//! trait, which the binary implements with `freshet-lake`.

pub mod batch;
pub mod decode;
pub mod error;
pub mod health;
pub mod metrics;
pub mod pipeline;
pub mod process;
pub mod service;
pub mod sink;
pub mod source;

pub use error::{IngestError, Result};
pub use pipeline::{Pipeline, Processed, Rejection};

/// One record's values aligned to a schema (index i holds field i).
pub type Row = Vec<freshet_core::Value>;
