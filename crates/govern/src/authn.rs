//! Authentication: from an `Authorization` header to a [`Principal`].
//!
//! Three ways in, one answer: `Bearer fst_…` (an API token), `Bearer <JWT>` (an OIDC
//! access token whose roles claim maps to grants through `auth.groups`), and `Basic`
//! (user = the token's name, password = the token, as the MLflow client sends
//! `MLFLOW_TRACKING_USERNAME`/`PASSWORD`). When authentication is off every request is
//! [`Principal::anonymous`].

use crate::identity::{AuthMethod, Grant, Principal};
use crate::oidc::OidcVerifier;
use crate::tokens::TokenStore;
use base64::Engine;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a request is not authenticated. The message is safe to return and to log: it
/// never holds the credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unauthenticated {
    /// No `Authorization` header.
    Missing,
    /// A credential that was refused (unknown, revoked, expired, bad signature, ...).
    Refused(String),
    /// The identity provider could not be reached to check a token (503, retry).
    ProviderUnavailable(String),
    /// The token store failed (500).
    Internal(String),
}

impl Unauthenticated {
    pub fn message(&self) -> String {
        match self {
            Unauthenticated::Missing => {
                "credentials required: send Authorization: Bearer <token> (or Basic)".into()
            }
            Unauthenticated::Refused(why) => format!("credentials refused: {why}"),
            Unauthenticated::ProviderUnavailable(why) => {
                format!("the identity provider is unavailable: {why}")
            }
            Unauthenticated::Internal(why) => format!("authentication failed: {why}"),
        }
    }

    /// The short reason recorded in the audit.
    pub fn reason(&self) -> &str {
        match self {
            Unauthenticated::Missing => "missing credentials",
            Unauthenticated::Refused(why) => why,
            Unauthenticated::ProviderUnavailable(_) => "identity provider unavailable",
            Unauthenticated::Internal(_) => "authentication error",
        }
    }
}

/// Checks credentials.
pub struct Authenticator {
    enabled: bool,
    tokens: Arc<TokenStore>,
    oidc: Option<OidcVerifier>,
    groups: BTreeMap<String, Vec<Grant>>,
}

impl Authenticator {
    pub fn new(
        enabled: bool,
        tokens: Arc<TokenStore>,
        oidc: Option<OidcVerifier>,
        groups: BTreeMap<String, Vec<Grant>>,
    ) -> Self {
        Authenticator {
            enabled,
            tokens,
            oidc,
            groups,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn tokens(&self) -> &Arc<TokenStore> {
        &self.tokens
    }

    /// Who sent `authorization` (the header's value, if any).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
    ) -> Result<Principal, Unauthenticated> {
        if !self.enabled {
            return Ok(Principal::anonymous());
        }
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return Err(Unauthenticated::Missing);
        };
        let (scheme, cred) = value.split_once(' ').unwrap_or((value, ""));
        let cred = cred.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            if cred.starts_with("fst_") {
                return self.token(cred);
            }
            return self.jwt(cred).await;
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(cred)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Unauthenticated::Refused("malformed Basic credentials".into()))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| Unauthenticated::Refused("malformed Basic credentials".into()))?;
            return match self.tokens.authenticate_basic(user, password) {
                Ok(Ok(p)) => Ok(p),
                Ok(Err(why)) => Err(Unauthenticated::Refused(why.as_str().into())),
                Err(e) => Err(Unauthenticated::Internal(e.to_string())),
            };
        }
        Err(Unauthenticated::Refused(
            "unsupported authorization scheme (use Bearer or Basic)".into(),
        ))
    }

    fn token(&self, token: &str) -> Result<Principal, Unauthenticated> {
        match self.tokens.authenticate(token) {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(why)) => Err(Unauthenticated::Refused(why.as_str().into())),
            Err(e) => Err(Unauthenticated::Internal(e.to_string())),
        }
    }

    async fn jwt(&self, token: &str) -> Result<Principal, Unauthenticated> {
        let Some(oidc) = &self.oidc else {
            return Err(Unauthenticated::Refused("unknown token".into()));
        };
        let jwt = oidc.verify(token).await.map_err(|e| {
            if !e.is_invalid_token() {
                Unauthenticated::ProviderUnavailable(e.to_string())
            } else {
                // Not "bearer token …" bare: the audit redacts any value that begins
                // like an Authorization header, which would hide why a JWT was refused.
                Unauthenticated::Refused(format!("OIDC {e}"))
            }
        })?;
        let grants: Vec<Grant> = jwt
            .groups
            .iter()
            .filter_map(|g| self.groups.get(g))
            .flatten()
            .cloned()
            .collect();
        Ok(Principal {
            name: format!("oidc:{}", jwt.subject),
            method: AuthMethod::Oidc,
            grants,
        })
    }
}
