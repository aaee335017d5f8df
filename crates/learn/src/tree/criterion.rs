//! Information gain, its range, and the Hoeffding bound.

/// The Hoeffding bound `ε = sqrt(R² ln(1/δ) / (2n))`: with probability `1 − δ` the mean
/// of `n` independent observations of a variable with range `R` is within `ε` of its
/// expectation. Infinite for `n <= 0`.
///
/// ```
/// use freshet_learn::tree::hoeffding_bound;
///
/// // Two classes (R = log2 2 = 1), δ = 1e-7, n = 200.
/// let eps = hoeffding_bound(1.0, 1e-7, 200.0);
/// assert!((eps - 0.200_737).abs() < 1e-6);
/// ```
pub fn hoeffding_bound(range: f64, delta: f64, n: f64) -> f64 {
    if n <= 0.0 {
        return f64::INFINITY;
    }
    (range * range * (1.0 / delta).ln() / (2.0 * n)).sqrt()
}

/// Entropy in bits of a class distribution given as weights.
pub(crate) fn entropy(dist: &[f64]) -> f64 {
    let total: f64 = dist.iter().filter(|&&w| w > 0.0).sum();
    if total <= 0.0 {
        return 0.0;
    }
    dist.iter()
        .filter(|&&w| w > 0.0)
        .map(|&w| {
            let p = w / total;
            -p * p.log2()
        })
        .sum()
}

/// Weighted mean entropy of the branches of a split.
pub(crate) fn split_entropy(dists: &[Vec<f64>]) -> f64 {
    let weights: Vec<f64> = dists
        .iter()
        .map(|d| d.iter().filter(|&&w| w > 0.0).sum())
        .collect();
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    dists
        .iter()
        .zip(&weights)
        .map(|(d, w)| w * entropy(d))
        .sum::<f64>()
        / total
}

/// Information gain `H(pre) − H(post)`; −∞ unless at least two branches receive more
/// than `min_branch_fraction` of the weight.
pub(crate) fn info_gain(pre: &[f64], post: &[Vec<f64>], min_branch_fraction: f64) -> f64 {
    let weights: Vec<f64> = post
        .iter()
        .map(|d| d.iter().filter(|&&w| w > 0.0).sum())
        .collect();
    let total: f64 = weights.iter().sum();
    let big_enough = weights
        .iter()
        .filter(|&&w| total > 0.0 && w / total > min_branch_fraction)
        .count();
    if big_enough < 2 {
        return f64::NEG_INFINITY;
    }
    entropy(pre) - split_entropy(post)
}

/// Range of the information gain: `log2` of the number of classes present (at least 2).
pub(crate) fn range_of_merit(pre: &[f64]) -> f64 {
    let present = pre.iter().filter(|&&w| w > 0.0).count().max(2);
    (present as f64).log2()
}

/// A candidate binary split of a leaf on a numeric feature.
#[derive(Debug, Clone)]
pub(crate) struct SplitSuggestion {
    pub(crate) merit: f64,
    pub(crate) feature: usize,
    pub(crate) threshold: f64,
    /// Estimated class weights of the left (`<=`) and right children.
    pub(crate) children_stats: [Vec<f64>; 2],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_by_hand() {
        assert_eq!(entropy(&[]), 0.0);
        assert_eq!(entropy(&[5.0, 0.0]), 0.0);
        assert!((entropy(&[1.0, 1.0]) - 1.0).abs() < 1e-15);
        assert!((entropy(&[1.0, 1.0, 1.0, 1.0]) - 2.0).abs() < 1e-15);
        // H(0.8, 0.2) = −0.8 log2 0.8 − 0.2 log2 0.2 = 0.721928…
        assert!((entropy(&[8.0, 2.0]) - 0.721_928_094_887_362_3).abs() < 1e-12);
    }

    #[test]
    fn info_gain_on_a_small_split_by_hand() {
        // 10 + 10 examples split into (8, 2) | (2, 8):
        // gain = 1 − (10/20 · 0.721928 + 10/20 · 0.721928) = 0.278072.
        let gain = info_gain(&[10.0, 10.0], &[vec![8.0, 2.0], vec![2.0, 8.0]], 0.01);
        assert!((gain - 0.278_071_905_112_637_7).abs() < 1e-12, "{gain}");
        // Uneven branches: (6, 0) | (4, 10): 1 − 14/20 · H(4/14) = 1 − 0.7 · 0.863121.
        let gain = info_gain(&[10.0, 10.0], &[vec![6.0, 0.0], vec![4.0, 10.0]], 0.01);
        assert!((gain - (1.0 - 0.7 * 0.863_120_568_566_631_5)).abs() < 1e-12);
        // A perfect split gains everything.
        let gain = info_gain(&[3.0, 5.0], &[vec![3.0], vec![0.0, 5.0]], 0.01);
        assert!((gain - entropy(&[3.0, 5.0])).abs() < 1e-15);
    }

    #[test]
    fn tiny_branches_are_invalid() {
        // 0.1 of 20.1 is under 1 %.
        let gain = info_gain(&[10.0, 10.1], &[vec![0.1], vec![10.0, 10.0]], 0.01);
        assert_eq!(gain, f64::NEG_INFINITY);
        assert_eq!(
            info_gain(&[1.0], &[vec![], vec![]], 0.01),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn range_and_hoeffding_bound_by_hand() {
        assert_eq!(range_of_merit(&[3.0]), 1.0);
        assert_eq!(range_of_merit(&[3.0, 4.0]), 1.0);
        assert_eq!(range_of_merit(&[3.0, 0.0, 4.0, 1.0]), 3f64.log2());
        // R = 1, δ = 1e-7, n = 200: sqrt(ln(1e7) / 400) = sqrt(16.118096 / 400) = 0.200737.
        let eps = hoeffding_bound(1.0, 1e-7, 200.0);
        assert!((eps - (16.118_095_650_958_32f64 / 400.0).sqrt()).abs() < 1e-12);
        assert!((eps - 0.200_737).abs() < 1e-6);
        // R = log2 3, n = 1000: sqrt(log2(3)² · 16.118096 / 2000).
        let eps = hoeffding_bound(3f64.log2(), 1e-7, 1000.0);
        let want = (3f64.log2().powi(2) * 16.118_095_650_958_32 / 2000.0).sqrt();
        assert!((eps - want).abs() < 1e-12);
        // The bound falls below τ = 0.05 for two classes once n > ln(1e7) / (2 · 0.05²) = 3223.6.
        assert!(hoeffding_bound(1.0, 1e-7, 3223.0) > 0.05);
        assert!(hoeffding_bound(1.0, 1e-7, 3224.0) < 0.05);
        assert_eq!(hoeffding_bound(1.0, 1e-7, 0.0), f64::INFINITY);
    }
}
