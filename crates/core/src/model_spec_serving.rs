//! `models.<m>.serving` and `models.<m>.live`: whether the champion answers as the
//! registered snapshot it is, or as a live learner that starts from it and learns each
//! label the moment it arrives, with the snapshot kept as a safety net.
//!
//! The serve crate's `live` module executes this; docs/serving.md describes it.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

/// How the champion answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServingMode {
    /// The registered version answers as it was trained.
    #[default]
    Snapshot,
    /// A live learner descended from the champion answers and learns every label as
    /// it arrives (online learners only).
    Live,
}

impl ServingMode {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The live learner's safety net, under `models.<name>.live`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSpec {
    /// Labelled answers the live learner and its snapshot are compared over.
    pub window: usize,
    /// Labels both need in the window before the comparison counts.
    pub min_labels: usize,
    /// Traffic falls back to the snapshot when the live learner's error rate over the
    /// window exceeds the snapshot's by more than this (classification: a share of
    /// answers; regression: a share of the snapshot's mean absolute error).
    pub max_error_gap: f64,
    /// Answers kept in memory waiting for their labels; the oldest go first.
    pub pending_answers: usize,
    /// What a new champion does to the live state.
    pub rebase: Rebase,
}

/// What happens to the live state when a new version becomes champion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rebase {
    /// The live state keeps answering and learning while the new version scores beside
    /// it; once both are graded on `min_labels` labels, the live state restarts from
    /// the new version if that erred less, and otherwise keeps its state with the new
    /// version as its snapshot (the safety net's reference and fallback).
    #[default]
    Judged,
    /// The live state restarts from every new champion at once.
    Always,
}

impl Default for LiveSpec {
    fn default() -> Self {
        Self {
            window: 500,
            min_labels: 100,
            max_error_gap: 0.05,
            pending_answers: 200_000,
            rebase: Rebase::Judged,
        }
    }
}

impl LiveSpec {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }

    pub(crate) fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if self.window == 0 {
            errs.push(ConfigError::new(
                format!("{p}.window"),
                "must be at least 1",
            ));
        }
        if self.min_labels == 0 || self.min_labels > self.window {
            errs.push(ConfigError::new(
                format!("{p}.min_labels"),
                "must be at least 1 and at most the window",
            ));
        }
        if !(self.max_error_gap.is_finite() && self.max_error_gap >= 0.0) {
            errs.push(ConfigError::new(
                format!("{p}.max_error_gap"),
                "must be a number of at least 0",
            ));
        }
        if self.pending_answers == 0 {
            errs.push(ConfigError::new(
                format!("{p}.pending_answers"),
                "must be at least 1",
            ));
        }
    }
}
