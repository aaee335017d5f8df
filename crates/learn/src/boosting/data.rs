//! Input checking and layout: the booster reads features column by column (binning
//! and histograms walk one feature at a time), so row-major input is transposed once.

use super::{GbtError, Loss};

/// Most classes a log-loss model accepts; it bounds the trees built per round.
pub const MAX_CLASSES: usize = 256;

/// A column-major feature matrix: one vector per feature, all of the same length.
/// `NaN` marks a missing value; infinities are ordinary (extreme) values.
#[derive(Debug, Clone, PartialEq)]
pub struct Columns {
    n_rows: usize,
    columns: Vec<Vec<f64>>,
}

impl Columns {
    /// Takes ownership of the columns, checking they are non-empty and equally long.
    pub fn new(columns: Vec<Vec<f64>>) -> Result<Self, GbtError> {
        let Some(first) = columns.first() else {
            return Err(GbtError::NoFeatures);
        };
        let n_rows = first.len();
        for (column, c) in columns.iter().enumerate() {
            if c.len() != n_rows {
                return Err(GbtError::RaggedColumn {
                    column,
                    len: c.len(),
                    expected: n_rows,
                });
            }
        }
        Ok(Self { n_rows, columns })
    }

    /// Transposes rows, checking every row has as many features as the first.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, GbtError> {
        let Some(first) = rows.first() else {
            return Err(GbtError::EmptyData);
        };
        let n_features = first.len();
        if n_features == 0 {
            return Err(GbtError::NoFeatures);
        }
        let mut columns = vec![Vec::with_capacity(rows.len()); n_features];
        for (row, x) in rows.iter().enumerate() {
            if x.len() != n_features {
                return Err(GbtError::RaggedRow {
                    row,
                    len: x.len(),
                    expected: n_features,
                });
            }
            for (column, &v) in columns.iter_mut().zip(x) {
                column.push(v);
            }
        }
        Ok(Self {
            n_rows: rows.len(),
            columns,
        })
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_features(&self) -> usize {
        self.columns.len()
    }

    /// The values of one feature, in row order (empty for an unknown feature).
    pub fn column(&self, feature: usize) -> &[f64] {
        self.columns.get(feature).map_or(&[], Vec::as_slice)
    }
}

/// Checks the labels against the task and returns the number of classes (`0` for
/// regression). Classification needs at least two classes of output even when the
/// window holds one, so a model fitted on an all-negative window still scores.
pub(crate) fn check_labels(ys: &[f64], n_rows: usize, loss: Loss) -> Result<usize, GbtError> {
    if n_rows == 0 {
        return Err(GbtError::EmptyData);
    }
    if ys.len() != n_rows {
        return Err(GbtError::LengthMismatch {
            rows: n_rows,
            labels: ys.len(),
        });
    }
    let mut max_class = 1;
    for (row, &value) in ys.iter().enumerate() {
        if !value.is_finite() {
            return Err(GbtError::NonFiniteLabel { row, value });
        }
        if loss == Loss::LogLoss {
            let is_class = value >= 0.0 && value.fract() == 0.0 && value < MAX_CLASSES as f64;
            if !is_class {
                return Err(GbtError::InvalidClass {
                    row,
                    value,
                    max: MAX_CLASSES,
                });
            }
            max_class = max_class.max(value as usize);
        }
    }
    Ok(match loss {
        Loss::LogLoss => max_class + 1,
        Loss::SquaredError => 0,
    })
}
