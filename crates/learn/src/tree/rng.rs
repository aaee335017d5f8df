//! A small deterministic generator (SplitMix64) whose whole state is one `u64`, so a tree
//! that owns it serialises and resumes exactly.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A Poisson(`lambda`) draw by multiplying uniforms (Knuth); fine for small `lambda`.
    pub(crate) fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let mut k = 0u32;
        let mut p = self.next_f64();
        while p > limit && k < 1000 {
            k += 1;
            p *= self.next_f64();
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_one_has_mean_and_zero_share_of_poisson_one() {
        let mut rng = SplitMix64::new(7);
        let n = 100_000;
        let draws: Vec<u32> = (0..n).map(|_| rng.poisson(1.0)).collect();
        let mean = draws.iter().map(|&k| f64::from(k)).sum::<f64>() / n as f64;
        let zeros = draws.iter().filter(|&&k| k == 0).count() as f64 / n as f64;
        assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
        // P(K = 0) = e^-1 ≈ 0.3679
        assert!((zeros - (-1.0f64).exp()).abs() < 0.01, "zeros {zeros}");
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SplitMix64::new(3);
        let mut b = SplitMix64::new(3);
        for _ in 0..10 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let u = a.next_f64();
        assert!((0.0..1.0).contains(&u));
    }
}
