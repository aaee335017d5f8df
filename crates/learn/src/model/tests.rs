//! Models end to end: training, labels, the reference profile, and the directory
//! round-trip with its version and corruption errors.

use super::profile::{Distribution, PredictionProfile};
use super::storage::{MLMODEL, MODEL_JSON, MlModel, PROFILE_JSON};
use super::*;
use freshet_core::model_spec::ModelSpec;
use freshet_core::{Field, FieldType, ManualClock, Schema};
use serde_json::json;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("amount", FieldType::Float),
        Field::new("merchant", FieldType::String),
        Field::new("ts", FieldType::Timestamp),
        Field::new("online", FieldType::Bool),
        Field::new("is_fraud", FieldType::Int).range(Some(0.0), Some(1.0)),
        Field::new("kind", FieldType::String),
    ])
}

fn model(yaml: &str) -> Result<Model, ModelError> {
    let spec: ModelSpec = serde_yaml_ng::from_str(yaml).expect("spec yaml");
    let resolved = spec.resolve("m", &schema()).expect("resolves");
    let stamp = ModelStamp::new(&ManualClock::new(1_767_571_200_000_000));
    Model::new(&resolved, &schema(), stamp)
}

/// Deterministic rows: fraud is large online amounts at a few merchants.
fn rows(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let fraud = i % 5 == 0;
            let amount = if fraud {
                900.0 + (i % 7) as f64 * 10.0
            } else {
                20.0 + (i % 11) as f64 * 3.0
            };
            let merchant = ["grocery", "fuel", "travel", "gaming"][i % 4];
            let kind = ["a", "b", "c"][i % 3];
            json!({
                "amount": if i % 13 == 0 { serde_json::Value::Null } else { json!(amount) },
                "merchant": merchant,
                "ts": 1_767_571_200_000i64 + i as i64 * 60_000,
                "online": fraud || i % 3 == 0,
                "is_fraud": u8::from(fraud),
                "kind": kind,
            })
        })
        .collect()
}

/// A model trained on `rows(400)` through `fit_window`: in order for online learners,
/// at once for the batch learner.
fn trained(yaml: &str) -> Model {
    let mut m = model(yaml).expect("model");
    m.fit_window(&rows(400)).expect("fit");
    m
}

const LEARNERS: [&str; 11] = [
    "logistic_regression, optimizer: adam",
    "gaussian_nb",
    "hoeffding_tree, grace_period: 50",
    "hoeffding_adaptive_tree, grace_period: 50, seed: 7",
    "adaptive_random_forest, n_models: 3, seed: 7",
    "leveraging_bagging, n_models: 3, seed: 7",
    "streaming_random_patches, n_models: 3, seed: 7",
    "selector, window: 50, members: [ { type: gaussian_nb }, { type: hoeffding_tree, grace_period: 50 } ]",
    "gbt, n_trees: 20",
    "majority",
    "no_change",
];

/// Rows whose `amount` is set by the merchant (plus a little spread): a regression
/// target a tree ensemble should recover from the merchant alone.
fn priced_rows(n: usize) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let (merchant, base) = [("grocery", 20.0), ("fuel", 50.0), ("travel", 300.0)][i % 3];
            json!({ "merchant": merchant, "amount": base + (i % 5) as f64, "online": i % 2 == 0 })
        })
        .collect()
}

#[test]
fn a_binary_model_learns_and_answers_in_label_values() {
    let m = trained(
        "{ stream: s, label: is_fraud, learner: { type: logistic_regression, optimizer: adam } }",
    );
    assert_eq!(m.classes(), [ClassLabel::Int(0), ClassLabel::Int(1)]);
    assert_eq!(m.metadata().training_rows, 400);
    let fraud = json!({ "amount": 950.0, "merchant": "travel", "online": true });
    let fine = json!({ "amount": 25.0, "merchant": "grocery", "online": false });
    assert_eq!(m.predict(&fraud).expect("predict"), Value::Int(1));
    assert_eq!(m.predict(&fine).expect("predict"), Value::Int(0));
    let p = m.predict_proba(&fraud).expect("proba");
    assert_eq!(p.len(), 2);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    // Predicting changed nothing.
    let again = m.predict_proba(&fraud).expect("proba");
    assert_eq!(p, again);
    // Missing everything still answers.
    assert!(m.predict(&json!({})).is_ok());
}

#[test]
fn string_labels_are_discovered_and_returned() {
    let mut m = model("{ stream: s, label: kind, learner: { type: gaussian_nb } }").expect("model");
    assert_eq!(m.task(), Task::Multiclass);
    assert!(matches!(m.predict(&json!({})), Err(ModelError::Untrained)));
    for r in rows(60) {
        m.learn_record(&r).expect("learn");
    }
    assert_eq!(
        m.classes(),
        [
            ClassLabel::Str("a".into()),
            ClassLabel::Str("b".into()),
            ClassLabel::Str("c".into())
        ]
    );
    assert!(matches!(
        m.predict(&json!({})).expect("predict"),
        Value::Str(_)
    ));
    assert_eq!(m.predict_proba(&json!({})).expect("proba").len(), 3);
}

#[test]
fn bad_labels_are_errors_naming_the_field_and_change_nothing() {
    let mut m = model("{ stream: s, label: is_fraud, task: binary }").expect("model");
    let before = serde_json::to_string(&m).expect("json");
    let err = m.learn_one(&json!({}), FieldValue::Missing).unwrap_err();
    assert_eq!(err.to_string(), "label 'is_fraud': missing");
    let err = m.learn_one(&json!({}), FieldValue::Int(2)).unwrap_err();
    assert!(err.to_string().contains("more than 2 classes"), "{err}");
    let err = m
        .learn_one(&json!({}), FieldValue::Str("4111-1111"))
        .unwrap_err();
    assert!(!err.to_string().contains("4111"), "{err}");
    assert_eq!(serde_json::to_string(&m).expect("json"), before);
    // A regression model has no probabilities but predicts a float.
    let mut r = model("{ stream: s, label: amount, features: [ { field: online, kind: bool } ] }")
        .expect("model");
    r.learn_one(&json!({ "online": true }), FieldValue::Float(10.0))
        .expect("learn");
    assert!(matches!(
        r.predict_proba(&json!({})),
        Err(ModelError::NotAClassifier)
    ));
    assert!(matches!(
        r.predict(&json!({ "online": true })),
        Ok(Value::Float(_))
    ));
}

#[test]
fn forest_and_boosting_are_built_from_their_specs() {
    let arf = model(
        "{ stream: s, label: is_fraud, learner: { type: adaptive_random_forest, n_models: 4, seed: 9 } }",
    )
    .expect("arf");
    let LearnerState::AdaptiveRandomForest(forest) = arf.learner() else {
        panic!("{:?}", arf.learner().name())
    };
    assert_eq!(
        (forest.config().n_models.get(), forest.config().seed),
        (4, 9)
    );
    // What the spec does not carry keeps River's defaults.
    assert_eq!(forest.config().lambda, 6.0);
    assert!(!arf.is_batch());

    let gbt = model(
        "{ stream: s, label: is_fraud, learner: { type: gbt, n_trees: 7, learning_rate: 0.3, max_depth: 3, max_bins: 16 } }",
    )
    .expect("gbt");
    let LearnerState::Gbt(booster) = gbt.learner() else {
        panic!("{:?}", gbt.learner().name())
    };
    let p = booster.params();
    assert_eq!(
        (p.loss, p.n_trees, p.learning_rate, p.max_depth, p.max_bins),
        (crate::boosting::Loss::LogLoss, 7, 0.3, 3, 16)
    );
    assert!(booster.fitted().is_none());
    assert!(gbt.is_batch());
    assert!(matches!(
        gbt.predict(&json!({})),
        Err(ModelError::Untrained)
    ));
    let reg = model("{ stream: s, label: amount, learner: { type: gbt } }").expect("gbt");
    let LearnerState::Gbt(booster) = reg.learner() else {
        panic!("gbt")
    };
    assert_eq!(booster.params().loss, crate::boosting::Loss::SquaredError);

    // A forest too big to build is refused by name, before any tree is allocated.
    let err = model(
        "{ stream: s, label: is_fraud, learner: { type: adaptive_random_forest, n_models: 5000000000 } }",
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("learner adaptive_random_forest: n_models"),
        "{err}"
    );
}

#[test]
fn streaming_random_patches_is_built_from_its_spec() {
    let m = model(
        "{ stream: s, label: is_fraud, learner: { type: streaming_random_patches, n_models: 4, seed: 9, subspace_size: 0.5 } }",
    )
    .expect("srp");
    let LearnerState::StreamingRandomPatches(srp) = m.learner() else {
        panic!("{:?}", m.learner().name())
    };
    let c = srp.config();
    // What the spec does not carry keeps River's defaults.
    assert_eq!(
        (c.n_models.get(), c.seed, c.subspace_size, c.lambda),
        (4, 9, 0.5, 6.0)
    );
    assert_eq!(m.learner().name(), "streaming_random_patches");
    assert!(!m.is_batch());
}

#[test]
fn ensembles_are_built_from_their_specs() {
    let lb = model(
        "{ stream: s, label: is_fraud, learner: { type: leveraging_bagging, n_models: 4, seed: 9 } }",
    )
    .expect("leveraging bagging");
    let LearnerState::LeveragingBagging(bagging) = lb.learner() else {
        panic!("{:?}", lb.learner().name())
    };
    let c = bagging.config();
    // What the spec does not carry keeps River's defaults.
    assert_eq!(
        (c.n_models.get(), c.seed, c.w, c.adwin.delta),
        (4, 9, 6.0, 0.002)
    );
    assert_eq!(bagging.trees().count(), 4);

    let sel = model("{ stream: s, label: is_fraud, learner: { type: selector } }").expect("sel");
    let LearnerState::Selector(selector) = sel.learner() else {
        panic!("{:?}", sel.learner().name())
    };
    assert_eq!(
        selector.member_names(),
        [
            "adaptive_random_forest",
            "hoeffding_adaptive_tree",
            "gaussian_nb",
            "logistic_regression",
            "logistic_regression",
            "windowed_gbt"
        ]
    );
    assert_eq!(selector.config().window.get(), 500);
    assert_eq!(selector.serving(), 0);
    assert_eq!(selector.recent_errors(), [1.0; 6]);

    // A selector learns through the model like any online learner, every member
    // learning every record.
    let mut sel = model(
        "{ stream: s, label: is_fraud, learner: { type: selector, window: 20, members: [ { type: no_change }, { type: hoeffding_tree, grace_period: 20 } ] } }",
    )
    .expect("sel");
    for r in rows(300) {
        sel.learn_record(&r).expect("learn");
    }
    let LearnerState::Selector(selector) = sel.learner() else {
        panic!("selector")
    };
    // Fraud is every fifth row, so the last label is usually wrong; the tree serves.
    assert_eq!(selector.serving(), 1, "{:?}", selector.recent_errors());
    let errors = selector.recent_errors();
    assert!(errors[1] < errors[0], "{errors:?}");

    // Members that are not online classifiers are refused by index.
    for (members, bad) in [
        (
            "[ { type: gaussian_nb }, { type: gbt } ]",
            "members[1]: gbt",
        ),
        (
            "[ { type: linear_regression } ]",
            "members[0]: linear_regression",
        ),
    ] {
        let spec: ModelSpec = serde_yaml_ng::from_str(&format!(
            "{{ stream: s, label: is_fraud, learner: {{ type: selector, members: {members} }} }}"
        ))
        .expect("yaml");
        // Resolution only checks the task; the learn crate checks the members itself.
        let resolved = spec.resolve("m", &schema()).expect("resolves");
        let stamp = ModelStamp::new(&ManualClock::new(1_767_571_200_000_000));
        let err = Model::new(&resolved, &schema(), stamp).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("learner selector: {bad}")),
            "{err}"
        );
    }
}

#[test]
fn a_selector_of_the_default_members_passes_the_classifier_conformance_suite() {
    use crate::evaluate::conformance::{check_classifier_conformance, check_classifier_snapshot};
    let spec = freshet_core::model_spec::LearnerSpec::Selector {
        members: None,
        window: 50,
    };
    let make = || match LearnerState::new(&spec, Task::Multiclass) {
        Ok(LearnerState::Selector(s)) => s,
        other => panic!("{other:?}"),
    };
    check_classifier_conformance(|| Box::new(make()));
    check_classifier_snapshot(make);
}

#[test]
fn a_batch_model_refuses_one_record_at_a_time() {
    let mut m = model("{ stream: s, label: is_fraud, learner: { type: gbt } }").expect("model");
    let before = serde_json::to_string(&m).expect("json");
    let err = m.learn_record(&rows(1)[0]).unwrap_err();
    assert!(
        matches!(err, ModelError::BatchLearner { learner: "gbt" }),
        "{err}"
    );
    assert!(err.to_string().contains("fit_window"), "{err}");
    // Refused before anything was touched, fitted or not.
    assert_eq!(serde_json::to_string(&m).expect("json"), before);
    m.fit_window(&rows(400)).expect("fit");
    let fitted = serde_json::to_string(&m).expect("json");
    assert!(matches!(
        m.learn_one(&json!({}), FieldValue::Int(1)),
        Err(ModelError::BatchLearner { .. })
    ));
    assert_eq!(serde_json::to_string(&m).expect("json"), fitted);
}

#[test]
fn a_gbt_model_is_fitted_on_a_window_and_answers_in_label_values() {
    let mut m = model("{ stream: s, label: is_fraud, learner: { type: gbt, n_trees: 30 } }")
        .expect("model");
    let mut window = rows(400);
    // Unusable labels are skipped, not fitted, and not fed to the feature statistics.
    window[7]["is_fraud"] = serde_json::Value::Null;
    window[8]["is_fraud"] = json!("maybe");
    m.fit_window(&window).expect("fit");
    assert_eq!(m.metadata().training_rows, 398);
    let fraud = json!({ "amount": 950.0, "merchant": "travel", "online": true });
    let fine = json!({ "amount": 25.0, "merchant": "grocery", "online": false });
    assert_eq!(m.predict(&fraud).expect("predict"), Value::Int(1));
    assert_eq!(m.predict(&fine).expect("predict"), Value::Int(0));
    let p = m.predict_proba(&fraud).expect("proba");
    assert_eq!(p.len(), 2);
    assert!(p[1] > 0.9, "{p:?}");
    assert_eq!(
        m.predict_proba(&fraud).expect("proba"),
        p,
        "predicting mutates nothing"
    );

    // Multiclass: classes are discovered in the window, in arrival order.
    let mut k = model("{ stream: s, label: kind, learner: { type: gbt, n_trees: 5 } }").expect("k");
    k.fit_window(&rows(90)).expect("fit");
    assert_eq!(k.classes().len(), 3);
    assert_eq!(k.predict_proba(&json!({})).expect("proba").len(), 3);
}

#[test]
fn a_window_without_a_usable_label_is_an_error_and_changes_nothing() {
    for learner in ["gbt", "gaussian_nb"] {
        let mut m = model(&format!(
            "{{ stream: s, label: is_fraud, learner: {{ type: {learner} }} }}"
        ))
        .expect("model");
        let before = serde_json::to_string(&m).expect("json");
        let window = vec![json!({ "amount": 1.0 }), json!({ "is_fraud": "4111-1111" })];
        let err = m.fit_window(&window).unwrap_err();
        assert_eq!(
            err.to_string(),
            "label 'is_fraud': none of the 2 rows has a usable label",
            "{learner}"
        );
        assert_eq!(
            serde_json::to_string(&m).expect("json"),
            before,
            "{learner}"
        );
    }
}

#[test]
fn fit_window_on_an_online_learner_is_learning_in_order() {
    let yaml =
        "{ stream: s, label: is_fraud, learner: { type: hoeffding_tree, grace_period: 50 } }";
    let by_window = trained(yaml);
    let mut by_row = model(yaml).expect("model");
    for r in rows(400) {
        by_row.learn_record(&r).expect("learn");
    }
    // The same state (the stamps differ: each model has its own uuid).
    let state =
        |m: &Model| serde_json::to_string(&(m.features(), m.learner(), m.classes())).expect("json");
    assert!(state(&by_window) == state(&by_row));
    assert_eq!(by_window.metadata().training_rows, 400);
}

#[test]
fn a_regression_gbt_predicts_sensibly() {
    let mut m = model(
        "{ stream: s, label: amount, features: [ { field: merchant, kind: categorical }, { field: online, kind: bool } ], learner: { type: gbt } }",
    )
    .expect("model");
    assert_eq!(m.task(), Task::Regression);
    let mut window = priced_rows(600);
    window[3]["amount"] = serde_json::Value::Null;
    m.fit_window(&window).expect("fit");
    assert_eq!(m.metadata().training_rows, 599);
    for (merchant, mean) in [("grocery", 22.0), ("fuel", 52.0), ("travel", 302.0)] {
        let Value::Float(y) = m
            .predict(&json!({ "merchant": merchant }))
            .expect("predict")
        else {
            panic!("a regression predicts a float")
        };
        assert!((y - mean).abs() < 2.0, "{merchant}: {y}");
    }
    assert!(matches!(
        m.predict_proba(&json!({})),
        Err(ModelError::NotAClassifier)
    ));
    assert!(matches!(
        m.predict_output(&json!({ "merchant": "travel" })),
        Ok(Output::Value(_))
    ));
}

#[test]
fn every_learner_round_trips_through_its_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probes = rows(50);
    for learner in LEARNERS {
        let mut m = trained(&format!(
            "{{ stream: s, label: is_fraud, learner: {{ type: {learner} }} }}"
        ));
        m.build_reference_profile(rows(100).iter());
        let path = dir.path().join(m.learner().name());
        m.save_dir(&path).expect("save");
        let back = Model::load_dir(&path).expect("load");
        assert_eq!(back.reference_profile(), m.reference_profile(), "{learner}");
        assert_eq!(back.metadata(), m.metadata(), "{learner}");
        for r in &probes {
            // Bit-identical probabilities, not merely close.
            assert_eq!(
                back.predict_proba(r).expect("p"),
                m.predict_proba(r).expect("p"),
                "{learner}"
            );
        }
        // The same files, through memory instead of disk.
        let again = Model::from_files(&m.to_files().expect("files")).expect("from files");
        for r in &probes {
            assert_eq!(
                again.predict_proba(r).expect("p"),
                m.predict_proba(r).expect("p"),
                "{learner}"
            );
        }
        assert_eq!(back.learner().name(), m.learner().name());
    }
    let mut reg =
        model("{ stream: s, label: amount, features: [ { field: merchant, kind: categorical } ] }")
            .expect("model");
    for r in rows(100) {
        // Every 13th row has no amount: a missing label is refused, not learnt.
        if let Err(e) = reg.learn_record(&r) {
            assert!(matches!(e, ModelError::Label { .. }), "{e}");
        }
    }
    assert_eq!(reg.metadata().training_rows, 92);
    reg.build_reference_profile(rows(20).iter());
    let back = Model::from_files(&reg.to_files().expect("files")).expect("load");
    assert_eq!(
        back.predict(&probes[3]).expect("p"),
        reg.predict(&probes[3]).expect("p")
    );
    // A regression booster, through disk and through memory.
    let mut gbt = model(
        "{ stream: s, label: amount, features: [ { field: merchant, kind: categorical } ], learner: { type: gbt, n_trees: 20 } }",
    )
    .expect("model");
    gbt.fit_window(&priced_rows(300)).expect("fit");
    gbt.build_reference_profile(priced_rows(30).iter());
    let path = dir.path().join("gbt_regression");
    gbt.save_dir(&path).expect("save");
    let back = Model::load_dir(&path).expect("load");
    let again = Model::from_files(&gbt.to_files().expect("files")).expect("from files");
    assert_eq!(back.reference_profile(), gbt.reference_profile());
    for r in priced_rows(6) {
        let want = gbt.predict_output(&r).expect("p");
        assert_eq!(back.predict_output(&r).expect("p"), want);
        assert_eq!(again.predict_output(&r).expect("p"), want);
    }
}

#[test]
fn mlmodel_describes_the_model_like_mlflow() {
    let m = trained(
        "{ stream: s, label: is_fraud, features: [ { field: amount, kind: numeric }, { field: ts, kind: time } ] }",
    );
    let files = m.to_files().expect("files");
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [MLMODEL, MODEL_JSON],
        "no profile built, no profile file"
    );
    let text = String::from_utf8(files[0].1.clone()).expect("utf-8");
    let ml: MlModel = serde_yaml_ng::from_str(&text).expect("yaml");
    assert_eq!(ml.artifact_path, "model");
    assert_eq!(ml.flavors.freshet.format_version, FORMAT_VERSION);
    assert_eq!(ml.flavors.freshet.learner, "logistic_regression");
    assert_eq!(ml.flavors.freshet.task, "binary");
    assert_eq!(ml.flavors.python_function.loader_module, "freshet_pyfunc");
    assert_eq!(ml.flavors.python_function.data, "model.json");
    assert_eq!(ml.model_uuid.len(), 32);
    assert_eq!(ml.utc_time_created, "2026-01-05 00:00:00.000000");
    let inputs: serde_json::Value = serde_json::from_str(&ml.signature.inputs).expect("json");
    assert_eq!(
        inputs,
        json!([
            { "type": "double", "name": "amount", "required": false },
            { "type": "datetime", "name": "ts", "required": false },
        ])
    );
    let outputs: serde_json::Value = serde_json::from_str(&ml.signature.outputs).expect("json");
    assert_eq!(
        outputs,
        json!([{ "type": "long", "name": "is_fraud", "required": true }])
    );
}

#[test]
fn unknown_versions_and_corruption_are_clear_errors() {
    let m = trained("{ stream: s, label: is_fraud }");
    let files = m.to_files().expect("files");
    let with = |name: &str, bytes: Vec<u8>| -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .map(|(n, b)| (n.clone(), if n == name { bytes.clone() } else { b.clone() }))
            .collect()
    };
    let mut doc: serde_json::Value = serde_json::from_slice(&files[1].1).expect("json");
    doc["format_version"] = json!(99);
    let err = Model::from_files(&with(MODEL_JSON, doc.to_string().into_bytes())).unwrap_err();
    assert_eq!(
        err.to_string(),
        "model.json: format version 99 is not supported (this build reads 1)"
    );
    let yaml = String::from_utf8(files[0].1.clone())
        .expect("utf-8")
        .replace("format_version: 1", "format_version: 2");
    let err = Model::from_files(&with(MLMODEL, yaml.into_bytes())).unwrap_err();
    assert!(
        matches!(err, ModelError::UnsupportedFormat { found: 2, .. }),
        "{err}"
    );
    let cut = files[1].1[..files[1].1.len() / 2].to_vec();
    let err = Model::from_files(&with(MODEL_JSON, cut)).unwrap_err();
    assert!(
        err.to_string().starts_with("model.json is corrupt"),
        "{err}"
    );
    let err = Model::from_files(&with(MLMODEL, b"flavors: [".to_vec())).unwrap_err();
    assert!(err.to_string().starts_with("MLmodel is corrupt"), "{err}");
    let err = Model::from_files(&files[..1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "model.json is missing from the model directory"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        Model::load_dir(dir.path()),
        Err(ModelError::MissingFile { .. })
    ));
    let bad_profile = with(MODEL_JSON, files[1].1.clone())
        .into_iter()
        .chain([(
            PROFILE_JSON.to_string(),
            br#"{"format_version": 7}"#.to_vec(),
        )])
        .collect::<Vec<_>>();
    assert!(matches!(
        Model::from_files(&bad_profile),
        Err(ModelError::UnsupportedFormat { found: 7, .. })
    ));
}

#[test]
fn reference_profile_by_hand() {
    let mut m = model(
        "{ stream: s, label: is_fraud, learner: { type: majority }, features: [ { field: amount, kind: numeric }, { field: merchant, kind: categorical }, { field: ts, kind: time } ] }",
    )
    .expect("model");
    let rows: Vec<serde_json::Value> = (0..=100)
        .map(|i| json!({ "amount": i, "merchant": if i % 4 == 0 { "a" } else { "b" }, "ts": "2026-01-10T06:30:00Z", "is_fraud": u8::from(i < 30) }))
        .chain([json!({ "is_fraud": 0 })])
        .collect();
    for r in &rows {
        m.learn_record(r).expect("learn");
    }
    m.build_reference_profile(rows.iter());
    let p = m.reference_profile().expect("profile");
    assert_eq!(p.rows, 102);
    let Distribution::Numeric(amount) = &p.features[0].distribution else {
        panic!("numeric")
    };
    assert_eq!((amount.count, amount.missing), (101, 1));
    assert_eq!(
        (amount.min, amount.max, amount.mean),
        (Some(0.0), Some(100.0), Some(50.0))
    );
    assert_eq!(
        amount.deciles,
        (0..=10).map(|i| f64::from(i) * 10.0).collect::<Vec<_>>()
    );
    assert_eq!(amount.histogram.edges.len(), 11);
    // 0–9 in the first bin, …, 90–100 (11 values) in the last.
    assert_eq!(amount.histogram.fractions[0], 10.0 / 101.0);
    assert_eq!(amount.histogram.fractions[9], 11.0 / 101.0);
    let Distribution::Categorical(merchant) = &p.features[1].distribution else {
        panic!("categorical")
    };
    assert_eq!(merchant.top, [("b".to_string(), 75), ("a".to_string(), 26)]);
    assert_eq!((merchant.missing, merchant.other), (1, 0));
    let Distribution::Categorical(ts) = &p.features[2].distribution else {
        panic!("time")
    };
    assert_eq!(ts.top, [("h06".to_string(), 101)]);
    let Distribution::Categorical(label) = &p.label else {
        panic!("label")
    };
    assert_eq!(label.top, [("0".to_string(), 72), ("1".to_string(), 30)]);
    // The majority baseline predicts class 0 with probability 30/102 for class 1.
    let PredictionProfile::Classification {
        class_counts,
        probability,
        score_sample,
        unpredicted,
    } = &p.predictions
    else {
        panic!("classification")
    };
    assert_eq!(
        (class_counts.as_slice(), *unpredicted),
        ([102, 0].as_slice(), 0)
    );
    assert_eq!(probability.fractions[2], 1.0);
    assert_eq!(score_sample.len(), 102);
    assert!(
        score_sample
            .iter()
            .all(|s| (s - 30.0 / 102.0).abs() < 1e-12)
    );
    // Fewer values than the sample holds: all of them, ascending.
    assert_eq!(amount.sample, (0..=100).map(f64::from).collect::<Vec<_>>());
}

#[test]
fn profile_samples_are_uniform_capped_and_reproducible() {
    let build = || {
        let mut m = model(
            "{ stream: s, label: is_fraud, learner: { type: majority }, features: [ { field: amount, kind: numeric } ] }",
        )
        .expect("model");
        let rows: Vec<serde_json::Value> = (0..20_000)
            .map(|i| json!({ "amount": i, "is_fraud": i % 2 }))
            .collect();
        m.build_reference_profile(rows.iter());
        m.reference_profile().expect("profile").clone()
    };
    let p = build();
    let Distribution::Numeric(x) = &p.features[0].distribution else {
        panic!("numeric")
    };
    assert_eq!(x.sample.len(), profile::SAMPLE);
    assert!(x.sample.windows(2).all(|w| w[0] <= w[1]));
    // Uniform over the whole stream, not its start: about half above 10 000.
    let upper = x.sample.iter().filter(|v| **v >= 10_000.0).count();
    assert!((800..1200).contains(&upper), "{upper}");
    assert_eq!(build(), p, "the same rows give the same profile");
}

#[test]
fn version_1_profiles_still_load_without_samples() {
    let mut m = model(
        "{ stream: s, label: is_fraud, learner: { type: majority }, features: [ { field: amount, kind: numeric } ] }",
    )
    .expect("model");
    let rows: Vec<serde_json::Value> = (0..10)
        .map(|i| json!({ "amount": i, "is_fraud": i % 2 }))
        .collect();
    m.build_reference_profile(rows.iter());
    let files = m.to_files().expect("files");
    let mut doc: serde_json::Value = serde_json::from_slice(
        &files
            .iter()
            .find(|(n, _)| n == PROFILE_JSON)
            .expect("profile")
            .1,
    )
    .expect("json");
    doc["format_version"] = json!(1);
    doc["features"][0]["distribution"]
        .as_object_mut()
        .expect("object")
        .remove("sample");
    let old: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, b)| {
            if n == PROFILE_JSON {
                (n.clone(), serde_json::to_vec(&doc).expect("json"))
            } else {
                (n.clone(), b.clone())
            }
        })
        .collect();
    let loaded = Model::from_files(&old).expect("a version 1 profile loads");
    let Distribution::Numeric(x) =
        &loaded.reference_profile().expect("profile").features[0].distribution
    else {
        panic!("numeric")
    };
    assert!(x.sample.is_empty());
}

#[test]
fn a_saved_model_keeps_learning_exactly_as_if_never_saved() {
    for learner in [
        "{ type: hoeffding_adaptive_tree, seed: 3 }",
        "{ type: hoeffding_tree }",
        "{ type: adaptive_random_forest, n_models: 3, seed: 5 }",
        "{ type: leveraging_bagging, n_models: 3, seed: 5 }",
        "{ type: streaming_random_patches, n_models: 3, seed: 5 }",
        "{ type: selector, window: 100 }",
        "{ type: logistic_regression }",
        "{ type: gaussian_nb }",
    ] {
        let yaml = format!(
            "{{ stream: s, label: is_fraud, learner: {learner}, features: [ {{ field: amount, kind: numeric }} ] }}"
        );
        let row = |i: usize| {
            let x = ((i * 37) % 100) as f64;
            let y = if i < 600 { x > 50.0 } else { x < 50.0 };
            json!({ "amount": x, "is_fraud": u8::from(y) })
        };
        let mut straight = model(&yaml).expect("model");
        let mut saved = model(&yaml).expect("model");
        for i in 0..250 {
            straight.learn_record(&row(i)).expect("learn");
            saved.learn_record(&row(i)).expect("learn");
        }
        let mut saved = Model::from_files(&saved.to_files().expect("files")).expect("load");
        for i in 250..700 {
            straight.learn_record(&row(i)).expect("learn");
            saved.learn_record(&row(i)).expect("learn");
        }
        for k in 0..100 {
            let r = json!({ "amount": k });
            assert_eq!(
                straight.predict_proba(&r).expect("predict"),
                saved.predict_proba(&r).expect("predict"),
                "{learner}, amount {k}"
            );
        }
    }
}
