//! The 1-D Wasserstein (earth mover's) distance between two empirical samples, as
//! `scipy.stats.wasserstein_distance(u, v)` computes it, and Evidently's normalised
//! form (divided by the reference sample's standard deviation).

use super::{check_sample, count_le, sorted};
use crate::Result;

/// `∫ |F_u(x) − F_v(x)| dx` over the pooled sorted values: between consecutive pooled
/// values both empirical CDFs are constant, so the integral is a finite sum.
///
/// ```
/// use freshet_monitor::stats::wasserstein_distance;
/// // Shifting a sample by 2 moves all its mass by 2.
/// assert_eq!(wasserstein_distance(&[0.0, 1.0], &[2.0, 3.0]).unwrap(), 2.0);
/// ```
///
/// # Errors
/// An empty sample or a non-finite value.
pub fn wasserstein_distance(u: &[f64], v: &[f64]) -> Result<f64> {
    check_sample("first", u)?;
    check_sample("second", v)?;
    let (su, sv) = (sorted(u), sorted(v));
    let mut all: Vec<f64> = su.iter().chain(&sv).copied().collect();
    all.sort_by(f64::total_cmp);
    let (nu, nv) = (su.len() as f64, sv.len() as f64);
    let terms: Vec<f64> = all
        .windows(2)
        .map(|w| {
            let u_cdf = count_le(&su, w[0]) as f64 / nu;
            let v_cdf = count_le(&sv, w[0]) as f64 / nv;
            (u_cdf - v_cdf).abs() * (w[1] - w[0])
        })
        .collect();
    Ok(pairwise_sum(&terms))
}

/// Evidently's `wasserstein` drift score: the distance divided by the population
/// standard deviation of `reference`, floored at 0.001 so a constant reference does
/// not divide by zero.
///
/// # Errors
/// An empty sample or a non-finite value.
pub fn wasserstein_normed(reference: &[f64], current: &[f64]) -> Result<f64> {
    let distance = wasserstein_distance(reference, current)?;
    Ok(distance / population_std(reference).max(0.001))
}

/// `sqrt(mean((x − mean)²))`, NumPy's `np.std` with `ddof=0`.
pub(crate) fn population_std(xs: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let mean = pairwise_sum(xs) / n;
    let sq: Vec<f64> = xs.iter().map(|x| (x - mean) * (x - mean)).collect();
    (pairwise_sum(&sq) / n).sqrt()
}

/// NumPy's pairwise summation (blocks of 8 accumulators below 128 values, halves
/// above), so sums of many terms round like `np.sum`.
pub(crate) fn pairwise_sum(xs: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    if xs.len() < 8 {
        return xs.iter().fold(0.0, |acc, x| acc + x);
    }
    if xs.len() <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&xs[..8]);
        let mut i = 8;
        while i + 8 <= xs.len() {
            for (k, acc) in r.iter_mut().enumerate() {
                *acc += xs[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &xs[i..] {
            res += x;
        }
        return res;
    }
    let mut half = xs.len() / 2;
    half -= half % 8;
    pairwise_sum(&xs[..half]) + pairwise_sum(&xs[half..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_distances() {
        // scipy.stats.wasserstein_distance([0, 1, 3], [5, 6, 8]) = 5.
        assert_eq!(
            wasserstein_distance(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]).unwrap(),
            5.0
        );
        // u = {0, 1}, v = {0}: half the mass of u moves by 1 → 0.5.
        assert_eq!(wasserstein_distance(&[0.0, 1.0], &[0.0]).unwrap(), 0.5);
        assert_eq!(wasserstein_distance(&[2.0, 1.0], &[1.0, 2.0]).unwrap(), 0.0);
    }

    #[test]
    fn normed_divides_by_reference_std() {
        // Reference {0, 2}: std 1; the current sample is shifted by 3.
        let w = wasserstein_normed(&[0.0, 2.0], &[3.0, 5.0]).unwrap();
        assert!((w - 3.0).abs() < 1e-15);
        // Constant reference: the floor of 0.001 applies.
        let w = wasserstein_normed(&[1.0, 1.0], &[1.5, 1.5]).unwrap();
        assert!((w - 500.0).abs() < 1e-9);
    }

    #[test]
    fn pairwise_sum_matches_plain_sum_on_exact_values() {
        let xs: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(pairwise_sum(&xs), 499_500.0);
        assert_eq!(pairwise_sum(&[]), 0.0);
    }
}
