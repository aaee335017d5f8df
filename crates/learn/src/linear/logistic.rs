//! Online logistic regression, binary or one-vs-rest.

use super::optim::LinearUnit;
use super::{LinearConfig, Optimizer};
use crate::Classifier;

/// Online logistic regression (log loss), River's `LogisticRegression`.
///
/// While only classes 0 and 1 have been seen the model is binary: one scorer gives
/// `p = σ(w · x + b)` for class 1 and the probabilities are `[1 − p, p]` (so they have
/// two entries even if only class 0 was seen). When a class `k ≥ 2` first arrives the
/// model becomes one-vs-rest: the class-1 scorer is kept, the class-0 scorer starts as
/// its exact negation (which is what a separate class-0 scorer would have learnt on
/// the same examples), and each new class gets a fresh scorer, as River's
/// `OneVsRestClassifier` does. Each scorer learns `y == k` against the rest; the
/// probabilities are the scorers' sigmoids normalised to sum to 1.
///
/// See the [module documentation](super) for the update rule, defaults and the
/// handling of missing features.
///
/// ```rust
/// use freshet_learn::Classifier;
/// use freshet_learn::linear::LogisticRegression;
///
/// let mut model = LogisticRegression::default(); // SGD, lr 0.01
/// model.learn_one(&[1.0, 2.0], 1);
/// // One step from zero: w = [0.005, 0.01], b = 0.005, so w · x + b = 0.03.
/// let p = model.predict_proba_one(&[1.0, 2.0]);
/// assert_eq!(format!("{:.6}", p[1]), "0.507499");
/// assert_eq!(model.predict_one(&[1.0, 2.0]), Some(1));
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogisticRegression {
    config: LinearConfig,
    /// Binary: one scorer, for class 1. One-vs-rest: one scorer per class.
    scorers: Vec<LinearUnit>,
    /// Classes the probabilities span: 0 before learning, then at least 2.
    n_classes: usize,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        LogisticRegression::new(LinearConfig::default())
    }
}

/// The logistic function, without overflow for large `|z|`.
fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl LogisticRegression {
    /// A model with the given hyper-parameters.
    pub fn new(config: LinearConfig) -> Self {
        LogisticRegression {
            config,
            scorers: Vec::new(),
            n_classes: 0,
        }
    }

    /// Use `optimizer` for the weights.
    pub fn with_optimizer(mut self, optimizer: Optimizer) -> Self {
        self.config.optimizer = optimizer;
        self
    }

    /// Set the L2 penalty.
    pub fn with_l2(mut self, l2: f64) -> Self {
        self.config.l2 = l2;
        self
    }

    /// Set the intercept's learning rate (0: no intercept).
    pub fn with_intercept_lr(mut self, intercept_lr: f64) -> Self {
        self.config.intercept_lr = intercept_lr;
        self
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &LinearConfig {
        &self.config
    }

    /// Number of classes the probabilities span: 0 before learning, then at least 2.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Weights and intercept of the scorer of `class` against the rest (in binary
    /// mode, class 0's is the negation of class 1's); `None` for an unknown class.
    pub fn scorer(&self, class: usize) -> Option<(Vec<f64>, f64)> {
        let unit = match (self.is_binary(), class) {
            (true, 0) => self.scorers.first()?.negated(),
            (true, 1) => self.scorers.first()?.clone(),
            (true, _) => return None,
            (false, k) => self.scorers.get(k)?.clone(),
        };
        Some((unit.weights, unit.intercept))
    }

    fn is_binary(&self) -> bool {
        self.n_classes <= 2
    }

    /// Make room for class `y`, switching to one-vs-rest when `y ≥ 2`.
    fn admit(&mut self, y: usize) {
        if y < self.n_classes {
            return;
        }
        let fresh = LinearUnit::new(&self.config.optimizer);
        if y <= 1 {
            self.scorers = vec![fresh];
            self.n_classes = 2;
            return;
        }
        if self.is_binary() {
            self.scorers = match self.scorers.pop() {
                Some(one) => vec![one.negated(), one],
                None => Vec::new(),
            };
        }
        self.scorers.resize(y.saturating_add(1), fresh);
        self.n_classes = self.scorers.len();
    }

    fn learn_unit(config: &LinearConfig, unit: &mut LinearUnit, x: &[f64], target: bool) {
        // d(log loss)/d(raw) = σ(raw) − y: River's `-y / (exp(y raw) + 1)` with y ∈ {−1, 1}.
        let gradient = sigmoid(unit.raw(x)) - f64::from(u8::from(target));
        unit.step(config, x, gradient);
    }
}

impl Classifier for LogisticRegression {
    fn learn_one(&mut self, x: &[f64], y: usize) {
        self.admit(y);
        let config = self.config;
        if self.is_binary() {
            if let Some(unit) = self.scorers.first_mut() {
                Self::learn_unit(&config, unit, x, y == 1);
            }
        } else {
            for (k, unit) in self.scorers.iter_mut().enumerate() {
                Self::learn_unit(&config, unit, x, y == k);
            }
        }
    }

    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        if self.is_binary() {
            return match self.scorers.first() {
                Some(unit) => {
                    let p = sigmoid(unit.raw(x));
                    vec![1.0 - p, p]
                }
                None => Vec::new(),
            };
        }
        let mut p: Vec<f64> = self.scorers.iter().map(|u| sigmoid(u.raw(x))).collect();
        let total: f64 = p.iter().sum();
        if total > 0.0 && total.is_finite() {
            p.iter_mut().for_each(|v| *v /= total);
        } else {
            let uniform = 1.0 / p.len() as f64;
            p.iter_mut().for_each(|v| *v = uniform);
        }
        p
    }
}

#[cfg(test)]
#[path = "logistic_tests.rs"]
mod tests;
