//! DDM, the drift detection method of Gama et al. (2004): the error rate `p` and its
//! binomial standard deviation `s = sqrt(p(1−p)/n)`; once past the warm start, the
//! minimum of `p + s` is remembered, and `p + s` above `p_min + 2·s_min` warns, above
//! `p_min + 3·s_min` is a drift.

use serde::{Deserialize, Serialize};

use super::running::Mean;
use super::{DetectorState, DriftDetector, check};
use crate::Result;

/// Parameters of [`Ddm`]; the defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DdmConfig {
    /// Values seen before any warning or drift. Default 30.
    pub warm_start: u64,
    /// Default 2.
    pub warning_threshold: f64,
    /// Default 3.
    pub drift_threshold: f64,
}

impl Default for DdmConfig {
    fn default() -> Self {
        Self {
            warm_start: 30,
            warning_threshold: 2.0,
            drift_threshold: 3.0,
        }
    }
}

/// DDM over a stream of 0 (right) / 1 (error) values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ddm {
    config: DdmConfig,
    p: Mean,
    p_min: f64,
    s_min: f64,
    ps_min: f64,
    drift: bool,
    warning: bool,
}

impl Default for Ddm {
    fn default() -> Self {
        Self::fresh(DdmConfig::default())
    }
}

impl Ddm {
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for non-finite thresholds.
    pub fn new(config: DdmConfig) -> Result<Self> {
        check(
            config.warning_threshold.is_finite(),
            "warning_threshold",
            "must be finite",
        )?;
        check(
            config.drift_threshold.is_finite(),
            "drift_threshold",
            "must be finite",
        )?;
        Ok(Self::fresh(config))
    }

    fn fresh(config: DdmConfig) -> Self {
        Self {
            config,
            p: Mean::default(),
            p_min: 0.0,
            s_min: 0.0,
            ps_min: f64::INFINITY,
            drift: false,
            warning: false,
        }
    }
}

impl DriftDetector for Ddm {
    fn update(&mut self, x: f64) -> DetectorState {
        if !x.is_finite() {
            return self.state();
        }
        if self.drift {
            self.reset();
        }
        self.p.update(x);
        let (p, n) = (self.p.mean, self.p.n);
        let s = (p * (1.0 - p) / n).sqrt();
        if n > self.config.warm_start as f64 {
            if p + s <= self.ps_min {
                self.p_min = p;
                self.s_min = s;
                self.ps_min = self.p_min + self.s_min;
            }
            self.warning = p + s > self.p_min + self.config.warning_threshold * self.s_min;
            if p + s > self.p_min + self.config.drift_threshold * self.s_min {
                self.drift = true;
                self.warning = false;
            }
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
