//! The storage contract of the tracking registry. Methods are synchronous: the HTTP
//! layer calls them on the blocking pool, never on the async workers.

mod pg;
pub mod postgres;
pub mod postgres_cluster;
mod postgres_models;
pub mod sqlite;
mod sqlite_models;

use crate::error::Result;
use crate::model::{Experiment, Metric, NewRun, Page, Param, Run, RunInfo, RunUpdate, Tag};
use crate::models::{
    AliasChange, LoggedModel, LoggedModelStatus, ModelQuery, ModelVersion, NewLoggedModel,
    NewModelVersion, RegisteredModel, Stage,
};

/// One dataset some runs of an experiment read (MLflow's `DatasetSummary`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatasetSummary {
    pub experiment_id: String,
    pub name: String,
    pub digest: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub context: String,
}

/// The logged models a run read and produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunModels {
    pub inputs: Vec<String>,
    /// With the step each was produced at.
    pub outputs: Vec<(String, i64)>,
}

/// A run search.
#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    pub experiment_ids: Vec<String>,
    pub filter: String,
    pub view: ViewType,
    pub max_results: usize,
    pub order_by: Vec<String>,
    pub page_token: Option<String>,
}

/// Which entities a listing includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ViewType {
    #[default]
    ActiveOnly,
    DeletedOnly,
    All,
}

/// Experiments, runs, metrics, params and tags.
pub trait TrackingStore: Send + Sync {
    fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[Tag],
    ) -> Result<String>;
    fn get_experiment(&self, experiment_id: &str) -> Result<Experiment>;
    fn get_experiment_by_name(&self, name: &str) -> Result<Experiment>;
    /// Every experiment of the view, by id.
    fn list_experiments(
        &self,
        view: ViewType,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>> {
        let by_id = ["experiment_id ASC".to_string()];
        self.search_experiments(view, "", &by_id, max_results, page_token)
    }
    /// MLflow's experiment search: `filter` on `name`, `experiment_id`,
    /// `creation_time`, `last_update_time` and `tags.<key>`; `order_by` on the same
    /// attributes (newest first when empty, `experiment_id` always the tie-breaker).
    fn search_experiments(
        &self,
        view: ViewType,
        filter: &str,
        order_by: &[String],
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>>;
    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()>;
    fn delete_experiment(&self, experiment_id: &str) -> Result<()>;
    fn restore_experiment(&self, experiment_id: &str) -> Result<()>;
    fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()>;
    /// Removes the tag `key`; `NotFound` when the experiment or the tag is not there.
    fn delete_experiment_tag(&self, experiment_id: &str, key: &str) -> Result<()>;

    fn create_run(&self, new: NewRun) -> Result<Run>;
    fn get_run(&self, run_id: &str) -> Result<Run>;
    fn update_run(&self, run_id: &str, update: RunUpdate) -> Result<RunInfo>;
    fn delete_run(&self, run_id: &str) -> Result<()>;
    fn restore_run(&self, run_id: &str) -> Result<()>;
    /// Runs of `experiment_ids` matching an MLflow `filter` (see [`crate::search`]),
    /// ordered by `order_by` (default: newest first), paged.
    fn search_runs(&self, q: &RunQuery) -> Result<Page<Run>>;

    /// Every run of the experiments, newest first.
    fn list_runs(
        &self,
        experiment_ids: &[String],
        view: ViewType,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Run>> {
        self.search_runs(&RunQuery {
            experiment_ids: experiment_ids.to_vec(),
            view,
            max_results,
            page_token: page_token.map(str::to_string),
            ..Default::default()
        })
    }

    /// Log metrics (appended), params (immutable; the same value again is fine) and tags
    /// (overwritten) in one transaction, after checking MLflow's limits.
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Param],
        tags: &[Tag],
    ) -> Result<()>;
    fn delete_tag(&self, run_id: &str, key: &str) -> Result<()>;
    /// Every value logged for `key`, ordered by step then timestamp, paged.
    fn get_metric_history(
        &self,
        run_id: &str,
        key: &str,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Metric>>;
}

/// Logged models, registered models, versions, aliases and tags.
pub trait ModelStore: Send + Sync {
    fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel>;
    fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel>;
    fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel>;
    fn set_logged_model_tags(&self, model_id: &str, tags: &[Tag]) -> Result<()>;
    fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()>;
    /// Params of a logged model are immutable, like a run's.
    fn log_logged_model_params(&self, model_id: &str, params: &[Param]) -> Result<()>;
    fn delete_logged_model(&self, model_id: &str) -> Result<()>;
    /// Logged models of the experiments matching `q.filter` (see
    /// [`crate::search_models`]), newest first unless `q.order_by` says otherwise.
    fn search_logged_models(
        &self,
        experiment_ids: &[String],
        q: &ModelQuery,
    ) -> Result<Page<LoggedModel>>;
    /// Record that a run produced these models (`step` each).
    fn log_run_outputs(&self, run_id: &str, models: &[(String, i64)]) -> Result<()>;
    /// Metrics a run logged about logged models (`(model_id, metric)`); they show on
    /// each model. `NotFound` for a model that does not exist.
    fn log_logged_model_metrics(&self, run_id: &str, metrics: &[(String, Metric)]) -> Result<()>;
    /// The models a run read and the models it produced (with their step).
    fn run_models(&self, run_id: &str) -> Result<RunModels>;
    /// Record what a run read: datasets (lineage, e.g. a Delta table at a version) and
    /// models.
    fn log_run_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        model_ids: &[String],
    ) -> Result<()>;
    /// The datasets a run read, oldest first.
    fn run_dataset_inputs(&self, run_id: &str) -> Result<Vec<DatasetInput>>;
    /// The distinct datasets runs of these experiments read (at most 1,000), with the
    /// context each was read in (`mlflow.data.context`: training, evaluation, …).
    fn dataset_summaries(&self, experiment_ids: &[String]) -> Result<Vec<DatasetSummary>>;

    fn create_registered_model(
        &self,
        name: &str,
        tags: &[Tag],
        description: Option<&str>,
    ) -> Result<RegisteredModel>;
    fn get_registered_model(&self, name: &str) -> Result<RegisteredModel>;
    fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<RegisteredModel>;
    fn update_registered_model(&self, name: &str, description: &str) -> Result<RegisteredModel>;
    /// Deletes the model with its versions, tags and aliases.
    fn delete_registered_model(&self, name: &str) -> Result<()>;
    fn search_registered_models(&self, q: &ModelQuery) -> Result<Page<RegisteredModel>>;
    fn set_registered_model_tag(&self, name: &str, tag: &Tag) -> Result<()>;
    fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()>;
    /// Point `alias` at `version`, moving it if it pointed elsewhere.
    fn set_alias(&self, name: &str, alias: &str, version: i64) -> Result<()>;
    fn delete_alias(&self, name: &str, alias: &str) -> Result<()>;
    fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion>;
    /// Every move of the model's aliases, oldest first (removals too), whichever way
    /// they were made; kept after the versions they name are deleted.
    fn alias_history(&self, name: &str) -> Result<Vec<AliasChange>>;
    /// The newest version per stage (of `stages`, or of every stage when empty).
    fn get_latest_versions(&self, name: &str, stages: &[Stage]) -> Result<Vec<ModelVersion>>;

    /// A new version numbered after every version the model ever had. The source
    /// (`models:/m-…`, `runs:/<id>/<path>` or an artifact URI) is resolved to where
    /// its files are.
    fn create_model_version(&self, new: NewModelVersion) -> Result<ModelVersion>;
    fn get_model_version(&self, name: &str, version: i64) -> Result<ModelVersion>;
    fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
    ) -> Result<ModelVersion>;
    fn delete_model_version(&self, name: &str, version: i64) -> Result<()>;
    fn search_model_versions(&self, q: &ModelQuery) -> Result<Page<ModelVersion>>;
    fn set_model_version_tag(&self, name: &str, version: i64, tag: &Tag) -> Result<()>;
    fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<()>;
    fn transition_stage(
        &self,
        name: &str,
        version: i64,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion>;
    /// Where the version's files are, as an artifact URI.
    fn get_download_uri(&self, name: &str, version: i64) -> Result<String>;
}

/// A dataset a run read, as MLflow records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DatasetInput {
    pub name: String,
    pub digest: String,
    pub source_type: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// Input tags, e.g. `mlflow.data.context` = `training`.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// Everything the registry stores, behind one object.
pub trait Store: TrackingStore + ModelStore {}
impl<T: TrackingStore + ModelStore> Store for T {}

/// Page tokens are opaque to clients; here they carry an offset. A token that does
/// not parse, or names an offset beyond what SQLite can take, is the client's mistake.
pub(crate) fn parse_token(token: Option<&str>) -> Result<usize> {
    match token {
        None | Some("") => Ok(0),
        Some(t) => t
            .strip_prefix('o')
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| i64::try_from(*n).is_ok())
            .ok_or_else(|| crate::RegistryError::InvalidParameter("Invalid page token".into())),
    }
}

/// The token of the page after `offset`, given rows fetched with `LIMIT asked + 1`
/// (see [`look_ahead`]): the extra row, trimmed from `rows`, only says there is more.
/// Like MLflow, the last page has no token.
pub(crate) fn next_token<T>(rows: &mut Vec<T>, offset: usize, asked: usize) -> Option<String> {
    let more = rows.len() > asked;
    rows.truncate(asked);
    if more && asked > 0 {
        offset.checked_add(asked).map(|n| format!("o{n}"))
    } else {
        None
    }
}

/// The `LIMIT` that fetches one row past the page, to know whether another follows.
pub(crate) fn look_ahead(asked: usize) -> usize {
    asked.saturating_add(1)
}
