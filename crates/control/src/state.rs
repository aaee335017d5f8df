//! The controller's state per model, kept in the registry as the registered model's
//! tag `freshet.control` so that it survives restarts and MLflow clients can read it.

use crate::error::{ControlError, Result};
use freshet_registry::model::Tag;
use freshet_registry::{RegistryError, Store};
use serde::{Deserialize, Serialize};

/// The tag holding the state.
pub const TAG: &str = "freshet.control";
/// Jobs remembered in the state (older ones are in the registry's runs).
const HISTORY: usize = 12;
/// How often a rejected answer to one drift is trained again.
pub const MAX_DRIFT_RETRIES: u32 = 3;

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A training job: persisted before it runs, so that a restart runs it again on the
/// same pinned table version instead of losing or repeating it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub id: String,
    pub trigger: String,
    /// The Delta version of the stream's table the job trains from.
    pub table_version: i64,
    /// Train only on rows after this many (the rows since a drift), if set.
    pub skip_rows: Option<u64>,
    pub started_ms: i64,
}

/// What a finished job did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub trigger: String,
    pub table_version: i64,
    pub started_ms: i64,
    pub finished_ms: i64,
    /// The version registered, if training got that far.
    pub version: Option<i64>,
    pub outcome: String,
}

/// Everything the controller remembers about one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ControlState {
    /// Rows in the table at the version the last job trained from.
    pub trained_rows: u64,
    pub trained_table_version: Option<i64>,
    pub trained_ms: i64,
    /// A job that has started and not finished.
    pub job: Option<JobState>,
    /// A trigger that fired during a job, to run once it ends.
    pub pending: Option<String>,
    /// Rows in the table when a drift was detected; training waits for enough rows
    /// after it so that the new version learns the new concept.
    pub drift_at_rows: Option<u64>,
    pub drift_reason: Option<String>,
    /// Rows in the table when the concept now in force began (the last drift point a
    /// job trained from): later jobs never reach back before it, so a retraining
    /// after a drift does not mix the old concept back in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concept_start_rows: Option<u64>,
    /// Retrainings after the current drift whose candidates the gates rejected. A
    /// rejected answer to a drift is retried on rows of the new concept only, up to
    /// [`MAX_DRIFT_RETRIES`] times; a new drift starts the count again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drift_retries: u32,
    pub history: Vec<JobRecord>,
}

impl ControlState {
    pub fn record(&mut self, r: JobRecord) {
        self.history.push(r);
        if self.history.len() > HISTORY {
            let extra = self.history.len() - HISTORY;
            self.history.drain(..extra);
        }
    }
}

/// The state of `model`; the default when it has none yet (or no registered model).
pub fn load(store: &dyn Store, model: &str) -> Result<ControlState> {
    match store.get_registered_model(model) {
        Ok(m) => from_tags(model, &m.tags),
        Err(RegistryError::NotFound(_)) => Ok(ControlState::default()),
        Err(e) => Err(e.into()),
    }
}

/// The state held in a registered model's tags (the default without the tag).
pub fn from_tags(model: &str, tags: &[freshet_registry::model::Tag]) -> Result<ControlState> {
    match tags.iter().find(|t| t.key == TAG) {
        Some(t) => serde_json::from_str(&t.value).map_err(|e| ControlError::BadState {
            model: model.to_string(),
            reason: e.to_string(),
        }),
        None => Ok(ControlState::default()),
    }
}

/// Save the state (creating the registered model if needed).
pub fn save(store: &dyn Store, model: &str, state: &ControlState) -> Result<()> {
    let mut s = state.clone();
    let mut value = serde_json::to_string(&s).unwrap_or_default();
    // Tag values are limited; the oldest history goes first.
    while value.len() > freshet_registry::limits::MAX_TAG_VALUE_LENGTH && !s.history.is_empty() {
        s.history.remove(0);
        value = serde_json::to_string(&s).unwrap_or_default();
    }
    match store.create_registered_model(model, &[], None) {
        Ok(_) | Err(RegistryError::AlreadyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    store.set_registered_model_tag(
        model,
        &Tag {
            key: TAG.into(),
            value,
        },
    )?;
    Ok(())
}
