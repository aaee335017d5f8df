//! HDDM_A, the Hoeffding drift detection method with the A-test (Frías-Blanco et al.
//! 2015): compares the mean since a cut point with the overall mean, the cut point
//! being where the mean plus its Hoeffding bound was lowest (or, for decreases,
//! highest). Works on any values in [0, 1].

use serde::{Deserialize, Serialize};

use super::running::Mean;
use super::{DetectorState, DriftDetector, check};
use crate::Result;

/// Parameters of [`HddmA`]; the defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HddmAConfig {
    /// Confidence of a drift. Default 0.001.
    pub drift_confidence: f64,
    /// Confidence of a warning. Default 0.005.
    pub warning_confidence: f64,
    /// Also detect decreases of the mean. Default false.
    pub two_sided_test: bool,
}

impl Default for HddmAConfig {
    fn default() -> Self {
        Self {
            drift_confidence: 0.001,
            warning_confidence: 0.005,
            two_sided_test: false,
        }
    }
}

/// HDDM_A over values in [0, 1].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HddmA {
    config: HddmAConfig,
    x_min: Mean,
    x_max: Mean,
    z: Mean,
    drift: bool,
    warning: bool,
}

impl Default for HddmA {
    fn default() -> Self {
        Self::fresh(HddmAConfig::default())
    }
}

impl HddmA {
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a confidence outside (0, 1).
    pub fn new(config: HddmAConfig) -> Result<Self> {
        for (field, v) in [
            ("drift_confidence", config.drift_confidence),
            ("warning_confidence", config.warning_confidence),
        ] {
            check(v > 0.0 && v < 1.0, field, "must be in (0, 1)")?;
        }
        Ok(Self::fresh(config))
    }

    fn fresh(config: HddmAConfig) -> Self {
        Self {
            config,
            x_min: Mean::default(),
            x_max: Mean::default(),
            z: Mean::default(),
            drift: false,
            warning: false,
        }
    }

    fn hoeffding_bound(&self, n: f64) -> f64 {
        (1.0 / (2.0 * n) * (1.0 / self.config.drift_confidence).ln()).sqrt()
    }

    fn bound(&self, cut: &Mean, confidence: f64) -> Option<f64> {
        if cut.n == self.z.n {
            return None;
        }
        let m = (self.z.n - cut.n) / cut.n * (1.0 / self.z.n);
        Some((m / 2.0 * (2.0 / confidence).ln()).sqrt())
    }

    fn mean_increased(&self, confidence: f64) -> bool {
        self.bound(&self.x_min, confidence)
            .is_some_and(|eps| self.z.mean - self.x_min.mean >= eps)
    }

    fn mean_decreased(&self, confidence: f64) -> bool {
        self.bound(&self.x_max, confidence)
            .is_some_and(|eps| self.x_max.mean - self.z.mean >= eps)
    }
}

impl DriftDetector for HddmA {
    fn update(&mut self, x: f64) -> DetectorState {
        if !x.is_finite() {
            return self.state();
        }
        if self.drift {
            self.reset();
        }
        self.z.update(x);
        if self.x_min.n == 0.0 {
            self.x_min = self.z;
        }
        if self.x_max.n == 0.0 {
            self.x_max = self.z;
        }
        let eps_z = self.hoeffding_bound(self.z.n);
        let eps_x = self.hoeffding_bound(self.x_min.n);
        if self.x_min.mean + eps_x >= self.z.mean + eps_z {
            self.x_min = self.z;
        }
        let eps_x = self.hoeffding_bound(self.x_max.n);
        if self.x_max.mean - eps_x <= self.z.mean - eps_z {
            self.x_max = self.z;
        }
        let (drift_c, warn_c) = (self.config.drift_confidence, self.config.warning_confidence);
        if self.mean_increased(drift_c) {
            (self.drift, self.warning) = (true, false);
        } else if self.mean_increased(warn_c) {
            (self.drift, self.warning) = (false, true);
        } else {
            (self.drift, self.warning) = (false, false);
        }
        if self.config.two_sided_test {
            if self.mean_decreased(drift_c) {
                self.drift = true;
            } else if self.mean_decreased(warn_c) {
                self.warning = true;
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
