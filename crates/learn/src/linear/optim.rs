//! One linear scorer (weights, intercept, optimizer state) and its update rule.

use super::{LinearConfig, Optimizer};

/// Per-weight state of the optimizer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum OptState {
    Sgd,
    Adam {
        /// First-moment estimates.
        m: Vec<f64>,
        /// Second-moment estimates.
        v: Vec<f64>,
        /// Steps taken.
        t: u64,
    },
    Ftrl {
        /// Accumulated adjusted gradients.
        z: Vec<f64>,
        /// Accumulated squared gradients.
        n: Vec<f64>,
    },
}

/// `w · x + b` with its optimizer state.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LinearUnit {
    pub(crate) weights: Vec<f64>,
    pub(crate) intercept: f64,
    state: OptState,
}

impl LinearUnit {
    /// Zero weights, zero intercept.
    pub(crate) fn new(optimizer: &Optimizer) -> Self {
        let state = match optimizer {
            Optimizer::Sgd { .. } => OptState::Sgd,
            Optimizer::Adam { .. } => OptState::Adam {
                m: Vec::new(),
                v: Vec::new(),
                t: 0,
            },
            Optimizer::Ftrl { .. } => OptState::Ftrl {
                z: Vec::new(),
                n: Vec::new(),
            },
        };
        LinearUnit {
            weights: Vec::new(),
            intercept: 0.0,
            state,
        }
    }

    /// The raw output `w · x + b`; missing (non-finite) and unknown features add 0.
    pub(crate) fn raw(&self, x: &[f64]) -> f64 {
        let dot: f64 = self
            .weights
            .iter()
            .zip(x)
            .filter(|(_, xi)| xi.is_finite())
            .map(|(w, xi)| w * xi)
            .sum();
        dot + self.intercept
    }

    /// The unit that scores the opposite target: with a symmetric loss (the log loss
    /// of `1 − y` against `−(w · x + b)`), it evolves as the exact negation of `self`.
    pub(crate) fn negated(&self) -> Self {
        let neg = |v: &Vec<f64>| v.iter().map(|a| -a).collect::<Vec<_>>();
        let state = match &self.state {
            OptState::Sgd => OptState::Sgd,
            OptState::Adam { m, v, t } => OptState::Adam {
                m: neg(m),
                v: v.clone(),
                t: *t,
            },
            OptState::Ftrl { z, n } => OptState::Ftrl {
                z: neg(z),
                n: n.clone(),
            },
        };
        LinearUnit {
            weights: neg(&self.weights),
            intercept: -self.intercept,
            state,
        }
    }

    /// One update, given the loss gradient with respect to the raw output at `x`.
    /// Skipped entirely when a gradient is not finite.
    pub(crate) fn step(&mut self, config: &LinearConfig, x: &[f64], loss_gradient: f64) {
        if !loss_gradient.is_finite() {
            return;
        }
        let g = loss_gradient.clamp(-config.clip_gradient.abs(), config.clip_gradient.abs());
        // Also repairs state vectors of unequal lengths (a hand-edited artifact).
        self.grow(x.len().max(self.weights.len()));
        // Gradients of the features present, in order.
        let mut grads = Vec::with_capacity(x.len());
        for (i, &xi) in x.iter().enumerate() {
            if xi.is_finite() {
                let gi = g * xi + config.l2 * self.weights[i];
                if !gi.is_finite() {
                    return;
                }
                grads.push((i, gi));
            }
        }
        let intercept = self.intercept - config.intercept_lr * g;
        if intercept.is_finite() {
            self.intercept = intercept;
        }
        if !self.state_fits(&config.optimizer) {
            // The state was built for another optimizer (a configuration changed under
            // a trained unit): start that optimizer's state afresh.
            let len = self.weights.len();
            self.state = LinearUnit::new(&config.optimizer).state;
            self.grow(len);
        }
        let w = &mut self.weights;
        match (&mut self.state, config.optimizer) {
            (_, Optimizer::Sgd { lr }) => {
                for (i, gi) in grads {
                    w[i] -= lr * gi;
                }
            }
            (
                OptState::Adam { m, v, t },
                Optimizer::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                },
            ) => {
                *t += 1;
                let tf = *t as f64;
                let lr_t = lr * (1.0 - beta2.powf(tf)).sqrt() / (1.0 - beta1.powf(tf));
                for (i, gi) in grads {
                    m[i] = beta1 * m[i] + (1.0 - beta1) * gi;
                    v[i] = beta2 * v[i] + (1.0 - beta2) * gi * gi;
                    w[i] -= lr_t * m[i] / (v[i].sqrt() + eps);
                }
            }
            (
                OptState::Ftrl { z, n },
                Optimizer::Ftrl {
                    alpha,
                    beta,
                    l1,
                    l2,
                },
            ) => {
                for (i, gi) in grads {
                    let sigma = ((n[i] + gi * gi).sqrt() - n[i].sqrt()) / alpha;
                    z[i] += gi - sigma * w[i];
                    n[i] += gi * gi;
                    w[i] = if z[i].abs() <= l1 {
                        0.0
                    } else {
                        -(z[i] - z[i].signum() * l1) / ((beta + n[i].sqrt()) / alpha + l2)
                    };
                }
            }
            // Unreachable: the state was matched to the optimizer above.
            _ => {}
        }
    }

    fn state_fits(&self, optimizer: &Optimizer) -> bool {
        matches!(
            (&self.state, optimizer),
            (OptState::Sgd, Optimizer::Sgd { .. })
                | (OptState::Adam { .. }, Optimizer::Adam { .. })
                | (OptState::Ftrl { .. }, Optimizer::Ftrl { .. })
        )
    }

    fn grow(&mut self, len: usize) {
        self.weights.resize(len, 0.0);
        match &mut self.state {
            OptState::Sgd => {}
            OptState::Adam { m, v, .. } => {
                m.resize(len, 0.0);
                v.resize(len, 0.0);
            }
            OptState::Ftrl { z, n } => {
                z.resize(len, 0.0);
                n.resize(len, 0.0);
            }
        }
    }
}
