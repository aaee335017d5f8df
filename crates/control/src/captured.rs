//! The columns of captured predictions (`inference/<model>`) read straight from Arrow:
//! the loop reads every captured row once a tick, and decoding only the columns it uses
//! (never the inputs' JSON unless asked) keeps that cheap beside serving.

use freshet_lake::arrow::array::{Array, Int64Array, StringArray};
use freshet_lake::arrow::compute::cast;
use freshet_lake::arrow::datatypes::DataType;
use freshet_lake::arrow::record_batch::RecordBatch;

/// The columns of one batch of captured rows.
pub(crate) struct Captured {
    pub request_id: StringArray,
    pub client_request_id: StringArray,
    pub version: Int64Array,
    pub variant: StringArray,
    pub routing_key: StringArray,
    pub row: Int64Array,
    pub features: StringArray,
    pub prediction: StringArray,
    pub probabilities: StringArray,
}

fn text(b: &RecordBatch, name: &str) -> Option<StringArray> {
    let c = cast(b.column_by_name(name)?, &DataType::Utf8).ok()?;
    c.as_any().downcast_ref::<StringArray>().cloned()
}

fn int(b: &RecordBatch, name: &str) -> Option<Int64Array> {
    let c = cast(b.column_by_name(name)?, &DataType::Int64).ok()?;
    c.as_any().downcast_ref::<Int64Array>().cloned()
}

impl Captured {
    /// The columns of `b`, or `None` when it is not shaped like `inference/<model>`.
    pub fn of(b: &RecordBatch) -> Option<Self> {
        Some(Self {
            request_id: text(b, "request_id")?,
            client_request_id: text(b, "client_request_id")?,
            version: int(b, "version")?,
            variant: text(b, "variant")?,
            routing_key: text(b, "routing_key")?,
            row: int(b, "row")?,
            features: text(b, "features")?,
            prediction: text(b, "prediction")?,
            probabilities: text(b, "probabilities")?,
        })
    }

    /// Row `i` was answered by `version` as `variant`.
    pub fn answered_by(&self, i: usize, version: Option<i64>, variant: &str) -> bool {
        let v_ok = version.is_none_or(|v| !self.version.is_null(i) && self.version.value(i) == v);
        v_ok && !self.variant.is_null(i) && self.variant.value(i) == variant
    }
}

/// The text at row `i`, `None` when null.
pub(crate) fn cell(a: &StringArray, i: usize) -> Option<String> {
    (!a.is_null(i)).then(|| a.value(i).to_string())
}

/// The integer at row `i`, `None` when null.
pub(crate) fn int_cell(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}
