//! The lake: Delta tables on the local disk or in S3 (and S3-compatible stores).
//!
//! This room holds [`Table`] — exactly-once append (every commit may carry Delta `txn`
//! actions recording source positions, and [`Table::txn_version`] reads them back),
//! reads of a snapshot at any version, history, and maintenance (compaction of small
//! files, checkpoints, vacuum) — plus [`RowBatchBuilder`], which turns rows of
//! [`freshet_core::Value`] into Arrow record batches, and [`Lake`], which names the
//! tables under one root (`events/<stream>`, `dlq/<stream>`), local or `s3://` (the S3
//! client of `object_store`, registered with `deltalake`; commits from several nodes are
//! kept apart by S3's conditional writes).
//!
//! Depends on `freshet-core` only. Tables written here are plain Delta tables, readable
//! by Spark, Databricks, polars, DuckDB and the `deltalake` Python package.

mod batch;
mod catalog;
mod error;
mod maintain;
mod read;
mod rows;
mod store;
mod table;

pub use batch::{RowBatchBuilder, arrow_schema_for};
pub use catalog::{Lake, TableKind};
pub use error::{LakeError, Result};
pub use maintain::{CompactionMetrics, VacuumMetrics};
pub use rows::{batch_rows, schema_of};
pub use table::{CommitSummary, Table, TableInfo, TableOptions, Txn};

pub use deltalake::arrow;
