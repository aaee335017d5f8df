//! The two-sample Kolmogorov–Smirnov test, as `scipy.stats.ks_2samp(a, b)` computes it
//! with its defaults (`alternative="two-sided"`, `method="auto"`).
//!
//! The statistic is the largest gap between the two empirical CDFs, evaluated at every
//! observed value. The p-value follows SciPy's `auto` rule:
//! - **exact** when both samples hold at most 10 000 values: the probability that a
//!   random lattice path stays inside the band `|x/n1 − y/n2| < D` (Hodges 1958), with
//!   SciPy's two algorithms — the alternating-sum form for equal sizes and Viehmann's
//!   (2021) "inside" recursion for the complement otherwise — so the result matches
//!   SciPy to rounding;
//! - **asymptotic** beyond that (or if the exact recursion fails numerically): here
//!   Freshet uses Kolmogorov's limiting distribution at `sqrt(en)·D` with
//!   `en = round(n1·n2/(n1+n2))`, where SciPy evaluates the finite-`n` distribution
//!   `kstwo(en)`. The two agree to `O(1/sqrt(en))`; only this branch is not
//!   bit-for-bit SciPy's (see docs/monitoring.md).

use serde::{Deserialize, Serialize};

use super::{check_sample, count_le, sorted};
use crate::Result;

/// Largest sample size for which SciPy's `auto` method computes the exact p-value.
pub const MAX_EXACT_N: usize = 10_000;

/// How the p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    Exact,
    Asymptotic,
}

/// The result of [`ks_2samp`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KsTest {
    /// `D = sup |F_a(x) − F_b(x)|`.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    pub method: KsMethod,
}

/// The two-sample KS test of `a` against `b`.
///
/// ```
/// use freshet_monitor::stats::ks_2samp;
/// let t = ks_2samp(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]).unwrap();
/// assert_eq!(t.statistic, 0.5);
/// // scipy.stats.ks_2samp gives 0.771428571428...
/// assert!((t.p_value - 0.7714285714285715).abs() < 1e-12);
/// ```
///
/// # Errors
/// [`crate::Error::EmptySample`] or [`crate::Error::InvalidDistribution`] for an empty
/// sample or a non-finite value.
pub fn ks_2samp(a: &[f64], b: &[f64]) -> Result<KsTest> {
    check_sample("first", a)?;
    check_sample("second", b)?;
    let (sa, sb) = (sorted(a), sorted(b));
    let statistic = ks_statistic(&sa, &sb);
    let (n1, n2) = (sa.len() as u64, sb.len() as u64);
    let exact = if sa.len().max(sb.len()) <= MAX_EXACT_N {
        exact(n1, n2, statistic)
    } else {
        None
    };
    if let Some((d, p)) = exact {
        return Ok(KsTest {
            statistic: d,
            p_value: p.clamp(0.0, 1.0),
            method: KsMethod::Exact,
        });
    }
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = (m * n / (m + n)).round_ties_even();
    Ok(KsTest {
        statistic,
        p_value: kolmogorov_sf(en.sqrt() * statistic).clamp(0.0, 1.0),
        method: KsMethod::Asymptotic,
    })
}

/// `max(max(F_a − F_b), max(F_b − F_a))` over the pooled values; inputs sorted.
fn ks_statistic(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let (mut max_s, mut min_s) = (f64::NEG_INFINITY, f64::INFINITY);
    for &x in a.iter().chain(b) {
        let diff = count_le(a, x) as f64 / n1 - count_le(b, x) as f64 / n2;
        max_s = max_s.max(diff);
        min_s = min_s.min(diff);
    }
    let min_s = (-min_s).clamp(0.0, 1.0);
    if min_s > max_s { min_s } else { max_s }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// SciPy's `_attempt_exact_2kssamp` for the two-sided alternative: `D` snapped to the
/// lattice `h / lcm(n1, n2)` and its p-value; `None` when the recursion fails.
fn exact(n1: u64, n2: u64, d: f64) -> Option<(f64, f64)> {
    let g = gcd(n1, n2);
    let lcm = (n1 / g) * n2;
    let h = (d * lcm as f64).round_ties_even() as u64;
    let d = h as f64 / lcm as f64;
    if h == 0 {
        return Some((d, 1.0));
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        outer_prob_inside(n1, n2, g, h)?
    };
    (p.is_finite() && (0.0..=1.0).contains(&p)).then_some((d, p))
}

/// `P(D_{n,n} >= h/n)` by the alternating sum of `binom(2n, n − kh) / binom(2n, n)`,
/// evaluated Horner-fashion to avoid cancellation (SciPy's
/// `_compute_prob_outside_square`).
fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut p = 0.0;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut p1 = 1.0;
        let mut j = 0.0;
        while j < h {
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1.0);
            j += 1.0;
        }
        p = p1 * (1.0 - p);
        k -= 1.0;
    }
    2.0 * p
}

/// Proportion of lattice paths from (0,0) to (m,n) that leave the band
/// `|n·x/g − m·y/g| < h`, computed directly as `1 − inside` by Viehmann's recursion
/// over one sliding column (SciPy's `_compute_outer_prob_inside_method`).
fn outer_prob_inside(m: u64, n: u64, g: u64, h: u64) -> Option<f64> {
    let (m, n) = if m < n { (n, m) } else { (m, n) };
    let (m, n, g, h) = (m as i64, n as i64, g as i64, h as i64);
    let (mg, ng) = (m / g, n / g);
    let mut minj: i64 = 0;
    let mut maxj: i64 = ceil_div(h, mg).min(n + 1);
    let mut curlen = maxj - minj;
    let len_a = (2 * maxj + 2).min(n + 1) as usize;
    let mut a = vec![1.0f64; len_a];
    for v in a.iter_mut().take(maxj.max(0) as usize) {
        *v = 0.0;
    }
    for i in 1..=m {
        let (lastminj, lastlen) = (minj, curlen);
        minj = (floor_div(ng * i - h, mg) + 1).max(0).min(n);
        maxj = ceil_div(ng * i + h, mg).min(n + 1);
        if maxj <= minj {
            return Some(1.0);
        }
        let mut val = if minj == 0 { 0.0 } else { 1.0 };
        for jj in 0..(maxj - minj) {
            let j = jj + minj;
            let prev = *a.get(usize::try_from(jj + minj - lastminj).ok()?)?;
            val = (prev * i as f64 + val * j as f64) / (i + j) as f64;
            *a.get_mut(jj as usize)? = val;
        }
        curlen = maxj - minj;
        if lastlen > curlen {
            let start = (maxj - minj) as usize;
            let end = (start + (lastlen - curlen) as usize).min(a.len());
            for v in a.iter_mut().take(end).skip(start) {
                *v = 1.0;
            }
        }
    }
    a.get(usize::try_from(maxj - minj - 1).ok()?).copied()
}

fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

/// Survival function of Kolmogorov's limiting distribution,
/// `P(K > z) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²z²}`; for small `z` the equivalent theta
/// series `1 − sqrt(2π)/z Σ e^{−(2k−1)²π²/(8z²)}` converges faster.
pub fn kolmogorov_sf(z: f64) -> f64 {
    if z <= 0.0 {
        return 1.0;
    }
    if z < 1.0 {
        let q = -std::f64::consts::PI * std::f64::consts::PI / (8.0 * z * z);
        let mut s = 0.0;
        for k in 1..=20 {
            let m = f64::from(2 * k - 1);
            s += (m * m * q).exp();
        }
        (1.0 - (2.0 * std::f64::consts::PI).sqrt() / z * s).clamp(0.0, 1.0)
    } else {
        let mut s = 0.0;
        for k in 1..=100 {
            let kf = f64::from(k);
            let term = (-2.0 * kf * kf * z * z).exp();
            s += if k % 2 == 1 { term } else { -term };
            if term < 1e-300 {
                break;
            }
        }
        (2.0 * s).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistic_on_hand_computed_samples() {
        // F_a − F_b at 1,2,3,4,5,6: .25,.5,.5,.5,.25,0 → D = 0.5.
        let t = ks_2samp(&[1.0, 2.0, 3.0, 4.0], &[3.0, 4.0, 5.0, 6.0]).unwrap();
        assert_eq!(t.statistic, 0.5);
        assert_eq!(t.method, KsMethod::Exact);
        // Identical samples: D = 0, p = 1.
        let t = ks_2samp(&[1.0, 2.0], &[2.0, 1.0]).unwrap();
        assert_eq!((t.statistic, t.p_value), (0.0, 1.0));
    }

    #[test]
    fn exact_equal_sizes_by_hand() {
        // n = 2, D = 1 (disjoint samples): only 2 of the binom(4,2) = 6 orderings put
        // one sample wholly before the other → p = 2/6.
        let t = ks_2samp(&[0.0, 1.0], &[2.0, 3.0]).unwrap();
        assert_eq!(t.statistic, 1.0);
        assert!((t.p_value - 1.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn exact_unequal_sizes_by_hand() {
        // n1 = 1, n2 = 2, disjoint: D = 1; orderings of {a, b, b}: 3, of which
        // a first or a last give D = 1 → p = 2/3.
        let t = ks_2samp(&[0.0], &[1.0, 2.0]).unwrap();
        assert_eq!(t.statistic, 1.0);
        assert!((t.p_value - 2.0 / 3.0).abs() < 1e-15, "{}", t.p_value);
    }

    #[test]
    fn large_samples_use_the_asymptotic_distribution() {
        let a: Vec<f64> = (0..10_001).map(f64::from).collect();
        let b: Vec<f64> = (0..10_001).map(|i| f64::from(i) + 500.0).collect();
        let t = ks_2samp(&a, &b).unwrap();
        assert_eq!(t.method, KsMethod::Asymptotic);
        assert!((t.statistic - 500.0 / 10_001.0).abs() < 1e-12);
        assert!(t.p_value < 1e-6);
    }

    #[test]
    fn kolmogorov_series_agree_where_they_meet() {
        // Both forms at z = 1 (the switch point): P(K > 1) = 0.26999967167735456.
        assert!((kolmogorov_sf(1.0) - 0.269_999_671_677_354_6).abs() < 1e-12);
        assert!((kolmogorov_sf(0.999_999_999) - 0.269_999_671_677_354_6).abs() < 1e-8);
        assert_eq!(kolmogorov_sf(0.0), 1.0);
    }

    #[test]
    fn rejects_empty_and_nan() {
        assert!(ks_2samp(&[], &[1.0]).is_err());
        assert!(ks_2samp(&[f64::NAN], &[1.0]).is_err());
    }
}
