//! ADWIN as a [`DriftDetector`]: the bucket-based adaptive window that the Hoeffding
//! adaptive tree already uses (`freshet_learn::tree::Adwin`), wrapped with River's
//! detector contract — after a drift, the next update starts from an empty window.

use serde::{Deserialize, Serialize};

pub use freshet_learn::tree::AdwinConfig;

use super::{DetectorState, DriftDetector};
use crate::{Error, Result};

/// ADWIN (Bifet & Gavaldà 2007) with River's defaults: delta 0.002, clock 32,
/// max_buckets 5, min_window_length 5, grace_period 10.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adwin {
    window: freshet_learn::tree::Adwin,
    state: DetectorState,
}

impl Default for Adwin {
    fn default() -> Self {
        Self {
            window: freshet_learn::tree::Adwin::default(),
            state: DetectorState::Stable,
        }
    }
}

impl Adwin {
    /// # Errors
    /// [`Error::InvalidConfig`] when `delta` is not in (0, 1).
    pub fn new(config: AdwinConfig) -> Result<Self> {
        let window = freshet_learn::tree::Adwin::new(config).map_err(|_| Error::InvalidConfig {
            field: "delta",
            problem: "must be in (0, 1)",
        })?;
        Ok(Self {
            window,
            state: DetectorState::Stable,
        })
    }

    /// Mean of the values in the current window.
    pub fn estimation(&self) -> f64 {
        self.window.estimation()
    }

    /// Number of values in the current window.
    pub fn width(&self) -> u64 {
        self.window.width()
    }
}

impl DriftDetector for Adwin {
    fn update(&mut self, x: f64) -> DetectorState {
        if !x.is_finite() {
            return self.state;
        }
        if self.state == DetectorState::Drift {
            self.reset();
        }
        self.state = if self.window.update(x) {
            DetectorState::Drift
        } else {
            DetectorState::Stable
        };
        self.state
    }

    fn state(&self) -> DetectorState {
        self.state
    }

    fn reset(&mut self) {
        // The configuration was validated when the detector was built, so rebuilding
        // from it cannot fail; the default is only a formal fallback.
        let config = self.window.config().clone();
        self.window = freshet_learn::tree::Adwin::new(config).unwrap_or_default();
        self.state = DetectorState::Stable;
    }
}
