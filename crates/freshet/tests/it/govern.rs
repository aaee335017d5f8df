//! Governance through the HTTP surface: every route against every kind of credential
//! and every role, with nothing changed on 401 and 403, every mutating request in the
//! audit chain, and no token anywhere in the data folder or the logs.

use crate::support::{Options, TestServer, captured_log};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) const STREAMS: &str = "  s:
    source: { type: http }
    schema:
      fields:
        - { name: x, type: float, required: true }
";

pub(crate) const AUTH: &str = "auth:
  enabled: true
  metrics_public: false
";

/// One route of the matrix and the roles that may call it (written out here, not
/// derived from the code under test).
struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    allowed: &'static [&'static str],
}

const ALL: &[&str] = &[
    "viewer",
    "producer",
    "scorer",
    "data_scientist",
    "approver",
    "operator",
    "admin",
];

const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/v1/streams/s/events",
        body: Some(r#"[{"x":1.5}]"#),
        allowed: &["producer", "admin"],
    },
    Route {
        method: "GET",
        path: "/v1/streams",
        body: None,
        allowed: ALL,
    },
    Route {
        method: "POST",
        path: "/v1/models/m/feedback",
        body: Some(r#"{"request_id":"r1","label":1}"#),
        allowed: &["producer", "admin"],
    },
    Route {
        method: "GET",
        path: "/v1/models/m/status",
        body: None,
        allowed: ALL,
    },
    Route {
        method: "POST",
        path: "/serving-endpoints/m/invocations",
        body: Some(r#"{"dataframe_records":[{"x":1}]}"#),
        allowed: &["scorer", "data_scientist", "admin"],
    },
    Route {
        method: "POST",
        path: "/v2/models/m/infer",
        body: Some(r#"{"inputs":[]}"#),
        allowed: &["scorer", "data_scientist", "admin"],
    },
    Route {
        method: "GET",
        path: "/v2/models/m",
        body: None,
        allowed: ALL,
    },
    Route {
        method: "POST",
        path: "/api/2.0/mlflow/experiments/create",
        body: Some(r#"{"name":"e"}"#),
        allowed: &["data_scientist", "admin"],
    },
    Route {
        method: "POST",
        path: "/api/2.0/mlflow/experiments/search",
        body: Some("{}"),
        allowed: ALL,
    },
    Route {
        method: "POST",
        path: "/api/2.0/mlflow/registered-models/create",
        body: Some(r#"{"name":"rm"}"#),
        allowed: &["data_scientist", "admin"],
    },
    Route {
        method: "POST",
        path: "/api/2.0/mlflow/registered-models/alias",
        body: Some(r#"{"name":"rm","alias":"champion","version":"1"}"#),
        allowed: &["operator", "admin"],
    },
    Route {
        method: "DELETE",
        path: "/api/2.0/mlflow/registered-models/delete",
        body: Some(r#"{"name":"nope"}"#),
        allowed: &["admin"],
    },
    Route {
        method: "PUT",
        path: "/api/2.0/mlflow-artifacts/artifacts/t/x.txt",
        body: Some("hi"),
        allowed: &["data_scientist", "admin"],
    },
    Route {
        method: "GET",
        path: "/metrics",
        body: None,
        allowed: ALL,
    },
    Route {
        method: "GET",
        path: "/v1/tokens",
        body: None,
        allowed: &["admin"],
    },
    Route {
        method: "GET",
        path: "/v1/audit",
        body: None,
        allowed: ALL,
    },
    Route {
        method: "GET",
        path: "/v1/lineage/models/m/champion",
        body: None,
        allowed: ALL,
    },
    Route {
        method: "GET",
        path: "/v1/lineage/streams/s/versions/0",
        body: None,
        allowed: ALL,
    },
];

/// Every file under `dir` that holds state a denied request must not touch (the lake,
/// the registry, the artifacts), with its size and modification time. The audit chain
/// and the token store are left out: a denied request is audited.
pub(crate) fn fingerprint(dir: &Path) -> BTreeSet<(PathBuf, u64, u128)> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = p.to_string_lossy().to_string();
            if name.contains("audit") || name.contains("govern.db") || name.ends_with("-shm") {
                continue;
            }
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(p);
            } else {
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                out.insert((p, m.len(), mtime));
            }
        }
    }
    out
}

async fn call(srv: &TestServer, r: &Route, auth: Option<&str>) -> (u16, String) {
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).expect("method");
    let mut req = srv
        .client
        .request(method, format!("{}{}", srv.url(), r.path));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    if let Some(b) = r.body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

pub(crate) async fn create_token(
    srv: &TestServer,
    admin: &str,
    name: &str,
    roles: &[&str],
    scopes: &[&str],
    expires_at: Option<String>,
) -> String {
    let r = srv
        .client
        .post(format!("{}/v1/tokens", srv.url()))
        .bearer_auth(admin)
        .json(&serde_json::json!({ "name": name, "roles": roles, "scopes": scopes, "expires_at": expires_at }))
        .send()
        .await
        .expect("create token");
    assert_eq!(r.status().as_u16(), 201, "create {name}");
    let v: serde_json::Value = r.json().await.expect("json");
    v["token"].as_str().expect("token").to_string()
}

/// Every audit record, read over HTTP as `admin`.
pub(crate) async fn audit_records(srv: &TestServer, admin: &str) -> Vec<serde_json::Value> {
    let r = srv
        .client
        .get(format!("{}/v1/audit", srv.url()))
        .bearer_auth(admin)
        .send()
        .await
        .expect("audit");
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.expect("text");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Whether `records` hold one with these fields.
pub(crate) fn audited(
    records: &[serde_json::Value],
    principal: &str,
    action: &str,
    resource: &str,
    outcome: &str,
) -> bool {
    records.iter().any(|r| {
        r["principal"] == principal
            && r["action"] == action
            && r["resource"] == resource
            && r["outcome"] == outcome
    })
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_against_every_credential_and_role() {
    let mut opts = Options::new(STREAMS);
    opts.extra_yaml = AUTH.to_string();
    let srv = TestServer::start_with(opts).await;
    let gov = srv.runtime().governance.clone();
    let admin_file = srv.dir.path().join(".freshet/admin.token");
    assert!(
        freshet::governance::ensure_admin_token(&gov, &admin_file, "test").expect("admin token")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&admin_file)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the admin token file is private");
    }
    let admin = std::fs::read_to_string(&admin_file)
        .expect("read")
        .trim()
        .to_string();
    let mut secrets = vec![admin.clone()];

    let mut by_role = Vec::new();
    for role in ALL.iter().filter(|r| **r != "admin") {
        let t = create_token(&srv, &admin, role, &[role], &[], None).await;
        secrets.push(t.clone());
        by_role.push((role.to_string(), format!("Bearer {t}")));
    }
    by_role.push(("admin".to_string(), format!("Bearer {admin}")));

    // Credentials that must all get 401.
    let revoked = create_token(&srv, &admin, "revoked", &["admin"], &[], None).await;
    let r = srv
        .client
        .delete(format!("{}/v1/tokens/revoked", srv.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status().as_u16(), 200);
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let expired = create_token(&srv, &admin, "expired", &["admin"], &[], Some(soon)).await;
    secrets.extend([revoked.clone(), expired.clone()]);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let wrong = format!("fst_{}_{}", "0".repeat(12), "0".repeat(64));
    let mut tampered = admin.clone();
    let last = tampered.pop().expect("char");
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let refused: Vec<(&str, Option<String>)> = vec![
        ("no credentials", None),
        ("a wrong token", Some(format!("Bearer {wrong}"))),
        ("a tampered token", Some(format!("Bearer {tampered}"))),
        ("a revoked token", Some(format!("Bearer {revoked}"))),
        ("an expired token", Some(format!("Bearer {expired}"))),
        (
            "a JWT with no issuer configured",
            Some("Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ4In0.c2ln".into()),
        ),
        ("Basic with a wrong password", Some(basic("admin", &wrong))),
        ("an unknown scheme", Some(format!("Token {admin}"))),
    ];

    let data = srv.dir.path().to_path_buf();
    for route in ROUTES {
        for (what, cred) in &refused {
            let before = fingerprint(&data);
            let (status, body) = call(&srv, route, cred.as_deref()).await;
            assert_eq!(
                status, 401,
                "{} {} with {what}: {body}",
                route.method, route.path
            );
            if route.path.starts_with("/api/2.0/mlflow") {
                assert!(
                    body.contains("\"error_code\":\"UNAUTHENTICATED\""),
                    "{body}"
                );
            }
            assert_eq!(
                fingerprint(&data),
                before,
                "{} {} with {what} changed state",
                route.method,
                route.path
            );
        }
        for (role, cred) in &by_role {
            let before = fingerprint(&data);
            let (status, body) = call(&srv, route, Some(cred)).await;
            if route.allowed.contains(&role.as_str()) {
                assert!(
                    status != 401 && status != 403 && status < 500,
                    "{} {} as {role}: expected to pass the gate, got {status}: {body}",
                    route.method,
                    route.path
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{} {} as {role}: {body}",
                    route.method, route.path
                );
                if route.path.starts_with("/api/2.0/mlflow") {
                    assert!(
                        body.contains("\"error_code\":\"PERMISSION_DENIED\""),
                        "{body}"
                    );
                }
                assert_eq!(
                    fingerprint(&data),
                    before,
                    "{} {} as {role} (403) changed state",
                    route.method,
                    route.path
                );
            }
        }
        // Open probes stay open.
        let (status, _) = call(
            &srv,
            &Route {
                method: "GET",
                path: "/healthz",
                body: None,
                allowed: ALL,
            },
            None,
        )
        .await;
        assert_eq!(status, 200);
    }

    // Scopes: a producer of stream `other` may not write to `s`, nor read server-wide.
    let scoped = create_token(
        &srv,
        &admin,
        "other-producer",
        &["producer"],
        &["stream:other*"],
        None,
    )
    .await;
    secrets.push(scoped.clone());
    let before = fingerprint(&data);
    let (status, _) = call(&srv, &ROUTES[0], Some(&format!("Bearer {scoped}"))).await;
    assert_eq!(status, 403);
    let (status, _) = call(&srv, &ROUTES[1], Some(&format!("Bearer {scoped}"))).await;
    assert_eq!(status, 403);
    assert_eq!(fingerprint(&data), before);

    // Basic: the user is the token's name, the password the token.
    let producer = by_role[1].1.trim_start_matches("Bearer ").to_string();
    let (status, body) = call(&srv, &ROUTES[0], Some(&basic("producer", &producer))).await;
    assert_eq!(status, 200, "{body}");

    // The audit has the refusals and the changes, and verifies.
    let records = audit_records(&srv, &admin).await;
    let has = |principal: &str, action: &str, resource: &str, outcome: &str| {
        audited(&records, principal, action, resource, outcome)
    };
    assert!(has("token:viewer", "ingest", "stream:s", "denied"));
    assert!(has("unknown", "ingest", "stream:s", "unauthenticated"));
    assert!(has("token:producer", "ingest", "stream:s", "succeeded"));
    assert!(
        has("token:operator", "rollout", "system", "failed")
            || has("token:operator", "rollout", "system", "succeeded")
    );
    assert!(
        has("token:admin", "manage", "system", "succeeded"),
        "token creation is audited"
    );
    assert!(has(
        "system:test",
        "token.create",
        "token:admin",
        "succeeded"
    ));
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let v: serde_json::Value = srv
        .client
        .get(format!("{}/v1/audit/verify", srv.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("verify")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["records_checked"].as_u64().expect("n") >= records.len() as u64);

    // No token in any file but the admin token file, nor in the logs.
    let log = captured_log();
    let mut files = Vec::new();
    let mut stack = vec![data.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p != admin_file {
                files.push(p);
            }
        }
    }
    for s in &secrets {
        let secret_part = s.rsplit('_').next().expect("secret");
        assert!(
            !log.windows(secret_part.len())
                .any(|w| w == secret_part.as_bytes()),
            "a token reached the log"
        );
        for f in &files {
            let bytes = std::fs::read(f).unwrap_or_default();
            assert!(
                !bytes
                    .windows(secret_part.len())
                    .any(|w| w == secret_part.as_bytes()),
                "a token reached {}",
                f.display()
            );
        }
    }
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_off_is_refused_off_loopback() {
    let yaml = "server: { listen: 0.0.0.0:0 }\n";
    let config = freshet_core::FreshetConfig::from_yaml_str(yaml).expect("config");
    let addr: std::net::SocketAddr = "0.0.0.0:7070".parse().expect("addr");
    let e = freshet::governance::check_listener(&config, addr).expect_err("refused");
    assert!(e.to_string().contains("not a loopback address"), "{e}");
    let lo: std::net::SocketAddr = "127.0.0.1:7070".parse().expect("addr");
    freshet::governance::check_listener(&config, lo).expect("loopback is allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_exports_to_delta_exactly_once_and_verifies_from_the_cli() {
    use clap::Parser;
    let mut opts = Options::new(STREAMS);
    opts.extra_yaml = AUTH.to_string();
    let srv = TestServer::start_with(opts).await;
    let cfg = srv.dir.path().join("freshet.yaml");
    let cfg = cfg.to_str().expect("utf-8 path").to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["freshet", "--config", cfg.as_str()];
        all.extend_from_slice(args);
        freshet::commands::run(freshet::cli::Cli::parse_from(all))
    };
    // Three refused requests, audited.
    for _ in 0..3 {
        let (status, _) = call(&srv, &ROUTES[0], None).await;
        assert_eq!(status, 401);
    }
    run(&["audit", "export", "--delta", "audit-delta"])
        .await
        .expect("export");
    let url = url::Url::from_directory_path(
        srv.dir
            .path()
            .join("audit-delta")
            .canonicalize()
            .expect("dir"),
    )
    .expect("url");
    let rows = |url: url::Url| async move {
        freshet_lake::Table::open(url)
            .await
            .expect("open")
            .info(None)
            .await
            .expect("info")
            .rows
    };
    assert_eq!(rows(url.clone()).await, 3);
    // A rerun appends nothing; new records are appended once.
    run(&["audit", "export", "--delta", "audit-delta"])
        .await
        .expect("export again");
    assert_eq!(rows(url.clone()).await, 3);
    let (status, _) = call(&srv, &ROUTES[0], None).await;
    assert_eq!(status, 401);
    run(&["audit", "export", "--delta", "audit-delta"])
        .await
        .expect("export new");
    assert_eq!(rows(url.clone()).await, 4);
    let head = freshet_lake::Table::open(url)
        .await
        .expect("open")
        .head(None, 10)
        .await
        .expect("head");
    assert!(
        head.iter()
            .any(|r| r["outcome"] == "unauthenticated" && r["resource"] == "stream:s")
    );
    // The chain verifies from the CLI, with the public key only.
    run(&["audit", "verify"]).await.expect("verify");
    srv.shutdown().await;
}
