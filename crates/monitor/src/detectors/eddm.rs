//! EDDM, the early drift detection method of Baena-García et al. (2006): tracks the
//! distance between consecutive errors. With `p'` the mean distance and `s'` its
//! standard deviation, `p' + 2s'` is compared with its maximum so far; a ratio below
//! `alpha` warns, below `beta` is a drift (errors are getting closer together).

use serde::{Deserialize, Serialize};

use super::running::Var;
use super::{DetectorState, DriftDetector, check};
use crate::Result;

/// Parameters of [`Eddm`]; the defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EddmConfig {
    /// Values (and errors) seen before any warning or drift. Default 30.
    pub warm_start: u64,
    /// Warning level. Default 0.95.
    pub alpha: f64,
    /// Drift level, at most `alpha`. Default 0.9.
    pub beta: f64,
}

impl Default for EddmConfig {
    fn default() -> Self {
        Self {
            warm_start: 30,
            alpha: 0.95,
            beta: 0.9,
        }
    }
}

/// EDDM over a stream of 0 (right) / 1 (error) values; only exactly 1 counts as an
/// error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Eddm {
    config: EddmConfig,
    distances: Var,
    n: u64,
    last_error: u64,
    n_errors: u64,
    p2s_max: f64,
    drift: bool,
    warning: bool,
}

impl Default for Eddm {
    fn default() -> Self {
        Self::fresh(EddmConfig::default())
    }
}

impl Eddm {
    /// # Errors
    /// [`crate::Error::InvalidConfig`] when `alpha < beta` or either is not finite.
    pub fn new(config: EddmConfig) -> Result<Self> {
        check(
            config.alpha.is_finite() && config.beta.is_finite(),
            "alpha",
            "alpha and beta must be finite",
        )?;
        check(
            config.alpha >= config.beta,
            "alpha",
            "must be at least beta",
        )?;
        Ok(Self::fresh(config))
    }

    fn fresh(config: EddmConfig) -> Self {
        Self {
            config,
            distances: Var::default(),
            n: 0,
            last_error: 0,
            n_errors: 0,
            p2s_max: -1.0,
            drift: false,
            warning: false,
        }
    }
}

impl DriftDetector for Eddm {
    fn update(&mut self, x: f64) -> DetectorState {
        if !x.is_finite() {
            return self.state();
        }
        if self.drift {
            self.reset();
        }
        self.n += 1;
        if x == 1.0 {
            self.n_errors += 1;
            self.distances.update((self.n - self.last_error) as f64);
            if self.n > self.config.warm_start {
                let p2s = self.distances.mean.mean + 2.0 * self.distances.get().sqrt();
                if p2s > self.p2s_max {
                    self.p2s_max = p2s;
                } else if self.n_errors > self.config.warm_start {
                    let level = p2s / self.p2s_max;
                    if level < self.config.beta {
                        self.drift = true;
                    } else {
                        self.warning = level < self.config.alpha;
                    }
                }
            }
            self.last_error = self.n;
        }
        self.state()
    }

    fn state(&self) -> DetectorState {
        super::state_of(self.drift, self.warning)
    }

    fn reset(&mut self) {
        *self = Self::fresh(self.config.clone());
    }
}
