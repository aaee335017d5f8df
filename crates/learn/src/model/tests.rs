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

fn trained(yaml: &str) -> Model {
    let mut m = model(yaml).expect("model");
    for r in rows(400) {
        m.learn_record(&r).expect("learn");
    }
    m
}

const LEARNERS: [&str; 6] = [
    "logistic_regression, optimizer: adam",
    "gaussian_nb",
    "hoeffding_tree, grace_period: 50",
    "hoeffding_adaptive_tree, grace_period: 50, seed: 7",
    "majority",
    "no_change",
];

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
fn forest_and_boosting_are_not_built_yet() {
    for learner in ["adaptive_random_forest", "gbt"] {
        let err = model(&format!(
            "{{ stream: s, label: is_fraud, learner: {{ type: {learner} }} }}"
        ))
        .unwrap_err();
        assert!(
            matches!(err, ModelError::LearnerNotAvailable { .. }),
            "{err}"
        );
    }
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
        assert_eq!(
            again.predict(&probes[0]).expect("p"),
            m.predict(&probes[0]).expect("p")
        );
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
}
