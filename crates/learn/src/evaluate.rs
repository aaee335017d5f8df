//! Prequential (test-then-train) evaluation: the one loop behind benchmarks, replay,
//! shadow and canary.
//!
//! Each example is first predicted by the current model; its label arrives `delay`
//! examples later, at which point the metrics are updated with the prediction made
//! on arrival and the model learns the example. With `delay = 0` this is River's
//! `progressive_val_score`: predict, score, learn. Labels still in flight when the
//! stream ends arrive then, in order (as River's `simulate_qa`), so every example is
//! scored and learnt exactly once.
//!
//! [`conformance`] holds the checks every learner must pass and the seeded streams
//! used to run them.

pub mod conformance;

use std::collections::VecDeque;

use crate::metrics::{ClassPrediction, ClassificationMetric, RegressionMetric};
use crate::{Classifier, Regressor};

/// What a prequential run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Examples predicted (all examples of the stream).
    pub predicted: u64,
    /// Examples whose label arrived, scored by the metrics and then learnt.
    pub learned: u64,
    /// Of those, the ones whose label arrived only after the stream ended.
    pub flushed: u64,
}

/// Run `model` prequentially over `stream`, updating every metric in `metrics`.
///
/// ```rust
/// use freshet_learn::baseline::NoChange;
/// use freshet_learn::evaluate::prequential_classification;
/// use freshet_learn::metrics::{Accuracy, ClassificationMetric};
///
/// let stream = [0, 0, 1, 1, 1, 0].map(|y| (vec![], y));
/// let mut model = NoChange::default();
/// let mut accuracy = Accuracy::default();
/// let counts = prequential_classification(&mut model, stream, &mut [&mut accuracy], 0);
/// // No prediction for the first example, then right 3 times out of 5.
/// assert_eq!(accuracy.get(), 0.5);
/// assert_eq!((counts.predicted, counts.learned, counts.flushed), (6, 6, 0));
/// ```
pub fn prequential_classification(
    model: &mut dyn Classifier,
    stream: impl IntoIterator<Item = (Vec<f64>, usize)>,
    metrics: &mut [&mut dyn ClassificationMetric],
    delay: usize,
) -> Counts {
    let mut counts = Counts::default();
    let mut in_flight: VecDeque<(Vec<f64>, usize, ClassPrediction)> = VecDeque::new();
    let mut arrive = |model: &mut dyn Classifier,
                      (x, y, pred): (Vec<f64>, usize, ClassPrediction)| {
        for metric in metrics.iter_mut() {
            metric.update(y, &pred);
        }
        model.learn_one(&x, y);
    };
    for (x, y) in stream {
        let pred = ClassPrediction::of(model, &x);
        counts.predicted += 1;
        in_flight.push_back((x, y, pred));
        while in_flight.len() > delay {
            let Some(example) = in_flight.pop_front() else {
                break;
            };
            arrive(model, example);
            counts.learned += 1;
        }
    }
    while let Some(example) = in_flight.pop_front() {
        arrive(model, example);
        counts.learned += 1;
        counts.flushed += 1;
    }
    counts
}

/// Run `model` prequentially over `stream`, updating every metric in `metrics`.
///
/// ```rust
/// use freshet_learn::evaluate::prequential_regression;
/// use freshet_learn::linear::LinearRegression;
/// use freshet_learn::metrics::{Mae, RegressionMetric};
///
/// let stream = vec![(vec![1.0], 2.0), (vec![1.0], 2.0)];
/// let mut model = LinearRegression::default();
/// let mut mae = Mae::default();
/// let counts = prequential_regression(&mut model, stream, &mut [&mut mae], 1);
/// // Both predicted by the untrained model (0): the first label arrives one later.
/// assert_eq!(mae.get(), 2.0);
/// assert_eq!((counts.learned, counts.flushed), (2, 1));
/// ```
pub fn prequential_regression(
    model: &mut dyn Regressor,
    stream: impl IntoIterator<Item = (Vec<f64>, f64)>,
    metrics: &mut [&mut dyn RegressionMetric],
    delay: usize,
) -> Counts {
    let mut counts = Counts::default();
    let mut in_flight: VecDeque<(Vec<f64>, f64, f64)> = VecDeque::new();
    let mut arrive = |model: &mut dyn Regressor, (x, y, pred): (Vec<f64>, f64, f64)| {
        for metric in metrics.iter_mut() {
            metric.update(y, pred);
        }
        model.learn_one(&x, y);
    };
    for (x, y) in stream {
        let pred = model.predict_one(&x);
        counts.predicted += 1;
        in_flight.push_back((x, y, pred));
        while in_flight.len() > delay {
            let Some(example) = in_flight.pop_front() else {
                break;
            };
            arrive(model, example);
            counts.learned += 1;
        }
    }
    while let Some(example) = in_flight.pop_front() {
        arrive(model, example);
        counts.learned += 1;
        counts.flushed += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::baseline::{MajorityClass, NoChange};
    use crate::metrics::{Accuracy, Mae, Rmse};

    #[test]
    fn delay_scores_the_prediction_made_on_arrival() {
        // NoChange predicts the last label learnt. With delay 2 the prediction for
        // example i is the label of example i - 3.
        let ys = [0, 1, 2, 0, 1, 2, 0, 1];
        let stream = ys.map(|y| (vec![1.0], y));
        let mut model = NoChange::default();
        let mut acc = Accuracy::default();
        let counts = prequential_classification(&mut model, stream, &mut [&mut acc], 2);
        assert_eq!(
            counts,
            Counts {
                predicted: 8,
                learned: 8,
                flushed: 2
            }
        );
        // Examples 3..8 are predicted from the label 3 earlier: all right; 0..3 not.
        assert_eq!(acc.get(), 5.0 / 8.0);
        assert_eq!(model.predict_one(&[]), Some(1));
    }

    #[test]
    fn zero_delay_is_test_then_train_with_several_metrics() {
        let stream = [0, 0, 1, 0].map(|y| (vec![], y));
        let mut model = MajorityClass::default();
        let (mut a, mut b) = (Accuracy::default(), Accuracy::default());
        let counts = prequential_classification(&mut model, stream, &mut [&mut a, &mut b], 0);
        // Predictions: none, 0, 0, 0 → right on examples 2 and 4.
        assert_eq!((a.get(), b.get()), (0.5, 0.5));
        assert_eq!(counts.flushed, 0);
    }

    #[test]
    fn empty_stream_and_huge_delay() {
        let mut model = NoChange::default();
        let counts = prequential_classification(&mut model, Vec::new(), &mut [], 3);
        assert_eq!(counts, Counts::default());
        let mut reg = crate::linear::LinearRegression::default();
        let mut rmse = Rmse::default();
        let stream = vec![(vec![1.0], 1.0); 3];
        let counts = prequential_regression(&mut reg, stream, &mut [&mut rmse], usize::MAX);
        assert_eq!((counts.learned, counts.flushed), (3, 3));
        assert_eq!(rmse.get(), 1.0);
    }

    #[test]
    fn regression_with_zero_delay_learns_between_predictions() {
        let stream = vec![(vec![1.0], 2.0), (vec![1.0], 2.0)];
        let mut model = crate::linear::LinearRegression::default();
        let mut mae = Mae::default();
        prequential_regression(&mut model, stream, &mut [&mut mae], 0);
        // After one step: w = b = 0.01 · 2 · 2 = 0.04, so the second prediction is 0.08.
        assert!((mae.get() - (2.0 + (2.0 - 0.08)) / 2.0).abs() < 1e-12);
    }
}
