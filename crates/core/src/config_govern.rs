//! The `auth` and `audit` sections of `freshet.yaml`: who may call the server and where
//! the audit chain lives. The roles and scopes named here are checked by `govern`; this
//! module only holds their configured shape.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Authentication and authorization in front of every route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Off is allowed only when the server listens on a loopback address, and is said
    /// loudly at start-up. `freshet init` and `freshet demo` turn it on.
    pub enabled: bool,
    /// SQLite file with API tokens and approvals, relative to the config file.
    pub store: String,
    /// Where `freshet init` and `freshet demo` write the first admin token (0600); the
    /// CLI reads it when `--token` and `FRESHET_TOKEN` are not given.
    pub admin_token_file: String,
    /// Whether `/metrics` answers without credentials (`/healthz`, `/readyz` always do).
    pub metrics_public: bool,
    /// Bearer JWTs from an OpenID Connect issuer.
    pub oidc: Option<OidcSettings>,
    /// What each value of the OIDC roles claim (e.g. a group) grants.
    pub groups: BTreeMap<String, Vec<GrantConfig>>,
    /// TLS on the listener.
    pub tls: Option<TlsConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            store: "freshet-data/govern.db".into(),
            admin_token_file: ".freshet/admin.token".into(),
            metrics_public: true,
            oidc: None,
            groups: BTreeMap::new(),
            tls: None,
        }
    }
}

/// Roles over the resources matching the scope globs (`stream:pay*`, `model:fraud`, `*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    pub roles: Vec<String>,
    #[serde(default = "all")]
    pub scopes: Vec<String>,
}

fn all() -> Vec<String> {
    vec!["*".into()]
}

/// An OpenID Connect issuer whose access tokens the server accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Issuer URL; its `/.well-known/openid-configuration` names the JWKS.
    pub issuer: String,
    /// Accepted `aud` values (at least one).
    pub audiences: Vec<String>,
    /// Allowed signing algorithms.
    #[serde(default = "default_algs")]
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The claim whose values map to roles through `auth.groups`.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// A token signed with a key the cache does not know refetches the JWKS at most
    /// this often (a rotation is picked up within this time, without a restart).
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_min_interval_secs: u64,
}

fn default_jwks_refresh() -> u64 {
    10
}

fn default_algs() -> Vec<String> {
    vec!["RS256".into()]
}
fn default_leeway() -> u64 {
    30
}
fn default_roles_claim() -> String {
    "groups".into()
}

/// Certificate chain and private key, PEM files relative to the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: String,
    pub key: String,
}

/// The audit chain: every mutating request and every decision of the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSettings {
    /// Folder of the chain's records, relative to the config file.
    pub dir: String,
    /// Folder of the signed checkpoints, kept apart from the records.
    pub checkpoint_dir: String,
    /// Ed25519 signing key (created 0600 if missing); `audit.pub` is written beside it.
    pub key_file: String,
    /// A checkpoint is signed after this many records...
    pub checkpoint_every: u64,
    /// ...or this many seconds, whichever comes first.
    pub checkpoint_interval_secs: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            dir: "freshet-data/audit".into(),
            checkpoint_dir: "freshet-data/audit-checkpoints".into(),
            key_file: ".freshet/audit.key".into(),
            checkpoint_every: 10_000,
            checkpoint_interval_secs: 60,
        }
    }
}

pub(crate) fn validate(auth: &AuthConfig, audit: &AuditSettings, errs: &mut Vec<ConfigError>) {
    if auth.store.trim().is_empty() {
        errs.push(ConfigError::new("auth.store", "must not be empty"));
    }
    if let Some(o) = &auth.oidc {
        let ok = o
            .issuer
            .strip_prefix("https://")
            .or_else(|| o.issuer.strip_prefix("http://"))
            .is_some_and(|r| !r.is_empty());
        if !ok {
            errs.push(ConfigError::new(
                "auth.oidc.issuer",
                "must be an https:// (or loopback http://) URL",
            ));
        }
        if o.audiences.is_empty() {
            errs.push(ConfigError::new(
                "auth.oidc.audiences",
                "at least one audience",
            ));
        }
        for (i, a) in o.algorithms.iter().enumerate() {
            if !matches!(
                a.as_str(),
                "RS256"
                    | "RS384"
                    | "RS512"
                    | "PS256"
                    | "PS384"
                    | "PS512"
                    | "ES256"
                    | "ES384"
                    | "EdDSA"
            ) {
                errs.push(ConfigError::new(
                    format!("auth.oidc.algorithms[{i}]"),
                    "must be an asymmetric JWS algorithm (RS256, PS256, ES256, EdDSA, ...)",
                ));
            }
        }
    }
    for (group, grants) in &auth.groups {
        for (i, g) in grants.iter().enumerate() {
            if g.roles.is_empty() {
                errs.push(ConfigError::new(
                    format!("auth.groups.{group}[{i}].roles"),
                    "at least one role",
                ));
            }
        }
    }
    if audit.dir.trim().is_empty() {
        errs.push(ConfigError::new("audit.dir", "must not be empty"));
    }
    if audit.checkpoint_dir.trim().is_empty() || audit.checkpoint_dir == audit.dir {
        errs.push(ConfigError::new(
            "audit.checkpoint_dir",
            "must be a folder other than audit.dir",
        ));
    }
    if audit.checkpoint_every == 0 {
        errs.push(ConfigError::new(
            "audit.checkpoint_every",
            "must be at least 1",
        ));
    }
    if audit.checkpoint_interval_secs == 0 {
        errs.push(ConfigError::new(
            "audit.checkpoint_interval_secs",
            "must be at least 1",
        ));
    }
}

/// A model's risk tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskTier {
    #[default]
    Low,
    Medium,
    High,
}

impl RiskTier {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskTier::Low => "low",
            RiskTier::Medium => "medium",
            RiskTier::High => "high",
        }
    }
}

/// A model's governance facts: `models.<m>.governance`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Governance {
    pub risk_tier: RiskTier,
    /// Who answers for the model (a team or a person's handle, not an e-mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intended_use: Option<String>,
    /// Days between reviews.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_every_days: Option<u32>,
    /// The last review's date (YYYY-MM-DD).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_review: Option<chrono::NaiveDate>,
}

impl Governance {
    pub fn is_default(&self) -> bool {
        *self == Governance::default()
    }
}

/// Which tiers need a second person's approval before a version becomes champion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsConfig {
    pub required_tiers: Vec<RiskTier>,
    /// An approval is good for this many hours.
    pub ttl_hours: u64,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            required_tiers: vec![RiskTier::High],
            ttl_hours: 72,
        }
    }
}
