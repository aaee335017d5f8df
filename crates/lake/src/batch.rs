//! Rows of [`Value`]s to Arrow record batches, column by column.

use crate::error::Result;
use deltalake::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use deltalake::arrow::datatypes::{
    DataType, Field as ArrowField, Schema as ArrowSchema, SchemaRef, TimeUnit,
};
use deltalake::arrow::record_batch::RecordBatch;
use freshet_core::{FieldType, Schema, Value};
use std::sync::Arc;

/// The Arrow type Delta uses for a column type.
pub fn arrow_type(t: FieldType) -> DataType {
    match t {
        FieldType::String => DataType::Utf8,
        FieldType::Int => DataType::Int64,
        FieldType::Float => DataType::Float64,
        FieldType::Bool => DataType::Boolean,
        FieldType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        FieldType::Date => DataType::Date32,
    }
}

/// The Arrow schema of a table's columns (all nullable).
pub fn arrow_schema_for(schema: &Schema) -> SchemaRef {
    Arc::new(ArrowSchema::new(
        schema
            .fields()
            .iter()
            .map(|f| ArrowField::new(&f.name, arrow_type(f.ty), true))
            .collect::<Vec<_>>(),
    ))
}

enum Column {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
}

impl Column {
    fn new(t: FieldType, cap: usize) -> Self {
        match t {
            FieldType::String => Column::Str(StringBuilder::with_capacity(cap, cap * 16)),
            FieldType::Int => Column::Int(Int64Builder::with_capacity(cap)),
            FieldType::Float => Column::Float(Float64Builder::with_capacity(cap)),
            FieldType::Bool => Column::Bool(BooleanBuilder::with_capacity(cap)),
            FieldType::Timestamp => {
                Column::Ts(TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC"))
            }
            FieldType::Date => Column::Date(Date32Builder::with_capacity(cap)),
        }
    }

    /// Values were typed by the validator; anything else is stored as null.
    fn push(&mut self, v: &Value) {
        match (self, v) {
            (Column::Str(b), Value::Str(s)) => b.append_value(s),
            (Column::Int(b), Value::Int(i)) => b.append_value(*i),
            (Column::Float(b), Value::Float(f)) => b.append_value(*f),
            (Column::Float(b), Value::Int(i)) => b.append_value(*i as f64),
            (Column::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Column::Ts(b), Value::Timestamp(t)) => b.append_value(*t),
            (Column::Date(b), Value::Date(d)) => b.append_value(*d),
            (Column::Str(b), _) => b.append_null(),
            (Column::Int(b), _) => b.append_null(),
            (Column::Float(b), _) => b.append_null(),
            (Column::Bool(b), _) => b.append_null(),
            (Column::Ts(b), _) => b.append_null(),
            (Column::Date(b), _) => b.append_null(),
        }
    }

    fn push_str(&mut self, s: &str) {
        if let Column::Str(b) = self {
            b.append_value(s)
        } else {
            self.push(&Value::Null)
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Str(b) => Arc::new(b.finish()),
            Column::Int(b) => Arc::new(b.finish()),
            Column::Float(b) => Arc::new(b.finish()),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Ts(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
        }
    }
}

/// Builds one record batch for a table schema, value by value.
pub struct RowBatchBuilder {
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
}

impl RowBatchBuilder {
    pub fn new(schema: &Schema, capacity: usize) -> Self {
        Self {
            schema: arrow_schema_for(schema),
            columns: schema
                .fields()
                .iter()
                .map(|f| Column::new(f.ty, capacity))
                .collect(),
            rows: 0,
        }
    }

    /// Append a value to column `col`. Callers append to every column once per row and
    /// then call [`end_row`](Self::end_row).
    pub fn push(&mut self, col: usize, v: &Value) {
        if let Some(c) = self.columns.get_mut(col) {
            c.push(v);
        }
    }

    /// Append a string without building a [`Value`].
    pub fn push_str(&mut self, col: usize, s: &str) {
        if let Some(c) = self.columns.get_mut(col) {
            c.push_str(s);
        }
    }

    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn finish(mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(Column::finish).collect();
        Ok(RecordBatch::try_new(self.schema, arrays)?)
    }
}
