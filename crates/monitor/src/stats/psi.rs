//! The Population Stability Index over binned fractions, as Evidently computes it:
//! `PSI = Σ (r_i − c_i) · ln(r_i / c_i)`, after replacing each side's empty bins by
//! Evidently's epsilon ([`fill_zeroes`](super::binning::fill_zeroes)) so that a bin
//! empty on one side adds a large but finite term. Evidently's default threshold is
//! 0.1 (drift when PSI ≥ 0.1).

use super::binning::fill_zeroes;
use crate::{Error, Result};

/// PSI between the binned `reference` and `current` fractions (same bins).
///
/// ```
/// use freshet_monitor::stats::psi;
/// // (0.5−0.25)·ln 2 + (0.5−0.75)·ln(2/3)
/// let v = psi(&[0.5, 0.5], &[0.25, 0.75]).unwrap();
/// assert!((v - 0.2746530721670274).abs() < 1e-15);
/// ```
///
/// # Errors
/// Different lengths, an empty vector, or a negative or non-finite fraction.
pub fn psi(reference: &[f64], current: &[f64]) -> Result<f64> {
    if reference.len() != current.len() {
        return Err(Error::LengthMismatch {
            what: "psi",
            left: reference.len(),
            right: current.len(),
        });
    }
    for (what, xs) in [("psi reference", reference), ("psi current", current)] {
        if xs.is_empty() {
            return Err(Error::InvalidDistribution {
                what,
                problem: "is empty",
            });
        }
        if xs.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(Error::InvalidDistribution {
                what,
                problem: "holds a negative or non-finite fraction",
            });
        }
    }
    let (mut r, mut c) = (reference.to_vec(), current.to_vec());
    fill_zeroes(&mut r);
    fill_zeroes(&mut c);
    Ok(r.iter()
        .zip(&c)
        .map(|(&ri, &ci)| {
            if ri == ci {
                0.0
            } else {
                (ri - ci) * (ri / ci).ln()
            }
        })
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_case() {
        // Four bins: reference 10/20/30/40 %, current 20/20/20/40 %.
        // (0.1−0.2)·ln(0.5) + 0 + (0.3−0.2)·ln(1.5) + 0
        //   = 0.0693147180559945 + 0.0405465108108164 = 0.1098612288668110 (= ln 3 / 10).
        let v = psi(&[0.1, 0.2, 0.3, 0.4], &[0.2, 0.2, 0.2, 0.4]).unwrap();
        assert!((v - 3f64.ln() / 10.0).abs() < 1e-15, "{v}");
        assert!(v >= 0.1, "drifted by Evidently's default threshold");
    }

    #[test]
    fn empty_bin_uses_evidently_epsilon() {
        // Current has nothing in bin 2: it becomes 0.0001 (smallest non-zero is 0.5).
        let v = psi(&[0.5, 0.5], &[1.0, 0.0]).unwrap();
        let expected = (0.5 - 1.0) * (0.5f64).ln() + (0.5 - 0.0001) * (0.5f64 / 0.0001).ln();
        assert!((v - expected).abs() < 1e-12);
        assert_eq!(psi(&[0.3, 0.7], &[0.3, 0.7]).unwrap(), 0.0);
        assert!(psi(&[0.3], &[0.3, 0.7]).is_err());
    }
}
