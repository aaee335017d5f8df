//! KSWIN, Kolmogorov–Smirnov windowing (Raab et al. 2020): keep the last `window_size`
//! values; once the window is full, compare its newest `stat_size` values with
//! `stat_size` values drawn without replacement from the older part, by a two-sample
//! KS test. A drift is `p ≤ alpha` and `D > 0.1`.
//!
//! The draw uses Python's `random.Random(seed).sample` exactly as River does, and the
//! p-value SciPy's exact two-sample distribution, so the same seed gives River's
//! detections. River's default seed is `None` (fresh OS entropy); Freshet takes
//! randomness as a parameter, so the seed is required and defaults to 0.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::py_random::PyRandom;
use super::{DetectorState, DriftDetector, check};
use crate::Result;
use crate::stats::ks_2samp;

/// Parameters of [`Kswin`]; the defaults are River's (but for the seed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KswinConfig {
    /// Significance of the KS test; River advises below 0.01. Default 0.005.
    pub alpha: f64,
    /// Values kept. Default 100.
    pub window_size: usize,
    /// Newest values tested against as many older ones. Default 30.
    pub stat_size: usize,
    /// Seed of the sampling. Default 0.
    pub seed: u64,
}

impl Default for KswinConfig {
    fn default() -> Self {
        Self {
            alpha: 0.005,
            window_size: 100,
            stat_size: 30,
            seed: 0,
        }
    }
}

/// KSWIN over any real values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kswin {
    config: KswinConfig,
    window: VecDeque<f64>,
    rng: PyRandom,
    p_value: f64,
    state: DetectorState,
}

impl Default for Kswin {
    fn default() -> Self {
        Self::fresh(KswinConfig::default())
    }
}

impl Kswin {
    /// # Errors
    /// [`crate::Error::InvalidConfig`] for `alpha` outside [0, 1], a zero `stat_size`,
    /// or a `stat_size` not below `window_size` (the older part would be too small to
    /// draw from), or windows of 2³² values or more.
    pub fn new(config: KswinConfig) -> Result<Self> {
        check(
            (0.0..=1.0).contains(&config.alpha),
            "alpha",
            "must be in [0, 1]",
        )?;
        check(config.stat_size > 0, "stat_size", "must be positive")?;
        check(
            config.stat_size * 2 <= config.window_size,
            "stat_size",
            "must be at most half of window_size",
        )?;
        check(
            u32::try_from(config.window_size).is_ok(),
            "window_size",
            "must be below 2^32",
        )?;
        Ok(Self::fresh(config))
    }

    fn fresh(config: KswinConfig) -> Self {
        Self {
            window: VecDeque::with_capacity(config.window_size),
            rng: PyRandom::new(config.seed),
            config,
            p_value: 0.0,
            state: DetectorState::Stable,
        }
    }

    /// p-value of the last test (0 before the window first fills).
    pub fn p_value(&self) -> f64 {
        self.p_value
    }
}

impl DriftDetector for Kswin {
    fn update(&mut self, x: f64) -> DetectorState {
        if !x.is_finite() {
            return self.state;
        }
        if self.state == DetectorState::Drift {
            self.reset();
        }
        let (size, stat) = (self.config.window_size, self.config.stat_size);
        if self.window.len() == size {
            self.window.pop_front();
        }
        self.window.push_back(x);
        self.state = DetectorState::Stable;
        if self.window.len() >= size {
            let older: Vec<f64> = self
                .rng
                .sample_range(size - stat, stat)
                .into_iter()
                .filter_map(|i| self.window.get(i).copied())
                .collect();
            let recent: Vec<f64> = self.window.iter().skip(size - stat).copied().collect();
            if let Ok(test) = ks_2samp(&older, &recent) {
                self.p_value = test.p_value;
                if test.p_value <= self.config.alpha && test.statistic > 0.1 {
                    self.state = DetectorState::Drift;
                }
            }
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
