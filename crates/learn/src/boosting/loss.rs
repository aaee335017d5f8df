//! The losses: starting scores, gradients and hessians, the validation loss, and the
//! link from raw scores to probabilities.
//!
//! Raw scores are kept per output (`raw[k][row]`): one output for regression and
//! binary classification, one per class for multiclass (softmax).

use super::Loss;

/// Probabilities are kept inside `[EPS, 1 − EPS]` wherever a logarithm is taken, so a
/// window holding a single class gives a finite prior and loss.
const EPS: f64 = 1e-12;
/// Floor on log-loss hessians: a confident row still weighs a little, which keeps
/// `min_child_weight` meaningful and leaf values finite.
const MIN_HESS: f64 = 1e-16;

/// The constant model the trees start from, one score per output (so its length is
/// the number of outputs): the mean, the log-odds of the positive rate, or the log of
/// each class's prior.
pub fn base_scores(loss: Loss, n_classes: usize, ys: &[f64]) -> Vec<f64> {
    let n = ys.len().max(1) as f64;
    match loss {
        Loss::SquaredError => vec![ys.iter().sum::<f64>() / n],
        Loss::LogLoss if n_classes <= 2 => {
            let p = (ys.iter().filter(|&&y| y == 1.0).count() as f64 / n).clamp(EPS, 1.0 - EPS);
            vec![(p / (1.0 - p)).ln()]
        }
        Loss::LogLoss => (0..n_classes)
            .map(|k| {
                let count = ys.iter().filter(|&&y| y == k as f64).count() as f64;
                (count / n).max(EPS).ln()
            })
            .collect(),
    }
}

/// Gradients and hessians of every output for `rows` (other rows are left as they
/// are: they are not in this round's sample).
pub fn gradients(
    loss: Loss,
    ys: &[f64],
    raw: &[Vec<f64>],
    rows: &[usize],
    grad: &mut [Vec<f64>],
    hess: &mut [Vec<f64>],
) {
    let mut p = vec![0.0; raw.len()];
    for &i in rows {
        match loss {
            Loss::SquaredError => {
                grad[0][i] = raw[0][i] - ys[i];
                hess[0][i] = 1.0;
            }
            Loss::LogLoss if raw.len() == 1 => {
                let p = sigmoid(raw[0][i]);
                grad[0][i] = p - ys[i];
                hess[0][i] = (p * (1.0 - p)).max(MIN_HESS);
            }
            Loss::LogLoss => {
                for (k, pk) in p.iter_mut().enumerate() {
                    *pk = raw[k][i];
                }
                softmax(&mut p);
                for (k, &pk) in p.iter().enumerate() {
                    let y = if ys[i] == k as f64 { 1.0 } else { 0.0 };
                    grad[k][i] = pk - y;
                    hess[k][i] = (pk * (1.0 - pk)).max(MIN_HESS);
                }
            }
        }
    }
}

/// The mean loss over all rows: log loss or squared error.
pub fn mean_loss(loss: Loss, ys: &[f64], raw: &[Vec<f64>]) -> f64 {
    let mut total = 0.0;
    let mut scores = vec![0.0; raw.len()];
    for (i, &y) in ys.iter().enumerate() {
        for (k, s) in scores.iter_mut().enumerate() {
            *s = raw[k][i];
        }
        total += match loss {
            Loss::SquaredError => (scores[0] - y).powi(2),
            Loss::LogLoss => {
                let p = probabilities(&scores);
                // Labels were checked to be class indices below the class count.
                let py = p.get(y as usize).copied().unwrap_or(0.0);
                -py.clamp(EPS, 1.0).ln()
            }
        };
    }
    total / ys.len().max(1) as f64
}

/// Class probabilities from a row's raw scores: `[1 − p, p]` for one output,
/// softmax for several.
pub fn probabilities(raw: &[f64]) -> Vec<f64> {
    match raw {
        [z] => {
            let p = sigmoid(*z);
            vec![1.0 - p, p]
        }
        _ => {
            let mut p = raw.to_vec();
            softmax(&mut p);
            p
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

fn softmax(z: &mut [f64]) {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    if sum > 0.0 {
        for v in z.iter_mut() {
            *v /= sum;
        }
    }
}
