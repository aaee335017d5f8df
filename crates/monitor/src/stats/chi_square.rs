//! Pearson's chi-square goodness-of-fit test, as `scipy.stats.chisquare(f_obs, f_exp)`
//! computes it (`ddof = 0`): `χ² = Σ (o_i − e_i)² / e_i` with `k − 1` degrees of
//! freedom, `k` the number of categories, and `p = P(χ²_{k−1} ≥ χ²)`.
//!
//! For drift, Evidently (and so Freshet) uses this test — not `chi2_contingency` — with
//! the current counts as observed and the reference counts rescaled to the current size
//! as expected. A category absent from the reference has expected count 0, hence
//! `χ² = ∞` and `p = 0`, as in SciPy.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::gamma_ur;

use super::wasserstein::pairwise_sum;
use crate::{Error, Result};

/// The result of [`chi_square`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub p_value: f64,
    /// Degrees of freedom, `k − 1`.
    pub dof: usize,
}

/// The chi-square test of `observed` counts against `expected` counts.
///
/// ```
/// use freshet_monitor::stats::chi_square;
/// // (10−15)²/15 + (20−15)²/15 = 10/3 with 1 degree of freedom.
/// let t = chi_square(&[10.0, 20.0], &[15.0, 15.0]).unwrap();
/// assert!((t.statistic - 10.0 / 3.0).abs() < 1e-15);
/// assert!((t.p_value - 0.06788915486182893).abs() < 1e-12);
/// ```
///
/// # Errors
/// Different lengths, no categories, negative or non-finite counts, or totals that
/// differ by more than a relative 1e-8 (SciPy refuses those too).
pub fn chi_square(observed: &[f64], expected: &[f64]) -> Result<ChiSquare> {
    if observed.len() != expected.len() {
        return Err(Error::LengthMismatch {
            what: "chi-square",
            left: observed.len(),
            right: expected.len(),
        });
    }
    if observed.is_empty() {
        return Err(Error::EmptySample { which: "observed" });
    }
    for (what, xs) in [("observed", observed), ("expected", expected)] {
        if xs.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(Error::InvalidDistribution {
                what,
                problem: "holds a negative or non-finite count",
            });
        }
    }
    let (so, se) = (pairwise_sum(observed), pairwise_sum(expected));
    if (so - se).abs() / so.min(se) > 1e-8 {
        return Err(Error::TotalsDiffer {
            observed: so,
            expected: se,
        });
    }
    let terms: Vec<f64> = observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| {
            let d = o - e;
            d * d / e
        })
        .collect();
    let statistic = pairwise_sum(&terms);
    let dof = observed.len() - 1;
    Ok(ChiSquare {
        statistic,
        p_value: chi2_sf(statistic, dof as f64),
        dof,
    })
}

/// `P(χ²_k ≥ x)`, the regularised upper incomplete gamma `Q(k/2, x/2)`; NaN for no
/// degrees of freedom, as SciPy.
pub fn chi2_sf(x: f64, k: f64) -> f64 {
    if k <= 0.0 || x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    gamma_ur(k / 2.0, x / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_statistic_and_tails() {
        let t = chi_square(&[10.0, 20.0, 30.0], &[20.0, 20.0, 20.0]).unwrap();
        assert_eq!(t.dof, 2);
        assert!((t.statistic - 10.0).abs() < 1e-15);
        // With 2 degrees of freedom the tail is exactly e^{−x/2}.
        assert!((t.p_value - (-5.0f64).exp()).abs() < 1e-15);
        let t = chi_square(&[5.0, 5.0], &[5.0, 5.0]).unwrap();
        assert_eq!((t.statistic, t.p_value), (0.0, 1.0));
    }

    #[test]
    fn unseen_category_is_infinitely_surprising() {
        let t = chi_square(&[5.0, 5.0], &[10.0, 0.0]).unwrap();
        assert!(t.statistic.is_infinite());
        assert_eq!(t.p_value, 0.0);
    }

    #[test]
    fn rejects_mismatched_totals_and_lengths() {
        assert!(matches!(
            chi_square(&[1.0, 2.0], &[1.0, 1.0]),
            Err(Error::TotalsDiffer { .. })
        ));
        assert!(chi_square(&[1.0], &[1.0, 0.0]).is_err());
        assert!(chi_square(&[], &[]).is_err());
    }
}
