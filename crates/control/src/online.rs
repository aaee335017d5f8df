//! The online job: one live model per model that keeps learning every new row of the
//! stream's table, in arrival order, test-then-train; a trigger snapshots it into a
//! registered version.
//!
//! The live model is not written anywhere between snapshots: each snapshot records the
//! table version it learnt through (tag `freshet.online_through`), and after a restart
//! the learner starts again from the newest snapshot and replays the rows since, so no
//! row is lost or learnt twice.

use crate::error::{ControlError, Result};
use crate::job::sort_by_arrival;
use freshet_core::{ModelSpec, Schema, SystemClock, Value};
use freshet_lake::{Table, batch_rows};
use freshet_learn::features::SchemaRow;
use freshet_learn::model::{Model, ModelStamp, Output};
use freshet_learn::train::{TrainOutcome, score_answers};
use freshet_registry::Store;
use freshet_registry::artifacts::ArtifactStore;
use freshet_registry::models::ModelQuery;
use std::collections::VecDeque;

/// The tag naming the table version a snapshot learnt through.
pub const THROUGH_TAG: &str = "freshet.online_through";

/// The live learner.
#[derive(Debug)]
pub struct OnlineLearner {
    model: Model,
    /// The table version learnt through (`None`: nothing yet).
    pub through: Option<i64>,
    /// The newest rows, each with the answer the model gave before learning it.
    recent: VecDeque<(Vec<Value>, Output)>,
    keep: usize,
    /// Rows learnt since the model was created.
    pub rows_learnt: u64,
}

/// A snapshot, ready to publish and judge.
#[derive(Debug)]
pub struct Snapshot {
    pub outcome: TrainOutcome,
    /// The rows the gates judge on (the learner's newest, in arrival order).
    pub holdout: Vec<Vec<Value>>,
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
        let (batches, version) = table.read_appended(self.through, upto).await?;
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
                self.recent.push_back((row, out));
            }
        }
        self.through = Some(version);
    }

    /// A copy of the live model as a candidate: metrics `holdout_*` from its answers on
    /// its newest rows (each given before it learnt the row), its reference profile
    /// from those rows.
    pub fn snapshot(&self, schema: &Schema) -> Option<Snapshot> {
        let through = self.through?;
        let mut model = self.model.clone();
        let answers: Vec<(SchemaRow<'_>, Output)> = self
            .recent
            .iter()
            .map(|(r, out)| (SchemaRow::new(schema, r), out.clone()))
            .collect();
        let (scored, metrics) = score_answers(&model, &answers, "holdout");
        model.build_reference_profile(answers.iter().map(|(r, _)| *r));
        drop(answers);
        Some(Snapshot {
            outcome: TrainOutcome {
                model,
                train_rows: self.rows_learnt,
                holdout_rows: scored,
                skipped_rows: 0,
                metrics,
            },
            holdout: self.recent.iter().map(|(r, _)| r.clone()).collect(),
            through,
        })
    }
}
