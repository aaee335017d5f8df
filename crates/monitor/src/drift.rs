//! Data and prediction drift per column, and the dataset-level drift share, with the
//! test picked the way Evidently does by default.
//!
//! | reference rows | column | distinct values (both sides) | method | drift when |
//! |---|---|---|---|---|
//! | ≤ 1000 | numeric | > 5 | Kolmogorov–Smirnov | p < 0.05 |
//! | ≤ 1000 | numeric | 3–5 | chi-square | p < 0.05 |
//! | ≤ 1000 | numeric or categorical | ≤ 2 | two-proportion z-test | p < 0.05 |
//! | ≤ 1000 | categorical | > 2 | chi-square | p < 0.05 |
//! | > 1000 | numeric | > 5 | Wasserstein / reference std | ≥ 0.1 |
//! | > 1000 | numeric | ≤ 5 | Jensen–Shannon distance | ≥ 0.1 |
//! | > 1000 | categorical | any | Jensen–Shannon distance | ≥ 0.1 |
//!
//! PSI is available on request (threshold 0.1, drift when ≥). Missing values — for
//! numeric columns, NaN and ±∞ too — are dropped before the test, as Evidently does, so
//! "rows" above means non-missing values. A dataset drifts when the share of drifted
//! columns reaches the drift share, 0.5 by default.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::stats::binning::{category_counts, category_fractions, key, numeric_fractions};
use crate::stats::{
    chi_square, jensen_shannon, ks_2samp, proportions_z_test, psi, wasserstein_normed,
};
use crate::{Error, Result};

/// Up to this many reference rows, Evidently uses hypothesis tests; above, distances.
pub const SMALL_REFERENCE_ROWS: usize = 1000;
/// Evidently's default p-value threshold: drift when `p < 0.05`.
pub const DEFAULT_P_VALUE_THRESHOLD: f64 = 0.05;
/// Evidently's default distance threshold: drift when `distance ≥ 0.1`.
pub const DEFAULT_DISTANCE_THRESHOLD: f64 = 0.1;
/// Evidently's default dataset drift share: drift when half the columns drift.
pub const DEFAULT_DRIFT_SHARE: f64 = 0.5;

/// One column's values on one side (reference or current).
#[derive(Debug, Clone, Copy)]
pub enum ColumnData<'a> {
    /// Numeric values; NaN and ±∞ count as missing.
    Numeric(&'a [f64]),
    /// Category labels (missing values already left out).
    Categorical(&'a [String]),
}

impl ColumnData<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Numeric(_) => "numeric",
            Self::Categorical(_) => "categorical",
        }
    }
}

/// A drift test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMethod {
    /// Two-sample Kolmogorov–Smirnov p-value (numeric).
    Ks,
    /// Chi-square goodness-of-fit p-value of current counts against rescaled reference
    /// counts.
    ChiSquare,
    /// Two-proportion z-test p-value (at most two distinct values).
    ZTest,
    /// Wasserstein distance divided by the reference standard deviation (numeric).
    Wasserstein,
    /// Jensen–Shannon distance (natural log) over Evidently's bins.
    JensenShannon,
    /// Population stability index over Evidently's bins.
    Psi,
}

impl DriftMethod {
    /// Whether the score is a p-value (drift when below the threshold) rather than a
    /// distance (drift when at or above it).
    pub fn is_p_value(self) -> bool {
        matches!(self, Self::Ks | Self::ChiSquare | Self::ZTest)
    }

    /// Evidently's default threshold for this method.
    pub fn default_threshold(self) -> f64 {
        if self.is_p_value() {
            DEFAULT_P_VALUE_THRESHOLD
        } else {
            DEFAULT_DISTANCE_THRESHOLD
        }
    }

    /// The method's name, as it is serialised (`ks`, `chi_square`, …).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ks => "ks",
            Self::ChiSquare => "chi_square",
            Self::ZTest => "z_test",
            Self::Wasserstein => "wasserstein",
            Self::JensenShannon => "jensen_shannon",
            Self::Psi => "psi",
        }
    }
}

/// Per-column overrides; the defaults are Evidently's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftOptions {
    /// The test to run; `None` picks one by type and size (see the module docs).
    pub method: Option<DriftMethod>,
    /// The threshold; `None` means the method's default.
    pub threshold: Option<f64>,
}

/// The verdict on one column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDrift {
    pub method: DriftMethod,
    /// The p-value or the distance.
    pub score: f64,
    pub threshold: f64,
    pub drifted: bool,
    /// Non-missing values on each side.
    pub reference_rows: usize,
    pub current_rows: usize,
    /// Distinct values over both sides.
    pub distinct_values: usize,
}

/// The verdict on a set of columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetDrift {
    pub columns: usize,
    pub drifted_columns: usize,
    /// `drifted_columns / columns` (0 without columns).
    pub share: f64,
    pub drift_share: f64,
    /// `share ≥ drift_share` (and at least one column).
    pub drifted: bool,
}

/// Evidently's default choice of test for a column.
pub fn choose_method(numeric: bool, reference_rows: usize, distinct_values: usize) -> DriftMethod {
    if reference_rows <= SMALL_REFERENCE_ROWS {
        if distinct_values <= 2 {
            DriftMethod::ZTest
        } else if numeric && distinct_values > 5 {
            DriftMethod::Ks
        } else {
            DriftMethod::ChiSquare
        }
    } else if numeric && distinct_values > 5 {
        DriftMethod::Wasserstein
    } else {
        DriftMethod::JensenShannon
    }
}

/// Test whether `current` has drifted from `reference`.
///
/// ```
/// use freshet_monitor::drift::{column_drift, ColumnData, DriftMethod, DriftOptions};
/// let reference: Vec<f64> = (0..100).map(f64::from).collect();
/// let current: Vec<f64> = (50..150).map(f64::from).collect();
/// let d = column_drift(
///     ColumnData::Numeric(&reference),
///     ColumnData::Numeric(&current),
///     &DriftOptions::default(),
/// )
/// .unwrap();
/// assert_eq!(d.method, DriftMethod::Ks);
/// assert!(d.drifted && d.score < 1e-6);
/// ```
///
/// # Errors
/// Sides of different kinds, a side with no non-missing value, a method that does not
/// apply to the column's kind (KS or Wasserstein on categories), or a threshold that
/// is not finite.
pub fn column_drift(
    reference: ColumnData<'_>,
    current: ColumnData<'_>,
    options: &DriftOptions,
) -> Result<ColumnDrift> {
    let threshold_ok = options.threshold.is_none_or(f64::is_finite);
    if !threshold_ok {
        return Err(Error::InvalidConfig {
            field: "threshold",
            problem: "must be finite",
        });
    }
    match (reference, current) {
        (ColumnData::Numeric(r), ColumnData::Numeric(c)) => {
            let r: Vec<f64> = r.iter().copied().filter(|x| x.is_finite()).collect();
            let c: Vec<f64> = c.iter().copied().filter(|x| x.is_finite()).collect();
            check_sizes(r.len(), c.len())?;
            let rk: Vec<u64> = r.iter().map(|v| key(*v)).collect();
            let ck: Vec<u64> = c.iter().map(|v| key(*v)).collect();
            let distinct = distinct(&rk, &ck);
            let method = options
                .method
                .unwrap_or_else(|| choose_method(true, r.len(), distinct));
            let score = match method {
                DriftMethod::Ks => ks_2samp(&r, &c)?.p_value,
                DriftMethod::Wasserstein => wasserstein_normed(&r, &c)?,
                DriftMethod::ChiSquare => chi_square_score(&rk, &ck)?,
                DriftMethod::ZTest => z_score(&rk, &ck)?,
                DriftMethod::JensenShannon => {
                    let (rf, cf) = numeric_fractions(&r, &c);
                    jensen_shannon(&rf, &cf, None)?
                }
                DriftMethod::Psi => {
                    let (rf, cf) = numeric_fractions(&r, &c);
                    psi(&rf, &cf)?
                }
            };
            Ok(verdict(method, score, options, r.len(), c.len(), distinct))
        }
        (ColumnData::Categorical(r), ColumnData::Categorical(c)) => {
            check_sizes(r.len(), c.len())?;
            let distinct = distinct(r, c);
            let method = options
                .method
                .unwrap_or_else(|| choose_method(false, r.len(), distinct));
            let score = match method {
                DriftMethod::Ks | DriftMethod::Wasserstein => {
                    return Err(Error::MethodNotApplicable {
                        method: method.name(),
                        kind: "categorical",
                    });
                }
                DriftMethod::ChiSquare => chi_square_score(r, c)?,
                DriftMethod::ZTest => z_score(r, c)?,
                DriftMethod::JensenShannon => {
                    let (rf, cf) = category_fractions(r, c);
                    jensen_shannon(&rf, &cf, None)?
                }
                DriftMethod::Psi => {
                    let (rf, cf) = category_fractions(r, c);
                    psi(&rf, &cf)?
                }
            };
            Ok(verdict(method, score, options, r.len(), c.len(), distinct))
        }
        (r, c) => Err(Error::KindMismatch {
            reference: r.kind(),
            current: c.kind(),
        }),
    }
}

/// Evidently's dataset drift: the share of drifted columns against `drift_share`.
pub fn dataset_drift(columns: &[ColumnDrift], drift_share: f64) -> DatasetDrift {
    let drifted_columns = columns.iter().filter(|c| c.drifted).count();
    let share = if columns.is_empty() {
        0.0
    } else {
        drifted_columns as f64 / columns.len() as f64
    };
    DatasetDrift {
        columns: columns.len(),
        drifted_columns,
        share,
        drift_share,
        drifted: !columns.is_empty() && share >= drift_share,
    }
}

fn check_sizes(r: usize, c: usize) -> Result<()> {
    if r == 0 {
        return Err(Error::EmptySample { which: "reference" });
    }
    if c == 0 {
        return Err(Error::EmptySample { which: "current" });
    }
    Ok(())
}

fn distinct<K: Ord>(r: &[K], c: &[K]) -> usize {
    r.iter().chain(c).collect::<BTreeSet<_>>().len()
}

/// Evidently's chi-square: current counts against reference counts scaled to the
/// current size.
fn chi_square_score<K: Ord + Clone>(r: &[K], c: &[K]) -> Result<f64> {
    let (rc, cc) = category_counts(r, c);
    let k_norm = c.len() as f64 / r.len() as f64;
    let expected: Vec<f64> = rc.iter().map(|&n| n as f64 * k_norm).collect();
    let observed: Vec<f64> = cc.iter().map(|&n| n as f64).collect();
    Ok(chi_square(&observed, &expected)?.p_value)
}

/// Evidently's z-test: the smallest value is "0", anything else "1".
fn z_score<K: Ord + Clone>(r: &[K], c: &[K]) -> Result<f64> {
    let Some(first) = r.iter().chain(c).min() else {
        return Err(Error::EmptySample { which: "reference" });
    };
    let ones = |xs: &[K]| xs.iter().filter(|x| *x != first).count() as u64;
    proportions_z_test(ones(r), r.len() as u64, ones(c), c.len() as u64)
}

fn verdict(
    method: DriftMethod,
    score: f64,
    options: &DriftOptions,
    reference_rows: usize,
    current_rows: usize,
    distinct_values: usize,
) -> ColumnDrift {
    let threshold = options.threshold.unwrap_or(method.default_threshold());
    let drifted = if method.is_p_value() {
        score < threshold
    } else {
        score >= threshold
    };
    ColumnDrift {
        method,
        score,
        threshold,
        drifted,
        reference_rows,
        current_rows,
        distinct_values,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn method_choice_follows_evidently() {
        assert_eq!(choose_method(true, 1000, 6), DriftMethod::Ks);
        assert_eq!(choose_method(true, 1000, 5), DriftMethod::ChiSquare);
        assert_eq!(choose_method(true, 1000, 2), DriftMethod::ZTest);
        assert_eq!(choose_method(false, 10, 3), DriftMethod::ChiSquare);
        assert_eq!(choose_method(false, 10, 2), DriftMethod::ZTest);
        assert_eq!(choose_method(true, 1001, 6), DriftMethod::Wasserstein);
        assert_eq!(choose_method(true, 1001, 5), DriftMethod::JensenShannon);
        assert_eq!(choose_method(false, 5000, 2), DriftMethod::JensenShannon);
    }

    #[test]
    fn numeric_small_and_large() {
        let r: Vec<f64> = (0..200).map(|i| f64::from(i % 50)).collect();
        let same = column_drift(
            ColumnData::Numeric(&r),
            ColumnData::Numeric(&r),
            &DriftOptions::default(),
        )
        .unwrap();
        assert_eq!(
            (same.method, same.score, same.drifted),
            (DriftMethod::Ks, 1.0, false)
        );

        let big: Vec<f64> = (0..2000).map(|i| f64::from(i % 100)).collect();
        let shifted: Vec<f64> = big.iter().map(|x| x + 10.0).collect();
        let d = column_drift(
            ColumnData::Numeric(&big),
            ColumnData::Numeric(&shifted),
            &DriftOptions::default(),
        )
        .unwrap();
        assert_eq!(d.method, DriftMethod::Wasserstein);
        // Shift 10 over a std of sqrt((100² − 1)/12) ≈ 28.866.
        assert!((d.score - 10.0 / ((100.0f64 * 100.0 - 1.0) / 12.0).sqrt()).abs() < 1e-9);
        assert!(d.drifted);
    }

    #[test]
    fn missing_numeric_values_are_dropped() {
        let r = [1.0, 2.0, f64::NAN, 3.0, 4.0, 5.0, 6.0, f64::INFINITY];
        let d = column_drift(
            ColumnData::Numeric(&r),
            ColumnData::Numeric(&r),
            &DriftOptions::default(),
        )
        .unwrap();
        assert_eq!((d.reference_rows, d.distinct_values), (6, 6));
        let nothing = [f64::NAN];
        assert!(
            column_drift(
                ColumnData::Numeric(&nothing),
                ColumnData::Numeric(&r),
                &DriftOptions::default()
            )
            .is_err()
        );
    }

    #[test]
    fn categorical_chi_square_and_z() {
        let r = strings(&["a", "b", "c", "a", "b", "c"]);
        let c = strings(&["a", "a", "a", "a", "b", "c"]);
        let d = column_drift(
            ColumnData::Categorical(&r),
            ColumnData::Categorical(&c),
            &DriftOptions::default(),
        )
        .unwrap();
        assert_eq!(d.method, DriftMethod::ChiSquare);
        // Expected 2,2,2 against observed 4,1,1: χ² = 2 + 0.5 + 0.5 = 3, 2 dof → e^{−1.5}.
        assert!((d.score - (-1.5f64).exp()).abs() < 1e-15);
        assert!(!d.drifted);

        let r = strings(&["no", "yes", "no", "no"]);
        let d = column_drift(
            ColumnData::Categorical(&r),
            ColumnData::Categorical(&r),
            &DriftOptions::default(),
        )
        .unwrap();
        assert_eq!((d.method, d.score), (DriftMethod::ZTest, 1.0));
    }

    #[test]
    fn explicit_methods_and_thresholds() {
        let r = strings(&["a", "b"]);
        let c = strings(&["b", "b"]);
        let js = column_drift(
            ColumnData::Categorical(&r),
            ColumnData::Categorical(&c),
            &DriftOptions {
                method: Some(DriftMethod::JensenShannon),
                threshold: Some(0.9),
            },
        )
        .unwrap();
        let expected = jensen_shannon(&[0.5, 0.5], &[0.0, 1.0], None).unwrap();
        assert_eq!(js.score, expected);
        assert!(!js.drifted);
        assert!(matches!(
            column_drift(
                ColumnData::Categorical(&r),
                ColumnData::Categorical(&c),
                &DriftOptions {
                    method: Some(DriftMethod::Ks),
                    threshold: None
                }
            ),
            Err(Error::MethodNotApplicable { .. })
        ));
        assert!(
            column_drift(
                ColumnData::Categorical(&r),
                ColumnData::Numeric(&[1.0]),
                &DriftOptions::default()
            )
            .is_err()
        );
    }

    #[test]
    fn dataset_share() {
        let col = |drifted| ColumnDrift {
            method: DriftMethod::Ks,
            score: 0.0,
            threshold: 0.05,
            drifted,
            reference_rows: 1,
            current_rows: 1,
            distinct_values: 1,
        };
        let d = dataset_drift(&[col(true), col(false)], DEFAULT_DRIFT_SHARE);
        assert_eq!((d.drifted_columns, d.share, d.drifted), (1, 0.5, true));
        let d = dataset_drift(&[col(true), col(false), col(false)], DEFAULT_DRIFT_SHARE);
        assert!(!d.drifted);
        assert!(!dataset_drift(&[], DEFAULT_DRIFT_SHARE).drifted);
    }
}
