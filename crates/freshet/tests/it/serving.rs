//! Serving in-process: every scoring format and its mistakes, the champion alias moved
//! back and forth under load with no failed request, shadow traffic that never changes
//! an answer, and inference capture that keeps one row per prediction sent.

use crate::support::TestServer;
use freshet_core::model_spec::ModelSpec;
use freshet_core::{Field, FieldType, Schema, SystemClock};
use freshet_learn::model::{Model, ModelStamp};
use freshet_serve::router::ShadowByDefault;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const STREAMS: &str =
    "  s:\n    source: { type: http }\n    schema: { fields: [ { name: x, type: int } ] }\n";

fn schema() -> Schema {
    crate::support::payments_schema()
}

/// Rows where fraud is a large amount; `flip` inverts the concept (a worse model).
fn rows(n: usize, flip: bool) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let fraud = i % 5 == 0;
            let amount = if fraud {
                900.0 + (i % 13) as f64
            } else {
                20.0 + (i % 17) as f64
            };
            let merchant = ["grocery", "fuel", "travel"][i % 3];
            json!({
                "amount": amount,
                "merchant": merchant,
                "is_fraud": fraud != flip,
            })
        })
        .collect()
}

/// Train and register a version of `name`; returns its number.
fn publish_version(srv: &TestServer, name: &str, learner: &str, flip: bool) -> i64 {
    let spec: ModelSpec = serde_json::from_value(
        json!({"stream": "s", "label": "is_fraud", "learner": {"type": learner}}),
    )
    .unwrap();
    let resolved = spec.resolve(name, &schema()).unwrap();
    let model = Model::new(&resolved, &schema(), ModelStamp::new(&SystemClock)).unwrap();
    crate::support::publish_trained(srv, name, model, &rows(600, flip))
}

fn set_alias(srv: &TestServer, name: &str, alias: &str, version: i64) {
    let rt = srv.runtime();
    rt.tracking.set_alias(name, alias, version).unwrap();
    rt.scorer
        .endpoints
        .refresh(
            rt.tracking.as_ref(),
            rt.artifacts.as_ref(),
            &ShadowByDefault,
        )
        .unwrap();
}

async fn post(
    c: &reqwest::Client,
    url: String,
    content_type: &str,
    body: String,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = c
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

fn json_of(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_scores_and_every_mistake_is_a_clear_400() {
    let srv = TestServer::start(STREAMS).await;
    let v = publish_version(&srv, "fraud", "logistic_regression", false);
    set_alias(&srv, "fraud", "champion", v);
    let c = reqwest::Client::new();
    let inv = format!("{}/serving-endpoints/fraud/invocations", srv.url());
    let j = "application/json";
    let bodies = [
        (j, json!({"dataframe_split": {"columns": ["amount", "merchant"], "data": [[950.0, "fuel"], [25.0, "grocery"]]}}).to_string()),
        (j, json!({"dataframe_records": [{"amount": 950.0, "merchant": "fuel"}, {"amount": 25.0, "merchant": "grocery"}]}).to_string()),
        (j, json!({"instances": [{"amount": 950.0, "merchant": "fuel"}, {"amount": 25.0, "merchant": "grocery"}]}).to_string()),
        (j, json!({"inputs": {"amount": [950.0, 25.0], "merchant": ["fuel", "grocery"]}}).to_string()),
        ("text/csv", "merchant,amount\nfuel,950.0\ngrocery,25.0\n".to_string()),
    ];
    for (ct, body) in bodies {
        let (s, h, b) = post(&c, inv.clone(), ct, body.clone()).await;
        assert_eq!(s, 200, "{body}: {}", String::from_utf8_lossy(&b));
        let out = json_of(&b);
        assert_eq!(out["predictions"], json!([true, false]), "{body}: {out}");
        assert_eq!(out["version"], json!(v.to_string()));
        assert!(out["request_id"].as_str().is_some_and(|r| !r.is_empty()));
        assert_eq!(out["probabilities"].as_array().map(Vec::len), Some(2));
        assert_eq!(h.get("x-model-version").unwrap(), &v.to_string());
    }
    let oip = format!("{}/v2/models/fraud/infer", srv.url());
    let body = json!({"id": "mine-1", "inputs": [
        {"name": "amount", "shape": [2], "datatype": "FP64", "data": [950.0, 25.0]},
        {"name": "merchant", "shape": [2], "datatype": "BYTES", "data": ["fuel", "grocery"]}]});
    let (s, _, b) = post(&c, oip.clone(), j, body.to_string()).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let out = json_of(&b);
    assert_eq!(out["model_version"], json!(v.to_string()));
    // The caller's id comes back as the answer's (the protocol); Freshet's own beside it.
    assert_eq!(out["id"], json!("mine-1"), "{out}");
    assert!(
        out["parameters"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty() && r != "mine-1")
    );
    let preds = out["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "predictions")
        .unwrap();
    assert_eq!(preds["data"], json!([true, false]));
    let (s, _, b) = post(
        &c,
        format!("{}/v2/models/fraud/versions/{v}/infer", srv.url()),
        j,
        body.to_string(),
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    let meta = c
        .get(format!("{}/v2/models/fraud", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(meta.status().as_u16(), 200);
    let meta: Value = meta.json().await.unwrap();
    assert_eq!(meta["name"], "fraud");
    for p in [
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/fraud/ready",
    ] {
        assert_eq!(
            c.get(format!("{}{p}", srv.url()))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            200,
            "{p}"
        );
    }

    let secret = "4111111111111111";
    let mistakes = [
        (inv.clone(), j, json!({"dataframe_records": [{"amount": 1.0}]}).to_string(), "merchant"),
        (inv.clone(), j, json!({"dataframe_records": [{"amount": 1.0, "merchant": "fuel", "card": secret}]}).to_string(), "card"),
        (inv.clone(), j, json!({"dataframe_records": [{"amount": secret.to_string() + "x", "merchant": "fuel"}]}).to_string(), "amount"),
        (inv.clone(), j, json!({"dataframe_split": {"columns": ["amount", "merchant"], "data": [[1.0]]}}).to_string(), "row"),
        (inv.clone(), "text/csv", format!("amount\n{secret}x\n"), "merchant"),
        (inv.clone(), j, "{not json".to_string(), "line"),
        (oip.clone(), j, json!({"inputs": [{"name": "amount", "shape": [1], "datatype": "BYTES", "data": [secret]}, {"name": "merchant", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}).to_string(), "amount"),
    ];
    for (url, ct, body, names) in mistakes {
        let (s, _, b) = post(&c, url, ct, body.clone()).await;
        let text = String::from_utf8_lossy(&b).to_string();
        assert_eq!(s, 400, "{body}: {text}");
        assert!(text.contains(names), "{body}: {text}");
        assert!(!text.contains(secret), "the value leaked: {text}");
    }
    let (s, _, b) = post(
        &c,
        format!("{}/serving-endpoints/nope/invocations", srv.url()),
        j,
        "{}".into(),
    )
    .await;
    assert_eq!(s, 404, "{}", String::from_utf8_lossy(&b));
    let (s, _, b) = post(
        &c,
        format!("{}/v2/models/fraud/versions/99/infer", srv.url()),
        j,
        body.to_string(),
    )
    .await;
    assert_eq!(s, 400);
    // The Open Inference Protocol's error body: `{"error": "<message>"}`.
    let e = json_of(&b);
    assert!(
        e["error"].as_str().is_some_and(|m| m.contains("version")),
        "{e}"
    );
    let (s, _, b) = post(
        &c,
        format!("{}/v2/models/nope/infer", srv.url()),
        j,
        body.to_string(),
    )
    .await;
    assert_eq!(s, 404);
    assert!(
        json_of(&b)["error"].is_string(),
        "{}",
        String::from_utf8_lossy(&b)
    );
    // Labels and performance only for a model declared or served: no table is made
    // under a name a caller picks.
    let (s, _, b) = post(
        &c,
        format!("{}/v1/models/ghost/feedback", srv.url()),
        j,
        json!({"request_id": "r1", "label": true}).to_string(),
    )
    .await;
    assert_eq!(s, 404, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("neither declared, registered nor served"));
    let r = c
        .get(format!("{}/v1/models/ghost/performance", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = c
        .get(format!("{}/v1/models/fraud/performance", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Caller ids in headers are bounded like their body forms.
    let ok = json!({"dataframe_records": [{"amount": 950.0, "merchant": "fuel"}]}).to_string();
    for header in ["x-client-request-id", "x-routing-key"] {
        for (len, want) in [(256, 200), (257, 400)] {
            let r = c
                .post(inv.clone())
                .header("content-type", j)
                .header(header, "i".repeat(len))
                .body(ok.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), want, "{header} of {len} bytes");
            if want == 400 {
                let text = r.text().await.unwrap();
                assert!(text.contains(header), "{text}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_champion_moves_fifty_times_under_load_without_a_failed_request() {
    let srv = TestServer::start(STREAMS).await;
    let v1 = publish_version(&srv, "fraud", "logistic_regression", false);
    let v2 = publish_version(&srv, "fraud", "gaussian_nb", false);
    set_alias(&srv, "fraud", "champion", v1);
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let url = format!("{}/serving-endpoints/fraud/invocations", srv.url());
    let mut clients = Vec::new();
    for k in 0..4 {
        let (stop, ok, url) = (stop.clone(), ok.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let body =
                    json!({"dataframe_records": [{"amount": 10.0 * k as f64, "merchant": "fuel"}]});
                let r = c
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .expect("no transport error");
                assert_eq!(r.status().as_u16(), 200, "a request failed during a swap");
                let out: Value = r.json().await.unwrap();
                seen.insert(out["version"].as_str().unwrap().parse::<i64>().unwrap());
                ok.fetch_add(1, Ordering::Relaxed);
            }
            seen
        }));
    }
    for i in 0..50 {
        set_alias(&srv, "fraud", "champion", if i % 2 == 0 { v2 } else { v1 });
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut versions = std::collections::BTreeSet::new();
    for c in clients {
        versions.extend(c.await.unwrap());
    }
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "too little traffic to mean anything"
    );
    assert_eq!(versions, [v1, v2].into_iter().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_never_changes_an_answer_and_every_prediction_is_captured() {
    let srv = TestServer::start(STREAMS).await;
    let v1 = publish_version(&srv, "fraud", "logistic_regression", false);
    let v2 = publish_version(&srv, "fraud", "logistic_regression", true);
    set_alias(&srv, "fraud", "champion", v1);
    let c = reqwest::Client::new();
    let url = format!("{}/serving-endpoints/fraud/invocations", srv.url());
    let requests: Vec<String> = (0..40)
        .map(|i| {
            json!({"dataframe_records": [
                {"amount": (i * 37 % 1000) as f64, "merchant": "fuel"},
                {"amount": 5.0, "merchant": "travel"}]})
            .to_string()
        })
        .collect();
    let strip = |b: &[u8]| {
        let mut v = json_of(b);
        v.as_object_mut().unwrap().remove("request_id");
        v.to_string()
    };
    let mut alone = Vec::new();
    for r in &requests {
        let (s, _, b) = post(&c, url.clone(), "application/json", r.clone()).await;
        assert_eq!(s, 200);
        alone.push(strip(&b));
    }
    // The challenger (a flipped, worse model) shadows: answers stay the champion's.
    set_alias(&srv, "fraud", "challenger", v2);
    for (r, expected) in requests.iter().zip(&alone) {
        let (s, h, b) = post(&c, url.clone(), "application/json", r.clone()).await;
        assert_eq!(s, 200);
        assert_eq!(h.get("x-model-variant").unwrap(), "champion");
        assert_eq!(&strip(&b), expected, "shadow changed an answer");
    }
    // The status view shows both versions with their traffic.
    let st: Value = c
        .get(format!("{}/v1/models/fraud/status", srv.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["served"], true);
    let versions = st["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{st}");
    assert_eq!(versions[0]["role"], "champion");
    assert_eq!(versions[0]["last_minute"]["requests"], 80);
    assert_eq!(versions[1]["role"], "challenger (shadow)");
    assert_eq!(versions[1]["last_minute"]["requests"], 40);
    assert_eq!(versions[0]["last_minute"]["errors"], 0);
    // Load: many concurrent requests, then every prediction sent is a captured row.
    let mut tasks = Vec::new();
    for k in 0..8 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut rows = 0u64;
            for i in 0..50 {
                let body = json!({"dataframe_records": [{"amount": (k * 50 + i) as f64, "merchant": "fuel"}]});
                let r = c.post(&url).json(&body).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200);
                rows += 1;
            }
            rows
        }));
    }
    let mut sent_rows = 80 * 2;
    for t in tasks {
        sent_rows += t.await.unwrap();
    }
    let rt = srv.runtime();
    rt.capture.shutdown().await;
    assert_eq!(rt.capture.dropped("fraud"), 0);
    let captured = srv.rows("inference/fraud").await;
    let count = |variant: &str| captured.iter().filter(|r| r["variant"] == variant).count() as u64;
    assert_eq!(
        count("champion"),
        sent_rows,
        "one captured row per prediction sent"
    );
    // Every request after the challenger arrived was shadowed, row for row.
    assert_eq!(count("shadow"), sent_rows - 80);
    assert!(
        captured
            .iter()
            .filter(|r| r["variant"] == "shadow")
            .all(|r| r["version"] == v2)
    );
}

/// The fraud stream and model with `sinks` (YAML list items, indented six spaces).
fn fraud_with_sinks(sinks: &str) -> String {
    format!(
        r#"  s:
    source: {{ type: http }}
    schema: {{ fields: [ {{ name: amount, type: float }}, {{ name: merchant, type: string }}, {{ name: is_fraud, type: bool }} ] }}
models:
  fraud:
    stream: s
    label: is_fraud
    sinks:
{sinks}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn predictions_reach_the_ndjson_file_and_the_webhook() {
    // A webhook receiver that keeps every body.
    let got: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let keep = got.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await });

    let config = fraud_with_sinks(&format!(
        "      - {{ type: ndjson, path: sinks/fraud.ndjson }}
      - {{ type: webhook, url: \"http://{hook_addr}/hook\" }}
"
    ));
    let srv = TestServer::start_with(crate::support::Options::new(&config)).await;
    let v = publish_version(&srv, "fraud", "logistic_regression", false);
    set_alias(&srv, "fraud", "champion", v);
    let c = reqwest::Client::new();
    for i in 0..10 {
        let body = json!({"client_request_id": format!("c{i}"), "dataframe_records": [{"amount": 100.0 * i as f64, "merchant": "fuel"}]});
        let r = c
            .post(format!("{}/serving-endpoints/fraud/invocations", srv.url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    srv.runtime().capture.shutdown().await;
    let file = srv.dir.path().join("sinks/fraud.ndjson");
    let mut lines = Vec::new();
    let mut hooked = 0;
    for _ in 0..100 {
        lines = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        hooked = got
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.lines().count())
            .sum::<usize>();
        if lines.len() == 10 && hooked == 10 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!((lines.len(), hooked), (10, 10));
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["model"], "fraud");
    assert_eq!(first["version"], v);
    assert!(first["features"]["amount"].is_number());
    assert!(
        first["client_request_id"]
            .as_str()
            .unwrap()
            .starts_with('c')
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_token_never_reaches_the_metrics() {
    // A receiver that knows no path: every batch is refused (404) and counted as dropped.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum::Router::new()).await });
    // Incident tools put the credential in the webhook's path and query.
    let config = fraud_with_sinks(&format!(
        "      - {{ type: webhook, url: \"http://{hook_addr}/services/T0/tok-Zq81-secret?key=qk-77-secret\", retries: 0 }}
"
    ));
    let srv = TestServer::start_with(crate::support::Options::new(&config)).await;
    let v = publish_version(&srv, "fraud", "logistic_regression", false);
    set_alias(&srv, "fraud", "champion", v);
    let r = reqwest::Client::new()
        .post(format!("{}/serving-endpoints/fraud/invocations", srv.url()))
        .json(&json!({"dataframe_records": [{"amount": 1.0, "merchant": "fuel"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let origin = format!("webhook:http://{hook_addr}");
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = srv.get("/metrics").await.text();
        if metrics.lines().any(|l| {
            l.starts_with("freshet_prediction_sink_dropped_total")
                && l.contains(&origin)
                && l.ends_with(" 1")
        }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        metrics.contains(&origin),
        "the drop is not counted under {origin}"
    );
    assert!(
        !metrics.contains("secret"),
        "a webhook token reached /metrics"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoring_inputs_go_through_the_streams_pii_policy() {
    let config = r#"  s:
    source: { type: http }
    schema: { fields: [ { name: amount, type: float }, { name: card, type: string, pii: hash }, { name: is_fraud, type: bool } ] }
models:
  fraud:
    stream: s
    label: is_fraud
    features: [ { field: amount, kind: numeric }, { field: card, kind: categorical, encoding: hash } ]
"#;
    let srv = TestServer::start_with(crate::support::Options::new(config)).await;
    let key = freshet_ingest::process::pii::PiiKey::new(
        crate::support::PII_KEY.as_bytes(),
        crate::support::PII_KEY_VERSION,
    )
    .unwrap();
    // Train on what the table holds: hashed card numbers.
    let schema = Schema::new(vec![
        Field::new("amount", FieldType::Float),
        Field::new("card", FieldType::String),
        Field::new("is_fraud", FieldType::Bool),
    ]);
    let spec = srv.runtime().config.models["fraud"].clone();
    let resolved = spec.resolve("fraud", &schema).unwrap();
    let model = Model::new(&resolved, &schema, ModelStamp::new(&SystemClock)).unwrap();
    let rows: Vec<Value> = (0..300)
        .map(|i| {
            let fraud = i % 5 == 0;
            let card = key.hash(&format!("4111{i:012}"));
            json!({"amount": if fraud { 900.0 } else { 20.0 }, "card": card, "is_fraud": fraud})
        })
        .collect();
    let v = crate::support::publish_trained(&srv, "fraud", model, &rows);
    let rt = srv.runtime();
    set_alias(&srv, "fraud", "champion", v);

    let raw = "4111000000000042";
    let r = reqwest::Client::new()
        .post(format!("{}/serving-endpoints/fraud/invocations", srv.url()))
        .json(&json!({"dataframe_records": [{"amount": 950.0, "card": raw}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    rt.capture.shutdown().await;
    let captured = srv.rows("inference/fraud").await;
    assert_eq!(captured.len(), 1);
    let features = captured[0]["features"].as_str().unwrap().to_string();
    assert!(
        !features.contains(raw),
        "the raw card number was captured: {features}"
    );
    assert!(features.contains(&key.hash(raw)), "{features}");
}
