//! TLS on the listener (`auth.tls`): the server started as `freshet up` starts it
//! (`tls_config`, then `serve_tls`) answers HTTPS with a certificate from PEM files
//! named relative to the config file, refuses plain HTTP on the same port, is not held
//! up by a client that never finishes its handshake, and shuts down as gracefully as the
//! plain listener. A missing, unreadable or wrong certificate or key is an error naming
//! the field and the file.

use crate::support::{Options, TestServer};
use freshet::server::tls_config;
use freshet_core::FreshetConfig;
use freshet_core::config_govern::TlsConfig;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

const STREAMS: &str = "  t:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true }
    commit: { max_latency_ms: 20 }
";

/// A self-signed certificate for the loopback names, and its key, as PEM.
fn self_signed() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("self-signed certificate");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

#[tokio::test]
async fn https_serves_and_plain_http_is_refused() {
    let mut opts = Options::new(STREAMS);
    opts.tls = Some(self_signed());
    let s = TestServer::start_with(opts).await;
    assert!(s.url().starts_with("https://127.0.0.1:"), "{}", s.url());

    // A client that connects and never says a word holds its own handshake task only.
    let _stalled = tokio::net::TcpStream::connect(s.addr)
        .await
        .expect("raw connect");

    let t = std::time::Instant::now();
    let r = s.get("/healthz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a stalled handshake held up another client for {:?}",
        t.elapsed()
    );
    let r = s.post_json("t", r#"{"id":"over-tls"}"#).await;
    assert!(
        r.status < 300,
        "ingest over https: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(s.count("events/t").await, 1);

    // Plain HTTP to the TLS port: no HTTP answer comes back.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let err = plain
        .get(format!("http://{}/healthz", s.addr))
        .send()
        .await
        .expect_err("plain http to the https port must fail");
    assert!(!err.is_timeout(), "refused, not hung: {err:?}");

    // A client that does not trust the certificate is turned away too...
    let untrusting = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .tls_built_in_native_certs(false)
        .build()
        .expect("client");
    untrusting
        .get(format!("{}/healthz", s.url()))
        .send()
        .await
        .expect_err("an untrusted self-signed certificate must fail");

    // ...and neither failure took the listener down.
    let r = s.get("/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());

    let addr = s.addr;
    let ready = s.ready.clone();
    s.shutdown().await;
    assert!(!ready.load(Ordering::SeqCst), "not ready after shutdown");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the port is closed once the server has stopped"
    );
}

fn with_tls(cert: &str, key: &str) -> FreshetConfig {
    let mut c = FreshetConfig::default();
    c.auth.tls = Some(TlsConfig {
        cert: cert.into(),
        key: key.into(),
    });
    c
}

fn tls_error(config: &FreshetConfig, base: &Path) -> String {
    match tls_config(config, base) {
        Ok(_) => panic!("expected an auth.tls error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn bad_certificate_or_key_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    let (cert, key) = self_signed();
    let (_, other_key) = self_signed();
    std::fs::write(base.join("cert.pem"), &cert).unwrap();
    std::fs::write(base.join("key.pem"), &key).unwrap();
    std::fs::write(base.join("other.key"), &other_key).unwrap();
    std::fs::write(base.join("garbage.pem"), "not a certificate at all\n").unwrap();

    // Unset: plain HTTP, nothing read.
    assert!(
        tls_config(&FreshetConfig::default(), base)
            .unwrap()
            .is_none()
    );
    // Relative paths are the config folder's; absolute ones are taken as they are.
    assert!(
        tls_config(&with_tls("cert.pem", "key.pem"), base)
            .unwrap()
            .is_some()
    );
    let abs = base.join("key.pem").display().to_string();
    assert!(
        tls_config(&with_tls("cert.pem", &abs), base)
            .unwrap()
            .is_some()
    );

    let missing = base.join("nope/key.pem");
    let e = tls_error(&with_tls("cert.pem", "nope/key.pem"), base);
    assert!(
        e.starts_with(&format!("auth.tls.key: cannot read {}", missing.display())),
        "{e}"
    );
    let e = tls_error(&with_tls("missing-cert.pem", "key.pem"), base);
    assert!(e.starts_with("auth.tls.cert: cannot read "), "{e}");
    assert!(e.contains("missing-cert.pem"), "{e}");

    let e = tls_error(&with_tls("garbage.pem", "key.pem"), base);
    assert!(e.starts_with("auth.tls.cert: "), "{e}");
    assert!(
        e.contains("garbage.pem") && e.contains("no PEM certificate"),
        "{e}"
    );
    let e = tls_error(&with_tls("cert.pem", "garbage.pem"), base);
    assert!(e.starts_with("auth.tls.key: "), "{e}");
    assert!(
        e.contains("garbage.pem") && e.contains("no PEM private key"),
        "{e}"
    );
    // Swapped: the key file holds a certificate, and the other way round.
    let e = tls_error(&with_tls("key.pem", "cert.pem"), base);
    assert!(e.starts_with("auth.tls.cert: "), "{e}");
    // The key of another certificate.
    let e = tls_error(&with_tls("cert.pem", "other.key"), base);
    assert!(e.starts_with("auth.tls: the key "), "{e}");
    assert!(e.contains("other.key") && e.contains("cert.pem"), "{e}");
}
