//! Data and prediction drift of the champion's served traffic: the captured requests
//! (`inference/<model>`, read incrementally by the loop and shared with the error
//! stream), the champion's rows kept in a sliding window, tested against the
//! champion's reference profile every `every_secs`.

use crate::error::Result;
use freshet_core::Task;
use freshet_core::Value;
use freshet_core::model_spec::{MonitorSpec, ResolvedFeature};
use freshet_lake::arrow::record_batch::RecordBatch;
use freshet_lake::batch_rows;
use freshet_learn::features::Record;
use freshet_learn::model::profile::{Observation, observe_field};
use freshet_monitor::served::{DriftReport, Reference, ServedWindow, served_drift};
use freshet_registry::Store;
use freshet_registry::artifacts::ArtifactStore;
use freshet_serve::capture::inference_schema;

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
    /// The champion whose profile could not be read (not retried every tick).
    unreadable: Option<i64>,
    last_test_ms: i64,
}

fn text(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
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

    /// Rows in the current window.
    pub fn window_rows(&self) -> usize {
        self.watched.as_ref().map_or(0, |w| w.window.len())
    }

    /// Follow `champion` (a new one starts an empty window against its own profile).
    fn follow(&mut self, store: &dyn Store, artifacts: &dyn ArtifactStore, champion: i64) {
        if self.watched.as_ref().is_some_and(|w| w.version == champion)
            || self.unreadable == Some(champion)
        {
            return;
        }
        self.watched = None;
        let loaded =
            match freshet_serve::loader::load_version(store, artifacts, &self.model, champion) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(model = %self.model, version = champion, error = %e,
                        "cannot load the champion for drift monitoring");
                    self.unreadable = Some(champion);
                    return;
                }
            };
        let Some(profile) = loaded.model.reference_profile() else {
            tracing::info!(model = %self.model, version = champion,
                "the champion has no reference profile; no data drift monitoring");
            self.unreadable = Some(champion);
            return;
        };
        let spec = loaded.model.spec();
        let reference = Reference::from_profile(profile);
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
    /// by the caller); `champion` is the version serving now.
    pub fn absorb(
        &mut self,
        store: &dyn Store,
        artifacts: &dyn ArtifactStore,
        champion: i64,
        batches: &[RecordBatch],
    ) -> Result<()> {
        self.follow(store, artifacts, champion);
        let Some(w) = self.watched.as_mut() else {
            return Ok(());
        };
        let schema = inference_schema();
        // Only the newest `window_rows` rows can stay in the window: older ones are not
        // even decoded (at tens of thousands of requests a second this is most of them).
        let keep = usize::try_from(self.spec.window_rows).unwrap_or(usize::MAX);
        for b in newest_rows(batches, keep) {
            for r in batch_rows(&b, &schema)? {
                let version = match r[4] {
                    Value::Int(v) => v,
                    _ => continue,
                };
                if version != w.version || text(&r[5]) != Some("champion") {
                    continue;
                }
                w.push_row(text(&r[8]), text(&r[9]), text(&r[10]));
            }
        }
        Ok(())
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

/// The last `keep` rows of `batches` (in order), slicing the first batch needed.
fn newest_rows(batches: &[RecordBatch], keep: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut left = keep;
    for b in batches.iter().rev() {
        if left == 0 {
            break;
        }
        let n = b.num_rows();
        if n <= left {
            out.push(b.clone());
            left -= n;
        } else {
            out.push(b.slice(n - left, left));
            left = 0;
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
                .and_then(|p| {
                    if self.binary {
                        p.get(1).copied()
                    } else {
                        p.into_iter().reduce(f64::max)
                    }
                })
        };
        self.window.push(observations, score);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::{Field, FieldType, Schema};
    use freshet_lake::RowBatchBuilder;

    fn batch(ids: std::ops::Range<i64>) -> freshet_lake::arrow::record_batch::RecordBatch {
        let s = Schema::new(vec![Field::new("id", FieldType::Int)]);
        let mut b = RowBatchBuilder::new(&s, ids.clone().count());
        for i in ids {
            b.push(0, &Value::Int(i));
            b.end_row();
        }
        b.finish().expect("batch")
    }

    fn ids(batches: &[freshet_lake::arrow::record_batch::RecordBatch]) -> Vec<i64> {
        let s = Schema::new(vec![Field::new("id", FieldType::Int)]);
        batches
            .iter()
            .flat_map(|b| batch_rows(b, &s).expect("rows"))
            .map(|r| match r[0] {
                Value::Int(i) => i,
                _ => -1,
            })
            .collect()
    }

    #[test]
    fn only_the_newest_rows_are_kept_in_order() {
        let batches = [batch(0..5), batch(5..8), batch(8..12)];
        assert_eq!(ids(&newest_rows(&batches, 6)), [6, 7, 8, 9, 10, 11]);
        assert_eq!(ids(&newest_rows(&batches, 4)), [8, 9, 10, 11]);
        assert_eq!(
            ids(&newest_rows(&batches, 100)),
            (0..12).collect::<Vec<_>>()
        );
        assert!(newest_rows(&batches, 0).is_empty());
    }
}
