//! Evidently's two-proportion z-test, used by default for binary columns with a small
//! reference: with `p1`, `p2` the share of the second value on each side and `P` the
//! pooled share, `z = (p1 − p2) / sqrt(P(1 − P)(1/n1 + 1/n2))` and the two-sided
//! p-value is `2(1 − Φ(|z|))`. Both sides holding the same single value give `p = 1`;
//! any other case with `P ∈ {0, 1}` cannot happen, since then both sides hold one value.

use statrs::function::erf::erfc;

use crate::{Error, Result};

/// Two-sided p-value for a difference in the share of "ones" (`k1` of `n1` against
/// `k2` of `n2`).
///
/// ```
/// use freshet_monitor::stats::proportions_z_test;
/// // 50 % against 50 %: no evidence at all.
/// assert_eq!(proportions_z_test(5, 10, 50, 100).unwrap(), 1.0);
/// ```
///
/// # Errors
/// An empty side, or more ones than values.
pub fn proportions_z_test(k1: u64, n1: u64, k2: u64, n2: u64) -> Result<f64> {
    if n1 == 0 || n2 == 0 {
        return Err(Error::EmptySample {
            which: if n1 == 0 { "reference" } else { "current" },
        });
    }
    if k1 > n1 || k2 > n2 {
        return Err(Error::InvalidDistribution {
            what: "z-test",
            problem: "more successes than trials",
        });
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (k1 as f64 / n1f, k2 as f64 / n2f);
    let pooled = (p1 * n1f + p2 * n2f) / (n1f + n2f);
    let denom = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if denom == 0.0 {
        // Both sides hold only one and the same value.
        return Ok(1.0);
    }
    let z = (p1 - p2) / denom;
    // 2(1 − Φ(|z|)) = erfc(|z|/√2); written as SciPy evaluates 1 − norm.cdf.
    Ok(2.0 * (1.0 - normal_cdf(z.abs())))
}

/// Φ(x) = erfc(−x/√2)/2.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_p_values() {
        // 30/100 against 50/100: P = 0.4, z = −0.2 / sqrt(0.24·0.02) = −2.886751…
        let p = proportions_z_test(30, 100, 50, 100).unwrap();
        let z: f64 = 0.2 / (0.24f64 * 0.02).sqrt();
        assert!((p - erfc(z / std::f64::consts::SQRT_2)).abs() < 1e-12);
        assert!(p < 0.05);
        assert_eq!(proportions_z_test(0, 10, 0, 20).unwrap(), 1.0);
        assert!(proportions_z_test(3, 2, 0, 1).is_err());
        assert!(proportions_z_test(0, 0, 0, 1).is_err());
    }
}
