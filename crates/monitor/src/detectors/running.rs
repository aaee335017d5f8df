//! River's running statistics, reproduced operation for operation so that detectors
//! built on them cross their thresholds on the same value as River's.

use serde::{Deserialize, Serialize};

/// `river.stats.Mean`: `n += 1; mean += (1/n)(x − mean)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Mean {
    pub n: f64,
    pub mean: f64,
}

impl Mean {
    pub fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (1.0 / self.n) * (x - self.mean);
    }
}

/// `river.stats.Var` (Welford, `ddof = 1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Var {
    pub mean: Mean,
    s: f64,
}

impl Var {
    pub fn update(&mut self, x: f64) {
        let old = self.mean.mean;
        self.mean.update(x);
        self.s += (x - old) * (x - self.mean.mean);
    }

    /// Sample variance; 0 with fewer than two values.
    pub fn get(&self) -> f64 {
        if self.mean.n > 1.0 {
            self.s / (self.mean.n - 1.0)
        } else {
            0.0
        }
    }
}

/// `river.stats.EWMean`: the first value sets the mean, then
/// `mean = α·x + (1 − α)·mean`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct EwMean {
    alpha: f64,
    mean: f64,
    started: bool,
}

impl EwMean {
    pub fn new(alpha: f64) -> Self {
        Self {
            alpha,
            mean: 0.0,
            started: false,
        }
    }

    pub fn update(&mut self, x: f64) {
        if self.started {
            self.mean = self.alpha * x + (1.0 - self.alpha) * self.mean;
        } else {
            self.mean = x;
            self.started = true;
        }
    }

    pub fn get(&self) -> f64 {
        self.mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_rivers_examples() {
        let mut v = Var::default();
        let mut got = Vec::new();
        for x in [3.0, 5.0, 4.0, 7.0, 10.0, 12.0] {
            v.update(x);
            got.push(v.get());
        }
        // river.stats.Var docstring: 0, 2, 1, 2.916666, 7.7, 12.56666.
        assert_eq!(got[..3], [0.0, 2.0, 1.0]);
        assert!((got[5] - 12.566_666_666_666_666).abs() < 1e-12);
        let mut e = EwMean::new(0.5);
        for x in [1.0, 3.0, 5.0, 4.0] {
            e.update(x);
        }
        // river.stats.EWMean docstring: 1, 2, 3.5, 3.75.
        assert_eq!(e.get(), 3.75);
    }
}
