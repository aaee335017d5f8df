//! Training jobs: the built-in learners on a window of the stream's table at a pinned
//! Delta version, or an external command given the table and an MLflow run to log to.

use crate::error::{ControlError, Result};
use crate::publish::{Lineage, Published, publish_tagged};
use crate::state::JobState;
use freshet_core::{ModelSpec, Schema, SystemClock, Value, system_columns as sys};
use freshet_lake::Table;
use freshet_learn::features::SchemaRow;
use freshet_learn::features::trend::exclude_trending;
use freshet_learn::model::{Model, ModelStamp};
use freshet_learn::train::{TrainOutcome, holdout_start, train_with_holdout};
use freshet_registry::Store;
use freshet_registry::artifacts::ArtifactStore;
use freshet_registry::model::Tag;
use freshet_registry::models::ModelQuery;
use std::sync::Arc;

/// Order rows laid out by `schema` by arrival (`_ingested_at`, then the position
/// within the source), so that a holdout is the newest data whatever order the table's
/// files are read in.
pub fn sort_by_arrival(rows: &mut [Vec<Value>], schema: &Schema) {
    let (at, pos) = (
        schema.index_of(sys::INGESTED_AT),
        schema.index_of(sys::POSITION),
    );
    let key = |r: &Vec<Value>, i: Option<usize>| match i.and_then(|i| r.get(i)) {
        Some(Value::Timestamp(t)) | Some(Value::Int(t)) => *t,
        _ => i64::MIN,
    };
    rows.sort_by_key(|r| (key(r, at), key(r, pos)));
}

/// The rows a job trains on: the pinned version's rows in arrival order, after the
/// drift point when there is one, at most the newest `window_rows`.
pub async fn window(
    table: &Table,
    schema: &Schema,
    job: &JobState,
    window_rows: u64,
) -> Result<Vec<Vec<Value>>> {
    let skip = job
        .skip_rows
        .map_or(0, |s| usize::try_from(s).unwrap_or(usize::MAX));
    let keep = usize::try_from(window_rows).unwrap_or(usize::MAX);
    Ok(table
        .read_rows_window(
            Some(job.table_version),
            schema,
            [sys::INGESTED_AT, sys::POSITION],
            skip,
            keep,
        )
        .await?)
}

/// A trained, registered candidate with its holdout rows (for the gates).
pub struct Candidate {
    pub published: Published,
    pub outcome: TrainOutcome,
    pub rows: Vec<Vec<Value>>,
    pub split: usize,
}

/// A version this job registered before a restart interrupted it, if any.
pub fn already_registered(store: &dyn Store, model: &str, job_id: &str) -> Result<Option<i64>> {
    let found = store.search_model_versions(&ModelQuery {
        filter: format!(
            "name = '{}' AND tags.`freshet.job_id` = '{}'",
            model.replace('\'', "''"),
            job_id
        ),
        max_results: 1,
        ..Default::default()
    })?;
    Ok(found.items.first().map(|v| v.version))
}

/// The tags a job's version carries: which job made it (so a restart finds it) and
/// why it ran.
pub fn job_tags(job: &JobState) -> [Tag; 2] {
    [
        Tag {
            key: "freshet.job_id".into(),
            value: job.id.clone(),
        },
        Tag {
            key: "freshet.trigger".into(),
            value: job.trigger.chars().take(250).collect(),
        },
    ]
}

/// The lineage of a version trained from the stream's table at `version`.
pub fn stream_lineage(spec: &ModelSpec, table: &Table, version: i64, rows: u64) -> Lineage {
    Lineage {
        table: format!("events/{}", spec.stream),
        table_uri: table.url().to_string(),
        version,
        rows,
    }
}

/// Train the built-in learner on the window and register the version.
#[allow(clippy::too_many_arguments)]
pub async fn run_builtin(
    store: Arc<dyn Store>,
    artifacts: Arc<dyn ArtifactStore>,
    table: &Table,
    schema: &Schema,
    name: &str,
    spec: &ModelSpec,
    job: &JobState,
    window_rows: u64,
) -> Result<Candidate> {
    let rows = window(table, schema, job, window_rows).await?;
    let mut resolved = spec
        .resolve(name, schema)
        .map_err(|errs| ControlError::Config {
            model: name.to_string(),
            reason: errs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        })?;
    if rows.len() < 2 {
        return Err(ControlError::Job {
            model: name.to_string(),
            reason: format!("{} rows in the window; at least 2 are needed", rows.len()),
        });
    }
    let split = holdout_start(rows.len(), resolved.holdout);
    let lineage = stream_lineage(spec, table, job.table_version, rows.len() as u64);
    let (name_c, schema_c, job_c, spec_c) =
        (name.to_string(), schema.clone(), job.clone(), spec.clone());
    // Training is CPU work: it runs on the blocking pool, one job per model at a time.
    let (outcome, published, rows) = tokio::task::spawn_blocking(move || {
        let records: Vec<SchemaRow<'_>> =
            rows.iter().map(|r| SchemaRow::new(&schema_c, r)).collect();
        // Features are judged on the training rows only, never on the holdout.
        exclude_trending(&spec_c, &mut resolved, &records[..split]);
        let model = Model::new(&resolved, &schema_c, ModelStamp::new(&SystemClock))?;
        let outcome = train_with_holdout(model, &records, resolved.holdout, |_| {})?;
        drop(records);
        let tags = job_tags(&job_c);
        let now = chrono::Utc::now().timestamp_millis();
        let published = publish_tagged(
            store.as_ref(),
            artifacts.as_ref(),
            &name_c,
            &outcome,
            &lineage,
            now,
            &tags,
        )?;
        Ok::<_, ControlError>((outcome, published, rows))
    })
    .await
    .map_err(|e| ControlError::Job {
        model: name.to_string(),
        reason: e.to_string(),
    })??;
    Ok(Candidate {
        published,
        outcome,
        rows,
        split,
    })
}

/// Run an external training command; it logs and registers through the MLflow API.
/// Returns the version its run registered.
#[allow(clippy::too_many_arguments)] // each is one fact the command is started with
pub async fn run_command(
    store: &dyn Store,
    name: &str,
    command: &[String],
    timeout_secs: u64,
    table_uri: &str,
    job: &JobState,
    tracking_uri: &str,
    tracking_token: Option<&str>,
) -> Result<i64> {
    let fail = |reason: String| ControlError::Job {
        model: name.to_string(),
        reason,
    };
    let experiment = crate::publish::experiment_for(store, name)?;
    let run = store.create_run(freshet_registry::model::NewRun {
        experiment_id: experiment,
        run_name: Some(format!("job-{}", &job.id[..8.min(job.id.len())])),
        user_id: "freshet".into(),
        start_time: None,
        tags: vec![Tag {
            key: "freshet.job_id".into(),
            value: job.id.clone(),
        }],
    })?;
    let (program, args) = command
        .split_first()
        .ok_or_else(|| fail("the job has no command".into()))?;
    let mut cmd = tokio::process::Command::new(program);
    if let Some(t) = tracking_token {
        cmd.env("MLFLOW_TRACKING_TOKEN", t);
    }
    let mut child = cmd
        .args(args)
        .env("FRESHET_TABLE_URI", table_uri)
        .env("FRESHET_TABLE_VERSION", job.table_version.to_string())
        .env("FRESHET_MODEL", name)
        .env("MLFLOW_TRACKING_URI", tracking_uri)
        .env("MLFLOW_RUN_ID", &run.info.run_id)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(format!("cannot start '{program}': {e}")))?;
    let status = tokio::time::timeout(std::time::Duration::from_secs(timeout_secs), child.wait())
        .await
        .map_err(|_| fail(format!("no result within {timeout_secs} s")))?
        .map_err(|e| fail(e.to_string()))?;
    if !status.success() {
        return Err(fail(format!("the command exited with {status}")));
    }
    let found = store.search_model_versions(&ModelQuery {
        filter: format!("run_id = '{}'", run.info.run_id),
        max_results: 1,
        order_by: vec!["version_number DESC".into()],
        ..Default::default()
    })?;
    found
        .items
        .first()
        .map(|v| v.version)
        .ok_or_else(|| fail("the command registered no version from its run".into()))
}
