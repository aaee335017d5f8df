//! Online linear regression.

use super::optim::LinearUnit;
use super::{LinearConfig, Optimizer};
use crate::Regressor;

/// Online linear regression on the squared loss, River's `LinearRegression`: the
/// prediction is `w · x + b` and the loss gradient is `2 (prediction − y)` (River's
/// convention, which keeps the 2). A non-finite target is ignored.
///
/// See the [module documentation](super) for the update rule, defaults and the
/// handling of missing features.
///
/// ```rust
/// use freshet_learn::Regressor;
/// use freshet_learn::linear::LinearRegression;
///
/// let mut model = LinearRegression::default(); // SGD, lr 0.01
/// model.learn_one(&[1.0, 2.0], 3.0);
/// // Gradient 2 (0 − 3) = −6: w = [0.06, 0.12], b = 0.06.
/// assert_eq!(format!("{:.2}", model.predict_one(&[1.0, 2.0])), "0.36");
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinearRegression {
    config: LinearConfig,
    unit: LinearUnit,
}

impl Default for LinearRegression {
    fn default() -> Self {
        LinearRegression::new(LinearConfig::default())
    }
}

impl LinearRegression {
    /// A model with the given hyper-parameters.
    pub fn new(config: LinearConfig) -> Self {
        LinearRegression {
            unit: LinearUnit::new(&config.optimizer),
            config,
        }
    }

    /// Use `optimizer` for the weights.
    pub fn with_optimizer(mut self, optimizer: Optimizer) -> Self {
        self.config.optimizer = optimizer;
        self.unit = LinearUnit::new(&optimizer);
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

    /// The weights, one per feature seen.
    pub fn weights(&self) -> &[f64] {
        &self.unit.weights
    }

    /// The intercept.
    pub fn intercept(&self) -> f64 {
        self.unit.intercept
    }
}

impl Regressor for LinearRegression {
    fn learn_one(&mut self, x: &[f64], y: f64) {
        if !y.is_finite() {
            return;
        }
        let gradient = 2.0 * (self.unit.raw(x) - y);
        self.unit.step(&self.config, x, gradient);
    }

    fn predict_one(&self, x: &[f64]) -> f64 {
        self.unit.raw(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::conformance::{
        check_regressor_conformance, check_regressor_snapshot, linear_regression_stream,
    };
    use crate::evaluate::prequential_regression;
    use crate::metrics::{R2, RegressionMetric};

    #[test]
    fn one_sgd_step_by_hand() {
        let mut m = LinearRegression::default();
        assert_eq!(m.predict_one(&[1.0, 2.0]), 0.0);
        m.learn_one(&[1.0, 2.0], 3.0);
        assert!((m.weights()[0] - 0.06).abs() < 1e-15);
        assert!((m.weights()[1] - 0.12).abs() < 1e-15);
        assert!((m.intercept() - 0.06).abs() < 1e-15);
        // Second step with L2 0.5 from there: raw = 0.06 + 0.24 + 0.06 = 0.36.
        let mut m = m.with_l2(0.5);
        m.learn_one(&[1.0, 2.0], 3.0);
        let g = 2.0 * (0.36 - 3.0);
        let w0 = 0.06 - 0.01 * (g * 1.0 + 0.5 * 0.06);
        let w1 = 0.12 - 0.01 * (g * 2.0 + 0.5 * 0.12);
        assert!((m.weights()[0] - w0).abs() < 1e-12);
        assert!((m.weights()[1] - w1).abs() < 1e-12);
        assert!((m.intercept() - (0.06 - 0.01 * g)).abs() < 1e-12);
    }

    #[test]
    fn missing_features_and_bad_targets() {
        let mut m = LinearRegression::default();
        m.learn_one(&[f64::NAN, 2.0], 3.0);
        assert_eq!(m.weights()[0], 0.0);
        m.learn_one(&[1.0, 1.0], f64::NAN);
        m.learn_one(&[1.0, 1.0], f64::NEG_INFINITY);
        assert_eq!(m.weights().len(), 2);
        assert!((m.weights()[1] - 0.12).abs() < 1e-15);
        assert_eq!(
            m.predict_one(&[f64::INFINITY, 1.0]),
            m.predict_one(&[0.0, 1.0])
        );
        // Without intercept learning, the intercept stays 0.
        let mut m = LinearRegression::default().with_intercept_lr(0.0);
        m.learn_one(&[1.0], 5.0);
        assert_eq!(m.intercept(), 0.0);
    }

    #[test]
    fn converges_on_a_linear_stream() {
        // One generator, one weight vector: train on the first 3000, test on the rest.
        let stream = linear_regression_stream(3, 3500, 4, 0.1);
        let (train, test) = stream.split_at(3000);
        for optimizer in [Optimizer::default(), Optimizer::adam()] {
            let mut m = LinearRegression::default().with_optimizer(optimizer);
            prequential_regression(&mut m, train.to_vec(), &mut [], 0);
            let mut r2 = R2::default();
            for (x, y) in test {
                r2.update(*y, m.predict_one(x));
            }
            assert!(r2.get() > 0.99, "{optimizer:?}: R² {}", r2.get());
        }
    }

    #[test]
    fn conforms() {
        for optimizer in [Optimizer::default(), Optimizer::adam(), Optimizer::ftrl()] {
            check_regressor_conformance(|| {
                Box::new(LinearRegression::default().with_optimizer(optimizer))
            });
            check_regressor_snapshot(|| LinearRegression::default().with_optimizer(optimizer));
        }
    }
}
