//! Streaming metrics, in River's shape: `update` with one example, `revert` it again
//! where the metric allows, `get` the current value, and `bigger_is_better` to know
//! which way is up.
//!
//! Classification metrics read a [`ClassPrediction`]: the predicted label for
//! label-based metrics ([`Accuracy`], [`Precision`], [`Recall`], [`F1`],
//! [`CohensKappa`]) and the class probabilities for score-based ones ([`LogLoss`],
//! [`RocAuc`]). Regression metrics ([`Mae`], [`Rmse`], [`R2`]) read the predicted value.
//! [`Rolling`] turns any revertible metric into one over the last `n` updates.
//!
//! Conventions shared by every metric here:
//! - `get` is `0.0` before the first update (as in River) and whenever the value is
//!   undefined (a zero denominator).
//! - An update carrying a non-finite number the metric would read (a NaN probability,
//!   an infinite regression target) is ignored, and so is its revert; the state stays
//!   finite and serialisable.
//! - Reverting an update that was never made does not panic, but leaves the metric
//!   meaningless.

mod classification;
mod confusion;
mod regression;
mod roc_auc;
mod rolling;
mod running;

pub use classification::{Accuracy, F1, LogLoss, Precision, Recall};
pub use confusion::{CohensKappa, ConfusionMatrix};
pub use regression::{Mae, R2, Rmse};
pub use roc_auc::RocAuc;
pub use rolling::Rolling;
pub use running::RunningMoments;

use crate::Classifier;

/// What a classifier said about one example: its label and its class probabilities.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClassPrediction {
    /// The predicted class; `None` when the model could not predict yet.
    pub label: Option<usize>,
    /// Class probabilities indexed by class; may be empty.
    pub proba: Vec<f64>,
}

impl ClassPrediction {
    /// A prediction made of a label only (for label-based metrics).
    pub fn label(label: usize) -> Self {
        ClassPrediction {
            label: Some(label),
            proba: Vec::new(),
        }
    }

    /// A prediction made of probabilities; the label is their [`argmax`](crate::argmax).
    pub fn proba(proba: Vec<f64>) -> Self {
        ClassPrediction {
            label: crate::argmax(&proba),
            proba,
        }
    }

    /// A binary prediction from the probability of class 1; the label is 1 when that
    /// probability exceeds one half.
    pub fn binary(p1: f64) -> Self {
        Self::proba(vec![1.0 - p1, p1])
    }

    /// Ask `model` about `x` (does not change the model).
    pub fn of(model: &dyn Classifier, x: &[f64]) -> Self {
        ClassPrediction {
            label: model.predict_one(x),
            proba: model.predict_proba_one(x),
        }
    }

    /// The probability given to `class`; `0.0` when the vector does not reach it.
    pub fn proba_of(&self, class: usize) -> f64 {
        self.proba.get(class).copied().unwrap_or(0.0)
    }
}

/// A streaming metric of a classifier.
pub trait ClassificationMetric: Send + Sync + std::fmt::Debug {
    /// Account for one example with true class `y_true`.
    fn update(&mut self, y_true: usize, y_pred: &ClassPrediction);
    /// The current value; `0.0` before any update.
    fn get(&self) -> f64;
    /// Whether a larger value means a better model.
    fn bigger_is_better(&self) -> bool;
}

/// A classification metric that can forget an example it has seen.
pub trait RevertClassification: ClassificationMetric {
    /// Undo an earlier [`update`](ClassificationMetric::update) with the same arguments.
    fn revert(&mut self, y_true: usize, y_pred: &ClassPrediction);
}

/// A streaming metric of a regressor.
pub trait RegressionMetric: Send + Sync + std::fmt::Debug {
    /// Account for one example with target `y_true` and prediction `y_pred`.
    fn update(&mut self, y_true: f64, y_pred: f64);
    /// The current value; `0.0` before any update.
    fn get(&self) -> f64;
    /// Whether a larger value means a better model.
    fn bigger_is_better(&self) -> bool;
}

/// A regression metric that can forget an example it has seen.
pub trait RevertRegression: RegressionMetric {
    /// Undo an earlier [`update`](RegressionMetric::update) with the same arguments.
    fn revert(&mut self, y_true: f64, y_pred: f64);
}

/// `a / b`, or `0.0` when `b` is zero (River's convention for undefined ratios).
pub(crate) fn safe_div(a: f64, b: f64) -> f64 {
    if b == 0.0 { 0.0 } else { a / b }
}
