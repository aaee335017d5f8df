//! MLflow 3's logged models (`/logged-models`), which `mlflow.<flavor>.log_model` needs,
//! and the run inputs and outputs that tie runs to datasets and models.

use super::mlflow::{PREFIXES, body, call, max_results};
use super::{AppState, MlflowError};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{patch, post};
use freshet_registry::api::KeyValue;
use freshet_registry::model::{Param, Tag};
use freshet_registry::models::{LoggedModelStatus, ModelQuery, NewLoggedModel};
use freshet_registry::store::DatasetInput;
use serde::Deserialize;
use serde_json::{Value, json};

type Answer = Result<Json<Value>, MlflowError>;

/// The run tag MLflow keeps the `log-model` history in.
const LOG_MODEL_HISTORY: &str = "mlflow.log-model.history";

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for p in PREFIXES {
        let lm = format!("{p}/logged-models");
        r = r
            .route(&lm, post(create))
            .route(&format!("{lm}/search"), post(search))
            .route(
                &format!("{lm}/{{model_id}}"),
                patch(finalize).get(get_one).delete(delete_one),
            )
            .route(&format!("{lm}/{{model_id}}/tags"), patch(set_tags))
            .route(
                &format!("{lm}/{{model_id}}/tags/{{key}}"),
                axum::routing::delete(delete_tag),
            )
            .route(&format!("{lm}/{{model_id}}/params"), post(log_params))
            .route(&format!("{p}/runs/log-model"), post(log_model))
            .route(&format!("{p}/runs/log-inputs"), post(log_inputs))
            .route(&format!("{p}/runs/outputs"), post(log_outputs));
    }
    r
}

fn tags(v: Vec<KeyValue>) -> Vec<Tag> {
    v.into_iter().map(Into::into).collect()
}

fn params(v: Vec<KeyValue>) -> Vec<Param> {
    v.into_iter().map(Into::into).collect()
}

#[derive(Deserialize)]
struct Create {
    experiment_id: String,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn create(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: Create = body(&b)?;
    let new = NewLoggedModel {
        experiment_id: req.experiment_id,
        name: req.name,
        model_type: req.model_type,
        source_run_id: req.source_run_id.filter(|r| !r.is_empty()),
        params: params(req.params),
        tags: tags(req.tags),
    };
    let m = call(&s, move |st| st.create_logged_model(new)).await?;
    Ok(Json(json!({ "model": m })))
}

async fn get_one(State(s): State<AppState>, Path(model_id): Path<String>) -> Answer {
    let m = call(&s, move |st| st.get_logged_model(&model_id)).await?;
    Ok(Json(json!({ "model": m })))
}

async fn delete_one(State(s): State<AppState>, Path(model_id): Path<String>) -> Answer {
    call(&s, move |st| st.delete_logged_model(&model_id)).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct Finalize {
    #[serde(default)]
    status: Value,
}

async fn finalize(State(s): State<AppState>, Path(model_id): Path<String>, b: Bytes) -> Answer {
    let req: Finalize = body(&b)?;
    let raw = match &req.status {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let status = LoggedModelStatus::parse(&raw).ok_or_else(|| {
        MlflowError::invalid(
            "Invalid value for 'status': use LOGGED_MODEL_PENDING, LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED",
        )
    })?;
    let m = call(&s, move |st| st.finalize_logged_model(&model_id, status)).await?;
    Ok(Json(json!({ "model": m })))
}

#[derive(Deserialize)]
struct TagsIn {
    #[serde(default)]
    tags: Vec<KeyValue>,
}

async fn set_tags(State(s): State<AppState>, Path(model_id): Path<String>, b: Bytes) -> Answer {
    let req: TagsIn = body(&b)?;
    let t = tags(req.tags);
    call(&s, move |st| st.set_logged_model_tags(&model_id, &t)).await?;
    Ok(Json(json!({})))
}

async fn delete_tag(
    State(s): State<AppState>,
    Path((model_id, key)): Path<(String, String)>,
) -> Answer {
    call(&s, move |st| st.delete_logged_model_tag(&model_id, &key)).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct ParamsIn {
    #[serde(default)]
    params: Vec<KeyValue>,
}

async fn log_params(State(s): State<AppState>, Path(model_id): Path<String>, b: Bytes) -> Answer {
    let req: ParamsIn = body(&b)?;
    let p = params(req.params);
    call(&s, move |st| st.log_logged_model_params(&model_id, &p)).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct OrderByIn {
    field_name: String,
    #[serde(default = "yes")]
    ascending: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    experiment_ids: Vec<String>,
    #[serde(default)]
    filter: String,
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderByIn>,
    page_token: Option<String>,
}

async fn search(State(s): State<AppState>, ext: axum::http::Extensions, b: Bytes) -> Answer {
    let req: Search = body(&b)?;
    let reader = super::mlflow_access::Reader::of(&s, &ext);
    let q = ModelQuery {
        filter: req.filter,
        max_results: max_results(req.max_results, 100, 10_000)?,
        order_by: req
            .order_by
            .into_iter()
            .map(|o| {
                format!(
                    "{} {}",
                    o.field_name,
                    if o.ascending { "ASC" } else { "DESC" }
                )
            })
            .collect(),
        page_token: req.page_token,
    };
    let page = call(&s, move |st| {
        // Logged models of the experiments the caller may read.
        let asked = !req.experiment_ids.is_empty();
        let ids = reader.readable_experiments(st, req.experiment_ids);
        if asked && ids.is_empty() {
            return Ok(freshet_registry::model::Page {
                items: Vec::new(),
                next_page_token: None,
            });
        }
        st.search_logged_models(&ids, &q)
    })
    .await?;
    let mut out = json!({ "models": page.items });
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

#[derive(Deserialize)]
struct LogModel {
    run_id: String,
    model_json: String,
}

/// Older clients record each saved model's `MLmodel` summary on the run; keep the
/// newest entries that fit in a tag value.
async fn log_model(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LogModel = body(&b)?;
    let entry: Value = serde_json::from_str(&req.model_json)
        .map_err(|e| MlflowError::invalid(format!("Invalid value for 'model_json': {e}")))?;
    call(&s, move |st| {
        let run = st.get_run(&req.run_id)?;
        let mut history: Vec<Value> = run
            .data
            .tags
            .iter()
            .find(|t| t.key == LOG_MODEL_HISTORY)
            .and_then(|t| serde_json::from_str(&t.value).ok())
            .unwrap_or_default();
        history.push(entry);
        let mut value = Value::Array(history.clone()).to_string();
        while value.len() > freshet_registry::limits::MAX_TAG_VALUE_LENGTH && history.len() > 1 {
            history.remove(0);
            value = Value::Array(history.clone()).to_string();
        }
        let tag = Tag {
            key: LOG_MODEL_HISTORY.into(),
            value,
        };
        st.log_batch(&req.run_id, &[], &[], &[tag])
    })
    .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct DatasetIn {
    name: String,
    digest: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    schema: String,
    #[serde(default)]
    profile: String,
}

#[derive(Deserialize)]
struct DatasetInputIn {
    #[serde(default)]
    tags: Vec<KeyValue>,
    dataset: DatasetIn,
}

#[derive(Deserialize)]
struct ModelRefIn {
    model_id: String,
    #[serde(default)]
    step: i64,
}

#[derive(Deserialize)]
struct LogInputs {
    run_id: String,
    #[serde(default)]
    datasets: Vec<DatasetInputIn>,
    #[serde(default)]
    models: Vec<ModelRefIn>,
}

async fn log_inputs(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LogInputs = body(&b)?;
    let datasets: Vec<DatasetInput> = req
        .datasets
        .into_iter()
        .map(|d| DatasetInput {
            name: d.dataset.name,
            digest: d.dataset.digest,
            source_type: d.dataset.source_type,
            source: d.dataset.source,
            schema: d.dataset.schema,
            profile: d.dataset.profile,
            tags: tags(d.tags),
        })
        .collect();
    let models: Vec<String> = req.models.into_iter().map(|m| m.model_id).collect();
    call(&s, move |st| {
        st.log_run_inputs(&req.run_id, &datasets, &models)
    })
    .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct LogOutputs {
    run_id: String,
    #[serde(default)]
    models: Vec<ModelRefIn>,
}

async fn log_outputs(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LogOutputs = body(&b)?;
    let models: Vec<(String, i64)> = req
        .models
        .into_iter()
        .map(|m| (m.model_id, m.step))
        .collect();
    call(&s, move |st| st.log_run_outputs(&req.run_id, &models)).await?;
    Ok(Json(json!({})))
}

/// A run's `inputs` as MLflow returns them: the datasets it read.
pub(super) fn inputs_json(datasets: &[DatasetInput]) -> Value {
    let inputs: Vec<Value> = datasets
        .iter()
        .map(|d| {
            json!({
                "tags": d.tags,
                "dataset": {
                    "name": d.name, "digest": d.digest, "source_type": d.source_type,
                    "source": d.source, "schema": d.schema, "profile": d.profile,
                }
            })
        })
        .collect();
    json!({ "dataset_inputs": inputs })
}
