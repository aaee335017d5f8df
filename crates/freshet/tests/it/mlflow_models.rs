//! The model registry and the artifact proxy in-process: a model's files uploaded,
//! registered by `models:/m-…`, found by alias and downloaded again; and the hostile
//! or careless requests (escaping paths, bad versions, unknown names) answered with
//! MLflow's 4xx errors.

use crate::support::TestServer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const STREAMS: &str =
    "  s:\n    source: { type: http }\n    schema: { fields: [ { name: x, type: int } ] }\n";

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// A request written byte for byte, so that no client library normalises the path.
async fn raw_status(srv: &TestServer, method: &str, path: &str) -> u16 {
    let mut s = tokio::net::TcpStream::connect(srv.addr)
        .await
        .expect("connect");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_is_uploaded_registered_aliased_and_downloaded() {
    let srv = TestServer::start(STREAMS).await;
    let base = format!("{}/api/2.0/mlflow", srv.url());
    let art = format!("{}/api/2.0/mlflow-artifacts/artifacts", srv.url());
    let c = reqwest::Client::new();
    use reqwest::Method as M;

    let (s, run) = send(
        &c,
        M::POST,
        format!("{base}/runs/create"),
        Some(json!({"experiment_id": "0"})),
    )
    .await;
    assert_eq!(s, 200, "{run}");
    let run_id = run["run"]["info"]["run_id"].as_str().unwrap().to_string();
    let (s, m) = send(
        &c,
        M::POST,
        format!("{base}/logged-models"),
        Some(
            json!({"experiment_id": "0", "name": "model", "source_run_id": run_id,
                    "params": [{"key": "learner", "value": "logistic"}]}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{m}");
    let model_id = m["model"]["info"]["model_id"].as_str().unwrap().to_string();
    let uri = m["model"]["info"]["artifact_uri"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(m["model"]["info"]["status"], "LOGGED_MODEL_PENDING");
    let dir = uri.strip_prefix("mlflow-artifacts:/").unwrap().to_string();

    // Upload the model's files (one of them 3 MB, streamed), list and finalise.
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    for (name, bytes) in [
        ("MLmodel", b"flavors: {}\n".to_vec()),
        ("data/model.bin", big.clone()),
    ] {
        let r = c
            .put(format!("{art}/{dir}/{name}"))
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    let (s, listed) = send(&c, M::GET, format!("{art}?path={dir}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        listed["files"],
        json!([{"path": "MLmodel", "is_dir": false, "file_size": 12}, {"path": "data", "is_dir": true}])
    );
    let (s, fin) = send(
        &c,
        M::PATCH,
        format!("{base}/logged-models/{model_id}"),
        Some(json!({"model_id": model_id, "status": "LOGGED_MODEL_READY"})),
    )
    .await;
    assert_eq!(
        (s, fin["model"]["info"]["status"].as_str()),
        (200, Some("LOGGED_MODEL_READY"))
    );

    // Register twice (the name once), alias, and resolve the alias to the files.
    let (s, _) = send(
        &c,
        M::POST,
        format!("{base}/registered-models/create"),
        Some(json!({"name": "fraud"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, again) = send(
        &c,
        M::POST,
        format!("{base}/registered-models/create"),
        Some(json!({"name": "fraud"})),
    )
    .await;
    assert_eq!(
        (s, again["error_code"].as_str()),
        (400, Some("RESOURCE_ALREADY_EXISTS"))
    );
    for _ in 0..2 {
        let (s, v) = send(
            &c,
            M::POST,
            format!("{base}/model-versions/create"),
            Some(json!({"name": "fraud", "source": format!("models:/{model_id}"), "model_id": model_id})),
        )
        .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["model_version"]["run_id"], run_id.as_str());
    }
    let (s, _) = send(
        &c,
        M::POST,
        format!("{base}/registered-models/alias"),
        Some(json!({"name": "fraud", "alias": "champion", "version": "2"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = send(
        &c,
        M::GET,
        format!("{base}/registered-models/alias?name=fraud&alias=champion"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["model_version"]["version"].as_str()),
        (200, Some("2"))
    );
    assert_eq!(v["model_version"]["aliases"], json!(["champion"]));
    let (s, d) = send(
        &c,
        M::GET,
        format!("{base}/model-versions/get-download-uri?name=fraud&version=2"),
        None,
    )
    .await;
    assert_eq!((s, d["artifact_uri"].as_str()), (200, Some(uri.as_str())));
    let got = c
        .get(format!("{art}/{dir}/data/model.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), big.as_slice());

    let (s, found) = send(
        &c,
        M::GET,
        format!(
            "{base}/model-versions/search?filter=name%3D%27fraud%27&order_by=version_number%20DESC"
        ),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let versions: Vec<&str> = found["model_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, vec!["2", "1"]);
    let (s, lm) = send(&c, M::GET, format!("{base}/logged-models/{model_id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(
        lm["model"]["info"]["registrations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_and_artifact_mistakes_are_4xx() {
    let srv = TestServer::start(STREAMS).await;
    let base = format!("{}/api/2.0/mlflow", srv.url());
    let c = reqwest::Client::new();
    use reqwest::Method as M;

    for path in [
        "/api/2.0/mlflow-artifacts/artifacts/../escape",
        "/api/2.0/mlflow-artifacts/artifacts/a/%2e%2e/%2e%2e/escape",
        "/api/2.0/mlflow-artifacts/artifacts/a/./b",
        "/api/2.0/mlflow-artifacts/artifacts/a//b",
        "/api/2.0/mlflow-artifacts/artifacts/a%5c..%5cb",
        "/api/2.0/mlflow-artifacts/artifacts?path=/etc",
        "/api/2.0/mlflow-artifacts/artifacts?path=../..",
    ] {
        let method = if path.contains('?') { "GET" } else { "PUT" };
        assert_eq!(raw_status(&srv, method, path).await, 400, "{method} {path}");
    }
    assert!(!srv.dir.path().join("escape").exists());
    assert!(!srv.dir.path().join("freshet-data/escape").exists());

    let cases: Vec<(M, &str, Option<Value>, u16, &str)> = vec![
        (
            M::GET,
            "registered-models/get?name=nope",
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            M::GET,
            "registered-models/get",
            None,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::GET,
            "model-versions/get?name=nope&version=x",
            None,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::GET,
            "model-versions/get?name=nope&version=1",
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            M::POST,
            "registered-models/create",
            Some(json!({"name": 5})),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::POST,
            "registered-models/create",
            Some(json!({"name": "a/b"})),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::POST,
            "model-versions/create",
            Some(json!({"name": "nope", "source": "mlflow-artifacts:/x"})),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            M::POST,
            "model-versions/create",
            Some(json!({"name": "nope", "source": "/etc/passwd"})),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::GET,
            "model-versions/search?filter=bogus%20%3D%201",
            None,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::GET,
            "registered-models/search?max_results=0",
            None,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::POST,
            "logged-models",
            Some(json!({"experiment_id": "999"})),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            M::GET,
            "logged-models/m-missing",
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            M::PATCH,
            "logged-models/m-missing",
            Some(json!({"status": "NOPE"})),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            M::POST,
            "runs/outputs",
            Some(json!({"run_id": "nope", "models": []})),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            M::POST,
            "registered-models/alias",
            Some(json!({"name": "x", "alias": "latest", "version": "1"})),
            400,
            "INVALID_PARAMETER_VALUE",
        ),
    ];
    for (method, path, body, status, code) in cases {
        let (s, v) = send(&c, method.clone(), format!("{base}/{path}"), body).await;
        assert_eq!(
            (s, v["error_code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {v}"
        );
    }
}
