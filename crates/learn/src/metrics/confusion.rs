//! The confusion matrix and Cohen's kappa.

use super::{ClassPrediction, ClassificationMetric, RevertClassification, safe_div};

/// A multiclass confusion matrix over class indices, growing with the classes seen.
/// Rows are true classes, columns predicted classes; an example without a predicted
/// label is counted in its row (and in the total) but in no column.
///
/// ```rust
/// use freshet_learn::metrics::ConfusionMatrix;
///
/// let mut cm = ConfusionMatrix::default();
/// cm.update(0, Some(0));
/// cm.update(0, Some(2));
/// cm.update(1, None);
/// assert_eq!((cm.get(0, 2), cm.total(), cm.row_sum(1), cm.col_sum(1)), (1, 3, 1, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConfusionMatrix {
    /// `counts[true][predicted]`.
    counts: Vec<Vec<u64>>,
    /// Examples per true class that came without a predicted label.
    unpredicted: Vec<u64>,
    total: u64,
}

impl ConfusionMatrix {
    fn grow(&mut self, n: usize) {
        if self.counts.len() < n {
            self.counts.resize(n, Vec::new());
        }
        if self.unpredicted.len() < n {
            self.unpredicted.resize(n, 0);
        }
        for row in &mut self.counts {
            if row.len() < n {
                row.resize(n, 0);
            }
        }
    }

    fn cell(&mut self, y_true: usize, y_pred: Option<usize>) -> &mut u64 {
        self.grow(y_true.max(y_pred.unwrap_or(0)).saturating_add(1));
        match y_pred {
            Some(p) => &mut self.counts[y_true][p],
            None => &mut self.unpredicted[y_true],
        }
    }

    /// Count one example.
    pub fn update(&mut self, y_true: usize, y_pred: Option<usize>) {
        *self.cell(y_true, y_pred) += 1;
        self.total += 1;
    }

    /// Remove one example counted earlier (a cell never goes below zero).
    pub fn revert(&mut self, y_true: usize, y_pred: Option<usize>) {
        let cell = self.cell(y_true, y_pred);
        if *cell > 0 {
            *cell -= 1;
            self.total -= 1;
        }
    }

    /// Number of classes the matrix spans (largest class seen plus one).
    pub fn n_classes(&self) -> usize {
        self.counts.len()
    }

    /// Examples of true class `y_true` predicted as `y_pred`.
    pub fn get(&self, y_true: usize, y_pred: usize) -> u64 {
        self.counts
            .get(y_true)
            .and_then(|row| row.get(y_pred))
            .copied()
            .unwrap_or(0)
    }

    /// Examples counted.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Examples whose true class is `class`.
    pub fn row_sum(&self, class: usize) -> u64 {
        self.counts.get(class).map_or(0, |row| row.iter().sum()) + self.unpredicted_of(class)
    }

    /// Examples predicted as `class`.
    pub fn col_sum(&self, class: usize) -> u64 {
        self.counts.iter().filter_map(|row| row.get(class)).sum()
    }

    /// Examples predicted correctly.
    pub fn diagonal_sum(&self) -> u64 {
        (0..self.n_classes()).map(|c| self.get(c, c)).sum()
    }

    fn unpredicted_of(&self, class: usize) -> u64 {
        self.unpredicted.get(class).copied().unwrap_or(0)
    }
}

/// Cohen's kappa: agreement between predicted and true labels beyond chance,
/// `(p_o - p_e) / (1 - p_e)`, where `p_o` is the accuracy and `p_e` the agreement
/// expected from the row and column marginals of the [`ConfusionMatrix`]. Multiclass;
/// `0.0` when `p_e` is 1 or before any update (as River).
///
/// ```rust
/// use freshet_learn::metrics::{ClassPrediction, ClassificationMetric, CohensKappa};
///
/// // River's example with ant = 0, bird = 1, cat = 2.
/// let y_true = [2, 0, 2, 2, 0, 1];
/// let y_pred = [0, 0, 2, 2, 0, 2];
/// let mut metric = CohensKappa::default();
/// for (y, p) in y_true.into_iter().zip(y_pred) {
///     metric.update(y, &ClassPrediction::label(p));
/// }
/// assert_eq!(format!("{:.6}", metric.get()), "0.428571");
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CohensKappa {
    cm: ConfusionMatrix,
}

impl CohensKappa {
    /// The confusion matrix the kappa is computed from.
    pub fn confusion_matrix(&self) -> &ConfusionMatrix {
        &self.cm
    }
}

impl ClassificationMetric for CohensKappa {
    fn update(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        self.cm.update(y_true, y_pred.label);
    }
    fn get(&self) -> f64 {
        let n = self.cm.total() as f64;
        if n == 0.0 {
            return 0.0;
        }
        let p_o = self.cm.diagonal_sum() as f64 / n;
        let p_e: f64 = (0..self.cm.n_classes())
            .map(|c| (self.cm.row_sum(c) as f64 / n) * (self.cm.col_sum(c) as f64 / n))
            .sum();
        safe_div(p_o - p_e, 1.0 - p_e)
    }
    fn bigger_is_better(&self) -> bool {
        true
    }
}

impl RevertClassification for CohensKappa {
    fn revert(&mut self, y_true: usize, y_pred: &ClassPrediction) {
        self.cm.revert(y_true, y_pred.label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_on_a_3x3_matrix_by_hand() {
        // Confusion matrix (rows true, columns predicted):
        //   [[10, 2, 3],
        //    [ 1, 8, 1],
        //    [ 4, 0, 6]]
        let cells = [[10, 2, 3], [1, 8, 1], [4, 0, 6]];
        let mut k = CohensKappa::default();
        for (t, row) in cells.iter().enumerate() {
            for (p, &n) in row.iter().enumerate() {
                for _ in 0..n {
                    k.update(t, &ClassPrediction::label(p));
                }
            }
        }
        // n = 35, p_o = 24/35; rows 15, 10, 10; columns 15, 10, 10;
        // p_e = (15*15 + 10*10 + 10*10) / 35^2 = 425/1225.
        let p_o = 24.0 / 35.0;
        let p_e = 425.0 / 1225.0;
        assert!((k.get() - (p_o - p_e) / (1.0 - p_e)).abs() < 1e-12);
        assert!((k.get() - 0.518_75).abs() < 1e-12);
        assert_eq!(k.confusion_matrix().get(2, 0), 4);
    }

    #[test]
    fn kappa_river_example_and_revert() {
        let mut k = CohensKappa::default();
        let pairs = [(2, 0), (0, 0), (2, 2), (2, 2), (0, 0), (1, 2)];
        for (y, p) in pairs {
            k.update(y, &ClassPrediction::label(p));
        }
        assert!((k.get() - 9.0 / 21.0).abs() < 1e-12);
        k.revert(1, &ClassPrediction::label(2));
        // 5 examples: diag 4, rows ant 2 cat 3, columns ant 3 cat 2.
        let (p_o, p_e) = (0.8, (2.0 * 3.0 + 3.0 * 2.0) / 25.0);
        assert!((k.get() - (p_o - p_e) / (1.0 - p_e)).abs() < 1e-12);
    }

    #[test]
    fn perfect_agreement_on_one_class_is_zero_and_empty_is_zero() {
        let mut k = CohensKappa::default();
        assert_eq!(k.get(), 0.0);
        k.update(0, &ClassPrediction::label(0));
        assert_eq!(k.get(), 0.0); // p_e = 1
    }

    #[test]
    fn missing_label_counts_in_rows_only() {
        let mut cm = ConfusionMatrix::default();
        cm.update(1, None);
        cm.update(0, Some(0));
        assert_eq!((cm.total(), cm.row_sum(1), cm.col_sum(1)), (2, 1, 0));
        cm.revert(1, None);
        cm.revert(1, None);
        assert_eq!((cm.total(), cm.row_sum(1)), (1, 0));
    }
}
