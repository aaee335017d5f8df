//! The online job: the live learner keeps learning every new row of the stream and a
//! trigger snapshots it; a snapshot equals a model that learnt the same rows in one go,
//! and after a restart the learner resumes from its last snapshot without losing or
//! repeating a row.

mod common;

use freshet_control::controller::{LoopDeps, LoopEvent, ModelLoop};
use freshet_control::online::THROUGH_TAG;
use freshet_core::{Field, FieldType, ModelSpec, Schema, SystemClock, Value};
use freshet_lake::{Lake, RowBatchBuilder, Table, TableOptions};
use freshet_learn::features::SchemaRow;
use freshet_learn::model::{Model, ModelStamp};
use freshet_registry::Store;
use std::sync::Arc;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("x", FieldType::Float),
        Field::new("y", FieldType::Bool),
    ])
}

/// Row `i` of a stream whose concept flips at row 600: `y = x > 0.5`, then `x < 0.5`.
fn row(i: usize) -> Vec<Value> {
    let x = ((i * 37) % 100) as f64 / 100.0;
    let y = if i < 600 { x > 0.5 } else { x < 0.5 };
    vec![Value::Float(x), Value::Bool(y)]
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

fn spec() -> ModelSpec {
    serde_json::from_value(serde_json::json!({
        "stream": "s",
        "label": "y",
        "learner": { "type": "hoeffding_adaptive_tree", "seed": 3 },
        "triggers": { "initial_rows": 200, "rows": 300, "concept_drift": "none" },
        "gates": { "vs_champion": null, "max_latency_us": 0 },
        "rollout": { "auto": false },
        "job": { "type": "online", "holdout_rows": 100 },
    }))
    .unwrap()
}

struct World {
    dir: tempfile::TempDir,
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
        dir,
        store,
        deps,
        table,
    }
}

/// The same learner fed rows `0..n` in one go.
fn learnt_in_one_go(n: usize) -> Model {
    let resolved = spec().resolve("m", &schema()).unwrap();
    let mut m = Model::new(&resolved, &schema(), ModelStamp::new(&SystemClock)).unwrap();
    for i in 0..n {
        let r = row(i);
        m.learn_record(&SchemaRow::new(&schema(), &r)).unwrap();
    }
    m
}

fn load(w: &World, version: i64) -> Model {
    freshet_serve::loader::load_version(w.store.as_ref(), w.deps.artifacts.as_ref(), "m", version)
        .unwrap()
        .model
}

/// Same answers on a grid of inputs, to the last bit.
fn assert_same_answers(a: &Model, b: &Model) {
    let s = schema();
    for k in 0..100 {
        let r = vec![Value::Float(f64::from(k) / 100.0), Value::Null];
        let rec = SchemaRow::new(&s, &r);
        assert_eq!(
            a.predict_proba(&rec).unwrap(),
            b.predict_proba(&rec).unwrap(),
            "x = {k}/100"
        );
    }
}

fn tag(w: &World, version: i64, key: &str) -> String {
    w.store
        .get_model_version("m", version)
        .unwrap()
        .tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.clone())
        .unwrap_or_default()
}

/// Delete the data files a table commit added.
fn forget_commit(w: &World, version: i64) {
    let root = w.dir.path().join("lake/events/s");
    let log = root.join(format!("_delta_log/{version:020}.json"));
    let text = std::fs::read_to_string(&log).unwrap();
    let mut deleted = 0;
    for line in text.lines() {
        let action: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(path) = action["add"]["path"].as_str() {
            std::fs::remove_file(root.join(path)).unwrap();
            deleted += 1;
        }
    }
    assert_eq!(deleted, 1);
}

fn trained(events: &[LoopEvent]) -> Vec<(i64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            LoopEvent::Trained {
                version,
                train_rows,
                ..
            } => Some((*version, *train_rows)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_live_learner_is_snapshotted_on_triggers_and_resumes_after_a_restart() {
    let w = world().await;
    let mut lp = ModelLoop::new("m", spec(), schema(), w.deps.clone());

    // 250 rows: the first version is a snapshot of everything learnt.
    let v = append(&w.table, 0..250).await;
    let v1_table = v;
    let ev = lp.tick().await.unwrap();
    assert_eq!(trained(&ev), [(1, 250)], "{ev:?}");
    assert_eq!(tag(&w, 1, THROUGH_TAG), v.to_string());
    assert_same_answers(&load(&w, 1), &learnt_in_one_go(250));
    // The gates' figures are test-then-train on the newest 100 rows.
    let Some(LoopEvent::Trained { metrics, .. }) = ev.first() else {
        unreachable!()
    };
    assert!(
        metrics.iter().any(|(k, _)| k == "holdout_accuracy"),
        "{metrics:?}"
    );

    // Rows arrive in small commits; the learner keeps up without a trigger.
    for start in (250..500).step_by(50) {
        append(&w.table, start..start + 50).await;
        let ev = lp.tick().await.unwrap();
        assert!(trained(&ev).is_empty(), "{ev:?}");
    }

    // The process dies; its live model is gone. 200 more rows, then a new process.
    drop(lp);
    // The first 250 rows' file is deleted: a learner that did not resume from version
    // 1 but relearnt from the start could not read it.
    forget_commit(&w, v1_table);
    let v = append(&w.table, 500..700).await;
    let mut lp = ModelLoop::new("m", spec(), schema(), w.deps.clone());
    // 450 new rows since version 1: the rows trigger snapshots the resumed learner,
    // which replayed rows 250..700 from version 1 on — none lost, none twice.
    let ev = lp.tick().await.unwrap();
    assert_eq!(trained(&ev), [(2, 700)], "{ev:?}");
    assert_eq!(tag(&w, 2, THROUGH_TAG), v.to_string());
    assert_same_answers(&load(&w, 2), &learnt_in_one_go(700));
    assert!(tag(&w, 2, "freshet.trigger").contains("new rows"));

    // Nothing new: nothing trained.
    assert!(trained(&lp.tick().await.unwrap()).is_empty());
}

#[tokio::test]
async fn a_batch_learner_is_refused_for_an_online_job() {
    let mut s = spec();
    s.learner = serde_json::from_value(serde_json::json!({ "type": "gbt" })).unwrap();
    let w = world().await;
    append(&w.table, 0..250).await;
    let mut lp = ModelLoop::new("m", s, schema(), w.deps.clone());
    let ev = lp.tick().await.unwrap();
    assert!(
        ev.iter().any(
            |e| matches!(e, LoopEvent::JobFailed { reason } if reason.contains("online learner"))
        ),
        "{ev:?}"
    );
}
