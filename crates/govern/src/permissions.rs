//! MLflow's per-object permissions: READ, EDIT and MANAGE on one experiment or one
//! registered model, beside the roles.
//!
//! A principal's permission on an object is the higher of what its roles give over the
//! object's resource (`experiment:<name>`, `model:<name>`) and what was granted on that
//! object itself: the creator of an experiment or registered model gets MANAGE, and a
//! MANAGE holder may grant READ, EDIT or MANAGE to someone else (MLflow's
//! `experiments/permissions/*` and `registered-models/permissions/*`). Explicit grants only
//! ever add to the roles, so a principal that may read everything needs no lookup here.
//!
//! What each level allows is MLflow's: READ reads the object and its runs, versions and
//! files; EDIT also writes them (runs, metrics, tags, versions); MANAGE also deletes,
//! renames and grants. Moving a model's aliases or stages stays with the operator role
//! and maker-checker approvals: MANAGE on a model does not make its holder the one who
//! decides what is served.
//!
//! Grants are keyed by experiment id (experiments keep their id through a rename) and by
//! registered model name (moved on a rename, dropped with the model).

use crate::GovernError;
use crate::identity::{Action, AuthMethod, Principal, Resource};
use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::Mutex;

/// MLflow's permission levels, ordered: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Permission {
    Read,
    Edit,
    Manage,
}

impl Permission {
    pub const ALL: [Permission; 3] = [Permission::Read, Permission::Edit, Permission::Manage];

    /// MLflow's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Edit => "EDIT",
            Permission::Manage => "MANAGE",
        }
    }

    /// The level a request's action needs on the object it touches (`None`: the action
    /// is not a permission level's, e.g. moving aliases, which only roles allow).
    pub fn needed_for(action: Action) -> Option<Permission> {
        match action {
            Action::Read => Some(Permission::Read),
            Action::Track | Action::Register => Some(Permission::Edit),
            Action::Manage => Some(Permission::Manage),
            _ => None,
        }
    }
}

impl std::str::FromStr for Permission {
    type Err = GovernError;
    fn from_str(s: &str) -> Result<Self, GovernError> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                GovernError::invalid(
                    "permission",
                    format!("unknown permission '{s}'; expected READ, EDIT or MANAGE"),
                )
            })
    }
}

/// An object MLflow permissions are granted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Object {
    Experiment { id: String, name: String },
    Model { name: String },
}

impl Object {
    /// The resource the roles' scopes match against.
    pub fn resource(&self) -> Resource {
        match self {
            Object::Experiment { name, .. } => Resource::Experiment(name.clone()),
            Object::Model { name } => Resource::Model(name.clone()),
        }
    }

    fn key(&self) -> (&'static str, &str) {
        match self {
            Object::Experiment { id, .. } => ("experiment", id),
            Object::Model { name } => ("registered_model", name),
        }
    }
}

/// One explicit grant on an object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectGrant {
    pub principal: String,
    pub permission: Permission,
    pub granted_by: String,
}

/// The principal name a grant is for: MLflow clients name users plainly (the name HTTP
/// Basic sends, which is a token's name); `token:…` and `oidc:…` are taken as they are.
pub fn principal_name(username: &str) -> Result<String, GovernError> {
    let u = username.trim();
    if u.is_empty() || u.len() > 256 || u.chars().any(char::is_control) {
        return Err(GovernError::invalid(
            "username",
            "1 to 256 printable characters",
        ));
    }
    Ok(if u.starts_with("token:") || u.starts_with("oidc:") {
        u.to_string()
    } else {
        format!("token:{u}")
    })
}

/// The explicit grants, in the governance SQLite file.
pub struct PermissionStore {
    conn: Mutex<Connection>,
}

impl PermissionStore {
    pub fn open(path: &Path) -> Result<Self, GovernError> {
        Self::init(crate::store::open(path)?)
    }

    pub fn in_memory() -> Result<Self, GovernError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, GovernError> {
        let conn = crate::store::prepare(
            conn,
            "CREATE TABLE IF NOT EXISTS object_permissions (
                kind TEXT NOT NULL,
                object TEXT NOT NULL,
                principal TEXT NOT NULL,
                permission TEXT NOT NULL,
                granted_by TEXT NOT NULL,
                granted_at TEXT NOT NULL,
                PRIMARY KEY (kind, object, principal)
             );",
        )?;
        Ok(PermissionStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the roles of `p` give over `object`.
    pub fn from_roles(p: &Principal, object: &Object) -> Option<Permission> {
        let r = object.resource();
        let edit = match object {
            Object::Experiment { .. } => Action::Track,
            Object::Model { .. } => Action::Register,
        };
        if p.may(Action::Manage, &r) {
            Some(Permission::Manage)
        } else if p.may(edit, &r) {
            Some(Permission::Edit)
        } else if p.may(Action::Read, &r) {
            Some(Permission::Read)
        } else {
            None
        }
    }

    /// The explicit grant to `principal` on `object`, if any.
    pub fn explicit(
        &self,
        object: &Object,
        principal: &str,
    ) -> Result<Option<Permission>, GovernError> {
        let (kind, key) = object.key();
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT permission FROM object_permissions WHERE kind = ?1 AND object = ?2 AND principal = ?3",
        )?;
        let p: Option<String> = stmt
            .query_row(params![kind, key, principal], |r| r.get(0))
            .optional()?;
        p.map(|s| s.parse()).transpose()
    }

    /// The higher of the roles' and the explicit grant's permission of `p` on `object`.
    pub fn effective(
        &self,
        p: &Principal,
        object: &Object,
    ) -> Result<Option<Permission>, GovernError> {
        let roles = Self::from_roles(p, object);
        if roles == Some(Permission::Manage) {
            return Ok(roles);
        }
        Ok(roles.max(self.explicit(object, &p.name)?))
    }

    /// Whether `p` holds at least `need` on `object`.
    pub fn allows(
        &self,
        p: &Principal,
        object: &Object,
        need: Permission,
    ) -> Result<bool, GovernError> {
        Ok(self.effective(p, object)?.is_some_and(|have| have >= need))
    }

    /// The creator of `object` gets MANAGE on it. Nobody is recorded when authentication
    /// is off or for the loop's own objects: those principals may do everything anyway.
    pub fn grant_creator(&self, p: &Principal, object: &Object) -> Result<(), GovernError> {
        if matches!(p.method, AuthMethod::Anonymous | AuthMethod::System) {
            return Ok(());
        }
        self.put(object, &p.name, Permission::Manage, &p.name)
    }

    /// Grants (or changes) `principal`'s permission on `object`, on behalf of `by`.
    pub fn put(
        &self,
        object: &Object,
        principal: &str,
        permission: Permission,
        by: &str,
    ) -> Result<(), GovernError> {
        let (kind, key) = object.key();
        self.lock().execute(
            "INSERT INTO object_permissions (kind, object, principal, permission, granted_by, granted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(kind, object, principal) DO UPDATE SET
                permission = excluded.permission, granted_by = excluded.granted_by,
                granted_at = excluded.granted_at",
            params![
                kind,
                key,
                principal,
                permission.as_str(),
                by,
                Utc::now().to_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// Creates a grant that must not exist yet (MLflow's `permissions/create`).
    pub fn create(
        &self,
        object: &Object,
        principal: &str,
        permission: Permission,
        by: &str,
    ) -> Result<(), GovernError> {
        if self.explicit(object, principal)?.is_some() {
            return Err(GovernError::Conflict {
                what: "permission",
                name: format!("{principal} on {}", object.resource()),
            });
        }
        self.put(object, principal, permission, by)
    }

    /// Changes a grant that must exist (MLflow's `permissions/update`).
    pub fn update(
        &self,
        object: &Object,
        principal: &str,
        permission: Permission,
        by: &str,
    ) -> Result<(), GovernError> {
        self.existing(object, principal)?;
        self.put(object, principal, permission, by)
    }

    /// The grant that must exist, or `NotFound`.
    pub fn existing(&self, object: &Object, principal: &str) -> Result<Permission, GovernError> {
        self.explicit(object, principal)?
            .ok_or_else(|| GovernError::NotFound {
                what: "permission",
                name: format!("{principal} on {}", object.resource()),
            })
    }

    /// Removes a grant that must exist.
    pub fn delete(&self, object: &Object, principal: &str) -> Result<(), GovernError> {
        self.existing(object, principal)?;
        let (kind, key) = object.key();
        self.lock().execute(
            "DELETE FROM object_permissions WHERE kind = ?1 AND object = ?2 AND principal = ?3",
            params![kind, key, principal],
        )?;
        Ok(())
    }

    /// Every explicit grant on `object`.
    pub fn list(&self, object: &Object) -> Result<Vec<ObjectGrant>, GovernError> {
        let (kind, key) = object.key();
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT principal, permission, granted_by FROM object_permissions
             WHERE kind = ?1 AND object = ?2 ORDER BY principal",
        )?;
        let rows = stmt
            .query_map(params![kind, key], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(principal, perm, granted_by)| {
                Ok(ObjectGrant {
                    principal,
                    permission: perm.parse()?,
                    granted_by,
                })
            })
            .collect()
    }

    /// A registered model was renamed: its grants follow it.
    pub fn rename_model(&self, old: &str, new: &str) -> Result<(), GovernError> {
        self.lock().execute(
            "UPDATE object_permissions SET object = ?2 WHERE kind = 'registered_model' AND object = ?1",
            params![old, new],
        )?;
        Ok(())
    }

    /// A registered model was deleted: a later model of the same name starts afresh.
    pub fn forget_model(&self, name: &str) -> Result<(), GovernError> {
        self.lock().execute(
            "DELETE FROM object_permissions WHERE kind = 'registered_model' AND object = ?1",
            [name],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Grant, Role};

    fn p(name: &str, roles: &[Role], scopes: &[&str]) -> Principal {
        Principal {
            name: format!("token:{name}"),
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

    fn exp(id: &str, name: &str) -> Object {
        Object::Experiment {
            id: id.into(),
            name: name.into(),
        }
    }

    #[test]
    fn roles_give_levels_over_their_scope_only() {
        let ds = p(
            "ds",
            &[Role::DataScientist],
            &["experiment:fraud*", "model:fraud"],
        );
        assert_eq!(
            PermissionStore::from_roles(&ds, &exp("1", "fraud-2026")),
            Some(Permission::Edit)
        );
        assert_eq!(
            PermissionStore::from_roles(
                &ds,
                &Object::Model {
                    name: "fraud".into()
                }
            ),
            Some(Permission::Edit)
        );
        assert_eq!(PermissionStore::from_roles(&ds, &exp("2", "churn")), None);
        let viewer = p("v", &[Role::Viewer], &["*"]);
        assert_eq!(
            PermissionStore::from_roles(&viewer, &exp("2", "churn")),
            Some(Permission::Read)
        );
        let admin = p("a", &[Role::Admin], &["*"]);
        assert_eq!(
            PermissionStore::from_roles(&admin, &exp("2", "churn")),
            Some(Permission::Manage)
        );
        // Operators move aliases but do not edit a model's versions.
        let op = p("op", &[Role::Operator], &["model:fraud"]);
        assert_eq!(
            PermissionStore::from_roles(
                &op,
                &Object::Model {
                    name: "fraud".into()
                }
            ),
            Some(Permission::Read)
        );
    }

    #[test]
    fn creator_manages_and_grants_add_to_roles() {
        let store = PermissionStore::in_memory().unwrap();
        let ds = p("ds", &[Role::DataScientist], &["experiment:fraud*"]);
        let other = p("other", &[Role::DataScientist], &["experiment:churn*"]);
        let e = exp("7", "fraud-2026");
        assert_eq!(store.effective(&ds, &e).unwrap(), Some(Permission::Edit));
        store.grant_creator(&ds, &e).unwrap();
        assert!(store.allows(&ds, &e, Permission::Manage).unwrap());
        assert!(!store.allows(&other, &e, Permission::Read).unwrap());
        store
            .create(&e, &other.name, Permission::Read, &ds.name)
            .unwrap();
        assert!(store.allows(&other, &e, Permission::Read).unwrap());
        assert!(!store.allows(&other, &e, Permission::Edit).unwrap());
        let dup = store
            .create(&e, &other.name, Permission::Edit, &ds.name)
            .unwrap_err();
        assert!(matches!(dup, GovernError::Conflict { .. }), "{dup}");
        store
            .update(&e, &other.name, Permission::Edit, &ds.name)
            .unwrap();
        assert!(store.allows(&other, &e, Permission::Edit).unwrap());
        assert_eq!(store.list(&e).unwrap().len(), 2);
        store.delete(&e, &other.name).unwrap();
        assert!(!store.allows(&other, &e, Permission::Read).unwrap());
        assert!(matches!(
            store.delete(&e, &other.name).unwrap_err(),
            GovernError::NotFound { .. }
        ));
        // Anonymous and the loop record nothing: they may do everything.
        store
            .grant_creator(&Principal::anonymous(), &exp("8", "x"))
            .unwrap();
        assert!(store.list(&exp("8", "x")).unwrap().is_empty());
    }

    #[test]
    fn model_grants_follow_a_rename_and_go_with_a_delete() {
        let store = PermissionStore::in_memory().unwrap();
        let ds = p("ds", &[Role::DataScientist], &["model:fraud*"]);
        let old = Object::Model {
            name: "fraud".into(),
        };
        store.grant_creator(&ds, &old).unwrap();
        store.rename_model("fraud", "credit").unwrap();
        let new = Object::Model {
            name: "credit".into(),
        };
        // The roles do not cover `credit`; the creator's grant moved with the model.
        assert!(store.allows(&ds, &new, Permission::Manage).unwrap());
        assert!(store.explicit(&old, &ds.name).unwrap().is_none());
        store.forget_model("credit").unwrap();
        assert!(!store.allows(&ds, &new, Permission::Read).unwrap());
    }

    #[test]
    fn usernames_and_levels_parse_with_the_field_named() {
        assert_eq!(principal_name("ci").unwrap(), "token:ci");
        assert_eq!(principal_name("oidc:abc").unwrap(), "oidc:abc");
        assert!(
            principal_name(" ")
                .unwrap_err()
                .to_string()
                .starts_with("username")
        );
        assert_eq!("EDIT".parse::<Permission>().unwrap(), Permission::Edit);
        let e = "OWNER".parse::<Permission>().unwrap_err();
        assert!(e.to_string().starts_with("permission: unknown"), "{e}");
    }
}
