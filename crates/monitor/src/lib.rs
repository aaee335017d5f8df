//! Monitoring: is live traffic still like the data the model learnt from, and is the
//! model still right?
//!
//! This room holds the statistical core of monitoring:
//! - [`stats`]: two-sample statistics — Kolmogorov–Smirnov, Wasserstein (and
//!   Evidently's normalised form), Jensen–Shannon distance, PSI, chi-square and the
//!   two-proportion z-test — each matching SciPy (or Evidently) to floating-point
//!   noise, so a number Freshet reports can be checked with the usual Python tools;
//! - [`drift`]: data and prediction drift per column, with the test picked per column
//!   by type and reference size the way Evidently does by default, its default
//!   thresholds, and the dataset-level drift share;
//! - [`detectors`]: concept-drift detectors over a live error or loss stream (ADWIN,
//!   Page-Hinkley, DDM, EDDM, HDDM_A, HDDM_W, KSWIN) behind one [`DriftDetector`]
//!   trait, with River's defaults and River's exact detection indices;
//! - [`served`]: a sliding window of served traffic tested against a version's
//!   reference profile, per feature and for the prediction, with the drift share;
//! - [`alerts`]: de-duplication of alerts (conditions alert when they start, repeat
//!   slowly, resolve once; events alert at most once per period).
//!
//! Everything here is a pure function of its inputs (randomness comes in as a seed),
//! and detector state serialises, so a monitor can be snapshotted and resumed.
//!
//! May depend on `freshet-core` and `freshet-learn` only (today it needs only `learn`):
//! the reference profile of a model's training data comes from
//! `freshet_learn::model::profile`, and ADWIN is the one the Hoeffding adaptive tree
//! already uses (`freshet_learn::tree::Adwin`).

pub mod alerts;
pub mod detectors;
pub mod drift;
pub mod served;
pub mod stats;

pub use detectors::{Detector, DetectorConfig, DetectorState, DriftDetector};
pub use drift::{
    ColumnData, ColumnDrift, DatasetDrift, DriftMethod, DriftOptions, column_drift, dataset_drift,
};
pub use served::{DriftReport, Reference, ServedWindow, served_drift};

/// What can go wrong computing a drift statistic or building a detector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A statistic needs at least one value on each side.
    #[error("the {which} sample is empty")]
    EmptySample { which: &'static str },
    /// Two inputs that must line up (bins, categories) do not.
    #[error("{what}: lengths differ ({left} vs {right})")]
    LengthMismatch {
        what: &'static str,
        left: usize,
        right: usize,
    },
    /// A probability vector or count vector holds a negative or non-finite entry, or
    /// has no mass at all.
    #[error("{what}: {problem}")]
    InvalidDistribution {
        what: &'static str,
        problem: &'static str,
    },
    /// SciPy's chisquare refuses observed and expected counts whose totals differ by
    /// more than a relative 1e-8; so do we.
    #[error("chi-square: observed total {observed} and expected total {expected} differ")]
    TotalsDiffer { observed: f64, expected: f64 },
    /// A method that does not apply to the column's kind (e.g. KS on categories).
    #[error("method {method} does not apply to {kind} columns")]
    MethodNotApplicable {
        method: &'static str,
        kind: &'static str,
    },
    /// The reference and current sides of a column are of different kinds.
    #[error("the reference column is {reference} but the current one is {current}")]
    KindMismatch {
        reference: &'static str,
        current: &'static str,
    },
    /// A configuration value out of range; names the field.
    #[error("{field}: {problem}")]
    InvalidConfig {
        field: &'static str,
        problem: &'static str,
    },
}

/// This crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
