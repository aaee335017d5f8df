//! The MLflow tracking API in-process: eight concurrent clients lose nothing, and
//! client mistakes get MLflow's 4xx answers, never a 5xx.

use crate::support::TestServer;
use serde_json::{Value, json};

const STREAMS: &str =
    "  s:\n    source: { type: http }\n    schema: { fields: [ { name: x, type: int } ] }\n";

async fn call(client: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let r = client
        .post(format!("{base}/api/2.0/mlflow/{path}"))
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_logging_at_once_lose_nothing() {
    let srv = TestServer::start(STREAMS).await;
    let base = srv.url();
    let client = reqwest::Client::new();
    let (s, v) = call(
        &client,
        &base,
        "runs/create",
        json!({ "experiment_id": "0" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let run = v["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();

    let tasks: Vec<_> = (0..8)
        .map(|c| {
            let (client, base, run) = (client.clone(), base.clone(), run.clone());
            tokio::spawn(async move {
                for i in 0..100 {
                    // Alternate single metrics and small batches, as real clients do.
                    let (s, v) = if i % 2 == 0 {
                        call(&client, &base, "runs/log-metric", json!({ "run_id": run, "key": format!("c{c}"), "value": i, "timestamp": i, "step": i })).await
                    } else {
                        let metrics: Vec<Value> = (0..5).map(|j| json!({ "key": format!("c{c}"), "value": i, "timestamp": i, "step": i * 10 + j })).collect();
                        call(&client, &base, "runs/log-batch", json!({ "run_id": run, "metrics": metrics })).await
                    };
                    assert_eq!(s, 200, "{v}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client task");
    }
    for c in 0..8 {
        let r = client
            .get(format!("{base}/api/2.0/mlflow/metrics/get-history"))
            .query(&[("run_id", run.as_str()), ("metric_key", &format!("c{c}"))])
            .send()
            .await
            .expect("history");
        let v: Value = r.json().await.expect("json");
        assert_eq!(
            v["metrics"].as_array().map_or(0, Vec::len),
            50 + 50 * 5,
            "client {c}"
        );
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_mistakes_are_mlflow_4xx() {
    let srv = TestServer::start(STREAMS).await;
    let base = srv.url();
    let client = reqwest::Client::new();
    let (_, v) = call(
        &client,
        &base,
        "runs/create",
        json!({ "experiment_id": "0" }),
    )
    .await;
    let run = v["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let cases = [
        (
            "runs/log-metric",
            json!({ "run_id": "no-such-run", "key": "k", "value": 1 }),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "runs/log-metric",
            json!({ "run_id": run, "key": "k", "value": "not a number" }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-metric",
            json!({ "run_id": run, "key": 5, "value": 1 }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-parameter",
            json!({ "run_id": run, "key": "../../etc/passwd", "value": "x" }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-parameter",
            json!({ "run_id": run, "key": "/abs", "value": "x" }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-batch",
            json!({ "run_id": run, "params": (0..101).map(|i| json!({"key": format!("p{i}"), "value": "v"})).collect::<Vec<_>>() }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-batch",
            json!({ "run_id": run, "tags": (0..101).map(|i| json!({"key": format!("t{i}"), "value": "v"})).collect::<Vec<_>>() }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/update",
            json!({ "run_id": run, "status": "EXPLODED" }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "experiments/create",
            json!({ "name": "" }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "experiments/create",
            json!({ "name": "Default" }),
            400,
            "RESOURCE_ALREADY_EXISTS",
        ),
        (
            "experiments/delete",
            json!({ "experiment_id": "424242" }),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "runs/search",
            json!({ "experiment_ids": ["0"], "filter": "metrics.x > 'high'" }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/search",
            json!({ "experiment_ids": ["0"], "max_results": 0 }),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
    ];
    for (path, body, status, code) in cases {
        let (s, v) = call(&client, &base, path, body.clone()).await;
        assert_eq!(
            (s, v["error_code"].as_str()),
            (status, Some(code)),
            "{path} {body}: {v}"
        );
    }
    // Malformed JSON and a missing query parameter.
    let r = client
        .post(format!("{base}/api/2.0/mlflow/runs/log-batch"))
        .body("{oops")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    let r = client
        .get(format!("{base}/api/2.0/mlflow/runs/get"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 400);
    // The run is untouched by the rejected writes.
    let r = client
        .get(format!("{base}/api/2.0/mlflow/runs/get"))
        .query(&[("run_id", run.as_str())])
        .send()
        .await
        .expect("get");
    let v: Value = r.json().await.expect("json");
    assert!(
        v["run"]["data"]["metrics"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{v}"
    );
    assert!(
        v["run"]["data"]["params"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{v}"
    );
    srv.shutdown().await;
}
