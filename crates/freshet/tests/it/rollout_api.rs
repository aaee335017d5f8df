//! Rollouts steered over HTTP (`/v1/models/{model}/rollout/...`) with real tokens: a
//! viewer reads but may not act, an operator starts, pauses, resumes, promotes and rolls
//! back, each step in the audit under the operator's name; a high-risk model's promotion
//! waits for an approval the operator asked for; mistakes are 4xx naming the problem;
//! `freshet rollout --url` takes the same way under the token it is given.

use crate::approvals::{MV, RM, audit_records, send, start_with_admin, token};
use crate::support::TestServer;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_steer_rollouts_over_http_and_the_audit_names_them() {
    let (srv, admin) = start_with_admin().await;
    let olga = token(&srv, &admin, "olga", "operator").await;
    let vera = token(&srv, &admin, "vera", "viewer").await;
    let post = Method::POST;

    // Two models with two versions each; v1 is champion.
    for m in ["recs", "fraud"] {
        ok(&srv, &admin, &format!("{RM}/create"), json!({ "name": m })).await;
        for _ in 0..2 {
            ok(
                &srv,
                &admin,
                &format!("{MV}/create"),
                json!({ "name": m, "source": "mlflow-artifacts:/x" }),
            )
            .await;
        }
    }
    ok(
        &srv,
        &admin,
        &format!("{RM}/alias"),
        json!({ "name": "recs", "alias": "champion", "version": "1" }),
    )
    .await;

    let path = |step: &str| format!("/v1/models/recs/rollout/{step}");
    // A viewer reads the status but may not act.
    let (s, v) = send(
        &srv,
        &vera,
        Method::GET,
        "/v1/models/recs/rollout",
        json!({}),
    )
    .await;
    assert_eq!((s, v["champion"].as_i64()), (200, Some(1)), "{v}");
    assert!(v["state"].is_null(), "{v}");
    let (s, _) = send(
        &srv,
        &vera,
        post.clone(),
        &path("start"),
        json!({ "version": 2 }),
    )
    .await;
    assert_eq!(s, 403);

    // The operator starts a rollout of v2: it is the challenger, in its first phase.
    let v = ok(&srv, &olga, &path("start"), json!({ "version": 2 })).await;
    assert_eq!(v["candidate_version"], 2, "{v}");
    let (_, st) = send(
        &srv,
        &vera,
        Method::GET,
        "/v1/models/recs/rollout",
        json!({}),
    )
    .await;
    assert_eq!(st["challenger"], 2, "{st}");
    // One rollout at a time.
    let (s, v) = send(
        &srv,
        &olga,
        post.clone(),
        &path("start"),
        json!({ "version": 2 }),
    )
    .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("in progress"),
        "{v}"
    );

    // Pause with a reason, resume, then promote by hand.
    let v = ok(
        &srv,
        &olga,
        &path("pause"),
        json!({ "reason": "waiting for the batch job" }),
    )
    .await;
    assert!(
        v["phase"].to_string().to_lowercase().contains("paus"),
        "{v}"
    );
    ok(&srv, &olga, &path("resume"), Value::Null).await;
    ok(&srv, &olga, &path("promote"), Value::Null).await;
    let (_, st) = send(
        &srv,
        &vera,
        Method::GET,
        "/v1/models/recs/rollout",
        json!({}),
    )
    .await;
    assert_eq!(st["champion"], 2, "{st}");
    // And back: the recorded champion is restored.
    ok(&srv, &olga, &path("rollback"), Value::Null).await;
    let (_, st) = send(
        &srv,
        &vera,
        Method::GET,
        "/v1/models/recs/rollout",
        json!({}),
    )
    .await;
    assert_eq!(st["champion"], 1, "{st}");

    // Mistakes name the problem.
    for (step, body, status, says) in [
        ("start", json!({}), 400, "\"version\""),
        ("start", json!({ "versoin": 2 }), 400, "versoin"),
        ("start", json!({ "version": 9 }), 404, "no version 9"),
        ("launch", Value::Null, 404, "start, promote"),
    ] {
        refused(&srv, &olga, &path(step), body, status, says).await;
    }
    let (s, _) = send(
        &srv,
        &admin,
        Method::GET,
        "/v1/models/nope/rollout",
        json!({}),
    )
    .await;
    assert_eq!(s, 404);

    // The high-risk model: the operator's promotion waits for an approval she asked for.
    ok(
        &srv,
        &admin,
        "/v1/models/fraud/rollout/rollback",
        json!({ "to_version": 1 }),
    )
    .await;
    ok(
        &srv,
        &olga,
        "/v1/models/fraud/rollout/start",
        json!({ "version": 2 }),
    )
    .await;
    let v = ok(&srv, &olga, "/v1/models/fraud/rollout/promote", Value::Null).await;
    assert!(
        v["phase"].to_string().to_lowercase().contains("approval"),
        "{v}"
    );
    let (_, list) = send(
        &srv,
        &admin,
        Method::GET,
        "/v1/approvals?state=pending",
        json!({}),
    )
    .await;
    let pending = list["approvals"].as_array().cloned().unwrap_or_default();
    assert!(
        pending
            .iter()
            .any(|a| a["model"] == "fraud" && a["requested_by"] == "token:olga"),
        "{list}"
    );
    let (_, st) = send(
        &srv,
        &vera,
        Method::GET,
        "/v1/models/fraud/rollout",
        json!({}),
    )
    .await;
    assert_eq!(st["champion"], 1, "not promoted without the approval: {st}");

    // The CLI with --url takes the same audited way, under the token it is given.
    let cli = |token: &str, args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_freshet"))
            .arg("--config")
            .arg(srv.dir.path().join("freshet.yaml"))
            .arg("rollout")
            .args(args)
            .args(["--url", &srv.url(), "--token", token])
            .output()
            .expect("run freshet rollout");
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = cli(&olga, &["start", "recs", "--version", "2"]);
    assert!(ok, "{text}");
    assert!(text.contains("candidate version 2"), "{text}");
    let (ok, text) = cli(&vera, &["status", "recs"]);
    assert!(ok, "{text}");
    assert!(text.contains("challenger  version 2"), "{text}");
    let (ok, text) = cli(&vera, &["rollback", "recs"]);
    assert!(!ok && text.contains("403"), "a viewer may not act: {text}");
    let (ok, text) = cli(&olga, &["rollback", "recs"]);
    assert!(ok, "{text}");

    // Every step, allowed or refused, is in the audit with who took it.
    let recs = audit_records(&srv, &admin).await;
    let steps = |who: &str, outcome: &str| {
        recs.iter()
            .filter(|r| {
                r["principal"] == who && r["action"] == "rollout" && r["outcome"] == outcome
            })
            .count()
    };
    assert!(steps("token:olga", "succeeded") >= 9, "{recs:?}");
    assert!(steps("token:vera", "denied") >= 2, "{recs:?}");
    srv.shutdown().await;
}

/// A step refused with `status` and a message that says `says`.
async fn refused(srv: &TestServer, token: &str, path: &str, body: Value, status: u16, says: &str) {
    let (s, v) = send(srv, token, Method::POST, path, body).await;
    assert_eq!(s, status, "{path}: {v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains(says), "{path}: {v}");
}

/// A step that must succeed; its answer.
async fn ok(srv: &TestServer, token: &str, path: &str, body: Value) -> Value {
    let (s, v) = send(srv, token, Method::POST, path, body).await;
    assert_eq!(s, 200, "{path}: {v}");
    v
}
