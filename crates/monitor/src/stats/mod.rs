//! Two-sample statistics, each written to give SciPy's (or Evidently's) number on the
//! same input, so that a drift score can be checked with the usual Python tools.
//!
//! Every function takes finite values; the [`drift`](crate::drift) layer drops missing
//! and non-finite values first (as Evidently does) and the functions here reject them.

pub mod binning;
pub mod chi_square;
pub mod jensen_shannon;
pub mod ks;
pub mod psi;
pub mod wasserstein;
pub mod z_test;

pub use chi_square::{ChiSquare, chi_square};
pub use jensen_shannon::jensen_shannon;
pub use ks::{KsMethod, KsTest, ks_2samp};
pub use psi::psi;
pub use wasserstein::{wasserstein_distance, wasserstein_normed};
pub use z_test::proportions_z_test;

use crate::{Error, Result};

/// Reject an empty sample or one holding a non-finite value.
pub(crate) fn check_sample(which: &'static str, xs: &[f64]) -> Result<()> {
    if xs.is_empty() {
        return Err(Error::EmptySample { which });
    }
    if xs.iter().any(|x| !x.is_finite()) {
        return Err(Error::InvalidDistribution {
            what: which,
            problem: "holds a non-finite value",
        });
    }
    Ok(())
}

/// A sorted copy (finite values only, so `total_cmp` is the numeric order).
pub(crate) fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Number of values `<= x` in sorted `xs` (NumPy's `searchsorted(side="right")`).
pub(crate) fn count_le(xs: &[f64], x: f64) -> usize {
    xs.partition_point(|&v| v <= x)
}
