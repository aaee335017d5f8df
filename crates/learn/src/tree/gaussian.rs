//! The Gaussian splitter: per class, a weighted Gaussian estimate of one feature plus the
//! minimum and maximum seen; split candidates evenly spaced between the overall minimum
//! and maximum; the class weight on each side estimated from the Gaussian CDFs.

use serde::{Deserialize, Serialize};

use super::criterion::{SplitSuggestion, info_gain};
use super::exact;

const FRAC_2_SQRT_PI: f64 = std::f64::consts::FRAC_2_SQRT_PI;

/// The error function, to about 1e-15.
#[cfg(test)]
pub(crate) fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return -erf(-x);
    }
    if x < 3.0 {
        erf_series(x)
    } else {
        1.0 - erfc_continued_fraction(x)
    }
}

/// The complementary error function `1 − erf(x)`, accurate in the tails.
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        2.0 - erfc(-x)
    } else if x < 3.0 {
        1.0 - erf_series(x)
    } else {
        erfc_continued_fraction(x)
    }
}

/// `erf(x) = 2/√π · e^(−x²) · Σ 2ⁿ x^(2n+1) / (1·3·…·(2n+1))` for `x ≥ 0`: every term is
/// positive, so nothing cancels.
fn erf_series(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    let mut n = 0.0;
    while term > sum * 1e-17 && n < 200.0 {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
    }
    FRAC_2_SQRT_PI * (-x2).exp() * sum
}

/// Laplace's continued fraction `erfc(x) = e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`,
/// evaluated from the tail, for `x ≥ 3`.
fn erfc_continued_fraction(x: f64) -> f64 {
    let mut f = x;
    for k in (1..=60).rev() {
        f = x + f64::from(k) / 2.0 / f;
    }
    (-x * x).exp() / (std::f64::consts::PI.sqrt() * f)
}

/// The standard normal CDF Φ(z).
pub(crate) fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// A weighted running Gaussian estimate (West's weighted Welford update; sample
/// variance with one degree of freedom removed, as River's `stats.Var`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Gaussian {
    #[serde(with = "exact")]
    weight: f64,
    #[serde(with = "exact")]
    mean: f64,
    #[serde(with = "exact")]
    m2: f64,
}

impl Gaussian {
    pub(crate) fn update(&mut self, x: f64, w: f64) {
        if !(w > 0.0 && w.is_finite() && x.is_finite()) {
            return;
        }
        self.weight += w;
        let delta = x - self.mean;
        self.mean += w * delta / self.weight;
        self.m2 += w * delta * (x - self.mean);
    }

    pub(crate) fn weight(&self) -> f64 {
        self.weight
    }

    #[cfg(test)]
    pub(crate) fn mean(&self) -> f64 {
        self.mean
    }

    pub(crate) fn variance(&self) -> f64 {
        if self.weight > 1.0 {
            (self.m2 / (self.weight - 1.0)).max(0.0)
        } else {
            0.0
        }
    }

    pub(crate) fn cdf(&self, x: f64) -> f64 {
        let sd = self.variance().sqrt();
        if sd > 0.0 {
            normal_cdf((x - self.mean) / sd)
        } else if x >= self.mean {
            1.0
        } else {
            0.0
        }
    }

    /// Log density at `x`; `None` while the variance is zero (River skips such terms).
    pub(crate) fn log_pdf(&self, x: f64) -> Option<f64> {
        let var = self.variance();
        if var > 0.0 && self.weight > 0.0 {
            Some(-(x - self.mean).powi(2) / (2.0 * var) - 0.5 * (std::f64::consts::TAU * var).ln())
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ClassObserver {
    gaussian: Gaussian,
    #[serde(with = "exact")]
    min: f64,
    #[serde(with = "exact")]
    max: f64,
}

/// Per-class statistics of one feature at one leaf.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct GaussianSplitter {
    /// Indexed by class; `None` for classes not seen with a value of this feature.
    classes: Vec<Option<ClassObserver>>,
}

impl GaussianSplitter {
    pub(crate) fn update(&mut self, x: f64, class: usize, w: f64) {
        if !(x.is_finite() && w > 0.0 && w.is_finite()) {
            return;
        }
        if self.classes.len() <= class {
            self.classes.resize(class + 1, None);
        }
        let obs = self.classes[class].get_or_insert(ClassObserver {
            gaussian: Gaussian::default(),
            min: x,
            max: x,
        });
        obs.min = obs.min.min(x);
        obs.max = obs.max.max(x);
        obs.gaussian.update(x, w);
    }

    /// `ln p(x | class)` under the class's Gaussian; `None` when unknown.
    pub(crate) fn log_likelihood(&self, x: f64, class: usize) -> Option<f64> {
        self.classes.get(class)?.as_ref()?.gaussian.log_pdf(x)
    }

    fn observers(&self) -> impl Iterator<Item = (usize, &ClassObserver)> {
        self.classes
            .iter()
            .enumerate()
            .filter_map(|(c, o)| o.as_ref().map(|o| (c, o)))
    }

    /// `n_splits` points evenly spaced strictly inside (min, max).
    pub(crate) fn candidates(&self, n_splits: u32) -> Vec<f64> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (_, o) in self.observers() {
            lo = lo.min(o.min);
            hi = hi.max(o.max);
        }
        if lo >= hi {
            return Vec::new();
        }
        let step = (hi - lo) / (f64::from(n_splits) + 1.0);
        (1..=n_splits)
            .map(|i| lo + step * f64::from(i))
            .filter(|&v| lo < v && v < hi)
            .collect()
    }

    /// Estimated class weights left (`<= threshold`) and right of `threshold`.
    pub(crate) fn class_dists(&self, threshold: f64) -> [Vec<f64>; 2] {
        let mut left = vec![0.0; self.classes.len()];
        let mut right = vec![0.0; self.classes.len()];
        for (c, o) in self.observers() {
            let n = o.gaussian.weight();
            if threshold < o.min {
                right[c] = n;
            } else if threshold >= o.max {
                left[c] = n;
            } else {
                left[c] = o.gaussian.cdf(threshold) * n;
                right[c] = n - left[c];
            }
        }
        [left, right]
    }

    /// The candidate of this feature with the highest information gain, if any is valid.
    pub(crate) fn best_split(
        &self,
        pre: &[f64],
        feature: usize,
        n_splits: u32,
        min_branch_fraction: f64,
    ) -> Option<SplitSuggestion> {
        let mut best: Option<SplitSuggestion> = None;
        for threshold in self.candidates(n_splits) {
            let post = self.class_dists(threshold);
            let merit = info_gain(pre, &post, min_branch_fraction);
            if merit > best.as_ref().map_or(f64::NEG_INFINITY, |b| b.merit) {
                best = Some(SplitSuggestion {
                    merit,
                    feature,
                    threshold,
                    children_stats: post,
                });
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn erf_matches_tabulated_values() {
        let table = [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (2.9, 0.9999589021219005),
            (3.5, 0.9999992569016276),
        ];
        for (x, want) in table {
            assert!(close(erf(x), want, 1e-14), "erf({x}) = {}", erf(x));
            assert!(close(erf(-x), -want, 1e-14));
        }
        assert!(close(erfc(3.0) / 2.209049699858544e-05, 1.0, 1e-10));
        assert!(close(erfc(5.0) / 1.537_459_794_428_035e-12, 1.0, 1e-10));
        assert!(erf(f64::NAN).is_nan());
        assert_eq!(erf(40.0), 1.0);
    }

    #[test]
    fn normal_cdf_hand_values() {
        assert!(close(normal_cdf(0.0), 0.5, 1e-15));
        assert!(close(normal_cdf(1.0), 0.8413447460685429, 1e-14));
        assert!(close(normal_cdf(-1.0), 0.15865525393145707, 1e-14));
        assert!(close(normal_cdf(1.959963984540054), 0.975, 1e-12));
        assert!(close(normal_cdf(-3.0), 0.0013498980316301, 1e-14));
    }

    #[test]
    fn weighted_gaussian_matches_repeated_values() {
        let mut a = Gaussian::default();
        a.update(1.0, 2.0);
        a.update(4.0, 1.0);
        let mut b = Gaussian::default();
        for x in [1.0, 1.0, 4.0] {
            b.update(x, 1.0);
        }
        assert!(close(a.mean(), 2.0, 1e-12));
        assert!(close(a.mean(), b.mean(), 1e-12));
        // Sample variance of {1, 1, 4}: (1 + 1 + 4) / 2 = 3.
        assert!(close(a.variance(), 3.0, 1e-12));
        assert!(close(b.variance(), 3.0, 1e-12));
        a.update(f64::NAN, 1.0);
        a.update(1.0, -1.0);
        assert_eq!(a.weight(), 3.0);
    }

    /// Class 0 sees 1, 2, 3 (mean 2, variance 1), class 1 sees 3, 4, 5 (mean 4, variance 1).
    fn two_class_splitter() -> GaussianSplitter {
        let mut s = GaussianSplitter::default();
        for x in [1.0, 2.0, 3.0] {
            s.update(x, 0, 1.0);
        }
        for x in [3.0, 4.0, 5.0] {
            s.update(x, 1, 1.0);
        }
        s
    }

    #[test]
    fn candidates_are_evenly_spaced_inside_the_range() {
        let s = two_class_splitter();
        assert_eq!(s.candidates(3), vec![2.0, 3.0, 4.0]);
        let c10 = s.candidates(10);
        assert_eq!(c10.len(), 10);
        assert!(close(c10[0], 1.0 + 4.0 / 11.0, 1e-12));
        assert!(GaussianSplitter::default().candidates(10).is_empty());
    }

    #[test]
    fn class_distributions_from_normal_cdf_by_hand() {
        let s = two_class_splitter();
        // At 3.0: class 0's max is 3, so all of it goes left; class 1 (mean 4, sd 1) puts
        // Φ(−1) = 0.158655… of its weight 3 on the left.
        let [l, r] = s.class_dists(3.0);
        assert!(close(l[0], 3.0, 1e-12) && close(r[0], 0.0, 1e-12));
        assert!(close(l[1], 3.0 * 0.15865525393145707, 1e-12));
        assert!(close(r[1], 3.0 * 0.8413447460685429, 1e-12));
        // At 2.0: class 0 splits at its mean (Φ(0) = ½), class 1 lies entirely right.
        let [l, r] = s.class_dists(2.0);
        assert!(close(l[0], 1.5, 1e-12) && close(r[0], 1.5, 1e-12));
        assert!(close(l[1], 0.0, 1e-12) && close(r[1], 3.0, 1e-12));
        // At 4.0: class 0 left (4 >= max 3), class 1 half and half.
        let [l, r] = s.class_dists(4.0);
        assert!(close(l[0], 3.0, 1e-12) && close(l[1], 1.5, 1e-12) && close(r[1], 1.5, 1e-12));
    }

    #[test]
    fn best_split_is_between_the_classes() {
        let s = two_class_splitter();
        let best = s.best_split(&[3.0, 3.0], 7, 3, 0.01).unwrap();
        assert_eq!(best.feature, 7);
        assert_eq!(best.threshold, 3.0);
        assert!(best.merit > 0.5);
    }

    #[test]
    fn log_likelihood_is_the_gaussian_log_density() {
        let s = two_class_splitter();
        // N(2, 1) at 3: −½ − ½ ln(2π)
        let want = -0.5 - 0.5 * std::f64::consts::TAU.ln();
        assert!(close(s.log_likelihood(3.0, 0).unwrap(), want, 1e-12));
        assert!(s.log_likelihood(3.0, 5).is_none());
        // Far in the tail the log density is finite (no underflow to −∞).
        assert!(s.log_likelihood(1e6, 0).unwrap().is_finite());
    }
}
