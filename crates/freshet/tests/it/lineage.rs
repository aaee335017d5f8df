//! Lineage both ways over HTTP and the CLI, with auth on: a prediction leads up to the
//! version that made it, its run, the table version and the sources it learnt from; a
//! table version leads down to the versions trained on it, the periods they served
//! (with who approved) and the predictions they made; the champion at a time.

use crate::support::{Options, TestServer};
use freshet_core::SystemClock;
use freshet_learn::model::{Model, ModelStamp};
use freshet_serve::router::ShadowByDefault;
use serde_json::{Value, json};
use std::time::Duration;

const STREAMS: &str = "  s:
    source: { type: http }
    schema:
      fields:
        - { name: amount, type: float, required: true }
        - { name: merchant, type: string }
        - { name: is_fraud, type: bool }
models:
  fraud:
    stream: s
    label: is_fraud
    governance: { risk_tier: high, owner: risk-team }
";

const AUTH: &str = "auth: { enabled: true }
approvals: { required_tiers: [high], ttl_hours: 24 }
";

async fn send(
    srv: &TestServer,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = srv.client.request(method, format!("{}{path}", srv.url()));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(srv: &TestServer, token: Option<&str>, path: &str) -> (u16, Value) {
    send(srv, token, reqwest::Method::GET, path, None).await
}

async fn token(srv: &TestServer, admin: &str, name: &str, role: &str) -> String {
    let (s, v) = send(
        srv,
        Some(admin),
        reqwest::Method::POST,
        "/v1/tokens",
        Some(json!({ "name": name, "roles": [role] })),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

fn events(n: usize, offset: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                let fraud = (i + offset).is_multiple_of(5);
                let merchant = ["fuel", "grocery"][i % 2];
                json!({
                    "amount": if fraud { 900.0 } else { 20.0 } + (i % 7) as f64,
                    "merchant": merchant,
                    "is_fraud": fraud
                })
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lineage_leads_from_a_prediction_to_its_data_and_from_data_to_every_answer() {
    let mut opts = Options::new(STREAMS);
    opts.extra_yaml = AUTH.to_string();
    let srv = TestServer::start_with(opts).await;
    let rt = srv.runtime();
    let file = srv.dir.path().join(".freshet/admin.token");
    freshet::governance::ensure_admin_token(&rt.governance, &file, "test").expect("admin");
    let admin = std::fs::read_to_string(&file)
        .expect("read")
        .trim()
        .to_string();
    let viewer = token(&srv, &admin, "vera", "viewer").await;
    let olga = token(&srv, &admin, "olga", "operator").await;
    let carol = token(&srv, &admin, "carol", "approver").await;
    let producer = token(&srv, &admin, "pete", "producer").await;
    let scorer = token(&srv, &admin, "sam", "scorer").await;

    // Two commits of the stream: 300 rows, then 200.
    for (n, off) in [(300, 0), (200, 300)] {
        let (s, v) = send(
            &srv,
            Some(&producer),
            reqwest::Method::POST,
            "/v1/streams/s/events",
            Some(events(n, off)),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let table = srv.table("events/s").await;
    let info = table.info(None).await.expect("info");
    assert_eq!(info.rows, 500);
    let first_commit = info.version - 1;

    // v1 learns the table's newest version, as the loop's built-in job does.
    let rows: Vec<Value> = srv.rows("events/s").await;
    assert_eq!(rows.len(), 500);
    let spec = rt.config.models["fraud"].clone();
    let fields = freshet_core::Schema::new(vec![
        freshet_core::Field::new("amount", freshet_core::FieldType::Float),
        freshet_core::Field::new("merchant", freshet_core::FieldType::String),
        freshet_core::Field::new("is_fraud", freshet_core::FieldType::Bool),
    ]);
    let resolved = spec.resolve("fraud", &fields).expect("resolve");
    let model = Model::new(&resolved, &fields, ModelStamp::new(&SystemClock)).expect("model");
    let outcome =
        freshet_learn::train::train_with_holdout(model, &rows, 0.2, |_| {}).expect("train");
    let lineage = freshet_control::publish::Lineage {
        table: "events/s".into(),
        table_uri: info.uri.clone(),
        version: info.version,
        rows: info.rows,
    };
    let v1 = freshet_control::publish::publish(
        rt.tracking.as_ref(),
        rt.artifacts.as_ref(),
        "fraud",
        &outcome,
        &lineage,
        0,
    )
    .expect("publish")
    .version;

    // Champion only with a second person's approval.
    let before_promotion = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let alias = json!({ "name": "fraud", "alias": "champion", "version": v1.to_string() });
    let path = "/api/2.0/mlflow/registered-models/alias";
    let (s, v) = send(
        &srv,
        Some(&olga),
        reqwest::Method::POST,
        path,
        Some(alias.clone()),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (_, list) = get(&srv, Some(&carol), "/v1/approvals?state=pending").await;
    let id = list["approvals"][0]["id"].as_str().expect("id").to_string();
    let (s, v) = send(
        &srv,
        Some(&carol),
        reqwest::Method::POST,
        &format!("/v1/approvals/{id}/approve"),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = send(&srv, Some(&olga), reqwest::Method::POST, path, Some(alias)).await;
    assert_eq!(s, 200, "{v}");
    rt.scorer
        .endpoints
        .refresh(
            rt.tracking.as_ref(),
            rt.artifacts.as_ref(),
            &ShadowByDefault,
        )
        .expect("refresh");

    // One prediction.
    let r = srv
        .client
        .post(format!("{}/serving-endpoints/fraud/invocations", srv.url()))
        .bearer_auth(&scorer)
        .json(&json!({"dataframe_records": [{"amount": 950.0, "merchant": "fuel"}, {"amount": 20.0, "merchant": "fuel"}]}))
        .send()
        .await
        .expect("score");
    assert_eq!(r.status().as_u16(), 200);
    let request_id = r.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_string();
    rt.capture.shutdown().await;

    // Up from the prediction.
    let (s, up) = get(
        &srv,
        Some(&viewer),
        &format!("/v1/lineage/models/fraud/requests/{request_id}"),
    )
    .await;
    assert_eq!(s, 200, "{up}");
    assert_eq!(
        up["answers"],
        json!([{ "version": v1, "variant": "champion", "rows": 2 }]),
        "{up}"
    );
    let version = &up["version"];
    assert_eq!(version["version"], v1);
    assert_eq!(version["trained_on"]["table"], "events/s");
    assert_eq!(version["trained_on"]["table_version"], info.version);
    assert_eq!(version["trained_on"]["window_rows"], 500);
    assert_eq!(
        version["trained_on"]["sources"],
        json!({ "http": 500 }),
        "{up}"
    );
    let run_id = version["run_id"].as_str().expect("run").to_string();
    let (s, run) = get(
        &srv,
        Some(&viewer),
        &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"),
    )
    .await;
    assert_eq!(s, 200, "the run lineage names is there: {run}");
    let served = version["served"].as_array().expect("served");
    assert_eq!(served.len(), 1, "{up}");
    assert_eq!(served[0]["alias"], "champion");
    assert_eq!(served[0]["approved_by"], "token:carol");
    assert!(served[0]["to_ms"].is_null(), "still champion");
    assert_eq!(version["predictions"]["rows"], 2);
    // Without naming the model, the same answer.
    let (s, any) = get(
        &srv,
        Some(&viewer),
        &format!("/v1/lineage/requests/{request_id}"),
    )
    .await;
    assert_eq!((s, &any["version"]["version"]), (200, &json!(v1)), "{any}");

    // Down from the first commit: v1's window holds its rows; a later commit's rows
    // reached no version.
    let (s, down) = get(
        &srv,
        Some(&viewer),
        &format!("/v1/lineage/streams/s/versions/{first_commit}"),
    )
    .await;
    assert_eq!(s, 200, "{down}");
    assert_eq!(down["rows_added"], 300);
    let versions: Vec<i64> = down["versions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|v| v["version"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(versions, [v1]);
    assert_eq!(down["versions"][0]["predictions"]["rows"], 2);
    let (s, v) = send(
        &srv,
        Some(&producer),
        reqwest::Method::POST,
        "/v1/streams/s/events",
        Some(events(10, 0)),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let latest = table.info(None).await.expect("info").version;
    let (s, later) = get(
        &srv,
        Some(&viewer),
        &format!("/v1/lineage/streams/s/versions/{latest}"),
    )
    .await;
    assert_eq!(
        (s, later["versions"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{later}"
    );

    // The champion at a time: none before the promotion, v1 after.
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let q = |t: String| {
        format!(
            "/v1/lineage/models/fraud/champion?at={}",
            t.replace('+', "%2B")
        )
    };
    let (s, then) = get(&srv, Some(&viewer), &q(at(before_promotion))).await;
    assert_eq!((s, &then["period"]), (200, &Value::Null), "{then}");
    let (s, now) = get(&srv, Some(&viewer), &q(at(chrono::Utc::now()))).await;
    assert_eq!((s, &now["period"]["version"]), (200, &json!(v1)), "{now}");

    // Mistakes are 4xx naming the problem; no credentials is 401.
    let (s, e) = get(
        &srv,
        Some(&viewer),
        "/v1/lineage/models/fraud/champion?at=yesterday",
    )
    .await;
    assert_eq!(s, 400, "{e}");
    assert!(
        e.to_string()
            .contains("at: 'yesterday' is not an RFC 3339 time"),
        "{e}"
    );
    let (s, _) = get(&srv, Some(&viewer), "/v1/lineage/models/fraud/versions/99").await;
    assert_eq!(s, 404);
    let (s, _) = get(&srv, Some(&viewer), "/v1/lineage/models/fraud/versions/one").await;
    assert_eq!(s, 400);
    let (s, _) = get(&srv, Some(&viewer), "/v1/lineage/requests/no-such-request").await;
    assert_eq!(s, 404);
    let (s, _) = get(
        &srv,
        None,
        &format!("/v1/lineage/models/fraud/versions/{v1}"),
    )
    .await;
    assert_eq!(s, 401);

    // The CLI says the same for people.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_freshet"))
            .arg("--config")
            .arg(srv.dir.path().join("freshet.yaml"))
            .args(["lineage"])
            .args(args)
            .args(["--url", &srv.url(), "--token", &viewer])
            .output()
            .expect("run freshet lineage");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    let text = cli(&["request", &request_id]);
    assert!(
        text.contains(&format!("scored by v{v1} as champion (2 rows)")),
        "{text}"
    );
    assert!(
        text.contains(&format!("learnt from events/s@v{}", info.version)),
        "{text}"
    );
    assert!(text.contains("500 rows from http"), "{text}");
    assert!(
        text.contains("champion from ") && text.contains(", approved by token:carol"),
        "{text}"
    );
    let text = cli(&["champion", "fraud"]);
    assert!(
        text.contains("champion of fraud at ") && text.contains(&format!(": v{v1} ")),
        "{text}"
    );
    let text = cli(&["table", "s", &latest.to_string()]);
    assert!(
        text.contains("no model version has learnt from it yet"),
        "{text}"
    );
    srv.shutdown().await;
}
