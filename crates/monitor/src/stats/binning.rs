//! Evidently's binning (`get_binned_data`), shared by PSI and Jensen–Shannon.
//!
//! - A numeric column whose reference holds more than 20 distinct values is cut into
//!   equal-width bins over the pooled (reference + current) range, with Sturges' rule for
//!   the bin count as NumPy's `histogram_bin_edges(..., bins="sturges")` computes it:
//!   `ceil(range / (range / (log2(n) + 1)))` bins, `n` the pooled size; a zero range
//!   becomes `[min − 0.5, max + 0.5]` with one bin. Bin `i` is `[e_i, e_{i+1})`, the
//!   last one closed.
//! - Any other column (categorical, or numeric with few distinct values) gets one bin
//!   per distinct value seen on either side.
//!
//! Each side's counts are divided by that side's size. For PSI (not Jensen–Shannon)
//! Evidently then replaces the empty bins of each side by a small epsilon: the
//! smallest non-zero fraction of that side divided by 10⁶ when that fraction is at
//! most 0.0001, otherwise 0.0001 ([`fill_zeroes`]).

use std::collections::{BTreeMap, BTreeSet};

/// Equal-width Sturges edges over `values` (finite, non-empty), as NumPy makes them.
pub fn sturges_edges(values: &[f64]) -> Vec<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let ptp = hi - lo;
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let width = ptp / ((values.len() as f64).log2() + 1.0);
    let bins = if width > 0.0 {
        ((hi - lo) / width).ceil().max(1.0) as usize
    } else {
        1
    };
    linspace(lo, hi, bins + 1)
}

/// NumPy's `linspace(start, stop, num)`: `start + i·step`, the last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let div = (num - 1) as f64;
    let step = (stop - start) / div;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    if let Some(last) = v.last_mut() {
        *last = stop;
    }
    v
}

/// Counts per bin of `edges` (values outside the edges are not counted).
pub fn histogram(values: &[f64], edges: &[f64]) -> Vec<u64> {
    let bins = edges.len().saturating_sub(1);
    let mut counts = vec![0u64; bins];
    let (Some(&first), Some(&last)) = (edges.first(), edges.last()) else {
        return counts;
    };
    for &v in values {
        if v < first || v > last {
            continue;
        }
        let i = edges
            .partition_point(|&e| e <= v)
            .saturating_sub(1)
            .min(bins - 1);
        counts[i] += 1;
    }
    counts
}

/// Evidently's binned fractions of `reference` and `current` for a numeric column.
pub fn numeric_fractions(reference: &[f64], current: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let distinct: BTreeSet<u64> = reference.iter().map(|v| key(*v)).collect();
    if distinct.len() > 20 {
        let pooled: Vec<f64> = reference.iter().chain(current).copied().collect();
        let edges = sturges_edges(&pooled);
        (
            fractions(&histogram(reference, &edges), reference.len()),
            fractions(&histogram(current, &edges), current.len()),
        )
    } else {
        let r: Vec<u64> = reference.iter().map(|v| key(*v)).collect();
        let c: Vec<u64> = current.iter().map(|v| key(*v)).collect();
        category_fractions(&r, &c)
    }
}

/// One bin per distinct value on either side; fractions of each side's size.
pub fn category_fractions<K: Ord + Clone>(reference: &[K], current: &[K]) -> (Vec<f64>, Vec<f64>) {
    let (r, c) = category_counts(reference, current);
    (fractions(&r, reference.len()), fractions(&c, current.len()))
}

/// Counts per distinct value of either side, in the values' order.
pub fn category_counts<K: Ord + Clone>(reference: &[K], current: &[K]) -> (Vec<u64>, Vec<u64>) {
    let mut table: BTreeMap<K, (u64, u64)> = BTreeMap::new();
    for k in reference {
        table.entry(k.clone()).or_default().0 += 1;
    }
    for k in current {
        table.entry(k.clone()).or_default().1 += 1;
    }
    table.values().copied().unzip()
}

fn fractions(counts: &[u64], n: usize) -> Vec<f64> {
    counts.iter().map(|&c| c as f64 / n as f64).collect()
}

/// A numeric value as a hashable key (−0 and +0 are one value).
pub(crate) fn key(v: f64) -> u64 {
    (v + 0.0).to_bits()
}

/// Evidently's epsilon for empty bins (applied to each side separately before PSI).
pub fn fill_zeroes(fractions: &mut [f64]) {
    let smallest = fractions
        .iter()
        .copied()
        .filter(|&f| f != 0.0)
        .fold(f64::INFINITY, f64::min);
    if !smallest.is_finite() {
        return;
    }
    let eps = if smallest <= 0.0001 {
        smallest / 1e6
    } else {
        0.0001
    };
    for f in fractions.iter_mut().filter(|f| **f == 0.0) {
        *f = eps;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sturges_edges_like_numpy() {
        // np.histogram_bin_edges(np.arange(8.0), bins="sturges"): log2(8)+1 = 4 bins.
        let v: Vec<f64> = (0..8).map(f64::from).collect();
        assert_eq!(sturges_edges(&v), vec![0.0, 1.75, 3.5, 5.25, 7.0]);
        // A constant sample: one bin around the value.
        assert_eq!(sturges_edges(&[3.0, 3.0]), vec![2.5, 3.5]);
    }

    #[test]
    fn histogram_closes_the_last_bin() {
        let edges = [0.0, 1.0, 2.0];
        assert_eq!(
            histogram(&[0.0, 0.5, 1.0, 2.0, 2.5, -1.0], &edges),
            vec![2, 2]
        );
    }

    #[test]
    fn categories_cover_both_sides() {
        let (r, c) = category_counts(&["a", "b", "b"], &["b", "c"]);
        assert_eq!((r, c), (vec![1, 2, 0], vec![0, 1, 1]));
    }

    #[test]
    fn epsilon_rule() {
        let mut f = vec![0.5, 0.0, 0.5];
        fill_zeroes(&mut f);
        assert_eq!(f, vec![0.5, 0.0001, 0.5]);
        let mut f = vec![0.99995, 0.00005, 0.0];
        fill_zeroes(&mut f);
        assert_eq!(f[2], 0.00005 / 1e6);
    }
}
