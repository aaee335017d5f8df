//! Reading a snapshot: every live file of a version, with partition columns restored.

use crate::error::{LakeError, Result};
use crate::table::Table;
use deltalake::DeltaTable;
use deltalake::arrow::array::{ArrayRef, new_null_array};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, SchemaRef};
use deltalake::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::parquet::arrow::ProjectionMask;
use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::collections::HashMap;

/// One live data file of a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct LiveFile {
    pub path: deltalake::Path,
    pub size: i64,
    pub partition: HashMap<String, Option<String>>,
    /// The action that retires this file (for compaction).
    pub remove: deltalake::kernel::Remove,
}

pub(crate) fn live_files(t: &DeltaTable) -> Result<Vec<LiveFile>> {
    Ok(t.snapshot()?
        .log_data()
        .iter()
        .map(|f| LiveFile {
            path: f.object_store_path(),
            size: f.size(),
            partition: f.partition_values_map(),
            remove: f.remove_action(false),
        })
        .collect())
}

/// Read one file into batches shaped like `schema` (partition columns filled in).
pub(crate) async fn read_file(
    t: &DeltaTable,
    path: &deltalake::Path,
    partition: &HashMap<String, Option<String>>,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>> {
    read_file_columns(t, path, partition, schema, false).await
}

/// [`read_file`]; with `projected`, only the file's columns that `schema` names are
/// decoded.
pub(crate) async fn read_file_columns(
    t: &DeltaTable,
    path: &deltalake::Path,
    partition: &HashMap<String, Option<String>>,
    schema: &SchemaRef,
    projected: bool,
) -> Result<Vec<RecordBatch>> {
    let bytes = t.object_store().get(path).await?.bytes().await?;
    // Decoding is CPU work: on the blocking pool, so a read never stalls a thread that
    // is answering requests.
    let (partition, schema) = (partition.clone(), schema.clone());
    tokio::task::spawn_blocking(move || decode(bytes, &partition, &schema, projected))
        .await
        .map_err(|e| LakeError::Io(std::io::Error::other(e.to_string())))?
}

/// Decode a Parquet file into batches shaped like `schema`; with `projected`, only the
/// file's columns that `schema` names (partition columns are not in the file and are
/// filled in from `partition`).
fn decode(
    bytes: bytes::Bytes,
    partition: &HashMap<String, Option<String>>,
    schema: &SchemaRef,
    projected: bool,
) -> Result<Vec<RecordBatch>> {
    let mut builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    if projected {
        let mask = ProjectionMask::columns(
            builder.parquet_schema(),
            schema.fields().iter().map(|f| f.name().as_str()),
        );
        builder = builder.with_projection(mask);
    }
    let reader = builder.with_batch_size(64 * 1024).build()?;
    let mut out = Vec::new();
    for batch in reader {
        out.push(shape(&batch?, partition, schema)?);
    }
    Ok(out)
}

/// A decoded batch laid out as `schema`: columns cast where the file's type differs,
/// partition columns filled in, missing columns null.
fn shape(
    batch: &RecordBatch,
    partition: &HashMap<String, Option<String>>,
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let col = match batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => c.clone(),
            Some(c) => cast(c, field.data_type())?,
            None => match partition.get(field.name()) {
                Some(Some(text)) => partition_array(text, field.data_type(), n)?,
                _ => new_null_array(field.data_type(), n),
            },
        };
        columns.push(col);
    }
    // The row count is given, so a batch of no columns (a projection of columns the
    // file lacks) still says how many rows it stands for.
    let options = RecordBatchOptions::new().with_row_count(Some(n));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &options,
    )?)
}

/// A file's partition values (`None`: null).
type PartitionValues = HashMap<String, Option<String>>;

/// The files a commit entry adds with `dataChange: true`, with their partition values.
fn appended_files(entry: &[u8]) -> Result<Vec<(deltalake::Path, PartitionValues)>> {
    let bad = |e: String| LakeError::Schema(format!("unreadable commit entry: {e}"));
    let mut files = Vec::new();
    for line in entry.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let action: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
        let Some(add) = action.get("add") else {
            continue;
        };
        if add.get("dataChange").and_then(serde_json::Value::as_bool) != Some(true) {
            continue;
        }
        let path = add
            .get("path")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| bad("an add action without a path".into()))?;
        let path = deltalake::Path::from_url_path(path).map_err(|e| bad(e.to_string()))?;
        let partition = add
            .get("partitionValues")
            .and_then(serde_json::Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string)))
                    .collect()
            })
            .unwrap_or_default();
        files.push((path, partition));
    }
    Ok(files)
}

/// A constant column holding a partition value (stored as text in the log).
fn partition_array(text: &str, ty: &DataType, n: usize) -> Result<ArrayRef> {
    let strings = deltalake::arrow::array::StringArray::from(vec![text; n]);
    Ok(cast(&strings, ty)?)
}

impl Table {
    /// Every row of the snapshot at `version` (latest when `None`).
    pub async fn read(&self, version: Option<i64>) -> Result<Vec<RecordBatch>> {
        let t = self.at_version(version).await?;
        let schema = t.snapshot()?.snapshot().arrow_schema();
        let mut out = Vec::new();
        for f in live_files(&t)? {
            out.extend(read_file(&t, &f.path, &f.partition, &schema).await?);
        }
        Ok(out)
    }

    /// The table at `to` (latest when `None`), its version (-1 before the first
    /// commit) and its Arrow schema.
    async fn snapshot_at(&self, to: Option<i64>) -> Result<(DeltaTable, i64, SchemaRef)> {
        let t = self.at_version(to).await?;
        let upto = t.version().map_or(-1, |v| v as i64);
        let schema = t.snapshot()?.snapshot().arrow_schema();
        Ok((t, upto, schema))
    }

    /// The rows added between `from` (exclusive; `None` for the empty table) and `to`
    /// (inclusive; latest when `None`), and the version read up to. For append-only
    /// tables (inference, labels): a file rewritten by compaction would read again.
    pub async fn read_since(
        &self,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<(Vec<RecordBatch>, i64)> {
        let (t, upto, schema) = self.snapshot_at(to).await?;
        let seen: std::collections::HashSet<String> = match from {
            Some(v) if v >= 0 && v <= upto => live_files(&self.at_version(Some(v)).await?)?
                .into_iter()
                .map(|f| f.path.to_string())
                .collect(),
            _ => Default::default(),
        };
        let mut out = Vec::new();
        for f in live_files(&t)? {
            if !seen.contains(&f.path.to_string()) {
                out.extend(read_file(&t, &f.path, &f.partition, &schema).await?);
            }
        }
        Ok((out, upto))
    }

    /// The rows appended by data-changing commits after `from` (exclusive; `None` for
    /// the empty table) up to `to` (inclusive; latest when `None`), in commit order,
    /// and the version read up to. Unlike [`read_since`](Self::read_since), files that
    /// compaction rewrote (`dataChange: false`) are not read again, so a reader that
    /// follows a compacted table sees every row once — provided vacuum has not yet
    /// deleted a file it has still to read (the retention period).
    pub async fn read_appended(
        &self,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<(Vec<RecordBatch>, i64)> {
        let (t, upto, schema) = self.snapshot_at(to).await?;
        let store = t.log_store();
        let mut out = Vec::new();
        let first = from.map_or(0, |v| v.saturating_add(1)).max(0);
        for version in first..=upto {
            let Some(entry) = store.read_commit_entry(version as u64).await? else {
                return Err(LakeError::Schema(format!(
                    "commit {version} of the log is gone (log retention); read the snapshot instead"
                )));
            };
            for (path, partition) in appended_files(&entry)? {
                out.extend(read_file(&t, &path, &partition, &schema).await?);
            }
        }
        Ok((out, upto))
    }

    /// What a follower of the table reads next: [`read_appended`](Self::read_appended)
    /// (each row once, in commit order), or — when the commits to replay are gone
    /// (log retention, vacuum) — [`read_since`](Self::read_since), the same rows of an
    /// append-only table in no promised order (a row compaction rewrote may come
    /// again). The fallback is logged.
    pub async fn read_new(
        &self,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<(Vec<RecordBatch>, i64)> {
        match self.read_appended(from, to).await {
            Ok(r) => Ok(r),
            Err(e) => {
                tracing::warn!(table = %self.url(), error = %e, ?from,
                    "the table's commits cannot be replayed; reading snapshots instead");
                self.read_since(from, to).await
            }
        }
    }

    /// Only `columns` of the snapshot at `version` (latest when `None`), from only the
    /// files whose partition values `keep` accepts: what a lookup over a large table
    /// (lineage, say) reads instead of every column of every file. Batches hold the
    /// named columns in the order given; a name the table lacks is an error.
    pub async fn scan(
        &self,
        version: Option<i64>,
        columns: &[&str],
        keep: impl Fn(&HashMap<String, Option<String>>) -> bool,
    ) -> Result<Vec<RecordBatch>> {
        let t = self.at_version(version).await?;
        let full = t.snapshot()?.snapshot().arrow_schema();
        let mut fields = Vec::with_capacity(columns.len());
        for c in columns {
            let f = full
                .field_with_name(c)
                .map_err(|_| LakeError::Schema(format!("{}: no column named {c}", self.url())))?;
            fields.push(f.clone());
        }
        let schema: SchemaRef =
            std::sync::Arc::new(deltalake::arrow::datatypes::Schema::new(fields));
        let mut out = Vec::new();
        for f in live_files(&t)? {
            if keep(&f.partition) {
                out.extend(read_file_columns(&t, &f.path, &f.partition, &schema, true).await?);
            }
        }
        Ok(out)
    }

    /// Rows of the snapshot at `version`, at most `limit`, as JSON objects.
    pub async fn head(&self, version: Option<i64>, limit: usize) -> Result<Vec<serde_json::Value>> {
        let mut rows = Vec::new();
        let t = self.at_version(version).await?;
        let schema = t.snapshot()?.snapshot().arrow_schema();
        for f in live_files(&t)? {
            if rows.len() >= limit {
                break;
            }
            for b in read_file(&t, &f.path, &f.partition, &schema).await? {
                let mut buf = Vec::new();
                {
                    let mut w = deltalake::arrow::json::ArrayWriter::new(&mut buf);
                    w.write(&b.slice(0, b.num_rows().min(limit - rows.len())))?;
                    w.finish()?;
                }
                let v: Vec<serde_json::Value> =
                    serde_json::from_slice(&buf).map_err(|e| LakeError::Schema(e.to_string()))?;
                rows.extend(v);
                if rows.len() >= limit {
                    break;
                }
            }
        }
        Ok(rows)
    }
}
