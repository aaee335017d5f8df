//! Publishing a trained model to the registry: one tracked run (params, metrics and the
//! Delta table version it read, as a dataset input), a logged model holding the
//! artifact files, and a new version of the registered model. The same records an
//! MLflow client would make, so the client sees Freshet's versions like its own.

use freshet_learn::model::Model;
use freshet_learn::train::TrainOutcome;
use freshet_registry::artifacts::{ArtifactPath, ArtifactStore};
use freshet_registry::model::{Metric, NewRun, Param, RunStatus, RunUpdate, Tag};
use freshet_registry::models::{LoggedModelStatus, NewLoggedModel, NewModelVersion};
use freshet_registry::store::DatasetInput;
use freshet_registry::{RegistryError, Store};
use serde_json::{Value, json};

/// The tag naming, comma-separated, the derived features a run's model left out because
/// they trend with arrival order (docs/models.md).
pub const TRENDING_EXCLUDED_TAG: &str = "freshet.trending_excluded";

/// What a model was trained from.
#[derive(Debug, Clone)]
pub struct Lineage {
    /// Table name, e.g. `events/cards`.
    pub table: String,
    /// Where the table lives.
    pub table_uri: String,
    /// The Delta version read.
    pub version: i64,
    /// Rows in that version.
    pub rows: u64,
}

/// The records a publication made.
#[derive(Debug, Clone)]
pub struct Published {
    pub experiment_id: String,
    pub run_id: String,
    pub model_id: String,
    pub version: i64,
}

fn tag(key: &str, value: impl Into<String>) -> Tag {
    Tag {
        key: key.into(),
        value: value.into(),
    }
}

fn param(key: &str, value: impl Into<String>) -> Param {
    Param {
        key: key.into(),
        value: value.into(),
    }
}

/// The learner's spec as flat params: `learner` is its type, nested settings are
/// dotted (`tree.grace_period`).
fn learner_params(model: &Model) -> Vec<Param> {
    fn flatten(prefix: &str, v: &Value, out: &mut Vec<Param>) {
        match v {
            Value::Object(map) => {
                for (k, v) in map {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            Value::String(s) => out.push(param(prefix, s.clone())),
            Value::Null => {}
            other => out.push(param(prefix, other.to_string())),
        }
    }
    let mut out = Vec::new();
    if let Ok(Value::Object(mut spec)) = serde_json::to_value(&model.spec().learner) {
        if let Some(Value::String(t)) = spec.remove("type") {
            out.push(param("learner", t));
        }
        flatten("", &Value::Object(spec), &mut out);
    }
    out
}

/// The experiment named after the model, created on first use.
pub fn experiment_for(store: &dyn Store, name: &str) -> Result<String, RegistryError> {
    match store.get_experiment_by_name(name) {
        Ok(e) => Ok(e.experiment_id),
        Err(RegistryError::NotFound(_)) => {
            match store.create_experiment(name, None, &[tag("freshet.model", name)]) {
                Ok(id) => Ok(id),
                // Another trainer created it first.
                Err(RegistryError::AlreadyExists(_)) => {
                    Ok(store.get_experiment_by_name(name)?.experiment_id)
                }
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Record `outcome` as a run of the experiment named after the model, store its files,
/// and register it as the next version of the registered model `name`.
pub fn publish(
    store: &dyn Store,
    artifacts: &dyn ArtifactStore,
    name: &str,
    outcome: &TrainOutcome,
    lineage: &Lineage,
    started_ms: i64,
) -> Result<Published, RegistryError> {
    publish_tagged(store, artifacts, name, outcome, lineage, started_ms, &[])
}

/// [`publish`], with extra tags on the run and the version (a job id, the trigger).
pub fn publish_tagged(
    store: &dyn Store,
    artifacts: &dyn ArtifactStore,
    name: &str,
    outcome: &TrainOutcome,
    lineage: &Lineage,
    started_ms: i64,
    extra: &[Tag],
) -> Result<Published, RegistryError> {
    // Features left out for trending with arrival order are said on the run and the
    // version alike.
    let excluded = &outcome.model.spec().trending_excluded;
    let trending = (!excluded.is_empty()).then(|| tag(TRENDING_EXCLUDED_TAG, excluded.join(",")));
    let extra: Vec<Tag> = extra.iter().cloned().chain(trending).collect();
    let extra = extra.as_slice();
    let experiment_id = experiment_for(store, name)?;
    let run = store.create_run(NewRun {
        experiment_id: experiment_id.clone(),
        run_name: Some(format!("train-{}-v{}", name, lineage.version)),
        user_id: "freshet".into(),
        start_time: Some(started_ms),
        tags: vec![
            tag("mlflow.source.type", "JOB"),
            tag("mlflow.source.name", "freshet train"),
            tag("mlflow.user", "freshet"),
            tag("freshet.model", name),
            tag("freshet.table", lineage.table.clone()),
            tag("freshet.table_uri", lineage.table_uri.clone()),
            tag("freshet.table_version", lineage.version.to_string()),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .collect(),
    })?;
    let run_id = run.info.run_id.clone();
    let result = record_run(
        store,
        artifacts,
        name,
        outcome,
        lineage,
        &experiment_id,
        &run_id,
        extra,
    );
    let status = if result.is_ok() {
        RunStatus::Finished
    } else {
        RunStatus::Failed
    };
    store.update_run(
        &run_id,
        RunUpdate {
            status: Some(status),
            end_time: Some(chrono::Utc::now().timestamp_millis()),
            run_name: None,
        },
    )?;
    let (model_id, version) = result?;
    Ok(Published {
        experiment_id,
        run_id,
        model_id,
        version,
    })
}

#[allow(clippy::too_many_arguments)]
fn record_run(
    store: &dyn Store,
    artifacts: &dyn ArtifactStore,
    name: &str,
    outcome: &TrainOutcome,
    lineage: &Lineage,
    experiment_id: &str,
    run_id: &str,
    extra: &[Tag],
) -> Result<(String, i64), RegistryError> {
    let model = &outcome.model;
    let mut params = learner_params(model);
    let features = model.features().output_names();
    params.extend([
        param("task", model.task().as_str()),
        param("features", features.len().to_string()),
        param("holdout", model.spec().holdout.to_string()),
        param("train_rows", outcome.train_rows.to_string()),
        param("holdout_rows", outcome.holdout_rows.to_string()),
        param("skipped_rows", outcome.skipped_rows.to_string()),
        param("table", lineage.table.clone()),
        param("table_version", lineage.version.to_string()),
    ]);
    let now = chrono::Utc::now().timestamp_millis();
    let metrics: Vec<Metric> = outcome
        .metrics
        .iter()
        .map(|(k, v)| Metric {
            key: k.clone(),
            value: *v,
            timestamp: now,
            step: 0,
        })
        .collect();
    store.log_batch(run_id, &metrics, &params, &[])?;
    store.log_run_inputs(
        run_id,
        &[DatasetInput {
            name: lineage.table.clone(),
            digest: format!("v{}", lineage.version),
            source_type: "delta_table".into(),
            source: json!({ "path": lineage.table_uri, "delta_table_version": lineage.version })
                .to_string(),
            schema: String::new(),
            profile: json!({ "num_rows": lineage.rows }).to_string(),
            tags: vec![tag("mlflow.data.context", "training")],
        }],
        &[],
    )?;

    let logged = store.create_logged_model(NewLoggedModel {
        experiment_id: experiment_id.to_string(),
        name: Some("model".into()),
        model_type: Some(model.learner().name().to_string()),
        source_run_id: Some(run_id.to_string()),
        params: learner_params(model),
        tags: vec![tag("freshet.model", name)],
    })?;
    let model_id = logged.info.model_id.clone();
    let root = logged
        .info
        .artifact_uri
        .strip_prefix("mlflow-artifacts:/")
        .unwrap_or(&logged.info.artifact_uri)
        .to_string();
    let files = model.to_files().map_err(|e| {
        RegistryError::InvalidParameter(format!("the model could not be serialised: {e}"))
    })?;
    for (path, bytes) in &files {
        let target = ArtifactPath::parse(&format!("{root}/{path}"))?;
        artifacts.put(&target, &mut bytes.as_slice())?;
    }
    store.finalize_logged_model(&model_id, LoggedModelStatus::Ready)?;
    store.log_run_outputs(run_id, &[(model_id.clone(), 0)])?;

    match store.create_registered_model(name, &[tag("freshet.model", name)], None) {
        Ok(_) | Err(RegistryError::AlreadyExists(_)) => {}
        Err(e) => return Err(e),
    }
    let version = store.create_model_version(NewModelVersion {
        name: name.to_string(),
        source: format!("models:/{model_id}"),
        run_id: Some(run_id.to_string()),
        model_id: Some(model_id.clone()),
        description: Some(format!(
            "trained by freshet from {}@v{}",
            lineage.table, lineage.version
        )),
        tags: [
            tag("freshet.table", lineage.table.clone()),
            tag("freshet.table_version", lineage.version.to_string()),
        ]
        .into_iter()
        .chain(extra.iter().cloned())
        .collect(),
        user_id: Some("freshet".into()),
        run_link: None,
    })?;
    Ok((model_id, version.version))
}
