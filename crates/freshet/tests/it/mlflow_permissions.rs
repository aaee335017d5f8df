//! MLflow's per-object permissions over HTTP (issue 12: "on MLflow routes follow
//! MLflow's permission semantics: creator gets MANAGE, searches return only what the
//! caller may read"). Data scientists scoped to their team's experiments and models
//! create, search, log and share through grants; everything refused leaves the data
//! folder as it was, and the audit names the object refused.

use crate::govern::{AUTH, STREAMS, audit_records, audited, create_token, fingerprint};
use crate::support::{Options, TestServer};
use serde_json::{Value, json};

async fn api(
    srv: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = srv
        .client
        .request(method, format!("{}{}", srv.url(), path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn put_file(srv: &TestServer, token: &str, path: &str, body: &'static str) -> u16 {
    srv.client
        .put(format!("{}{path}", srv.url()))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("put")
        .status()
        .as_u16()
}

/// Every experiment name a search returns to `token`, one result per page, following
/// the page tokens to the end.
async fn experiment_names(srv: &TestServer, token: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut page: Option<String> = None;
    for _ in 0..50 {
        let mut body = json!({ "max_results": 1 });
        if let Some(t) = &page {
            body["page_token"] = json!(t);
        }
        let (st, v) = api(
            srv,
            token,
            "POST",
            "/api/2.0/mlflow/experiments/search",
            Some(body),
        )
        .await;
        assert_eq!(st, 200, "{v}");
        for e in v["experiments"].as_array().into_iter().flatten() {
            names.push(e["name"].as_str().expect("name").to_string());
        }
        match v["next_page_token"].as_str() {
            Some(t) => page = Some(t.to_string()),
            None => {
                names.sort();
                return names;
            }
        }
    }
    panic!("the search never ended");
}

fn denied(st: u16, v: &Value, what: &str) {
    assert_eq!(st, 403, "{what}: {v}");
    assert_eq!(v["error_code"], "PERMISSION_DENIED", "{what}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mlflow_objects_are_reached_through_scope_creator_or_grant_only() {
    let mut opts = Options::new(STREAMS);
    opts.extra_yaml = AUTH.to_string();
    let srv = TestServer::start_with(opts).await;
    let gov = srv.runtime().governance.clone();
    let admin_file = srv.dir.path().join(".freshet/admin.token");
    freshet::governance::ensure_admin_token(&gov, &admin_file, "test").expect("admin");
    let admin = std::fs::read_to_string(&admin_file)
        .expect("read")
        .trim()
        .to_string();
    let ds = &["data_scientist"];
    let alice = create_token(
        &srv,
        &admin,
        "alice",
        ds,
        &["experiment:fraud-*", "model:fraud-*"],
        None,
    )
    .await;
    let bob = create_token(
        &srv,
        &admin,
        "bob",
        ds,
        &["experiment:churn-*", "model:churn-*"],
        None,
    )
    .await;
    let ops = create_token(&srv, &admin, "ops", &["operator"], &["model:fraud-*"], None).await;

    // Creating: inside the scopes only.
    let create = |name: &str| {
        (
            "/api/2.0/mlflow/experiments/create",
            json!({ "name": name }),
        )
    };
    let (p, b) = create("fraud-a");
    let (st, v) = api(&srv, &alice, "POST", p, Some(b)).await;
    assert_eq!(st, 200, "{v}");
    let exp_a = v["experiment_id"].as_str().expect("id").to_string();
    let (p, b) = create("churn-by-alice");
    let (st, v) = api(&srv, &alice, "POST", p, Some(b)).await;
    denied(st, &v, "alice creating outside her scope");
    let (p, b) = create("churn-b");
    assert_eq!(api(&srv, &bob, "POST", p, Some(b)).await.0, 200);
    // Experiments no scoped token may read, between hers, so that pages must skip them.
    for i in 0..4 {
        let (p, b) = create(&format!("other-{i}"));
        assert_eq!(api(&srv, &admin, "POST", p, Some(b)).await.0, 200);
    }
    for name in ["fraud-b", "fraud-c"] {
        let (p, b) = create(name);
        assert_eq!(api(&srv, &alice, "POST", p, Some(b)).await.0, 200);
    }

    // Searching: what each may read, exactly once, across pages of one.
    assert_eq!(
        experiment_names(&srv, &alice).await,
        ["fraud-a", "fraud-b", "fraud-c"]
    );
    assert_eq!(experiment_names(&srv, &bob).await, ["churn-b"]);
    assert!(experiment_names(&srv, &admin).await.len() >= 8);

    // A run of hers, with a metric and a file.
    let (st, v) = api(
        &srv,
        &alice,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(json!({ "experiment_id": exp_a, "start_time": 1 })),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let run = v["run"]["info"]["run_id"]
        .as_str()
        .expect("run")
        .to_string();
    let metric = json!({ "run_id": run, "key": "auc", "value": 0.9, "timestamp": 1, "step": 0 });
    let log = "/api/2.0/mlflow/runs/log-metric";
    assert_eq!(
        api(&srv, &alice, "POST", log, Some(metric.clone())).await.0,
        200
    );
    let file = format!("/api/2.0/mlflow-artifacts/artifacts/{exp_a}/{run}/artifacts/notes.txt");
    assert_eq!(put_file(&srv, &alice, &file, "alice's notes").await, 200);

    // Bob reaches none of it, and nothing changes when he tries.
    let get_run = format!("/api/2.0/mlflow/runs/get?run_id={run}");
    let data = srv.dir.path().to_path_buf();
    let before = fingerprint(&data);
    let (st, v) = api(&srv, &bob, "GET", &get_run, None).await;
    denied(st, &v, "bob reading alice's run");
    let (st, v) = api(&srv, &bob, "POST", log, Some(metric.clone())).await;
    denied(st, &v, "bob logging to alice's run");
    let (st, v) = api(
        &srv,
        &bob,
        "POST",
        "/api/2.0/mlflow/runs/create",
        Some(json!({ "experiment_id": exp_a })),
    )
    .await;
    denied(st, &v, "bob starting a run in alice's experiment");
    let (st, v) = api(
        &srv,
        &bob,
        "GET",
        &format!("/api/2.0/mlflow/experiments/get?experiment_id={exp_a}"),
        None,
    )
    .await;
    denied(st, &v, "bob reading alice's experiment");
    let (st, _) = api(&srv, &bob, "GET", &file, None).await;
    assert_eq!(st, 403, "bob downloading alice's file");
    let bulk =
        format!("/api/2.0/mlflow/metrics/get-history-bulk?run_id=nope&run_id={run}&metric_key=auc");
    let (st, v) = api(&srv, &bob, "GET", &bulk, None).await;
    denied(st, &v, "bob reading alice's run beside an unknown one");
    assert_eq!(
        put_file(&srv, &bob, &file, "overwritten").await,
        403,
        "bob overwriting alice's file"
    );
    let search_runs = json!({ "experiment_ids": [exp_a] });
    let (st, v) = api(
        &srv,
        &bob,
        "POST",
        "/api/2.0/mlflow/runs/search",
        Some(search_runs.clone()),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(
        v["runs"].as_array().is_none_or(Vec::is_empty),
        "bob's search found alice's run: {v}"
    );
    assert_eq!(
        fingerprint(&data),
        before,
        "a refused request changed state"
    );

    // Nor through a version of his own model that points at her files.
    let (st, v) = api(
        &srv,
        &bob,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        Some(json!({ "name": "churn-m" })),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    for source in [
        json!({ "name": "churn-m", "source": format!("runs:/{run}/notes.txt") }),
        json!({ "name": "churn-m", "source": "x", "run_id": run }),
        json!({ "name": "churn-m", "source": format!("mlflow-artifacts:/{exp_a}/{run}/artifacts") }),
        json!({ "name": "churn-m", "source": "/etc" }),
    ] {
        let (st, v) = api(
            &srv,
            &bob,
            "POST",
            "/api/2.0/mlflow/model-versions/create",
            Some(source.clone()),
        )
        .await;
        denied(
            st,
            &v,
            &format!("bob registering alice's files as {source}"),
        );
    }

    // Sharing: only a MANAGE holder grants; the creator has MANAGE.
    let grant = "/api/3.0/mlflow/users/permissions/grant";
    let to_bob = |level: &str| json!({ "username": "bob", "resource_type": "experiment", "resource_id": exp_a, "permission": level });
    let (st, v) = api(&srv, &bob, "POST", grant, Some(to_bob("MANAGE"))).await;
    denied(st, &v, "bob granting himself");
    let (st, v) = api(&srv, &alice, "POST", grant, Some(to_bob("READ"))).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = api(&srv, &bob, "GET", &get_run, None).await;
    assert_eq!(st, 200, "bob reads with READ: {v}");
    assert_eq!(v["run"]["data"]["metrics"][0]["key"], "auc");
    let (st, v) = api(
        &srv,
        &bob,
        "POST",
        "/api/2.0/mlflow/runs/search",
        Some(search_runs.clone()),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["runs"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(experiment_names(&srv, &bob).await, ["churn-b", "fraud-a"]);
    let (st, got) = api(&srv, &bob, "GET", &file, None).await;
    assert_eq!((st, got), (200, json!("alice's notes")));
    let (st, v) = api(&srv, &bob, "POST", log, Some(metric.clone())).await;
    denied(st, &v, "bob writing with READ");
    let check = format!(
        "/api/3.0/mlflow/users/permissions/get?username=bob&resource_type=experiment&resource_id={exp_a}"
    );
    let (st, v) = api(&srv, &bob, "GET", &check, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({ "allowed": false, "permission": "READ" }));
    let (st, v) = api(&srv, &alice, "POST", grant, Some(to_bob("EDIT"))).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        api(&srv, &bob, "POST", log, Some(metric.clone())).await.0,
        200,
        "bob writes with EDIT"
    );
    let (st, v) = api(
        &srv,
        &bob,
        "POST",
        "/api/2.0/mlflow/experiments/delete",
        Some(json!({ "experiment_id": exp_a })),
    )
    .await;
    denied(st, &v, "bob deleting with EDIT");
    let (st, v) = api(
        &srv,
        &alice,
        "GET",
        &check.replace("username=bob", "username=alice"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v, json!({ "allowed": true, "permission": "MANAGE" }));
    let (st, v) = api(
        &srv,
        &alice,
        "POST",
        "/api/3.0/mlflow/users/permissions/revoke",
        Some(json!({ "username": "bob", "resource_type": "experiment", "resource_id": exp_a })),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = api(&srv, &bob, "GET", &get_run, None).await;
    denied(st, &v, "bob after the revocation");

    // A grant to a token that does not exist is refused, as MLflow refuses an unknown
    // user.
    let mut ghost = to_bob("READ");
    ghost["username"] = json!("ghost");
    let (st, v) = api(&srv, &alice, "POST", grant, Some(ghost)).await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(v["error_code"], "RESOURCE_DOES_NOT_EXIST", "{v}");

    // Bad grants name the field.
    let (st, v) = api(&srv, &alice, "POST", grant, Some(to_bob("OWNER"))).await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("permission"),
        "{v}"
    );
    let (st, v) = api(
        &srv,
        &alice,
        "POST",
        grant,
        Some(json!({ "username": "bob", "resource_type": "dataset", "resource_id": "1", "permission": "READ" })),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("resource_type"),
        "{v}"
    );

    // Registered models: the same, and moving aliases stays with operators.
    let (st, v) = api(
        &srv,
        &alice,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        Some(json!({ "name": "fraud-m" })),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let models = |v: &Value| -> Vec<String> {
        v["registered_models"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| m["name"].as_str().expect("name").to_string())
            .collect()
    };
    let search = "/api/2.0/mlflow/registered-models/search";
    assert_eq!(
        models(&api(&srv, &alice, "GET", search, None).await.1),
        ["fraud-m"]
    );
    assert_eq!(
        models(&api(&srv, &bob, "GET", search, None).await.1),
        ["churn-m"]
    );
    let alias = json!({ "name": "fraud-m", "alias": "champion", "version": "1" });
    let (st, v) = api(
        &srv,
        &alice,
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        Some(alias.clone()),
    )
    .await;
    denied(st, &v, "the creator moving an alias");
    let (st, v) = api(
        &srv,
        &ops,
        "POST",
        "/api/2.0/mlflow/registered-models/alias",
        Some(alias),
    )
    .await;
    // Past the gate: the version does not exist.
    assert_eq!(st, 404, "the operator of fraud-* passes the gate: {v}");
    // A rename out of her scopes keeps her creator's MANAGE with the model.
    let (st, v) = api(
        &srv,
        &alice,
        "POST",
        "/api/2.0/mlflow/registered-models/rename",
        Some(json!({ "name": "fraud-m", "new_name": "renamed-m" })),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let get_m = "/api/2.0/mlflow/registered-models/get?name=renamed-m";
    assert_eq!(api(&srv, &alice, "GET", get_m, None).await.0, 200);
    denied(
        api(&srv, &bob, "GET", get_m, None).await.0,
        &api(&srv, &bob, "GET", get_m, None).await.1,
        "bob reading alice's model",
    );
    let (st, v) = api(
        &srv,
        &alice,
        "DELETE",
        "/api/2.0/mlflow/registered-models/delete",
        Some(json!({ "name": "renamed-m" })),
    )
    .await;
    assert_eq!(st, 200, "the creator deletes: {v}");
    // Her grant went with the model: one of the same name made later is not hers.
    let (st, _) = api(
        &srv,
        &admin,
        "POST",
        "/api/2.0/mlflow/registered-models/create",
        Some(json!({ "name": "renamed-m" })),
    )
    .await;
    assert_eq!(st, 200);
    let (st, v) = api(&srv, &alice, "GET", get_m, None).await;
    denied(st, &v, "alice reading a later model of the same name");

    // The audit names the object a refusal was about, and who was refused.
    let records = audit_records(&srv, &admin).await;
    let has = |principal: &str, action: &str, resource: &str, outcome: &str| {
        audited(&records, principal, action, resource, outcome)
    };
    assert!(has("token:bob", "track", "experiment:fraud-a", "denied"));
    assert!(has(
        "token:alice",
        "manage",
        "experiment:fraud-a",
        "succeeded"
    ));
    assert!(has(
        "token:alice",
        "track",
        "experiment:churn-by-alice",
        "denied"
    ));
    assert!(has("token:alice", "rollout", "model:fraud-m", "denied"));
    srv.shutdown().await;
}
