//! Maker-checker on the MLflow ways to make a version champion (the `champion` alias,
//! the `Production` stage), over HTTP with real tokens: refused without an approval,
//! self-approval refused (admins too), an expired approval refused, a valid one lets
//! the operator through.

use crate::support::{Options, TestServer};
use serde_json::{Value, json};

pub(crate) const STREAMS: &str = "  s:
    source: { type: http }
    schema:
      fields:
        - { name: x, type: float, required: true }
        - { name: y, type: int }
models:
  fraud:
    stream: s
    label: y
    governance: { risk_tier: high, owner: risk-team }
  recs:
    stream: s
    label: y
";

pub(crate) const AUTH: &str = "auth: { enabled: true }
approvals: { required_tiers: [high], ttl_hours: 24 }
";

pub(crate) async fn send(
    srv: &TestServer,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = srv
        .client
        .request(method, format!("{}{path}", srv.url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn token(srv: &TestServer, admin: &str, name: &str, role: &str) -> String {
    let (s, v) = send(
        srv,
        admin,
        reqwest::Method::POST,
        "/v1/tokens",
        json!({ "name": name, "roles": [role] }),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// A server with authentication and approvals on, and its admin token.
pub(crate) async fn start_with_admin() -> (TestServer, String) {
    let mut opts = Options::new(STREAMS);
    opts.extra_yaml = AUTH.to_string();
    let srv = TestServer::start_with(opts).await;
    let gov = srv.runtime().governance.clone();
    let file = srv.dir.path().join(".freshet/admin.token");
    freshet::governance::ensure_admin_token(&gov, &file, "test").expect("admin");
    let admin = std::fs::read_to_string(&file)
        .expect("read")
        .trim()
        .to_string();
    (srv, admin)
}

/// The audit trail as records, read through the API.
pub(crate) async fn audit_records(srv: &TestServer, admin: &str) -> Vec<Value> {
    let text = srv
        .client
        .get(format!("{}/v1/audit", srv.url()))
        .bearer_auth(admin)
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("text");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect()
}

pub(crate) const MV: &str = "/api/2.0/mlflow/model-versions";
pub(crate) const RM: &str = "/api/2.0/mlflow/registered-models";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_promotions_need_a_second_persons_approval() {
    let (srv, admin) = start_with_admin().await;
    let gov = srv.runtime().governance.clone();
    let alice = token(&srv, &admin, "alice", "data_scientist").await;
    let olga = token(&srv, &admin, "olga", "operator").await;
    let carol = token(&srv, &admin, "carol", "approver").await;
    let post = reqwest::Method::POST;

    // Alice registers two versions of the high-risk model, admin a third.
    let (s, v) = send(
        &srv,
        &alice,
        post.clone(),
        &format!("{RM}/create"),
        json!({ "name": "fraud" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    for who in [&alice, &alice, &admin] {
        let (s, v) = send(
            &srv,
            who,
            post.clone(),
            &format!("{MV}/create"),
            json!({ "name": "fraud", "source": "mlflow-artifacts:/x" }),
        )
        .await;
        assert_eq!(s, 200, "{v}");
    }
    let (_, v) = send(
        &srv,
        &alice,
        reqwest::Method::GET,
        &format!("{MV}/get?name=fraud&version=1"),
        json!({}),
    )
    .await;
    assert_eq!(
        v["model_version"]["user_id"], "token:alice",
        "the creator is recorded"
    );

    // The operator's alias move is refused and opens a request.
    let alias = |v: i64| json!({ "name": "fraud", "alias": "champion", "version": v.to_string() });
    let (s, v) = send(&srv, &olga, post.clone(), &format!("{RM}/alias"), alias(1)).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error_code"], "PERMISSION_DENIED");
    assert!(
        v["message"]
            .as_str()
            .expect("msg")
            .contains("needs an approval"),
        "{v}"
    );
    let (s, list) = send(
        &srv,
        &carol,
        reqwest::Method::GET,
        "/v1/approvals?state=pending",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{list}");
    let pending = list["approvals"].as_array().expect("list").clone();
    assert_eq!(pending.len(), 1, "{list}");
    let r1 = pending[0]["id"].as_str().expect("id").to_string();
    assert_eq!(pending[0]["requested_by"], "token:olga");
    assert_eq!(pending[0]["version_creator"], "token:alice");
    assert_eq!(pending[0]["tier"], "high");
    // Nothing moved.
    let (s, _) = send(
        &srv,
        &olga,
        reqwest::Method::GET,
        &format!("{RM}/alias?name=fraud&alias=champion"),
        json!({}),
    )
    .await;
    assert_eq!(s, 404);

    // The creator may not approve (no approver role); nor may the requester.
    let (s, _) = send(
        &srv,
        &alice,
        post.clone(),
        &format!("/v1/approvals/{r1}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        &srv,
        &olga,
        post.clone(),
        &format!("/v1/approvals/{r1}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 403);
    // Admin included: an admin who asked for a promotion may not approve it.
    let (s, v) = send(&srv, &admin, post.clone(), &format!("{RM}/alias"), alias(3)).await;
    assert_eq!(s, 403, "{v}");
    let (_, list) = send(
        &srv,
        &admin,
        reqwest::Method::GET,
        "/v1/approvals",
        json!({}),
    )
    .await;
    let r3 = list["approvals"]
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["version"] == 3)
        .expect("request for v3")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (s, v) = send(
        &srv,
        &admin,
        post.clone(),
        &format!("/v1/approvals/{r3}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("maker-checker"),
        "{v}"
    );

    // A second person approves; the operator's move goes through.
    let (s, v) = send(
        &srv,
        &carol,
        post.clone(),
        &format!("/v1/approvals/{r1}/approve"),
        json!({ "note": "reviewed" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    let (s, v) = send(&srv, &olga, post.clone(), &format!("{RM}/alias"), alias(1)).await;
    assert_eq!(s, 200, "{v}");
    // Approving twice is a conflict.
    let (s, _) = send(
        &srv,
        &carol,
        post.clone(),
        &format!("/v1/approvals/{r1}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 409);

    // The stage path asks the same check; an expired approval does not count.
    let stage = json!({ "name": "fraud", "version": "2", "stage": "Production", "archive_existing_versions": false });
    let (s, v) = send(
        &srv,
        &olga,
        post.clone(),
        &format!("{MV}/transition-stage"),
        stage.clone(),
    )
    .await;
    assert_eq!(s, 403, "{v}");
    let (_, list) = send(
        &srv,
        &carol,
        reqwest::Method::GET,
        "/v1/approvals?state=pending",
        json!({}),
    )
    .await;
    let r2 = list["approvals"]
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["version"] == 2)
        .expect("request for v2")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (s, _) = send(
        &srv,
        &carol,
        post.clone(),
        &format!("/v1/approvals/{r2}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200);
    gov.approvals()
        .set_expiry(&r2, chrono::Utc::now() - chrono::Duration::seconds(1))
        .expect("expire");
    let (s, v) = send(
        &srv,
        &olga,
        post.clone(),
        &format!("{MV}/transition-stage"),
        stage.clone(),
    )
    .await;
    assert_eq!(s, 403, "expired approval: {v}");

    // A rejection is final for that request.
    let (_, list) = send(
        &srv,
        &carol,
        reqwest::Method::GET,
        "/v1/approvals?state=pending",
        json!({}),
    )
    .await;
    let r2b = list["approvals"][0]["id"]
        .as_str()
        .expect("new request")
        .to_string();
    assert_ne!(r2b, r2);
    let (s, _) = send(
        &srv,
        &carol,
        post.clone(),
        &format!("/v1/approvals/{r2b}/reject"),
        json!({ "note": "no" }),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = send(
        &srv,
        &olga,
        post.clone(),
        &format!("{MV}/transition-stage"),
        stage,
    )
    .await;
    assert_eq!(s, 403);
    assert!(
        v["message"]
            .as_str()
            .expect("msg")
            .contains("rejected by token:carol"),
        "{v}"
    );

    // A low-risk model needs none.
    let (s, _) = send(
        &srv,
        &alice,
        post.clone(),
        &format!("{RM}/create"),
        json!({ "name": "recs" }),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        &srv,
        &alice,
        post.clone(),
        &format!("{MV}/create"),
        json!({ "name": "recs", "source": "mlflow-artifacts:/y" }),
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = send(
        &srv,
        &olga,
        post.clone(),
        &format!("{RM}/alias"),
        json!({ "name": "recs", "alias": "champion", "version": "1" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");

    // Refusals and decisions are in the audit.
    let recs = audit_records(&srv, &admin).await;
    assert!(recs.iter().any(|r| r["principal"] == "token:olga"
        && r["action"] == "rollout"
        && r["outcome"] == "denied"));
    assert!(recs.iter().any(|r| r["principal"] == "token:carol"
        && r["action"] == "approve"
        && r["outcome"] == "succeeded"));
    assert!(recs.iter().any(|r| r["principal"] == "token:admin"
        && r["action"] == "approve"
        && r["outcome"] == "denied"));
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_lists_models_flags_overdue_reviews_and_takes_audited_updates() {
    let mut opts = Options::new(
        &STREAMS.replace(
            "governance: { risk_tier: high, owner: risk-team }",
            "governance: { risk_tier: high, owner: risk-team, review_every_days: 30, last_review: 2025-01-15 }",
        ),
    );
    opts.extra_yaml = AUTH.to_string();
    let srv = TestServer::start_with(opts).await;
    let gov = srv.runtime().governance.clone();
    let file = srv.dir.path().join(".freshet/admin.token");
    freshet::governance::ensure_admin_token(&gov, &file, "test").expect("admin");
    let admin = std::fs::read_to_string(&file)
        .expect("read")
        .trim()
        .to_string();
    let viewer = token(&srv, &admin, "vera", "viewer").await;
    let (s, v) = send(
        &srv,
        &viewer,
        reqwest::Method::GET,
        "/v1/inventory",
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let fraud = &v["models"][0];
    assert_eq!(fraud["model"], "fraud");
    assert_eq!(fraud["owner"], "risk-team");
    assert_eq!(fraud["risk_tier"], "high");
    assert_eq!(fraud["next_review_due"], "2025-02-14");
    assert_eq!(fraud["overdue"], true);
    assert_eq!(v["models"][1]["risk_tier"], "low");
    // A viewer may not change it; a bad field is named; an admin's update is audited.
    let put = reqwest::Method::PUT;
    let (s, _) = send(
        &srv,
        &viewer,
        put.clone(),
        "/v1/models/fraud/inventory",
        json!({ "last_review": "2026-12-01" }),
    )
    .await;
    assert_eq!(s, 403);
    let (s, v) = send(
        &srv,
        &admin,
        put.clone(),
        "/v1/models/fraud/inventory",
        json!({ "review_every_days": 0 }),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("msg")
            .starts_with("review_every_days"),
        "{v}"
    );
    let (s, v) = send(
        &srv,
        &admin,
        put.clone(),
        "/v1/models/fraud/inventory",
        json!({ "risk_tier": "low" }),
    )
    .await;
    assert_eq!(s, 400, "the tier is set in the configuration: {v}");
    let (s, v) = send(
        &srv,
        &admin,
        put.clone(),
        "/v1/models/nope/inventory",
        json!({ "owner": "x" }),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let today = chrono::Utc::now().date_naive().to_string();
    let (s, v) = send(
        &srv,
        &admin,
        put.clone(),
        "/v1/models/fraud/inventory",
        json!({ "last_review": today, "intended_use": "card fraud, real time" }),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["overdue"], false);
    assert_eq!(v["updated_by"], "token:admin");
    let r = srv
        .client
        .get(format!("{}/v1/inventory?format=csv", srv.url()))
        .bearer_auth(&viewer)
        .send()
        .await
        .expect("csv");
    let csv = r.text().await.expect("text");
    assert!(csv.starts_with("model,owner,risk_tier"), "{csv}");
    assert!(
        csv.contains("fraud,risk-team,high,\"card fraud, real time\",30,"),
        "{csv}"
    );
    let text = srv
        .client
        .get(format!("{}/v1/audit", srv.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("audit")
        .text()
        .await
        .expect("text");
    assert!(
        text.lines()
            .any(|l| l.contains("\"resource\":\"model:fraud\"")
                && l.contains("\"action\":\"manage\"")
                && l.contains("\"outcome\":\"succeeded\"")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("token:vera") && l.contains("\"outcome\":\"denied\""))
    );
    srv.shutdown().await;
}
