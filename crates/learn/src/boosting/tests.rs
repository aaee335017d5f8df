//! Behaviour of the booster: hand-computed splits, interactions, missing values,
//! determinism, serialisation, accuracy, and refusals of bad input.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::binning::BinMapper;
use super::data::Columns;
use super::histogram::{Histogram, Layout};
use super::*;
use crate::evaluate::conformance::check_classifier_snapshot;

const CLOSE: f64 = 1e-12;

/// Parameters that let tiny hand-made datasets split.
fn tiny(loss: Loss) -> GbtParams {
    GbtParams {
        loss,
        n_trees: 1,
        learning_rate: 1.0,
        max_depth: 1,
        min_samples_leaf: 1,
        ..GbtParams::default()
    }
}

fn root(model: &GradientBoostedTrees) -> Node {
    model.rounds()[0][0].nodes()[0].clone()
}

/// Uniform points in `[-1, 1]^d` with labels from `label`.
fn dataset(
    seed: u64,
    n: usize,
    d: usize,
    label: impl Fn(&[f64]) -> f64,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let xs: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let ys = xs.iter().map(|x| label(x)).collect();
    (xs, ys)
}

fn accuracy(model: &GradientBoostedTrees, xs: &[Vec<f64>], ys: &[f64]) -> f64 {
    let hits = xs
        .iter()
        .zip(ys)
        .filter(|(x, y)| model.predict_one(x) == Some(**y as usize))
        .count();
    hits as f64 / xs.len() as f64
}

fn xor(x: &[f64]) -> f64 {
    f64::from(u8::from((x[0] > 0.0) != (x[1] > 0.0)))
}

#[test]
fn squared_error_single_split_matches_hand_computation() {
    // base = mean = 5; gradients raw - y = [5, 5, -5, -5], hessians 1; lambda 1.
    // Split x <= 2.5: G_L = 10, H_L = 2, G_R = -10, H_R = 2, G = 0.
    // gain = ½ (100/3 + 100/3 − 0) = 100/3; leaves −10/3 and +10/3.
    let xs = vec![vec![1.0], vec![2.0], vec![3.0], vec![4.0]];
    let ys = [0.0, 0.0, 10.0, 10.0];
    let model = GradientBoostedTrees::fit(tiny(Loss::SquaredError), &xs, &ys, None).unwrap();
    let Node::Split {
        feature,
        threshold,
        gain,
        ..
    } = root(&model)
    else {
        panic!("the root should split");
    };
    assert_eq!((feature, threshold), (0, Some(2.5)));
    assert!((gain - 100.0 / 3.0).abs() < CLOSE, "gain {gain}");
    assert!((model.predict_value(&[1.5]) - (5.0 - 10.0 / 3.0)).abs() < CLOSE);
    assert!((model.predict_value(&[3.5]) - (5.0 + 10.0 / 3.0)).abs() < CLOSE);

    // Shrinkage scales the leaf values, not the gain.
    let params = GbtParams {
        learning_rate: 0.1,
        ..tiny(Loss::SquaredError)
    };
    let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
    assert!((model.predict_value(&[1.0]) - (5.0 - 1.0 / 3.0)).abs() < CLOSE);
}

#[test]
fn log_loss_single_split_matches_hand_computation() {
    // base = logit(0.5) = 0, so p = 0.5: gradients p − y = [.5, .5, −.5, −.5],
    // hessians p(1 − p) = .25. Left: G = 1, H = .5; right: G = −1, H = .5; lambda 1.
    // gain = ½ (1/1.5 + 1/1.5 − 0) = 2/3; leaves ∓1/1.5 = ∓2/3 (log-odds).
    let xs = vec![vec![1.0], vec![2.0], vec![3.0], vec![4.0]];
    let ys = [0.0, 0.0, 1.0, 1.0];
    let model = GradientBoostedTrees::fit(tiny(Loss::LogLoss), &xs, &ys, None).unwrap();
    let Node::Split { gain, .. } = root(&model) else {
        panic!("the root should split");
    };
    assert!((gain - 2.0 / 3.0).abs() < CLOSE, "gain {gain}");
    assert!((model.predict_raw(&[4.0])[0] - 2.0 / 3.0).abs() < CLOSE);
    let p = model.predict_proba_one(&[1.0]);
    let expected = 1.0 / (1.0 + (2.0f64 / 3.0).exp());
    assert!((p[1] - expected).abs() < CLOSE && (p[0] + p[1] - 1.0).abs() < CLOSE);
    assert_eq!(model.predict_one(&[1.0]), Some(0));
}

#[test]
fn importances_credit_the_informative_feature() {
    let (xs, ys) = dataset(19, 1000, 3, |x| f64::from(u8::from(x[1] > 0.2)));
    let model = GradientBoostedTrees::fit(GbtParams::default(), &xs, &ys, None).unwrap();
    let imp = model.feature_importances();
    assert!((imp.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(imp[1] > 0.9, "{imp:?}");
}

#[test]
fn lambda_and_min_split_gain_shrink_the_split() {
    let xs = vec![vec![1.0], vec![2.0], vec![3.0], vec![4.0]];
    let ys = [0.0, 0.0, 10.0, 10.0];
    // lambda 2: gain = ½ (100/4 · 2) = 25; leaves ∓10/4.
    let params = GbtParams {
        lambda: 2.0,
        ..tiny(Loss::SquaredError)
    };
    let model = GradientBoostedTrees::fit(params.clone(), &xs, &ys, None).unwrap();
    let Node::Split { gain, .. } = root(&model) else {
        panic!("the root should split");
    };
    assert!((gain - 25.0).abs() < CLOSE);
    assert!((model.predict_value(&[1.0]) - 2.5).abs() < CLOSE);
    // A split must beat min_split_gain: at 25 it no longer does.
    let params = GbtParams {
        min_split_gain: 25.0,
        ..params
    };
    let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
    assert!(matches!(root(&model), Node::Leaf { .. }));
    assert_eq!(model.predict_value(&[1.0]), 5.0);
}

#[test]
fn depth_two_learns_an_xor_interaction_that_stumps_cannot() {
    let (xs, ys) = dataset(1, 2000, 2, xor);
    let (tx, ty) = dataset(2, 1000, 2, xor);
    let params = |max_depth| GbtParams {
        n_trees: 50,
        max_depth,
        learning_rate: 0.3,
        ..GbtParams::default()
    };
    let depth2 = GradientBoostedTrees::fit(params(2), &xs, &ys, None).unwrap();
    let stumps = GradientBoostedTrees::fit(params(1), &xs, &ys, None).unwrap();
    let (a2, a1) = (accuracy(&depth2, &tx, &ty), accuracy(&stumps, &tx, &ty));
    assert!(a2 > 0.95, "depth 2 accuracy {a2}");
    assert!(a1 < 0.7, "stumps are additive and cannot fit XOR, got {a1}");
}

/// Feature 0 in `[0, 1]` or missing; feature 1 is noise. Label 1 above `cut`, and
/// `missing_label` for missing rows.
fn with_missing(cut: f64, missing_label: f64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    (0..1000)
        .map(|i| {
            let noise = rng.random_range(0.0..1.0);
            if i % 5 == 0 {
                (vec![f64::NAN, noise], missing_label)
            } else {
                let v: f64 = rng.random_range(0.0..1.0);
                (vec![v, noise], f64::from(u8::from(v > cut)))
            }
        })
        .unzip()
}

#[test]
fn missing_values_follow_the_learned_direction() {
    for (cut, missing_label, want_left) in [(0.7, 1.0, false), (0.3, 0.0, true)] {
        let (xs, ys) = with_missing(cut, missing_label);
        let params = GbtParams {
            n_trees: 1,
            max_depth: 1,
            learning_rate: 1.0,
            ..GbtParams::default()
        };
        let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
        let Node::Split {
            feature,
            missing_left,
            threshold,
            ..
        } = root(&model)
        else {
            panic!("the root should split");
        };
        let t = threshold.unwrap();
        assert_eq!(feature, 0);
        assert!((t - cut).abs() < 0.02, "threshold {t} for cut {cut}");
        assert_eq!(missing_left, want_left, "cut {cut}");
        let class = missing_label as usize;
        assert_eq!(model.predict_one(&[f64::NAN, 0.5]), Some(class));
        // An absent feature is missing too.
        assert_eq!(model.predict_one(&[]), Some(class));
    }
}

#[test]
fn missing_only_split_and_unseen_missing_go_where_the_data_says() {
    // Present values say nothing; only missingness predicts the label.
    let xs: Vec<Vec<f64>> = (0..100)
        .map(|i| vec![if i % 2 == 0 { f64::NAN } else { f64::from(i) }])
        .collect();
    let ys: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i % 2 == 0))).collect();
    let model = GradientBoostedTrees::fit(tiny(Loss::LogLoss), &xs, &ys, None).unwrap();
    let Node::Split {
        threshold,
        missing_left,
        ..
    } = root(&model)
    else {
        panic!("the root should split");
    };
    assert_eq!((threshold, missing_left), (None, false));
    assert_eq!(model.predict_one(&[f64::NAN]), Some(1));
    assert_eq!(model.predict_one(&[1e300]), Some(0));
    assert_eq!(model.predict_one(&[f64::INFINITY]), Some(0));

    // No missing value in training: a missing one joins the larger child (x <= 69).
    let xs: Vec<Vec<f64>> = (0..100).map(|i| vec![f64::from(i)]).collect();
    let ys: Vec<f64> = (0..100).map(|i| f64::from(u8::from(i >= 70))).collect();
    let model = GradientBoostedTrees::fit(tiny(Loss::LogLoss), &xs, &ys, None).unwrap();
    assert!(matches!(
        root(&model),
        Node::Split {
            missing_left: true,
            ..
        }
    ));
    assert_eq!(model.predict_one(&[f64::NAN]), Some(0));
}

#[test]
fn subsampling_is_deterministic_by_seed() {
    let (xs, ys) = dataset(4, 1000, 4, |x| {
        f64::from(u8::from(x[0] + x[1] * x[2] > 0.1))
    });
    let params = |seed| GbtParams {
        n_trees: 20,
        subsample: 0.5,
        seed,
        ..GbtParams::default()
    };
    let a = GradientBoostedTrees::fit(params(7), &xs, &ys, None).unwrap();
    let b = GradientBoostedTrees::fit(params(7), &xs, &ys, None).unwrap();
    let c = GradientBoostedTrees::fit(params(8), &xs, &ys, None).unwrap();
    assert_eq!(a, b, "same seed, same model");
    assert_ne!(a, c, "another seed samples other rows");
}

#[test]
fn serde_round_trip_predicts_identically() {
    let (xs, ys) = dataset(5, 600, 3, |x| {
        if x[0] > 0.3 {
            2.0
        } else if x[1] > 0.0 {
            1.0
        } else {
            0.0
        }
    });
    let binary: Vec<f64> = ys.iter().map(|&y| f64::from(u8::from(y == 2.0))).collect();
    let params = GbtParams {
        n_trees: 15,
        ..GbtParams::default()
    };
    let probes = [
        vec![0.1, -0.2, 0.3],
        vec![f64::NAN, 0.5, f64::INFINITY],
        vec![],
        vec![0.9, 0.9, 0.9, 7.0],
    ];
    for labels in [&ys, &binary] {
        let model = GradientBoostedTrees::fit(params.clone(), &xs, labels, None).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: GradientBoostedTrees = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);
        for x in &probes {
            let (p, q) = (model.predict_proba_one(x), back.predict_proba_one(x));
            assert_eq!(
                p.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                q.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
    check_classifier_snapshot(|| {
        GradientBoostedTrees::fit(params.clone(), &xs, &binary, None).unwrap()
    });
}

#[test]
fn accuracy_on_synthetic_data() {
    // A circle: not axis aligned, so it takes many trees.
    let circle = |x: &[f64]| f64::from(u8::from(x[0] * x[0] + x[1] * x[1] < 0.5));
    let (xs, ys) = dataset(6, 4000, 4, circle);
    let (tx, ty) = dataset(7, 2000, 4, circle);
    let model = GradientBoostedTrees::fit(GbtParams::default(), &xs, &ys, None).unwrap();
    let acc = accuracy(&model, &tx, &ty);
    assert!(acc > 0.93, "circle accuracy {acc}");

    // Three classes by region.
    let region = |x: &[f64]| {
        if x[0] > 0.3 {
            2.0
        } else if x[1] > x[0] {
            1.0
        } else {
            0.0
        }
    };
    let (xs, ys) = dataset(8, 3000, 3, region);
    let (tx, ty) = dataset(9, 1000, 3, region);
    let model = GradientBoostedTrees::fit(GbtParams::default(), &xs, &ys, None).unwrap();
    assert_eq!(model.n_classes(), 3);
    let acc = accuracy(&model, &tx, &ty);
    assert!(acc > 0.93, "multiclass accuracy {acc}");

    // Regression of a smooth surface: R² well above 0.9.
    let surface = |x: &[f64]| (3.0 * x[0]).sin() + x[1] * x[1];
    let (xs, ys) = dataset(10, 3000, 2, surface);
    let (tx, ty) = dataset(11, 1000, 2, surface);
    let params = GbtParams {
        loss: Loss::SquaredError,
        ..GbtParams::default()
    };
    let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
    let mean = ty.iter().sum::<f64>() / ty.len() as f64;
    let (mut sse, mut sst) = (0.0, 0.0);
    for (x, y) in tx.iter().zip(&ty) {
        sse += (model.predict_value(x) - y).powi(2);
        sst += (y - mean).powi(2);
    }
    let r2 = 1.0 - sse / sst;
    assert!(r2 > 0.95, "R² {r2}");
    assert!(model.predict_proba_one(&[0.0, 0.0]).is_empty());
    assert_eq!(model.predict_one(&[0.0, 0.0]), None);
}

#[test]
fn early_stopping_keeps_the_best_round() {
    // Pure noise labels: the validation loss can only get worse after a few rounds.
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let (xs, _) = dataset(13, 1000, 3, |_| 0.0);
    let ys: Vec<f64> = xs
        .iter()
        .map(|_| f64::from(u8::from(rng.random_bool(0.5))))
        .collect();
    let (vx, _) = dataset(14, 500, 3, |_| 0.0);
    let vy: Vec<f64> = vx
        .iter()
        .map(|_| f64::from(u8::from(rng.random_bool(0.5))))
        .collect();
    let params = GbtParams {
        n_trees: 200,
        early_stopping_rounds: 5,
        ..GbtParams::default()
    };
    let model = GradientBoostedTrees::fit(params, &xs, &ys, Some((&vx, &vy))).unwrap();
    let losses = model.valid_loss();
    assert!(
        model.n_rounds() < 50,
        "stopped after {} rounds",
        model.n_rounds()
    );
    assert_eq!(losses.len(), model.n_rounds() + 5);
    let best = losses.iter().copied().fold(f64::INFINITY, f64::min);
    assert_eq!(losses[model.n_rounds() - 1], best);
}

#[test]
fn histogram_subtraction_equals_building_the_sibling() {
    let (xs, ys) = dataset(15, 500, 3, xor);
    let columns = Columns::from_rows(&xs).unwrap();
    let bins = BinMapper::fit(&columns, 32);
    let binned = bins.transform(&columns);
    let layout = Layout::new(&bins);
    let hess = vec![0.25; ys.len()];
    let all: Vec<usize> = (0..ys.len()).collect();
    let (small, large): (Vec<usize>, Vec<usize>) = all.iter().partition(|&&i| i % 3 == 0);
    let parent = Histogram::build(&layout, &binned, &all, &ys, &hess);
    let built_small = Histogram::build(&layout, &binned, &small, &ys, &hess);
    let built_large = Histogram::build(&layout, &binned, &large, &ys, &hess);
    let derived = Histogram::sibling_of(&built_small, parent);
    for f in 0..3 {
        for (d, b) in derived
            .feature(&layout, f)
            .iter()
            .zip(built_large.feature(&layout, f))
        {
            assert_eq!(d.count, b.count);
            assert!((d.grad - b.grad).abs() < 1e-9 && (d.hess - b.hess).abs() < 1e-9);
        }
    }
}

#[test]
fn raw_thresholds_route_training_rows_like_their_bins() {
    let (mut xs, ys) = dataset(16, 800, 3, xor);
    for (i, x) in xs.iter_mut().enumerate() {
        if i % 7 == 0 {
            x[i % 3] = f64::NAN;
        }
    }
    let params = GbtParams {
        n_trees: 10,
        max_bins: 16,
        ..GbtParams::default()
    };
    let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
    let columns = Columns::from_rows(&xs).unwrap();
    let binned = model.bins().transform(&columns);
    for trees in model.rounds() {
        for (i, x) in xs.iter().enumerate() {
            assert_eq!(
                trees[0].predict(x),
                trees[0].predict_binned(model.bins(), &binned, i)
            );
        }
    }
}

#[test]
fn max_leaves_and_max_depth_bound_every_tree() {
    let (xs, ys) = dataset(17, 2000, 4, |x| x[0] * x[1] + x[2]);
    let params = GbtParams {
        loss: Loss::SquaredError,
        n_trees: 5,
        max_depth: 4,
        max_leaves: Some(5),
        ..GbtParams::default()
    };
    let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
    for trees in model.rounds() {
        assert_eq!(trees[0].n_leaves(), 5);
    }
    let params = GbtParams {
        loss: Loss::SquaredError,
        n_trees: 5,
        max_depth: 3,
        ..GbtParams::default()
    };
    let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
    for trees in model.rounds() {
        assert_eq!(trees[0].n_leaves(), 8, "full depth-3 tree");
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let p = GbtParams::default;
    let x2 = vec![vec![1.0], vec![2.0]];
    let fit = |params, xs: &[Vec<f64>], ys: &[f64]| GradientBoostedTrees::fit(params, xs, ys, None);
    assert_eq!(fit(p(), &[], &[]), Err(GbtError::EmptyData));
    assert_eq!(
        fit(p(), &[vec![], vec![]], &[0.0, 1.0]),
        Err(GbtError::NoFeatures)
    );
    assert_eq!(
        fit(p(), &x2, &[0.0]),
        Err(GbtError::LengthMismatch { rows: 2, labels: 1 })
    );
    assert!(matches!(
        fit(p(), &[vec![1.0], vec![1.0, 2.0]], &[0.0, 1.0]),
        Err(GbtError::RaggedRow {
            row: 1,
            len: 2,
            expected: 1
        })
    ));
    assert!(matches!(
        fit(p(), &x2, &[0.0, f64::NAN]),
        Err(GbtError::NonFiniteLabel { row: 1, .. })
    ));
    assert!(matches!(
        fit(p(), &x2, &[0.0, 0.5]),
        Err(GbtError::InvalidClass { row: 1, .. })
    ));
    assert!(matches!(
        fit(p(), &x2, &[-1.0, 0.0]),
        Err(GbtError::InvalidClass { row: 0, .. })
    ));
    assert!(matches!(
        fit(p(), &x2, &[0.0, 1e9]),
        Err(GbtError::InvalidClass { .. })
    ));
    for bad in [
        GbtParams { n_trees: 0, ..p() },
        GbtParams {
            learning_rate: f64::NAN,
            ..p()
        },
        GbtParams { max_bins: 1, ..p() },
        GbtParams {
            max_bins: 256,
            ..p()
        },
        GbtParams {
            subsample: 0.0,
            ..p()
        },
        GbtParams {
            lambda: -1.0,
            ..p()
        },
        GbtParams {
            max_leaves: Some(1),
            ..p()
        },
    ] {
        assert!(matches!(
            fit(bad, &x2, &[0.0, 1.0]),
            Err(GbtError::InvalidParam { .. })
        ));
    }
    assert!(matches!(
        Columns::new(vec![vec![1.0], vec![]]),
        Err(GbtError::RaggedColumn { column: 1, .. })
    ));
    // The validation set is checked too, and says so.
    let ys = [0.0, 1.0];
    let err =
        |vx: &[Vec<f64>], vy: &[f64]| GradientBoostedTrees::fit(p(), &x2, &ys, Some((vx, vy)));
    assert!(
        matches!(err(&[vec![1.0, 2.0]], &[0.0]), Err(GbtError::Validation(e)) if matches!(*e, GbtError::RaggedRow { .. }))
    );
    assert!(
        matches!(err(&[vec![1.0]], &[2.0]), Err(GbtError::Validation(e)) if matches!(*e, GbtError::InvalidClass { max: 2, .. }))
    );
    assert!(matches!(err(&[], &[]), Err(GbtError::Validation(e)) if *e == GbtError::EmptyData));
}

#[test]
fn odd_windows_still_fit_and_score() {
    // One class only (a quiet fraud window): a finite prior, class 1 stays possible.
    let xs: Vec<Vec<f64>> = (0..50).map(|i| vec![f64::from(i)]).collect();
    let model = GradientBoostedTrees::fit(GbtParams::default(), &xs, &[0.0; 50], None).unwrap();
    let p = model.predict_proba_one(&[3.0]);
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|v| v.is_finite()) && p[0] > 0.99);
    // Constant or all-missing features: no split, the prior.
    let xs = vec![vec![f64::NAN, 1.0]; 40];
    let ys: Vec<f64> = (0..40).map(|i| f64::from(i % 2)).collect();
    let model = GradientBoostedTrees::fit(GbtParams::default(), &xs, &ys, None).unwrap();
    assert!(model.rounds().iter().all(|t| t[0].n_leaves() == 1));
    assert!((model.predict_proba_one(&[0.0, 0.0])[1] - 0.5).abs() < 1e-9);
    // Extreme feature values neither panic nor yield non-finite scores.
    let xs = vec![
        vec![f64::MAX],
        vec![-f64::MAX],
        vec![f64::INFINITY],
        vec![0.0],
    ];
    let model =
        GradientBoostedTrees::fit(tiny(Loss::LogLoss), &xs, &[1.0, 0.0, 1.0, 0.0], None).unwrap();
    for x in [f64::MAX, f64::NEG_INFINITY, f64::NAN, 0.0] {
        assert!(model.predict_proba_one(&[x]).iter().all(|v| v.is_finite()));
    }
}

#[test]
fn is_a_frozen_classifier() {
    let (xs, ys) = dataset(18, 300, 2, xor);
    let mut model: Box<dyn crate::Classifier> = Box::new(
        GradientBoostedTrees::fit(
            GbtParams {
                n_trees: 5,
                ..GbtParams::default()
            },
            &xs,
            &ys,
            None,
        )
        .unwrap(),
    );
    let before = model.predict_proba_one(&[0.5, 0.5]);
    model.learn_one(&[0.5, 0.5], 0);
    model.learn_many(&xs, &[1; 300]);
    assert_eq!(
        model.predict_proba_one(&[0.5, 0.5]),
        before,
        "learn_one does nothing"
    );
}

#[test]
fn params_have_documented_defaults_and_reject_unknown_keys() {
    let p: GbtParams = serde_json::from_str(r#"{"n_trees": 5}"#).unwrap();
    assert_eq!(
        p,
        GbtParams {
            n_trees: 5,
            ..GbtParams::default()
        }
    );
    let d = GbtParams::default();
    assert_eq!(
        (
            d.n_trees,
            d.learning_rate,
            d.max_depth,
            d.lambda,
            d.max_bins,
            d.early_stopping_rounds
        ),
        (100, 0.1, 6, 1.0, 255, 10)
    );
    assert!(serde_json::from_str::<GbtParams>(r#"{"ntrees": 5}"#).is_err());
    let p: GbtParams = serde_json::from_str(r#"{"loss": "squared_error"}"#).unwrap();
    assert_eq!(p.loss, Loss::SquaredError);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// A feature value: mostly ordinary, sometimes missing, infinite or huge.
    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -10.0..10.0f64,
            1 => Just(f64::NAN),
            1 => prop::sample::select(vec![f64::INFINITY, f64::NEG_INFINITY, f64::MAX, 0.0]),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any window fits without panicking, scores finitely, and its trees route
        /// every training row by raw thresholds exactly as by bins.
        #[test]
        fn any_window_fits_and_routes_consistently(
            rows in prop::collection::vec((prop::collection::vec(value(), 3), 0..3u8), 1..60),
            max_bins in 2..20usize,
            multiclass in any::<bool>(),
        ) {
            let (xs, ys): (Vec<Vec<f64>>, Vec<f64>) = rows
                .into_iter()
                .map(|(x, y)| (x, f64::from(if multiclass { y } else { y % 2 })))
                .unzip();
            let params = GbtParams {
                n_trees: 3,
                max_bins,
                min_samples_leaf: 1,
                ..GbtParams::default()
            };
            let model = GradientBoostedTrees::fit(params, &xs, &ys, None).unwrap();
            let columns = Columns::from_rows(&xs).unwrap();
            let binned = model.bins().transform(&columns);
            for (i, x) in xs.iter().enumerate() {
                let p = model.predict_proba_one(x);
                prop_assert!(p.iter().all(|v| v.is_finite()));
                prop_assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                for tree in model.rounds().iter().flatten() {
                    prop_assert_eq!(tree.predict(x), tree.predict_binned(model.bins(), &binned, i));
                }
            }
        }
    }
}
