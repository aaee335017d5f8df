//! OIDC Bearer JWTs against a real provider: `oidc-provider` from npm, run by
//! `testkit/oidc/server.js` (installed by `.ci/run`, or `npm ci --prefix testkit/oidc`).
//!
//! The provider issues JWT access tokens by `client_credentials`; each client has its
//! groups. The tests make the signing keys (through `server.js keygen`), so they can
//! rotate them by restarting the provider on the same port, and sign tokens the
//! provider would never issue (expired, from an unknown key, `alg: none`, HS256).

use std::time::Duration;

use freshet_govern::oidc::{OidcConfig, OidcError, OidcVerifier, VerifiedJwt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use freshet_testkit::idp::{TestIdp, TestKey};

const API: &str = "https://freshet.test/api";
const OTHER_API: &str = "https://other.test/api";

fn config(issuer: &str) -> OidcConfig {
    let mut cfg = OidcConfig::new(issuer, vec![API.to_string()]);
    // Each test controls its own refetches; the rate limit has its own test.
    cfg.jwks_refresh_min_interval = Duration::ZERO;
    cfg
}

fn verifier(issuer: &str) -> OidcVerifier {
    OidcVerifier::new(config(issuer)).expect("verifier")
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// A token signed in the test with `key`, header `kid` = the key's.
fn sign(key: &TestKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.clone());
    let pem = EncodingKey::from_rsa_pem(key.pem.as_bytes()).expect("pem");
    jsonwebtoken::encode(&header, claims, &pem).expect("sign")
}

fn claims(issuer: &str, exp: i64) -> Value {
    json!({"iss": issuer, "aud": API, "sub": "svc-test", "iat": now(), "exp": exp, "groups": ["g"]})
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

async fn accepted(v: &OidcVerifier, token: &str) -> VerifiedJwt {
    match v.verify(token).await {
        Ok(jwt) => jwt,
        Err(e) => panic!("token refused: {e}"),
    }
}

/// The refusal, after checking its message carries no part of the token.
async fn refused(v: &OidcVerifier, token: &str) -> OidcError {
    let e = match v.verify(token).await {
        Ok(jwt) => panic!("token accepted: {jwt:?}"),
        Err(e) => e,
    };
    let message = e.to_string();
    for part in token.split('.').filter(|p| p.len() > 8) {
        assert!(
            !message.contains(part),
            "error message quotes the token: {message}"
        );
    }
    e
}

#[tokio::test]
async fn provider_token_is_accepted_via_discovery_with_subject_and_groups() {
    let k1 = TestKey::generate("k1");
    let idp = TestIdp::start(&[&k1]);
    let v = verifier(&idp.issuer());

    let token = idp.token("freshet-admin", None).await;
    assert_eq!(kid_of(&token), "k1");
    let jwt = accepted(&v, &token).await;
    assert_eq!(jwt.subject, "freshet-admin");
    assert_eq!(jwt.issuer, idp.issuer());
    assert_eq!(jwt.groups, ["freshet-admins", "everyone"]);
    assert!(jwt.expires_at > now() && jwt.expires_at <= now() + 700);
    assert_eq!(jwt.claims["aud"], API);

    // A clone shares the cache; one string is one group; no claim is no group.
    let v2 = v.clone();
    let jwt = accepted(&v2, &idp.token("freshet-operator", Some(API)).await).await;
    assert_eq!(jwt.groups, ["freshet-operators"]);
    let jwt = accepted(&v2, &idp.token("freshet-nogroups", None).await).await;
    assert!(jwt.groups.is_empty());

    // Another claim can carry the roles.
    let mut cfg = config(&idp.issuer());
    cfg.roles_claim = "client_id".into();
    let by_client = OidcVerifier::new(cfg).expect("verifier");
    let jwt = accepted(&by_client, &idp.token("freshet-viewer", None).await).await;
    assert_eq!(jwt.groups, ["freshet-viewer"]);
}

#[tokio::test]
async fn key_rotation_is_picked_up_by_the_same_verifier_and_withdrawn_keys_stop_working() {
    let (k1, k2, k3) = (
        TestKey::generate("k1"),
        TestKey::generate("k2"),
        TestKey::generate("k3"),
    );
    let idp = TestIdp::start(&[&k1]);
    let port = idp.port();
    let v = verifier(&idp.issuer());
    let t1 = idp.token("freshet-admin", None).await;
    accepted(&v, &t1).await;

    // Rotation: k2 signs, k1 is still published for the tokens already out.
    idp.stop();
    let idp = TestIdp::start_on(port, &[&k2, &k1]);
    let t2 = idp.token("freshet-viewer", None).await;
    assert_eq!(kid_of(&t2), "k2");
    assert_eq!(accepted(&v, &t2).await.groups, ["freshet-viewers"]);
    accepted(&v, &t1).await;

    // k1 withdrawn: the refetch on k3 replaces the cache, so k1 tokens stop working.
    idp.stop();
    let idp = TestIdp::start_on(port, &[&k3]);
    let t3 = idp.token("freshet-admin", None).await;
    assert_eq!(kid_of(&t3), "k3");
    accepted(&v, &t3).await;
    assert_eq!(refused(&v, &t1).await, OidcError::UnknownKey("k1".into()));
    assert_eq!(refused(&v, &t2).await, OidcError::UnknownKey("k2".into()));
}

#[tokio::test]
async fn token_for_another_audience_is_rejected() {
    let k1 = TestKey::generate("k1");
    let idp = TestIdp::start(&[&k1]);
    let v = verifier(&idp.issuer());
    let other = idp.token("freshet-admin", Some(OTHER_API)).await;
    assert_eq!(refused(&v, &other).await, OidcError::WrongAudience);

    // A verifier that accepts both audiences takes it.
    let mut cfg = config(&idp.issuer());
    cfg.audiences.push(OTHER_API.into());
    accepted(&OidcVerifier::new(cfg).expect("verifier"), &other).await;
}

#[tokio::test]
async fn token_of_another_issuer_is_rejected() {
    // Two providers with the same key: the signature verifies, only `iss` differs.
    let k1 = TestKey::generate("k1");
    let ours = TestIdp::start(&[&k1]);
    let theirs = TestIdp::start(&[&k1]);
    let v = verifier(&ours.issuer());
    accepted(&v, &ours.token("freshet-admin", None).await).await;
    let foreign = theirs.token("freshet-admin", None).await;
    assert_eq!(refused(&v, &foreign).await, OidcError::WrongIssuer);

    // A verifier configured with another name for the issuer refuses the provider's
    // discovery document (its `issuer` must match exactly): the IdP is unusable, 503.
    let misnamed = verifier(&format!("http://localhost:{}", ours.port()));
    let e = refused(&misnamed, &ours.token("freshet-admin", None).await).await;
    assert!(
        matches!(&e, OidcError::BadProvider(m) if m.contains("names issuer")),
        "{e}"
    );
    assert_eq!(e.http_status(), 503);
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_rejected() {
    let k1 = TestKey::generate("k1");
    let idp = TestIdp::start(&[&k1]);

    // From the provider: a client whose tokens live 1 s, judged with no leeway.
    let mut cfg = config(&idp.issuer());
    cfg.leeway_secs = 0;
    let strict = OidcVerifier::new(cfg).expect("verifier");
    let short = idp.token("freshet-short", None).await;
    let exp = accepted(&strict, &short).await.expires_at;
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let e = refused(&strict, &short).await;
    assert_eq!(e, OidcError::Expired);
    assert_eq!(e.http_status(), 401);

    // Signed with the provider's own key: an hour late is expired, 10 s late is within
    // the default 30 s leeway, and a token valid only from next hour is not yet valid.
    let v = verifier(&idp.issuer());
    let iss = idp.issuer();
    assert_eq!(
        refused(&v, &sign(&k1, &claims(&iss, now() - 3600))).await,
        OidcError::Expired
    );
    accepted(&v, &sign(&k1, &claims(&iss, now() - 10))).await;
    let mut future = claims(&iss, now() + 7200);
    future["nbf"] = json!(now() + 3600);
    assert_eq!(
        refused(&v, &sign(&k1, &future)).await,
        OidcError::NotYetValid
    );

    // No `exp` at all, or an `exp` that is not a number, is refused too.
    let mut no_exp = claims(&iss, 0);
    no_exp.as_object_mut().expect("object").remove("exp");
    assert!(matches!(
        refused(&v, &sign(&k1, &no_exp)).await,
        OidcError::BadClaim { claim, .. } if claim == "exp"
    ));
    let mut string_nbf = claims(&iss, now() + 600);
    string_nbf["nbf"] = json!("99999999999");
    assert!(matches!(
        refused(&v, &sign(&k1, &string_nbf)).await,
        OidcError::BadClaim { claim, .. } if claim == "nbf"
    ));
}

#[tokio::test]
async fn token_signed_by_an_unknown_key_is_rejected() {
    let k1 = TestKey::generate("k1");
    let idp = TestIdp::start(&[&k1]);
    let v = verifier(&idp.issuer());
    let iss = idp.issuer();

    // A kid the provider never published: refetch, then UnknownKey (401).
    let rogue = TestKey::generate("rogue");
    let e = refused(&v, &sign(&rogue, &claims(&iss, now() + 600))).await;
    assert_eq!(e, OidcError::UnknownKey("rogue".into()));
    assert_eq!(e.http_status(), 401);

    // A published kid on a token signed by another key: the signature fails.
    let impostor = TestKey {
        kid: "k1".into(),
        ..rogue
    };
    assert_eq!(
        refused(&v, &sign(&impostor, &claims(&iss, now() + 600))).await,
        OidcError::BadSignature
    );
    // And the provider's key still works.
    accepted(&v, &sign(&k1, &claims(&iss, now() + 600))).await;
}

fn b64(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn alg_none_hmac_and_malformed_tokens_are_rejected() {
    let k1 = TestKey::generate("k1");
    let idp = TestIdp::start(&[&k1]);
    let v = verifier(&idp.issuer());
    let body = b64(&claims(&idp.issuer(), now() + 600));

    // alg none, with and without a signature part.
    let none = format!("{}.{body}.", b64(&json!({"alg": "none", "kid": "k1"})));
    assert_eq!(
        refused(&v, &none).await,
        OidcError::AlgorithmNotAllowed("none".into())
    );

    // HS256 keyed with the provider's public JWKS (the classic key-confusion attack),
    // and HS256 even when a confused config lists it.
    let jwks: Value = reqwest::get(format!("{}/jwks", idp.issuer()))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks JSON");
    let secret = jwks["keys"][0]["n"].as_str().expect("n").to_string();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(
        &header,
        &claims(&idp.issuer(), now() + 600),
        &EncodingKey::from_secret(secret.as_bytes()).expect("secret"),
    )
    .expect("hs256");
    assert_eq!(
        refused(&v, &hs).await,
        OidcError::AlgorithmNotAllowed("HS256".into())
    );
    let mut cfg = config(&idp.issuer());
    cfg.algorithms = vec!["RS256".into(), "HS256".into()];
    assert!(matches!(OidcVerifier::new(cfg), Err(OidcError::Config(_))));

    // An allowed algorithm that does not fit the key (PS256 header on an RS256 JWK).
    let mut cfg = config(&idp.issuer());
    cfg.algorithms = vec!["RS256".into(), "PS256".into()];
    let both = OidcVerifier::new(cfg).expect("verifier");
    let mut header = Header::new(Algorithm::PS256);
    header.kid = Some("k1".into());
    let ps = jsonwebtoken::encode(
        &header,
        &claims(&idp.issuer(), now() + 600),
        &EncodingKey::from_rsa_pem(k1.pem.as_bytes()).expect("pem"),
    )
    .expect("ps256");
    assert!(matches!(
        refused(&both, &ps).await,
        OidcError::AlgorithmNotAllowed(_)
    ));

    // No kid; not a JWT; a JWT whose signature was tampered with.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = None;
    let no_kid = jsonwebtoken::encode(
        &header,
        &claims(&idp.issuer(), now() + 600),
        &EncodingKey::from_rsa_pem(k1.pem.as_bytes()).expect("pem"),
    )
    .expect("no kid");
    assert_eq!(refused(&v, &no_kid).await, OidcError::MissingKid);
    for junk in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig"] {
        assert!(
            matches!(v.verify(junk).await, Err(OidcError::Malformed(_))),
            "{junk}"
        );
    }
    let good = idp.token("freshet-admin", None).await;
    accepted(&v, &good).await;
    let (signed, _) = good.rsplit_once('.').expect("three parts");
    let forged_body =
        b64(&json!({"iss": idp.issuer(), "aud": API, "sub": "root", "exp": now() + 600}));
    let (head, _) = signed.split_once('.').expect("header");
    let sig = good.rsplit('.').next().expect("sig");
    assert_eq!(
        refused(&v, &format!("{head}.{forged_body}.{sig}")).await,
        OidcError::BadSignature
    );
}

#[tokio::test]
async fn unknown_kid_refetches_are_rate_limited_and_cached_keys_outlive_the_idp() {
    let k1 = TestKey::generate("k1");
    let idp = TestIdp::start(&[&k1]);
    let iss = idp.issuer();
    let mut cfg = config(&iss);
    cfg.jwks_refresh_min_interval = Duration::from_secs(60);
    let v = OidcVerifier::new(cfg).expect("verifier");
    let good = idp.token("freshet-admin", None).await;
    accepted(&v, &good).await;

    let rogue = TestKey::generate("rogue");
    let forged = sign(&rogue, &claims(&iss, now() + 600));
    // Within the interval of the first fetch: no refetch, straight to UnknownKey.
    assert_eq!(
        refused(&v, &forged).await,
        OidcError::UnknownKey("rogue".into())
    );

    // With the IdP gone, an unknown kid is still UnknownKey (no request was made: a
    // request would have failed and said Unavailable), and known keys keep working.
    idp.stop();
    assert_eq!(
        refused(&v, &forged).await,
        OidcError::UnknownKey("rogue".into())
    );
    accepted(&v, &good).await;
}

#[tokio::test]
async fn an_idp_down_at_first_use_is_unavailable_then_recovers_without_a_restart() {
    let k1 = TestKey::generate("k1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let iss = format!("http://127.0.0.1:{port}");
    // Building the verifier does not need the IdP.
    let v = verifier(&iss);
    let token = sign(&k1, &claims(&iss, now() + 600));
    let e = refused(&v, &token).await;
    assert!(matches!(e, OidcError::Unavailable(_)), "{e}");
    assert_eq!(e.http_status(), 503);

    let idp = TestIdp::start_on(port, &[&k1]);
    assert_eq!(idp.issuer(), iss);
    let jwt = accepted(&v, &token).await;
    assert_eq!(jwt.subject, "svc-test");
    assert_eq!(jwt.groups, ["g"]);
}
