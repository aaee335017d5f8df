//! The Jensen–Shannon distance between two discrete distributions, as
//! `scipy.spatial.distance.jensenshannon(p, q, base)` computes it:
//! `sqrt((KL(p‖m) + KL(q‖m)) / 2)` with `m = (p + q)/2`, natural logarithm unless a base
//! is given. Inputs are normalised to sum to 1 first, so counts work as well as
//! probabilities. The distance lies in `[0, sqrt(ln 2)]` (base e) or `[0, 1]` (base 2).

use super::wasserstein::pairwise_sum;
use crate::{Error, Result};

/// The Jensen–Shannon distance between `p` and `q` (same bins, any non-negative
/// weights); `base = None` means natural logarithm.
///
/// ```
/// use freshet_monitor::stats::jensen_shannon;
/// // Disjoint supports are as far apart as it gets: 1 in base 2.
/// let d = jensen_shannon(&[1.0, 0.0], &[0.0, 1.0], Some(2.0)).unwrap();
/// assert!((d - 1.0).abs() < 1e-15);
/// ```
///
/// # Errors
/// Different lengths, an empty vector, a negative or non-finite weight, or no mass.
pub fn jensen_shannon(p: &[f64], q: &[f64], base: Option<f64>) -> Result<f64> {
    if p.len() != q.len() {
        return Err(Error::LengthMismatch {
            what: "jensen-shannon",
            left: p.len(),
            right: q.len(),
        });
    }
    let p = normalise("first distribution", p)?;
    let q = normalise("second distribution", q)?;
    let (mut left, mut right) = (Vec::with_capacity(p.len()), Vec::with_capacity(p.len()));
    for (&pi, &qi) in p.iter().zip(&q) {
        let m = (pi + qi) / 2.0;
        left.push(rel_entr(pi, m));
        right.push(rel_entr(qi, m));
    }
    let mut js = pairwise_sum(&left) + pairwise_sum(&right);
    if let Some(base) = base {
        js /= base.ln();
    }
    Ok((js / 2.0).sqrt())
}

/// `x ln(x/y)`, 0 when `x = 0` (SciPy's `rel_entr`).
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

pub(crate) fn normalise(what: &'static str, xs: &[f64]) -> Result<Vec<f64>> {
    if xs.is_empty() {
        return Err(Error::InvalidDistribution {
            what,
            problem: "is empty",
        });
    }
    if xs.iter().any(|x| !x.is_finite() || *x < 0.0) {
        return Err(Error::InvalidDistribution {
            what,
            problem: "holds a negative or non-finite weight",
        });
    }
    let total = pairwise_sum(xs);
    if total <= 0.0 {
        return Err(Error::InvalidDistribution {
            what,
            problem: "has no mass",
        });
    }
    Ok(xs.iter().map(|x| x / total).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_distances() {
        assert_eq!(jensen_shannon(&[0.5, 0.5], &[0.5, 0.5], None).unwrap(), 0.0);
        // Disjoint: JS divergence = ln 2 (base e) → distance sqrt(ln 2).
        let d = jensen_shannon(&[1.0, 0.0], &[0.0, 1.0], None).unwrap();
        assert!((d - std::f64::consts::LN_2.sqrt()).abs() < 1e-15);
        // p = (1, 0), q = (1/2, 1/2): m = (3/4, 1/4);
        // KL(p‖m) = ln(4/3), KL(q‖m) = ½ln(2/3) + ½ln 2.
        let expected = ((4.0f64 / 3.0).ln() + 0.5 * (2.0f64 / 3.0).ln() + 0.5 * 2.0f64.ln()) / 2.0;
        let d = jensen_shannon(&[2.0, 0.0], &[1.0, 1.0], None).unwrap();
        assert!((d - expected.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(jensen_shannon(&[1.0], &[1.0, 0.0], None).is_err());
        assert!(jensen_shannon(&[0.0, 0.0], &[1.0, 0.0], None).is_err());
        assert!(jensen_shannon(&[-1.0, 2.0], &[1.0, 0.0], None).is_err());
    }
}
