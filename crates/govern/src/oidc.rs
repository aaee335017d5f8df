//! OIDC: Bearer JWTs validated through the issuer's discovery document and JWKS.
//!
//! An [`OidcVerifier`] is built from the `auth.oidc` section of `freshet.yaml`
//! ([`OidcConfig`]). It is lazy: building it checks the configuration only, and the
//! identity provider (IdP) is first asked when a token needs a key, so Freshet starts
//! while the IdP is briefly down (tokens are then refused with
//! [`OidcError::Unavailable`], a 503, until it answers).
//!
//! How a token is judged, in order:
//! 1. its header: at most [`MAX_TOKEN_BYTES`], three dot-separated parts, an `alg` on
//!    the configured allow-list (`none` and HMAC algorithms can never be on it), a `kid`;
//! 2. its key: looked up by `kid` in the cached JWKS. The JWKS comes from the
//!    `jwks_uri` of `{issuer}/.well-known/openid-configuration`, whose `issuer` must equal
//!    the configured one exactly. An unknown `kid` refetches the JWKS (so a key rotation
//!    is picked up without a restart), at most once per `jwks_refresh_min_interval`
//!    (so garbage `kid`s cannot hammer the IdP); the refetched set replaces the cache,
//!    so a key the IdP stopped publishing stops being accepted. A cache older than
//!    `jwks_max_age` is refetched too, and kept if the IdP does not answer;
//! 3. its signature (with the key's algorithm family matching `alg`), then `iss`
//!    (exactly the configured issuer), `aud` (one of the configured audiences), `exp`
//!    (required) and `nbf` (when present), both with `leeway_secs` of clock skew;
//! 4. its subject (`subject_claim`, a string) and groups (`roles_claim`: a list of
//!    strings, one string, or absent = no groups), which `identity` maps to roles.
//!
//! Issuers may be `http://` (tests, loopback) or `https://` (rustls with the system's
//! root certificates). No error message carries the token.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// The discovery document or JWKS may not be larger than this.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// One discovery or JWKS request may take this long, connecting included.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most clock skew `leeway_secs` may allow.
const MAX_LEEWAY_SECS: u64 = 300;

/// `auth.oidc` in `freshet.yaml`:
///
/// ```yaml
/// auth:
///   oidc:
///     issuer: https://idp.example.com/realms/freshet   # exactly as the IdP names itself
///     audiences: [freshet]                             # the token's aud must hold one
///     algorithms: [RS256]                              # default [RS256]
///     leeway_secs: 30                                  # exp/nbf clock skew, default 30
///     roles_claim: groups                              # default groups
///     subject_claim: sub                               # default sub
///     jwks_refresh_min_interval_secs: 10               # default 10
///     jwks_max_age_secs: 3600                          # default 3600
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The issuer identifier: discovery is at `{issuer}/.well-known/openid-configuration`,
    /// and both the discovery document's `issuer` and each token's `iss` must equal it.
    pub issuer: String,
    /// Accepted `aud` values: a token must name at least one.
    pub audiences: Vec<String>,
    /// Accepted `alg` values (RS*, PS*, ES256, ES384, EdDSA).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (at most 300).
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// The claim holding the caller's groups (a list of strings or one string); a name
    /// with dots that is not itself a claim is a path into nested objects
    /// (`realm_access.roles`).
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// The claim naming the caller.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// An unknown `kid` refetches the JWKS at most this often.
    #[serde(
        rename = "jwks_refresh_min_interval_secs",
        with = "duration_secs",
        default = "default_jwks_refresh_min_interval"
    )]
    pub jwks_refresh_min_interval: Duration,
    /// Keys fetched longer ago than this are refetched on the next use (and kept if
    /// the IdP does not answer), so a key the IdP withdrew stops being accepted.
    #[serde(
        rename = "jwks_max_age_secs",
        with = "duration_secs",
        default = "default_jwks_max_age"
    )]
    pub jwks_max_age: Duration,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".to_string()]
}
fn default_leeway_secs() -> u64 {
    30
}
fn default_roles_claim() -> String {
    "groups".to_string()
}
fn default_subject_claim() -> String {
    "sub".to_string()
}
fn default_jwks_refresh_min_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_jwks_max_age() -> Duration {
    Duration::from_secs(3600)
}

/// Durations in `freshet.yaml` are whole seconds.
mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl OidcConfig {
    /// A configuration with every default: RS256, 30 s leeway, `groups`, `sub`.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences,
            algorithms: default_algorithms(),
            leeway_secs: default_leeway_secs(),
            roles_claim: default_roles_claim(),
            subject_claim: default_subject_claim(),
            jwks_refresh_min_interval: default_jwks_refresh_min_interval(),
            jwks_max_age: default_jwks_max_age(),
        }
    }

    /// Checks the configuration; returns the allowed algorithms.
    pub fn validate(&self) -> Result<Vec<Algorithm>, OidcError> {
        let config = |m: String| Err(OidcError::Config(m));
        match reqwest::Url::parse(&self.issuer) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if url.query().is_some() || url.fragment().is_some() {
                    return config("issuer: may not have a query or fragment".into());
                }
            }
            _ => return config(format!("issuer: '{}' is not an http(s) URL", self.issuer)),
        }
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.trim().is_empty()) {
            return config("audiences: name at least one, none empty".into());
        }
        if self.algorithms.is_empty() {
            return config("algorithms: name at least one (e.g. RS256)".into());
        }
        let mut algorithms = Vec::with_capacity(self.algorithms.len());
        for name in &self.algorithms {
            let Ok(alg) = Algorithm::from_str(name) else {
                return config(format!(
                    "algorithms: '{name}' is not one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA"
                ));
            };
            if alg.family() == AlgorithmFamily::Hmac {
                return config(format!(
                    "algorithms: '{name}' needs a shared secret; an issuer's JWKS publishes public keys"
                ));
            }
            algorithms.push(alg);
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return config(format!("leeway_secs: at most {MAX_LEEWAY_SECS}"));
        }
        if self.roles_claim.is_empty() || self.subject_claim.is_empty() {
            return config("roles_claim and subject_claim may not be empty".into());
        }
        Ok(algorithms)
    }
}

/// A token that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJwt {
    /// The `subject_claim` (by default `sub`).
    pub subject: String,
    /// The `iss` claim: the configured issuer.
    pub issuer: String,
    /// The `roles_claim` (by default `groups`); empty when the token has none.
    pub groups: Vec<String>,
    /// The `exp` claim, seconds since the epoch.
    pub expires_at: i64,
    /// Every claim of the token.
    pub claims: Value,
}

/// Why a token was refused or could not be judged. [`OidcError::http_status`] tells the
/// HTTP layer which answer to give. No message carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The `auth.oidc` configuration is wrong (at start-up).
    #[error("oidc config: {0}")]
    Config(String),
    /// Not a JWS compact token, or its parts cannot be read.
    #[error("bearer token is malformed: {0}")]
    Malformed(String),
    /// The header names no `kid`, so no key of the JWKS can be chosen.
    #[error("bearer token header has no kid")]
    MissingKid,
    /// The header's `alg` is not on the allow-list, or does not fit the key.
    #[error("bearer token algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    /// The IdP does not publish a key with the token's `kid` (after a refetch).
    #[error("bearer token is signed by an unknown key (kid {0})")]
    UnknownKey(String),
    /// The signature does not verify with the published key.
    #[error("bearer token signature is invalid")]
    BadSignature,
    #[error("bearer token has expired")]
    Expired,
    #[error("bearer token is not valid yet (nbf)")]
    NotYetValid,
    #[error("bearer token issuer is not the configured issuer")]
    WrongIssuer,
    #[error("bearer token audience is not one this server accepts")]
    WrongAudience,
    /// A claim is missing or has the wrong type.
    #[error("bearer token claim {claim}: {problem}")]
    BadClaim { claim: String, problem: String },
    /// The IdP could not be reached (or answered an HTTP error) while a key was needed.
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
    /// The IdP answered, but its discovery document or JWKS cannot be used.
    #[error("identity provider answer unusable: {0}")]
    BadProvider(String),
}

impl OidcError {
    /// 401 for a token that is refused, 503 when the IdP is needed and cannot be used,
    /// 500 for a configuration error.
    pub fn http_status(&self) -> u16 {
        match self {
            OidcError::Config(_) => 500,
            OidcError::Unavailable(_) | OidcError::BadProvider(_) => 503,
            _ => 401,
        }
    }

    /// True when the token itself was judged and refused (HTTP 401).
    pub fn is_invalid_token(&self) -> bool {
        self.http_status() == 401
    }

    fn claim(claim: &str, problem: &str) -> Self {
        OidcError::BadClaim {
            claim: claim.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// Validates Bearer JWTs of one issuer. Cheap to clone: clones share the key cache.
#[derive(Clone)]
pub struct OidcVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.inner.cfg.issuer)
            .finish_non_exhaustive()
    }
}

struct Inner {
    cfg: OidcConfig,
    algorithms: Vec<Algorithm>,
    http: reqwest::Client,
    /// The keys in use; read on every token, replaced whole by a refresh.
    keys: RwLock<Arc<KeySet>>,
    /// Held while the IdP is asked, so concurrent unknown `kid`s make one request.
    refresh: tokio::sync::Mutex<RefreshState>,
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, CachedKey>,
    /// When this set was fetched; `None` before the first fetch.
    fetched_at: Option<Instant>,
    /// Counts successful fetches, so a waiter sees that another task refreshed.
    generation: u64,
}

#[derive(Clone)]
struct CachedKey {
    key: DecodingKey,
    /// The JWK's own `alg`, when it names one: the token's must then be the same.
    alg: Option<Algorithm>,
}

#[derive(Default)]
struct RefreshState {
    /// From discovery; forgotten when a JWKS fetch fails, so the next one rediscovers.
    jwks_uri: Option<String>,
    last_attempt: Option<Instant>,
    /// Why the last attempt failed, if it did.
    last_error: Option<OidcError>,
}

/// What the header says, checked against the allow-list.
struct TokenHeader {
    alg: Algorithm,
    kid: String,
}

impl OidcVerifier {
    /// Checks the configuration and prepares the HTTP client; does not contact the
    /// IdP (discovery happens on the first token).
    pub fn new(cfg: OidcConfig) -> Result<Self, OidcError> {
        let algorithms = cfg.validate()?;
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(OidcError::Config(
                "jsonwebtoken has no crypto provider (enable exactly one backend feature)".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Config(format!("http client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                algorithms,
                http,
                keys: RwLock::new(Arc::new(KeySet::default())),
                refresh: tokio::sync::Mutex::new(RefreshState::default()),
            }),
        })
    }

    /// The configuration this verifier was built from.
    pub fn config(&self) -> &OidcConfig {
        &self.inner.cfg
    }

    /// Verifies a Bearer token (without the `Bearer ` prefix).
    pub async fn verify(&self, token: &str) -> Result<VerifiedJwt, OidcError> {
        let result = self.verify_inner(token).await;
        match &result {
            Ok(v) => tracing::debug!(sub = %v.subject, "oidc token accepted"),
            Err(e) => tracing::debug!(error = %e, "oidc token refused"),
        }
        result
    }

    async fn verify_inner(&self, token: &str) -> Result<VerifiedJwt, OidcError> {
        let header = self.read_header(token)?;
        let key = self.key_for(&header.kid).await?;
        if key.key.family() != header.alg.family() || key.alg.is_some_and(|a| a != header.alg) {
            return Err(OidcError::AlgorithmNotAllowed(format!(
                "{:?} (key {} is for another algorithm)",
                header.alg,
                printable(&header.kid)
            )));
        }
        let cfg = &self.inner.cfg;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&cfg.audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = cfg.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        let data = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|e| map_jwt_error(e.kind(), header.alg))?;
        self.read_claims(data.claims)
    }

    /// Parses the header ourselves first, so `alg` is judged against the allow-list by
    /// its name (`none` included) before any key is looked up.
    fn read_header(&self, token: &str) -> Result<TokenHeader, OidcError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(OidcError::Malformed(format!(
                "longer than {MAX_TOKEN_BYTES} bytes"
            )));
        }
        let mut parts = token.split('.');
        let (Some(head), Some(_), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OidcError::Malformed("not three dot-separated parts".into()));
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(head)
            .map_err(|_| OidcError::Malformed("header is not base64url".into()))?;
        let header: Value = serde_json::from_slice(&bytes)
            .map_err(|_| OidcError::Malformed("header is not JSON".into()))?;
        let Some(alg_name) = header.get("alg").and_then(Value::as_str) else {
            return Err(OidcError::Malformed("header has no alg".into()));
        };
        let allowed = self.inner.cfg.algorithms.iter().any(|a| a == alg_name);
        let alg = match Algorithm::from_str(alg_name) {
            Ok(alg) if allowed && self.inner.algorithms.contains(&alg) => alg,
            _ => return Err(OidcError::AlgorithmNotAllowed(printable(alg_name))),
        };
        match header.get("kid").and_then(Value::as_str) {
            Some(kid) if !kid.is_empty() => Ok(TokenHeader {
                alg,
                kid: kid.to_string(),
            }),
            _ => Err(OidcError::MissingKid),
        }
    }

    fn read_claims(&self, claims: Value) -> Result<VerifiedJwt, OidcError> {
        let cfg = &self.inner.cfg;
        // jsonwebtoken checked iss; insist it is one string, exactly ours.
        match claims.get("iss").and_then(Value::as_str) {
            Some(iss) if iss == cfg.issuer => {}
            _ => return Err(OidcError::WrongIssuer),
        }
        let subject = match claims.get(&cfg.subject_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(OidcError::claim(&cfg.subject_claim, "is not a string")),
            None => return Err(OidcError::claim(&cfg.subject_claim, "is missing")),
        };
        let groups = match claim_at(&claims, &cfg.roles_claim) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => {
                let mut groups = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => groups.push(s.clone()),
                        _ => {
                            return Err(OidcError::claim(
                                &cfg.roles_claim,
                                "holds something other than strings",
                            ));
                        }
                    }
                }
                groups
            }
            Some(_) => {
                return Err(OidcError::claim(
                    &cfg.roles_claim,
                    "is not a string or a list of strings",
                ));
            }
        };
        let Some(expires_at) = claims.get("exp").and_then(Value::as_i64) else {
            return Err(OidcError::claim("exp", "is not a whole number"));
        };
        Ok(VerifiedJwt {
            subject,
            issuer: cfg.issuer.clone(),
            groups,
            expires_at,
            claims,
        })
    }

    fn current_keys(&self) -> Arc<KeySet> {
        match self.inner.keys.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn install_keys(&self, keys: KeySet) {
        let keys = Arc::new(keys);
        match self.inner.keys.write() {
            Ok(mut guard) => *guard = keys,
            Err(poisoned) => *poisoned.into_inner() = keys,
        }
    }

    /// The key for `kid`: from the cache, or after a (rate-limited) refetch.
    async fn key_for(&self, kid: &str) -> Result<CachedKey, OidcError> {
        let cfg = &self.inner.cfg;
        let seen = self.current_keys();
        let fresh = seen
            .fetched_at
            .is_some_and(|t| t.elapsed() < cfg.jwks_max_age);
        if fresh && let Some(key) = seen.by_kid.get(kid) {
            return Ok(key.clone());
        }

        let mut state = self.inner.refresh.lock().await;
        let now = self.current_keys();
        if now.generation != seen.generation {
            // Another task refreshed while this one waited: its answer stands.
            return now
                .by_kid
                .get(kid)
                .cloned()
                .ok_or_else(|| OidcError::UnknownKey(printable(kid)));
        }
        if let Some(last) = state.last_attempt
            && last.elapsed() < cfg.jwks_refresh_min_interval
        {
            if let Some(key) = now.by_kid.get(kid) {
                return Ok(key.clone()); // stale, but asked too recently to ask again
            }
            return Err(match &state.last_error {
                Some(e) => e.clone(),
                None => OidcError::UnknownKey(printable(kid)),
            });
        }

        state.last_attempt = Some(Instant::now());
        match self.fetch_keys(&mut state, now.generation + 1).await {
            Ok(keys) => {
                state.last_error = None;
                let key = keys.by_kid.get(kid).cloned();
                let mut kids: Vec<&str> = keys.by_kid.keys().map(String::as_str).collect();
                kids.sort_unstable();
                tracing::info!(issuer = %cfg.issuer, kids = ?kids, "oidc jwks fetched");
                self.install_keys(keys);
                key.ok_or_else(|| OidcError::UnknownKey(printable(kid)))
            }
            Err(e) => {
                tracing::warn!(issuer = %cfg.issuer, error = %e, "oidc jwks fetch failed");
                state.last_error = Some(e.clone());
                state.jwks_uri = None;
                // Keys already known stay usable while the IdP is away.
                now.by_kid.get(kid).cloned().ok_or(e)
            }
        }
    }

    /// Discovery (once, until a JWKS fetch fails) then the JWKS.
    async fn fetch_keys(
        &self,
        state: &mut RefreshState,
        generation: u64,
    ) -> Result<KeySet, OidcError> {
        let jwks_uri = match &state.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let jwks = self.get_json(&jwks_uri, "jwks").await?;
        let Some(entries) = jwks.get("keys").and_then(Value::as_array) else {
            return Err(OidcError::BadProvider(format!(
                "jwks {jwks_uri}: no 'keys' list"
            )));
        };
        let mut by_kid = HashMap::new();
        for entry in entries {
            match usable_key(entry) {
                Ok(Some((kid, key))) => {
                    by_kid.insert(kid, key);
                }
                Ok(None) => {}
                Err(why) => tracing::warn!(jwks = %jwks_uri, why, "oidc jwk skipped"),
            }
        }
        Ok(KeySet {
            by_kid,
            fetched_at: Some(Instant::now()),
            generation,
        })
    }

    /// Reads the discovery document, checks its issuer, returns its `jwks_uri`.
    async fn discover(&self) -> Result<String, OidcError> {
        let issuer = &self.inner.cfg.issuer;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let doc = self.get_json(&url, "discovery").await?;
        match doc.get("issuer").and_then(Value::as_str) {
            Some(named) if named == issuer => {}
            Some(named) => {
                return Err(OidcError::BadProvider(format!(
                    "discovery {url}: names issuer '{}', not the configured '{issuer}'",
                    printable(named)
                )));
            }
            None => {
                return Err(OidcError::BadProvider(format!(
                    "discovery {url}: no issuer"
                )));
            }
        }
        let Some(jwks_uri) = doc.get("jwks_uri").and_then(Value::as_str) else {
            return Err(OidcError::BadProvider(format!(
                "discovery {url}: no jwks_uri"
            )));
        };
        match reqwest::Url::parse(jwks_uri) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(OidcError::BadProvider(format!(
                    "discovery {url}: jwks_uri is not an http(s) URL"
                )));
            }
        }
        tracing::info!(issuer = %issuer, jwks_uri, "oidc discovery read");
        Ok(jwks_uri.to_string())
    }

    async fn get_json(&self, url: &str, what: &str) -> Result<Value, OidcError> {
        let unavailable = |e: reqwest::Error| OidcError::Unavailable(format!("{what} {url}: {e}"));
        let mut resp = self
            .inner
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(unavailable)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(OidcError::Unavailable(format!(
                "{what} {url}: HTTP {status}"
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(OidcError::BadProvider(format!(
                    "{what} {url}: larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body)
            .map_err(|e| OidcError::BadProvider(format!("{what} {url}: not JSON: {e}")))
    }
}

/// A JWKS entry as a verification key: `Ok(None)` for keys that are not for signatures
/// or have no `kid`; `Err` says why a signing key cannot be used.
fn usable_key(entry: &Value) -> Result<Option<(String, CachedKey)>, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| format!("unreadable: {e}"))?;
    let Some(kid) = jwk.common.key_id.clone() else {
        return Ok(None);
    };
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Ok(None);
    }
    match jwk.algorithm {
        AlgorithmParameters::RSA(_)
        | AlgorithmParameters::EllipticCurve(_)
        | AlgorithmParameters::OctetKeyPair(_) => {}
        // Symmetric or unknown key types are never accepted from a JWKS.
        _ => return Err(format!("kid {}: not a public signing key", printable(&kid))),
    }
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(a) => match Algorithm::try_from(a) {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None), // an encryption algorithm: not for us
        },
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("kid {}: {e}", printable(&kid)))?;
    Ok(Some((kid, CachedKey { key, alg })))
}

/// The claim named `name`, or, when there is none and the name has dots, the value at
/// that path of nested objects.
fn claim_at<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    if !name.contains('.') {
        return None;
    }
    name.split('.').try_fold(claims, |v, part| v.get(part))
}

/// jsonwebtoken's verdicts as ours. Its messages are not passed on: some quote the
/// token's decoded content.
fn map_jwt_error(kind: &ErrorKind, alg: Algorithm) -> OidcError {
    match kind {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidKeyFormat => OidcError::BadSignature,
        ErrorKind::ExpiredSignature => OidcError::Expired,
        ErrorKind::ImmatureSignature => OidcError::NotYetValid,
        ErrorKind::InvalidIssuer => OidcError::WrongIssuer,
        ErrorKind::InvalidAudience => OidcError::WrongAudience,
        ErrorKind::InvalidSubject => OidcError::claim("sub", "is not accepted"),
        ErrorKind::MissingRequiredClaim(c) => OidcError::claim(c, "is missing"),
        ErrorKind::InvalidClaimFormat(c) => OidcError::claim(c, "has the wrong type"),
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm => OidcError::AlgorithmNotAllowed(format!("{alg:?}")),
        ErrorKind::InvalidToken => OidcError::Malformed("not a JWS this server accepts".into()),
        ErrorKind::Base64(_) => OidcError::Malformed("a part is not base64url".into()),
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            OidcError::Malformed("the claims are not a JSON object".into())
        }
        _ => OidcError::Malformed("unreadable".into()),
    }
}

/// An input-derived name (a `kid`, an `alg`) fit for a message or a log: printable
/// ASCII only, at most 64 characters.
fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OidcConfig {
        OidcConfig::new("http://127.0.0.1:1", vec!["freshet".into()])
    }

    #[test]
    fn yaml_defaults_and_unknown_fields() {
        let c: OidcConfig =
            serde_yaml_ng::from_str("issuer: https://idp.example\naudiences: [freshet]\n")
                .expect("minimal config");
        assert_eq!(
            c,
            OidcConfig::new("https://idp.example", vec!["freshet".into()])
        );
        assert_eq!(c.jwks_refresh_min_interval, Duration::from_secs(10));
        let c: OidcConfig = serde_yaml_ng::from_str(
            "issuer: https://idp.example\naudiences: [a]\njwks_refresh_min_interval_secs: 2\nleeway_secs: 5\n",
        )
        .expect("config with seconds");
        assert_eq!(c.jwks_refresh_min_interval, Duration::from_secs(2));
        assert_eq!(c.leeway_secs, 5);
        assert!(
            serde_yaml_ng::from_str::<OidcConfig>(
                "issuer: https://idp.example\naudiences: [a]\nissuers: [b]\n"
            )
            .is_err()
        );
    }

    #[test]
    fn config_rejects_hmac_none_and_empty_audiences() {
        for (alg, what) in [("HS256", "shared secret"), ("none", "not one of")] {
            let mut c = cfg();
            c.algorithms = vec![alg.into()];
            match OidcVerifier::new(c) {
                Err(OidcError::Config(m)) => assert!(m.contains(what), "{m}"),
                other => panic!("{alg}: {other:?}"),
            }
        }
        let mut c = cfg();
        c.audiences.clear();
        assert!(matches!(OidcVerifier::new(c), Err(OidcError::Config(_))));
        let mut c = cfg();
        c.issuer = "ftp://idp".into();
        assert!(matches!(OidcVerifier::new(c), Err(OidcError::Config(_))));
    }

    #[test]
    fn printable_truncates_and_masks() {
        assert_eq!(printable("k1"), "k1");
        assert_eq!(printable("a\nb"), "a?b");
        assert_eq!(printable(&"x".repeat(100)).chars().count(), 65);
    }

    #[test]
    fn nested_roles_claim() {
        let claims = serde_json::json!({"realm_access": {"roles": ["a"]}, "x.y": 1});
        assert_eq!(
            claim_at(&claims, "realm_access.roles"),
            Some(&serde_json::json!(["a"]))
        );
        assert_eq!(claim_at(&claims, "x.y"), Some(&serde_json::json!(1)));
        assert_eq!(claim_at(&claims, "nope.no"), None);
    }
}
