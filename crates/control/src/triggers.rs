//! Deciding whether a model should retrain now: a pure function of its trigger spec,
//! its state and the signals of this moment.

use crate::state::ControlState;
use freshet_core::model_spec::TriggersSpec;

/// What the controller sees at one tick.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Signals {
    /// The stream table's latest version and row count.
    pub table_version: i64,
    pub table_rows: u64,
    /// The concept-drift detector fired on the live error stream since the last tick.
    pub concept_drift: bool,
    /// Dataset drift on served traffic against the reference profile.
    pub data_drift: bool,
    /// The champion's recent accuracy on labels, once labels arrived.
    pub champion_accuracy: Option<f64>,
    /// Whether a champion exists (the first version trains as soon as there is data).
    pub has_champion: bool,
    pub now_ms: i64,
}

/// The reason to train now, or `None`. Drift is remembered in the state by the caller
/// and trains once `rows_after_drift` rows of the new concept arrived.
pub fn due(spec: &TriggersSpec, state: &ControlState, s: &Signals) -> Option<String> {
    let min_rows = spec.initial_rows.max(2);
    if state.trained_table_version == Some(s.table_version) {
        return None;
    }
    if !s.has_champion && state.trained_table_version.is_none() {
        return (s.table_rows >= min_rows)
            .then(|| format!("first version ({} rows available)", s.table_rows));
    }
    if let Some(at) = state.drift_at_rows {
        let after = s.table_rows.saturating_sub(at);
        if after >= spec.rows_after_drift {
            let why = state.drift_reason.as_deref().unwrap_or("drift");
            let retry = if state.drift_retries > 0 {
                format!(
                    " (retry {} of {}: the last answer failed the gates)",
                    state.drift_retries,
                    crate::state::MAX_DRIFT_RETRIES
                )
            } else {
                String::new()
            };
            return Some(format!("{why}{retry}; {after} rows since"));
        }
        // Waiting for the new concept: other triggers would train on the old one.
        return None;
    }
    let new_rows = s.table_rows.saturating_sub(state.trained_rows);
    if spec.rows > 0 && new_rows >= spec.rows {
        return Some(format!("{new_rows} new rows (trigger: {})", spec.rows));
    }
    if spec.every_secs > 0
        && new_rows > 0
        && s.now_ms - state.trained_ms >= (spec.every_secs as i64).saturating_mul(1000)
    {
        return Some(format!("schedule (every {} s)", spec.every_secs));
    }
    if spec.min_accuracy > 0.0
        && let Some(a) = s.champion_accuracy
        && a < spec.min_accuracy
    {
        return Some(format!(
            "champion accuracy {a:.3} below {:.3}",
            spec.min_accuracy
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(rows: u64, version: i64) -> Signals {
        Signals {
            table_version: version,
            table_rows: rows,
            has_champion: true,
            now_ms: 1_000_000,
            ..Default::default()
        }
    }

    #[test]
    fn the_first_version_waits_for_enough_rows() {
        let spec = TriggersSpec {
            initial_rows: 500,
            ..Default::default()
        };
        let st = ControlState::default();
        let mut s = signals(100, 1);
        s.has_champion = false;
        assert_eq!(due(&spec, &st, &s), None);
        s.table_rows = 600;
        assert!(due(&spec, &st, &s).unwrap().contains("first version"));
    }

    #[test]
    fn rows_schedule_accuracy_and_drift() {
        let spec = TriggersSpec {
            rows: 1000,
            every_secs: 60,
            min_accuracy: 0.9,
            rows_after_drift: 500,
            ..Default::default()
        };
        let st = ControlState {
            trained_rows: 5_000,
            trained_table_version: Some(3),
            trained_ms: 990_000,
            ..Default::default()
        };
        assert_eq!(due(&spec, &st, &signals(5_500, 4)), None);
        assert!(
            due(&spec, &st, &signals(6_000, 5))
                .unwrap()
                .contains("new rows")
        );
        let mut late = signals(5_100, 4);
        late.now_ms = 990_000 + 61_000;
        assert!(due(&spec, &st, &late).unwrap().contains("schedule"));
        let mut bad = signals(5_100, 4);
        bad.champion_accuracy = Some(0.8);
        assert!(due(&spec, &st, &bad).unwrap().contains("accuracy"));
        // Nothing new in the table: never retrain on the same version.
        assert_eq!(due(&spec, &st, &signals(5_000, 3)), None);
        // Drift waits for rows of the new concept, and holds the other triggers back.
        let drifted = ControlState {
            drift_at_rows: Some(6_000),
            drift_reason: Some("concept drift (adwin)".into()),
            ..st.clone()
        };
        assert_eq!(due(&spec, &drifted, &signals(6_200, 5)), None);
        assert!(
            due(&spec, &drifted, &signals(6_600, 6))
                .unwrap()
                .contains("adwin")
        );
    }
}
