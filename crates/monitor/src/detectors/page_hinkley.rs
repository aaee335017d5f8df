//! The Page-Hinkley test (Page 1954), River's variant: a CUSUM of the deviations from
//! the running mean, with a forgetting factor, in one or both directions.

use serde::{Deserialize, Serialize};

use super::running::Mean;
use super::{DetectorState, DriftDetector, check};
use crate::Result;

/// Which changes of the mean to detect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageHinkleyMode {
    Up,
    Down,
    Both,
}

/// Parameters of [`PageHinkley`]; the defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PageHinkleyConfig {
    /// No detection before this many values. Default 30.
    pub min_instances: u64,
    /// Magnitude of change tolerated. Default 0.005.
    pub delta: f64,
    /// Detection threshold (λ). Default 50.
    pub threshold: f64,
    /// Forgetting factor of the cumulative sums. Default 1 − 0.0001.
    pub alpha: f64,
    /// Default `both`.
    pub mode: PageHinkleyMode,
}

impl Default for PageHinkleyConfig {
    fn default() -> Self {
        Self {
            min_instances: 30,
            delta: 0.005,
            threshold: 50.0,
            alpha: 1.0 - 0.0001,
            mode: PageHinkleyMode::Both,
        }
    }
}

/// Page-Hinkley change detector.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageHinkley {
    config: PageHinkleyConfig,
    mean: Mean,
    sum_increase: f64,
    sum_decrease: f64,
    min_increase: f64,
    max_decrease: f64,
    state: DetectorState,
}

impl Default for PageHinkley {
    fn default() -> Self {
        Self::fresh(PageHinkleyConfig::default())
    }
}

impl PageHinkley {
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for a non-finite `delta` or `threshold`, or an
    /// `alpha` outside (0, 1].
    pub fn new(config: PageHinkleyConfig) -> Result<Self> {
        check(config.delta.is_finite(), "delta", "must be finite")?;
        check(config.threshold.is_finite(), "threshold", "must be finite")?;
        check(
            config.alpha > 0.0 && config.alpha <= 1.0,
            "alpha",
            "must be in (0, 1]",
        )?;
        Ok(Self::fresh(config))
    }

    fn fresh(config: PageHinkleyConfig) -> Self {
        Self {
            config,
            mean: Mean::default(),
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: f64::INFINITY,
            max_decrease: -1.0,
            state: DetectorState::Stable,
        }
    }
}

impl DriftDetector for PageHinkley {
    fn update(&mut self, x: f64) -> DetectorState {
        if !x.is_finite() {
            return self.state;
        }
        if self.state == DetectorState::Drift {
            self.reset();
        }
        let c = &self.config;
        self.mean.update(x);
        let dev = x - self.mean.mean;
        self.sum_increase = c.alpha * self.sum_increase + dev - c.delta;
        self.sum_decrease = c.alpha * self.sum_decrease + dev + c.delta;
        self.min_increase = self.min_increase.min(self.sum_increase);
        self.max_decrease = self.max_decrease.max(self.sum_decrease);
        if self.mean.n >= c.min_instances as f64 {
            let up = self.sum_increase - self.min_increase > c.threshold;
            let down = self.max_decrease - self.sum_decrease > c.threshold;
            let drift = match c.mode {
                PageHinkleyMode::Up => up,
                PageHinkleyMode::Down => down,
                PageHinkleyMode::Both => up || down,
            };
            self.state = super::state_of(drift, false);
        }
        self.state
    }

    fn state(&self) -> DetectorState {
        self.state
    }

    fn reset(&mut self) {
        *self = Self::fresh(self.config.clone());
    }
}
