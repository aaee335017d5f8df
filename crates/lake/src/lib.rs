//! The lake: Delta tables on any object store the `deltalake` crate reaches.
//!
//! This room holds [`Table`] — exactly-once append (every commit may carry Delta `txn`
//! actions recording source positions, and [`Table::txn_version`] reads them back),
//! reads of a snapshot at any version, history, and maintenance (compaction of small
//! files, checkpoints, vacuum) — plus [`RowBatchBuilder`], which turns rows of
//! [`freshet_core::Value`] into Arrow record batches, and [`Lake`], which names the
//! tables under one root (`events/<stream>`, `dlq/<stream>`).
//!
//! Depends on `freshet-core` only. Tables written here are plain Delta tables, readable
//! by Spark, Databricks, polars, DuckDB and the `deltalake` Python package.

mod batch;
mod catalog;
mod error;
mod maintain;
mod read;
mod rows;
mod table;

pub use batch::{RowBatchBuilder, arrow_schema_for};
pub use catalog::{Lake, TableKind};
pub use error::{LakeError, Result};
pub use maintain::{CompactionMetrics, VacuumMetrics};
pub use rows::{batch_rows, schema_of};
pub use table::{CommitSummary, Table, TableInfo, TableOptions, Txn};

pub use deltalake::arrow;
