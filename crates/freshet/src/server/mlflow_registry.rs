//! MLflow's model registry REST API: registered models (with tags and aliases) and
//! model versions (with tags, stages and download URIs).

use super::gate::principal_of;
use super::mlflow::{PREFIXES, body, call, max_results};
use super::mlflow_access::{self, Reader};
use super::{AppState, MlflowError};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::Extensions;
use axum::routing::{get, post};
use freshet_govern::permissions::Object;
use freshet_registry::api::KeyValue;
use freshet_registry::model::{Page, Tag};
use freshet_registry::models::{ModelQuery, NewModelVersion, Stage};
use serde::Deserialize;
use serde_json::{Value, json};

type Answer = Result<Json<Value>, MlflowError>;

pub fn router() -> Router<AppState> {
    let mut r = Router::new();
    for p in PREFIXES {
        let rm = format!("{p}/registered-models");
        let mv = format!("{p}/model-versions");
        r = r
            .route(&format!("{rm}/create"), post(create_model))
            .route(&format!("{rm}/get"), get(get_model))
            .route(&format!("{rm}/rename"), post(rename_model))
            .route(
                &format!("{rm}/update"),
                post(update_model).patch(update_model),
            )
            .route(&format!("{rm}/delete"), axum::routing::delete(delete_model))
            .route(&format!("{rm}/search"), get(search_models))
            .route(
                &format!("{rm}/get-latest-versions"),
                post(latest_versions).get(latest_versions_get),
            )
            .route(&format!("{rm}/set-tag"), post(set_model_tag))
            .route(
                &format!("{rm}/delete-tag"),
                axum::routing::delete(delete_model_tag),
            )
            .route(
                &format!("{rm}/alias"),
                post(set_alias).delete(delete_alias).get(get_by_alias),
            )
            .route(&format!("{mv}/create"), post(create_version))
            .route(&format!("{mv}/get"), get(get_version))
            .route(
                &format!("{mv}/update"),
                post(update_version).patch(update_version),
            )
            .route(
                &format!("{mv}/delete"),
                axum::routing::delete(delete_version),
            )
            .route(&format!("{mv}/search"), get(search_versions))
            .route(&format!("{mv}/get-download-uri"), get(download_uri))
            .route(&format!("{mv}/transition-stage"), post(transition_stage))
            .route(&format!("{mv}/set-tag"), post(set_version_tag))
            .route(
                &format!("{mv}/delete-tag"),
                axum::routing::delete(delete_version_tag),
            );
    }
    r
}

/// Query-string pairs, keeping repeated keys (`order_by=a&order_by=b`).
fn pairs(q: Option<String>) -> Vec<(String, String)> {
    q.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn first(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn required(pairs: &[(String, String)], key: &str) -> Result<String, MlflowError> {
    first(pairs, key).filter(|v| !v.is_empty()).ok_or_else(|| {
        MlflowError::invalid(format!("Missing value for required parameter '{key}'."))
    })
}

/// Versions travel as strings in MLflow's protocol; numbers are accepted too.
fn version_number(v: &Value) -> Result<i64, MlflowError> {
    let parsed = match v {
        Value::String(s) => s.trim().parse::<i64>().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    parsed.filter(|n| *n >= 1).ok_or_else(|| {
        MlflowError::invalid("Invalid value for 'version': it must be a positive integer")
    })
}

fn version_param(s: &str) -> Result<i64, MlflowError> {
    version_number(&Value::String(s.to_string()))
}

#[derive(Deserialize)]
struct CreateModel {
    name: String,
    #[serde(default)]
    tags: Vec<KeyValue>,
    description: Option<String>,
}

async fn create_model(State(s): State<AppState>, ext: Extensions, b: Bytes) -> Answer {
    let req: CreateModel = body(&b)?;
    let tags: Vec<Tag> = req.tags.into_iter().map(Into::into).collect();
    let m = call(&s, move |st| {
        st.create_registered_model(&req.name, &tags, req.description.as_deref())
    })
    .await?;
    let object = Object::Model {
        name: m.name.clone(),
    };
    mlflow_access::grant_creator(&s, &ext, object).await;
    Ok(Json(json!({ "registered_model": m })))
}

async fn get_model(State(s): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    let name = required(&pairs(q), "name")?;
    let m = call(&s, move |st| st.get_registered_model(&name)).await?;
    Ok(Json(json!({ "registered_model": m })))
}

#[derive(Deserialize)]
struct RenameModel {
    name: String,
    new_name: String,
}

async fn rename_model(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: RenameModel = body(&b)?;
    let old = req.name.clone();
    let m = call(&s, move |st| {
        st.rename_registered_model(&req.name, &req.new_name)
    })
    .await?;
    mlflow_access::model_moved(&s, old, Some(m.name.clone())).await;
    Ok(Json(json!({ "registered_model": m })))
}

#[derive(Deserialize)]
struct UpdateModel {
    name: String,
    #[serde(default)]
    description: String,
}

async fn update_model(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: UpdateModel = body(&b)?;
    let m = call(&s, move |st| {
        st.update_registered_model(&req.name, &req.description)
    })
    .await?;
    Ok(Json(json!({ "registered_model": m })))
}

#[derive(Deserialize)]
struct ModelRef {
    name: String,
}

async fn delete_model(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: ModelRef = body(&b)?;
    let name = req.name.clone();
    call(&s, move |st| st.delete_registered_model(&req.name)).await?;
    mlflow_access::model_moved(&s, name, None).await;
    Ok(Json(json!({})))
}

fn model_query(p: &[(String, String)], default_max: i64) -> Result<ModelQuery, MlflowError> {
    let n = match first(p, "max_results") {
        None => None,
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            MlflowError::invalid("Invalid value for 'max_results': it must be an integer")
        })?),
    };
    Ok(ModelQuery {
        filter: first(p, "filter").unwrap_or_default(),
        max_results: max_results(n, default_max, 200_000)?,
        order_by: p
            .iter()
            .filter(|(k, _)| k == "order_by")
            .map(|(_, v)| v.clone())
            .collect(),
        page_token: first(p, "page_token").filter(|t| !t.is_empty()),
    })
}

async fn search_models(
    State(s): State<AppState>,
    ext: Extensions,
    RawQuery(q): RawQuery,
) -> Answer {
    let query = model_query(&pairs(q), 100)?;
    let reader = Reader::of(&s, &ext);
    let page = call(&s, move |st| {
        readable(
            &query,
            &reader,
            |q| st.search_registered_models(q),
            |m| &m.name,
        )
    })
    .await?;
    let mut out = json!({ "registered_models": page.items });
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

/// A page of `query`'s models or versions (named by `name`) that the caller may read.
fn readable<T>(
    query: &ModelQuery,
    reader: &Reader,
    mut search: impl FnMut(&ModelQuery) -> freshet_registry::Result<Page<T>>,
    name: impl Fn(&T) -> &str,
) -> freshet_registry::Result<Page<T>> {
    mlflow_access::readable_page(
        query.max_results,
        query.page_token.clone(),
        |n, token| {
            search(&ModelQuery {
                max_results: n,
                page_token: token,
                ..query.clone()
            })
        },
        |x| reader.may_read_model(name(x)),
    )
}

#[derive(Deserialize)]
struct LatestVersions {
    name: String,
    #[serde(default)]
    stages: Vec<String>,
}

fn stages(names: &[String]) -> Result<Vec<Stage>, MlflowError> {
    names
        .iter()
        .map(|n| {
            Stage::parse(n).ok_or_else(|| {
                MlflowError::invalid(format!(
                    "Invalid Model Version stage: {n}. Value must be one of None, Staging, Production, Archived."
                ))
            })
        })
        .collect()
}

async fn latest_versions(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: LatestVersions = body(&b)?;
    let wanted = stages(&req.stages)?;
    let v = call(&s, move |st| st.get_latest_versions(&req.name, &wanted)).await?;
    Ok(Json(json!({ "model_versions": v })))
}

async fn latest_versions_get(State(s): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    let p = pairs(q);
    let name = required(&p, "name")?;
    let names: Vec<String> = p
        .iter()
        .filter(|(k, _)| k == "stages")
        .map(|(_, v)| v.clone())
        .collect();
    let wanted = stages(&names)?;
    let v = call(&s, move |st| st.get_latest_versions(&name, &wanted)).await?;
    Ok(Json(json!({ "model_versions": v })))
}

#[derive(Deserialize)]
struct ModelTag {
    name: String,
    key: String,
    #[serde(default)]
    value: String,
}

async fn set_model_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: ModelTag = body(&b)?;
    let tag = Tag {
        key: req.key,
        value: req.value,
    };
    call(&s, move |st| st.set_registered_model_tag(&req.name, &tag)).await?;
    Ok(Json(json!({})))
}

async fn delete_model_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: ModelTag = body(&b)?;
    call(&s, move |st| {
        st.delete_registered_model_tag(&req.name, &req.key)
    })
    .await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
struct AliasIn {
    name: String,
    alias: String,
    #[serde(default)]
    version: Value,
}

async fn set_alias(State(s): State<AppState>, ext: Extensions, b: Bytes) -> Answer {
    let req: AliasIn = body(&b)?;
    let version = version_number(&req.version)?;
    if req.alias == freshet_serve::router::CHAMPION {
        approved(&s, &ext, &req.name, version).await?;
    }
    call(&s, move |st| st.set_alias(&req.name, &req.alias, version)).await?;
    Ok(Json(json!({})))
}

async fn delete_alias(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: AliasIn = body(&b)?;
    call(&s, move |st| st.delete_alias(&req.name, &req.alias)).await?;
    Ok(Json(json!({})))
}

async fn get_by_alias(State(s): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    let p = pairs(q);
    let name = required(&p, "name")?;
    let alias = required(&p, "alias")?;
    let v = call(&s, move |st| st.get_version_by_alias(&name, &alias)).await?;
    Ok(Json(json!({ "model_version": v })))
}

#[derive(Deserialize)]
struct CreateVersion {
    name: String,
    source: String,
    run_id: Option<String>,
    run_link: Option<String>,
    description: Option<String>,
    model_id: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

/// Maker-checker on the MLflow ways to make a version champion (the `champion` alias,
/// the `Production` stage): without a valid approval the request is refused with
/// PERMISSION_DENIED and an approval request is opened for an approver to decide.
async fn approved(
    s: &AppState,
    ext: &Extensions,
    model: &str,
    version: i64,
) -> Result<(), MlflowError> {
    use freshet_govern::approvals::Verdict;
    let approvals = s.governance.approvals().clone();
    let requester = principal_of(ext).name;
    let (m, st) = (model.to_string(), s.tracking.clone());
    let verdict = tokio::task::spawn_blocking(move || {
        let v = approvals.check(&m, version)?;
        if !matches!(v, Verdict::Missing) {
            return Ok(v);
        }
        let creator = st
            .get_model_version(&m, version)
            .map(|v| v.user_id)
            .unwrap_or_default();
        approvals
            .request(&m, version, &requester, &creator)
            .map(Verdict::Pending)
    })
    .await
    .map_err(|_| MlflowError::internal())?
    .map_err(|e: freshet_govern::GovernError| {
        tracing::error!(error = %e, "approvals store failed");
        MlflowError::internal()
    })?;
    let denied = |message: String| MlflowError {
        status: axum::http::StatusCode::FORBIDDEN,
        code: "PERMISSION_DENIED",
        message,
    };
    match verdict {
        Verdict::NotRequired | Verdict::Approved(_) => Ok(()),
        Verdict::Pending(r) => Err(denied(format!(
            "version {version} of '{model}' needs an approval before it becomes champion ({} risk tier): request {} awaits an approver (freshet approvals approve {})",
            r.tier, r.id, r.id
        ))),
        Verdict::Rejected(r) => Err(denied(format!(
            "version {version} of '{model}' was rejected by {} (request {})",
            r.decided_by.as_deref().unwrap_or("an approver"),
            r.id
        ))),
        Verdict::Missing => Err(MlflowError::internal()),
    }
}

async fn create_version(State(s): State<AppState>, ext: Extensions, b: Bytes) -> Answer {
    let req: CreateVersion = body(&b)?;
    mlflow_access::check_version_source(
        &s,
        &ext,
        req.run_id.as_deref(),
        req.model_id.as_deref(),
        &req.source,
    )
    .await?;
    let new = NewModelVersion {
        name: req.name,
        source: req.source,
        run_id: req.run_id.filter(|r| !r.is_empty()),
        run_link: req.run_link,
        description: req.description,
        model_id: req.model_id.filter(|m| !m.is_empty()),
        tags: req.tags.into_iter().map(Into::into).collect(),
        // The creator, for maker-checker: who registered a version may not approve it.
        user_id: Some(principal_of(&ext).name),
    };
    let v = call(&s, move |st| st.create_model_version(new)).await?;
    Ok(Json(json!({ "model_version": v })))
}

fn name_and_version(p: &[(String, String)]) -> Result<(String, i64), MlflowError> {
    Ok((
        required(p, "name")?,
        version_param(&required(p, "version")?)?,
    ))
}

async fn get_version(State(s): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    let (name, version) = name_and_version(&pairs(q))?;
    let v = call(&s, move |st| st.get_model_version(&name, version)).await?;
    Ok(Json(json!({ "model_version": v })))
}

#[derive(Deserialize)]
struct VersionIn {
    name: String,
    #[serde(default)]
    version: Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    stage: String,
    #[serde(default)]
    archive_existing_versions: bool,
}

async fn update_version(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: VersionIn = body(&b)?;
    let version = version_number(&req.version)?;
    let v = call(&s, move |st| {
        st.update_model_version(&req.name, version, &req.description)
    })
    .await?;
    Ok(Json(json!({ "model_version": v })))
}

async fn delete_version(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: VersionIn = body(&b)?;
    let version = version_number(&req.version)?;
    call(&s, move |st| st.delete_model_version(&req.name, version)).await?;
    Ok(Json(json!({})))
}

async fn search_versions(
    State(s): State<AppState>,
    ext: Extensions,
    RawQuery(q): RawQuery,
) -> Answer {
    let query = model_query(&pairs(q), 10_000)?;
    let reader = Reader::of(&s, &ext);
    let page = call(&s, move |st| {
        readable(
            &query,
            &reader,
            |q| st.search_model_versions(q),
            |v| &v.name,
        )
    })
    .await?;
    let mut out = json!({ "model_versions": page.items });
    if let Some(t) = page.next_page_token {
        out["next_page_token"] = json!(t);
    }
    Ok(Json(out))
}

async fn download_uri(State(s): State<AppState>, RawQuery(q): RawQuery) -> Answer {
    let (name, version) = name_and_version(&pairs(q))?;
    let uri = call(&s, move |st| st.get_download_uri(&name, version)).await?;
    Ok(Json(json!({ "artifact_uri": uri })))
}

async fn transition_stage(State(s): State<AppState>, ext: Extensions, b: Bytes) -> Answer {
    let req: VersionIn = body(&b)?;
    let version = version_number(&req.version)?;
    let stage = stages(std::slice::from_ref(&req.stage))?[0];
    if stage == freshet_registry::models::Stage::Production {
        approved(&s, &ext, &req.name, version).await?;
    }
    let v = call(&s, move |st| {
        st.transition_stage(&req.name, version, stage, req.archive_existing_versions)
    })
    .await?;
    Ok(Json(json!({ "model_version": v })))
}

async fn set_version_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: VersionIn = body(&b)?;
    let version = version_number(&req.version)?;
    if req.key.is_empty() {
        return Err(MlflowError::invalid(
            "Missing value for required parameter 'key'.",
        ));
    }
    let tag = Tag {
        key: req.key,
        value: req.value,
    };
    call(&s, move |st| {
        st.set_model_version_tag(&req.name, version, &tag)
    })
    .await?;
    Ok(Json(json!({})))
}

async fn delete_version_tag(State(s): State<AppState>, b: Bytes) -> Answer {
    let req: VersionIn = body(&b)?;
    let version = version_number(&req.version)?;
    call(&s, move |st| {
        st.delete_model_version_tag(&req.name, version, &req.key)
    })
    .await?;
    Ok(Json(json!({})))
}
