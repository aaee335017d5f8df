//! What can go wrong when fitting: every input problem is an error, never a panic.

/// Why [`GradientBoostedTrees::fit`](super::GradientBoostedTrees::fit) refused its input.
///
/// Rows are counted from 0 in the set being checked; problems in the validation set
/// come wrapped in [`GbtError::Validation`], so the caller knows which set to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GbtError {
    /// No rows at all: there is nothing to learn a split or even a prior from.
    #[error("no rows to fit on")]
    EmptyData,
    /// Rows exist but carry no features.
    #[error("rows have no features")]
    NoFeatures,
    /// The feature matrix and the labels disagree on the number of rows.
    #[error("{rows} rows but {labels} labels")]
    LengthMismatch { rows: usize, labels: usize },
    /// A row has the wrong number of features.
    #[error("row {row} has {len} features, expected {expected}")]
    RaggedRow {
        row: usize,
        len: usize,
        expected: usize,
    },
    /// A column of column-major input has the wrong length.
    #[error("column {column} has {len} rows, expected {expected}")]
    RaggedColumn {
        column: usize,
        len: usize,
        expected: usize,
    },
    /// A label is NaN or infinite.
    #[error("label of row {row} is not finite ({value})")]
    NonFiniteLabel { row: usize, value: f64 },
    /// A classification label is not a class index `0..MAX_CLASSES`.
    #[error("label of row {row} is {value}, not a class index below {max}")]
    InvalidClass { row: usize, value: f64, max: usize },
    /// A parameter is out of its range.
    #[error("parameter `{name}`: {reason}")]
    InvalidParam {
        name: &'static str,
        reason: &'static str,
    },
    /// The validation set has one of the problems above.
    #[error("validation set: {0}")]
    Validation(Box<GbtError>),
}
