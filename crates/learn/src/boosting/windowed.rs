//! Gradient-boosted trees made online: refitted every few labels on the newest rows,
//! and on the rows since the change once its own error drifts.
//!
//! A booster retrained on the current concept learns thresholds and interactions
//! from a few hundred rows, which online trees take thousands to find; what it lacks
//! is the online contract. [`WindowedBooster`] keeps the newest `window` labelled
//! rows, refits an ensemble on them every `refit_every` labels, and watches its own
//! test-then-train 0/1 error with ADWIN: when that error rises, the rows before the
//! change are dropped (ADWIN's window, once shrunk, is the rows since it), and the
//! ensemble is refitted as soon as `min_rows` of the new concept are in. Deterministic:
//! the same rows in the same order give the same ensemble, so a live state replays.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{GbtError, GbtParams, GradientBoostedTrees, Loss};
use crate::Classifier;
use crate::tree::{Adwin, AdwinConfig};

/// Parameters of [`WindowedBooster`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowedBoosterConfig {
    /// The booster refitted each time (log loss).
    pub params: GbtParams,
    /// Newest labelled rows kept and fitted on.
    pub window: usize,
    /// Labels between two refits.
    pub refit_every: usize,
    /// Rows needed before a fit (the first, and the first after a change).
    pub min_rows: usize,
    /// The detector on the booster's own 0/1 error.
    pub adwin: AdwinConfig,
}

impl Default for WindowedBoosterConfig {
    fn default() -> Self {
        Self {
            params: GbtParams {
                n_trees: 50,
                max_depth: 4,
                max_bins: 64,
                min_samples_leaf: 5,
                ..GbtParams::default()
            },
            window: 2_000,
            refit_every: 100,
            min_rows: 100,
            adwin: AdwinConfig::default(),
        }
    }
}

impl WindowedBoosterConfig {
    /// Check the values; the message names the field.
    ///
    /// # Errors
    /// [`GbtError`] from the booster's parameters, or one naming the window field.
    pub fn validate(&self) -> Result<(), GbtError> {
        if self.params.loss != Loss::LogLoss {
            return Err(GbtError::InvalidParam {
                name: "loss",
                reason: "a windowed booster is a classifier (log loss)",
            });
        }
        self.params.validate()?;
        let positive = |name: &'static str, v: usize| {
            if v == 0 {
                Err(GbtError::InvalidParam {
                    name,
                    reason: "must be at least 1",
                })
            } else {
                Ok(())
            }
        };
        positive("window", self.window)?;
        positive("refit_every", self.refit_every)?;
        positive("min_rows", self.min_rows)?;
        if self.min_rows > self.window {
            return Err(GbtError::InvalidParam {
                name: "min_rows",
                reason: "must be at most the window",
            });
        }
        self.adwin.validate().map_err(|_| GbtError::InvalidParam {
            name: "adwin",
            reason: "a detector parameter is out of range",
        })
    }
}

/// Gradient-boosted trees refitted on a sliding window of labelled rows, an online
/// classifier (see the module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WindowedBooster {
    config: WindowedBoosterConfig,
    rows: VecDeque<(Vec<f64>, usize)>,
    since_fit: usize,
    detector: Adwin,
    fitted: Option<GradientBoostedTrees>,
    fits: u64,
    changes: u64,
}

impl WindowedBooster {
    /// A booster that has learnt nothing.
    ///
    /// # Errors
    /// [`GbtError::InvalidParam`] naming the parameter out of range.
    pub fn new(config: WindowedBoosterConfig) -> Result<Self, GbtError> {
        config.validate()?;
        let detector = Adwin::with_valid_config(config.adwin.clone());
        Ok(Self {
            config,
            rows: VecDeque::new(),
            since_fit: 0,
            detector,
            fitted: None,
            fits: 0,
            changes: 0,
        })
    }

    /// The parameters.
    pub fn config(&self) -> &WindowedBoosterConfig {
        &self.config
    }

    /// Rows held for the next fit.
    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Fits so far.
    pub fn fits(&self) -> u64 {
        self.fits
    }

    /// Changes its detector has found (each dropped the rows before it).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The ensemble of the last fit; `None` before the first.
    pub fn fitted(&self) -> Option<&GradientBoostedTrees> {
        self.fitted.as_ref()
    }

    fn refit(&mut self) {
        let xs: Vec<Vec<f64>> = self.rows.iter().map(|(x, _)| x.clone()).collect();
        let ys: Vec<f64> = self.rows.iter().map(|(_, y)| *y as f64).collect();
        // A window the booster refuses (rows of different widths, say) keeps the last
        // ensemble answering; the next refit tries again on newer rows.
        if let Ok(g) = GradientBoostedTrees::fit(self.config.params.clone(), &xs, &ys, None) {
            self.fitted = Some(g);
            self.fits += 1;
        }
        self.since_fit = 0;
    }
}

impl Classifier for WindowedBooster {
    fn learn_one(&mut self, x: &[f64], y: usize) {
        if y >= super::MAX_CLASSES {
            return;
        }
        // Test, then train: the error of the answer it would have given.
        if let Some(g) = &self.fitted {
            let wrong = g.predict_one(x) != Some(y);
            if self.detector.update(f64::from(u8::from(wrong))) {
                // ADWIN's shrunk window is the rows since the change.
                let keep = usize::try_from(self.detector.width()).unwrap_or(usize::MAX);
                while self.rows.len() > keep {
                    self.rows.pop_front();
                }
                self.changes += 1;
                // Refit as soon as the new concept has enough rows.
                self.since_fit = self.config.refit_every;
            }
        }
        self.rows.push_back((x.to_vec(), y));
        while self.rows.len() > self.config.window {
            self.rows.pop_front();
        }
        self.since_fit += 1;
        // The first fit comes as soon as `min_rows` are in; a fit the booster refused
        // is tried again at the usual cadence, not on every label.
        let first = self.fitted.is_none() && self.rows.len() == self.config.min_rows;
        if self.rows.len() >= self.config.min_rows
            && (first || self.since_fit >= self.config.refit_every)
        {
            self.refit();
        }
    }

    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        self.fitted
            .as_ref()
            .map(|g| g.predict_proba_one(x))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two concepts on two features: first the label is x0 > 0.5, then x1 > 0.5.
    fn stream(n: usize, flip_at: usize) -> Vec<(Vec<f64>, usize)> {
        let mut s = 7u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|i| {
                let x = vec![next(), next()];
                let y = if i < flip_at { x[0] > 0.5 } else { x[1] > 0.5 };
                (x, usize::from(y))
            })
            .collect()
    }

    #[test]
    fn recovers_within_a_few_hundred_rows_of_an_abrupt_change() {
        let mut m = WindowedBooster::new(WindowedBoosterConfig::default()).unwrap();
        let rows = stream(6_000, 3_000);
        let mut right_after = 0;
        for (i, (x, y)) in rows.iter().enumerate() {
            if (3_600..4_100).contains(&i) && m.predict_one(x) == Some(*y) {
                right_after += 1;
            }
            m.learn_one(x, *y);
        }
        assert!(m.changes() >= 1, "the change is detected");
        // 600 rows after the change, 500 answers in a row are nearly all right.
        assert!(right_after >= 475, "{right_after} of 500 right");
    }

    #[test]
    fn answers_nothing_before_min_rows_and_replays_exactly() {
        let cfg = WindowedBoosterConfig::default();
        let mut a = WindowedBooster::new(cfg.clone()).unwrap();
        let rows = stream(1_000, 500);
        for (x, y) in &rows[..cfg.min_rows - 1] {
            a.learn_one(x, *y);
        }
        assert!(a.predict_proba_one(&[0.9, 0.1]).is_empty());
        let mut b = WindowedBooster::new(cfg).unwrap();
        for (x, y) in &rows[a.rows()..] {
            a.learn_one(x, *y);
        }
        for (x, y) in &rows {
            b.learn_one(x, *y);
        }
        for (x, _) in rows.iter().take(50) {
            assert_eq!(a.predict_proba_one(x), b.predict_proba_one(x));
        }
    }

    #[test]
    fn rejects_bad_parameters_by_name() {
        let bad = WindowedBoosterConfig {
            min_rows: 5_000,
            ..WindowedBoosterConfig::default()
        };
        let e = WindowedBooster::new(bad).unwrap_err().to_string();
        assert!(e.contains("min_rows"), "{e}");
        let bad = WindowedBoosterConfig {
            refit_every: 0,
            ..WindowedBoosterConfig::default()
        };
        let e = WindowedBooster::new(bad).unwrap_err().to_string();
        assert!(e.contains("refit_every"), "{e}");
    }
}
