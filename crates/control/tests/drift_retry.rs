//! A drift answered by a candidate the gates reject is not the end of it: the loop
//! trains again on rows of the new concept only, until a candidate passes or the
//! retries run out — the stale champion does not serve until the next drift.

mod common;

use freshet_control::controller::{LoopEvent, ModelLoop};
use freshet_control::state::{self, MAX_DRIFT_RETRIES};
use freshet_core::{Field, FieldType, ModelSpec, Schema, Value, system_columns as sys};
use freshet_lake::{Lake, RowBatchBuilder, Table, TableOptions};
use freshet_registry::Store;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("amount", FieldType::Float),
        Field::new("is_fraud", FieldType::Bool),
        Field::new(sys::INGESTED_AT, FieldType::Timestamp),
    ])
}

#[derive(Clone, Copy)]
enum Concept {
    /// Fraud is a large amount.
    Large,
    /// Fraud is a small amount: the pattern flipped.
    Small,
    /// Labels unrelated to the amount: nothing any model can learn.
    Noise,
}

/// The stream's table, written as ingestion would: rows arrive one microsecond
/// apart, and the loop reads them in arrival order.
struct Stream {
    table: Table,
    rows: i64,
}

impl Stream {
    async fn new(lake: &Lake) -> Self {
        let table = Table::open_or_create(
            lake.table_url("events/s").unwrap(),
            &schema(),
            &TableOptions::default(),
        )
        .await
        .unwrap();
        Self { table, rows: 0 }
    }

    async fn append(&mut self, n: usize, concept: Concept, salt: u64) {
        let s = schema();
        let mut b = RowBatchBuilder::new(&s, n);
        for i in 0..n {
            let large = (i as u64 + salt).is_multiple_of(2);
            let amount = if large { 900.0 } else { 30.0 } + ((i * 7) % 11) as f64;
            let fraud = match concept {
                Concept::Large => large,
                Concept::Small => !large,
                Concept::Noise => {
                    let x = (i as u64 + 1000 * salt).wrapping_mul(6_364_136_223_846_793_005);
                    (x >> 33).is_multiple_of(2)
                }
            };
            b.push(0, &Value::Float(amount));
            b.push(1, &Value::Bool(fraud));
            b.push(2, &Value::Timestamp(1_800_000_000_000_000 + self.rows));
            b.end_row();
            self.rows += 1;
        }
        self.table.append(b.finish().unwrap(), &[]).await.unwrap();
    }
}

fn spec() -> ModelSpec {
    serde_json::from_value(serde_json::json!({
        "stream": "s",
        "label": "is_fraud",
        "triggers": { "initial_rows": 100, "rows_after_drift": 200, "concept_drift": "none" },
        "gates": { "min": { "holdout_accuracy": 0.9 } },
    }))
    .unwrap()
}

/// A drift recorded as the detector would: its point placed `at` rows into the table.
fn record_drift(store: &dyn Store, at: u64) {
    let mut st = state::load(store, "fraud").unwrap();
    st.drift_at_rows = Some(at);
    st.drift_reason = Some("concept drift (adwin on the live error stream)".into());
    state::save(store, "fraud", &st).unwrap();
}

fn trained(events: &[LoopEvent]) -> Option<(i64, String, String)> {
    events.iter().find_map(|e| match e {
        LoopEvent::Trained {
            version,
            trigger,
            outcome,
            ..
        } => Some((*version, trigger.clone(), outcome.clone())),
        _ => None,
    })
}

#[tokio::test]
async fn a_rejected_answer_to_a_drift_is_trained_again_on_the_new_concept() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().join("lake").to_str().unwrap()).unwrap();
    let mut stream = Stream::new(&lake).await;
    let (store, deps) = common::deps(dir.path(), lake);
    let mut model_loop = ModelLoop::new("fraud", spec(), schema(), deps);

    stream.append(600, Concept::Large, 0).await;
    let (v, _, outcome) = trained(&model_loop.tick().await.unwrap()).unwrap();
    assert_eq!((v, outcome.as_str()), (1, "first champion"));

    // The pattern flips at row 600, but the detector placed the change at row 300,
    // among the old concept: the answer learns mostly the old pattern and fails.
    stream.append(200, Concept::Small, 1).await;
    record_drift(store.as_ref(), 300);
    let (v, trigger, outcome) = trained(&model_loop.tick().await.unwrap()).unwrap();
    assert_eq!(v, 2);
    assert!(trigger.contains("concept drift"), "{trigger}");
    assert_eq!(outcome, "rejected by the gates");
    let st = state::load(store.as_ref(), "fraud").unwrap();
    assert_eq!(st.drift_retries, 1);
    assert_eq!(
        st.drift_at_rows,
        Some(800),
        "the retry starts after the rows v2 saw"
    );

    // Not before as many rows of the new concept came again.
    stream.append(100, Concept::Small, 2).await;
    assert_eq!(trained(&model_loop.tick().await.unwrap()), None);
    stream.append(100, Concept::Small, 3).await;
    let (v, trigger, outcome) = trained(&model_loop.tick().await.unwrap()).unwrap();
    assert_eq!(v, 3);
    assert!(
        trigger.contains("retry 1 of 3: the last answer failed the gates"),
        "{trigger}"
    );
    assert_eq!(
        outcome, "rollout started",
        "trained on the new concept only"
    );
    let st = state::load(store.as_ref(), "fraud").unwrap();
    assert_eq!((st.drift_retries, st.drift_at_rows), (0, None));
}

#[tokio::test]
async fn retries_stop_after_the_limit_until_the_next_drift() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().join("lake").to_str().unwrap()).unwrap();
    let mut stream = Stream::new(&lake).await;
    let (store, deps) = common::deps(dir.path(), lake);
    let mut model_loop = ModelLoop::new("fraud", spec(), schema(), deps);
    stream.append(600, Concept::Large, 0).await;
    trained(&model_loop.tick().await.unwrap()).unwrap();

    // After the drift the labels carry no pattern: every answer fails its gates.
    record_drift(store.as_ref(), 600);
    let mut answers = 0;
    for salt in 0..(MAX_DRIFT_RETRIES as u64 + 3) {
        stream.append(200, Concept::Noise, salt).await;
        if let Some((_, trigger, outcome)) = trained(&model_loop.tick().await.unwrap()) {
            assert_eq!(outcome, "rejected by the gates", "{trigger}");
            answers += 1;
        }
    }
    assert_eq!(answers, 1 + MAX_DRIFT_RETRIES as usize);
    let st = state::load(store.as_ref(), "fraud").unwrap();
    assert_eq!((st.drift_retries, st.drift_at_rows), (0, None));
    assert_eq!(
        store
            .get_version_by_alias("fraud", "champion")
            .unwrap()
            .version,
        1
    );

    // A new drift starts a new series.
    record_drift(store.as_ref(), st.trained_rows);
    stream.append(200, Concept::Noise, 99).await;
    assert!(trained(&model_loop.tick().await.unwrap()).is_some());
    assert_eq!(
        state::load(store.as_ref(), "fraud").unwrap().drift_retries,
        1
    );
}
