//! Arrow record batches back to rows of [`Value`]s laid out by a schema: what training
//! and batch scoring read, through the same value model ingest wrote.

use crate::error::{LakeError, Result};
use crate::table::Table;
use deltalake::arrow::array::{
    Array, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use deltalake::arrow::compute::cast;
use deltalake::arrow::record_batch::RecordBatch;
use freshet_core::{FieldType, Schema, Value};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

fn column_values(batch: &RecordBatch, name: &str, ty: FieldType) -> Result<Vec<Value>> {
    let n = batch.num_rows();
    let Some(col) = batch.column_by_name(name) else {
        // A field added to the schema after these rows were written reads as null.
        return Ok(vec![Value::Null; n]);
    };
    let want = crate::batch::arrow_type(ty);
    let col = if col.data_type() == &want {
        col.clone()
    } else {
        cast(col, &want)?
    };
    let mismatch = || LakeError::Schema(format!("column '{name}' is not {ty:?}"));
    macro_rules! read {
        ($arr:ty, $wrap:expr) => {{
            let a = col.as_any().downcast_ref::<$arr>().ok_or_else(mismatch)?;
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        Value::Null
                    } else {
                        $wrap(a.value(i))
                    }
                })
                .collect()
        }};
    }
    Ok(match ty {
        FieldType::String => read!(StringArray, |s: &str| Value::Str(s.to_string())),
        FieldType::Int => read!(Int64Array, Value::Int),
        FieldType::Float => read!(Float64Array, Value::Float),
        FieldType::Bool => read!(BooleanArray, Value::Bool),
        FieldType::Timestamp => read!(TimestampMicrosecondArray, Value::Timestamp),
        FieldType::Date => read!(Date32Array, Value::Date),
    })
}

/// A table's columns as a Freshet schema (the table is the authority on what was
/// written). Column types Freshet does not write read as strings.
pub fn schema_of(arrow: &deltalake::arrow::datatypes::Schema) -> Schema {
    use deltalake::arrow::datatypes::DataType;
    Schema::new(
        arrow
            .fields()
            .iter()
            .map(|f| {
                let ty = match f.data_type() {
                    DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                        FieldType::Int
                    }
                    DataType::Float32 | DataType::Float64 => FieldType::Float,
                    DataType::Boolean => FieldType::Bool,
                    DataType::Timestamp(..) => FieldType::Timestamp,
                    DataType::Date32 | DataType::Date64 => FieldType::Date,
                    _ => FieldType::String,
                };
                freshet_core::Field::new(f.name().clone(), ty)
            })
            .collect(),
    )
}

/// The rows of `batch`, one `Vec<Value>` per row in `schema`'s field order.
pub fn batch_rows(batch: &RecordBatch, schema: &Schema) -> Result<Vec<Vec<Value>>> {
    let n = batch.num_rows();
    let mut rows: Vec<Vec<Value>> = (0..n)
        .map(|_| Vec::with_capacity(schema.fields().len()))
        .collect();
    for f in schema.fields() {
        for (row, v) in rows.iter_mut().zip(column_values(batch, &f.name, f.ty)?) {
            row.push(v);
        }
    }
    Ok(rows)
}

/// A row's rank in a window read: its two order columns (a null or missing one ranks
/// first, as `i64::MIN`).
type RankKey = (i64, i64);

/// The order keys of `batch`'s rows: each of `order` cast to a 64-bit integer
/// (timestamps to their microseconds).
fn rank_keys(batch: &RecordBatch, order: [&str; 2]) -> Result<Vec<RankKey>> {
    let n = batch.num_rows();
    let column = |name: &str| -> Result<Vec<i64>> {
        let Some(col) = batch.column_by_name(name) else {
            return Ok(vec![i64::MIN; n]);
        };
        let col = cast(col, &deltalake::arrow::datatypes::DataType::Int64)?;
        let a = col
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| LakeError::Schema(format!("column '{name}' is not an integer")))?;
        Ok((0..n)
            .map(|i| if a.is_null(i) { i64::MIN } else { a.value(i) })
            .collect())
    };
    let (a, b) = (column(order[0])?, column(order[1])?);
    Ok(a.into_iter().zip(b).collect())
}

impl Table {
    /// The rows of the snapshot at `version` (latest when `None`) ranked by the two
    /// `order` columns, ascending: without the first `skip`, at most the newest
    /// `keep`, in rank order (ties in file order). Memory holds at most `keep` order keys
    /// and the rows kept, so a training window over a table many times its size costs
    /// the window, not the table: a first pass reads only the order columns, the second
    /// only the files holding a kept row.
    pub async fn read_rows_window(
        &self,
        version: Option<i64>,
        schema: &Schema,
        order: [&str; 2],
        skip: usize,
        keep: usize,
    ) -> Result<Vec<Vec<Value>>> {
        use deltalake::arrow::compute::filter_record_batch;
        use deltalake::arrow::datatypes::Schema as ArrowSchema;
        let t = self.at_version(version).await?;
        let full = t.snapshot()?.snapshot().arrow_schema();
        let files = crate::read::live_files(&t)?;
        let key_fields: Vec<_> = order
            .iter()
            .filter_map(|c| full.field_with_name(c).ok().cloned())
            .collect();
        let key_schema = std::sync::Arc::new(ArrowSchema::new(key_fields));
        // Pass 1: the newest `keep` keys (a bounded heap), every file's greatest, and
        // the count.
        let mut newest: BinaryHeap<Reverse<RankKey>> = BinaryHeap::new();
        let mut file_max: Vec<Option<RankKey>> = Vec::with_capacity(files.len());
        let mut n = 0usize;
        for f in &files {
            let mut max = None;
            for b in
                crate::read::read_file_columns(&t, &f.path, &f.partition, &key_schema, true).await?
            {
                for k in rank_keys(&b, order)? {
                    n += 1;
                    max = max.max(Some(k));
                    if keep == 0 {
                        continue;
                    }
                    if newest.len() < keep {
                        newest.push(Reverse(k));
                    } else if newest.peek().is_some_and(|Reverse(low)| k > *low) {
                        newest.pop();
                        newest.push(Reverse(k));
                    }
                }
            }
            file_max.push(max);
        }
        // The rows wanted are the newest `n - max(skip, n - keep)`; the heap holds the
        // newest `min(keep, n)`, so the threshold (the lowest wanted key) is in it.
        let want = n.saturating_sub(skip).min(keep);
        if want == 0 {
            return Ok(Vec::new());
        }
        let mut top: Vec<RankKey> = newest.into_iter().map(|Reverse(k)| k).collect();
        top.sort_unstable_by(|a, b| b.cmp(a));
        let threshold = top[want - 1];
        drop(top);
        // Pass 2: the rows ranked at or after the threshold.
        let mut kept: Vec<(RankKey, Vec<Value>)> = Vec::with_capacity(want);
        for (f, max) in files.iter().zip(file_max) {
            if max.is_none_or(|m| m < threshold) {
                continue;
            }
            for b in crate::read::read_file(&t, &f.path, &f.partition, &full).await? {
                let k = rank_keys(&b, order)?;
                let mask: BooleanArray = k.iter().map(|k| Some(*k >= threshold)).collect();
                let b = filter_record_batch(&b, &mask)?;
                let k = k.into_iter().filter(|k| *k >= threshold);
                kept.extend(k.zip(batch_rows(&b, schema)?));
            }
        }
        kept.sort_by_key(|(k, _)| *k);
        // Rows tied with the threshold may be more than the rank allows: the earliest go.
        let extra = kept.len().saturating_sub(want);
        Ok(kept.into_iter().skip(extra).map(|(_, r)| r).collect())
    }

    /// Every row of the snapshot at `version` (latest when `None`) as values laid out
    /// by `schema`.
    pub async fn read_rows(
        &self,
        version: Option<i64>,
        schema: &Schema,
    ) -> Result<Vec<Vec<Value>>> {
        let mut out = Vec::new();
        for b in self.read(version).await? {
            out.extend(batch_rows(&b, schema)?);
        }
        Ok(out)
    }
}
