//! Quantile binning: each feature's values are replaced by a small bin index, learned
//! once from the training window, so split search costs O(bins) instead of O(rows).
//!
//! A feature with `n` value bins has `n - 1` sorted upper edges; value `x` falls in
//! bin `i`, the number of edges strictly below `x`. Hence `bin(x) <= b` exactly when
//! `x <= edges[b]`, which is what lets trees keep raw thresholds for serving while
//! training on bins. `NaN` goes to one extra bin, index `n`, whose direction each
//! split learns.

use serde::{Deserialize, Serialize};

use super::data::Columns;

/// The bin edges of every feature, kept in the model so a refit or an audit can
/// reproduce exactly how the training data was discretised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinMapper {
    edges: Vec<Vec<f64>>,
}

impl BinMapper {
    /// Learns at most `max_bins` value bins per feature (`max_bins <= 255`, so a bin
    /// index, including the missing bin, fits a byte). Features with few distinct
    /// values get one bin per value, split at midpoints; others get quantile bins.
    pub fn fit(columns: &Columns, max_bins: usize) -> Self {
        let max_bins = max_bins.clamp(2, 255);
        let edges = (0..columns.n_features())
            .map(|f| feature_edges(columns.column(f), max_bins))
            .collect();
        Self { edges }
    }

    /// The sorted upper edges of `feature`'s value bins (empty for an unknown feature).
    pub fn edges(&self, feature: usize) -> &[f64] {
        self.edges.get(feature).map_or(&[], Vec::as_slice)
    }

    /// Value bins of `feature`; its missing bin has this index.
    pub fn n_bins(&self, feature: usize) -> usize {
        self.edges(feature).len() + 1
    }

    pub fn n_features(&self) -> usize {
        self.edges.len()
    }

    /// The bin of one value.
    pub fn bin(&self, feature: usize, x: f64) -> u8 {
        let edges = self.edges(feature);
        let bin = if x.is_nan() {
            edges.len() + 1
        } else {
            edges.partition_point(|&e| e < x)
        };
        // At most 254 edges, so the missing bin is at most 255.
        u8::try_from(bin).unwrap_or(u8::MAX)
    }

    /// Bins every column.
    pub fn transform(&self, columns: &Columns) -> Vec<Vec<u8>> {
        (0..columns.n_features())
            .map(|f| columns.column(f).iter().map(|&x| self.bin(f, x)).collect())
            .collect()
    }
}

/// Edges for one feature, from its finite values only: infinities fall in the end
/// bins and NaN in the missing bin, and keeping them out keeps every edge finite
/// (JSON cannot hold an infinity).
fn feature_edges(values: &[f64], max_bins: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let mut distinct = sorted.clone();
    distinct.dedup();
    let mut edges: Vec<f64> = if distinct.len() <= max_bins {
        distinct.windows(2).map(|w| midpoint(w[0], w[1])).collect()
    } else {
        let last = (sorted.len() - 1) as f64;
        (1..max_bins)
            .map(|k| {
                let pos = k as f64 * last / max_bins as f64;
                // pos is within [0, len - 1], so both indices are in range.
                midpoint(sorted[pos.floor() as usize], sorted[pos.ceil() as usize])
            })
            .collect()
    };
    edges.dedup();
    edges
}

/// The midpoint, without overflowing for values near `f64::MAX`.
fn midpoint(a: f64, b: f64) -> f64 {
    a * 0.5 + b * 0.5
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapper(values: Vec<f64>, max_bins: usize) -> BinMapper {
        let columns = Columns::new(vec![values]).expect("one column");
        BinMapper::fit(&columns, max_bins)
    }

    #[test]
    fn few_distinct_values_get_one_bin_each_split_at_midpoints() {
        let m = mapper(vec![3.0, 1.0, 2.0, 1.0, f64::NAN, f64::INFINITY], 255);
        assert_eq!(m.edges(0), &[1.5, 2.5]);
        assert_eq!(m.bin(0, 1.0), 0);
        assert_eq!(
            m.bin(0, 1.5),
            0,
            "an edge value belongs to the bin below it"
        );
        assert_eq!(m.bin(0, 2.0), 1);
        assert_eq!(m.bin(0, f64::INFINITY), 2);
        assert_eq!(m.bin(0, f64::NEG_INFINITY), 0);
        assert_eq!(m.bin(0, f64::NAN), 3, "missing has its own bin");
    }

    #[test]
    fn many_distinct_values_get_quantile_bins() {
        let m = mapper((0..1000).map(f64::from).collect(), 4);
        assert_eq!(m.n_bins(0), 4);
        let counts = (0..1000).fold([0usize; 4], |mut c, v| {
            c[usize::from(m.bin(0, f64::from(v)))] += 1;
            c
        });
        assert!(
            counts.iter().all(|&c| (240..=260).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_column_with_no_finite_value_has_one_bin() {
        let m = mapper(vec![f64::NAN, f64::NAN], 255);
        assert_eq!(m.n_bins(0), 1);
        assert_eq!(m.bin(0, 5.0), 0);
        assert_eq!(m.bin(0, f64::NAN), 1);
    }
}
