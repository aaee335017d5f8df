//! ADWIN, the adaptive sliding window of Bifet & Gavaldà (2007), in its bucket-based form
//! (ADWIN2).
//!
//! The window is summarised by an exponential histogram: row `i` holds up to
//! `max_buckets` buckets of `2^i` values each (total and variance); when a row overflows
//! its two oldest buckets merge into one bucket of the next row. Every `clock` updates,
//! once more than `grace_period` values have arrived, each boundary between buckets is
//! tested as a cut `W = W0 · W1` (older · newer); the cut is significant when
//!
//! `|mean(W0) − mean(W1)| > sqrt(2/m · σ²_W · ln(2 ln|W| / δ)) + 2/(3m) · ln(2 ln|W| / δ)`
//!
//! with `1/m = 1/(n0 − L + 1) + 1/(n1 − L + 1)`, `L = min_window_length` and both halves
//! at least `L` long. While a cut is significant the oldest bucket is dropped and the
//! scan starts again; a drift is reported for that update.

use std::collections::VecDeque;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use super::config::{TreeConfigError, check};
use super::exact;

/// Parameters of [`Adwin`]; the defaults are River's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdwinConfig {
    /// Confidence of the cut test, in (0, 1); smaller means fewer false alarms and
    /// slower detection. Default 0.002.
    pub delta: f64,
    /// Test for a cut every `clock` updates. Default 32.
    pub clock: NonZeroU32,
    /// Buckets of each size kept before the two oldest merge. Default 5.
    pub max_buckets: NonZeroU32,
    /// Minimum length of each half of a cut. Default 5.
    pub min_window_length: NonZeroU32,
    /// No test before the window holds more than this many values. Default 10.
    pub grace_period: u32,
}

impl Default for AdwinConfig {
    fn default() -> Self {
        Self {
            delta: 0.002,
            clock: NonZeroU32::new(32).unwrap_or(NonZeroU32::MIN),
            max_buckets: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            min_window_length: NonZeroU32::new(5).unwrap_or(NonZeroU32::MIN),
            grace_period: 10,
        }
    }
}

impl AdwinConfig {
    /// Check the values; the error names the field.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), TreeConfigError> {
        check(
            self.delta > 0.0 && self.delta < 1.0,
            "delta",
            "must be in (0, 1)",
        )
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Bucket {
    #[serde(with = "exact")]
    total: f64,
    #[serde(with = "exact")]
    variance: f64,
}

/// The ADWIN change detector over a stream of real values (typically 0/1 errors).
///
/// Call [`Adwin::update`], then read [`Adwin::drift_detected`], [`Adwin::estimation`]
/// (the mean of the current window) and [`Adwin::width`]. Non-finite values are ignored.
///
/// ```
/// use freshet_learn::tree::Adwin;
///
/// let mut adwin = Adwin::default();
/// let mut detected_at = None;
/// for t in 0..2000 {
///     let x = if t < 1000 { 0.0 } else { 1.0 };
///     if adwin.update(x) && detected_at.is_none() {
///         detected_at = Some(t);
///     }
/// }
/// // The first check after the change (every 32 updates) already sees it.
/// assert_eq!(detected_at, Some(1023));
/// assert!(adwin.estimation() > 0.95);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Adwin {
    config: AdwinConfig,
    /// `rows[i]` holds buckets of `2^i` values, oldest at the front.
    rows: Vec<VecDeque<Bucket>>,
    #[serde(with = "exact")]
    total: f64,
    #[serde(with = "exact")]
    variance: f64,
    width: u64,
    tick: u64,
    n_detections: u64,
    drift_detected: bool,
}

impl Default for Adwin {
    fn default() -> Self {
        Self::with_valid_config(AdwinConfig::default())
    }
}

impl Adwin {
    /// A detector with the given parameters.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn new(config: AdwinConfig) -> Result<Self, TreeConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    pub(crate) fn with_valid_config(config: AdwinConfig) -> Self {
        Self {
            config,
            rows: Vec::new(),
            total: 0.0,
            variance: 0.0,
            width: 0,
            tick: 0,
            n_detections: 0,
            drift_detected: false,
        }
    }

    /// The parameters.
    pub fn config(&self) -> &AdwinConfig {
        &self.config
    }

    /// Add a value; returns whether a drift was detected (the window shrank).
    pub fn update(&mut self, x: f64) -> bool {
        self.drift_detected = false;
        if !x.is_finite() {
            return false;
        }
        self.insert(x);
        self.tick += 1;
        if self.tick.is_multiple_of(u64::from(self.config.clock.get()))
            && self.width > u64::from(self.config.grace_period)
        {
            self.drift_detected = self.shrink();
            if self.drift_detected {
                self.n_detections += 1;
            }
        }
        self.drift_detected
    }

    /// Whether the last update detected a drift.
    pub fn drift_detected(&self) -> bool {
        self.drift_detected
    }

    /// Mean of the values in the window; 0 when empty.
    pub fn estimation(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            self.total / self.width as f64
        }
    }

    /// Number of values in the window.
    pub fn width(&self) -> u64 {
        self.width
    }

    /// Variance of the values in the window; 0 when empty.
    pub fn variance(&self) -> f64 {
        if self.width == 0 {
            0.0
        } else {
            self.variance / self.width as f64
        }
    }

    /// How many updates reported a drift.
    pub fn n_detections(&self) -> u64 {
        self.n_detections
    }

    fn insert(&mut self, x: f64) {
        if self.rows.is_empty() {
            self.rows.push(VecDeque::new());
        }
        if let Some(row) = self.rows.first_mut() {
            row.push_back(Bucket {
                total: x,
                variance: 0.0,
            });
        }
        self.width += 1;
        if self.width > 1 {
            let n = self.width as f64;
            let prev_mean = self.total / (n - 1.0);
            self.variance += (n - 1.0) * (x - prev_mean) * (x - prev_mean) / n;
        }
        self.total += x;
        self.compress();
    }

    fn compress(&mut self) {
        let max = self.config.max_buckets.get() as usize;
        let mut i = 0;
        while i < self.rows.len() && self.rows[i].len() > max {
            let size = (1u64 << i.min(63)) as f64;
            let (Some(a), Some(b)) = (self.rows[i].pop_front(), self.rows[i].pop_front()) else {
                break;
            };
            let (mu_a, mu_b) = (a.total / size, b.total / size);
            let merged = Bucket {
                total: a.total + b.total,
                variance: a.variance
                    + b.variance
                    + size * size * (mu_a - mu_b).powi(2) / (2.0 * size),
            };
            if i + 1 == self.rows.len() {
                self.rows.push(VecDeque::new());
            }
            self.rows[i + 1].push_back(merged);
            i += 1;
        }
    }

    /// Drop oldest buckets while some cut is significant; true if any was dropped.
    fn shrink(&mut self) -> bool {
        let mut dropped = false;
        while self.has_significant_cut() {
            if !self.drop_oldest() {
                break;
            }
            dropped = true;
        }
        dropped
    }

    fn has_significant_cut(&self) -> bool {
        let n_buckets: usize = self.rows.iter().map(VecDeque::len).sum();
        let min_len = f64::from(self.config.min_window_length.get());
        let width = self.width as f64;
        let (mut n0, mut u0) = (0.0, 0.0);
        let (mut n1, mut u1) = (width, self.total);
        let mut seen = 0;
        for (i, row) in self.rows.iter().enumerate().rev() {
            let size = (1u64 << i.min(63)) as f64;
            for bucket in row {
                seen += 1;
                if seen == n_buckets {
                    // The newest bucket always stays in W1.
                    return false;
                }
                n0 += size;
                n1 -= size;
                u0 += bucket.total;
                u1 -= bucket.total;
                if n0 >= min_len
                    && n1 >= min_len
                    && self.cut_is_significant(n0, n1, u0 / n0 - u1 / n1)
                {
                    return true;
                }
            }
        }
        false
    }

    fn cut_is_significant(&self, n0: f64, n1: f64, mean_diff: f64) -> bool {
        let width = self.width as f64;
        let min_len = f64::from(self.config.min_window_length.get());
        let log_term = (2.0 * width.ln() / self.config.delta).ln();
        let m_recip = 1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0);
        let epsilon =
            (2.0 * m_recip * self.variance() * log_term).sqrt() + 2.0 / 3.0 * log_term * m_recip;
        mean_diff.abs() > epsilon
    }

    fn drop_oldest(&mut self) -> bool {
        let Some(last) = self.rows.len().checked_sub(1) else {
            return false;
        };
        let Some(bucket) = self.rows[last].pop_front() else {
            return false;
        };
        if self.rows[last].is_empty() {
            self.rows.pop();
        }
        let n = (1u64 << last.min(63)) as f64;
        self.width = self.width.saturating_sub(1u64 << last.min(63));
        self.total -= bucket.total;
        if self.width == 0 {
            self.total = 0.0;
            self.variance = 0.0;
        } else {
            let w = self.width as f64;
            let mu_window = self.total / w;
            let mu_bucket = bucket.total / n;
            self.variance -= bucket.variance + n * w * (mu_bucket - mu_window).powi(2) / (n + w);
            self.variance = self.variance.max(0.0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::rng::SplitMix64;

    #[test]
    fn constant_stream_never_drifts() {
        let mut adwin = Adwin::default();
        for _ in 0..10_000 {
            assert!(!adwin.update(0.3));
        }
        assert_eq!(adwin.n_detections(), 0);
        assert_eq!(adwin.width(), 10_000);
        assert!((adwin.estimation() - 0.3).abs() < 1e-9);
        assert!(adwin.variance().abs() < 1e-9);
    }

    #[test]
    fn bucket_histogram_keeps_exact_totals() {
        let mut adwin = Adwin::default();
        for i in 0..1000 {
            adwin.update(f64::from(i % 2));
        }
        // Mean 0.5, population variance 0.25, whatever the bucket merging did.
        assert_eq!(adwin.width(), 1000);
        assert!((adwin.estimation() - 0.5).abs() < 1e-12);
        assert!((adwin.variance() - 0.25).abs() < 1e-9);
        // At most max_buckets + 1 buckets per row and ~log2(n / 5) rows.
        assert!(adwin.rows.iter().all(|r| r.len() <= 6));
        assert!(adwin.rows.len() <= 9);
        let held: u64 = adwin
            .rows
            .iter()
            .enumerate()
            .map(|(i, r)| r.len() as u64 * (1 << i))
            .sum();
        assert_eq!(held, 1000);
    }

    #[test]
    fn abrupt_change_zero_to_one_is_detected_at_the_next_check() {
        let mut adwin = Adwin::default();
        let mut detections = Vec::new();
        for t in 0..1500 {
            if adwin.update(if t < 1000 { 0.0 } else { 1.0 }) {
                detections.push(t);
            }
        }
        // Checks happen on updates 32, 64, …: update number 1024 is index 1023.
        assert_eq!(detections.first(), Some(&1023));
        // The window now holds (almost) only ones.
        assert!(adwin.estimation() > 0.95, "{}", adwin.estimation());
        assert!(adwin.width() < 600);
    }

    #[test]
    fn bernoulli_mean_shift_is_detected_quickly_and_not_before() {
        let mut rng = SplitMix64::new(42);
        let mut adwin = Adwin::default();
        let mut detections = Vec::new();
        for t in 0..3000 {
            let p = if t < 2000 { 0.2 } else { 0.8 };
            let x = if rng.next_f64() < p { 1.0 } else { 0.0 };
            if adwin.update(x) {
                detections.push(t);
            }
        }
        assert!(detections.iter().all(|&t| t >= 2000), "{detections:?}");
        let first = detections.first().copied().unwrap_or(usize::MAX);
        assert!(first < 2000 + 100, "first detection at {first}");
        assert!(adwin.estimation() > 0.7);
    }

    #[test]
    fn no_check_before_grace_period_and_nan_ignored() {
        let config = AdwinConfig {
            clock: NonZeroU32::MIN,
            ..AdwinConfig::default()
        };
        let mut adwin = Adwin::new(config).unwrap();
        for t in 0..10 {
            assert!(!adwin.update(if t < 5 { 0.0 } else { 1.0 }));
        }
        assert!(!adwin.update(f64::NAN));
        assert_eq!(adwin.width(), 10);
        assert!(
            Adwin::new(AdwinConfig {
                delta: 0.0,
                ..AdwinConfig::default()
            })
            .is_err()
        );
    }

    #[test]
    fn serde_round_trip_keeps_state() {
        let mut adwin = Adwin::default();
        for t in 0..777 {
            adwin.update(f64::from(t % 3));
        }
        let json = serde_json::to_string(&adwin).unwrap();
        let mut back: Adwin = serde_json::from_str(&json).unwrap();
        assert_eq!(back.width(), adwin.width());
        for t in 0..500 {
            let x = if t % 2 == 0 { 5.0 } else { 0.0 };
            assert_eq!(back.update(x), adwin.update(x));
        }
        assert_eq!(back.estimation(), adwin.estimation());
    }
}
