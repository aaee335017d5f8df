//! Feature hygiene in the loop: a column that rises with arrival order (a counter
//! `seq`) is left out of a model trained by the built-in job and by the online job,
//! the version says so in its tag, its reference profile does not hold it and its
//! answers ignore it (serving still takes the column); `trending: keep` keeps it.

mod common;

use freshet_control::controller::{LoopDeps, LoopEvent, ModelLoop};
use freshet_control::publish::TRENDING_EXCLUDED_TAG;
use freshet_core::{Field, FieldType, ModelSpec, Schema, Value};
use freshet_lake::{Lake, RowBatchBuilder, Table, TableOptions};
use freshet_learn::features::SchemaRow;
use freshet_registry::Store;
use std::sync::Arc;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("seq", FieldType::Int),
        Field::new("x", FieldType::Float),
        Field::new("y", FieldType::Bool),
    ])
}

/// Row `i`: the counter, a stationary column that decides the label, the label.
fn row(i: usize) -> Vec<Value> {
    let x = ((i * 37) % 100) as f64 / 100.0;
    vec![Value::Int(i as i64), Value::Float(x), Value::Bool(x > 0.5)]
}

async fn append(table: &Table, range: std::ops::Range<usize>) -> i64 {
    let s = schema();
    let mut b = RowBatchBuilder::new(&s, range.len());
    for i in range {
        for (k, v) in row(i).iter().enumerate() {
            b.push(k, v);
        }
        b.end_row();
    }
    table.append(b.finish().unwrap(), &[]).await.unwrap()
}

fn spec(extra: serde_json::Value) -> ModelSpec {
    let mut v = serde_json::json!({
        "stream": "s",
        "label": "y",
        "triggers": { "initial_rows": 1500, "concept_drift": "none" },
        "gates": { "vs_champion": null, "max_latency_us": 0 },
        "rollout": { "auto": false },
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    serde_json::from_value(v).unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    deps: LoopDeps,
    table: Table,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().join("lake").to_str().unwrap()).unwrap();
    let table = Table::open_or_create(
        lake.table_url("events/s").unwrap(),
        &schema(),
        &TableOptions::default(),
    )
    .await
    .unwrap();
    let (store, deps) = common::deps(dir.path(), lake);
    World {
        _dir: dir,
        store,
        deps,
        table,
    }
}

/// What version 1 of `m` reads, profiles and says about trending features.
struct Registered {
    features: Vec<String>,
    inputs: Vec<String>,
    profiled: Vec<String>,
    excluded: Vec<String>,
    version_tag: Option<String>,
    run_tag: Option<String>,
    train_rows: u64,
    /// The same answer for a row whatever its `seq`.
    ignores_seq: bool,
}

fn registered(w: &World) -> Registered {
    let loaded =
        freshet_serve::loader::load_version(w.store.as_ref(), w.deps.artifacts.as_ref(), "m", 1)
            .unwrap();
    let v = w.store.get_model_version("m", 1).unwrap();
    let run = w.store.get_run(&v.run_id).unwrap();
    let find = |tags: &[freshet_registry::model::Tag]| {
        tags.iter()
            .find(|t| t.key == TRENDING_EXCLUDED_TAG)
            .map(|t| t.value.clone())
    };
    let spec = loaded.model.spec();
    let s = schema();
    let answer = |seq: i64| {
        let r = vec![Value::Int(seq), Value::Float(0.7), Value::Null];
        loaded.model.predict_proba(&SchemaRow::new(&s, &r)).unwrap()
    };
    Registered {
        ignores_seq: answer(0) == answer(1_000_000_000),
        features: spec.features.iter().map(|f| f.field.clone()).collect(),
        inputs: loaded
            .input
            .fields()
            .iter()
            .map(|f| f.name.clone())
            .collect(),
        profiled: loaded
            .model
            .reference_profile()
            .unwrap()
            .features
            .iter()
            .map(|f| f.field.clone())
            .collect(),
        excluded: spec.trending_excluded.clone(),
        version_tag: find(&v.tags),
        run_tag: find(&run.data.tags),
        train_rows: loaded.model.metadata().training_rows,
    }
}

fn trained(events: &[LoopEvent]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|e| match e {
            LoopEvent::Trained { version, .. } => Some(*version),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_builtin_job_leaves_a_counter_out_and_says_so() {
    let w = world().await;
    append(&w.table, 0..2000).await;
    let mut lp = ModelLoop::new("m", spec(serde_json::json!({})), schema(), w.deps.clone());
    let ev = lp.tick().await.unwrap();
    assert_eq!(trained(&ev), [1], "{ev:?}");
    let r = registered(&w);
    assert_eq!(r.features, ["x"]);
    assert_eq!(r.excluded, ["seq"]);
    assert_eq!(r.version_tag.as_deref(), Some("seq"));
    assert_eq!(r.run_tag.as_deref(), Some("seq"));
    // Not a feature, so not profiled; serving still takes the column (clients that
    // send whole records keep working) and the answers ignore it.
    assert_eq!(r.profiled, ["x"]);
    assert_eq!(r.inputs, ["x", "seq"]);
    assert!(r.ignores_seq);
}

#[tokio::test]
async fn trending_keep_keeps_the_counter() {
    let w = world().await;
    append(&w.table, 0..2000).await;
    let s = spec(serde_json::json!({ "trending": "keep" }));
    let mut lp = ModelLoop::new("m", s, schema(), w.deps.clone());
    assert_eq!(trained(&lp.tick().await.unwrap()), [1]);
    let r = registered(&w);
    assert_eq!(r.features, ["seq", "x"]);
    assert_eq!(r.profiled, ["seq", "x"]);
    assert!(r.excluded.is_empty());
    assert_eq!((r.version_tag, r.run_tag), (None, None));
    assert!(!r.ignores_seq);
}

#[tokio::test]
async fn a_listed_counter_is_kept() {
    let w = world().await;
    append(&w.table, 0..2000).await;
    let s = spec(serde_json::json!({ "features": [
        { "field": "seq", "kind": "numeric" },
        { "field": "x", "kind": "numeric" },
    ] }));
    let mut lp = ModelLoop::new("m", s, schema(), w.deps.clone());
    assert_eq!(trained(&lp.tick().await.unwrap()), [1]);
    let r = registered(&w);
    assert_eq!(r.features, ["seq", "x"]);
    assert_eq!(r.version_tag, None);
}

#[tokio::test]
async fn the_online_job_decides_on_its_first_rows_whatever_the_ticks_read() {
    let w = world().await;
    let s = spec(serde_json::json!({ "job": { "type": "online", "holdout_rows": 100 } }));
    let mut lp = ModelLoop::new("m", s, schema(), w.deps.clone());
    // The first tick reads too few rows to judge a trend on; the learner waits.
    append(&w.table, 0..100).await;
    assert!(trained(&lp.tick().await.unwrap()).is_empty());
    append(&w.table, 100..1500).await;
    let ev = lp.tick().await.unwrap();
    assert_eq!(trained(&ev), [1], "{ev:?}");
    let r = registered(&w);
    assert_eq!(r.features, ["x"]);
    assert_eq!(r.version_tag.as_deref(), Some("seq"));
    assert_eq!(r.profiled, ["x"]);
    // Every row was learnt, the held ones included.
    assert_eq!(r.train_rows, 1500);
}
