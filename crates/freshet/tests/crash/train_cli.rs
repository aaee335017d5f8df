//! `freshet train` as a user runs it: ingest a file, train, and find the run, its
//! metrics, its lineage (the pinned Delta version) and the model files in the registry;
//! training again at the same pinned version after more data arrived gives the same
//! model; mistakes are CLI errors that name the problem.

use crate::harness::Env;
use freshet_registry::{ModelStore, SqliteStore, TrackingStore};

const BODY: &str = r#"
registry: { path: data/registry.db, artifacts: data/artifacts }
streams:
  pay:
    source: { type: http }
    schema:
      fields:
        - { name: card, type: string, pii: hash }
        - { name: amount, type: float, min: 0 }
        - { name: merchant, type: string, categories: [grocery, fuel, travel, gaming] }
        - { name: is_fraud, type: int, min: 0, max: 1 }
models:
  fraud:
    stream: pay
    label: is_fraud
    holdout: 0.25
    learner: { type: logistic_regression }
"#;

/// Deterministic rows: fraud is large amounts, mostly at gaming merchants.
fn csv(rows: std::ops::Range<usize>) -> String {
    let mut out = String::from("card,amount,merchant,is_fraud\n");
    for i in rows {
        let fraud = i % 7 == 0;
        let merchant = if fraud && i % 2 == 0 {
            "gaming"
        } else {
            ["grocery", "fuel", "travel", "gaming"][i % 4]
        };
        let amount = if fraud {
            800 + (i * 37) % 400
        } else {
            20 + (i * 13) % 150
        };
        out.push_str(&format!(
            "4111{i:012},{amount}.5,{merchant},{}\n",
            u8::from(fraud)
        ));
    }
    out
}

fn run(env: &Env, args: &[&str]) -> (bool, String) {
    let log = format!("cli-{}.log", args.join("-").replace(['/', ' '], "_"));
    let status = env.command(&log, args).status().expect("run freshet");
    let text = std::fs::read_to_string(env.data.join(&log)).unwrap_or_default();
    (status.success(), text)
}

#[test]
fn train_pins_its_table_version_and_publishes_a_version() {
    let env = Env::new("", BODY);
    let file = env.dir.path().join("pay.csv");
    std::fs::write(&file, csv(0..2000)).unwrap();
    let (ok, out) = run(&env, &["ingest", "pay", file.to_str().unwrap(), "-q"]);
    assert!(ok, "{out}");
    let pinned = env.log_version("events/pay");

    let (ok, out) = run(&env, &["train", "fraud", "-q"]);
    assert!(ok, "{out}");
    assert!(out.contains("model fraud version 1"), "{out}");

    // More data arrives; training at the pinned version reproduces version 1 exactly.
    std::fs::write(&file, csv(0..3000)).unwrap();
    let more = env.dir.path().join("more.csv");
    std::fs::write(&more, csv(2000..3000)).unwrap();
    let (ok, out) = run(&env, &["ingest", "pay", more.to_str().unwrap(), "-q"]);
    assert!(ok, "{out}");
    let pinned_arg = pinned.to_string();
    let (ok, out) = run(&env, &["train", "fraud", "--version", &pinned_arg, "-q"]);
    assert!(ok, "{out}");
    let (ok, out) = run(&env, &["train", "fraud", "-q"]);
    assert!(ok, "{out}");

    let store = SqliteStore::open(&env.data.join("registry.db"), "mlflow-artifacts:").unwrap();
    let metrics_of = |version: i64| {
        let v = store.get_model_version("fraud", version).unwrap();
        let run = store.get_run(&v.run_id).unwrap();
        let inputs = store.run_dataset_inputs(&v.run_id).unwrap();
        (v, run, inputs)
    };
    let (v1, run1, inputs1) = metrics_of(1);
    let (_, run2, inputs2) = metrics_of(2);
    let (_, run3, inputs3) = metrics_of(3);
    let acc = |r: &freshet_registry::model::Run| {
        r.data
            .metrics
            .iter()
            .find(|m| m.key == "holdout_accuracy")
            .map(|m| m.value)
            .unwrap()
    };
    assert!(acc(&run1) > 0.9, "{:?}", run1.data.metrics);
    assert_eq!(acc(&run1), acc(&run2), "same pinned version, same model");
    let param = |r: &freshet_registry::model::Run, k: &str| {
        r.data
            .params
            .iter()
            .find(|p| p.key == k)
            .map(|p| p.value.clone())
            .unwrap()
    };
    assert_eq!(param(&run1, "holdout_rows"), "500");
    assert_eq!(param(&run3, "holdout_rows"), "750");
    assert_eq!(param(&run1, "table_version"), pinned_arg);
    for (inputs, version) in [(&inputs1, pinned), (&inputs2, pinned)] {
        let source: serde_json::Value = serde_json::from_str(&inputs[0].source).unwrap();
        assert_eq!(source["delta_table_version"], version);
    }
    assert!(inputs3[0].digest != inputs1[0].digest);
    assert_eq!(
        v1.tags
            .iter()
            .find(|t| t.key == "freshet.table")
            .unwrap()
            .value,
        "events/pay"
    );

    // Batch scoring with the champion: one output row per input row, once.
    store.set_alias("fraud", "champion", 1).unwrap();
    for _ in 0..2 {
        let (ok, out) = run(
            &env,
            &[
                "score",
                "fraud",
                "--table",
                "events/pay",
                "--out",
                "scores/pay",
                "-q",
            ],
        );
        assert!(ok, "{out}");
    }
    let scored = env.read_strings("scores/pay", "merchant").unwrap();
    assert_eq!(scored.len(), 3000, "scored twice, written once");
    let (ok, out) = run(
        &env,
        &["score", "fraud", "--table", "events/nope", "--out", "x/y"],
    );
    assert!(!ok && out.contains("no table 'events/nope'"), "{out}");

    // The files are in the artifact store, and no raw card number is in any of them.
    let dir = env.data.join("artifacts").join(
        store
            .get_download_uri("fraud", 1)
            .unwrap()
            .strip_prefix("mlflow-artifacts:/")
            .unwrap(),
    );
    for f in ["MLmodel", "model.json", "reference_profile.json"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!text.contains("4111000000"), "{f} holds a raw card number");
    }
}

#[test]
fn train_mistakes_are_cli_errors_naming_the_problem() {
    let bad = BODY.replace("label: is_fraud", "label: is_fraudulent");
    let env = Env::new("", &bad);
    let (ok, out) = run(&env, &["validate"]);
    assert!(!ok);
    assert!(out.contains("models.fraud.label"), "{out}");

    let env = Env::new("", BODY);
    let (ok, out) = run(&env, &["train", "nope"]);
    assert!(!ok && out.contains("no model 'nope'"), "{out}");
    let (ok, out) = run(&env, &["train", "fraud"]);
    assert!(!ok && out.contains("no table events/pay yet"), "{out}");
    let file = env.dir.path().join("pay.csv");
    std::fs::write(&file, csv(0..50)).unwrap();
    assert!(run(&env, &["ingest", "pay", file.to_str().unwrap(), "-q"]).0);
    let (ok, out) = run(&env, &["train", "fraud", "--version", "99"]);
    assert!(!ok && out.contains("--version 99 does not exist"), "{out}");
    let (ok, out) = run(&env, &["train", "fraud", "--holdout", "1.5"]);
    assert!(!ok && out.contains("--holdout"), "{out}");
}

const TRENDING: &str = r#"
registry: { path: data/registry.db, artifacts: data/artifacts }
streams:
  meter:
    source: { type: http }
    schema:
      fields:
        - { name: seq, type: int }
        - { name: load, type: float }
        - { name: high, type: int, min: 0, max: 1 }
models:
  demand: { stream: meter, label: high }
  demand_keep: { stream: meter, label: high, trending: keep }
"#;

#[test]
fn train_leaves_out_a_column_that_rises_with_arrival_and_says_so() {
    let env = Env::new("", TRENDING);
    let file = env.dir.path().join("meter.csv");
    let mut text = String::from("seq,load,high\n");
    for i in 0..1000 {
        let load = ((i * 37) % 100) as f64 / 100.0;
        text.push_str(&format!("{i},{load},{}\n", u8::from(load > 0.5)));
    }
    std::fs::write(&file, text).unwrap();
    let (ok, out) = run(&env, &["ingest", "meter", file.to_str().unwrap(), "-q"]);
    assert!(ok, "{out}");

    let (ok, out) = run(&env, &["train", "demand", "-q"]);
    assert!(ok, "{out}");
    // One warning line names the field (the log may be coloured: no exact `field=seq`).
    assert!(
        out.lines().any(
            |l| l.contains("feature trends with arrival order; left out") && l.contains("seq")
        ),
        "{out}"
    );
    let (ok, out) = run(&env, &["train", "demand_keep", "-q"]);
    assert!(ok, "{out}");
    assert!(!out.contains("left out"), "{out}");

    let store = SqliteStore::open(&env.data.join("registry.db"), "mlflow-artifacts:").unwrap();
    let facts = |model: &str| {
        let v = store.get_model_version(model, 1).unwrap();
        let run = store.get_run(&v.run_id).unwrap();
        let tag = |tags: &[freshet_registry::model::Tag]| {
            tags.iter()
                .find(|t| t.key == "freshet.trending_excluded")
                .map(|t| t.value.clone())
        };
        let columns = run
            .data
            .params
            .iter()
            .find(|p| p.key == "features")
            .map(|p| p.value.clone())
            .unwrap();
        (tag(&v.tags), tag(&run.data.tags), columns)
    };
    assert_eq!(
        facts("demand"),
        (Some("seq".into()), Some("seq".into()), "1".into())
    );
    assert_eq!(facts("demand_keep"), (None, None, "2".into()));
}
