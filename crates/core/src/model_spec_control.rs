//! `models.<name>.triggers`, `gates` and `job`: when a model retrains, what a candidate
//! must show before it reaches the rollout, and how it is trained.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

/// What starts a retraining. Any trigger that fires while a job runs is coalesced into
/// one follow-up job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggersSpec {
    /// Retrain once this many rows arrived since the last training (0: off).
    pub rows: u64,
    /// Retrain at least this often, in seconds (0: off).
    pub every_secs: u64,
    /// Retrain when the served traffic drifts from the champion's reference profile
    /// (the dataset drift share of `monitor` reaches its `drift_share`).
    pub data_drift: bool,
    /// Watch the live error stream (from feedback labels) with this concept-drift
    /// detector: `adwin`, `page_hinkley`, `ddm`, `eddm`, `hddm_a`, `hddm_w`, `kswin`,
    /// or `none`.
    pub concept_drift: String,
    /// Retrain when the champion's accuracy on labels falls below this (0: off).
    pub min_accuracy: f64,
    /// After a drift, wait for this many rows of the new concept before training, so
    /// that the new version learns it.
    pub rows_after_drift: u64,
    /// Rows the first version waits for.
    pub initial_rows: u64,
}

impl Default for TriggersSpec {
    fn default() -> Self {
        Self {
            rows: 0,
            every_secs: 0,
            data_drift: false,
            concept_drift: "adwin".into(),
            min_accuracy: 0.0,
            rows_after_drift: 2_000,
            initial_rows: 1_000,
        }
    }
}

/// How served traffic is compared with the champion's reference profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSpec {
    /// The sliding window: the newest this many rows the champion served.
    pub window_rows: u64,
    /// Test the window at most this often, in seconds.
    pub every_secs: u64,
    /// Test only once the window holds this many rows.
    pub min_rows: u64,
    /// The dataset drifts when this share of the features drift (Evidently's 0.5).
    pub drift_share: f64,
}

impl Default for MonitorSpec {
    fn default() -> Self {
        Self {
            window_rows: 1_000,
            every_secs: 10,
            min_rows: 200,
            drift_share: 0.5,
        }
    }
}

impl MonitorSpec {
    pub(crate) fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if self.window_rows == 0 || self.window_rows > 1_000_000 {
            errs.push(ConfigError::new(
                format!("{p}.window_rows"),
                "must be between 1 and 1000000",
            ));
        }
        if self.min_rows == 0 || self.min_rows > self.window_rows {
            errs.push(ConfigError::new(
                format!("{p}.min_rows"),
                "must be at least 1 and at most window_rows",
            ));
        }
        if !(self.drift_share > 0.0 && self.drift_share <= 1.0) {
            errs.push(ConfigError::new(
                format!("{p}.drift_share"),
                "must be in (0, 1]",
            ));
        }
    }
}

/// What a candidate must show on its out-of-time holdout before its rollout starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatesSpec {
    /// Absolute minimums, e.g. `{ holdout_roc_auc: 0.8 }` (metrics where bigger is
    /// better; for errors use `max`).
    pub min: std::collections::BTreeMap<String, f64>,
    /// Absolute maximums, e.g. `{ holdout_log_loss: 0.5 }`.
    pub max: std::collections::BTreeMap<String, f64>,
    /// Compare with the champion scored on the candidate's own holdout: the candidate's
    /// `metric` may be at most `max_drop` below the champion's.
    pub vs_champion: Option<VsChampion>,
    /// Mean prediction time per row, in microseconds (0: off).
    pub max_latency_us: u64,
}

impl Default for GatesSpec {
    fn default() -> Self {
        Self {
            min: Default::default(),
            max: Default::default(),
            vs_champion: Some(VsChampion::default()),
            max_latency_us: 2_000,
        }
    }
}

/// The champion comparison gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VsChampion {
    /// A holdout metric where bigger is better.
    pub metric: String,
    pub max_drop: f64,
}

impl Default for VsChampion {
    fn default() -> Self {
        Self {
            metric: "holdout_accuracy".into(),
            max_drop: 0.0,
        }
    }
}

/// How candidates are trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobSpec {
    /// The built-in learners, in-process, on the newest `window_rows` rows of the
    /// stream's table, with at most `threads` threads so serving keeps its share.
    Builtin {
        #[serde(default = "default_window")]
        window_rows: u64,
        #[serde(default = "default_threads")]
        threads: u32,
    },
    /// An online learner that keeps learning every new row of the stream, in arrival
    /// order, from its last snapshot on; a trigger snapshots it into a version. The
    /// gates judge it test-then-train on its newest `holdout_rows` rows (each scored
    /// before it was learnt), against the champion on the same rows.
    Online {
        #[serde(default = "default_online_holdout")]
        holdout_rows: u64,
    },
    /// Any program: it gets `FRESHET_TABLE_URI`, `FRESHET_TABLE_VERSION`,
    /// `MLFLOW_TRACKING_URI` and `MLFLOW_RUN_ID` in its environment, logs through the
    /// MLflow API and registers a version from that run.
    Command {
        command: Vec<String>,
        #[serde(default = "default_timeout")]
        timeout_secs: u64,
    },
}

fn default_window() -> u64 {
    50_000
}
fn default_online_holdout() -> u64 {
    2_000
}
fn default_threads() -> u32 {
    1
}
fn default_timeout() -> u64 {
    3_600
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec::Builtin {
            window_rows: default_window(),
            threads: default_threads(),
        }
    }
}

/// The detectors a trigger may name.
pub const DETECTORS: [&str; 8] = [
    "none",
    "adwin",
    "page_hinkley",
    "ddm",
    "eddm",
    "hddm_a",
    "hddm_w",
    "kswin",
];

impl TriggersSpec {
    pub(crate) fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if !DETECTORS.contains(&self.concept_drift.as_str()) {
            errs.push(ConfigError::new(
                format!("{p}.concept_drift"),
                format!("unknown detector; use one of {}", DETECTORS.join(", ")),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_accuracy) {
            errs.push(ConfigError::new(
                format!("{p}.min_accuracy"),
                "must be in [0, 1]",
            ));
        }
    }
}

impl GatesSpec {
    pub(crate) fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if let Some(v) = &self.vs_champion {
            if v.metric.trim().is_empty() {
                errs.push(ConfigError::new(
                    format!("{p}.vs_champion.metric"),
                    "must not be empty",
                ));
            }
            if !v.max_drop.is_finite() || v.max_drop < 0.0 {
                errs.push(ConfigError::new(
                    format!("{p}.vs_champion.max_drop"),
                    "must be 0 or more",
                ));
            }
        }
        for (k, v) in self.min.iter().chain(&self.max) {
            if !v.is_finite() {
                errs.push(ConfigError::new(
                    format!("{p}.{k}"),
                    "must be a finite number",
                ));
            }
        }
    }
}

impl JobSpec {
    pub(crate) fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        match self {
            JobSpec::Online { holdout_rows } => {
                if *holdout_rows == 0 || *holdout_rows > 1_000_000 {
                    errs.push(ConfigError::new(
                        format!("{p}.holdout_rows"),
                        "must be between 1 and 1000000",
                    ));
                }
            }
            JobSpec::Builtin {
                window_rows,
                threads,
            } => {
                if *window_rows < 2 {
                    errs.push(ConfigError::new(
                        format!("{p}.window_rows"),
                        "must be at least 2",
                    ));
                }
                if *threads == 0 {
                    errs.push(ConfigError::new(
                        format!("{p}.threads"),
                        "must be at least 1",
                    ));
                }
            }
            JobSpec::Command { command, .. } => {
                if command.first().is_none_or(|c| c.trim().is_empty()) {
                    errs.push(ConfigError::new(
                        format!("{p}.command"),
                        "must name a program, e.g. [python, train.py]",
                    ));
                }
            }
        }
    }
}
