//! Data and prediction drift of the champion's served traffic: the captured requests
//! (`inference/<model>`, read incrementally by the loop and shared with the error
//! stream), the champion's rows kept in a sliding window, tested against the
//! champion's reference profile every `every_secs`.

use crate::captured::{Captured, cell};
use freshet_core::Task;
use freshet_core::model_spec::{FeatureKind, MonitorSpec, ResolvedFeature};
use freshet_lake::arrow::record_batch::RecordBatch;
use freshet_learn::features::Record;
use freshet_learn::model::profile::{Observation, observe_field, prediction_score};
use freshet_monitor::served::{DriftReport, Reference, ServedWindow, served_drift};
use freshet_registry::Store;
use freshet_registry::artifacts::ArtifactStore;

/// A champion whose model could not be loaded is tried again after this long.
const RETRY_LOAD_MS: i64 = 60_000;

/// What the window is tested against: one champion version.
struct Watched {
    version: i64,
    features: Vec<ResolvedFeature>,
    binary: bool,
    regression: bool,
    reference: Reference,
    window: ServedWindow,
}

/// One model's drift watch.
pub struct DriftWatch {
    model: String,
    spec: MonitorSpec,
    watched: Option<Watched>,
    /// The champion that could not be watched, since when, and whether for good (no
    /// reference profile) or until a retry (a load that failed).
    unreadable: Option<(i64, i64, bool)>,
    last_test_ms: i64,
}

impl DriftWatch {
    pub fn new(model: &str, spec: &MonitorSpec) -> Self {
        Self {
            model: model.to_string(),
            spec: spec.clone(),
            watched: None,
            unreadable: None,
            last_test_ms: i64::MIN,
        }
    }

    /// Follow `champion` (a new one starts an empty window against its own profile).
    fn follow(
        &mut self,
        store: &dyn Store,
        artifacts: &dyn ArtifactStore,
        champion: i64,
        now_ms: i64,
    ) {
        if self.watched.as_ref().is_some_and(|w| w.version == champion) {
            return;
        }
        if let Some((v, since, for_good)) = self.unreadable
            && v == champion
            && (for_good || now_ms.saturating_sub(since) < RETRY_LOAD_MS)
        {
            return;
        }
        self.watched = None;
        let loaded =
            match freshet_serve::loader::load_version(store, artifacts, &self.model, champion) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(model = %self.model, version = champion, error = %e,
                        "cannot load the champion for drift monitoring; retrying in a minute");
                    self.unreadable = Some((champion, now_ms, false));
                    return;
                }
            };
        let Some(profile) = loaded.model.reference_profile() else {
            tracing::info!(model = %self.model, version = champion,
                "the champion has no reference profile; no data drift monitoring");
            self.unreadable = Some((champion, now_ms, true));
            return;
        };
        let spec = loaded.model.spec();
        let mut reference = Reference::from_profile(profile);
        for f in &spec.features {
            if matches!(f.kind, FeatureKind::Time) {
                reference.skip(
                    &f.field,
                    "a time feature: a window of served traffic covers minutes, not the hours and weekdays of the training data",
                );
            }
        }
        self.watched = Some(Watched {
            version: champion,
            features: spec.features.clone(),
            binary: spec.task == Task::Binary,
            regression: !spec.task.is_classification(),
            window: ServedWindow::new(
                spec.features.len(),
                usize::try_from(self.spec.window_rows).unwrap_or(usize::MAX),
            ),
            reference,
        });
    }

    /// Keep the champion's rows among newly captured ones (`inference/<model>`, read
    /// by the caller in commit order); `champion` is the version serving now.
    pub fn absorb(
        &mut self,
        store: &dyn Store,
        artifacts: &dyn ArtifactStore,
        champion: i64,
        batches: &[RecordBatch],
        now_ms: i64,
    ) {
        self.follow(store, artifacts, champion, now_ms);
        let Some(w) = self.watched.as_mut() else {
            return;
        };
        // Only the champion's newest `window_rows` rows can stay in the window: nothing
        // else is decoded (at tens of thousands of requests a second, most rows).
        let keep = usize::try_from(self.spec.window_rows).unwrap_or(usize::MAX);
        for (features, prediction, proba) in newest_champion_rows(batches, w.version, keep) {
            w.push_row(features.as_deref(), prediction.as_deref(), proba.as_deref());
        }
    }

    /// Test the window when `every_secs` passed since the last test and it holds
    /// `min_rows`: the champion's version and the report, or `None`.
    pub fn test(&mut self, now_ms: i64) -> Option<(i64, DriftReport)> {
        let every_ms = i64::try_from(self.spec.every_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(self.last_test_ms) < every_ms {
            return None;
        }
        let w = self.watched.as_ref()?;
        if (w.window.len() as u64) < self.spec.min_rows {
            return None;
        }
        self.last_test_ms = now_ms;
        let report = served_drift(&w.reference, &w.window, self.spec.drift_share);
        Some((w.version, report))
    }
}

/// A captured row's inputs, prediction and probabilities (JSON text).
type CapturedRow = (Option<String>, Option<String>, Option<String>);

/// The newest `keep` rows that `version` answered as champion, oldest first, read
/// column by column from the end of `batches` (which are in commit order).
fn newest_champion_rows(batches: &[RecordBatch], version: i64, keep: usize) -> Vec<CapturedRow> {
    let mut out = Vec::new();
    for b in batches.iter().rev() {
        if out.len() >= keep {
            break;
        }
        let Some(c) = Captured::of(b) else {
            continue;
        };
        for i in (0..b.num_rows()).rev() {
            if out.len() >= keep {
                break;
            }
            if c.answered_by(i, Some(version), "champion") {
                out.push((
                    cell(&c.features, i),
                    cell(&c.prediction, i),
                    cell(&c.probabilities, i),
                ));
            }
        }
    }
    out.reverse();
    out
}

impl Watched {
    /// One captured row: its inputs (a JSON object), its prediction and probabilities.
    fn push_row(&mut self, features: Option<&str>, prediction: Option<&str>, proba: Option<&str>) {
        let inputs: serde_json::Map<String, serde_json::Value> = features
            .and_then(|f| serde_json::from_str(f).ok())
            .unwrap_or_default();
        let observations: Vec<Observation> = self
            .features
            .iter()
            .map(|f| observe_field(&f.kind, f.field_type, inputs.field(&f.field)))
            .collect();
        let score = if self.regression {
            prediction.and_then(|p| serde_json::from_str::<f64>(p).ok())
        } else {
            proba
                .and_then(|p| serde_json::from_str::<Vec<f64>>(p).ok())
                .and_then(|p| prediction_score(self.binary, &p))
        };
        self.window.push(observations, score);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::Value;
    use freshet_lake::{RowBatchBuilder, batch_rows};
    use freshet_serve::capture::inference_schema;

    /// Captured rows `ids`, answered by `version` as `variant`; `features` holds the id.
    fn batch(ids: std::ops::Range<i64>, version: i64, variant: &str) -> RecordBatch {
        let s = inference_schema();
        let mut b = RowBatchBuilder::new(&s, ids.clone().count());
        for i in ids {
            let mut row = vec![Value::Null; s.len()];
            row[4] = Value::Int(version);
            row[5] = Value::Str(variant.into());
            row[8] = Value::Str(format!("{{\"id\":{i}}}"));
            row[9] = Value::Str("true".into());
            for (k, v) in row.iter().enumerate() {
                b.push(k, v);
            }
            b.end_row();
        }
        b.finish().expect("batch")
    }

    fn ids(rows: &[CapturedRow]) -> Vec<i64> {
        rows.iter()
            .map(|(f, _, _)| {
                let v: serde_json::Value = serde_json::from_str(f.as_deref().unwrap()).unwrap();
                v["id"].as_i64().unwrap()
            })
            .collect()
    }

    #[test]
    fn the_newest_champion_rows_are_kept_oldest_first() {
        let batches = [
            batch(0..5, 1, "champion"),
            batch(5..8, 1, "shadow"),
            batch(8..10, 2, "champion"),
            batch(10..12, 1, "champion"),
        ];
        assert_eq!(ids(&newest_champion_rows(&batches, 1, 4)), [3, 4, 10, 11]);
        assert_eq!(
            ids(&newest_champion_rows(&batches, 1, 100)),
            [0, 1, 2, 3, 4, 10, 11]
        );
        assert_eq!(ids(&newest_champion_rows(&batches, 2, 100)), [8, 9]);
        assert!(newest_champion_rows(&batches, 1, 0).is_empty());
        // The helper's rows are what the table holds.
        assert_eq!(
            batch_rows(&batches[0], &inference_schema()).unwrap().len(),
            5
        );
    }
}
