//! The MLflow REST wire format (`/api/2.0/mlflow/...`): request bodies and response
//! shapes, kept apart from HTTP so that the server's handlers stay thin.

use crate::model::{Experiment, Metric, Param, Run, RunInfo, Tag};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn tags_json(tags: &[Tag]) -> Value {
    Value::Array(
        tags.iter()
            .map(|t| json!({ "key": t.key, "value": t.value }))
            .collect(),
    )
}

/// Experiment as MLflow serialises it.
pub fn experiment_json(e: &Experiment) -> Value {
    json!({
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": e.artifact_location,
        "lifecycle_stage": e.lifecycle_stage.as_str(),
        "creation_time": e.creation_time,
        "last_update_time": e.last_update_time,
        "tags": tags_json(&e.tags),
    })
}

/// A metric as MLflow serialises it, written straight to the output (no JSON tree):
/// metric history answers carry tens of thousands of them.
#[derive(Debug, Serialize)]
pub struct MetricOut<'a> {
    pub key: &'a str,
    pub value: MetricValueOut,
    pub timestamp: i64,
    pub step: i64,
}

/// JSON has no NaN or infinities; those travel as MLflow's strings.
#[derive(Debug)]
pub struct MetricValueOut(pub f64);

impl Serialize for MetricValueOut {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

impl<'a> From<&'a Metric> for MetricOut<'a> {
    fn from(m: &'a Metric) -> Self {
        MetricOut {
            key: &m.key,
            value: MetricValueOut(m.value),
            timestamp: m.timestamp,
            step: m.step,
        }
    }
}

/// A run as MLflow serialises it, written straight to the output (search answers
/// carry up to thousands of runs).
#[derive(Debug, Serialize)]
pub struct RunOut<'a> {
    pub info: RunInfoOut<'a>,
    pub data: RunDataOut<'a>,
    pub inputs: Empty,
}

#[derive(Debug, Serialize)]
pub struct RunInfoOut<'a> {
    pub run_id: &'a str,
    pub run_uuid: &'a str,
    pub run_name: &'a str,
    pub experiment_id: &'a str,
    pub user_id: &'a str,
    pub status: &'static str,
    pub start_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    pub artifact_uri: &'a str,
    pub lifecycle_stage: &'static str,
}

#[derive(Debug, Serialize)]
pub struct RunDataOut<'a> {
    pub metrics: Vec<MetricOut<'a>>,
    pub params: &'a [Param],
    pub tags: &'a [Tag],
}

impl<'a> From<&'a RunInfo> for RunInfoOut<'a> {
    fn from(i: &'a RunInfo) -> Self {
        RunInfoOut {
            run_id: &i.run_id,
            // The deprecated name older clients still read.
            run_uuid: &i.run_id,
            run_name: &i.run_name,
            experiment_id: &i.experiment_id,
            user_id: &i.user_id,
            status: i.status.as_str(),
            start_time: i.start_time,
            end_time: i.end_time,
            artifact_uri: &i.artifact_uri,
            lifecycle_stage: i.lifecycle_stage.as_str(),
        }
    }
}

impl<'a> From<&'a Run> for RunOut<'a> {
    fn from(r: &'a Run) -> Self {
        RunOut {
            info: RunInfoOut::from(&r.info),
            data: RunDataOut {
                metrics: r.data.metrics.iter().map(MetricOut::from).collect(),
                params: &r.data.params,
                tags: &r.data.tags,
            },
            inputs: Empty {},
        }
    }
}

/// The answer of `runs/search`.
#[derive(Debug, Serialize)]
pub struct SearchRunsOut<'a> {
    pub runs: Vec<RunOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// The answer of `metrics/get-history`.
#[derive(Debug, Serialize)]
pub struct HistoryOut<'a> {
    pub metrics: Vec<MetricOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// A key/value pair in a request.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl From<KeyValue> for Tag {
    fn from(k: KeyValue) -> Self {
        Tag {
            key: k.key,
            value: k.value,
        }
    }
}
impl From<KeyValue> for Param {
    fn from(k: KeyValue) -> Self {
        Param {
            key: k.key,
            value: k.value,
        }
    }
}

/// A metric value in a request: a number, or MLflow's "NaN"/"Infinity" strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MetricValue {
    Number(f64),
    Text(String),
}

impl MetricValue {
    pub fn to_f64(&self) -> Option<f64> {
        match self {
            MetricValue::Number(v) => Some(*v),
            MetricValue::Text(s) => match s.as_str() {
                "NaN" | "nan" => Some(f64::NAN),
                "Infinity" | "inf" => Some(f64::INFINITY),
                "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricIn {
    pub key: String,
    pub value: MetricValue,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub step: Option<i64>,
    /// MLflow 3: the logged model the metric is about (it shows on that model too).
    #[serde(default)]
    pub model_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CreateExperiment {
    pub name: String,
    #[serde(default)]
    pub artifact_location: Option<String>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Deserialize)]
pub struct ExperimentRef {
    pub experiment_id: String,
}

#[derive(Debug, Deserialize)]
pub struct UpdateExperiment {
    pub experiment_id: String,
    pub new_name: String,
}

#[derive(Debug, Deserialize)]
pub struct SetExperimentTag {
    pub experiment_id: String,
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct DeleteExperimentTag {
    pub experiment_id: String,
    pub key: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchExperiments {
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub page_token: Option<String>,
    #[serde(default)]
    pub view_type: Option<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub order_by: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct CreateRun {
    #[serde(default)]
    pub experiment_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub run_name: Option<String>,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Deserialize)]
pub struct RunRef {
    pub run_id: String,
}

#[derive(Debug, Deserialize)]
pub struct UpdateRun {
    pub run_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub run_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LogMetric {
    pub run_id: String,
    pub key: String,
    pub value: MetricValue,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub step: Option<i64>,
    #[serde(default)]
    pub model_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LogKeyValue {
    pub run_id: String,
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct DeleteTag {
    pub run_id: String,
    pub key: String,
}

#[derive(Debug, Deserialize)]
pub struct LogBatch {
    pub run_id: String,
    #[serde(default)]
    pub metrics: Vec<MetricIn>,
    #[serde(default)]
    pub params: Vec<KeyValue>,
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchRuns {
    #[serde(default)]
    pub experiment_ids: Vec<String>,
    #[serde(default)]
    pub filter: Option<String>,
    #[serde(default)]
    pub run_view_type: Option<String>,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub order_by: Vec<String>,
    #[serde(default)]
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GetHistory {
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_uuid: Option<String>,
    pub metric_key: String,
    #[serde(default)]
    pub max_results: Option<i64>,
    #[serde(default)]
    pub page_token: Option<String>,
}

/// The metrics of `input` that name a logged model, with the model, converted as
/// [`metrics_from`] does.
pub fn model_metrics_from(
    input: &[MetricIn],
    now_ms: i64,
) -> Result<Vec<(String, Metric)>, crate::RegistryError> {
    input
        .iter()
        .filter_map(|m| {
            m.model_id
                .clone()
                .filter(|id| !id.is_empty())
                .map(|id| (id, m))
        })
        .map(|(id, m)| {
            let value = m.value.to_f64().ok_or_else(|| {
                crate::RegistryError::InvalidParameter(format!(
                    "Got invalid value for metric '{}'",
                    m.key
                ))
            })?;
            Ok((
                id,
                Metric {
                    key: m.key.clone(),
                    value,
                    timestamp: m.timestamp.unwrap_or(now_ms),
                    step: m.step.unwrap_or(0),
                },
            ))
        })
        .collect()
}

/// Convert request metrics, filling MLflow's defaults (timestamp now, step 0).
pub fn metrics_from(
    input: Vec<MetricIn>,
    now_ms: i64,
) -> Result<Vec<Metric>, crate::RegistryError> {
    input
        .into_iter()
        .map(|m| {
            let value = m.value.to_f64().ok_or_else(|| {
                crate::RegistryError::InvalidParameter(format!(
                    "Got invalid value for metric '{}'",
                    m.key
                ))
            })?;
            Ok(Metric {
                key: m.key,
                value,
                timestamp: m.timestamp.unwrap_or(now_ms),
                step: m.step.unwrap_or(0),
            })
        })
        .collect()
}

/// Empty JSON object, MLflow's answer to most writes.
#[derive(Debug, Default, Serialize)]
pub struct Empty {}
