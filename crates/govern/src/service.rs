//! The governance service the server and the loop hold: one authenticator, one audit
//! chain, the token store, approvals, the inventory and MLflow's object permissions.

use crate::GovernError;
use crate::approvals::Approvals;
use crate::audit::{AuditConfig, AuditError, AuditEvent, AuditLog, Outcome};
use crate::authn::Authenticator;
use crate::identity::{Grant, Principal};
use crate::inventory::{Entry, InventoryStore, Patch};
use crate::permissions::PermissionStore;
use crate::tokens::{NewToken, TokenInfo};
use chrono::{DateTime, Utc};
use freshet_core::config_govern::Governance as Facts;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Identity, authorization and the audit, for every request and every loop decision.
pub struct Governance {
    authn: Authenticator,
    audit: AuditLog,
    audit_config: AuditConfig,
    approvals: Arc<Approvals>,
    inventory: InventoryStore,
    permissions: PermissionStore,
    facts: BTreeMap<String, Facts>,
    metrics_public: bool,
}

impl Governance {
    /// Opens the audit chain of `audit_config` (taking its lock) behind `authn`.
    pub fn open(
        authn: Authenticator,
        audit_config: AuditConfig,
        approvals: Arc<Approvals>,
        inventory: (InventoryStore, BTreeMap<String, Facts>),
        permissions: PermissionStore,
        metrics_public: bool,
    ) -> Result<Self, AuditError> {
        let audit = AuditLog::open(audit_config.clone())?;
        Ok(Governance {
            authn,
            audit,
            audit_config,
            approvals,
            inventory: inventory.0,
            permissions,
            facts: inventory.1,
            metrics_public,
        })
    }

    /// Where the chain, its checkpoints and its keys are.
    pub fn audit_config(&self) -> &AuditConfig {
        &self.audit_config
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The model inventory as of today.
    pub fn inventory(&self) -> Result<Vec<Entry>, GovernError> {
        self.inventory.entries(&self.facts, Utc::now().date_naive())
    }

    /// Updates a declared model's inventory facts on behalf of `by`.
    pub fn update_inventory(
        &self,
        model: &str,
        patch: &Patch,
        by: &Principal,
    ) -> Result<(), GovernError> {
        if !self.facts.contains_key(model) {
            return Err(GovernError::NotFound {
                what: "model",
                name: model.to_string(),
            });
        }
        self.inventory.update(model, patch, &by.name)
    }

    /// MLflow's per-object permissions (READ, EDIT, MANAGE on an experiment or a
    /// registered model).
    pub fn permissions(&self) -> &PermissionStore {
        &self.permissions
    }

    /// Maker-checker approvals.
    pub fn approvals(&self) -> &Arc<Approvals> {
        &self.approvals
    }

    pub fn metrics_public(&self) -> bool {
        self.metrics_public || !self.authn.enabled()
    }

    /// Creates an API token on behalf of `by` (the request is audited by the caller's
    /// gate; the token's secret never is).
    pub fn create_token(
        &self,
        by: &Principal,
        name: &str,
        grants: Vec<Grant>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<NewToken, GovernError> {
        let t = self
            .authn
            .tokens()
            .create(name, grants, expires_at, &by.name)?;
        tracing::info!(token = %t.info.name, by = %by.name, "token created");
        Ok(t)
    }

    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>, GovernError> {
        self.authn.tokens().list()
    }

    pub fn revoke_token(&self, by: &Principal, name: &str) -> Result<TokenInfo, GovernError> {
        let t = self.authn.tokens().revoke(name)?;
        tracing::info!(token = %name, by = %by.name, "token revoked");
        Ok(t)
    }

    /// Records one decision of the loop (a promotion, a rollback, a retrain) under the
    /// `system:<component>` principal.
    pub fn record_decision(
        &self,
        component: &str,
        action: &str,
        resource: &str,
        outcome: Outcome,
        detail: BTreeMap<String, String>,
    ) -> Result<u64, AuditError> {
        self.audit.append_blocking(AuditEvent {
            principal: format!("system:{component}"),
            action: action.to_string(),
            resource: resource.to_string(),
            request_id: uuid_like(),
            outcome,
            detail,
        })
    }
}

fn uuid_like() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}
