//! Monitoring through the running loop: served traffic that leaves the champion's
//! training distribution is seen by the drift watch, shown on the management API and
//! as Prometheus series, alerted once to a webhook (not once per check), and — with the
//! `data_drift` trigger — retrains the model on the new data with no manual step.

use crate::support::{Options, TestServer, eventually, metric};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn config(hook: &str) -> String {
    format!(
        r#"  s:
    source: {{ type: http }}
    schema: {{ fields: [ {{ name: x, type: float }}, {{ name: c, type: string }}, {{ name: y, type: bool }} ] }}
models:
  m:
    stream: s
    label: y
    features: [ {{ field: x, kind: numeric }}, {{ field: c, kind: categorical }} ]
    triggers: {{ initial_rows: 400, concept_drift: none, data_drift: true, rows_after_drift: 300 }}
    monitor: {{ window_rows: 300, every_secs: 1, min_rows: 150 }}
    gates: {{ vs_champion: {{ metric: holdout_accuracy, max_drop: 1.0 }} }}
alerts:
  webhooks: [ "http://{hook}/hook" ]
  repeat_secs: 3600
"#
    )
}

/// `n` rows: `x` spread over `[lo, lo + 1)`, `c` from `cats`, `y = x > lo + 0.5`.
fn rows(n: usize, lo: f64, cats: &[&str]) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let x = lo + ((i * 37) % 1000) as f64 / 1000.0;
            json!({ "x": x, "c": cats[i % cats.len()], "y": x > lo + 0.5 })
        })
        .collect()
}

fn ndjson(rows: &[Value]) -> String {
    rows.iter().map(|r| format!("{r}\n")).collect()
}

async fn score(srv: &TestServer, rows: &[Value]) {
    let records: Vec<Value> = rows
        .iter()
        .map(|r| json!({ "x": r["x"], "c": r["c"] }))
        .collect();
    let r = srv
        .client
        .post(format!("{}/serving-endpoints/m/invocations", srv.url()))
        .header("content-type", "application/json")
        .body(json!({ "dataframe_records": records }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

async fn monitoring(srv: &TestServer) -> Value {
    srv.get("/v1/models/m/monitoring").await.json()["monitoring"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drifted_traffic_is_reported_alerted_once_and_retrains_the_model() {
    let alerts: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = alerts.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let mut opts = Options::new(&config(&hook_addr.to_string()));
    opts.start_loops = true;
    let srv = TestServer::start_with(opts).await;
    let champion = |srv: &TestServer| {
        srv.runtime()
            .tracking
            .get_version_by_alias("m", "champion")
            .map(|v| v.version)
            .ok()
    };

    // The first version, trained on x in [0, 1) with categories a and b.
    let r = srv
        .post_json("s", ndjson(&rows(500, 0.0, &["a", "b"])))
        .await;
    assert!(r.status < 300, "{}", r.text());
    assert!(
        eventually(Duration::from_secs(60), || async {
            champion(&srv) == Some(1)
        })
        .await,
        "no first champion"
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            srv.get("/v2/models/m/ready").await.status == 200
        })
        .await
    );

    // Traffic like the training data: tested, no drift.
    score(&srv, &rows(300, 0.0, &["a", "b"])).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            monitoring(&srv).await["drift"]["window_rows"].as_u64() >= Some(150)
        })
        .await,
        "no drift test: {}",
        monitoring(&srv).await
    );
    let calm = monitoring(&srv).await;
    assert_eq!(calm["drift"]["dataset"]["drifted"], false, "{calm}");
    assert_eq!(calm["drift"]["version"], 1);
    assert_eq!(calm["drift"]["features"][0]["column"], "x");
    // The SLA view of the same endpoint: the champion's latency percentiles.
    let status = srv.get("/v1/models/m/status").await.json();
    let sla = &status["versions"][0]["last_minute"];
    assert_eq!(status["versions"][0]["role"], "champion", "{status}");
    for p in ["p50_ms", "p95_ms", "p99_ms"] {
        assert!(sla[p].as_f64().is_some_and(|v| v > 0.0), "{p}: {status}");
    }
    assert!(sla["p50_ms"].as_f64() <= sla["p99_ms"].as_f64(), "{status}");

    // Traffic from elsewhere: x in [5, 6), a category never seen.
    score(&srv, &rows(300, 5.0, &["z"])).await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            monitoring(&srv).await["drift"]["dataset"]["drifted"] == true
        })
        .await,
        "drift not seen: {}",
        monitoring(&srv).await
    );
    let drifted = monitoring(&srv).await;
    for f in drifted["drift"]["features"].as_array().unwrap() {
        assert_eq!(f["drifted"], true, "{f}");
    }
    // Fewer than 1 000 reference rows: a hypothesis test, as Evidently picks.
    assert_eq!(drifted["drift"]["features"][0]["method"], "ks");
    assert_eq!(drifted["drift"]["prediction"]["column"], "prediction");

    // The same series for Prometheus.
    let text = srv.metrics().await;
    assert_eq!(
        metric(
            &text,
            "freshet_drift_detected",
            &[("model", "m"), ("column", "dataset")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "freshet_drift_share", &[("model", "m")]),
        Some(1.0)
    );
    // A column whose test changed (two categories then three: z-test, then
    // chi-square) keeps no stale series of the old one.
    let score = |method: &str| {
        metric(
            &text,
            "freshet_drift_score",
            &[("model", "m"), ("column", "c"), ("method", method)],
        )
    };
    assert_eq!(score("z_test"), None, "{text}");
    assert!(score("chi_square").is_some(), "{text}");

    // Checked again and again, alerted once.
    assert!(
        eventually(Duration::from_secs(30), || async {
            let text = srv.metrics().await;
            metric(
                &text,
                "freshet_alerts_total",
                &[
                    ("model", "m"),
                    ("kind", "data_drift"),
                    ("outcome", "folded"),
                ],
            )
            .unwrap_or(0.0)
                >= 2.0
        })
        .await,
        "the condition was not re-checked"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            !alerts.lock().unwrap().is_empty()
        })
        .await
    );
    let sent: Vec<Value> = alerts
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "data_drift")
        .cloned()
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["status"], "firing");
    assert_eq!(sent[0]["model"], "m");
    assert!(
        sent[0]["summary"]
            .as_str()
            .unwrap()
            .contains("2 of 2 features drifted"),
        "{sent:?}"
    );

    // The data_drift trigger: the loop waits for rows of the new data, then retrains.
    let state = srv.get("/v1/models/m/status").await.json();
    assert!(
        state["loop"]["drift_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("data drift")),
        "{state}"
    );
    let r = srv.post_json("s", ndjson(&rows(400, 5.0, &["z"]))).await;
    assert!(r.status < 300, "{}", r.text());
    assert!(
        eventually(Duration::from_secs(60), || async {
            srv.runtime().tracking.get_model_version("m", 2).is_ok()
        })
        .await,
        "no version 2"
    );
    let v2 = srv.runtime().tracking.get_model_version("m", 2).unwrap();
    let trigger = v2
        .tags
        .iter()
        .find(|t| t.key == "freshet.trigger")
        .map(|t| t.value.clone())
        .unwrap_or_default();
    assert!(trigger.starts_with("data drift"), "{trigger}");
    srv.shutdown().await;
}
