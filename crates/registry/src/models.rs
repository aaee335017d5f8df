//! The model side of the registry: logged models (MLflow 3's unit of a saved model),
//! registered models, their numbered versions, aliases and tags. Each type serialises
//! exactly as MLflow's REST API returns it, so handlers return them unchanged.

use crate::model::{Param, Tag};
use serde::{Deserialize, Serialize, Serializer};

/// A logged model's upload state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoggedModelStatus {
    #[serde(rename = "LOGGED_MODEL_PENDING")]
    Pending,
    #[serde(rename = "LOGGED_MODEL_READY")]
    Ready,
    #[serde(rename = "LOGGED_MODEL_UPLOAD_FAILED")]
    UploadFailed,
}

impl LoggedModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
            LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
            LoggedModelStatus::UploadFailed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }

    /// Clients send the enum by name, or by its protobuf number.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "LOGGED_MODEL_PENDING" | "1" => LoggedModelStatus::Pending,
            "LOGGED_MODEL_READY" | "2" => LoggedModelStatus::Ready,
            "LOGGED_MODEL_UPLOAD_FAILED" | "3" => LoggedModelStatus::UploadFailed,
            _ => return None,
        })
    }
}

/// A registered model version's place in the (legacy) stage workflow. Aliases
/// (`champion`, `challenger`) are the current way to point at versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    None,
    Staging,
    Production,
    Archived,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::None => "None",
            Stage::Staging => "Staging",
            Stage::Production => "Production",
            Stage::Archived => "Archived",
        }
    }

    /// Stage names are case-insensitive in MLflow.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" => Stage::None,
            "staging" => Stage::Staging,
            "production" => Stage::Production,
            "archived" => Stage::Archived,
            _ => return None,
        })
    }
}

/// Where a registered version's model lives: `name` and `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub name: String,
    #[serde(serialize_with = "version_string")]
    pub version: i64,
}

/// A model saved by a run (or on its own), with its own artifact location.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModel {
    pub info: LoggedModelInfo,
    pub data: LoggedModelData,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    pub name: String,
    pub creation_timestamp_ms: i64,
    pub last_updated_timestamp_ms: i64,
    pub artifact_uri: String,
    pub status: LoggedModelStatus,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source_run_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    pub tags: Vec<Tag>,
    pub registrations: Vec<Registration>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LoggedModelData {
    pub params: Vec<Param>,
    pub metrics: Vec<LoggedModelMetric>,
}

/// A metric logged against a model (a run metric that names the model).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedModelMetric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    pub step: i64,
    pub run_id: String,
    pub model_id: String,
}

/// What a new logged model starts with.
#[derive(Debug, Clone, Default)]
pub struct NewLoggedModel {
    pub experiment_id: String,
    pub name: Option<String>,
    pub model_type: Option<String>,
    pub source_run_id: Option<String>,
    pub params: Vec<Param>,
    pub tags: Vec<Tag>,
}

/// An alias pointing at a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alias {
    pub alias: String,
    #[serde(serialize_with = "version_string")]
    pub version: i64,
}

/// A registered model: a name under which versions are numbered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisteredModel {
    pub name: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub tags: Vec<Tag>,
    pub aliases: Vec<Alias>,
    /// The newest version in each stage.
    pub latest_versions: Vec<ModelVersion>,
}

/// One move of an alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliasChange {
    pub alias: String,
    /// The version it points at from then on; `None`: the alias was removed.
    pub version: Option<i64>,
    /// When (Unix ms); `None` when it was set before the registry kept this history.
    pub at_ms: Option<i64>,
}

/// One numbered version of a registered model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelVersion {
    pub name: String,
    #[serde(serialize_with = "version_string")]
    pub version: i64,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    pub current_stage: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// What the client registered (`runs:/…`, `models:/m-…` or a URI).
    pub source: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub run_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub model_id: String,
    /// Versions are ready as soon as they are created: the files are already stored.
    pub status: &'static str,
    pub tags: Vec<Tag>,
    pub aliases: Vec<String>,
    /// Where the files are: `source` resolved to an artifact URI.
    #[serde(skip)]
    pub storage_location: String,
}

/// What a new version is made from.
#[derive(Debug, Clone, Default)]
pub struct NewModelVersion {
    pub name: String,
    pub source: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub description: Option<String>,
    pub model_id: Option<String>,
    pub tags: Vec<Tag>,
    pub user_id: Option<String>,
}

/// A search over registered models or versions.
#[derive(Debug, Clone, Default)]
pub struct ModelQuery {
    pub filter: String,
    pub max_results: usize,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

fn version_string<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_travel_as_strings_like_mlflow() {
        let a = Alias {
            alias: "champion".into(),
            version: 3,
        };
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"alias": "champion", "version": "3"})
        );
    }

    #[test]
    fn enums_parse_by_name_and_number() {
        assert_eq!(
            LoggedModelStatus::parse("2"),
            Some(LoggedModelStatus::Ready)
        );
        assert_eq!(Stage::parse("PRODUCTION"), Some(Stage::Production));
        assert_eq!(Stage::parse("live"), None);
    }
}
