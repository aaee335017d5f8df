//! Stream-level behaviour of both trees.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::Classifier;

/// `n` examples of two uniform features; the class is `x0 > 0.5`, inverted from index
/// `flip_at` on.
fn stream(seed: u64, n: usize, flip_at: usize) -> Vec<(Vec<f64>, usize)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|t| {
            let x = vec![rng.random::<f64>(), rng.random::<f64>()];
            let y = usize::from((x[0] > 0.5) == (t < flip_at));
            (x, y)
        })
        .collect()
}

/// Prequential (test-then-train) hits, one per example.
fn prequential(model: &mut dyn Classifier, data: &[(Vec<f64>, usize)]) -> Vec<bool> {
    data.iter()
        .map(|(x, y)| {
            let hit = model.predict_one(x) == Some(*y);
            model.learn_one(x, *y);
            hit
        })
        .collect()
}

fn accuracy(hits: &[bool]) -> f64 {
    hits.iter().filter(|&&h| h).count() as f64 / hits.len() as f64
}

fn probes(seed: u64) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut probes: Vec<Vec<f64>> = (0..300)
        .map(|_| (0..3).map(|_| rng.random::<f64>() * 1.4 - 0.2).collect())
        .collect();
    probes.extend([
        vec![],
        vec![f64::NAN],
        vec![f64::NAN, f64::NAN],
        vec![0.7],
        vec![f64::INFINITY, f64::NEG_INFINITY],
        vec![0.2, 0.3, 0.4, 0.5, 0.6],
    ]);
    probes
}

#[test]
fn ht_waits_for_the_grace_period_then_splits_on_the_informative_feature() {
    let data = stream(11, 400, usize::MAX);
    let mut tree = HoeffdingTreeClassifier::default();
    for (x, y) in &data[..199] {
        tree.learn_one(x, *y);
    }
    assert_eq!(tree.summary().n_branches, 0);
    assert_eq!(tree.root_split(), None);
    tree.learn_one(&data[199].0, data[199].1);
    let rule = tree.root_split().expect("split at the 200th example");
    assert_eq!(rule.feature, 0);
    assert!((rule.threshold - 0.5).abs() < 0.1, "{rule:?}");
    let summary = tree.summary();
    assert_eq!(
        (summary.n_branches, summary.n_leaves, summary.depth),
        (1, 2, 1)
    );
}

#[test]
fn ht_learns_an_obvious_concept() {
    let data = stream(1, 2000, usize::MAX);
    let mut tree = HoeffdingTreeClassifier::default();
    let acc = accuracy(&prequential(&mut tree, &data));
    assert!(acc > 0.95, "prequential accuracy {acc}");
    let rule = tree.root_split().expect("root split");
    assert_eq!(rule.feature, 0);
    assert!((rule.threshold - 0.5).abs() < 0.1, "{rule:?}");
    assert_eq!(tree.predict_one(&[0.05, 0.5]), Some(0));
    assert_eq!(tree.predict_one(&[0.95, 0.5]), Some(1));
}

#[test]
fn ht_separates_three_classes() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let data: Vec<(Vec<f64>, usize)> = (0..5000)
        .map(|_| {
            let x = vec![
                rng.random::<f64>(),
                rng.random::<f64>(),
                rng.random::<f64>(),
            ];
            let y = if x[1] < 0.3 {
                0
            } else if x[2] < 0.6 {
                1
            } else {
                2
            };
            (x, y)
        })
        .collect();
    let mut tree = HoeffdingTreeClassifier::default();
    let hits = prequential(&mut tree, &data);
    let late = accuracy(&hits[3000..]);
    assert!(late > 0.9, "accuracy on the last 2000: {late}");
    assert_eq!(tree.predict_proba_one(&[0.5, 0.5, 0.5]).len(), 3);
}

#[test]
fn hat_recovers_from_a_concept_flip_and_beats_the_plain_tree() {
    let data = stream(7, 10_000, 5000);
    let mut hat = HoeffdingAdaptiveTreeClassifier::default();
    let mut ht = HoeffdingTreeClassifier::default();
    let hat_hits = prequential(&mut hat, &data);
    let ht_hits = prequential(&mut ht, &data);
    let hat_late = accuracy(&hat_hits[7000..]);
    let ht_late = accuracy(&ht_hits[7000..]);
    assert!(hat_late > 0.85, "HAT accuracy on 7000..10000: {hat_late}");
    assert!(hat_late > ht_late, "HAT {hat_late} vs HT {ht_late}");
    assert!(accuracy(&hat_hits[..5000]) > 0.9);
    assert!(hat.n_alternate_trees() >= 1);
    assert!(hat.n_switched_alternate_trees() >= 1);
    // After the switch the tree still tests feature 0, now the other way round.
    assert_eq!(hat.root_split().map(|r| r.feature), Some(0));
    assert_eq!(hat.predict_one(&[0.05, 0.5]), Some(1));
    assert_eq!(hat.predict_one(&[0.95, 0.5]), Some(0));
}

#[test]
fn hat_without_bootstrap_also_adapts() {
    let data = stream(8, 10_000, 5000);
    let config = HoeffdingAdaptiveTreeConfig {
        bootstrap_sampling: false,
        ..HoeffdingAdaptiveTreeConfig::default()
    };
    let mut hat = HoeffdingAdaptiveTreeClassifier::new(config).unwrap();
    let hits = prequential(&mut hat, &data);
    assert!(accuracy(&hits[7000..]) > 0.85);
}

fn assert_same_predictions(a: &dyn Classifier, b: &dyn Classifier) {
    for p in probes(99) {
        assert_eq!(a.predict_proba_one(&p), b.predict_proba_one(&p), "at {p:?}");
    }
}

#[test]
fn serde_round_trip_predicts_and_learns_identically() {
    let data = stream(3, 8000, 4000);
    let mut ht = HoeffdingTreeClassifier::default();
    let mut hat = HoeffdingAdaptiveTreeClassifier::default();
    for (x, y) in &data[..6000] {
        ht.learn_one(x, *y);
        hat.learn_one(x, *y);
    }
    let mut ht2: HoeffdingTreeClassifier =
        serde_json::from_str(&serde_json::to_string(&ht).unwrap()).unwrap();
    let mut hat2: HoeffdingAdaptiveTreeClassifier =
        serde_json::from_str(&serde_json::to_string(&hat).unwrap()).unwrap();
    assert_same_predictions(&ht, &ht2);
    assert_same_predictions(&hat, &hat2);
    // Learning goes on identically, bootstrap draws included.
    for (x, y) in &data[6000..] {
        ht.learn_one(x, *y);
        ht2.learn_one(x, *y);
        hat.learn_one(x, *y);
        hat2.learn_one(x, *y);
    }
    assert_same_predictions(&ht, &ht2);
    assert_same_predictions(&hat, &hat2);
    assert_eq!(hat.summary(), hat2.summary());
    // Clones behave the same way.
    assert_same_predictions(&hat.clone(), &hat);
}

#[test]
fn predicting_never_mutates() {
    let data = stream(4, 3000, 1500);
    let mut hat = HoeffdingAdaptiveTreeClassifier::default();
    let mut ht = HoeffdingTreeClassifier::default();
    for (x, y) in &data {
        hat.learn_one(x, *y);
        ht.learn_one(x, *y);
    }
    let before = (
        serde_json::to_string(&hat).unwrap(),
        serde_json::to_string(&ht).unwrap(),
    );
    for p in probes(1) {
        assert_eq!(hat.predict_proba_one(&p), hat.predict_proba_one(&p));
        assert_eq!(ht.predict_proba_one(&p), ht.predict_proba_one(&p));
        assert_eq!(hat.predict_one(&p), hat.predict_one(&p));
    }
    let after = (
        serde_json::to_string(&hat).unwrap(),
        serde_json::to_string(&ht).unwrap(),
    );
    assert!(before == after);
}

#[test]
fn a_fixed_seed_gives_a_fixed_model_and_seeds_matter() {
    let data = stream(9, 6000, 3000);
    let make = |seed| {
        let config = HoeffdingAdaptiveTreeConfig {
            seed,
            ..HoeffdingAdaptiveTreeConfig::default()
        };
        let mut hat = HoeffdingAdaptiveTreeClassifier::new(config).unwrap();
        for (x, y) in &data {
            hat.learn_one(x, *y);
        }
        hat
    };
    let (a, b, c) = (make(5), make(5), make(6));
    assert_same_predictions(&a, &b);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let differs = probes(2)
        .iter()
        .any(|p| a.predict_proba_one(p) != c.predict_proba_one(p));
    assert!(differs, "bootstrap weights should depend on the seed");
}

#[test]
fn noise_keeps_the_tree_small() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let mut ht = HoeffdingTreeClassifier::default();
    let mut hat = HoeffdingAdaptiveTreeClassifier::default();
    for _ in 0..20_000 {
        let x: Vec<f64> = (0..5).map(|_| rng.random::<f64>()).collect();
        let y = rng.random_range(0..3);
        ht.learn_one(&x, y);
        hat.learn_one(&x, y);
    }
    let (s_ht, s_hat) = (ht.summary(), hat.summary());
    // Under pure noise a leaf only splits once the bound drops below τ, i.e. after
    // roughly ln(1/δ)·log2(3)²/(2τ²) ≈ 8000 examples' worth of weight.
    assert!(s_ht.n_nodes <= 31, "{s_ht:?}");
    assert!(s_hat.n_nodes <= 101, "{s_hat:?}");
    assert!(s_ht.depth <= 6 && s_hat.depth <= 10);
    let json = serde_json::to_string(&hat).unwrap();
    assert!(json.len() < 2_000_000, "{} bytes", json.len());
}

#[test]
fn max_depth_is_respected() {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let config = HoeffdingTreeConfig {
        max_depth: Some(1),
        ..HoeffdingTreeConfig::default()
    };
    let mut tree = HoeffdingTreeClassifier::new(config).unwrap();
    for _ in 0..5000 {
        let x = [rng.random::<f64>(), rng.random::<f64>()];
        // x0 is the obvious first split; x1 would be the second level.
        let y = if x[0] < 0.5 {
            0
        } else if x[1] < 0.5 {
            1
        } else {
            2
        };
        tree.learn_one(&x, y);
    }
    let summary = tree.summary();
    assert_eq!(summary.depth, 1);
    assert_eq!(summary.n_active_leaves, 0);
}

#[test]
fn odd_inputs_never_panic() {
    let mut ht = HoeffdingTreeClassifier::default();
    let mut hat = HoeffdingAdaptiveTreeClassifier::default();
    assert!(ht.predict_proba_one(&[1.0]).is_empty());
    assert!(hat.predict_proba_one(&[]).is_empty());
    assert_eq!(ht.predict_one(&[]), None);
    assert_eq!(hat.predict_one(&[f64::NAN]), None);
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for t in 0..6000 {
        let len = rng.random_range(0..5);
        let mut x: Vec<f64> = (0..len).map(|_| rng.random::<f64>()).collect();
        if t % 7 == 0 && !x.is_empty() {
            x[0] = f64::NAN;
        }
        if t % 11 == 0 {
            x.push(f64::INFINITY);
        }
        let y = x.first().map_or(0, |&v| usize::from(v > 0.5));
        ht.learn_one(&x, y);
        hat.learn_one(&x, y);
    }
    ht.learn_one(&[0.5], MAX_CLASSES);
    hat.learn_one(&[0.5], usize::MAX);
    for p in probes(3) {
        for proba in [ht.predict_proba_one(&p), hat.predict_proba_one(&p)] {
            assert_eq!(proba.len(), 2);
            assert!((proba.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{proba:?}");
            assert!(proba.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
    }
    // The class-1 region is still recognised despite the noise in the inputs.
    assert_eq!(ht.predict_one(&[0.9, 0.5]), Some(1));
}

#[test]
fn missing_split_feature_follows_the_heavier_branch() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let mut tree = HoeffdingTreeClassifier::default();
    // 80 % of the weight is on the right of the x0 split.
    for _ in 0..3000 {
        let x0 = if rng.random_bool(0.8) {
            0.6 + 0.4 * rng.random::<f64>()
        } else {
            0.4 * rng.random::<f64>()
        };
        let x = [x0, rng.random::<f64>()];
        tree.learn_one(&x, usize::from(x0 > 0.5));
    }
    assert_eq!(tree.root_split().map(|r| r.feature), Some(0));
    assert_eq!(tree.predict_one(&[f64::NAN, 0.5]), Some(1));
    assert_eq!(tree.predict_one(&[]), Some(1));
}

#[test]
fn invalid_configs_are_rejected() {
    let bad_tree = HoeffdingTreeConfig {
        tau: -1.0,
        ..HoeffdingTreeConfig::default()
    };
    assert!(HoeffdingTreeClassifier::new(bad_tree.clone()).is_err());
    let bad_hat = HoeffdingAdaptiveTreeConfig {
        tree: bad_tree,
        ..HoeffdingAdaptiveTreeConfig::default()
    };
    assert!(HoeffdingAdaptiveTreeClassifier::new(bad_hat).is_err());
    let bad_hat = HoeffdingAdaptiveTreeConfig {
        switch_significance: 1.5,
        ..HoeffdingAdaptiveTreeConfig::default()
    };
    let err = HoeffdingAdaptiveTreeClassifier::new(bad_hat).unwrap_err();
    assert!(err.to_string().starts_with("switch_significance"));
    let parsed: HoeffdingAdaptiveTreeConfig = serde_json::from_str(
        r#"{"seed": 3, "tree": {"grace_period": 100}, "adwin": {"delta": 0.01}}"#,
    )
    .unwrap();
    assert_eq!(parsed.tree.grace_period.get(), 100);
    assert_eq!(parsed.adwin.delta, 0.01);
    assert_eq!(parsed.adwin.clock.get(), 32);
}

#[test]
fn both_trees_pass_the_classifier_conformance_suite() {
    use crate::evaluate::conformance::{check_classifier_conformance, check_classifier_snapshot};

    for leaf_prediction in [
        LeafPrediction::NaiveBayesAdaptive,
        LeafPrediction::NaiveBayes,
        LeafPrediction::MajorityClass,
    ] {
        // A short grace period so that the suite's short stream makes the trees split.
        let tree = HoeffdingTreeConfig {
            grace_period: std::num::NonZeroU32::new(20).unwrap(),
            leaf_prediction,
            ..HoeffdingTreeConfig::default()
        };
        let hat = HoeffdingAdaptiveTreeConfig {
            tree: tree.clone(),
            seed: 3,
            ..HoeffdingAdaptiveTreeConfig::default()
        };
        let (t, h) = (tree.clone(), hat.clone());
        check_classifier_conformance(move || {
            Box::new(HoeffdingTreeClassifier::new(t.clone()).unwrap())
        });
        check_classifier_conformance(move || {
            Box::new(HoeffdingAdaptiveTreeClassifier::new(h.clone()).unwrap())
        });
        check_classifier_snapshot(|| HoeffdingTreeClassifier::new(tree.clone()).unwrap());
        check_classifier_snapshot(|| HoeffdingAdaptiveTreeClassifier::new(hat.clone()).unwrap());
    }
    check_classifier_conformance(|| Box::new(HoeffdingTreeClassifier::default()));
    check_classifier_conformance(|| Box::new(HoeffdingAdaptiveTreeClassifier::default()));
}

/// A leaf pre-pruned while one class dominated keeps learning and splits once the
/// classes separate (River's memory manager reactivates such leaves; a leaf deactivated
/// for good would never split).
#[test]
fn pre_pruned_leaves_restart_and_split_later() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut tree = HoeffdingTreeClassifier::default();
    // 199 of the first 200 are class 0: the majority share 0.995 is above 0.99.
    for t in 0..200 {
        tree.learn_one(&[rng.random::<f64>()], usize::from(t == 7));
    }
    assert!(tree.root_split().is_none());
    assert_eq!(tree.summary().n_active_leaves, 1);
    for _ in 0..2000 {
        let x = rng.random::<f64>();
        tree.learn_one(&[x], usize::from(x > 0.5));
    }
    let root = tree.root_split().expect("the restarted root splits");
    assert_eq!(root.feature, 0);
}
