//! OIDC Bearer JWTs through the HTTP surface of a running Freshet, against a real
//! provider (`testkit/oidc`, see `idp`): the provider's tokens are accepted through
//! discovery and their groups map to roles (`auth.groups`); a key rotation at the
//! provider is picked up without restarting Freshet; expired, foreign-audience,
//! foreign-issuer, unknown-key and tampered tokens are 401 and change nothing; an IdP
//! that is down when keys are first needed is 503; and no token text reaches the log or
//! any file of the server.

use crate::support::{Options, TestServer, captured_log, contains_bytes, walk_files};
use freshet_testkit::idp::{TestIdp, TestKey};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The audience Freshet accepts (the provider's default resource).
const API: &str = "https://freshet.test/api";
/// The provider's other resource server.
const OTHER_API: &str = "https://other.test/api";

const STREAMS: &str = "  s:
    source: { type: http }
    schema:
      fields:
        - { name: x, type: float, required: true }
";

/// Freshet refetches the JWKS for an unknown `kid` at most this often (the verifier's
/// default; `freshet.yaml` does not change it).
const JWKS_REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// `auth:` trusting `issuer`: the provider's `freshet-operators` group produces,
/// `freshet-viewers` views; `freshet-admins` and `everyone` map to nothing.
fn auth_yaml(issuer: &str) -> String {
    format!(
        "auth:
  enabled: true
  metrics_public: false
  oidc:
    issuer: \"{issuer}\"
    audiences: [\"{API}\"]
  groups:
    freshet-operators:
      - {{ roles: [producer] }}
    freshet-viewers:
      - {{ roles: [viewer] }}
"
    )
}

async fn start_server(issuer: &str) -> TestServer {
    let mut opts = Options::new(STREAMS);
    opts.extra_yaml = auth_yaml(issuer);
    TestServer::start_with(opts).await
}

/// An admin API token (as `freshet init` makes), to read the audit.
fn admin_token(srv: &TestServer) -> String {
    let gov = srv.runtime().governance.clone();
    let file = srv.dir.path().join(".freshet/admin.token");
    freshet::governance::ensure_admin_token(&gov, &file, "test").expect("admin token");
    std::fs::read_to_string(&file)
        .expect("read admin token")
        .trim()
        .to_string()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims as the provider writes them for the `freshet-operator` client.
fn claims(issuer: &str, exp: i64) -> Value {
    json!({
        "iss": issuer,
        "aud": API,
        "sub": "forged-operator",
        "iat": now(),
        "exp": exp,
        "groups": ["freshet-operators"],
    })
}

/// Runs a blocking start or stop of a provider without stalling the server's runtime.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

async fn send(
    srv: &TestServer,
    method: &str,
    path: &str,
    body: Option<&str>,
    jwt: &str,
) -> (u16, Option<String>, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = srv
        .client
        .request(method, format!("{}{path}", srv.url()))
        .bearer_auth(jwt);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, www, resp.text().await.unwrap_or_default())
}

async fn ingest(srv: &TestServer, jwt: &str, body: &str) -> (u16, String) {
    let (status, _, text) = send(srv, "POST", "/v1/streams/s/events", Some(body), jwt).await;
    (status, text)
}

async fn read(srv: &TestServer, jwt: &str) -> (u16, String) {
    let (status, _, text) = send(srv, "GET", "/v1/streams", None, jwt).await;
    (status, text)
}

/// The audit, through `GET /v1/audit` with the admin token.
async fn audit(srv: &TestServer, admin: &str) -> Vec<Value> {
    let r = srv
        .client
        .get(format!("{}/v1/audit", srv.url()))
        .bearer_auth(admin)
        .send()
        .await
        .expect("audit");
    assert_eq!(r.status().as_u16(), 200);
    r.text()
        .await
        .expect("text")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn audited(records: &[Value], principal: &str, action: &str, outcome: &str) -> bool {
    records
        .iter()
        .any(|r| r["principal"] == principal && r["action"] == action && r["outcome"] == outcome)
}

/// Every file under `dir` that holds state a refused request must not touch (the lake,
/// the registry, the artifacts), with its size and modification time; the audit chain
/// and the token store are left out (a refusal is audited). As in `govern.rs`.
fn fingerprint(dir: &Path) -> BTreeSet<(PathBuf, u64, u128)> {
    walk_files(dir)
        .into_iter()
        .filter(|p| {
            let name = p.to_string_lossy();
            !(name.contains("audit") || name.contains("govern.db") || name.ends_with("-shm"))
        })
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            Some((p, m.len(), mtime))
        })
        .collect()
}

/// No part of any of `jwts` (the claims or the signature; the header is not secret
/// and the same for every token of a key) in the log of this test binary or in any
/// file under the server's folder (config, lake, registry, audit, token store).
fn assert_no_jwt_leaked(srv: &TestServer, jwts: &[String]) {
    let log = captured_log();
    let files: Vec<(PathBuf, Vec<u8>)> = walk_files(srv.dir.path())
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_default();
            (p, bytes)
        })
        .collect();
    for jwt in jwts {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "a JWS compact token");
        for needle in [jwt.as_str(), parts[1], parts[2]] {
            assert!(
                !contains_bytes(&log, needle.as_bytes()),
                "a JWT reached the log"
            );
            for (p, bytes) in &files {
                assert!(
                    !contains_bytes(bytes, needle.as_bytes()),
                    "a JWT reached {}",
                    p.display()
                );
            }
        }
    }
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt)
        .expect("header")
        .kid
        .expect("kid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_jwts_are_accepted_via_discovery_and_groups_map_to_roles() {
    let k1 = TestKey::generate("k1");
    let idp = TestIdp::start(&[&k1]);
    let srv = start_server(&idp.issuer()).await;
    let admin = admin_token(&srv);

    // freshet-operators -> producer: may ingest, rows land.
    let producer = idp.token("freshet-operator", None).await;
    assert_eq!(kid_of(&producer), "k1");
    let (status, body) = ingest(&srv, &producer, r#"[{"x":1.5},{"x":2.5}]"#).await;
    assert_eq!(status, 200, "producer ingests: {body}");
    assert_eq!(srv.count("events/s").await, 2);

    // freshet-viewers -> viewer: reads, may not ingest.
    let viewer = idp.token("freshet-viewer", None).await;
    let (status, body) = read(&srv, &viewer).await;
    assert_eq!(status, 200, "viewer reads: {body}");
    let before = fingerprint(srv.dir.path());
    let (status, body) = ingest(&srv, &viewer, r#"[{"x":9}]"#).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("oidc:freshet-viewer may not ingest stream:s"),
        "{body}"
    );
    assert_eq!(fingerprint(srv.dir.path()), before, "a 403 changed state");

    // Authenticated, but no group is mapped: no grants at all. `freshet-nogroups` has no
    // groups claim; `freshet-admin` has groups the config does not name.
    let mut jwts = vec![producer.clone(), viewer.clone()];
    for client in ["freshet-nogroups", "freshet-admin"] {
        let jwt = idp.token(client, None).await;
        let before = fingerprint(srv.dir.path());
        let (status, body) = ingest(&srv, &jwt, r#"[{"x":9}]"#).await;
        assert_eq!(status, 403, "{client} ingests: {body}");
        let (status, body) = read(&srv, &jwt).await;
        assert_eq!(status, 403, "{client} reads: {body}");
        assert_eq!(fingerprint(srv.dir.path()), before, "a 403 changed state");
        jwts.push(jwt);
    }
    assert_eq!(srv.count("events/s").await, 2);

    // The audit names the OIDC subjects.
    let records = audit(&srv, &admin).await;
    assert!(audited(
        &records,
        "oidc:freshet-operator",
        "ingest",
        "succeeded"
    ));
    assert!(audited(&records, "oidc:freshet-viewer", "ingest", "denied"));
    assert!(audited(
        &records,
        "oidc:freshet-nogroups",
        "ingest",
        "denied"
    ));
    assert!(audited(&records, "oidc:freshet-admin", "ingest", "denied"));
    assert!(
        records.iter().all(|r| r["principal"] != "unknown"),
        "no provider token was refused: {records:?}"
    );

    assert_no_jwt_leaked(&srv, &jwts);
    srv.shutdown().await;
    idp.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_at_the_provider_is_picked_up_without_restarting_freshet() {
    let (k1, k2) = (TestKey::generate("k1"), TestKey::generate("k2"));
    let idp = TestIdp::start(&[&k1]);
    let port = idp.port();
    let srv = start_server(&idp.issuer()).await;

    let old = idp.token("freshet-operator", None).await;
    assert_eq!(kid_of(&old), "k1");
    let (status, body) = ingest(&srv, &old, r#"[{"x":1}]"#).await;
    assert_eq!(status, 200, "{body}");
    // Freshet fetched the JWKS during that request.
    let fetched = Instant::now();

    // The provider restarts on the same port (same issuer) with only a new key.
    blocking(|| idp.stop());
    let idp = blocking(|| TestIdp::start_on(port, &[&k2]));
    let new = idp.token("freshet-operator", None).await;
    assert_eq!(kid_of(&new), "k2");

    // An unknown kid refetches the keys, at most once per interval: wait that out.
    let wait =
        (JWKS_REFRESH_MIN_INTERVAL + Duration::from_millis(500)).saturating_sub(fetched.elapsed());
    tokio::time::sleep(wait).await;
    let (status, body) = ingest(&srv, &new, r#"[{"x":2},{"x":3}]"#).await;
    assert_eq!(status, 200, "the new key's token is accepted: {body}");
    assert_eq!(srv.count("events/s").await, 3);

    // The refetched set replaced the old one: k1 is withdrawn, its token refused.
    let before = fingerprint(srv.dir.path());
    let (status, _, body) = send(
        &srv,
        "POST",
        "/v1/streams/s/events",
        Some(r#"[{"x":4}]"#),
        &old,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unknown key (kid k1)"), "{body}");
    assert_eq!(fingerprint(srv.dir.path()), before);
    assert_eq!(srv.count("events/s").await, 3);

    assert_no_jwt_leaked(&srv, &[old, new]);
    srv.shutdown().await;
    idp.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_foreign_and_forged_jwts_are_401_and_change_nothing() {
    // Two providers with the same key: a token of the other one verifies by signature
    // and only its issuer differs.
    let k1 = TestKey::generate("k1");
    let ours = TestIdp::start(&[&k1]);
    let theirs = TestIdp::start(&[&k1]);
    let iss = ours.issuer();
    let srv = start_server(&iss).await;
    let admin = admin_token(&srv);

    // A good token first: the table exists, the keys are cached.
    let good = ours.token("freshet-operator", None).await;
    let (status, body) = ingest(&srv, &good, r#"[{"x":1}]"#).await;
    assert_eq!(status, 200, "{body}");

    let rogue = TestKey::generate("rogue");
    let tampered = {
        // The good token's signature over other claims (another subject, more groups).
        let mut parts = good.split('.');
        let (head, _, sig) = (
            parts.next().expect("header"),
            parts.next(),
            parts.next().expect("signature"),
        );
        use base64::Engine as _;
        let mut forged = claims(&iss, now() + 600);
        forged["sub"] = json!("root");
        forged["groups"] = json!(["freshet-operators", "freshet-viewers"]);
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
        format!("{head}.{body}.{sig}")
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "an expired JWT (signed with the provider's key)",
            k1.sign(&claims(&iss, now() - 3600)),
            "bearer token has expired",
        ),
        (
            "a JWT for another audience",
            ours.token("freshet-operator", Some(OTHER_API)).await,
            "audience is not one this server accepts",
        ),
        (
            "a JWT of another issuer",
            theirs.token("freshet-operator", None).await,
            "issuer is not the configured issuer",
        ),
        (
            "a JWT signed with an unknown key",
            rogue.sign(&claims(&iss, now() + 600)),
            "signed by an unknown key (kid rogue)",
        ),
        (
            "a JWT whose claims were changed",
            tampered,
            "signature is invalid",
        ),
    ];

    let routes: &[(&str, &str, Option<&str>)] = &[
        ("POST", "/v1/streams/s/events", Some(r#"[{"x":7}]"#)),
        (
            "POST",
            "/api/2.0/mlflow/registered-models/create",
            Some(r#"{"name":"rm"}"#),
        ),
        ("GET", "/v1/streams", None),
    ];
    for (what, jwt, why) in &cases {
        for (method, path, body) in routes {
            let before = fingerprint(srv.dir.path());
            let (status, www, text) = send(&srv, method, path, *body, jwt).await;
            assert_eq!(status, 401, "{method} {path} with {what}: {text}");
            assert!(www.is_some_and(|w| w.contains("Bearer")), "{what}");
            assert!(text.contains(why), "{method} {path} with {what}: {text}");
            if path.starts_with("/api/2.0/mlflow") {
                assert!(text.contains("\"UNAUTHENTICATED\""), "{text}");
            }
            assert_eq!(
                fingerprint(srv.dir.path()),
                before,
                "{method} {path} with {what} changed state"
            );
        }
    }
    assert_eq!(srv.count("events/s").await, 1);
    let r = srv
        .client
        .get(format!(
            "{}/api/2.0/mlflow/registered-models/get?name=rm",
            srv.url()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("get model");
    assert_eq!(r.status().as_u16(), 404, "no model was registered");

    // Each refusal is audited, with its reason and no principal.
    let records = audit(&srv, &admin).await;
    for (what, _, why) in &cases {
        assert!(
            records.iter().any(|r| r["principal"] == "unknown"
                && r["action"] == "ingest"
                && r["outcome"] == "unauthenticated"
                && r["detail"]["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains(why))),
            "{what} is audited: {:?}",
            records
                .iter()
                .filter(|r| r["outcome"] == "unauthenticated")
                .collect::<Vec<_>>()
        );
    }
    assert!(
        records.iter().all(|r| !r["principal"]
            .as_str()
            .unwrap_or("")
            .starts_with("oidc:root")),
        "the tampered subject never acted"
    );

    let mut jwts: Vec<String> = cases.into_iter().map(|(_, jwt, _)| jwt).collect();
    jwts.push(good);
    assert_no_jwt_leaked(&srv, &jwts);
    srv.shutdown().await;
    ours.stop();
    theirs.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_down_when_keys_are_first_needed_is_503_then_recovers() {
    let k1 = TestKey::generate("k1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let iss = format!("http://127.0.0.1:{port}");
    // Freshet starts while the IdP is down: it is asked only when a token needs a key.
    let srv = start_server(&iss).await;
    let jwt = k1.sign(&claims(&iss, now() + 600));

    let before = fingerprint(srv.dir.path());
    let routes: &[(&str, &str, Option<&str>, &str)] = &[
        (
            "POST",
            "/v1/streams/s/events",
            Some(r#"[{"x":1}]"#),
            "\"unavailable\"",
        ),
        (
            "POST",
            "/api/2.0/mlflow/registered-models/create",
            Some(r#"{"name":"rm"}"#),
            "\"TEMPORARILY_UNAVAILABLE\"",
        ),
        ("GET", "/v1/streams", None, "\"unavailable\""),
    ];
    let asked = Instant::now();
    for (method, path, body, code) in routes {
        let (status, www, text) = send(&srv, method, path, *body, &jwt).await;
        assert_eq!(status, 503, "{method} {path}: {text}");
        assert!(www.is_none(), "a 503 is not a challenge for credentials");
        assert!(text.contains(code), "{text}");
        assert!(text.contains("identity provider"), "{text}");
    }
    assert_eq!(fingerprint(srv.dir.path()), before, "a 503 changed state");

    // The IdP comes up; after the refetch interval the same server accepts the token.
    let idp = blocking(|| TestIdp::start_on(port, &[&k1]));
    assert_eq!(idp.issuer(), iss);
    let wait =
        (JWKS_REFRESH_MIN_INTERVAL + Duration::from_millis(500)).saturating_sub(asked.elapsed());
    tokio::time::sleep(wait).await;
    let (status, body) = ingest(&srv, &jwt, r#"[{"x":1}]"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(srv.count("events/s").await, 1);

    assert_no_jwt_leaked(&srv, &[jwt]);
    srv.shutdown().await;
    idp.stop();
}
