//! Maintenance: compaction of small files, checkpoints and vacuum.
//!
//! Compaction rewrites a partition's small files into one and commits the swap as a
//! Delta `OPTIMIZE` (removes and adds with `dataChange = false`), so readers of any
//! version see the same rows and streaming readers see no new data. The rewrite runs
//! outside the table lock; only the commit takes it, so ingest is not stalled.

use crate::error::Result;
use crate::read::{LiveFile, live_files, read_file};
use crate::table::Table;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use std::collections::BTreeMap;

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactionMetrics {
    pub partitions_compacted: usize,
    pub files_removed: usize,
    pub files_added: usize,
    pub version: Option<i64>,
}

/// What a vacuum did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VacuumMetrics {
    pub files_deleted: usize,
}

impl Table {
    /// Rewrite every partition holding at least `min_files` files smaller than
    /// `small_file_bytes` into one file per partition.
    pub async fn compact(
        &self,
        small_file_bytes: u64,
        min_files: usize,
    ) -> Result<CompactionMetrics> {
        let snapshot_table = self.at_version(None).await?;
        let schema = snapshot_table.snapshot()?.snapshot().arrow_schema();
        let mut by_partition: BTreeMap<Vec<(String, Option<String>)>, Vec<LiveFile>> =
            BTreeMap::new();
        for f in live_files(&snapshot_table)? {
            if (f.size as u64) < small_file_bytes {
                let mut key: Vec<_> = f.partition.clone().into_iter().collect();
                key.sort();
                by_partition.entry(key).or_default().push(f);
            }
        }
        let targets: Vec<Vec<LiveFile>> = by_partition
            .into_values()
            .filter(|v| v.len() >= min_files.max(2))
            .collect();
        if targets.is_empty() {
            return Ok(CompactionMetrics::default());
        }
        let mut writer = RecordBatchWriter::for_table(&snapshot_table)?
            .with_writer_properties(crate::table::writer_properties());
        let mut removes = Vec::new();
        for files in &targets {
            for f in files {
                for b in read_file(&snapshot_table, &f.path, &f.partition, &schema).await? {
                    writer.write(b).await?;
                }
                removes.push(Action::Remove(f.remove.clone()));
            }
        }
        let mut adds = writer.flush().await?;
        for a in &mut adds {
            a.data_change = false;
        }
        let metrics_added = adds.len();
        let mut actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        let files_removed = removes.len();
        actions.extend(removes);

        let mut table = self.lock().lock().await;
        let snapshot = table.snapshot()?;
        let finalized = CommitBuilder::from(CommitProperties::default())
            .with_actions(actions)
            .build(
                Some(snapshot),
                table.log_store(),
                DeltaOperation::Optimize {
                    predicate: None,
                    target_size: small_file_bytes as i64,
                },
            )
            .await?;
        let version = finalized.version() as i64;
        table.state = Some(finalized.snapshot());
        Ok(CompactionMetrics {
            partitions_compacted: targets.len(),
            files_removed,
            files_added: metrics_added,
            version: Some(version),
        })
    }

    /// Delete files no longer referenced by the table and older than `retention_hours`.
    pub async fn vacuum(&self, retention_hours: u64) -> Result<VacuumMetrics> {
        let mut guard = self.lock().lock().await;
        let table = guard.clone();
        let (table, metrics) = table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(retention_hours as i64))
            .with_enforce_retention_duration(false)
            .await?;
        *guard = table;
        Ok(VacuumMetrics {
            files_deleted: metrics.files_deleted.len(),
        })
    }

    /// Write a checkpoint at the current version.
    pub async fn checkpoint(&self) -> Result<()> {
        let table = self.lock().lock().await;
        deltalake::checkpoints::create_checkpoint(&table, None).await?;
        Ok(())
    }
}
