//! The online job: one live model per model that keeps learning every new row of the
//! stream's table, in arrival order, test-then-train; a trigger snapshots it into a
//! registered version.
//!
//! The live model is not written anywhere between snapshots: each snapshot records the
//! table version it learnt through (tag `freshet.online_through`), and after a restart
//! the learner starts again from the newest snapshot and replays the rows since, so no
//! row is lost or learnt twice.
//!
//! A fresh learner (no snapshot to resume) decides its features first: it holds the
//! stream's first [`JUDGE_ROWS`] rows without learning them, judges which numeric
//! features trend with arrival order on them (`trending` in docs/models.md), builds its
//! model without those, then learns the held rows in order, test-then-train, as if it
//! had never waited. Waiting for a fixed number of rows, rather than judging whatever
//! the first tick happened to read, makes the decision the same however the ticks fall.
//! A snapshot due earlier decides on the rows held by then. A resumed learner keeps the
//! features of its snapshot.

use crate::error::{ControlError, Result};
use crate::job::sort_by_arrival;
use freshet_core::{ModelSpec, ResolvedModelSpec, Schema, SystemClock, Value};
use freshet_lake::{Table, batch_rows};
use freshet_learn::features::SchemaRow;
use freshet_learn::features::trend::exclude_trending;
use freshet_learn::model::{Model, ModelStamp, Output};
use freshet_learn::train::{TrainOutcome, score_answers};
use freshet_registry::Store;
use freshet_registry::artifacts::ArtifactStore;
use freshet_registry::models::ModelQuery;
use std::collections::VecDeque;

/// Commits read and learnt at a time, so a long backlog is never held whole.
pub const CHUNK_COMMITS: i64 = 200;

/// The tag naming the table version a snapshot learnt through.
pub const THROUGH_TAG: &str = "freshet.online_through";

/// Rows a fresh learner holds, unlearnt, to judge which features trend with arrival
/// order before it builds its model (the default `initial_rows`).
pub const JUDGE_ROWS: usize = 1_000;

/// A fresh learner's features, not yet decided: its spec and the rows held until then.
#[derive(Debug)]
struct Undecided {
    spec: ModelSpec,
    resolved: ResolvedModelSpec,
    rows: Vec<Vec<Value>>,
}

/// The live learner.
#[derive(Debug)]
pub struct OnlineLearner {
    model: Model,
    /// The table version learnt through (`None`: nothing yet).
    pub through: Option<i64>,
    /// The newest rows, each with the answer the model gave before learning it and the
    /// model's row count once it had learnt it.
    recent: VecDeque<(Vec<Value>, Output, u64)>,
    keep: usize,
    /// Rows learnt since the model was created.
    pub rows_learnt: u64,
    /// A fresh learner's first rows, held until its features are decided (`model` is
    /// rebuilt then); `None` once they are, and for a resumed learner.
    undecided: Option<Undecided>,
}

/// A snapshot, ready to publish and judge.
#[derive(Debug)]
pub struct Snapshot {
    pub outcome: TrainOutcome,
    /// The learner's newest rows in arrival order, each with the answer given before
    /// learning it and the learner's row count after.
    answers: Vec<(Vec<Value>, Output, u64)>,
    pub through: i64,
}

fn config_error(name: &str, reason: String) -> ControlError {
    ControlError::Config {
        model: name.to_string(),
        reason,
    }
}

impl OnlineLearner {
    /// The newest snapshot of `name` (a version tagged [`THROUGH_TAG`]), or a fresh
    /// model when there is none; `keep` rows are kept for the gates.
    pub fn resume(
        store: &dyn Store,
        artifacts: &dyn ArtifactStore,
        name: &str,
        spec: &ModelSpec,
        schema: &Schema,
        keep: usize,
    ) -> Result<Self> {
        let newest = store.search_model_versions(&ModelQuery {
            filter: format!("name = '{}'", name.replace('\'', "''")),
            max_results: 200,
            order_by: vec!["version_number DESC".into()],
            ..Default::default()
        });
        let found = match newest {
            Ok(page) => page.items.into_iter().find_map(|v| {
                let through = v
                    .tags
                    .iter()
                    .find(|t| t.key == THROUGH_TAG)
                    .and_then(|t| t.value.parse::<i64>().ok())?;
                Some((v.version, through))
            }),
            Err(freshet_registry::RegistryError::NotFound(_)) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some((version, through)) = found {
            let loaded = freshet_serve::loader::load_version(store, artifacts, name, version)?;
            tracing::info!(
                model = name,
                version,
                through,
                "online learner resumes from its snapshot"
            );
            return Ok(Self {
                rows_learnt: loaded.model.metadata().training_rows,
                model: loaded.model,
                through: Some(through),
                recent: VecDeque::new(),
                keep,
                undecided: None,
            });
        }
        let resolved = spec.resolve(name, schema).map_err(|errs| {
            config_error(
                name,
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let model = Model::new(&resolved, schema, ModelStamp::new(&SystemClock))
            .map_err(|e| config_error(name, e.to_string()))?;
        if model.is_batch() {
            return Err(config_error(
                name,
                "online jobs need an online learner; this one learns in batches".into(),
            ));
        }
        Ok(Self {
            model,
            through: None,
            recent: VecDeque::new(),
            keep,
            rows_learnt: 0,
            undecided: Some(Undecided {
                spec: spec.clone(),
                resolved,
                rows: Vec::new(),
            }),
        })
    }

    /// Read the rows committed after [`through`](Self::through) up to `upto` (the
    /// newest version when `None`); they are learnt by [`learn`](Self::learn).
    pub async fn fetch(
        &self,
        table: &Table,
        schema: &Schema,
        upto: Option<i64>,
    ) -> Result<(Vec<Vec<Value>>, i64)> {
        if let (Some(t), Some(u)) = (self.through, upto)
            && t >= u
        {
            return Ok((Vec::new(), t));
        }
        // Commits, not snapshots: compaction's rewrites are not learnt twice.
        let (batches, version) = table.read_new(self.through, upto).await?;
        let mut rows = Vec::new();
        for b in &batches {
            rows.extend(batch_rows(b, schema)?);
        }
        // A commit holds its rows in arrival order; several commits are merged by it.
        sort_by_arrival(&mut rows, schema);
        Ok((rows, version))
    }

    /// Learn `rows` test-then-train (CPU work: run it on the blocking pool) and record
    /// that the table was learnt through `version`.
    pub fn learn(&mut self, schema: &Schema, rows: Vec<Vec<Value>>, version: i64) {
        self.through = Some(version);
        let rows = match self.undecided.as_mut() {
            Some(u) => {
                u.rows.extend(rows);
                if u.rows.len() < JUDGE_ROWS {
                    return;
                }
                self.decide_features(schema)
            }
            None => rows,
        };
        self.learn_rows(schema, rows);
    }

    /// Judge the held rows for trending features, rebuild the model without those left
    /// out, and hand the held rows back to be learnt. Nothing when already decided.
    fn decide_features(&mut self, schema: &Schema) -> Vec<Vec<Value>> {
        let Some(mut u) = self.undecided.take() else {
            return Vec::new();
        };
        let records: Vec<SchemaRow<'_>> =
            u.rows.iter().map(|r| SchemaRow::new(schema, r)).collect();
        exclude_trending(&u.spec, &mut u.resolved, &records);
        drop(records);
        if !u.resolved.trending_excluded.is_empty() {
            match Model::new(&u.resolved, schema, ModelStamp::new(&SystemClock)) {
                Ok(m) => self.model = m,
                // Cannot happen for a subset of a spec that built; keep every feature.
                Err(e) => tracing::warn!(model = %u.resolved.name, error = %e,
                    "cannot build the model without its trending features; all kept"),
            }
        }
        u.rows
    }

    fn learn_rows(&mut self, schema: &Schema, rows: Vec<Vec<Value>>) {
        for row in rows {
            let rec = SchemaRow::new(schema, &row);
            let answer = self.model.predict_output(&rec).ok();
            if self.model.learn_record(&rec).is_err() {
                // No usable label: nothing to learn, nothing to grade.
                continue;
            }
            self.rows_learnt += 1;
            if let Some(out) = answer {
                if self.recent.len() == self.keep {
                    self.recent.pop_front();
                }
                let learnt = self.model.metadata().training_rows;
                self.recent.push_back((row, out, learnt));
            }
        }
    }

    /// A copy of the live model as a candidate: metrics `holdout_*` from its answers on
    /// its newest rows (each given before it learnt the row), its reference profile
    /// from those rows. A learner still holding its first rows decides its features on
    /// them and learns them first.
    pub fn snapshot(&mut self, schema: &Schema) -> Option<Snapshot> {
        let through = self.through?;
        if self.undecided.is_some() {
            let held = self.decide_features(schema);
            self.learn_rows(schema, held);
        }
        let mut model = self.model.clone();
        let all: Vec<&(Vec<Value>, Output, u64)> = self.recent.iter().collect();
        let (scored, metrics) = prequential(&model, schema, &all);
        let rows: Vec<SchemaRow<'_>> = all
            .iter()
            .map(|(r, _, _)| SchemaRow::new(schema, r))
            .collect();
        model.build_reference_profile(rows.iter().copied());
        drop(rows);
        Some(Snapshot {
            outcome: TrainOutcome {
                model,
                train_rows: self.rows_learnt,
                holdout_rows: scored,
                skipped_rows: 0,
                metrics,
            },
            answers: self.recent.iter().cloned().collect(),
            through,
        })
    }
}

/// `holdout_*` metrics of answers given test-then-train.
fn prequential(
    model: &Model,
    schema: &Schema,
    answers: &[&(Vec<Value>, Output, u64)],
) -> (u64, Vec<(String, f64)>) {
    let pairs: Vec<(SchemaRow<'_>, Output)> = answers
        .iter()
        .map(|(r, out, _)| (SchemaRow::new(schema, r), out.clone()))
        .collect();
    score_answers(model, &pairs, "holdout")
}

impl Snapshot {
    /// The rows and metrics the gates compare with a champion that had learnt
    /// `champion_rows` rows of the same learner: only the answers to rows the champion
    /// never learnt, so neither side is graded on its own training rows.
    pub fn unseen_by(
        &self,
        champion_rows: u64,
        schema: &Schema,
    ) -> (Vec<Vec<Value>>, Vec<(String, f64)>) {
        let fresh: Vec<&(Vec<Value>, Output, u64)> = self
            .answers
            .iter()
            .filter(|(_, _, n)| *n > champion_rows)
            .collect();
        let (_, metrics) = prequential(&self.outcome.model, schema, &fresh);
        (fresh.iter().map(|(r, _, _)| r.clone()).collect(), metrics)
    }

    /// Every kept row, for gates against a champion of another lineage.
    pub fn rows(&self) -> Vec<Vec<Value>> {
        self.answers.iter().map(|(r, _, _)| r.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshet_core::{Field, FieldType};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("x", FieldType::Float),
            Field::new("y", FieldType::Bool),
        ])
    }

    fn learner(keep: usize) -> OnlineLearner {
        let spec: ModelSpec = serde_json::from_value(serde_json::json!({
            "stream": "s", "label": "y", "learner": { "type": "gaussian_nb" },
        }))
        .expect("spec");
        let resolved = spec.resolve("m", &schema()).expect("resolve");
        OnlineLearner {
            model: Model::new(&resolved, &schema(), ModelStamp::new(&SystemClock)).expect("model"),
            through: None,
            recent: VecDeque::new(),
            keep,
            rows_learnt: 0,
            undecided: None,
        }
    }

    fn rows(range: std::ops::Range<u32>) -> Vec<Vec<Value>> {
        range
            .map(|i| vec![Value::Float(f64::from(i % 10)), Value::Bool(i % 10 > 4)])
            .collect()
    }

    #[test]
    fn gates_against_an_older_snapshot_use_only_rows_it_never_learnt() {
        let mut l = learner(10);
        l.learn(&schema(), rows(0..30), 3);
        assert_eq!((l.rows_learnt, l.through), (30, Some(3)));
        let snap = l.snapshot(&schema()).expect("snapshot");
        // The newest 10 answers are kept (the very first row has no answer yet).
        assert_eq!(snap.rows().len(), 10);
        assert_eq!(snap.outcome.holdout_rows, 10);
        // A champion that had learnt 25 rows: only rows 26..=30 are new to it.
        let (fresh, metrics) = snap.unseen_by(25, &schema());
        assert_eq!(fresh, rows(25..30));
        assert!(metrics.iter().any(|(k, _)| k == "holdout_accuracy"));
        // One that learnt them all leaves nothing to compare on.
        let (none, metrics) = snap.unseen_by(30, &schema());
        assert!(none.is_empty() && metrics.is_empty());
    }
}
