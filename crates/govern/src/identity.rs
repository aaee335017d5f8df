//! Principals, roles, scopes, and the one authorization check every route goes through.
//!
//! A [`Principal`] is whoever a request authenticated as (an API token, HTTP Basic with a
//! token as the password, or an OIDC JWT whose groups map to grants). It holds
//! [`Grant`]s: a set of [`Role`]s limited to resources whose names match the grant's
//! scope globs (`stream:payments*`, `model:fraud`, `*`). [`Principal::may`] answers
//! whether an [`Action`] on a [`Resource`] is allowed.

use crate::GovernError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a holder may do. Each role adds [`Action`]s; admin may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads: status, metrics, tables, runs, versions, audit, lineage.
    Viewer,
    /// Pushes events into streams and labels back through feedback.
    Producer,
    /// Invokes scoring endpoints.
    Scorer,
    /// Tracks experiments and runs, registers model versions.
    DataScientist,
    /// Signs off promotions (maker-checker).
    Approver,
    /// Moves rollouts: promote, roll back, move aliases.
    Operator,
    /// Everything, including tokens, inventory and deletions.
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Viewer,
        Role::Producer,
        Role::Scorer,
        Role::DataScientist,
        Role::Approver,
        Role::Operator,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Producer => "producer",
            Role::Scorer => "scorer",
            Role::DataScientist => "data_scientist",
            Role::Approver => "approver",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Whether this role permits `action` (scope aside).
    pub fn permits(self, action: Action) -> bool {
        use Action::*;
        match self {
            Role::Admin => true,
            Role::Viewer => action == Read,
            Role::Producer => matches!(action, Read | Ingest | Feedback),
            Role::Scorer => matches!(action, Read | Score),
            Role::DataScientist => matches!(action, Read | Track | Register | Score),
            Role::Approver => matches!(action, Read | Approve),
            Role::Operator => matches!(action, Read | Rollout),
        }
    }
}

impl std::str::FromStr for Role {
    type Err = GovernError;
    fn from_str(s: &str) -> Result<Self, GovernError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                GovernError::invalid(
                    "role",
                    format!(
                        "unknown role '{s}'; expected one of {}",
                        Role::ALL.map(Role::as_str).join(", ")
                    ),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Read,
    Ingest,
    Feedback,
    Score,
    /// Experiments, runs, params, metrics, logged models, artifacts.
    Track,
    /// Create registered models and versions.
    Register,
    Approve,
    /// Aliases, stages, promotion, rollback.
    Rollout,
    /// Tokens, inventory, deletions, anything else administrative.
    Manage,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Ingest => "ingest",
            Action::Feedback => "feedback",
            Action::Score => "score",
            Action::Track => "track",
            Action::Register => "register",
            Action::Approve => "approve",
            Action::Rollout => "rollout",
            Action::Manage => "manage",
        }
    }

    /// Whether the action changes state (and so is audited whatever its outcome).
    pub fn mutates(self) -> bool {
        !matches!(self, Action::Read | Action::Score)
    }
}

/// What an action is on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    Stream(String),
    Model(String),
    Experiment(String),
    /// Not tied to one stream or model: tokens, the audit, server-wide reads.
    System,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resource::Stream(n) => write!(f, "stream:{n}"),
            Resource::Model(n) => write!(f, "model:{n}"),
            Resource::Experiment(n) => write!(f, "experiment:{n}"),
            Resource::System => f.write_str("system"),
        }
    }
}

/// Roles limited to the resources whose `kind:name` matches one of the scope globs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub roles: Vec<Role>,
    /// Globs over `stream:<name>`, `model:<name>`, `experiment:<name>`; `*` (the
    /// default) is everything. System resources need an unscoped (`*`) grant.
    #[serde(default = "all_scopes")]
    pub scopes: Vec<String>,
}

fn all_scopes() -> Vec<String> {
    vec!["*".to_string()]
}

impl Grant {
    pub fn new(roles: Vec<Role>, scopes: Vec<String>) -> Result<Self, GovernError> {
        let g = Grant { roles, scopes };
        g.validate("grant")?;
        Ok(g)
    }

    /// Checks the globs parse and the grant names at least one role.
    pub fn validate(&self, field: &str) -> Result<(), GovernError> {
        if self.roles.is_empty() {
            return Err(GovernError::invalid(
                format!("{field}.roles"),
                "at least one role",
            ));
        }
        if self.scopes.is_empty() {
            return Err(GovernError::invalid(
                format!("{field}.scopes"),
                "at least one scope (use \"*\" for everything)",
            ));
        }
        for (i, s) in self.scopes.iter().enumerate() {
            glob::Pattern::new(s).map_err(|e| {
                GovernError::invalid(format!("{field}.scopes[{i}]"), format!("bad glob: {e}"))
            })?;
            if s != "*"
                && !["stream:", "model:", "experiment:"]
                    .iter()
                    .any(|p| s.starts_with(p))
            {
                return Err(GovernError::invalid(
                    format!("{field}.scopes[{i}]"),
                    "must be \"*\" or start with stream:, model: or experiment:",
                ));
            }
        }
        Ok(())
    }

    fn covers(&self, resource: &Resource) -> bool {
        if self.scopes.iter().any(|s| s == "*") {
            return true;
        }
        if *resource == Resource::System {
            return false;
        }
        let key = resource.to_string();
        self.scopes.iter().any(|s| {
            glob::Pattern::new(s)
                .map(|p| p.matches(&key))
                .unwrap_or(false)
        })
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Token,
    Basic,
    Oidc,
    /// Authentication is off (loopback only).
    Anonymous,
    /// The loop itself (controller, rollout decisions).
    System,
}

/// Whoever a request authenticated as.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// `token:<name>`, `oidc:<subject>`, `anonymous` or `system:<component>`.
    pub name: String,
    pub method: AuthMethod,
    pub grants: Vec<Grant>,
}

impl Principal {
    /// Who acts when authentication is off: may do everything, audited as `anonymous`.
    pub fn anonymous() -> Self {
        Principal {
            name: "anonymous".into(),
            method: AuthMethod::Anonymous,
            grants: vec![Grant {
                roles: vec![Role::Admin],
                scopes: all_scopes(),
            }],
        }
    }

    /// The loop's own decisions (the controller, the rollout driver).
    pub fn system(component: &str) -> Self {
        Principal {
            name: format!("system:{component}"),
            method: AuthMethod::System,
            grants: vec![Grant {
                roles: vec![Role::Admin],
                scopes: all_scopes(),
            }],
        }
    }

    /// Whether `action` on `resource` is allowed by any grant.
    pub fn may(&self, action: Action, resource: &Resource) -> bool {
        self.grants
            .iter()
            .any(|g| g.roles.iter().any(|r| r.permits(action)) && g.covers(resource))
    }

    /// Whether some grant permits `action` on some resource (the service then checks
    /// the resource itself).
    pub fn may_somewhere(&self, action: Action) -> bool {
        self.grants
            .iter()
            .any(|g| g.roles.iter().any(|r| r.permits(action)))
    }

    /// Whether any grant gives `role` over `resource`.
    pub fn holds(&self, role: Role, resource: &Resource) -> bool {
        self.grants
            .iter()
            .any(|g| g.roles.contains(&role) && g.covers(resource))
    }

    pub fn is_admin(&self) -> bool {
        self.holds(Role::Admin, &Resource::System)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(roles: &[Role], scopes: &[&str]) -> Principal {
        Principal {
            name: "token:t".into(),
            method: AuthMethod::Token,
            grants: vec![
                Grant::new(
                    roles.to_vec(),
                    scopes.iter().map(|s| s.to_string()).collect(),
                )
                .unwrap(),
            ],
        }
    }

    #[test]
    fn roles_permit_their_actions_only() {
        let producer = p(&[Role::Producer], &["*"]);
        assert!(producer.may(Action::Ingest, &Resource::Stream("payments".into())));
        assert!(producer.may(Action::Feedback, &Resource::Model("fraud".into())));
        assert!(!producer.may(Action::Score, &Resource::Model("fraud".into())));
        assert!(!producer.may(Action::Rollout, &Resource::Model("fraud".into())));
        let viewer = p(&[Role::Viewer], &["*"]);
        assert!(viewer.may(Action::Read, &Resource::System));
        assert!(!viewer.may(Action::Ingest, &Resource::Stream("payments".into())));
        let admin = p(&[Role::Admin], &["*"]);
        assert!(admin.may(Action::Manage, &Resource::System));
        assert!(admin.is_admin());
    }

    #[test]
    fn scopes_limit_grants_by_glob() {
        let scoped = p(&[Role::Scorer], &["model:fraud*"]);
        assert!(scoped.may(Action::Score, &Resource::Model("fraud".into())));
        assert!(scoped.may(Action::Score, &Resource::Model("fraud-eu".into())));
        assert!(!scoped.may(Action::Score, &Resource::Model("churn".into())));
        assert!(!scoped.may(Action::Read, &Resource::System));
        let admin_of_one = p(&[Role::Admin], &["model:fraud"]);
        assert!(!admin_of_one.is_admin());
    }

    #[test]
    fn bad_grants_name_the_field() {
        let e = Grant::new(vec![Role::Viewer], vec!["payments".into()]).unwrap_err();
        assert!(e.to_string().starts_with("grant.scopes[0]"), "{e}");
        let e = Grant::new(vec![], vec!["*".into()]).unwrap_err();
        assert!(e.to_string().starts_with("grant.roles"), "{e}");
        let e = "superuser".parse::<Role>().unwrap_err();
        assert!(e.to_string().contains("unknown role 'superuser'"), "{e}");
    }
}
