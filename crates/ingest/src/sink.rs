//! The contract between ingest and storage.
//!
//! A [`Submission`] is the unit a source hands over: rows for the event table, dead
//! letters for the dead-letter table, and optionally a [`Txn`] marking the source
//! position it reaches. A [`TableSink`] commits a group of submissions atomically per
//! table, skipping any submission whose transaction the table already holds: that is
//! what makes replays after a crash exactly-once.

use crate::Row;
use crate::pipeline::Rejection;
use futures::future::BoxFuture;
use std::sync::Arc;

/// A source position recorded in the same commit as the data (a Delta `txn` action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Identifies the source, e.g. `file:/data/x.csv`, `http:<Idempotency-Key>`.
    pub app_id: String,
    /// The position reached; monotonic per `app_id`.
    pub version: i64,
    /// For sources that submit consecutive chunks (file, generator): the position the
    /// table must already hold (-1 for none) for this chunk to follow on. A chunk whose
    /// predecessor failed to commit is refused rather than committed past the gap,
    /// which would make a restart resume after the lost chunk. `None` for independent
    /// submissions (HTTP keys).
    pub after: Option<i64>,
}

/// Per-row system metadata. The event id is `<id_prefix>-<position>`, rendered only
/// when the row is written (no per-row string on the hot path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowMeta {
    pub position: i64,
}

/// What a source hands to the committer.
#[derive(Debug, Default)]
pub struct Submission {
    pub rows: Vec<Row>,
    pub meta: Vec<RowMeta>,
    pub dead: Vec<DeadLetter>,
    pub source: Arc<str>,
    /// Prefix of the event ids of this submission's records.
    pub id_prefix: Arc<str>,
    /// When the records were accepted, microseconds since the epoch.
    pub ingested_at: i64,
    pub txn: Option<Txn>,
}

impl Submission {
    /// Rough memory footprint, for the byte bound of micro-batches.
    pub fn approx_bytes(&self) -> usize {
        let rows: usize = self
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(freshet_core::Value::approx_bytes)
                    .sum::<usize>()
                    + 48
            })
            .sum();
        let dead: usize = self
            .dead
            .iter()
            .map(|d| d.rejection.payload.len() + d.rejection.reason.len() + 64)
            .sum();
        rows + dead
    }

    /// Write the event id of the record at `position` into `buf`.
    pub fn event_id_into(&self, position: i64, buf: &mut String) {
        use std::fmt::Write;
        buf.clear();
        let _ = write!(buf, "{}-{position}", self.id_prefix);
    }

    pub fn record_count(&self) -> usize {
        self.rows.len() + self.dead.len()
    }
}

/// A rejected record on its way to the dead-letter table.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub rejection: Rejection,
    pub meta: RowMeta,
    /// The record's place in its source's order, in the unit of the submission's
    /// transaction version (its offset for Kafka and files; its transaction's end LSN
    /// for Postgres). After a crash between the dead-letter commit and the event
    /// commit, a source may resubmit with other boundaries: dead letters at or below
    /// the dead-letter table's position were written by the earlier attempt.
    pub order: i64,
}

/// The result of committing a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitReceipt {
    /// Version of the event table that holds the rows (None if nothing was written to it).
    pub version: Option<i64>,
    pub rows_written: usize,
    pub dead_written: usize,
    /// Submissions skipped because their transaction was already committed.
    pub replays_skipped: usize,
}

/// Storage for one or more streams' tables.
pub trait TableSink: Send + Sync + 'static {
    /// Commit the submissions of `stream` together; all or nothing per table.
    fn commit<'a>(
        &'a self,
        stream: &'a str,
        group: &'a [Submission],
    ) -> BoxFuture<'a, Result<CommitReceipt, String>>;

    /// The last committed version of `app_id` in the stream's event table.
    fn txn_version<'a>(
        &'a self,
        stream: &'a str,
        app_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<i64>, String>>;
}
