//! The demo's closing table: every version, and what the client was actually served,
//! scored on the same events before and after the drift — v1 is the static model that
//! would have stayed in place without the loop.

use super::Timeline;
use super::client::Client;
use freshet_learn::features::{FieldValue, SchemaRow};
use freshet_learn::metrics::{Accuracy, ClassPrediction, ClassificationMetric, RocAuc};
use freshet_registry::Store;
use freshet_registry::artifacts::ArtifactStore;
use freshet_registry::models::ModelQuery;
use std::fmt::Write as _;
use std::ops::Range;

#[derive(Default)]
struct Score {
    acc: Accuracy,
    auc: RocAuc,
    n: u64,
}

impl Score {
    /// A served answer: its own correctness, and the score of the positive class.
    fn add_served(&mut self, y: usize, p_pos: f64, right: bool) {
        // Accuracy counts the answer given, not a label re-derived from `p_pos`.
        self.acc
            .update(usize::from(right), &ClassPrediction::label(1));
        self.auc.update(y, &ClassPrediction::binary(p_pos));
        self.n += 1;
    }

    fn add(&mut self, y: usize, p1: f64) {
        let p = ClassPrediction::binary(p1);
        self.acc.update(y, &p);
        self.auc.update(y, &p);
        self.n += 1;
    }
    fn accuracy(&self) -> Option<f64> {
        (self.n > 0).then(|| self.acc.get())
    }

    fn json(&self) -> serde_json::Value {
        if self.n == 0 {
            serde_json::json!({ "events": 0 })
        } else {
            serde_json::json!({ "events": self.n, "accuracy": self.acc.get(), "roc_auc": self.auc.get() })
        }
    }

    fn cell(&self) -> String {
        if self.n == 0 {
            format!("{:>8} {:>7}", "-", "-")
        } else {
            format!("{:>8.4} {:>7.4}", self.acc.get(), self.auc.get())
        }
    }
}

/// Events per window of the recovery figure.
pub const RECOVERY_WINDOW: u64 = 500;
/// How close to its best a window's accuracy must come to count as recovered.
pub const RECOVERY_TOLERANCE: f64 = 0.02;

/// When a model recovered from a drift at `onset`.
#[derive(Debug, Clone, PartialEq)]
pub struct Recovery {
    /// Events after the onset until the end of the first window within
    /// [`RECOVERY_TOLERANCE`] of the best window.
    pub events: u64,
    /// The best window accuracy after the onset.
    pub best: f64,
    /// The accuracy of the window that counted as recovered.
    pub reached: f64,
    /// Every window's accuracy after the onset, in order (`None`: too few answers).
    pub windows: Vec<Option<f64>>,
}

/// Events-to-recovery: the answers after `onset` (events before `end`) are cut into
/// windows of `window` events from the onset; the first window whose accuracy is
/// within [`RECOVERY_TOLERANCE`] of the best window's marks the recovery, counted to
/// that window's end. Windows with fewer than half their events answered are
/// skipped; `None` without any full window.
pub fn recovery(right: &[(u64, bool)], onset: u64, end: u64, window: u64) -> Option<Recovery> {
    let window = window.max(1);
    let windows = end.saturating_sub(onset) / window;
    let mut counts = vec![(0u64, 0u64); usize::try_from(windows).ok()?];
    for (i, ok) in right {
        if *i < onset {
            continue;
        }
        let Some(slot) = usize::try_from((i - onset) / window)
            .ok()
            .and_then(|k| counts.get_mut(k))
        else {
            continue;
        };
        slot.0 += 1;
        slot.1 += u64::from(*ok);
    }
    let acc: Vec<Option<f64>> = counts
        .iter()
        .map(|(n, ok)| (*n * 2 >= window).then(|| *ok as f64 / *n as f64))
        .collect();
    let best = acc.iter().flatten().copied().fold(f64::NAN, f64::max);
    if best.is_nan() {
        return None;
    }
    let (k, reached) = acc.iter().enumerate().find_map(|(k, a)| {
        a.filter(|a| *a >= best - RECOVERY_TOLERANCE - 1e-12)
            .map(|a| (k, a))
    })?;
    Some(Recovery {
        events: (k as u64 + 1) * window,
        best,
        reached,
        windows: acc,
    })
}

fn truthy(v: &serde_json::Value) -> Option<bool> {
    match v {
        serde_json::Value::Bool(b) => Some(*b),
        serde_json::Value::Number(n) => n.as_f64().map(|x| x != 0.0),
        _ => None,
    }
}

/// The table with the drift timings, and the same figures as JSON (`summary.json`).
pub fn build(
    store: &dyn Store,
    artifacts: &dyn ArtifactStore,
    client: &Client,
    t: &Timeline,
) -> (String, serde_json::Value) {
    let model = &client.stream.model;
    let n = client.rows.len() as u64;
    let first_served = client
        .scored
        .iter()
        .find(|s| s.version.is_some())
        .map_or(n, |s| s.index);
    let drift = client.stream.drift_at.filter(|d| *d < n);
    let (before, after): (Range<u64>, Range<u64>) = match (drift, t.new_champion) {
        (Some(d), Some((_, promoted, _))) => (first_served..d, promoted..n),
        (Some(d), None) => (first_served..d, d..n),
        (None, _) => {
            let mid = first_served + (n - first_served) / 2;
            (first_served..mid, mid..n)
        }
    };
    let whole = first_served..n;
    let mut out = String::new();
    let mut doc = serde_json::json!({
        "events": n,
        "first_served": first_served,
        "before": [before.start, before.end],
        "after": [after.start, after.end],
        "versions": [],
    });
    let _ = writeln!(
        out,
        "Summary — accuracy and ROC AUC on the same events: before and after the drift, and over the whole run"
    );
    let after_note = if t.new_champion.is_some() {
        "from the new champion's first answer"
    } else if drift.is_some() {
        "from the drift on; no new champion took over"
    } else {
        "the second half of the run"
    };
    let _ = writeln!(
        out,
        "  before: events {}..{}   after: events {}..{} ({after_note})\n",
        before.start, before.end, after.start, after.end
    );
    let _ = writeln!(
        out,
        "  {:<44} {:>16}  {:>16}  {:>16}",
        "", "before drift", "after drift", "whole run"
    );
    let _ = writeln!(
        out,
        "  {:<44} {:>8} {:>7}  {:>8} {:>7}  {:>8} {:>7}",
        "model", "accuracy", "AUC", "accuracy", "AUC", "accuracy", "AUC"
    );
    let versions = store
        .search_model_versions(&ModelQuery {
            filter: format!("name = '{model}'"),
            max_results: 100,
            order_by: vec!["version_number ASC".into()],
            ..Default::default()
        })
        .map(|p| p.items)
        .unwrap_or_default();
    let label_idx = client
        .stream
        .schema
        .index_of(&client.stream.label)
        .unwrap_or(0);
    // Whether the static v1 was right on each event, for its recovery figure.
    let mut static_right: Vec<(u64, bool)> = Vec::new();
    for v in &versions {
        let Ok(loaded) = freshet_serve::loader::load_version(store, artifacts, model, v.version)
        else {
            continue;
        };
        let mut scores = [Score::default(), Score::default(), Score::default()];
        let ranges = [&before, &after, &whole];
        // Each event is predicted once and counted in every range that holds it.
        let first = ranges.iter().map(|r| r.start).min().unwrap_or(n);
        let last = ranges.iter().map(|r| r.end).max().unwrap_or(n);
        for i in first..last {
            let Some(row) = client.rows.get(i as usize) else {
                continue;
            };
            let rec = SchemaRow::new(&client.stream.schema, row);
            let Some(y) = loaded.model.class_index(FieldValue::from(&row[label_idx])) else {
                continue;
            };
            let Ok(p) = loaded.model.predict_proba(&rec) else {
                continue;
            };
            let p1 = p.get(1).copied().unwrap_or(0.0);
            if v.version == 1 {
                static_right.push((i, usize::from(p1 >= 0.5) == y));
            }
            for (k, range) in ranges.iter().enumerate() {
                if range.contains(&i) {
                    scores[k].add(y, p1);
                }
            }
        }
        let role = if v.version == 1 {
            "static: trained once, never retrained".to_string()
        } else {
            let trigger = v
                .tags
                .iter()
                .find(|t| t.key == "freshet.trigger")
                .map_or("retrained", |t| t.value.as_str());
            if trigger.contains("drift") {
                "retrained after the drift".to_string()
            } else {
                trigger.chars().take(34).collect()
            }
        };
        let name = format!("v{} ({role})", v.version);
        let _ = writeln!(
            out,
            "  {:<44} {}  {}  {}",
            name,
            scores[0].cell(),
            scores[1].cell(),
            scores[2].cell()
        );
        if let Some(list) = doc["versions"].as_array_mut() {
            list.push(serde_json::json!({
                "version": v.version,
                "role": role,
                "before": scores[0].json(),
                "after": scores[1].json(),
                "whole": scores[2].json(),
            }));
        }
    }
    // What the client was actually answered: accuracy on the label given, AUC on the
    // probability of one fixed class (the greatest label seen), whatever index each
    // version gave it.
    let positive: Option<serde_json::Value> = client
        .scored
        .iter()
        .flat_map(|s| s.classes.iter())
        .max_by_key(|c| c.to_string())
        .cloned();
    // A label counts as the positive class when it is truthy, or else when it is the
    // fixed positive class.
    let is_positive = |label: &serde_json::Value| match truthy(label) {
        Some(b) => b,
        None => positive.as_ref() == Some(label),
    };
    let mut served = [Score::default(), Score::default(), Score::default()];
    let mut served_right: Vec<(u64, bool)> = Vec::new();
    for s in &client.scored {
        let Some(pred) = &s.predicted else { continue };
        let y = is_positive(&s.label);
        let p_pos = match &positive {
            Some(pos) => s
                .classes
                .iter()
                .position(|c| c == pos)
                .and_then(|i| s.proba.get(i).copied()),
            None => s.p1,
        };
        let right = pred == &s.label
            || truthy(pred)
                .zip(truthy(&s.label))
                .is_some_and(|(a, b)| a == b);
        served_right.push((s.index, right));
        for (k, range) in [&before, &after, &whole].into_iter().enumerate() {
            if range.contains(&s.index) {
                served[k].add_served(usize::from(y), p_pos.unwrap_or(0.0), right);
            }
        }
    }
    // No change: answer each event with the newest label known when it is asked —
    // that of event i − delay − 1, as labels arrive `delay` events late. The same
    // delay as the loop's, so the comparison is like for like.
    let delay = client.label_delay;
    let mut no_change = [Score::default(), Score::default(), Score::default()];
    let mut no_change_right: Vec<(u64, bool)> = Vec::new();
    for s in &client.scored {
        let Some(known) = s.index.checked_sub(delay + 1) else {
            continue;
        };
        let Some(row) = client.rows.get(known as usize) else {
            continue;
        };
        let guess = row[label_idx].to_json();
        let right = guess == s.label;
        let y = is_positive(&s.label);
        let guess_pos = is_positive(&guess);
        no_change_right.push((s.index, right));
        for (k, range) in [&before, &after, &whole].into_iter().enumerate() {
            if range.contains(&s.index) {
                no_change[k].add_served(usize::from(y), f64::from(u8::from(guess_pos)), right);
            }
        }
    }
    let _ = writeln!(
        out,
        "  {:<44} {}  {}  {}",
        "served (whatever was answering)",
        served[0].cell(),
        served[1].cell(),
        served[2].cell()
    );
    let _ = writeln!(
        out,
        "  {:<44} {}  {}  {}",
        format!("no change (labels {delay} events late)"),
        no_change[0].cell(),
        no_change[1].cell(),
        no_change[2].cell()
    );
    doc["served"] = serde_json::json!({
        "before": served[0].json(),
        "after": served[1].json(),
        "whole": served[2].json(),
    });
    doc["no_change"] = serde_json::json!({
        "label_delay": delay,
        "before": no_change[0].json(),
        "after": no_change[1].json(),
        "whole": no_change[2].json(),
    });
    let static_whole = doc["versions"]
        .as_array()
        .and_then(|l| l.first())
        .and_then(|v| v["whole"]["accuracy"].as_f64());
    if let (Some(s), Some(nc)) = (served[2].accuracy(), no_change[2].accuracy()) {
        let mut verdict = format!(
            "\n  over the whole run the loop served {s:.4}: {:+.4} against no change",
            s - nc
        );
        if let Some(v1) = static_whole {
            verdict.push_str(&format!(", {:+.4} against leaving v1 in place", s - v1));
        }
        let _ = writeln!(out, "{verdict}");
    }
    let secs =
        |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a).as_secs_f64();
    if let Some((_, at)) = t.drift_onset {
        let figure = |right: &[(u64, bool)]| match recovery(right, at, n, RECOVERY_WINDOW) {
            Some(r) => serde_json::json!({
                "events_to_recovery": r.events,
                "best_window_accuracy": r.best,
                "recovered_window_accuracy": r.reached,
                "window_accuracy": r.windows,
            }),
            None => serde_json::Value::Null,
        };
        doc["recovery"] = serde_json::json!({
            "window": RECOVERY_WINDOW,
            "tolerance": RECOVERY_TOLERANCE,
            "served": figure(&served_right),
            "static": figure(&static_right),
            "no_change": figure(&no_change_right),
        });
    }
    if let Some((onset, at)) = t.drift_onset {
        doc["drift"] = serde_json::json!({
            "onset_event": at,
            "detection_secs": t.detected.map(|(d, _)| secs(onset, d)),
            "detection_rows": t.detected.map(|(_, r)| r),
            "new_champion_secs": t.new_champion.map(|(c, _, _)| secs(onset, c)),
            "new_champion_event": t.new_champion.map(|(_, i, _)| i),
            "new_champion_version": t.new_champion.map(|(_, _, v)| v),
        });
    }
    let _ = writeln!(out);
    match (t.drift_onset, t.detected, t.new_champion) {
        (Some((onset, at)), detected, champion) => {
            let _ = writeln!(out, "  drift onset: event {at}");
            match detected {
                Some((d, rows)) => {
                    let _ = writeln!(
                        out,
                        "  onset → detection:      {:>5.1} s  (the table held {rows} labelled events)",
                        d.saturating_duration_since(onset).as_secs_f64()
                    );
                }
                None => {
                    let _ = writeln!(out, "  onset → detection:      not detected");
                }
            }
            if let Some(r) = recovery(&served_right, at, n, RECOVERY_WINDOW) {
                let _ = writeln!(
                    out,
                    "  onset → recovery:       {:>5} events  (served accuracy per {RECOVERY_WINDOW} events within {:.0} points of the best it reached after the drift, {:.4})",
                    r.events,
                    RECOVERY_TOLERANCE * 100.0,
                    r.best
                );
            }
            match champion {
                Some((c, idx, v)) => {
                    let _ = writeln!(
                        out,
                        "  onset → new champion:   {:>5.1} s  (v{v} answering from event {idx}, {} events after onset)",
                        c.saturating_duration_since(onset).as_secs_f64(),
                        idx.saturating_sub(at)
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  onset → new champion:   no new champion within the run"
                    );
                }
            }
        }
        (None, Some((_, rows)), _) => {
            let _ = writeln!(
                out,
                "  first drift detected with {rows} labelled events in the table; {} versions in all",
                versions.len()
            );
        }
        _ => {}
    }
    (out, doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_is_the_first_window_near_the_best() {
        // Wrong for 1,000 events after the onset at 100, then 90% right, then 95%.
        let mut right = Vec::new();
        for i in 0..100 {
            right.push((i, true));
        }
        for i in 100..1_100 {
            right.push((i, false));
        }
        for i in 1_100..2_100 {
            right.push((i, i % 10 != 0));
        }
        for i in 2_100..4_100 {
            right.push((i, i % 20 != 0));
        }
        let r = recovery(&right, 100, 4_100, 500).unwrap();
        assert!((r.best - 0.95).abs() < 1e-9, "{r:?}");
        // 0.90 is not within 2 points of 0.95; the first 95% window ends 2,500 after.
        assert_eq!(r.events, 2_500);
        // A looser best: with only the 90% stretch the recovery is at 1,500.
        let r = recovery(&right[..2_100], 100, 2_100, 500).unwrap();
        assert_eq!(r.events, 1_500);
        // No full window after the onset.
        assert_eq!(recovery(&right, 4_000, 4_100, 500), None);
    }
}
