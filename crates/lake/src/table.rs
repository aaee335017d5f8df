//! One Delta table: create-or-open, exactly-once append, transaction versions, info
//! and history.

use crate::batch::arrow_schema_for;
use crate::error::{LakeError, Result};
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, DataType, StructField, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, TableProperty};
use freshet_core::{FieldType, Schema};
use futures::TryStreamExt;
use std::collections::HashMap;
use std::sync::Mutex as SyncMutex;
use tokio::sync::Mutex;
use url::Url;

/// A source position to record with a commit (a Delta `txn` action).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    pub app_id: String,
    pub version: i64,
}

/// Table properties set at creation. Transaction ids (source positions, idempotency
/// keys) are kept for the table's lifetime: an expired source position would make a
/// restarted source start over.
#[derive(Debug, Clone)]
pub struct TableOptions {
    pub partition_by: Vec<String>,
    pub checkpoint_interval: u64,
}

impl Default for TableOptions {
    fn default() -> Self {
        Self {
            partition_by: Vec::new(),
            checkpoint_interval: 50,
        }
    }
}

/// Facts about a snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableInfo {
    pub uri: String,
    pub version: i64,
    pub files: usize,
    pub rows: u64,
    pub bytes: u64,
    pub columns: Vec<(String, String)>,
    pub partition_by: Vec<String>,
}

/// One commit of the history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommitSummary {
    pub version: i64,
    pub timestamp_ms: Option<i64>,
    pub operation: String,
    pub parameters: serde_json::Value,
}

/// A Delta table. Commits from this process are serialised by an internal lock.
pub struct Table {
    url: Url,
    table: Mutex<DeltaTable>,
    arrow: SchemaRef,
    txns: SyncMutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

fn delta_type(t: FieldType) -> DataType {
    match t {
        FieldType::String => DataType::STRING,
        FieldType::Int => DataType::LONG,
        FieldType::Float => DataType::DOUBLE,
        FieldType::Bool => DataType::BOOLEAN,
        FieldType::Timestamp => DataType::TIMESTAMP,
        FieldType::Date => DataType::DATE,
    }
}

/// Parquet settings for appends: Snappy like delta-rs, statistics per column chunk
/// (what Delta's data skipping reads) rather than per page, and no dictionary for the
/// event id, which is unique per row.
pub(crate) fn writer_properties() -> deltalake::parquet::file::properties::WriterProperties {
    use deltalake::parquet::basic::Compression;
    use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
    use deltalake::parquet::schema::types::ColumnPath;
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_dictionary_enabled(ColumnPath::from("_event_id"), false)
        .set_created_by(format!("freshet {}", env!("CARGO_PKG_VERSION")))
        .build()
}

impl Table {
    /// Open the table at `url`, creating it with `columns` when it does not exist.
    /// An existing table must have the same column names and types, in any order.
    pub async fn open_or_create(
        url: Url,
        columns: &Schema,
        options: &TableOptions,
    ) -> Result<Self> {
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path)?;
        }
        let table = match DeltaTable::try_from_url(url.clone()).await {
            Ok(t) if t.version().is_some() => t,
            Ok(t) => {
                let fields: Vec<StructField> = columns
                    .fields()
                    .iter()
                    .map(|f| StructField::new(f.name.clone(), delta_type(f.ty), true))
                    .collect();
                let created = t
                    .create()
                    .with_columns(fields)
                    .with_partition_columns(options.partition_by.clone())
                    .with_save_mode(SaveMode::Ignore)
                    .with_configuration_property(
                        TableProperty::CheckpointInterval,
                        Some(options.checkpoint_interval.to_string()),
                    )
                    .await;
                match created {
                    Ok(t) => t,
                    // Another node created it between our look and our create: its
                    // first commit won the conditional write; use its table.
                    Err(e) => match DeltaTable::try_from_url(url.clone()).await {
                        Ok(t) if t.version().is_some() => t,
                        _ => return Err(e.into()),
                    },
                }
            }
            Err(e) => return Err(e.into()),
        };
        let arrow = arrow_schema_for(columns);
        let existing = table.snapshot()?.snapshot().arrow_schema();
        for f in arrow.fields() {
            match existing.field_with_name(f.name()) {
                Ok(e) if e.data_type() == f.data_type() => {}
                Ok(e) => {
                    return Err(LakeError::Schema(format!(
                        "column '{}' is {} in the table but {} in the configuration",
                        f.name(),
                        e.data_type(),
                        f.data_type()
                    )));
                }
                Err(_) => {
                    return Err(LakeError::Schema(format!(
                        "column '{}' is in the configuration but not in the table at {url}",
                        f.name()
                    )));
                }
            }
        }
        Ok(Self {
            url,
            table: Mutex::new(table),
            arrow,
            txns: SyncMutex::new(HashMap::new()),
        })
    }

    /// Open an existing table (at its latest version).
    pub async fn open(url: Url) -> Result<Self> {
        if let Ok(path) = url.to_file_path()
            && !path.join("_delta_log").is_dir()
        {
            return Err(LakeError::NotATable(url.to_string()));
        }
        let table = match DeltaTableBuilder::from_url(url.clone())?.load().await {
            Ok(t) => t,
            Err(deltalake::DeltaTableError::NotATable(_)) => {
                return Err(LakeError::NotATable(url.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        let arrow = table.snapshot()?.snapshot().arrow_schema();
        Ok(Self {
            url,
            table: Mutex::new(table),
            arrow,
            txns: SyncMutex::new(HashMap::new()),
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The Arrow schema batches must have to be appended.
    pub fn arrow_schema(&self) -> SchemaRef {
        self.arrow.clone()
    }

    /// Current version.
    pub async fn version(&self) -> i64 {
        self.table.lock().await.version().map_or(-1, |v| v as i64)
    }

    /// Append `batch` in one commit that also records `txns`. Returns the new version.
    pub async fn append(&self, batch: RecordBatch, txns: &[Txn]) -> Result<i64> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let started = std::time::Instant::now();
        let rows = batch.num_rows();
        let mut table = self.table.lock().await;
        let mut writer =
            RecordBatchWriter::for_table(&table)?.with_writer_properties(writer_properties());
        if rows > 0 {
            writer.write(batch).await?;
        }
        let adds: Vec<Action> = writer.flush().await?.into_iter().map(Action::Add).collect();
        let written = started.elapsed();
        let txn_actions: Vec<Transaction> = txns
            .iter()
            .map(|t| Transaction::new_with_last_update(&t.app_id, t.version, Some(now_ms)))
            .collect();
        let snapshot = table.snapshot()?;
        let partition_by: Vec<String> = snapshot.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partition_by.is_empty()).then_some(partition_by),
            predicate: None,
        };
        let finalized = CommitBuilder::from(
            CommitProperties::default().with_application_transactions(txn_actions),
        )
        .with_actions(adds)
        .build(Some(snapshot), table.log_store(), operation)
        .await;
        let finalized = match finalized {
            Ok(f) => f,
            Err(e) => {
                // The commit may have failed on a snapshot another writer moved past:
                // reload, so that the next append is checked against the current log
                // instead of failing the same way forever.
                if let Err(reload) = table.update_state().await {
                    tracing::warn!(table = %self.url, error = %reload, "table could not be reloaded after a failed commit");
                }
                return Err(e.into());
            }
        };
        let version = finalized.version() as i64;
        table.state = Some(finalized.snapshot());
        drop(table);
        tracing::debug!(
            table = %self.url,
            version,
            rows,
            write_ms = written.as_secs_f64() * 1e3,
            commit_ms = (started.elapsed() - written).as_secs_f64() * 1e3,
            "appended"
        );
        if !txns.is_empty() {
            let mut cache = self.txns.lock().unwrap_or_else(|e| e.into_inner());
            for t in txns {
                cache.insert(t.app_id.clone(), t.version);
            }
        }
        Ok(version)
    }

    /// The last version committed for `app_id`, if any.
    pub async fn txn_version(&self, app_id: &str) -> Result<Option<i64>> {
        if let Some(v) = self
            .txns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(app_id)
        {
            return Ok(Some(*v));
        }
        let table = self.table.lock().await;
        let found = table
            .snapshot()?
            .transaction_version(table.log_store().as_ref(), app_id)
            .await?;
        drop(table);
        if let Some(v) = found {
            self.txns
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(app_id.to_string(), v);
        }
        Ok(found)
    }

    /// A loaded table at `version` (latest when `None`), for reads.
    pub(crate) async fn at_version(&self, version: Option<i64>) -> Result<DeltaTable> {
        let mut builder = DeltaTableBuilder::from_url(self.url.clone())?;
        if let Some(v) = version {
            if v < 0 {
                return Err(LakeError::NoSuchVersion {
                    table: self.url.to_string(),
                    version: v,
                });
            }
            builder = builder.with_version(v as u64);
        }
        builder.load().await.map_err(|e| match e {
            deltalake::DeltaTableError::InvalidVersion(_)
            | deltalake::DeltaTableError::NotATable(_)
                if version.is_some() =>
            {
                LakeError::NoSuchVersion {
                    table: self.url.to_string(),
                    version: version.unwrap_or(-1),
                }
            }
            e => e.into(),
        })
    }

    /// Version, file and row counts, and schema of a snapshot.
    pub async fn info(&self, version: Option<i64>) -> Result<TableInfo> {
        let t = self.at_version(version).await?;
        let snap = t.snapshot()?;
        let mut files = 0;
        let mut rows = 0u64;
        let mut bytes = 0u64;
        for f in snap.log_data().iter() {
            files += 1;
            rows += f.num_records().unwrap_or(0) as u64;
            bytes += f.size().max(0) as u64;
        }
        let columns = snap
            .schema()
            .fields()
            .map(|f| (f.name().to_string(), f.data_type().to_string()))
            .collect();
        Ok(TableInfo {
            uri: self.url.to_string(),
            version: t.version().map_or(-1, |v| v as i64),
            files,
            rows,
            bytes,
            columns,
            partition_by: snap.metadata().partition_columns().to_vec(),
        })
    }

    /// The table's commits, newest first.
    pub async fn history(&self, limit: Option<usize>) -> Result<Vec<CommitSummary>> {
        let t = self.at_version(None).await?;
        let latest = t.version().map_or(-1, |v| v as i64);
        let infos: Vec<_> = t.history(limit).try_collect().await?;
        Ok(infos
            .into_iter()
            .enumerate()
            .map(|(i, c)| CommitSummary {
                version: latest - i as i64,
                timestamp_ms: c.timestamp,
                operation: c.operation.unwrap_or_default(),
                parameters: serde_json::to_value(c.operation_parameters.unwrap_or_default())
                    .unwrap_or_default(),
            })
            .collect())
    }

    pub(crate) fn lock(&self) -> &Mutex<DeltaTable> {
        &self.table
    }
}
