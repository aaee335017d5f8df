//! Tests of the `models:` section: parsing, inference, resolution and key-path errors.

use super::*;
use crate::config::FreshetConfig;

const STREAM: &str = r#"
streams:
  pay:
    source: { type: http }
    schema:
      fields:
        - { name: card, type: string, pii: hash }
        - { name: amount, type: float }
        - { name: merchant, type: string, categories: [a, b, c] }
        - { name: ts, type: timestamp }
        - { name: online, type: bool }
        - { name: bucket, type: int }
        - { name: is_fraud, type: int, min: 0, max: 1 }
        - { name: country, type: string }
    transforms:
      - { type: rename, from: country, to: cc }
      - { type: derive, field: big, as: bool, expr: "amount > 100.0" }
  gen:
    source: { type: generator, kind: cards }
"#;

fn parse(models: &str) -> Result<FreshetConfig, Vec<ConfigError>> {
    FreshetConfig::from_yaml_str_with_env(&format!("{STREAM}models:\n{models}"), &|_| None)
}

fn paths(errs: &[ConfigError]) -> Vec<&str> {
    errs.iter().map(|e| e.path.as_str()).collect()
}

fn resolve(c: &FreshetConfig, name: &str) -> ResolvedModelSpec {
    let schema = declared_output_schema(&c.streams["pay"]).expect("declared schema");
    c.models[name].resolve(name, &schema).expect("resolves")
}

#[test]
fn listed_features_resolve_with_defaults() {
    let c = parse(
        r#"
  fraud:
    stream: pay
    label: is_fraud
    features:
      - { field: amount, kind: numeric, missing: indicator }
      - { field: merchant, kind: categorical }
      - { field: cc, kind: categorical, encoding: hash }
      - { field: ts, kind: time }
      - { field: online, kind: bool }
      - { field: _ingested_at, kind: time }
    learner: { type: logistic_regression, optimizer: adam, lr: 0.05 }
"#,
    )
    .expect("valid");
    let spec = &c.models["fraud"];
    assert_eq!(spec.holdout, DEFAULT_HOLDOUT);
    let r = resolve(&c, "fraud");
    assert_eq!(r.task, Task::Binary, "int label bounded to [0, 1]");
    assert_eq!(r.label_type, FieldType::Int);
    let kinds: Vec<&FeatureKind> = r.features.iter().map(|f| &f.kind).collect();
    assert_eq!(
        kinds,
        [
            &FeatureKind::Numeric {
                missing: MissingPolicy::Indicator
            },
            &FeatureKind::Onehot { max_categories: 32 },
            &FeatureKind::Hash { buckets: 64 },
            &FeatureKind::Time,
            &FeatureKind::Bool,
            &FeatureKind::Time,
        ]
    );
    assert_eq!(r.learner.name(), "logistic_regression");
}

#[test]
fn omitted_features_are_derived_from_the_schema() {
    let c = parse("  m: { stream: pay, label: bucket }\n").expect("valid");
    let r = resolve(&c, "m");
    assert_eq!(r.task, Task::Multiclass);
    let names: Vec<&str> = r.features.iter().map(|f| f.field.as_str()).collect();
    // No label, no PII-tagged card, no system columns; renamed and derived fields in.
    assert_eq!(
        names,
        [
            "amount", "merchant", "ts", "online", "is_fraud", "cc", "big"
        ]
    );
    assert_eq!(
        r.features[4].kind,
        FeatureKind::Numeric {
            missing: MissingPolicy::Mean
        }
    );
    assert_eq!(r.features[6].kind, FeatureKind::Bool);
    assert_eq!(r.learner, LearnerSpec::default_for(Task::Multiclass));
    let reg = parse("  r: { stream: pay, label: amount }\n").expect("valid");
    let r = resolve(&reg, "r");
    assert_eq!(r.task, Task::Regression);
    assert_eq!(r.learner.name(), "linear_regression");
}

#[test]
fn every_learner_parses_with_its_defaults() {
    let c = parse(
        r#"
  a: { stream: pay, label: is_fraud, learner: { type: gaussian_nb } }
  b: { stream: pay, label: is_fraud, learner: { type: hoeffding_tree, grace_period: 50 } }
  c: { stream: pay, label: is_fraud, learner: { type: hoeffding_adaptive_tree, seed: 3 } }
  d: { stream: pay, label: is_fraud, learner: { type: adaptive_random_forest } }
  e: { stream: pay, label: is_fraud, learner: { type: gbt, max_depth: 4 } }
  f: { stream: pay, label: is_fraud, learner: { type: majority } }
  g: { stream: pay, label: is_fraud, learner: { type: no_change } }
  h: { stream: pay, label: amount, learner: { type: linear_regression, optimizer: ftrl } }
"#,
    )
    .expect("valid");
    let m = &c.models;
    let LearnerSpec::HoeffdingTree(t) = m["b"].learner.as_ref().expect("set") else {
        panic!("hoeffding_tree")
    };
    assert_eq!((t.grace_period.get(), t.delta, t.tau), (50, 1e-7, 0.05));
    assert_eq!(
        m["d"].learner,
        Some(LearnerSpec::AdaptiveRandomForest {
            n_models: default_n_models(),
            seed: 42
        })
    );
    let Some(LearnerSpec::Gbt {
        n_trees,
        learning_rate,
        max_depth,
        max_bins,
    }) = &m["e"].learner
    else {
        panic!("gbt")
    };
    assert_eq!(
        (n_trees.get(), *learning_rate, max_depth.get(), *max_bins),
        (100, 0.1, 4, 255)
    );
}

#[test]
fn problems_name_their_key_path() {
    let errs = parse(
        r#"
  fraud:
    stream: pay
    label: is_fraudulent
    holdout: 1.5
    features:
      - { field: amount, kind: time }
      - { field: nope, kind: numeric }
      - { field: merchant, kind: categorical, buckets: 8 }
      - { field: merchant, kind: categorical, encoding: hash, max_categories: 8 }
    learner: { type: logistic_regression, lr: -1 }
  reg:
    stream: pay
    label: amount
    learner: { type: gaussian_nb }
  lost: { stream: nowhere, label: x }
  tsl: { stream: pay, label: ts }
"#,
    )
    .unwrap_err();
    let got = paths(&errs);
    for want in [
        "models.fraud.holdout",
        "models.fraud.label",
        "models.fraud.features[0].kind",
        "models.fraud.features[1].field",
        "models.fraud.features[2].buckets",
        "models.fraud.features[3].field",
        "models.fraud.features[3].max_categories",
        "models.fraud.learner.lr",
        "models.reg.learner.type",
        "models.lost.stream",
        "models.tsl.task",
    ] {
        assert!(got.contains(&want), "missing {want} in {got:?}");
    }
    let label = errs
        .iter()
        .find(|e| e.path == "models.fraud.label")
        .expect("label error");
    assert_eq!(
        label.to_string(),
        "models.fraud.label: 'is_fraudulent' is not a field of stream 'pay'"
    );
}

#[test]
fn unknown_keys_and_kinds_name_their_path() {
    let errs = parse("  m: { stream: pay, label: amount, lable: x }\n").unwrap_err();
    assert_eq!(errs[0].path, "models.m.lable", "{errs:?}");
    assert!(errs[0].message.contains("lable"), "{errs:?}");
    let errs = parse(
        "  m:\n    stream: pay\n    label: amount\n    features: [ { field: ts, kind: cyclic } ]\n",
    )
    .unwrap_err();
    assert!(errs[0].path.starts_with("models.m.features[0]"), "{errs:?}");
    assert!(errs[0].message.contains("cyclic"), "{errs:?}");
}

#[test]
fn explicit_task_must_fit_the_label() {
    let errs = parse("  m: { stream: pay, label: merchant, task: regression }\n").unwrap_err();
    assert_eq!(paths(&errs), ["models.m.task"]);
    let c = parse("  m: { stream: pay, label: bucket, task: regression }\n").expect("valid");
    assert_eq!(resolve(&c, "m").task, Task::Regression);
}

#[test]
fn generator_streams_are_resolved_later() {
    // The generator's schema lives in the ingest crate: only schema-free checks here.
    let c = parse("  g: { stream: gen, label: is_fraud }\n").expect("valid");
    assert!(declared_output_schema(&c.streams["gen"]).is_none());
    let schema = Schema::new(vec![
        Field::new("amount", FieldType::Float),
        Field::new("is_fraud", FieldType::Int).range(Some(0.0), Some(1.0)),
    ]);
    let r = c.models["g"].resolve("g", &schema).expect("resolves");
    assert_eq!((r.task, r.features.len()), (Task::Binary, 1));
}

#[test]
fn resolved_spec_round_trips_through_json() {
    let c = parse("  m: { stream: pay, label: is_fraud }\n").expect("valid");
    let r = resolve(&c, "m");
    let text = serde_json::to_string(&r).expect("serialise");
    let back: ResolvedModelSpec = serde_json::from_str(&text).expect("parse");
    assert_eq!(back, r);
}

#[test]
fn trending_defaults_to_exclude_and_parses_keep() {
    let c = parse("  m: { stream: pay, label: is_fraud }\n  k: { stream: pay, label: is_fraud, trending: keep }\n")
        .expect("valid");
    assert_eq!(c.models["m"].trending, TrendingPolicy::Exclude);
    assert_eq!(c.models["k"].trending, TrendingPolicy::Keep);
    // Resolution decides nothing about trends: that needs the training rows.
    assert!(resolve(&c, "m").trending_excluded.is_empty());
    let errs = parse("  m: { stream: pay, label: is_fraud, trending: drop }\n").unwrap_err();
    assert!(errs[0].path.starts_with("models.m"), "{errs:?}");
    assert!(errs[0].message.contains("drop"), "{errs:?}");
    // A spec with exclusions round-trips; one without writes no key.
    let mut r = resolve(&c, "m");
    assert!(
        !serde_json::to_string(&r)
            .unwrap()
            .contains("trending_excluded")
    );
    r.trending_excluded = vec!["bucket".into()];
    let back: ResolvedModelSpec =
        serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn serving_defaults_to_snapshot_and_live_needs_an_online_learner() {
    let c = parse(
        "  m: { stream: pay, label: is_fraud }\n  l: { stream: pay, label: is_fraud, serving: live, live: { window: 300 } }\n",
    )
    .unwrap();
    assert_eq!(c.models["m"].serving, ServingMode::Snapshot);
    assert_eq!(c.models["l"].serving, ServingMode::Live);
    assert_eq!(c.models["l"].live.window, 300);
    assert_eq!(c.models["l"].live.min_labels, 100);
    let errs =
        parse("  m: { stream: pay, label: is_fraud, serving: live, learner: { type: gbt } }\n")
            .unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.path == "models.m.serving" && e.message.contains("online learner")),
        "{errs:?}"
    );
    let errs =
        parse("  m: { stream: pay, label: is_fraud, live: { window: 10, min_labels: 20 } }\n")
            .unwrap_err();
    assert!(
        errs.iter().any(|e| e.path == "models.m.live.min_labels"),
        "{errs:?}"
    );
}

#[test]
fn ensemble_learners_parse_with_their_defaults_and_name_their_problems() {
    let c = parse(
        r#"
  lb: { stream: pay, label: is_fraud, learner: { type: leveraging_bagging } }
  lb3: { stream: pay, label: bucket, learner: { type: leveraging_bagging, n_models: 3, seed: 1 } }
  sel: { stream: pay, label: is_fraud, serving: live, learner: { type: selector } }
  pick:
    stream: pay
    label: bucket
    learner:
      type: selector
      window: 100
      members:
        - { type: leveraging_bagging }
        - { type: hoeffding_tree, grace_period: 50 }
        - { type: no_change }
"#,
    )
    .expect("valid");
    let m = &c.models;
    assert_eq!(
        m["lb"].learner,
        Some(LearnerSpec::LeveragingBagging {
            n_models: default_n_models(),
            seed: 42
        })
    );
    assert_eq!(
        m["lb3"].learner.as_ref().map(LearnerSpec::name),
        Some("leveraging_bagging")
    );
    assert_eq!(
        m["sel"].learner,
        Some(LearnerSpec::Selector {
            members: None,
            window: 500
        })
    );
    let Some(LearnerSpec::Selector { members, window }) = &m["pick"].learner else {
        panic!("selector")
    };
    assert_eq!(*window, 100);
    let names: Vec<&str> = members.iter().flatten().map(LearnerSpec::name).collect();
    assert_eq!(names, ["leveraging_bagging", "hoeffding_tree", "no_change"]);
    assert_eq!(resolve(&c, "pick").task, Task::Multiclass);
    let defaults: Vec<&str> = LearnerSpec::default_selector_members()
        .iter()
        .map(LearnerSpec::name)
        .collect();
    assert_eq!(
        defaults,
        [
            "adaptive_random_forest",
            "hoeffding_adaptive_tree",
            "gaussian_nb",
            "logistic_regression",
            "logistic_regression",
            "windowed_gbt"
        ]
    );
    // A resolved selector round-trips, members and all.
    let r = resolve(&c, "pick");
    let back: ResolvedModelSpec =
        serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);

    let errs = parse(
        r#"
  reg_lb: { stream: pay, label: amount, learner: { type: leveraging_bagging } }
  reg_sel: { stream: pay, label: amount, learner: { type: selector } }
  zero: { stream: pay, label: is_fraud, learner: { type: selector, window: 0 } }
  none: { stream: pay, label: is_fraud, learner: { type: selector, members: [] } }
  bad:
    stream: pay
    label: is_fraud
    learner:
      type: selector
      members:
        - { type: gbt }
        - { type: logistic_regression, lr: -1 }
        - { type: linear_regression }
        - { type: selector, members: [ { type: hoeffding_tree, delta: 2 } ] }
"#,
    )
    .unwrap_err();
    let got = paths(&errs);
    for want in [
        "models.reg_lb.learner.type",
        "models.reg_sel.learner.type",
        "models.zero.learner.window",
        "models.none.learner.members",
        "models.bad.learner.members[0].type",
        "models.bad.learner.members[1].lr",
        "models.bad.learner.members[2].type",
        "models.bad.learner.members[3].members[0].delta",
    ] {
        assert!(got.contains(&want), "missing {want} in {got:?}");
    }
    assert_eq!(errs.len(), 8, "{got:?}");
    let gbt = errs
        .iter()
        .find(|e| e.path == "models.bad.learner.members[0].type")
        .expect("gbt member");
    assert!(gbt.message.contains("learns in batches"), "{gbt}");
    // Unknown keys and a zero-sized ensemble are refused under the learner.
    for (learner, key) in [
        ("{ type: leveraging_bagging, trees: 3 }", "trees"),
        ("{ type: leveraging_bagging, n_models: 0 }", "nonzero"),
        (
            "{ type: streaming_random_patches, subspace_size: 1.5 }",
            "subspace_size",
        ),
        (
            "{ type: selector, members: [ { type: gaussian_nb, lr: 1 } ] }",
            "lr",
        ),
    ] {
        let errs = parse(&format!(
            "  m: {{ stream: pay, label: is_fraud, learner: {learner} }}\n"
        ))
        .unwrap_err();
        assert!(errs[0].path.starts_with("models.m.learner"), "{errs:?}");
        assert!(
            errs[0].message.contains(key) || errs[0].path.contains(key),
            "{errs:?}"
        );
    }
}

#[test]
fn windowed_gbt_defaults_and_mistakes() {
    let c =
        parse("  w: { stream: pay, label: is_fraud, learner: { type: windowed_gbt } }\n").unwrap();
    let Some(LearnerSpec::WindowedGbt {
        window,
        refit_every,
        n_trees,
        max_depth,
    }) = &c.models["w"].learner
    else {
        panic!("windowed_gbt")
    };
    assert_eq!(
        (*window, *refit_every, n_trees.get(), max_depth.get()),
        (2_000, 100, 50, 4)
    );
    let errs = parse(
        r#"
  small: { stream: pay, label: is_fraud, learner: { type: windowed_gbt, window: 50 } }
  never: { stream: pay, label: is_fraud, learner: { type: windowed_gbt, refit_every: 0 } }
  reg: { stream: pay, label: amount, learner: { type: windowed_gbt } }
"#,
    )
    .unwrap_err();
    let got = paths(&errs);
    for want in [
        "models.small.learner.window",
        "models.never.learner.refit_every",
        "models.reg.learner.type",
    ] {
        assert!(got.contains(&want), "missing {want} in {got:?}");
    }
}
