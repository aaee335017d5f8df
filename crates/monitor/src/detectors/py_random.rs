//! Python's `random.Random(seed)` — the MT19937 generator seeded from an integer the way
//! CPython does it, `getrandbits`, `_randbelow` and `sample` — so that KSWIN draws the
//! same reference sample as River's for the same seed.

use serde::{Deserialize, Serialize};

const N: usize = 624;
const M: usize = 397;

/// CPython's Mersenne Twister.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PyRandom {
    mt: Vec<u32>,
    index: usize,
}

impl PyRandom {
    /// `random.Random(seed)`: the integer's 32-bit words, least significant first, fed
    /// to `init_by_array` (zero is the one-word key `[0]`).
    pub fn new(seed: u64) -> Self {
        let key: Vec<u32> = if seed >> 32 == 0 {
            vec![seed as u32]
        } else {
            vec![seed as u32, (seed >> 32) as u32]
        };
        let mut r = Self {
            mt: vec![0; N],
            index: N,
        };
        r.init_by_array(&key);
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1];
            self.mt[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.init_genrand(19_650_218);
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = self.mt[i - 1];
            self.mt[i] = (self.mt[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                self.mt[0] = self.mt[N - 1];
                i = 1;
            }
        }
        self.mt[0] = 0x8000_0000;
    }

    fn next_u32(&mut self) -> u32 {
        const UPPER: u32 = 0x8000_0000;
        const LOWER: u32 = 0x7fff_ffff;
        const MATRIX_A: u32 = 0x9908_b0df;
        if self.index >= N {
            for k in 0..N {
                let y = (self.mt[k] & UPPER) | (self.mt[(k + 1) % N] & LOWER);
                let mag = if y & 1 == 1 { MATRIX_A } else { 0 };
                self.mt[k] = self.mt[(k + M) % N] ^ (y >> 1) ^ mag;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// `getrandbits(k)` for `1 ≤ k ≤ 32`: the top `k` bits of one output.
    fn getrandbits(&mut self, k: u32) -> u32 {
        self.next_u32() >> (32 - k)
    }

    /// `_randbelow(n)` for `n ≥ 1`: rejection sampling on `bit_length(n)` bits.
    fn randbelow(&mut self, n: u32) -> u32 {
        let k = 32 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `sample(range(n), k)` (`k ≤ n < 2³²`): CPython picks a pool when the population is
    /// small next to the hash set it would otherwise need, and set-based rejection
    /// otherwise; both branches are reproduced since they consume the generator
    /// differently.
    pub fn sample_range(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut setsize = 21usize;
        if k > 5 {
            let exp = ((k * 3) as f64).ln() / 4f64.ln();
            setsize += 4usize.pow(exp.ceil() as u32);
        }
        let mut result = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow((n - i) as u32) as usize;
                result.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow(n as u32) as usize;
                while selected.contains(&j) {
                    j = self.randbelow(n as u32) as usize;
                }
                selected.insert(j);
                result.push(j);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_cpython() {
        // python3 -c "import random; r = random.Random(42); print([r.getrandbits(32) for _ in range(3)])"
        let mut r = PyRandom::new(42);
        let got: Vec<u32> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(got, vec![2_746_317_213, 478_163_327, 107_420_369]);
        // random.Random(1).sample(range(70), 5): the set branch.
        let mut r = PyRandom::new(1);
        assert_eq!(r.sample_range(70, 5), vec![17, 8, 32, 15, 63]);
        // random.Random(0).sample(range(70), 30)[:5]: the pool branch (KSWIN's).
        let mut r = PyRandom::new(0);
        assert_eq!(r.sample_range(70, 30)[..5], [49, 53, 5, 33, 65]);
        // A seed wider than 32 bits: random.Random(2**40 + 5).getrandbits(32).
        let mut r = PyRandom::new((1 << 40) + 5);
        assert_eq!(r.getrandbits(32), 2_166_296_868);
    }
}
