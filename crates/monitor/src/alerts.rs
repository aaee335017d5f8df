//! Alert de-duplication: what the monitors see becomes few, meaningful notifications.
//!
//! Two kinds of input:
//! - a **condition** re-checked over and over (data drift on the last window, accuracy
//!   below a floor): it alerts when it starts, again only every `repeat` while it
//!   holds, and once more when it clears (`resolved`);
//! - an **event** that happens at a moment (a concept drift detected, a training job
//!   failed, a candidate rejected): the same event of the same model alerts at most
//!   once per `repeat`.
//!
//! The deduplicator is a pure state machine over millisecond timestamps; delivery is the
//! caller's business.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Whether an alert opens or closes a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub model: String,
    /// `data_drift`, `low_accuracy`, `concept_drift`, `job_failed`, …
    pub kind: String,
    pub status: AlertStatus,
    pub summary: String,
    pub at_ms: i64,
    /// Times the condition or event was seen since the last notification (this one
    /// included): what de-duplication folded away.
    pub occurrences: u64,
}

#[derive(Debug, Clone)]
struct Seen {
    last_sent_ms: i64,
    /// Occurrences since the last notification.
    folded: u64,
    firing: bool,
}

/// Folds repeated alerts.
#[derive(Debug, Clone)]
pub struct Deduplicator {
    repeat_ms: i64,
    seen: HashMap<(String, String), Seen>,
}

impl Deduplicator {
    /// Repeat a condition still holding (or the same event) at most every `repeat_ms`.
    pub fn new(repeat_ms: i64) -> Self {
        Self {
            repeat_ms: repeat_ms.max(0),
            seen: HashMap::new(),
        }
    }

    /// The state of a condition now; the alert to send, if any.
    pub fn condition(
        &mut self,
        model: &str,
        kind: &str,
        holds: bool,
        summary: &str,
        now_ms: i64,
    ) -> Option<Alert> {
        let key = (model.to_string(), kind.to_string());
        let alert = |status, occurrences| Alert {
            model: model.to_string(),
            kind: kind.to_string(),
            status,
            summary: summary.to_string(),
            at_ms: now_ms,
            occurrences,
        };
        match (self.seen.get_mut(&key), holds) {
            (None, false) => None,
            (Some(s), false) if !s.firing => None,
            (Some(s), false) => {
                s.firing = false;
                s.folded = 0;
                Some(alert(AlertStatus::Resolved, 1))
            }
            (Some(s), true) if s.firing => {
                s.folded += 1;
                if now_ms.saturating_sub(s.last_sent_ms) >= self.repeat_ms {
                    let n = s.folded;
                    s.last_sent_ms = now_ms;
                    s.folded = 0;
                    Some(alert(AlertStatus::Firing, n))
                } else {
                    None
                }
            }
            (_, true) => {
                self.seen.insert(
                    key,
                    Seen {
                        last_sent_ms: now_ms,
                        folded: 0,
                        firing: true,
                    },
                );
                Some(alert(AlertStatus::Firing, 1))
            }
        }
    }

    /// An event that happened now; the alert to send, if any.
    pub fn event(&mut self, model: &str, kind: &str, summary: &str, now_ms: i64) -> Option<Alert> {
        let key = (model.to_string(), kind.to_string());
        let s = self.seen.entry(key).or_insert(Seen {
            last_sent_ms: i64::MIN,
            folded: 0,
            firing: false,
        });
        s.folded += 1;
        if now_ms.saturating_sub(s.last_sent_ms) < self.repeat_ms {
            return None;
        }
        let occurrences = s.folded;
        s.last_sent_ms = now_ms;
        s.folded = 0;
        Some(Alert {
            model: model.to_string(),
            kind: kind.to_string(),
            status: AlertStatus::Firing,
            summary: summary.to_string(),
            at_ms: now_ms,
            occurrences,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_condition_alerts_when_it_starts_repeats_slowly_and_resolves_once() {
        let mut d = Deduplicator::new(60_000);
        assert_eq!(d.condition("m", "data_drift", false, "", 0), None);
        let a = d
            .condition("m", "data_drift", true, "3 of 4", 1_000)
            .unwrap();
        assert_eq!((a.status, a.occurrences), (AlertStatus::Firing, 1));
        // Still drifting, checked every 10 s: folded until a minute passed.
        for t in (11_000..61_000).step_by(10_000) {
            assert_eq!(d.condition("m", "data_drift", true, "3 of 4", t), None);
        }
        let a = d
            .condition("m", "data_drift", true, "3 of 4", 61_000)
            .unwrap();
        assert_eq!(a.occurrences, 6, "five folded checks and this one");
        let r = d
            .condition("m", "data_drift", false, "0 of 4", 70_000)
            .unwrap();
        assert_eq!(r.status, AlertStatus::Resolved);
        assert_eq!(
            d.condition("m", "data_drift", false, "0 of 4", 80_000),
            None
        );
        // A new episode alerts at once.
        assert!(
            d.condition("m", "data_drift", true, "2 of 4", 81_000)
                .is_some()
        );
    }

    #[test]
    fn models_and_kinds_are_separate() {
        let mut d = Deduplicator::new(60_000);
        assert!(d.condition("a", "data_drift", true, "", 0).is_some());
        assert!(d.condition("b", "data_drift", true, "", 0).is_some());
        assert!(d.condition("a", "low_accuracy", true, "", 0).is_some());
        assert!(d.condition("a", "data_drift", true, "", 1).is_none());
    }

    #[test]
    fn events_alert_at_most_once_per_period() {
        let mut d = Deduplicator::new(60_000);
        assert!(d.event("m", "job_failed", "disk full", 0).is_some());
        assert!(d.event("m", "job_failed", "disk full", 30_000).is_none());
        assert!(d.event("m", "job_failed", "disk full", 40_000).is_none());
        let a = d.event("m", "job_failed", "disk full", 60_000).unwrap();
        assert_eq!(a.occurrences, 3);
        assert!(d.event("m", "concept_drift", "adwin", 60_000).is_some());
    }

    #[test]
    fn without_a_period_nothing_is_folded() {
        let mut d = Deduplicator::new(0);
        assert!(d.event("m", "job_failed", "", 0).is_some());
        assert!(d.event("m", "job_failed", "", 0).is_some());
    }
}
