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

impl Table {
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
