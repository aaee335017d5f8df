//! A real OIDC provider for the tests: `oidc-provider` from npm, run by
//! `testkit/oidc/server.js` (installed by `.ci/run`, or `npm ci --prefix testkit/oidc`).
//! Used by `crates/govern/tests/oidc.rs` and the binary's `tests/it/oidc.rs`.
//!
//! The provider issues JWT access tokens by `client_credentials`; each client has its
//! groups (`freshet-admin`: freshet-admins + everyone, `freshet-viewer`: freshet-viewers,
//! `freshet-operator`: "freshet-operators" as one string, `freshet-nogroups`: none,
//! `freshet-short`: freshet-viewers, 1 s). The audience is the requested resource
//! (default `https://freshet.test/api`, or `https://other.test/api`).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// `testkit/oidc` at the repository root.
pub fn testkit_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testkit/oidc");
    assert!(
        dir.join("node_modules/oidc-provider").is_dir(),
        "the test OIDC provider is not installed: run `npm ci --prefix testkit/oidc` \
         (.ci/run does) — needs Node.js 20.19+"
    );
    dir
}

fn node(args: &[&str]) -> Command {
    let dir = testkit_dir();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join("server.js")).args(args).current_dir(dir);
    cmd
}

/// An RSA signing key made by `server.js keygen`: its private JWK (for the
/// provider's key file) and PEM (to sign tokens in the test).
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub jwk: Value,
    pub pem: String,
}

impl TestKey {
    pub fn generate(kid: &str) -> TestKey {
        let out = node(&["keygen", kid])
            .output()
            .expect("run node (is Node.js installed?)");
        assert!(
            out.status.success(),
            "server.js keygen failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("keygen prints JSON");
        TestKey {
            kid: kid.to_string(),
            jwk: v["jwk"].clone(),
            pem: v["pem"].as_str().expect("keygen pem").to_string(),
        }
    }
}

/// A running provider at `http://127.0.0.1:<port>`; killed on drop.
pub struct TestIdp {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl TestIdp {
    /// Starts a provider on a free port; `keys[0]` signs, all are published.
    pub fn start(keys: &[&TestKey]) -> TestIdp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        TestIdp::start_on(port, keys)
    }

    /// Starts a provider on `port` (e.g. the port of one just stopped: same
    /// issuer, other keys — a key rotation).
    pub fn start_on(port: u16, keys: &[&TestKey]) -> TestIdp {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys_file = dir.path().join("jwks.json");
        let jwks = json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() });
        std::fs::write(&keys_file, jwks.to_string()).expect("write jwks");
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log");
        let keys_arg = keys_file.to_string_lossy().into_owned();
        let mut child = node(&["serve", "--port", &port.to_string(), "--keys", &keys_arg])
            .stdin(Stdio::piped()) // closed when the test process ends: the provider exits
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn node testkit/oidc/server.js");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut idp = TestIdp { child, port, dir };
        let want = format!("ready {port}");
        loop {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) if line == want => return idp,
                Ok(_) => continue,
                Err(_) => {
                    let _ = idp.child.kill();
                    let mut log = String::new();
                    let _ = std::fs::File::open(idp.dir.path().join("stderr.log"))
                        .and_then(|mut f| f.read_to_string(&mut log));
                    panic!("the OIDC provider did not print '{want}'; its stderr:\n{log}");
                }
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An access token for `client_id` (secret "secret") by `client_credentials`,
    /// for `resource` (the audience; the provider's default when `None`), from
    /// the token endpoint its discovery document names.
    pub async fn token(&self, client_id: &str, resource: Option<&str>) -> String {
        let http = reqwest::Client::new();
        let discovery: Value = http
            .get(format!(
                "{}/.well-known/openid-configuration",
                self.issuer()
            ))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        let endpoint = discovery["token_endpoint"]
            .as_str()
            .expect("token_endpoint");
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", "secret"),
        ];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let resp = http
            .post(endpoint)
            .form(&form)
            .send()
            .await
            .expect("token request");
        let status = resp.status();
        let body: Value = resp.json().await.expect("token response JSON");
        assert!(status.is_success(), "token endpoint: {status} {body}");
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Stops the provider (and frees its port).
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.kill();
    }
}

impl TestKey {
    /// A token signed in the test with this key (RS256, header `kid` = the key's):
    /// what the provider would never issue (expired, from a key it does not publish).
    pub fn sign(&self, claims: &Value) -> String {
        use base64::Engine as _;
        // `pem` is PKCS#1; its base64 body is the DER jsonwebtoken signs with (so its
        // `use_pem` feature, which freshet-govern does not build, is not needed).
        let body: String = self
            .pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("PEM body is base64");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(
            &header,
            claims,
            &jsonwebtoken::EncodingKey::from_rsa_der(&der),
        )
        .expect("sign")
    }
}
