//! The MLflow tracking REST API (`/api/2.0/mlflow/...`), so that the `mlflow` client
//! works against Freshet with `MLFLOW_TRACKING_URI` pointing at it. Handlers parse,
//! call the tracking store on the blocking pool, and shape MLflow's answers.

use super::mlflow_access::{self, Reader};
use super::{AppState, MlflowError};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::Extensions;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use freshet_govern::permissions::Object;
use freshet_registry::Store;
use freshet_registry::api::{self, *};
use freshet_registry::model::{NewRun, RunStatus, RunUpdate, Tag};
use freshet_registry::store::ViewType;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

type Answer = Result<Json<Value>, MlflowError>;

pub(super) const PREFIXES: [&str; 2] = ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"];

pub fn router() -> Router<AppState> {
    let mut r = Router::new().route("/version", get(version));
    // Whatever else MLflow serves under its prefixes (traces, the gateway, prompts,
    // evaluation datasets, scorers, multipart and presigned artifact transfers, …)
    // answers in MLflow's error shape, not with a bare 404 page a client cannot read.
    for p in [
        "/api/2.0/mlflow",
        "/ajax-api/2.0/mlflow",
        "/api/3.0/mlflow",
        "/ajax-api/3.0/mlflow",
        "/api/2.0/mlflow-artifacts",
        "/ajax-api/2.0/mlflow-artifacts",
    ] {
        r = r.route(
            &format!("{p}/{{*rest}}"),
            axum::routing::any(not_implemented),
        );
    }
    for p in PREFIXES {
        r = r
            .route(&format!("{p}/experiments/create"), post(create_experiment))
            .route(&format!("{p}/experiments/get"), get(get_experiment))
            .route(
                &format!("{p}/experiments/get-by-name"),
                get(get_experiment_by_name),
            )
            .route(
                &format!("{p}/experiments/search"),
                post(search_experiments).get(search_experiments_get),
            )
            .route(&format!("{p}/experiments/update"), post(update_experiment))
            .route(&format!("{p}/experiments/delete"), post(delete_experiment))
            .route(
                &format!("{p}/experiments/restore"),
                post(restore_experiment),
            )
            .route(
                &format!("{p}/experiments/set-experiment-tag"),
                post(set_experiment_tag),
            )
            .route(
                &format!("{p}/experiments/delete-experiment-tag"),
                post(delete_experiment_tag),
            )
            .route(
                &format!("{p}/experiments/search-datasets"),
                post(search_datasets),
            )
            .route(&format!("{p}/runs/create"), post(create_run))
            .route(&format!("{p}/runs/get"), get(get_run))
            .route(&format!("{p}/runs/update"), post(update_run))
            .route(&format!("{p}/runs/delete"), post(delete_run))
            .route(&format!("{p}/runs/restore"), post(restore_run))
            .route(&format!("{p}/runs/log-metric"), post(log_metric))
            .route(&format!("{p}/runs/log-parameter"), post(log_param))
            .route(&format!("{p}/runs/set-tag"), post(set_tag))
            .route(&format!("{p}/runs/delete-tag"), post(delete_tag))
            .route(&format!("{p}/runs/log-batch"), post(log_batch))
            .route(&format!("{p}/runs/search"), post(search_runs))
            .route(&format!("{p}/metrics/get-history"), get(get_history))
            .route(
                &format!("{p}/metrics/get-history-bulk"),
                get(get_history_bulk),
            );
    }
    r
}

/// Parse a JSON body into `T`; problems are MLflow's INVALID_PARAMETER_VALUE (400).
/// Clients send a run's id as `run_id`, the deprecated `run_uuid`, or both: it is
/// normalised to `run_id` here, once, for every request type.
pub(super) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, MlflowError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &bytes[..]
    };
    let mut v: Value = serde_json::from_slice(text)
        .map_err(|e| MlflowError::invalid(format!("Invalid request body: {e}")))?;
    if let Some(obj) = v.as_object_mut()
        && let Some(uuid) = obj.remove("run_uuid")
    {
        obj.entry("run_id").or_insert(uuid);
    }
    serde_json::from_value(v)
        .map_err(|e| MlflowError::invalid(format!("Invalid request body: {e}")))
}

/// A run id from a query string (`run_id` or the deprecated `run_uuid`).
fn query_run_id(run_id: Option<String>, run_uuid: Option<String>) -> Result<String, MlflowError> {
    run_id
        .or(run_uuid)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'run_id'."))
}

/// Run a store call on the blocking pool.
pub(super) async fn call<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store) -> freshet_registry::Result<T> + Send + 'static,
) -> Result<T, MlflowError> {
    let store: Arc<dyn Store> = state.tracking.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|_| MlflowError::internal())?
        .map_err(MlflowError::from)
}

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn view(v: Option<&str>) -> Result<ViewType, MlflowError> {
    Ok(match v {
        None | Some("ACTIVE_ONLY") | Some("1") => ViewType::ActiveOnly,
        Some("DELETED_ONLY") | Some("2") => ViewType::DeletedOnly,
        Some("ALL") | Some("3") => ViewType::All,
        Some(other) => return Err(MlflowError::invalid(format!("Invalid view_type '{other}'"))),
    })
}

pub(super) fn max_results(v: Option<i64>, default: i64, cap: i64) -> Result<usize, MlflowError> {
    let n = v.unwrap_or(default);
    if n < 1 || n > cap {
        return Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be between 1 and {cap}."
        )));
    }
    Ok(n as usize)
}

async fn create_experiment(State(s): State<AppState>, ext: Extensions, b: Bytes) -> Answer {
    let req: CreateExperiment = body(&b)?;
    let tags: Vec<Tag> = req.tags.into_iter().map(Into::into).collect();
    let name = req.name.clone();
    let id = call(&s, move |st| {
        st.create_experiment(&req.name, req.artifact_location.as_deref(), &tags)
    })
    .await?;
    let object = Object::Experiment {
        id: id.clone(),
        name,
    };
    mlflow_access::grant_creator(&s, &ext, object).await;
    Ok(Json(json!({ "experiment_id": id })))
}

#[derive(serde::Deserialize)]
struct ExperimentIdQuery {
    experiment_id: String,
}

async fn get_experiment(
    State(s): State<AppState>,
    q: Result<Query<ExperimentIdQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|_| {
        MlflowError::invalid("Missing value for required parameter 'experiment_id'.")
    })?;
    let e = call(&s, move |st| st.get_experiment(&q.experiment_id)).await?;
    Ok(Json(json!({ "experiment": api::experiment_json(&e) })))
}

#[derive(serde::Deserialize)]
struct ExperimentNameQuery {
    experiment_name: String,
}

async fn get_experiment_by_name(
    State(s): State<AppState>,
    q: Result<Query<ExperimentNameQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|_| {
        MlflowError::invalid("Missing value for required parameter 'experiment_name'.")
    })?;
    let e = call(&s, move |st| st.get_experiment_by_name(&q.experiment_name)).await?;
    Ok(Json(json!({ "experiment": api::experiment_json(&e) })))
}

async fn search_experiments(State(s): State<AppState>, ext: Extensions, b: Bytes) -> Answer {
    let req: SearchExperiments = body(&b)?;
    let reader = Reader::of(&s, &ext);
    search_experiments_with(s, reader, req).await
}

async fn search_experiments_get(
    State(s): State<AppState>,
    ext: Extensions,
    Query(req): Query<SearchExperiments>,
) -> Answer {
    let reader = Reader::of(&s, &ext);
    search_experiments_with(s, reader, req).await
}

/// Experiments the caller may read, a full page at a time.
async fn search_experiments_with(s: AppState, reader: Reader, req: SearchExperiments) -> Answer {
    let view = view(req.view_type.as_deref())?;
    let n = max_results(req.max_results, 1000, 50_000)?;
    let page = call(&s, move |st| {
        let filter = req.filter.as_deref().unwrap_or("");
        mlflow_access::readable_page(
            n,
            req.page_token.clone(),
            |n, token| st.search_experiments(view, filter, &req.order_by, n, token.as_deref()),
            |e| {
                reader.may_read(&Object::Experiment {
                    id: e.experiment_id.clone(),
                    name: e.name.clone(),
                })
            },
        )
    })
    .await?;
    let mut out =
        json!({ "experiments": page.items.iter().map(api::experiment_json).collect::<Vec<_>>() });
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

async fn update_experiment(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: UpdateExperiment = body(&b)?;
    call(&s, move |st| {
        st.rename_experiment(&req.experiment_id, &req.new_name)
    })
    .await?;
    Ok(Json(json!({})))
}

async fn delete_experiment(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: ExperimentRef = body(&b)?;
    call(&s, move |st| st.delete_experiment(&req.experiment_id)).await?;
    Ok(Json(json!({})))
}

async fn restore_experiment(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: ExperimentRef = body(&b)?;
    call(&s, move |st| st.restore_experiment(&req.experiment_id)).await?;
    Ok(Json(json!({})))
}

async fn set_experiment_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: SetExperimentTag = body(&b)?;
    call(&s, move |st| {
        st.set_experiment_tag(
            &req.experiment_id,
            &Tag {
                key: req.key,
                value: req.value,
            },
        )
    })
    .await?;
    Ok(Json(json!({})))
}

async fn not_implemented(uri: axum::http::Uri) -> MlflowError {
    MlflowError {
        status: axum::http::StatusCode::NOT_IMPLEMENTED,
        code: "NOT_IMPLEMENTED",
        message: format!(
            "{} is not implemented by Freshet (docs/compatibility.md lists what is)",
            uri.path()
        ),
    }
}

/// The MLflow release whose REST API Freshet answers as (what `mlflow server` gives
/// at `GET /version`); the interop tests run that release's client.
pub const MLFLOW_API_VERSION: &str = "3.17.2";

async fn version() -> &'static str {
    MLFLOW_API_VERSION
}

#[derive(serde::Deserialize)]
struct SearchDatasets {
    #[serde(default)]
    experiment_ids: Vec<String>,
}

/// `POST experiments/search-datasets`: the datasets runs of these experiments read.
async fn search_datasets(State(s): State<AppState>, ext: Extensions, b: Bytes) -> Answer {
    let req: SearchDatasets = body(&b)?;
    if req.experiment_ids.is_empty() {
        return Err(MlflowError::invalid(
            "Missing value for required parameter 'experiment_ids'.",
        ));
    }
    let reader = Reader::of(&s, &ext);
    let found = call(&s, move |st| {
        let ids = reader.readable_experiments(st, req.experiment_ids);
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        st.dataset_summaries(&ids)
    })
    .await?;
    Ok(Json(json!({ "dataset_summaries": found })))
}

async fn delete_experiment_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: DeleteExperimentTag = body(&b)?;
    call(&s, move |st| {
        st.delete_experiment_tag(&req.experiment_id, &req.key)
    })
    .await?;
    Ok(Json(json!({})))
}

async fn create_run(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: CreateRun = body(&b)?;
    let tags: Vec<Tag> = req.tags.into_iter().map(Into::into).collect();
    let user = req
        .user_id
        .or_else(|| {
            tags.iter()
                .find(|t| t.key == "mlflow.user")
                .map(|t| t.value.clone())
        })
        .unwrap_or_default();
    let new = NewRun {
        experiment_id: req.experiment_id.unwrap_or_else(|| "0".into()),
        run_name: req.run_name.filter(|n| !n.is_empty()),
        user_id: user,
        start_time: req.start_time,
        tags,
    };
    let run = call(&s, move |st| st.create_run(new)).await?;
    Ok(Json(json!({ "run": api::RunOut::from(&run) })))
}

#[derive(serde::Deserialize)]
struct RunIdQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

async fn get_run(
    State(s): State<AppState>,
    q: Result<Query<RunIdQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let Query(q) = q.map_err(|e| MlflowError::invalid(format!("Invalid query: {e}")))?;
    let id = query_run_id(q.run_id, q.run_uuid)?;
    let (run, datasets, models) = call(&s, move |st| {
        let run = st.get_run(&id)?;
        let datasets = st.run_dataset_inputs(&id)?;
        let models = st.run_models(&id)?;
        Ok((run, datasets, models))
    })
    .await?;
    let freshet_registry::store::RunModels {
        inputs: model_inputs,
        outputs: model_outputs,
    } = models;
    let mut out = json!({ "run": api::RunOut::from(&run) });
    if !datasets.is_empty() || !model_inputs.is_empty() {
        let mut inputs = super::mlflow_logged::inputs_json(&datasets);
        if !model_inputs.is_empty() {
            inputs["model_inputs"] = model_inputs
                .iter()
                .map(|m| json!({ "model_id": m }))
                .collect();
        }
        out["run"]["inputs"] = inputs;
    }
    if !model_outputs.is_empty() {
        out["run"]["outputs"] = json!({
            "model_outputs": model_outputs
                .iter()
                .map(|(m, step)| json!({ "model_id": m, "step": step }))
                .collect::<Vec<_>>()
        });
    }
    Ok(Json(out))
}

async fn update_run(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: UpdateRun = body(&b)?;
    let status = match req.status.as_deref() {
        None => None,
        Some(x) => Some(
            RunStatus::parse(x)
                .ok_or_else(|| MlflowError::invalid(format!("Invalid run status '{x}'")))?,
        ),
    };
    let update = RunUpdate {
        status,
        end_time: req.end_time,
        run_name: req.run_name.filter(|n| !n.is_empty()),
    };
    let info = call(&s, move |st| st.update_run(&req.run_id, update)).await?;
    Ok(Json(json!({ "run_info": api::RunInfoOut::from(&info) })))
}

async fn delete_run(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: RunRef = body(&b)?;
    call(&s, move |st| st.delete_run(&req.run_id)).await?;
    Ok(Json(json!({})))
}

async fn restore_run(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: RunRef = body(&b)?;
    call(&s, move |st| st.restore_run(&req.run_id)).await?;
    Ok(Json(json!({})))
}

async fn log_metric(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LogMetric = body(&b)?;
    let input = vec![MetricIn {
        key: req.key,
        value: req.value,
        timestamp: req.timestamp,
        step: req.step,
        model_id: req.model_id,
    }];
    let now = now_ms();
    let on_models = api::model_metrics_from(&input, now)?;
    let metrics = api::metrics_from(input, now)?;
    call(&s, move |st| {
        // Every named model exists before anything is written.
        for (id, _) in &on_models {
            st.get_logged_model(id)?;
        }
        st.log_batch(&req.run_id, &metrics, &[], &[])?;
        st.log_logged_model_metrics(&req.run_id, &on_models)
    })
    .await?;
    Ok(Json(json!({})))
}

async fn log_param(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LogKeyValue = body(&b)?;
    let p = freshet_registry::model::Param {
        key: req.key,
        value: req.value,
    };
    call(&s, move |st| st.log_batch(&req.run_id, &[], &[p], &[])).await?;
    Ok(Json(json!({})))
}

async fn set_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LogKeyValue = body(&b)?;
    let t = Tag {
        key: req.key,
        value: req.value,
    };
    call(&s, move |st| st.log_batch(&req.run_id, &[], &[], &[t])).await?;
    Ok(Json(json!({})))
}

async fn delete_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: DeleteTag = body(&b)?;
    call(&s, move |st| st.delete_tag(&req.run_id, &req.key)).await?;
    Ok(Json(json!({})))
}

async fn log_batch(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LogBatch = body(&b)?;
    let now = now_ms();
    let on_models = api::model_metrics_from(&req.metrics, now)?;
    let metrics = api::metrics_from(req.metrics, now)?;
    let params: Vec<_> = req.params.into_iter().map(Into::into).collect();
    let tags: Vec<Tag> = req.tags.into_iter().map(Into::into).collect();
    call(&s, move |st| {
        // Every named model exists before anything is written.
        for (id, _) in &on_models {
            st.get_logged_model(id)?;
        }
        st.log_batch(&req.run_id, &metrics, &params, &tags)?;
        st.log_logged_model_metrics(&req.run_id, &on_models)
    })
    .await?;
    Ok(Json(json!({})))
}

async fn search_runs(
    State(s): State<AppState>,
    ext: Extensions,
    b: Bytes,
) -> Result<axum::response::Response, MlflowError> {
    let req: SearchRuns = body(&b)?;
    let mut q = freshet_registry::store::RunQuery {
        experiment_ids: req.experiment_ids,
        filter: req.filter.unwrap_or_default(),
        view: view(req.run_view_type.as_deref())?,
        max_results: max_results(req.max_results, 1000, 50_000)?,
        order_by: req.order_by,
        page_token: req.page_token,
    };
    let reader = Reader::of(&s, &ext);
    let page = call(&s, move |st| {
        // Runs of the experiments the caller may read; none readable, none found.
        let asked = !q.experiment_ids.is_empty();
        q.experiment_ids = reader.readable_experiments(st, std::mem::take(&mut q.experiment_ids));
        if asked && q.experiment_ids.is_empty() {
            return Ok(freshet_registry::model::Page {
                items: Vec::new(),
                next_page_token: None,
            });
        }
        st.search_runs(&q)
    })
    .await?;
    let out = api::SearchRunsOut {
        runs: page.items.iter().map(api::RunOut::from).collect(),
        next_page_token: page.next_page_token,
    };
    Ok(Json(out).into_response())
}

/// The most runs one bulk history request may name (MLflow's limit).
const MAX_BULK_RUNS: usize = 100;

/// `GET metrics/get-history-bulk?run_id=…&run_id=…&metric_key=…[&max_results=…]`: one
/// metric's history over several runs, each point with its run (what MLflow's UI and
/// tools call to chart runs side by side).
async fn get_history_bulk(
    State(s): State<AppState>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<axum::response::Response, MlflowError> {
    let mut run_ids = Vec::new();
    let (mut key, mut limit) = (None, None);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "run_id" | "run_uuid" => run_ids.push(v.into_owned()),
            "metric_key" => key = Some(v.into_owned()),
            "max_results" => {
                limit = Some(v.parse::<i64>().map_err(|_| {
                    MlflowError::invalid(format!("Invalid value '{v}' for parameter 'max_results'"))
                })?)
            }
            _ => {}
        }
    }
    let key = key.ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'metric_key'.")
    })?;
    if run_ids.is_empty() {
        return Err(MlflowError::invalid(
            "GetMetricHistoryBulk request must specify at least one run_id.",
        ));
    }
    if run_ids.len() > MAX_BULK_RUNS {
        return Err(MlflowError::invalid(format!(
            "GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUNS} run_ids. Received {} run_ids.",
            run_ids.len()
        )));
    }
    let n = max_results(limit, 25_000, 25_000)?;
    let points = call(&s, move |st| {
        let mut out = Vec::new();
        for id in &run_ids {
            let page = st.get_metric_history(id, &key, n, None)?;
            for m in &page.items {
                let mut v = serde_json::to_value(api::MetricOut::from(m)).unwrap_or_default();
                v["run_id"] = json!(id);
                out.push(v);
            }
        }
        out.truncate(n);
        Ok(out)
    })
    .await?;
    Ok(Json(json!({ "metrics": points })).into_response())
}

async fn get_history(
    State(s): State<AppState>,
    q: Result<Query<GetHistory>, axum::extract::rejection::QueryRejection>,
) -> Result<axum::response::Response, MlflowError> {
    let Query(q) = q.map_err(|e| MlflowError::invalid(format!("Invalid query: {e}")))?;
    let n = max_results(q.max_results, 25_000, 25_000)?;
    let id = query_run_id(q.run_id.clone(), q.run_uuid.clone())?;
    let page = call(&s, move |st| {
        st.get_metric_history(&id, &q.metric_key, n, q.page_token.as_deref())
    })
    .await?;
    let out = api::HistoryOut {
        metrics: page.items.iter().map(api::MetricOut::from).collect(),
        next_page_token: page.next_page_token,
    };
    Ok(Json(out).into_response())
}
