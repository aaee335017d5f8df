//! Rollouts through the real serving path: the controller judges what serving recorded
//! (and the labels fed back), and moves the registry's aliases. A challenger that is
//! worse on labels is rolled back, an equal one goes through shadow and canary to
//! promotion and its bake, and one whose labels never arrive pauses for a person. A
//! promoted version that does worse on live labels than the champion it replaced is
//! rolled back during its bake by the server's own controller.

use crate::support::{Options, TestServer, eventually};
use freshet_core::model_spec::ModelSpec;
use freshet_core::{Schema, SystemClock};
use freshet_learn::model::{Model, ModelStamp};
use freshet_serve::evidence::{LABELS_FLOWING_MS, ServedEvidence, phase_label_figures};
use freshet_serve::rollout::{Phase, RolloutController, Transition, load_state};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// The stream, and two models whose rollouts are quick to judge.
const CONFIG: &str = r#"  s:
    source: { type: http }
    schema: { fields: [ { name: amount, type: float }, { name: merchant, type: string }, { name: is_fraud, type: bool } ] }
models:
  fraud:
    stream: s
    label: is_fraud
    rollout:
      shadow: { min_requests: 30, min_secs: 0 }
      canary: { steps: [50], min_requests: 15, min_secs: 0 }
      checks: { min_labels: 20, max_prediction_drift: 1.0 }
  churn:
    stream: s
    label: is_fraud
    rollout:
      shadow: { min_requests: 10, min_secs: 0 }
      canary: { steps: [50], min_requests: 10, min_secs: 0 }
      checks: { require_labels: true, min_labels: 5, max_label_wait_secs: 1 }
"#;

fn schema() -> Schema {
    crate::support::payments_schema()
}

fn truth(amount: f64) -> bool {
    amount > 500.0
}

fn rows(flip: bool) -> Vec<Value> {
    (0..600)
        .map(|i| {
            let amount = ((i * 131) % 1000) as f64;
            let merchant = ["grocery", "fuel", "travel"][i % 3];
            json!({"amount": amount, "merchant": merchant, "is_fraud": truth(amount) != flip})
        })
        .collect()
}

fn publish_version(srv: &TestServer, name: &str, flip: bool) -> i64 {
    let spec: ModelSpec =
        serde_json::from_value(json!({"stream": "s", "label": "is_fraud"})).unwrap();
    let resolved = spec.resolve(name, &schema()).unwrap();
    let model = Model::new(&resolved, &schema(), ModelStamp::new(&SystemClock)).unwrap();
    crate::support::publish_trained(srv, name, model, &rows(flip))
}

fn refresh(srv: &TestServer) {
    let rt = srv.runtime();
    rt.scorer
        .endpoints
        .refresh(
            rt.tracking.as_ref(),
            rt.artifacts.as_ref(),
            &freshet_serve::rollout::RolloutModes,
        )
        .unwrap();
}

/// Score `n` requests (each with its own client id) and feed back every true label
/// when `labels` is set.
async fn traffic(srv: &TestServer, model: &str, n: usize, offset: usize, labels: bool) {
    let c = reqwest::Client::new();
    let mut feedback = Vec::new();
    for i in 0..n {
        let amount = (((offset + i) * 37) % 1000) as f64;
        let id = format!("{model}-{}", offset + i);
        let body = json!({"client_request_id": id, "dataframe_records": [{"amount": amount, "merchant": "fuel"}]});
        let r = c
            .post(format!(
                "{}/serving-endpoints/{model}/invocations",
                srv.url()
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        feedback.push(json!({"client_request_id": id, "label": truth(amount)}));
    }
    if labels {
        let r = c
            .post(format!("{}/v1/models/{model}/feedback", srv.url()))
            .json(&feedback)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    }
}

/// One controller tick on fresh evidence, as the server's rollout task takes it: the
/// labels of the predictions made since the phase began (joined once the capture
/// committed and `want_labels` arrived for two versions).
async fn tick(
    srv: &TestServer,
    controller: &RolloutController,
    model: &str,
    want_labels: u64,
) -> Transition {
    let rt = srv.runtime();
    let since = load_state(rt.tracking.as_ref(), model)
        .unwrap()
        .map_or(0, |s| s.phase_started_ms);
    let (mut labels, mut window) = Default::default();
    for _ in 0..100 {
        let recent = chrono::Utc::now().timestamp_millis() - LABELS_FLOWING_MS;
        let join = freshet_serve::feedback::performance_since(&rt.lake, model, since, recent)
            .await
            .unwrap();
        (labels, window) = phase_label_figures(model, since, &join);
        let enough = labels.values().filter(|(n, _)| *n >= want_labels).count() >= 2;
        if want_labels == 0 || enough {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let windows = HashMap::from([(model.to_string(), window)]);
    let now = chrono::Utc::now().timestamp_millis();
    let source = ServedEvidence {
        endpoints: &rt.scorer.endpoints,
        labels: &labels,
        windows: &windows,
        now_ms: now,
    };
    let t = controller
        .tick(rt.tracking.as_ref(), &source, model, now)
        .unwrap();
    refresh(srv);
    t
}

fn alias(srv: &TestServer, model: &str, alias: &str) -> Option<i64> {
    srv.runtime()
        .tracking
        .get_version_by_alias(model, alias)
        .ok()
        .map(|v| v.version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worse_rolls_back_equal_is_promoted_and_unlabelled_pauses() {
    let srv = TestServer::start_with(Options::new(CONFIG)).await;
    let controller = RolloutController::from_models(&srv.runtime().config.models);
    let store = srv.runtime().tracking.clone();
    let good = publish_version(&srv, "fraud", false);
    let worse = publish_version(&srv, "fraud", true);
    let equal = publish_version(&srv, "fraud", false);
    store.set_alias("fraud", "champion", good).unwrap();
    refresh(&srv);

    // A challenger that is wrong on every label is rolled back after its shadow phase.
    controller
        .start(
            store.as_ref(),
            "fraud",
            worse,
            chrono::Utc::now().timestamp_millis(),
        )
        .unwrap();
    refresh(&srv);
    traffic(&srv, "fraud", 40, 0, true).await;
    match tick(&srv, &controller, "fraud", 20).await {
        Transition::Rollback(reason) => assert!(reason.contains("label"), "{reason}"),
        other => panic!("expected a rollback, got {other:?}"),
    }
    assert_eq!(
        (
            alias(&srv, "fraud", "champion"),
            alias(&srv, "fraud", "challenger")
        ),
        (Some(good), None)
    );

    // An equal challenger goes shadow → canary 50% (where, labels flowing, it waits
    // for its own) → promoted, and bakes against the champion it replaced.
    controller
        .start(
            store.as_ref(),
            "fraud",
            equal,
            chrono::Utc::now().timestamp_millis(),
        )
        .unwrap();
    refresh(&srv);
    traffic(&srv, "fraud", 40, 1000, true).await;
    assert_eq!(
        tick(&srv, &controller, "fraud", 20).await,
        Transition::Enter(Phase::Canary { weight_pct: 50.0 })
    );
    traffic(&srv, "fraud", 80, 2000, true).await;
    assert_eq!(
        tick(&srv, &controller, "fraud", 20).await,
        Transition::Promote
    );
    assert_eq!(
        (
            alias(&srv, "fraud", "champion"),
            alias(&srv, "fraud", "challenger")
        ),
        (Some(equal), Some(good))
    );
    let state = load_state(store.as_ref(), "fraud").unwrap().unwrap();
    assert_eq!(state.phase, Phase::Baking);
    // Answers now come from the promoted version.
    let r: Value = reqwest::Client::new()
        .post(format!("{}/serving-endpoints/fraud/invocations", srv.url()))
        .json(&json!({"dataframe_records": [{"amount": 1.0, "merchant": "fuel"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["version"], json!(equal.to_string()));

    // Labels required but never sent: the rollout pauses for a person.
    let c1 = publish_version(&srv, "churn", false);
    let c2 = publish_version(&srv, "churn", false);
    store.set_alias("churn", "champion", c1).unwrap();
    controller
        .start(
            store.as_ref(),
            "churn",
            c2,
            chrono::Utc::now().timestamp_millis(),
        )
        .unwrap();
    refresh(&srv);
    traffic(&srv, "churn", 15, 0, false).await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    match tick(&srv, &controller, "churn", 0).await {
        Transition::Pause(reason) => assert!(reason.contains("label"), "{reason}"),
        other => panic!("expected a pause, got {other:?}"),
    }
    assert_eq!(alias(&srv, "churn", "champion"), Some(c1));
}

/// A model whose shadow phase never ends on its own, so that its candidate reaches
/// the bake only by hand, and whose bake is judged on 20 labels each.
const BAKE_CONFIG: &str = r#"  s:
    source: { type: http }
    schema: { fields: [ { name: amount, type: float }, { name: merchant, type: string }, { name: is_fraud, type: bool } ] }
models:
  fraud:
    stream: s
    label: is_fraud
    rollout:
      shadow: { min_requests: 1000000, min_secs: 0 }
      canary: { steps: [] }
      checks: { max_prediction_drift: 1.0 }
      bake: { min_labels: 20, max_secs: 600 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_version_worse_on_live_labels_is_rolled_back_during_its_bake() {
    let mut opts = Options::new(BAKE_CONFIG);
    // The server's own rollout task judges the bake (every 200 ms).
    opts.start_loops = true;
    let srv = TestServer::start_with(opts).await;
    let store = srv.runtime().tracking.clone();
    let good = publish_version(&srv, "fraud", false);
    let worse = publish_version(&srv, "fraud", true);
    store.set_alias("fraud", "champion", good).unwrap();
    // What `freshet rollout start` and `freshet rollout promote` do.
    let controller = RolloutController::from_models(&srv.runtime().config.models);
    let now = || chrono::Utc::now().timestamp_millis();
    controller
        .start(store.as_ref(), "fraud", worse, now())
        .unwrap();
    let state = controller.promote(store.as_ref(), "fraud", now()).unwrap();
    assert_eq!(state.phase, Phase::Baking);
    refresh(&srv);

    // Users get the promoted version's answers, the previous champion scores a mirrored
    // copy, and the truth comes back as feedback.
    traffic(&srv, "fraud", 40, 0, true).await;
    let rolled_back = eventually(Duration::from_secs(20), || {
        let store = store.clone();
        async move {
            load_state(store.as_ref(), "fraud")
                .ok()
                .flatten()
                .is_some_and(|s| s.phase == Phase::RolledBack)
        }
    })
    .await;
    let state = load_state(store.as_ref(), "fraud").unwrap().unwrap();
    assert!(rolled_back, "not rolled back: {state:?}");
    assert_eq!(
        (
            alias(&srv, "fraud", "champion"),
            alias(&srv, "fraud", "challenger")
        ),
        (Some(good), None)
    );
    let last = state.decisions.last().unwrap();
    assert_eq!((last.from.as_str(), last.manual), ("baking", false));
    assert!(
        last.reason
            .starts_with(&format!("bake: v{worse} scored 0.")),
        "{}",
        last.reason
    );
    assert!(
        last.reason.contains(&format!("live labels, v{good} ")),
        "{}",
        last.reason
    );
    assert!(
        last.reason.contains("on the same period (drop ") && last.reason.ends_with(" > 0.02)"),
        "{}",
        last.reason
    );
    assert!(
        last.evidence
            .as_deref()
            .is_some_and(|e| e.contains(&format!("v{good} (shadow)"))),
        "{last:?}"
    );
    srv.shutdown().await;
}
