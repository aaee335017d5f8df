//! Maker-checker: a version of a model whose risk tier needs approval becomes champion
//! only after a second person signs off.
//!
//! Every way a version can become champion (the loop's promotion, `freshet rollout
//! promote`, the MLflow alias and stage endpoints) asks [`Approvals::check`] once. A
//! missing approval opens a request ([`Approvals::request`]); a holder of the approver
//! role over the model who is neither the requester nor the version's creator — admins
//! included — approves or rejects it. An approval expires after the configured time.
//! Rollback never asks.

use crate::GovernError;
use crate::identity::{Action, Principal, Resource};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    Rejected,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Option<State> {
        match s {
            "pending" => Some(State::Pending),
            "approved" => Some(State::Approved),
            "rejected" => Some(State::Rejected),
            _ => None,
        }
    }
}

/// One request for sign-off of a version's promotion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRequest {
    pub id: String,
    pub model: String,
    pub version: i64,
    pub tier: String,
    /// Who asked for the promotion (`system:loop` for the loop).
    pub requested_by: String,
    /// Who registered the version.
    pub version_creator: String,
    pub created_at: DateTime<Utc>,
    pub state: State,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// An approval is good until then.
    pub expires_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

impl ApprovalRequest {
    /// Approved and not yet expired at `now`.
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.state == State::Approved && self.expires_at.is_some_and(|e| now < e)
    }
}

/// What the one check answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The model's tier needs no approval.
    NotRequired,
    /// A valid approval exists.
    Approved(ApprovalRequest),
    /// A request is waiting for an approver.
    Pending(ApprovalRequest),
    /// The newest request was rejected.
    Rejected(ApprovalRequest),
    /// The newest approval expired, or nobody asked yet.
    Missing,
}

/// Why an approval or rejection was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("approval request '{0}' not found")]
    NotFound(String),
    #[error(
        "{who} may not approve promotions of model '{model}' (needs the approver role over it)"
    )]
    NotApprover { who: String, model: String },
    #[error("{who} {role} this promotion and may not also approve it (maker-checker)")]
    SelfApproval { who: String, role: &'static str },
    #[error("approval request '{id}' is already {state}")]
    AlreadyDecided { id: String, state: &'static str },
    #[error(transparent)]
    Store(#[from] GovernError),
}

/// The approval policy and its store.
pub struct Approvals {
    conn: Mutex<Connection>,
    /// Models whose tier needs approval, with their tier.
    required: std::collections::BTreeMap<String, String>,
    ttl: chrono::Duration,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("required", &self.required)
            .field("ttl_hours", &self.ttl.num_hours())
            .finish_non_exhaustive()
    }
}

impl Approvals {
    /// Opens the requests table in the governance file `path`. `tiers` names each
    /// model's risk tier; `required_tiers` the tiers that need approval.
    pub fn open(
        path: &Path,
        tiers: impl IntoIterator<Item = (String, String)>,
        required_tiers: &BTreeSet<String>,
        ttl: chrono::Duration,
    ) -> Result<Self, GovernError> {
        Self::init(crate::store::open(path)?, tiers, required_tiers, ttl)
    }

    pub fn in_memory(
        tiers: impl IntoIterator<Item = (String, String)>,
        required_tiers: &BTreeSet<String>,
        ttl: chrono::Duration,
    ) -> Result<Self, GovernError> {
        Self::init(Connection::open_in_memory()?, tiers, required_tiers, ttl)
    }

    fn init(
        conn: Connection,
        tiers: impl IntoIterator<Item = (String, String)>,
        required_tiers: &BTreeSet<String>,
        ttl: chrono::Duration,
    ) -> Result<Self, GovernError> {
        let conn = crate::store::prepare(
            conn,
            "CREATE TABLE IF NOT EXISTS approvals (
                id TEXT PRIMARY KEY,
                model TEXT NOT NULL,
                version INTEGER NOT NULL,
                tier TEXT NOT NULL,
                requested_by TEXT NOT NULL,
                version_creator TEXT NOT NULL,
                created_at TEXT NOT NULL,
                state TEXT NOT NULL,
                decided_by TEXT,
                decided_at TEXT,
                expires_at TEXT,
                note TEXT
             );
             CREATE INDEX IF NOT EXISTS approvals_model ON approvals (model, version, created_at);",
        )?;
        let required = tiers
            .into_iter()
            .filter(|(_, t)| required_tiers.contains(t))
            .collect();
        Ok(Approvals {
            conn: Mutex::new(conn),
            required,
            ttl,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tier of `model` when it needs approval.
    pub fn required_tier(&self, model: &str) -> Option<&str> {
        self.required.get(model).map(String::as_str)
    }

    /// The one check: may `version` of `model` become champion now?
    pub fn check(&self, model: &str, version: i64) -> Result<Verdict, GovernError> {
        if self.required_tier(model).is_none() {
            return Ok(Verdict::NotRequired);
        }
        let now = Utc::now();
        let newest = self.newest(model, version)?;
        Ok(match newest {
            None => Verdict::Missing,
            Some(r) if r.valid_at(now) => Verdict::Approved(r),
            Some(r) if r.state == State::Pending => Verdict::Pending(r),
            Some(r) if r.state == State::Rejected => Verdict::Rejected(r),
            Some(_) => Verdict::Missing,
        })
    }

    /// Asks for sign-off; returns the pending request already open for this version,
    /// if any.
    pub fn request(
        &self,
        model: &str,
        version: i64,
        requested_by: &str,
        version_creator: &str,
    ) -> Result<ApprovalRequest, GovernError> {
        if let Some(r) = self.newest(model, version)?
            && r.state == State::Pending
        {
            return Ok(r);
        }
        let tier = self.required_tier(model).unwrap_or("low").to_string();
        let r = ApprovalRequest {
            id: format!("apr-{}", hex::encode(rand::random::<[u8; 6]>())),
            model: model.to_string(),
            version,
            tier,
            requested_by: requested_by.to_string(),
            version_creator: version_creator.to_string(),
            created_at: Utc::now(),
            state: State::Pending,
            decided_by: None,
            decided_at: None,
            expires_at: None,
            note: None,
        };
        self.lock().execute(
            "INSERT INTO approvals (id, model, version, tier, requested_by, version_creator, created_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending')",
            params![
                r.id,
                r.model,
                r.version,
                r.tier,
                r.requested_by,
                r.version_creator,
                r.created_at.to_rfc3339()
            ],
        )?;
        tracing::info!(model, version, request = %r.id, requested_by, "promotion awaits approval");
        Ok(r)
    }

    /// Signs a request off (`approve`) or turns it down.
    pub fn decide(
        &self,
        id: &str,
        by: &Principal,
        approve: bool,
        note: Option<&str>,
    ) -> Result<ApprovalRequest, DecisionError> {
        let mut r = self
            .get(id)?
            .ok_or_else(|| DecisionError::NotFound(id.to_string()))?;
        if !by.may(Action::Approve, &Resource::Model(r.model.clone())) {
            return Err(DecisionError::NotApprover {
                who: by.name.clone(),
                model: r.model.clone(),
            });
        }
        if by.name == r.requested_by {
            return Err(DecisionError::SelfApproval {
                who: by.name.clone(),
                role: "requested",
            });
        }
        if by.name == r.version_creator {
            return Err(DecisionError::SelfApproval {
                who: by.name.clone(),
                role: "created the version of",
            });
        }
        if r.state != State::Pending {
            return Err(DecisionError::AlreadyDecided {
                id: id.to_string(),
                state: r.state.as_str(),
            });
        }
        let now = Utc::now();
        r.state = if approve {
            State::Approved
        } else {
            State::Rejected
        };
        r.decided_by = Some(by.name.clone());
        r.decided_at = Some(now);
        r.expires_at = approve.then(|| now + self.ttl);
        r.note = note.map(|n| n.chars().take(500).collect());
        let changed = self.lock().execute(
            "UPDATE approvals SET state = ?2, decided_by = ?3, decided_at = ?4, expires_at = ?5, note = ?6
             WHERE id = ?1 AND state = 'pending'",
            params![
                r.id,
                r.state.as_str(),
                r.decided_by,
                now.to_rfc3339(),
                r.expires_at.map(|e| e.to_rfc3339()),
                r.note
            ],
        ).map_err(GovernError::from)?;
        if changed == 0 {
            return Err(DecisionError::AlreadyDecided {
                id: id.to_string(),
                state: "decided",
            });
        }
        tracing::info!(request = %r.id, model = %r.model, version = r.version, by = %by.name, state = r.state.as_str(), "approval decided");
        Ok(r)
    }

    /// Requests, newest first; only `state` ones when given.
    pub fn list(&self, state: Option<State>) -> Result<Vec<ApprovalRequest>, GovernError> {
        let conn = self.lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM approvals {} ORDER BY created_at DESC",
            if state.is_some() {
                "WHERE state = ?1"
            } else {
                ""
            }
        ))?;
        let rows = match state {
            Some(s) => stmt
                .query_map([s.as_str()], row)?
                .collect::<Result<Vec<_>, _>>()?,
            None => stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?,
        };
        rows.into_iter().collect()
    }

    pub fn get(&self, id: &str) -> Result<Option<ApprovalRequest>, GovernError> {
        let conn = self.lock();
        conn.query_row(
            &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
            [id],
            row,
        )
        .optional()?
        .transpose()
    }

    fn newest(&self, model: &str, version: i64) -> Result<Option<ApprovalRequest>, GovernError> {
        let conn = self.lock();
        conn.query_row(
            &format!(
                "SELECT {COLUMNS} FROM approvals WHERE model = ?1 AND version = ?2
                 ORDER BY created_at DESC, rowid DESC LIMIT 1"
            ),
            params![model, version],
            row,
        )
        .optional()?
        .transpose()
    }

    /// For tests: moves a request's expiry.
    pub fn set_expiry(&self, id: &str, at: DateTime<Utc>) -> Result<(), GovernError> {
        self.lock().execute(
            "UPDATE approvals SET expires_at = ?2 WHERE id = ?1",
            params![id, at.to_rfc3339()],
        )?;
        Ok(())
    }
}

const COLUMNS: &str = "id, model, version, tier, requested_by, version_creator, created_at, state, decided_by, decided_at, expires_at, note";

fn time(s: &str) -> Result<DateTime<Utc>, GovernError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| GovernError::invalid("approvals.time", e.to_string()))
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ApprovalRequest, GovernError>> {
    let created_at: String = r.get(6)?;
    let state: String = r.get(7)?;
    let decided_at: Option<String> = r.get(9)?;
    let expires_at: Option<String> = r.get(10)?;
    let (id, model, version, tier, requested_by, version_creator, decided_by, note) = (
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(8)?,
        r.get(11)?,
    );
    Ok((|| {
        Ok(ApprovalRequest {
            id,
            model,
            version,
            tier,
            requested_by,
            version_creator,
            created_at: time(&created_at)?,
            state: State::parse(&state)
                .ok_or_else(|| GovernError::invalid("approvals.state", "unknown state"))?,
            decided_by,
            decided_at: decided_at.as_deref().map(time).transpose()?,
            expires_at: expires_at.as_deref().map(time).transpose()?,
            note,
        })
    })())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{AuthMethod, Grant, Role};

    fn who(name: &str, roles: &[Role]) -> Principal {
        Principal {
            name: name.into(),
            method: AuthMethod::Token,
            grants: vec![Grant::new(roles.to_vec(), vec!["*".into()]).unwrap()],
        }
    }

    fn approvals() -> Approvals {
        let required: BTreeSet<String> = ["high".to_string()].into();
        Approvals::in_memory(
            [
                ("fraud".to_string(), "high".to_string()),
                ("recs".to_string(), "low".to_string()),
            ],
            &required,
            chrono::Duration::hours(1),
        )
        .unwrap()
    }

    #[test]
    fn low_tiers_need_nothing_high_tiers_need_a_second_person() {
        let a = approvals();
        assert_eq!(a.check("recs", 1).unwrap(), Verdict::NotRequired);
        assert_eq!(a.check("fraud", 1).unwrap(), Verdict::Missing);
        let r = a.request("fraud", 1, "token:alice", "token:bob").unwrap();
        assert!(matches!(a.check("fraud", 1).unwrap(), Verdict::Pending(_)));
        // The same request is returned while pending.
        assert_eq!(a.request("fraud", 1, "system:loop", "x").unwrap().id, r.id);
        let self_req = a.decide(&r.id, &who("token:alice", &[Role::Approver]), true, None);
        assert!(matches!(self_req, Err(DecisionError::SelfApproval { .. })));
        let creator = a.decide(&r.id, &who("token:bob", &[Role::Admin]), true, None);
        assert!(
            matches!(creator, Err(DecisionError::SelfApproval { .. })),
            "admins too"
        );
        let viewer = a.decide(&r.id, &who("token:carol", &[Role::Viewer]), true, None);
        assert!(matches!(viewer, Err(DecisionError::NotApprover { .. })));
        let ok = a
            .decide(
                &r.id,
                &who("token:carol", &[Role::Approver]),
                true,
                Some("looks fine"),
            )
            .unwrap();
        assert_eq!(ok.state, State::Approved);
        assert!(matches!(a.check("fraud", 1).unwrap(), Verdict::Approved(_)));
        assert!(
            matches!(a.check("fraud", 2).unwrap(), Verdict::Missing),
            "per version"
        );
        let again = a.decide(&r.id, &who("token:dave", &[Role::Approver]), false, None);
        assert!(matches!(again, Err(DecisionError::AlreadyDecided { .. })));
    }

    #[test]
    fn expired_approvals_and_rejections_do_not_count() {
        let a = approvals();
        let r = a.request("fraud", 3, "system:loop", "system:loop").unwrap();
        a.decide(&r.id, &who("token:carol", &[Role::Approver]), true, None)
            .unwrap();
        a.set_expiry(&r.id, Utc::now() - chrono::Duration::seconds(1))
            .unwrap();
        assert_eq!(a.check("fraud", 3).unwrap(), Verdict::Missing);
        let r2 = a.request("fraud", 3, "system:loop", "system:loop").unwrap();
        assert_ne!(r2.id, r.id);
        a.decide(
            &r2.id,
            &who("token:carol", &[Role::Approver]),
            false,
            Some("no"),
        )
        .unwrap();
        assert!(matches!(a.check("fraud", 3).unwrap(), Verdict::Rejected(_)));
        assert_eq!(a.list(Some(State::Rejected)).unwrap().len(), 1);
        assert_eq!(a.list(None).unwrap().len(), 2);
    }
}
