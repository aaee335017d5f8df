use super::*;
use crate::drift::DriftMethod;
use freshet_learn::model::profile::{
    CategoricalProfile, FieldProfile, Histogram, NumericProfile, PROFILE_FORMAT_VERSION,
};

fn numeric(sample: Vec<f64>) -> Distribution {
    Distribution::Numeric(NumericProfile {
        count: sample.len() as u64,
        missing: 0,
        min: sample.first().copied(),
        max: sample.last().copied(),
        mean: None,
        deciles: Vec::new(),
        histogram: Histogram {
            edges: Vec::new(),
            fractions: Vec::new(),
        },
        sample,
    })
}

fn categorical(top: &[(&str, u64)], other: u64) -> Distribution {
    let count = top.iter().map(|(_, n)| n).sum::<u64>() + other;
    Distribution::Categorical(CategoricalProfile {
        count,
        missing: 0,
        top: top.iter().map(|(v, n)| ((*v).to_string(), *n)).collect(),
        other,
    })
}

fn profile(features: Vec<(&str, Distribution)>, scores: Vec<f64>) -> ReferenceProfile {
    ReferenceProfile {
        format_version: PROFILE_FORMAT_VERSION,
        rows: 2000,
        features: features
            .into_iter()
            .map(|(f, d)| FieldProfile {
                field: f.to_string(),
                distribution: d,
            })
            .collect(),
        label: categorical(&[("0", 1000), ("1", 1000)], 0),
        predictions: PredictionProfile::Classification {
            class_counts: vec![1000, 1000],
            probability: Histogram {
                edges: Vec::new(),
                fractions: Vec::new(),
            },
            score_sample: scores,
            unpredicted: 0,
        },
    }
}

/// 2 000 evenly spread values in [0, 1).
fn uniform() -> Vec<f64> {
    (0..2000).map(|i| f64::from(i) / 2000.0).collect()
}

fn window_of(amount: Vec<f64>, country: &[&str], score: f64) -> ServedWindow {
    let mut w = ServedWindow::new(2, 1000);
    for (i, x) in amount.into_iter().enumerate() {
        let c = country[i % country.len()].to_string();
        w.push(
            vec![
                Observation::Numeric(Some(x)),
                Observation::Category(Some(c)),
            ],
            Some(score),
        );
    }
    w
}

fn reference() -> Reference {
    Reference::from_profile(&profile(
        vec![
            ("amount", numeric(uniform())),
            ("country", categorical(&[("de", 1200), ("fr", 800)], 0)),
        ],
        uniform(),
    ))
}

#[test]
fn traffic_like_the_training_data_does_not_drift() {
    let current: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
    // 3 de to 2 fr, as in the reference.
    let w = window_of(current, &["de", "fr", "de", "fr", "de"], 0.5);
    let r = served_drift_default(&reference(), &w);
    assert_eq!(r.window_rows, 1000);
    let amount = r.features[0].drift.as_ref().unwrap();
    // 2 000 reference values: a distance, as Evidently picks above 1 000 rows.
    assert_eq!(amount.method, DriftMethod::Wasserstein);
    assert!(!amount.drifted, "{amount:?}");
    let country = r.features[1].drift.as_ref().unwrap();
    assert_eq!(country.method, DriftMethod::JensenShannon);
    assert!(!country.drifted && country.score < 1e-9, "{country:?}");
    assert!(!r.dataset.drifted);
    assert_eq!(r.dataset.columns, 2);
}

#[test]
fn a_shifted_feature_and_a_new_category_drift_the_dataset() {
    let current: Vec<f64> = (0..1000).map(|i| 0.5 + f64::from(i) / 1000.0).collect();
    let w = window_of(current, &["es"], 0.9);
    let r = served_drift_default(&reference(), &w);
    assert!(r.features[0].drift.as_ref().unwrap().drifted);
    // The reference listed every value it saw: `es` is new, and drift.
    assert!(r.features[1].drift.as_ref().unwrap().drifted);
    assert!(r.dataset.drifted);
    assert_eq!(r.dataset.drifted_columns, 2);
    assert_eq!(r.drifted_features(), ["amount", "country"]);
    // Every prediction scored 0.9 against a uniform reference: prediction drift too.
    assert!(r.prediction.drift.as_ref().unwrap().drifted);
}

#[test]
fn unlisted_categories_count_as_other_when_the_reference_had_some() {
    let reference = Reference::from_profile(&profile(
        vec![("country", categorical(&[("de", 500), ("fr", 250)], 250))],
        uniform(),
    ));
    let mut w = ServedWindow::new(1, 1000);
    for c in ["de", "de", "fr", "es"].iter().cycle().take(1000) {
        w.push(vec![Observation::Category(Some((*c).to_string()))], None);
    }
    let r = served_drift_default(&reference, &w);
    let d = r.features[0].drift.as_ref().unwrap();
    // 1 000 reference rows: chi-square, and the shares match exactly.
    assert_eq!(d.method, DriftMethod::ChiSquare);
    assert!(!d.drifted && d.score > 0.999, "{d:?}");
    // No scores at all: the prediction column says why it was not tested.
    assert!(r.prediction.drift.is_none() && r.prediction.skipped.is_some());
}

#[test]
fn the_window_keeps_the_newest_rows_only() {
    let mut w = ServedWindow::new(1, 10);
    for i in 0..15 {
        w.push(vec![Observation::Numeric(Some(f64::from(i)))], Some(0.5));
    }
    assert_eq!(w.len(), 10);
    assert_eq!(w.rows_seen, 15);
    assert_eq!(
        w.features[0].front(),
        Some(&Observation::Numeric(Some(5.0)))
    );
}

#[test]
fn huge_categorical_references_are_scaled_keeping_their_shares() {
    let reference = Reference::from_profile(&profile(
        vec![(
            "country",
            categorical(&[("de", 3_000_000), ("fr", 1_000_000)], 0),
        )],
        uniform(),
    ));
    let RefData::Categorical { values, .. } = &reference.features[0].1 else {
        panic!("categorical expected");
    };
    assert_eq!(values.len(), MAX_REFERENCE_ROWS as usize);
    assert_eq!(values.iter().filter(|v| *v == "de").count(), 7_500);
}

#[test]
fn profiles_without_samples_are_skipped_not_failed() {
    let reference = Reference::from_profile(&profile(
        vec![
            ("amount", numeric(Vec::new())),
            ("country", categorical(&[("de", 10)], 0)),
        ],
        Vec::new(),
    ));
    let w = window_of(vec![1.0; 50], &["de"], 0.5);
    let r = served_drift_default(&reference, &w);
    assert!(r.features[0].skipped.is_some());
    assert_eq!(r.dataset.columns, 1, "only the tested column counts");
    assert!(!r.dataset.drifted);
}

#[test]
fn skipped_features_say_why_and_do_not_count() {
    let mut r = reference();
    r.skip("country", "a time feature");
    let current: Vec<f64> = (0..1000).map(|i| 0.5 + f64::from(i) / 1000.0).collect();
    let rep = served_drift_default(&r, &window_of(current, &["es"], 0.5));
    assert_eq!(rep.features[1].skipped.as_deref(), Some("a time feature"));
    assert_eq!((rep.dataset.columns, rep.dataset.drifted_columns), (1, 1));
}
