//! Online linear models: [`LogisticRegression`] for classification and
//! [`LinearRegression`] for regression, trained one example at a time by SGD, Adam or
//! FTRL-Proximal.
//!
//! Both follow River's generalised linear model: the raw output is `w · x + b`; the
//! loss gradient with respect to it is clipped to `±clip_gradient`; the weight
//! gradient is `g x + l2 w` and goes to the [`Optimizer`]; the intercept is updated
//! apart, by plain gradient descent with `intercept_lr` (0 keeps it fixed), whatever
//! the optimizer. Defaults are River's: SGD with learning rate 0.01, `l2 = 0`,
//! `intercept_lr = 0.01`, `clip_gradient = 1e12`.
//!
//! Features arrive as dense vectors already standardised by the feature pipeline; the
//! models do not scale them. A non-finite feature value (NaN, ±∞) is treated as a
//! missing feature: it contributes nothing to a prediction and its weight is not
//! updated. Vectors may be shorter or longer than the weights: weights grow on
//! learning, and features beyond them contribute nothing to a prediction. An update
//! whose gradient is not finite is skipped, so the state stays finite.

mod logistic;
mod optim;
mod regression;

pub use logistic::LogisticRegression;
pub use regression::LinearRegression;

/// How the weights follow their gradient.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Optimizer {
    /// Plain stochastic gradient descent: `w -= lr g`.
    Sgd {
        /// Learning rate (River default 0.01).
        lr: f64,
    },
    /// Adam (Kingma & Ba, 2015), with bias correction folded into the step size as in
    /// the paper's section 2 and River: `lr_t = lr √(1 − β₂ᵗ) / (1 − β₁ᵗ)`,
    /// `w -= lr_t m / (√v + eps)`.
    Adam {
        /// Step size (River default 0.1).
        lr: f64,
        /// Decay of the first moment (0.9).
        beta1: f64,
        /// Decay of the second moment (0.999).
        beta2: f64,
        /// Added to the denominator (1e-8).
        eps: f64,
    },
    /// FTRL-Proximal (McMahan et al., 2013, algorithm 1), per coordinate: the weight
    /// is `0` when `|zᵢ| ≤ l1`, else `−(zᵢ − sgn(zᵢ) l1) / ((beta + √nᵢ) / alpha + l2)`.
    /// Unlike River, which recomputes the weights before folding in the gradient (so
    /// its weights lag one step), the weights here are those of the paper: recomputed
    /// from `z` and `n` after each update.
    Ftrl {
        /// Learning-rate scale (River default 0.05).
        alpha: f64,
        /// Learning-rate smoothing (1).
        beta: f64,
        /// L1 strength; larger values give sparser weights (0).
        l1: f64,
        /// L2 strength of the proximal term (1).
        l2: f64,
    },
}

impl Optimizer {
    /// SGD with learning rate `lr`.
    pub fn sgd(lr: f64) -> Self {
        Optimizer::Sgd { lr }
    }

    /// Adam with River's defaults: `lr = 0.1`, `beta1 = 0.9`, `beta2 = 0.999`,
    /// `eps = 1e-8`.
    pub fn adam() -> Self {
        Optimizer::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// FTRL-Proximal with River's defaults: `alpha = 0.05`, `beta = 1`, `l1 = 0`,
    /// `l2 = 1`.
    pub fn ftrl() -> Self {
        Optimizer::Ftrl {
            alpha: 0.05,
            beta: 1.0,
            l1: 0.0,
            l2: 1.0,
        }
    }
}

impl Default for Optimizer {
    /// SGD with River's learning rate, 0.01.
    fn default() -> Self {
        Optimizer::sgd(0.01)
    }
}

/// Hyper-parameters shared by the linear models; every field has River's default.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearConfig {
    /// How the weights are updated (default: SGD, learning rate 0.01).
    pub optimizer: Optimizer,
    /// L2 penalty: `l2 · w` is added to each weight's gradient (default 0).
    pub l2: f64,
    /// Learning rate of the intercept, updated by plain gradient descent whatever the
    /// optimizer; 0 keeps the intercept at 0 (default 0.01).
    pub intercept_lr: f64,
    /// Bound on the absolute value of the loss gradient (default 1e12).
    pub clip_gradient: f64,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            optimizer: Optimizer::default(),
            l2: 0.0,
            intercept_lr: 0.01,
            clip_gradient: 1e12,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_partial_yaml_like_json_with_defaults() {
        let c: LinearConfig =
            serde_json::from_str(r#"{"optimizer": {"type": "adam", "lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "l2": 0.5}"#)
                .expect("valid config");
        assert_eq!(c.optimizer, Optimizer::adam());
        assert_eq!((c.l2, c.intercept_lr, c.clip_gradient), (0.5, 0.01, 1e12));
        let bad = serde_json::from_str::<LinearConfig>(r#"{"l3": 1}"#);
        assert!(bad.is_err());
        let sgd: LinearConfig = serde_json::from_str("{}").expect("empty config");
        assert_eq!(sgd, LinearConfig::default());
    }
}
