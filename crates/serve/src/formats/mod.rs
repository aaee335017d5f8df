//! Scoring request and response formats.
//!
//! The HTTP handlers hand a request body to [`parse_invocations`] (MLflow's
//! `/invocations` formats: `dataframe_split`, `dataframe_records`, `instances`, `inputs`,
//! and CSV) or [`parse_oip`] (Open Inference Protocol v2 `infer`; binary tensor data is
//! first made plain JSON by [`oip_binary`]), and get back rows of
//! [`Value`]s in the order of the model's [`InputColumn`]s, each already coerced with
//! [`FieldType::coerce`] — the same coercions ingest applies, so a value is read the same
//! way at training and at serving time. They answer with [`render_invocations`],
//! [`render_oip`] or [`render_oip_metadata`].
//!
//! Semantics shared by every format:
//!
//! - Every model column must be present and no other column may be (a misspelt column
//!   would otherwise silently score as missing). A present column whose value is JSON
//!   `null`, an empty CSV cell, or absent from one record of a list of records, is
//!   [`Value::Null`]: the feature pipeline's missing-value handling applies.
//! - Errors ([`FormatError`]) name the column, key or row and the problem, never the
//!   value, which may be personal data. They are client errors: see
//!   [`FormatError::status_code`].
//! - Parsing streams through `serde_json` without building a `serde_json::Value` tree and
//!   stops at the first problem, so an oversized request costs no more than
//!   [`Limits::max_rows`] rows of memory.
//! - Rendering serialises borrowed structs straight to bytes; the same answer always
//!   gives the same bytes (shadow comparisons rely on it).

mod assemble;
mod csv;
mod error;
mod json;
mod mlflow;
mod oip;
pub mod oip_binary;
mod render;
#[cfg(test)]
mod testutil;

pub use error::FormatError;
pub use mlflow::parse_invocations;
pub use oip::parse_oip;
pub use render::{render_invocations, render_oip, render_oip_metadata};

use freshet_core::{FieldType, Value};

/// One input column a model reads: its name and the type it is coerced to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputColumn {
    pub name: String,
    pub ty: FieldType,
}

impl InputColumn {
    pub fn new(name: impl Into<String>, ty: FieldType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// Bounds on one request, so that one body cannot hold a scoring worker for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most rows one request may carry; more is [`FormatError::TooManyRows`] (HTTP 413).
    pub max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_rows: 10_000 }
    }
}

/// Which wire format a request arrived in (for metrics and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestFormat {
    DataframeSplit,
    DataframeRecords,
    Instances,
    Inputs,
    Csv,
    Oip,
}

impl RequestFormat {
    /// A stable label, e.g. for a Prometheus `format` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestFormat::DataframeSplit => "dataframe_split",
            RequestFormat::DataframeRecords => "dataframe_records",
            RequestFormat::Instances => "instances",
            RequestFormat::Inputs => "inputs",
            RequestFormat::Csv => "csv",
            RequestFormat::Oip => "oip",
        }
    }
}

/// A parsed scoring request.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringRequest {
    /// One row per record, values in the order of the model's columns, coerced to their
    /// types; never empty, at most [`Limits::max_rows`].
    pub rows: Vec<Vec<Value>>,
    /// The caller's own id for the request (`client_request_id`, or OIP's `id`), echoed
    /// in the response and recorded in the inference table.
    pub client_request_id: Option<String>,
    /// A key that pins the caller to one variant (same key, same variant).
    pub routing_key: Option<String>,
    pub format: RequestFormat,
}

/// One prediction to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The predicted label (a class's label value) or the regression value.
    pub label: Value,
    /// Class probabilities indexed like [`ScoringAnswer::classes`]; `None` for regression.
    pub proba: Option<Vec<f64>>,
}

/// Everything a scoring response says.
#[derive(Debug, Clone, Copy)]
pub struct ScoringAnswer<'a> {
    /// Freshet's id for the request.
    pub request_id: &'a str,
    pub client_request_id: Option<&'a str>,
    pub model: &'a str,
    pub version: i64,
    /// Class index → label value; empty for a regressor (then no probabilities are
    /// rendered).
    pub classes: &'a [Value],
    pub predictions: &'a [Prediction],
}

/// Caller-supplied ids are stored and echoed; past this many bytes they are refused.
pub const MAX_ID_BYTES: usize = 256;
