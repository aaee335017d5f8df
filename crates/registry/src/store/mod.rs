//! The storage contract of the tracking registry. Methods are synchronous: the HTTP
//! layer calls them on the blocking pool, never on the async workers.

pub mod sqlite;

use crate::error::Result;
use crate::model::{Experiment, Metric, NewRun, Page, Param, Run, RunInfo, RunUpdate, Tag};

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
    fn list_experiments(
        &self,
        view: ViewType,
        max_results: usize,
        page_token: Option<&str>,
    ) -> Result<Page<Experiment>>;
    fn rename_experiment(&self, experiment_id: &str, new_name: &str) -> Result<()>;
    fn delete_experiment(&self, experiment_id: &str) -> Result<()>;
    fn restore_experiment(&self, experiment_id: &str) -> Result<()>;
    fn set_experiment_tag(&self, experiment_id: &str, tag: &Tag) -> Result<()>;

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

pub(crate) fn next_token(offset: usize, got: usize, asked: usize) -> Option<String> {
    if got == asked && asked > 0 {
        offset.checked_add(got).map(|n| format!("o{n}"))
    } else {
        None
    }
}
