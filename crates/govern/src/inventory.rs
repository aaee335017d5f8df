//! The model inventory: every declared model with its owner, risk tier, intended use,
//! review cadence, last review and next due date, and whether that review is overdue.
//!
//! The facts come from `models.<m>.governance` in `freshet.yaml`; owner, intended use,
//! cadence and last review can also be updated over the API (each update is audited by
//! the gate and records who made it). The risk tier stays in the configuration: it
//! decides whether promotions need approval, so changing it is a reviewed change.

use crate::GovernError;
use chrono::{DateTime, NaiveDate, Utc};
use freshet_core::config_govern::Governance as Facts;
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// One row of the inventory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub model: String,
    pub owner: Option<String>,
    pub risk_tier: String,
    pub intended_use: Option<String>,
    pub review_every_days: Option<u32>,
    pub last_review: Option<NaiveDate>,
    pub next_review_due: Option<NaiveDate>,
    /// A cadence is set and the next review is before today (or no review ever was).
    pub overdue: bool,
    /// Who last changed the entry over the API, and when.
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

/// An update over the API: absent fields keep their value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    pub owner: Option<String>,
    pub intended_use: Option<String>,
    pub review_every_days: Option<u32>,
    pub last_review: Option<NaiveDate>,
}

/// The API's updates, in the governance file.
pub struct InventoryStore {
    conn: Mutex<Connection>,
}

impl InventoryStore {
    pub fn open(path: &Path) -> Result<Self, GovernError> {
        Self::init(crate::store::open(path)?)
    }

    pub fn in_memory() -> Result<Self, GovernError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, GovernError> {
        let conn = crate::store::prepare(
            conn,
            "CREATE TABLE IF NOT EXISTS inventory (
                model TEXT PRIMARY KEY,
                owner TEXT,
                intended_use TEXT,
                review_every_days INTEGER,
                last_review TEXT,
                updated_by TEXT NOT NULL,
                updated_at TEXT NOT NULL
             );",
        )?;
        Ok(InventoryStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `patch` to `model` on behalf of `by`.
    pub fn update(&self, model: &str, patch: &Patch, by: &str) -> Result<(), GovernError> {
        if let Some(o) = &patch.owner
            && (o.trim().is_empty() || o.len() > 200)
        {
            return Err(GovernError::invalid("owner", "1 to 200 characters"));
        }
        if let Some(u) = &patch.intended_use
            && u.len() > 2000
        {
            return Err(GovernError::invalid(
                "intended_use",
                "at most 2000 characters",
            ));
        }
        if patch.review_every_days == Some(0) {
            return Err(GovernError::invalid("review_every_days", "at least 1"));
        }
        if patch
            .last_review
            .is_some_and(|d| d > Utc::now().date_naive())
        {
            return Err(GovernError::invalid("last_review", "is in the future"));
        }
        let conn = self.lock();
        conn.execute(
            "INSERT INTO inventory (model, owner, intended_use, review_every_days, last_review, updated_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(model) DO UPDATE SET
                owner = COALESCE(excluded.owner, owner),
                intended_use = COALESCE(excluded.intended_use, intended_use),
                review_every_days = COALESCE(excluded.review_every_days, review_every_days),
                last_review = COALESCE(excluded.last_review, last_review),
                updated_by = excluded.updated_by,
                updated_at = excluded.updated_at",
            params![
                model,
                patch.owner,
                patch.intended_use,
                patch.review_every_days,
                patch.last_review.map(|d| d.to_string()),
                by,
                Utc::now().to_rfc3339()
            ],
        )?;
        Ok(())
    }

    /// The inventory of `models` (their configured facts), with the API's updates laid
    /// over them, as of `today`.
    pub fn entries<'a>(
        &self,
        models: impl IntoIterator<Item = (&'a String, &'a Facts)>,
        today: NaiveDate,
    ) -> Result<Vec<Entry>, GovernError> {
        type Row = (
            Option<String>,
            Option<String>,
            Option<u32>,
            Option<String>,
            String,
            String,
        );
        let mut over: BTreeMap<String, Row> = BTreeMap::new();
        {
            let conn = self.lock();
            let mut stmt = conn.prepare(
                "SELECT model, owner, intended_use, review_every_days, last_review, updated_by, updated_at FROM inventory",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ),
                ))
            })?;
            for row in rows {
                let (m, v) = row?;
                over.insert(m, v);
            }
        }
        let mut out = Vec::new();
        for (name, facts) in models {
            let o = over.get(name);
            let last_review =
                match o.and_then(|o| o.3.as_deref()) {
                    Some(d) => Some(d.parse::<NaiveDate>().map_err(|e| {
                        GovernError::invalid("inventory.last_review", e.to_string())
                    })?),
                    None => facts.last_review,
                };
            let every = o.and_then(|o| o.2).or(facts.review_every_days);
            let next = match (last_review, every) {
                (Some(l), Some(d)) => Some(l + chrono::Duration::days(i64::from(d))),
                _ => None,
            };
            let overdue = every.is_some() && next.is_none_or(|n| n < today);
            out.push(Entry {
                model: name.clone(),
                owner: o.and_then(|o| o.0.clone()).or_else(|| facts.owner.clone()),
                risk_tier: facts.risk_tier.as_str().to_string(),
                intended_use: o
                    .and_then(|o| o.1.clone())
                    .or_else(|| facts.intended_use.clone()),
                review_every_days: every,
                last_review,
                next_review_due: next,
                overdue,
                updated_by: o.map(|o| o.4.clone()),
                updated_at: o.and_then(|o| {
                    DateTime::parse_from_rfc3339(&o.5)
                        .ok()
                        .map(|t| t.with_timezone(&Utc))
                }),
            });
        }
        Ok(out)
    }
}

/// The inventory as CSV (a header, then one line per model).
pub fn to_csv(entries: &[Entry]) -> String {
    fn cell(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = String::from(
        "model,owner,risk_tier,intended_use,review_every_days,last_review,next_review_due,overdue,updated_by,updated_at\n",
    );
    for e in entries {
        let fields = [
            e.model.clone(),
            e.owner.clone().unwrap_or_default(),
            e.risk_tier.clone(),
            e.intended_use.clone().unwrap_or_default(),
            e.review_every_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            e.last_review.map(|d| d.to_string()).unwrap_or_default(),
            e.next_review_due.map(|d| d.to_string()).unwrap_or_default(),
            e.overdue.to_string(),
            e.updated_by.clone().unwrap_or_default(),
            e.updated_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| cell(f)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::config_govern::RiskTier;

    #[test]
    fn config_facts_with_updates_and_overdue_reviews() {
        let store = InventoryStore::in_memory().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        let fraud = Facts {
            risk_tier: RiskTier::High,
            owner: Some("risk-team".into()),
            intended_use: Some("card fraud, \"real time\"".into()),
            review_every_days: Some(90),
            last_review: NaiveDate::from_ymd_opt(2026, 8, 1),
        };
        let recs = Facts::default();
        let models = BTreeMap::from([("fraud".to_string(), fraud), ("recs".to_string(), recs)]);
        let e = store.entries(&models, today).unwrap();
        assert_eq!(e[0].next_review_due, NaiveDate::from_ymd_opt(2026, 10, 30));
        assert!(e[0].overdue);
        assert!(!e[1].overdue, "no cadence, nothing due");
        store
            .update(
                "fraud",
                &Patch {
                    last_review: NaiveDate::from_ymd_opt(2026, 11, 20),
                    ..Patch::default()
                },
                "token:carol",
            )
            .unwrap();
        let e = store.entries(&models, today).unwrap();
        assert!(!e[0].overdue);
        assert_eq!(e[0].owner.as_deref(), Some("risk-team"), "kept from config");
        assert_eq!(e[0].updated_by.as_deref(), Some("token:carol"));
        let csv = to_csv(&e);
        assert!(csv.contains("\"card fraud, \"\"real time\"\"\""), "{csv}");
        assert_eq!(csv.lines().count(), 3);
        let bad = store.update(
            "fraud",
            &Patch {
                review_every_days: Some(0),
                ..Patch::default()
            },
            "x",
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .starts_with("review_every_days")
        );
    }
}
