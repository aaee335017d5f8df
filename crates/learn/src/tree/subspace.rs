//! Random subspaces: a leaf that watches only some features (the base learner of the
//! adaptive random forest).
//!
//! Diversity in a random forest comes from bagging and from letting each split consider
//! only a random subset of the features. In an online tree a leaf decides what to watch
//! when it first learns: it draws `m` distinct features out of the `n` in the example
//! and keeps one splitter for each of them only, so both its split candidates and its
//! naive Bayes predictions use those `m` features. The subset is kept for the life of
//! the leaf (a restart after pre-pruning keeps it too).

use serde::{Deserialize, Serialize};

use super::rng::SplitMix64;

/// How many features a leaf of a random-subspace tree watches, given the number `n` of
/// features in the example that first reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    /// `round(sqrt(n))`, the usual choice for classification (River's default).
    #[default]
    Sqrt,
    /// `round(log2(n))`.
    Log2,
    /// A fixed number (capped at `n`).
    Count(u32),
    /// `floor(fraction · n)`, the fraction in (0, 1].
    Fraction(f64),
    /// Every feature (no subspace; bagging alone then makes the trees differ).
    All,
}

impl MaxFeatures {
    /// The number of features to watch out of `n`: at least 1 and at most `n` (0 when
    /// `n` is 0).
    pub fn resolve(self, n: usize) -> usize {
        let nf = n as f64;
        let m = match self {
            MaxFeatures::Sqrt => nf.sqrt().round() as usize,
            MaxFeatures::Log2 => {
                if n == 0 {
                    0
                } else {
                    nf.log2().round() as usize
                }
            }
            MaxFeatures::Count(k) => k as usize,
            MaxFeatures::Fraction(f) if f.is_finite() => (f * nf).floor() as usize,
            MaxFeatures::Fraction(_) | MaxFeatures::All => n,
        };
        m.clamp(n.min(1), n)
    }
}

/// The per-tree source of feature subsets: the rule and a seeded generator, both
/// serialised with the tree so a restored tree draws the same subsets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Subspace {
    max_features: MaxFeatures,
    rng: SplitMix64,
}

impl Subspace {
    pub(crate) fn new(max_features: MaxFeatures, seed: u64) -> Self {
        Self {
            max_features,
            rng: SplitMix64::new(seed),
        }
    }

    /// Distinct feature indices out of `0..n`, in increasing order (a partial
    /// Fisher–Yates shuffle); empty when `n` is 0.
    pub(crate) fn sample(&mut self, n: usize) -> Vec<usize> {
        let m = self.max_features.resolve(n);
        let mut pool: Vec<usize> = (0..n).collect();
        for i in 0..m {
            let left = (n - i) as u64;
            // Modulo bias is below 2^-40 for any realistic feature count.
            let j = i + (self.rng.next_u64() % left) as usize;
            pool.swap(i, j);
        }
        pool.truncate(m);
        pool.sort_unstable();
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rounds_and_clamps() {
        assert_eq!(MaxFeatures::Sqrt.resolve(8), 3); // sqrt 8 = 2.83
        assert_eq!(MaxFeatures::Sqrt.resolve(46), 7); // 6.78
        assert_eq!(MaxFeatures::Sqrt.resolve(1), 1);
        assert_eq!(MaxFeatures::Sqrt.resolve(0), 0);
        assert_eq!(MaxFeatures::Log2.resolve(8), 3);
        assert_eq!(MaxFeatures::Log2.resolve(1), 1); // log2 1 = 0, at least 1
        assert_eq!(MaxFeatures::Count(5).resolve(3), 3);
        assert_eq!(MaxFeatures::Count(0).resolve(3), 1);
        assert_eq!(MaxFeatures::Fraction(0.5).resolve(9), 4);
        assert_eq!(MaxFeatures::Fraction(f64::NAN).resolve(9), 9);
        assert_eq!(MaxFeatures::All.resolve(9), 9);
    }

    #[test]
    fn samples_are_distinct_sorted_in_range_and_cover_every_feature() {
        let mut s = Subspace::new(MaxFeatures::Sqrt, 1);
        let mut counts = [0usize; 9];
        for _ in 0..3000 {
            let f = s.sample(9);
            assert_eq!(f.len(), 3);
            assert!(f.windows(2).all(|w| w[0] < w[1]), "{f:?}");
            for i in f {
                counts[i] += 1;
            }
        }
        // Each feature is drawn with probability 1/3: about 1000 times.
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
        assert!(s.sample(0).is_empty());
        let mut a = Subspace::new(MaxFeatures::Sqrt, 9);
        let mut b = Subspace::new(MaxFeatures::Sqrt, 9);
        assert_eq!(a.sample(50), b.sample(50));
    }
}
