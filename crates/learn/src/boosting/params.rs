//! Hyper-parameters of the booster, with defaults that suit a retraining window of a
//! few thousand to a few million rows.

use serde::{Deserialize, Serialize};

use super::GbtError;

/// The loss the trees descend, which also fixes the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Classification. Labels are class indices `0, 1, …`; two classes give one
    /// sigmoid output, more give one softmax output per class.
    #[default]
    LogLoss,
    /// Regression with squared error; labels are any finite values.
    SquaredError,
}

/// Everything [`GradientBoostedTrees::fit`](super::GradientBoostedTrees::fit) needs
/// besides data. Every field has a default, so a config may name only what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbtParams {
    /// The loss, and with it the task (classification or regression).
    pub loss: Loss,
    /// Boosting rounds (one tree per round, or one per class for multiclass).
    pub n_trees: usize,
    /// Shrinkage applied to every leaf value: smaller learns slower but generalises better.
    pub learning_rate: f64,
    /// Deepest level a leaf may sit at; the root is depth 0.
    pub max_depth: usize,
    /// Cap on leaves per tree. Growth is best-first (the split with the largest gain
    /// goes next), so a cap keeps the most useful splits; `None` grows every split
    /// with positive gain down to `max_depth`, which is depth-wise growth.
    pub max_leaves: Option<usize>,
    /// Smallest hessian sum a child may have (for log loss, roughly how confident
    /// the rows in it may be before the leaf value explodes).
    pub min_child_weight: f64,
    /// Smallest number of training rows a child may have.
    pub min_samples_leaf: usize,
    /// L2 penalty on leaf values: it shrinks small leaves towards 0 and is what keeps
    /// a leaf of a few confident rows from taking a huge value.
    pub lambda: f64,
    /// Smallest loss reduction a split must bring (XGBoost's gamma).
    pub min_split_gain: f64,
    /// Value bins per feature (2 to 255), besides the one bin for missing values.
    pub max_bins: usize,
    /// Fraction of rows each tree is fitted on, drawn without replacement from `seed`.
    pub subsample: f64,
    /// Seed for row subsampling; the same seed and data give the same model.
    pub seed: u64,
    /// With a validation set: stop after this many rounds without improvement of the
    /// validation loss, and keep the best round. Ignored without a validation set.
    pub early_stopping_rounds: usize,
}

impl Default for GbtParams {
    fn default() -> Self {
        Self {
            loss: Loss::LogLoss,
            n_trees: 100,
            learning_rate: 0.1,
            max_depth: 6,
            max_leaves: None,
            min_child_weight: 1e-3,
            min_samples_leaf: 20,
            lambda: 1.0,
            min_split_gain: 0.0,
            max_bins: 255,
            subsample: 1.0,
            seed: 0,
            early_stopping_rounds: 10,
        }
    }
}

impl GbtParams {
    /// Checks every range, so fitting can rely on them.
    pub fn validate(&self) -> Result<(), GbtError> {
        let bad = |name, reason| Err(GbtError::InvalidParam { name, reason });
        if self.n_trees == 0 {
            return bad("n_trees", "must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be finite and positive");
        }
        if self.max_depth == 0 {
            return bad("max_depth", "must be at least 1");
        }
        if self.max_leaves.is_some_and(|l| l < 2) {
            return bad("max_leaves", "must be at least 2");
        }
        if !(self.min_child_weight.is_finite() && self.min_child_weight >= 0.0) {
            return bad("min_child_weight", "must be finite and non-negative");
        }
        if self.min_samples_leaf == 0 {
            return bad("min_samples_leaf", "must be at least 1");
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad("lambda", "must be finite and non-negative");
        }
        if !(self.min_split_gain.is_finite() && self.min_split_gain >= 0.0) {
            return bad("min_split_gain", "must be finite and non-negative");
        }
        if !(2..=255).contains(&self.max_bins) {
            return bad("max_bins", "must be between 2 and 255");
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return bad("subsample", "must be in (0, 1]");
        }
        if self.early_stopping_rounds == 0 {
            return bad("early_stopping_rounds", "must be at least 1");
        }
        Ok(())
    }
}
