//! Scoring responses, serialised from borrowed structs straight into bytes.
//!
//! Field order is fixed by the structs and floats are written by serde_json's shortest
//! round-trip formatting, so the same answer always renders to the same bytes. A
//! non-finite number (a NaN probability, an infinite regression value) is written as
//! `null`: JSON has no NaN and clients would reject the whole body.

use super::oip::Datatype;
use super::{InputColumn, Prediction, ScoringAnswer};
use freshet_core::{FieldType, Value};
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};
use std::fmt;

/// The MLflow-style answer:
///
/// ```json
/// {"predictions": [...], "probabilities": [[...], ...], "classes": [...],
///  "request_id": "...", "client_request_id": "...", "model": "fraud", "version": "3"}
/// ```
///
/// `probabilities` and `classes` are present for classifiers only (non-empty
/// `classes`); each probability row has exactly one entry per class (`null` where the
/// model gave none). `client_request_id` is present when the caller sent one.
pub fn render_invocations(a: &ScoringAnswer) -> Vec<u8> {
    let classifier = !a.classes.is_empty();
    to_bytes(
        &InvocationsBody {
            predictions: Labels(a.predictions),
            probabilities: classifier.then_some(ProbaRows {
                predictions: a.predictions,
                k: a.classes.len(),
            }),
            classes: classifier.then_some(Scalars(a.classes)),
            request_id: a.request_id,
            client_request_id: a.client_request_id,
            model: a.model,
            version: Version(a.version),
        },
        a.predictions.len(),
        a.classes.len(),
    )
}

/// The Open Inference Protocol v2 answer:
///
/// ```json
/// {"model_name": "fraud", "model_version": "3", "id": "<the caller's id, else Freshet's>",
///  "parameters": {"request_id": "<Freshet's request id>", "client_request_id": "..."},
///  "outputs": [{"name": "predictions", "shape": [n], "datatype": "BOOL", "data": [...]},
///              {"name": "probabilities", "shape": [n, k], "datatype": "FP64", "data": [...]}]}
/// ```
///
/// The predictions' datatype follows the labels (see [`label_datatype`]); the
/// probabilities tensor is present for classifiers only, flattened row-major.
pub fn render_oip(a: &ScoringAnswer) -> Vec<u8> {
    let n = a.predictions.len();
    let k = a.classes.len();
    let datatype = label_datatype(a.classes, a.predictions, a.classes.is_empty());
    to_bytes(
        &OipBody {
            model_name: a.model,
            model_version: Version(a.version),
            // The protocol: a request's `id` comes back as the answer's. Freshet's own
            // id (lineage, feedback) is always in the parameters.
            id: a.client_request_id.unwrap_or(a.request_id),
            parameters: OipParameters {
                request_id: a.request_id,
                client_request_id: a.client_request_id,
            },
            outputs: OipOutputs {
                predictions: OipTensor {
                    name: "predictions",
                    shape: [n].as_slice(),
                    datatype: datatype.name(),
                    data: TypedLabels {
                        predictions: a.predictions,
                        datatype,
                    },
                },
                probabilities: (k > 0).then_some(OipTensor {
                    name: "probabilities",
                    shape: [n, k].as_slice(),
                    datatype: Datatype::Fp64.name(),
                    data: FlatProba {
                        predictions: a.predictions,
                        k,
                    },
                }),
            },
        },
        n,
        k,
    )
}

/// OIP model metadata (`GET /v2/models/{model}`):
///
/// ```json
/// {"name": "fraud", "versions": ["1", "2"], "platform": "freshet",
///  "inputs": [{"name": "amount", "datatype": "FP64", "shape": [-1]}, ...],
///  "outputs": [{"name": "predictions", "datatype": "BOOL", "shape": [-1]},
///              {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]}]}
/// ```
///
/// Inputs are described one tensor per column with the datatype to send (timestamps
/// and dates as `BYTES` text). A classifier whose classes are not known yet has a
/// `BYTES` prediction and probabilities of shape `[-1, -1]`.
pub fn render_oip_metadata(
    name: &str,
    versions: &[i64],
    columns: &[InputColumn],
    classes: &[Value],
    regression: bool,
) -> Vec<u8> {
    let mut outputs = vec![MetaTensor {
        name: "predictions",
        datatype: label_datatype(classes, &[], regression).name(),
        shape: vec![-1],
    }];
    if !regression {
        let k = i64::try_from(classes.len()).ok().filter(|k| *k > 0);
        outputs.push(MetaTensor {
            name: "probabilities",
            datatype: Datatype::Fp64.name(),
            shape: vec![-1, k.unwrap_or(-1)],
        });
    }
    to_bytes(
        &MetaBody {
            name,
            versions: Versions(versions),
            platform: "freshet",
            inputs: columns
                .iter()
                .map(|c| MetaTensor {
                    name: &c.name,
                    datatype: input_datatype(c.ty).name(),
                    shape: vec![-1],
                })
                .collect(),
            outputs,
        },
        columns.len(),
        0,
    )
}

/// The OIP datatype of the predictions: `BOOL` when every label is a bool, `INT64`
/// when every one is an int, `FP64` when they are numbers (and always for a
/// regressor), `BYTES` (text) otherwise. The classes decide when there are any, so a
/// classifier's datatype does not change with the answer; nulls do not count.
pub(crate) fn label_datatype(
    classes: &[Value],
    predictions: &[Prediction],
    regression: bool,
) -> Datatype {
    if regression {
        return Datatype::Fp64;
    }
    let mut kinds = (false, false, false, false); // bool, int, float, other
    let mut note = |v: &Value| match v {
        Value::Null => {}
        Value::Bool(_) => kinds.0 = true,
        Value::Int(_) => kinds.1 = true,
        Value::Float(_) => kinds.2 = true,
        _ => kinds.3 = true,
    };
    if classes.is_empty() {
        predictions.iter().for_each(|p| note(&p.label));
    } else {
        classes.iter().for_each(&mut note);
    }
    match kinds {
        (true, false, false, false) => Datatype::Bool,
        (false, true, false, false) => Datatype::Int64,
        (false, _, true, false) => Datatype::Fp64,
        _ => Datatype::Bytes,
    }
}

/// The datatype a client should send for a column.
fn input_datatype(ty: FieldType) -> Datatype {
    match ty {
        FieldType::Float => Datatype::Fp64,
        FieldType::Int => Datatype::Int64,
        FieldType::Bool => Datatype::Bool,
        FieldType::String | FieldType::Timestamp | FieldType::Date => Datatype::Bytes,
    }
}

/// Serialise into a buffer sized for the answer. Serialising these types cannot fail
/// (no maps with non-string keys, no I/O); should it ever, the result is an empty body
/// rather than a panic on the serving path.
fn to_bytes<T: Serialize>(body: &T, rows: usize, classes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + rows * (24 + classes * 24));
    match serde_json::to_writer(&mut out, body) {
        Ok(()) => out,
        Err(e) => {
            debug_assert!(false, "rendering cannot fail: {e}");
            Vec::new()
        }
    }
}

#[derive(Serialize)]
struct InvocationsBody<'a> {
    predictions: Labels<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    probabilities: Option<ProbaRows<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<Scalars<'a>>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_id: Option<&'a str>,
    model: &'a str,
    version: Version,
}

#[derive(Serialize)]
struct OipBody<'a> {
    model_name: &'a str,
    model_version: Version,
    id: &'a str,
    parameters: OipParameters<'a>,
    outputs: OipOutputs<'a>,
}

#[derive(Serialize)]
struct OipParameters<'a> {
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_request_id: Option<&'a str>,
}

/// The output tensors, as a list: predictions, then probabilities if any.
struct OipOutputs<'a> {
    predictions: OipTensor<'a, TypedLabels<'a>>,
    probabilities: Option<OipTensor<'a, FlatProba<'a>>>,
}

impl Serialize for OipOutputs<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(1 + usize::from(self.probabilities.is_some())))?;
        seq.serialize_element(&self.predictions)?;
        if let Some(p) = &self.probabilities {
            seq.serialize_element(p)?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct OipTensor<'a, D> {
    name: &'static str,
    shape: &'a [usize],
    datatype: &'static str,
    data: D,
}

#[derive(Serialize)]
struct MetaBody<'a> {
    name: &'a str,
    versions: Versions<'a>,
    platform: &'static str,
    inputs: Vec<MetaTensor<'a>>,
    outputs: Vec<MetaTensor<'a>>,
}

#[derive(Serialize)]
struct MetaTensor<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: Vec<i64>,
}

/// A model version, written as a string as MLflow and OIP do.
struct Version(i64);

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

struct Versions<'a>(&'a [i64]);

impl Serialize for Versions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|v| Version(*v)))
    }
}

/// A value as JSON: timestamps as RFC 3339 text, dates as `YYYY-MM-DD` (as
/// [`Value::to_json`] writes them), non-finite floats as `null`.
struct Scalar<'a>(&'a Value);

impl Serialize for Scalar<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null | Value::Nested => s.serialize_none(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => serialize_f64(s, *f),
            Value::Str(v) => s.serialize_str(v),
            Value::Timestamp(_) | Value::Date(_) => s.collect_str(&Text(self.0)),
        }
    }
}

fn serialize_f64<S: Serializer>(s: S, f: f64) -> Result<S::Ok, S::Error> {
    if f.is_finite() {
        s.serialize_f64(f)
    } else {
        s.serialize_none()
    }
}

/// A non-null value as text, for `BYTES` tensors.
struct Text<'a>(&'a Value);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Null | Value::Nested => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::Timestamp(t) => match chrono::DateTime::from_timestamp_micros(*t) {
                Some(d) => f.write_str(&d.to_rfc3339()),
                None => write!(f, "{t}"),
            },
            Value::Date(d) => match freshet_core::value::date_from_days(*d) {
                Some(d) => write!(f, "{d}"),
                None => write!(f, "{d}"),
            },
        }
    }
}

struct Scalars<'a>(&'a [Value]);

impl Serialize for Scalars<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(Scalar))
    }
}

/// The predicted labels, as JSON values.
struct Labels<'a>(&'a [Prediction]);

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|p| Scalar(&p.label)))
    }
}

/// The predicted labels as elements of `datatype`; a label the datatype cannot hold
/// is `null`.
struct TypedLabels<'a> {
    predictions: &'a [Prediction],
    datatype: Datatype,
}

impl Serialize for TypedLabels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.predictions.len()))?;
        for p in self.predictions {
            seq.serialize_element(&TypedLabel(&p.label, self.datatype))?;
        }
        seq.end()
    }
}

struct TypedLabel<'a>(&'a Value, Datatype);

impl Serialize for TypedLabel<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.1, self.0) {
            (_, Value::Null | Value::Nested) => s.serialize_none(),
            (Datatype::Bool, Value::Bool(b)) => s.serialize_bool(*b),
            (Datatype::Int64, Value::Int(i)) => s.serialize_i64(*i),
            (Datatype::Fp64, Value::Int(i)) => serialize_f64(s, *i as f64),
            (Datatype::Fp64, Value::Float(f)) => serialize_f64(s, *f),
            (Datatype::Bytes, Value::Str(v)) => s.serialize_str(v),
            (Datatype::Bytes, v) => s.collect_str(&Text(v)),
            _ => s.serialize_none(),
        }
    }
}

/// Probability rows of exactly `k` entries each.
struct ProbaRows<'a> {
    predictions: &'a [Prediction],
    k: usize,
}

impl Serialize for ProbaRows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let k = self.k;
        s.collect_seq(self.predictions.iter().map(|p| ProbaRow {
            proba: p.proba.as_deref(),
            k,
        }))
    }
}

struct ProbaRow<'a> {
    proba: Option<&'a [f64]>,
    k: usize,
}

impl Serialize for ProbaRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.k))?;
        for i in 0..self.k {
            seq.serialize_element(&Proba(proba_at(self.proba, i)))?;
        }
        seq.end()
    }
}

/// All probability rows flattened row-major, `k` entries per row.
struct FlatProba<'a> {
    predictions: &'a [Prediction],
    k: usize,
}

impl Serialize for FlatProba<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.predictions.len() * self.k))?;
        for p in self.predictions {
            for i in 0..self.k {
                seq.serialize_element(&Proba(proba_at(p.proba.as_deref(), i)))?;
            }
        }
        seq.end()
    }
}

fn proba_at(proba: Option<&[f64]>, i: usize) -> Option<f64> {
    proba.and_then(|p| p.get(i)).copied()
}

/// One probability; missing or non-finite is `null`.
struct Proba(Option<f64>);

impl Serialize for Proba {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(f) => serialize_f64(s, f),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests;
