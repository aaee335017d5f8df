//! Running mean and variance (Welford), with revert.

/// Count, mean and sum of squared deviations of a stream of numbers, updated one value
/// at a time with Welford's algorithm; a value can be reverted.
///
/// ```rust
/// use freshet_learn::metrics::RunningMoments;
///
/// let mut m = RunningMoments::default();
/// for x in [1.0, 2.0, 4.0] {
///     m.update(x);
/// }
/// assert!((m.mean() - 7.0 / 3.0).abs() < 1e-12);
/// assert!((m.variance(1) - 7.0 / 3.0).abs() < 1e-12); // sample variance
/// m.revert(4.0);
/// assert_eq!(m.count(), 2);
/// assert!((m.mean() - 1.5).abs() < 1e-12);
/// assert!((m.variance(0) - 0.25).abs() < 1e-12); // population variance
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunningMoments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl RunningMoments {
    /// Add one value.
    pub fn update(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Remove one value added earlier. Reverting the last value resets the state
    /// exactly; reverting from an empty state does nothing.
    pub fn revert(&mut self, x: f64) {
        match self.n {
            0 => {}
            1 => *self = RunningMoments::default(),
            n => {
                let old_mean = self.mean;
                self.n = n - 1;
                self.mean = (n as f64 * old_mean - x) / self.n as f64;
                // Rounding may leave a tiny negative sum of squares; clamp it.
                self.m2 = (self.m2 - (x - self.mean) * (x - old_mean)).max(0.0);
            }
        }
    }

    /// Number of values seen.
    pub fn count(&self) -> u64 {
        self.n
    }

    /// Mean of the values; `0.0` when empty.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Sum of squared deviations from the mean.
    pub fn sum_squares(&self) -> f64 {
        self.m2
    }

    /// Variance with `ddof` delta degrees of freedom (`0`: population, `1`: sample);
    /// `0.0` when no more than `ddof` values were seen (River's `stats.Var`).
    pub fn variance(&self, ddof: u64) -> f64 {
        if self.n > ddof {
            self.m2 / (self.n - ddof) as f64
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_direct_computation_and_reverts() {
        let xs = [3.0, -0.5, 2.0, 7.0, 1.25];
        let mut m = RunningMoments::default();
        for x in xs {
            m.update(x);
        }
        let mean = xs.iter().sum::<f64>() / 5.0;
        let ss: f64 = xs.iter().map(|x| (x - mean) * (x - mean)).sum();
        assert!((m.mean() - mean).abs() < 1e-12);
        assert!((m.sum_squares() - ss).abs() < 1e-12);
        assert!((m.variance(1) - ss / 4.0).abs() < 1e-12);
        for x in xs.iter().rev().take(4) {
            m.revert(*x);
        }
        assert_eq!(m.count(), 1);
        assert!((m.mean() - 3.0).abs() < 1e-12);
        assert_eq!(m.variance(1), 0.0);
        m.revert(3.0);
        assert_eq!(m, RunningMoments::default());
        m.revert(1.0);
        assert_eq!(m, RunningMoments::default());
    }
}
