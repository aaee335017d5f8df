//! Gaussian naive Bayes.

use crate::Classifier;
use crate::metrics::RunningMoments;

/// Added to every likelihood before its logarithm, as River does (`10e-10`): a
/// feature no Gaussian explains costs `ln 1e-9 ≈ −20.7` instead of minus infinity.
const LIKELIHOOD_FLOOR: f64 = 1e-9;

/// Gaussian naive Bayes, River's `GaussianNB`: one Gaussian per class and feature,
/// fitted with a running mean and variance (Welford), and class priors from counts.
///
/// The joint log-likelihood of class `c` is
/// `ln(n_c / n) + Σᵢ ln(1e-9 + N(xᵢ; μ_ci, σ²_ci))` and the probabilities are its
/// softmax over the classes seen (classes never seen get 0). As in River:
/// - the variance is the **sample** variance (`ddof = 1`, River's `proba.Gaussian`
///   uses `stats.Var(ddof=1)`);
/// - a zero variance (fewer than two values, or all equal) gives density 0, so such a
///   feature contributes `ln 1e-9` whatever its value;
/// - a non-finite feature value is a missing feature: it is neither learnt nor
///   scored, and a feature a class has never seen contributes `ln 1e-9`.
///
/// One difference: a class seen only with empty feature vectors is still predicted
/// from its prior (River would drop it). Memory grows with the largest class index.
///
/// ```rust
/// use freshet_learn::Classifier;
/// use freshet_learn::naive_bayes::GaussianNB;
///
/// // River's example, with its classes 1 and 2 as 0 and 1.
/// let xs = [[-1.0, -1.0], [-2.0, -1.0], [-3.0, -2.0], [1.0, 1.0], [2.0, 1.0], [3.0, 2.0]];
/// let mut model = GaussianNB::default();
/// for (x, y) in xs.iter().zip([0, 0, 0, 1, 1, 1]) {
///     model.learn_one(x, y);
/// }
/// assert_eq!(model.predict_one(&[-0.8, -1.0]), Some(0));
/// let p = model.predict_proba_one(&[-0.8, -1.0]);
/// assert_eq!(format!("{:.6}", p[0]), "0.999986");
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaussianNB {
    class_counts: Vec<u64>,
    total: u64,
    /// `stats[class][feature]`.
    stats: Vec<Vec<RunningMoments>>,
}

/// Normal density; 0 when the variance is not positive (River's convention).
fn gaussian_pdf(x: f64, mean: f64, var: f64) -> f64 {
    if var > 0.0 {
        let d = x - mean;
        (-d * d / (2.0 * var)).exp() / (std::f64::consts::TAU * var).sqrt()
    } else {
        0.0
    }
}

impl GaussianNB {
    /// Examples seen per class, indexed by class.
    pub fn class_counts(&self) -> &[u64] {
        &self.class_counts
    }

    /// Running mean of `feature` within `class`; `None` if never seen.
    pub fn mean(&self, class: usize, feature: usize) -> Option<f64> {
        self.moments(class, feature).map(RunningMoments::mean)
    }

    /// Sample variance of `feature` within `class` (0 below two values); `None` if
    /// never seen.
    pub fn variance(&self, class: usize, feature: usize) -> Option<f64> {
        self.moments(class, feature).map(|m| m.variance(1))
    }

    fn moments(&self, class: usize, feature: usize) -> Option<&RunningMoments> {
        self.stats
            .get(class)?
            .get(feature)
            .filter(|m| m.count() > 0)
    }

    /// Joint log-likelihood of each class, indexed by class; `-∞` for classes never
    /// seen. Empty before learning.
    pub fn joint_log_likelihood(&self, x: &[f64]) -> Vec<f64> {
        let total = self.total as f64;
        self.class_counts
            .iter()
            .zip(&self.stats)
            .map(|(&count, stats)| {
                if count == 0 {
                    return f64::NEG_INFINITY;
                }
                let prior = (count as f64 / total).ln();
                let likelihood: f64 = x
                    .iter()
                    .enumerate()
                    .filter(|(_, xi)| xi.is_finite())
                    .map(|(i, &xi)| {
                        let density = stats
                            .get(i)
                            .map_or(0.0, |m| gaussian_pdf(xi, m.mean(), m.variance(1)));
                        (LIKELIHOOD_FLOOR + density).ln()
                    })
                    .sum();
                prior + likelihood
            })
            .collect()
    }
}

impl Classifier for GaussianNB {
    fn learn_one(&mut self, x: &[f64], y: usize) {
        let n = y.saturating_add(1);
        if self.class_counts.len() < n {
            self.class_counts.resize(n, 0);
        }
        if self.stats.len() < n {
            self.stats.resize(n, Vec::new());
        }
        self.class_counts[y] += 1;
        self.total += 1;
        let stats = &mut self.stats[y];
        if x.len() > stats.len() {
            stats.resize(x.len(), RunningMoments::default());
        }
        for (m, &xi) in stats.iter_mut().zip(x) {
            if xi.is_finite() {
                m.update(xi);
            }
        }
    }

    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        let jll = self.joint_log_likelihood(x);
        let max = jll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return jll;
        }
        let mut p: Vec<f64> = jll.iter().map(|l| (l - max).exp()).collect();
        let total: f64 = p.iter().sum();
        p.iter_mut().for_each(|v| *v /= total);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::conformance::{
        blobs_stream, check_classifier_conformance, check_classifier_snapshot,
    };
    use crate::evaluate::prequential_classification;
    use crate::metrics::{Accuracy, ClassificationMetric};

    fn river_example() -> GaussianNB {
        let xs = [
            [-1.0, -1.0],
            [-2.0, -1.0],
            [-3.0, -2.0],
            [1.0, 1.0],
            [2.0, 1.0],
            [3.0, 2.0],
        ];
        let mut m = GaussianNB::default();
        for (x, y) in xs.iter().zip([0, 0, 0, 1, 1, 1]) {
            m.learn_one(x, y);
        }
        m
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn means_and_sample_variances_by_hand() {
        let m = river_example();
        assert_eq!(m.class_counts(), &[3, 3]);
        // Class 0, feature 0: −1, −2, −3 → mean −2, variance (1 + 0 + 1) / 2 = 1.
        assert!(close(m.mean(0, 0).expect("seen"), -2.0));
        assert!(close(m.variance(0, 0).expect("seen"), 1.0));
        // Class 0, feature 1: −1, −1, −2 → mean −4/3, variance (1/9 + 1/9 + 4/9) / 2 = 1/3.
        assert!(close(m.mean(0, 1).expect("seen"), -4.0 / 3.0));
        assert!(close(m.variance(0, 1).expect("seen"), 1.0 / 3.0));
        assert!(close(m.mean(1, 1).expect("seen"), 4.0 / 3.0));
        assert_eq!(m.mean(2, 0), None);
        assert_eq!(m.variance(0, 2), None);
    }

    #[test]
    fn probabilities_by_hand() {
        let m = river_example();
        let x = [-0.8, -1.0];
        let n = |x: f64, mu: f64, var: f64| {
            (-(x - mu) * (x - mu) / (2.0 * var)).exp() / (2.0 * std::f64::consts::PI * var).sqrt()
        };
        let j0 = 0.5f64.ln()
            + (1e-9 + n(-0.8, -2.0, 1.0)).ln()
            + (1e-9 + n(-1.0, -4.0 / 3.0, 1.0 / 3.0)).ln();
        let j1 = 0.5f64.ln()
            + (1e-9 + n(-0.8, 2.0, 1.0)).ln()
            + (1e-9 + n(-1.0, 4.0 / 3.0, 1.0 / 3.0)).ln();
        let jll = m.joint_log_likelihood(&x);
        assert!(close(jll[0], j0) && close(jll[1], j1));
        assert!(close(j0, -2.868_384_762_442_534_3) && close(j1, -14.068_379_546_531_97));
        let p = m.predict_proba_one(&x);
        assert!(close(p[0], 1.0 / (1.0 + (j1 - j0).exp())));
        assert!(close(p[0], 0.999_986_325_919_593_7));
        assert!(close(p[0] + p[1], 1.0));
    }

    #[test]
    fn zero_variance_contributes_the_floor_like_river() {
        let mut m = GaussianNB::default();
        m.learn_one(&[1.0], 0);
        m.learn_one(&[3.0], 0);
        m.learn_one(&[10.0], 1); // one value: variance 0, density 0
        let jll = m.joint_log_likelihood(&[10.0]);
        let density0 = (-(64.0f64) / 4.0).exp() / (2.0 * std::f64::consts::TAU).sqrt();
        assert!(close(jll[0], (2.0f64 / 3.0).ln() + (1e-9 + density0).ln()));
        assert!(close(jll[1], (1.0f64 / 3.0).ln() + 1e-9f64.ln()));
        // Even at its own mean, the one-example class only gets the floor.
        assert_eq!(m.predict_one(&[10.0]), Some(0));
    }

    #[test]
    fn unseen_classes_and_missing_features() {
        let mut m = GaussianNB::default();
        assert!(m.predict_proba_one(&[1.0]).is_empty());
        m.learn_one(&[1.0, f64::NAN], 2);
        m.learn_one(&[2.0, 5.0], 2);
        m.learn_one(&[9.0, 9.0], 0);
        assert_eq!(m.class_counts(), &[1, 0, 2]);
        assert_eq!(m.stats[2][1].count(), 1);
        let p = m.predict_proba_one(&[1.5, f64::NAN]);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1], 0.0);
        assert!(p[2] > p[0]);
        // Missing and unknown features: only the known, finite ones count.
        let jll = m.joint_log_likelihood(&[1.5, f64::NAN]);
        assert_eq!(jll, m.joint_log_likelihood(&[1.5]));
        let with_unknown = m.joint_log_likelihood(&[1.5, f64::NAN, 4.0]);
        assert!(close(with_unknown[2], jll[2] + 1e-9f64.ln()));
        // Empty vectors still learn the prior.
        m.learn_one(&[], 1);
        assert!(
            m.predict_proba_one(&[])
                .iter()
                .all(|v| close(*v, 0.25) || close(*v, 0.5))
        );
    }

    #[test]
    fn learns_blobs() {
        let mut m = GaussianNB::default();
        let mut acc = Accuracy::default();
        prequential_classification(&mut m, blobs_stream(5, 2000, 2, 3), &mut [&mut acc], 0);
        assert!(acc.get() > 0.85, "accuracy {}", acc.get());
    }

    #[test]
    fn conforms() {
        check_classifier_conformance(|| Box::new(GaussianNB::default()));
        check_classifier_snapshot(GaussianNB::default);
    }
}
