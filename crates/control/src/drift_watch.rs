//! Data and prediction drift of the champion's served traffic: the captured requests
//! (`inference/<model>`) read incrementally, the champion's rows kept in a sliding
//! window, tested against the champion's reference profile every `every_secs`.

use crate::error::Result;
use freshet_core::Task;
use freshet_core::Value;
use freshet_core::model_spec::{MonitorSpec, ResolvedFeature};
use freshet_lake::{Lake, Table, batch_rows};
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
    table: Option<Table>,
    seen: Option<i64>,
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
            table: None,
            seen: None,
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

    /// Read what the champion served since the last poll and, when `every_secs` passed
    /// and the window holds `min_rows`, test it. `None` when nothing was tested.
    pub async fn poll(
        &mut self,
        lake: &Lake,
        store: &dyn Store,
        artifacts: &dyn ArtifactStore,
        champion: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<(i64, DriftReport)>> {
        let Some(champion) = champion else {
            return Ok(None);
        };
        let every_ms = i64::try_from(self.spec.every_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(self.last_test_ms) < every_ms {
            return Ok(None);
        }
        self.follow(store, artifacts, champion);
        let schema = inference_schema();
        if self.table.is_none() {
            let open = freshet_serve::feedback::open_table;
            self.table = Some(open(lake, &format!("inference/{}", self.model), &schema).await?);
        }
        let (Some(table), Some(w)) = (&self.table, self.watched.as_mut()) else {
            return Ok(None);
        };
        let (batches, upto) = table.read_since(self.seen, None).await?;
        self.seen = Some(upto);
        for b in batches {
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
        self.last_test_ms = now_ms;
        if (w.window.len() as u64) < self.spec.min_rows {
            return Ok(None);
        }
        let report = served_drift(&w.reference, &w.window, self.spec.drift_share);
        Ok(Some((w.version, report)))
    }
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
