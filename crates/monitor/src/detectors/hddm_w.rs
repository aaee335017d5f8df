//! HDDM_W, the Hoeffding drift detection method with the W-test (Frías-Blanco et al.
//! 2015): like HDDM_A but over exponentially weighted means, with McDiarmid's bound in
//! place of Hoeffding's. Works on any values in [0, 1].

use serde::{Deserialize, Serialize};

use super::running::EwMean;
use super::{DetectorState, DriftDetector, check};
use crate::Result;

/// Parameters of [`HddmW`]; the defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HddmWConfig {
    /// Confidence of a drift. Default 0.001.
    pub drift_confidence: f64,
    /// Confidence of a warning. Default 0.005.
    pub warning_confidence: f64,
    /// Weight of the newest value in the moving means. Default 0.05.
    pub lambda: f64,
    /// Also detect decreases of the mean. Default false.
    pub two_sided_test: bool,
}

impl Default for HddmWConfig {
    fn default() -> Self {
        Self {
            drift_confidence: 0.001,
            warning_confidence: 0.005,
            lambda: 0.05,
            two_sided_test: false,
        }
    }
}

/// An exponentially weighted sample and its independent bound condition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Sample {
    ewma: EwMean,
    init: bool,
    ibc: f64,
}

impl Sample {
    fn new(lambda: f64) -> Self {
        Self {
            ewma: EwMean::new(lambda),
            init: false,
            ibc: 1.0,
        }
    }

    fn update(&mut self, x: f64, lambda: f64) {
        self.ewma.update(x);
        self.init = true;
        self.ibc = lambda * lambda + (1.0 - lambda) * (1.0 - lambda) * self.ibc;
    }
}

/// HDDM_W over values in [0, 1].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HddmW {
    config: HddmWConfig,
    total: Sample,
    s1_decr: Sample,
    s1_incr: Sample,
    s2_decr: Sample,
    s2_incr: Sample,
    incr_cutpoint: f64,
    decr_cutpoint: f64,
    drift: bool,
    warning: bool,
}

impl Default for HddmW {
    fn default() -> Self {
        Self::fresh(HddmWConfig::default())
    }
}

fn mcdiarmid_bound(ibc: f64, confidence: f64) -> f64 {
    (ibc * (1.0 / confidence).ln() / 2.0).sqrt()
}

/// Whether `later`'s mean exceeds `earlier`'s by more than the bound.
fn has_mean_changed(earlier: &Sample, later: &Sample, confidence: f64) -> bool {
    if !(earlier.init && later.init) {
        return false;
    }
    let bound = mcdiarmid_bound(earlier.ibc + later.ibc, confidence);
    later.ewma.get() - earlier.ewma.get() > bound
}

impl HddmW {
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a confidence outside (0, 1) or a `lambda`
    /// outside [0, 1].
    pub fn new(config: HddmWConfig) -> Result<Self> {
        for (field, v) in [
            ("drift_confidence", config.drift_confidence),
            ("warning_confidence", config.warning_confidence),
        ] {
            check(v > 0.0 && v < 1.0, field, "must be in (0, 1)")?;
        }
        check(
            (0.0..=1.0).contains(&config.lambda),
            "lambda",
            "must be in [0, 1]",
        )?;
        Ok(Self::fresh(config))
    }

    fn fresh(config: HddmWConfig) -> Self {
        let s = Sample::new(config.lambda);
        Self {
            config,
            total: s,
            s1_decr: s,
            s1_incr: s,
            s2_decr: s,
            s2_incr: s,
            incr_cutpoint: f64::INFINITY,
            decr_cutpoint: f64::NEG_INFINITY,
            drift: false,
            warning: false,
        }
    }
}

impl DriftDetector for HddmW {
    fn update(&mut self, x: f64) -> DetectorState {
        if !x.is_finite() {
            return self.state();
        }
        if self.drift {
            self.reset();
        }
        let lambda = self.config.lambda;
        let (drift_c, warn_c) = (self.config.drift_confidence, self.config.warning_confidence);
        self.total.update(x, lambda);

        let eps = mcdiarmid_bound(self.total.ibc, drift_c);
        if self.total.ewma.get() + eps < self.incr_cutpoint {
            self.incr_cutpoint = self.total.ewma.get() + eps;
            self.s1_incr = self.total;
            self.s2_incr = Sample::new(lambda);
        } else {
            self.s2_incr.update(x, lambda);
        }
        if has_mean_changed(&self.s1_incr, &self.s2_incr, drift_c) {
            (self.drift, self.warning) = (true, false);
        } else if has_mean_changed(&self.s1_incr, &self.s2_incr, warn_c) {
            (self.drift, self.warning) = (false, true);
        } else {
            (self.drift, self.warning) = (false, false);
        }

        let eps = mcdiarmid_bound(self.total.ibc, drift_c);
        if self.total.ewma.get() - eps > self.decr_cutpoint {
            self.decr_cutpoint = self.total.ewma.get() - eps;
            self.s1_decr = self.total;
            self.s2_decr = Sample::new(lambda);
        } else {
            self.s2_decr.update(x, lambda);
        }
        if self.config.two_sided_test {
            if has_mean_changed(&self.s2_decr, &self.s1_decr, drift_c) {
                self.drift = true;
            } else if has_mean_changed(&self.s2_decr, &self.s1_decr, warn_c) {
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
