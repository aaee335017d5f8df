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
    let mut served = [Score::default(), Score::default(), Score::default()];
    for s in &client.scored {
        let Some(pred) = &s.predicted else { continue };
        let y = match truthy(&s.label) {
            Some(b) => b,
            None => positive.as_ref() == Some(&s.label),
        };
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
        for (k, range) in [&before, &after, &whole].into_iter().enumerate() {
            if range.contains(&s.index) {
                served[k].add_served(usize::from(y), p_pos.unwrap_or(0.0), right);
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
    doc["served"] = serde_json::json!({
        "before": served[0].json(),
        "after": served[1].json(),
        "whole": served[2].json(),
    });
    let secs =
        |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a).as_secs_f64();
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
