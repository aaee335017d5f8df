//! A restart in the middle of the loop: a job persisted before a crash is picked up on
//! its pinned table version and trained once; a job whose version was registered just
//! before the crash is not trained or registered again.

mod common;

use freshet_control::controller::{LoopDeps, LoopEvent, ModelLoop};
use freshet_control::state::{self, JobState};
use freshet_core::{Field, FieldType, ModelSpec, Schema, Value};
use freshet_lake::{Lake, RowBatchBuilder, Table, TableOptions};
use freshet_registry::Store;
use freshet_registry::models::ModelQuery;
use std::sync::Arc;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("amount", FieldType::Float),
        Field::new("merchant", FieldType::String),
        Field::new("is_fraud", FieldType::Bool),
    ])
}

async fn table_with_rows(lake: &Lake, n: usize) -> i64 {
    let s = schema();
    let t = Table::open_or_create(
        lake.table_url("events/s").unwrap(),
        &s,
        &TableOptions::default(),
    )
    .await
    .unwrap();
    let mut b = RowBatchBuilder::new(&s, n);
    for i in 0..n {
        let fraud = i % 5 == 0;
        b.push(
            0,
            &Value::Float(if fraud { 900.0 } else { 30.0 } + (i % 7) as f64),
        );
        b.push_str(1, ["fuel", "grocery"][i % 2]);
        b.push(2, &Value::Bool(fraud));
        b.end_row();
    }
    t.append(b.finish().unwrap(), &[]).await.unwrap()
}

struct World {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    deps: LoopDeps,
    table_version: i64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().join("lake").to_str().unwrap()).unwrap();
    let table_version = table_with_rows(&lake, 400).await;
    let (store, deps) = common::deps(dir.path(), lake);
    World {
        _dir: dir,
        store,
        deps,
        table_version,
    }
}

fn spec() -> ModelSpec {
    serde_json::from_value(serde_json::json!({
        "stream": "s",
        "label": "is_fraud",
        "triggers": { "initial_rows": 10, "concept_drift": "none" },
    }))
    .unwrap()
}

fn versions(store: &dyn Store) -> Vec<i64> {
    store
        .search_model_versions(&ModelQuery {
            filter: "name = 'fraud'".into(),
            max_results: 100,
            ..Default::default()
        })
        .unwrap()
        .items
        .iter()
        .map(|v| v.version)
        .collect()
}

#[tokio::test]
async fn an_interrupted_job_is_resumed_once_on_its_pinned_version() {
    let w = world().await;
    // The process died right after persisting the job, before training.
    let mut st = state::load(w.store.as_ref(), "fraud").unwrap();
    st.job = Some(JobState {
        id: "job-a".into(),
        trigger: "first version".into(),
        table_version: w.table_version,
        skip_rows: None,
        started_ms: 0,
    });
    state::save(w.store.as_ref(), "fraud", &st).unwrap();

    // A new process: a new loop, same registry.
    let mut model_loop = ModelLoop::new("fraud", spec(), schema(), w.deps.clone());
    let events = model_loop.tick().await.unwrap();
    assert!(
        matches!(&events[..], [LoopEvent::Trained { version: 1, table_version, outcome, .. }]
            if *table_version == w.table_version && outcome == "first champion"),
        "{events:?}"
    );
    assert_eq!(versions(w.store.as_ref()), vec![1]);
    let st = state::load(w.store.as_ref(), "fraud").unwrap();
    assert!(st.job.is_none());
    assert_eq!(st.history.last().map(|h| h.id.as_str()), Some("job-a"));
    // Nothing new in the table: the next ticks do nothing.
    for _ in 0..3 {
        assert!(model_loop.tick().await.unwrap().is_empty());
    }
    assert_eq!(versions(w.store.as_ref()), vec![1]);
}

#[tokio::test]
async fn a_job_registered_before_the_crash_is_not_done_twice() {
    let w = world().await;
    let mut first = ModelLoop::new("fraud", spec(), schema(), w.deps.clone());
    let events = first.tick().await.unwrap();
    assert!(
        matches!(&events[..], [LoopEvent::Trained { version: 1, .. }]),
        "{events:?}"
    );
    let job_id = state::load(w.store.as_ref(), "fraud").unwrap().history[0]
        .id
        .clone();

    // The crash came after the version was registered but before the state was saved:
    // the state still holds the job.
    let mut st = state::load(w.store.as_ref(), "fraud").unwrap();
    st.job = Some(JobState {
        id: job_id.clone(),
        trigger: "first version".into(),
        table_version: w.table_version,
        skip_rows: None,
        started_ms: 0,
    });
    st.history.clear();
    state::save(w.store.as_ref(), "fraud", &st).unwrap();

    let mut again = ModelLoop::new("fraud", spec(), schema(), w.deps.clone());
    let events = again.tick().await.unwrap();
    assert!(
        matches!(&events[..], [LoopEvent::Trained { version: 1, .. }]),
        "{events:?}"
    );
    assert_eq!(
        versions(w.store.as_ref()),
        vec![1],
        "the job was registered twice"
    );
    let st = state::load(w.store.as_ref(), "fraud").unwrap();
    assert!(st.job.is_none());
    assert_eq!(
        st.history.last().map(|h| (h.id.clone(), h.version)),
        Some((job_id, Some(1)))
    );
    assert_eq!(
        w.store
            .get_version_by_alias("fraud", "champion")
            .unwrap()
            .version,
        1
    );
}
