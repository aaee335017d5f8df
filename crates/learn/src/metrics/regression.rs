//! Regression metrics.

use super::{RegressionMetric, RevertRegression, RunningMoments, safe_div};

/// A running mean of a per-example error, with revert.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct MeanError {
    sum: f64,
    n: u64,
}

impl MeanError {
    fn update(&mut self, e: f64) {
        if e.is_finite() {
            self.sum += e;
            self.n += 1;
        }
    }
    fn revert(&mut self, e: f64) {
        if e.is_finite() && self.n > 0 {
            self.n -= 1;
            self.sum = if self.n == 0 { 0.0 } else { self.sum - e };
        }
    }
    fn get(&self) -> f64 {
        safe_div(self.sum, self.n as f64)
    }
}

/// Mean absolute error. Updates with a non-finite error are ignored.
///
/// ```rust
/// use freshet_learn::metrics::{Mae, RegressionMetric};
///
/// let mut metric = Mae::default();
/// for (y, p) in [(3.0, 2.5), (-0.5, 0.0), (2.0, 2.0), (7.0, 8.0)] {
///     metric.update(y, p);
/// }
/// assert_eq!(metric.get(), 0.5);
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mae {
    mean: MeanError,
}

impl RegressionMetric for Mae {
    fn update(&mut self, y_true: f64, y_pred: f64) {
        self.mean.update((y_true - y_pred).abs());
    }
    fn get(&self) -> f64 {
        self.mean.get()
    }
    fn bigger_is_better(&self) -> bool {
        false
    }
}

impl RevertRegression for Mae {
    fn revert(&mut self, y_true: f64, y_pred: f64) {
        self.mean.revert((y_true - y_pred).abs());
    }
}

/// Root mean squared error. Updates with a non-finite squared error are ignored.
///
/// ```rust
/// use freshet_learn::metrics::{RegressionMetric, Rmse};
///
/// let mut metric = Rmse::default();
/// for (y, p) in [(3.0, 2.5), (-0.5, 0.0), (2.0, 2.0), (7.0, 8.0)] {
///     metric.update(y, p);
/// }
/// assert_eq!(metric.get(), 0.375f64.sqrt());
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rmse {
    mean: MeanError,
}

impl RegressionMetric for Rmse {
    fn update(&mut self, y_true: f64, y_pred: f64) {
        self.mean.update((y_true - y_pred) * (y_true - y_pred));
    }
    fn get(&self) -> f64 {
        self.mean.get().sqrt()
    }
    fn bigger_is_better(&self) -> bool {
        false
    }
}

impl RevertRegression for Rmse {
    fn revert(&mut self, y_true: f64, y_pred: f64) {
        self.mean.revert((y_true - y_pred) * (y_true - y_pred));
    }
}

/// Coefficient of determination, `1 - SS_res / SS_tot`, where `SS_tot` is the sum of
/// squared deviations of the targets from their running mean (Welford). As River:
/// `0.0` before two examples and when the targets are all equal. Updates with a
/// non-finite target or squared error are ignored.
///
/// ```rust
/// use freshet_learn::metrics::{R2, RegressionMetric};
///
/// let mut metric = R2::default();
/// for (y, p) in [(3.0, 2.5), (-0.5, 0.0), (2.0, 2.0), (7.0, 8.0)] {
///     metric.update(y, p);
/// }
/// assert_eq!(format!("{:.4}", metric.get()), "0.9486");
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct R2 {
    targets: RunningMoments,
    ss_res: f64,
}

impl R2 {
    fn accepts(y_true: f64, y_pred: f64) -> bool {
        y_true.is_finite() && ((y_true - y_pred) * (y_true - y_pred)).is_finite()
    }
}

impl RegressionMetric for R2 {
    fn update(&mut self, y_true: f64, y_pred: f64) {
        if Self::accepts(y_true, y_pred) {
            self.targets.update(y_true);
            self.ss_res += (y_true - y_pred) * (y_true - y_pred);
        }
    }
    fn get(&self) -> f64 {
        let ss_tot = self.targets.sum_squares();
        if self.targets.count() < 2 || ss_tot == 0.0 {
            return 0.0;
        }
        1.0 - self.ss_res / ss_tot
    }
    fn bigger_is_better(&self) -> bool {
        true
    }
}

impl RevertRegression for R2 {
    fn revert(&mut self, y_true: f64, y_pred: f64) {
        if Self::accepts(y_true, y_pred) && self.targets.count() > 0 {
            self.targets.revert(y_true);
            self.ss_res = if self.targets.count() == 0 {
                0.0
            } else {
                (self.ss_res - (y_true - y_pred) * (y_true - y_pred)).max(0.0)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: [f64; 5] = [3.0, -0.5, 2.0, 7.0, 4.5];
    const P: [f64; 5] = [2.5, 0.0, 2.0, 8.0, 3.0];

    #[test]
    fn mae_and_rmse_by_hand() {
        let (mut mae, mut rmse) = (Mae::default(), Rmse::default());
        for (y, p) in Y.into_iter().zip(P) {
            mae.update(y, p);
            rmse.update(y, p);
        }
        // |errors| = 0.5, 0.5, 0, 1, 1.5
        assert!((mae.get() - 3.5 / 5.0).abs() < 1e-12);
        assert!((rmse.get() - (3.75f64 / 5.0).sqrt()).abs() < 1e-12);
        mae.revert(4.5, 3.0);
        rmse.revert(4.5, 3.0);
        assert!((mae.get() - 0.5).abs() < 1e-12);
        assert!((rmse.get() - 0.375f64.sqrt()).abs() < 1e-12);
        assert!(!mae.bigger_is_better() && !rmse.bigger_is_better());
    }

    #[test]
    fn r2_against_direct_computation() {
        let mut r2 = R2::default();
        let mut seen = vec![];
        for (y, p) in Y.into_iter().zip(P) {
            r2.update(y, p);
            seen.push((y, p));
            let n = seen.len() as f64;
            let mean = seen.iter().map(|s| s.0).sum::<f64>() / n;
            let ss_tot: f64 = seen.iter().map(|s| (s.0 - mean).powi(2)).sum();
            let ss_res: f64 = seen.iter().map(|s| (s.0 - s.1).powi(2)).sum();
            let direct = if seen.len() < 2 {
                0.0
            } else {
                1.0 - ss_res / ss_tot
            };
            assert!(
                (r2.get() - direct).abs() < 1e-12,
                "{} vs {direct}",
                r2.get()
            );
        }
        // First four: mean 2.875, SS_tot 29.1875, SS_res 1.5.
        r2.revert(4.5, 3.0);
        assert!((r2.get() - (1.0 - 1.5 / 29.1875)).abs() < 1e-12);
    }

    #[test]
    fn r2_undefined_cases_are_zero() {
        let mut r2 = R2::default();
        assert_eq!(r2.get(), 0.0);
        r2.update(1.0, 0.0);
        assert_eq!(r2.get(), 0.0);
        r2.update(1.0, 2.0);
        assert_eq!(r2.get(), 0.0); // constant targets
        r2.update(f64::NAN, 1.0);
        r2.update(1.0, f64::INFINITY);
        assert_eq!(r2.targets.count(), 2);
    }

    #[test]
    fn non_finite_errors_are_ignored() {
        let mut mae = Mae::default();
        mae.update(1.0, f64::NAN);
        mae.update(1.0, 2.0);
        mae.revert(1.0, f64::NAN);
        assert_eq!(mae.get(), 1.0);
        assert!(serde_json::to_string(&mae).is_ok());
    }
}
