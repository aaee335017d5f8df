//! The `mlflow-artifacts` proxy: MLflow clients upload, download, list and delete run
//! and model files through the tracking server, addressing them with host-less
//! `mlflow-artifacts:/<path>` URIs. Bodies stream to and from the artifact store, so a
//! large model never sits whole in memory.

use super::{AppState, MlflowError};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use freshet_registry::artifacts::ArtifactPath;
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use std::io::Read;

const PREFIXES: [&str; 2] = [
    "/api/2.0/mlflow-artifacts/artifacts",
    "/ajax-api/2.0/mlflow-artifacts/artifacts",
];

/// The largest file one upload may carry.
const MAX_UPLOAD_BYTES: u64 = 8 << 30;

/// Download chunk size.
const CHUNK: usize = 256 << 10;

pub fn router() -> Router<AppState> {
    let mut r = Router::new()
        // MLflow's own routes for a run's and a version's files, beside the proxy.
        .route("/get-artifact", get(run_artifact))
        .route("/model-versions/get-artifact", get(version_artifact));
    for p in PREFIXES {
        r = r.route(p, get(list)).route(
            &format!("{p}/{{*path}}"),
            get(download).put(upload).delete(remove),
        );
    }
    for p in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        r = r.route(&format!("{p}/artifacts/list"), get(list_run_artifacts));
    }
    r
}

/// Where a run's (or version's) files are in the artifact store: the path under the
/// store of its `mlflow-artifacts:/…` URI.
fn store_root(uri: &str) -> Result<String, MlflowError> {
    uri.strip_prefix("mlflow-artifacts:/")
        .or_else(|| uri.strip_prefix("mlflow-artifacts:"))
        .map(|p| p.trim_matches('/').to_string())
        .ok_or_else(|| {
            MlflowError::invalid(format!(
                "The artifacts of '{uri}' are not kept by this server"
            ))
        })
}

/// `rel` under `root`, refusing a path that climbs out of it.
fn under(root: &str, rel: Option<&str>) -> Result<Option<ArtifactPath>, MlflowError> {
    let rel = rel.unwrap_or("").trim_matches('/');
    if rel.split('/').any(|seg| seg == "..") {
        return Err(MlflowError::invalid(format!(
            "Invalid path '{rel}': '..' is not allowed"
        )));
    }
    let full = match (root.is_empty(), rel.is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => rel.to_string(),
        (false, true) => root.to_string(),
        (false, false) => format!("{root}/{rel}"),
    };
    path_of(&full).map(Some)
}

#[derive(Deserialize)]
struct RunFiles {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
}

async fn run_root(s: &AppState, q: &RunFiles) -> Result<(String, String), MlflowError> {
    let Some(run_id) = q.run_id.clone().or_else(|| q.run_uuid.clone()) else {
        return Err(MlflowError::invalid(
            "Missing value for required parameter 'run_id'.",
        ));
    };
    let store = s.tracking.clone();
    let run = tokio::task::spawn_blocking(move || store.get_run(&run_id))
        .await
        .map_err(|_| MlflowError::internal())??;
    let uri = run.info.artifact_uri.clone();
    Ok((store_root(&uri)?, uri))
}

/// `GET /api/2.0/mlflow/artifacts/list`: a run's files under `path`, with paths from
/// the run's artifact root, as MLflow answers (one page: a directory is listed whole).
async fn list_run_artifacts(
    State(s): State<AppState>,
    q: Result<Query<RunFiles>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, MlflowError> {
    let Query(q) = q.map_err(|e| MlflowError::invalid(format!("Invalid query: {e}")))?;
    let (root, uri) = run_root(&s, &q).await?;
    let rel = q
        .path
        .as_deref()
        .unwrap_or("")
        .trim_matches('/')
        .to_string();
    let dir = under(&root, Some(&rel))?;
    let store = s.artifacts.clone();
    let files = tokio::task::spawn_blocking(move || store.list(dir.as_ref()))
        .await
        .map_err(|_| MlflowError::internal())??;
    let files: Vec<serde_json::Value> = files
        .into_iter()
        .map(|f| {
            let path = if rel.is_empty() {
                f.path
            } else {
                format!("{rel}/{}", f.path)
            };
            let mut v = json!({ "path": path, "is_dir": f.is_dir });
            if let Some(n) = f.file_size {
                v["file_size"] = json!(n);
            }
            v
        })
        .collect();
    let mut out = json!({ "root_uri": uri });
    if !files.is_empty() {
        out["files"] = json!(files);
    }
    Ok(Json(out))
}

/// `GET /get-artifact?run_id=…&path=…`: one file of a run.
async fn run_artifact(
    State(s): State<AppState>,
    q: Result<Query<RunFiles>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, MlflowError> {
    let Query(q) = q.map_err(|e| MlflowError::invalid(format!("Invalid query: {e}")))?;
    let (root, _) = run_root(&s, &q).await?;
    let Some(path) = under(&root, q.path.as_deref())? else {
        return Err(MlflowError::invalid(
            "Missing value for required parameter 'path'.",
        ));
    };
    stream_file(&s, path).await
}

#[derive(Deserialize)]
struct VersionFile {
    name: String,
    version: String,
    path: String,
}

/// `GET /model-versions/get-artifact?name=…&version=…&path=…`: one file of a version.
async fn version_artifact(
    State(s): State<AppState>,
    q: Result<Query<VersionFile>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, MlflowError> {
    let Query(q) = q.map_err(|e| MlflowError::invalid(format!("Invalid query: {e}")))?;
    let version: i64 = q.version.parse().map_err(|_| {
        MlflowError::invalid(format!("Invalid version '{}': not a number", q.version))
    })?;
    let store = s.tracking.clone();
    let name = q.name.clone();
    let mv = tokio::task::spawn_blocking(move || store.get_model_version(&name, version))
        .await
        .map_err(|_| MlflowError::internal())??;
    let root = store_root(&mv.storage_location)?;
    let Some(path) = under(&root, Some(&q.path))? else {
        return Err(MlflowError::invalid(
            "Missing value for required parameter 'path'.",
        ));
    };
    stream_file(&s, path).await
}

fn path_of(raw: &str) -> Result<ArtifactPath, MlflowError> {
    ArtifactPath::parse(raw).map_err(MlflowError::from)
}

#[derive(Deserialize)]
struct ListQuery {
    path: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, MlflowError> {
    let Query(q) = q.map_err(|e| MlflowError::invalid(format!("Invalid query: {e}")))?;
    let dir = match q.path.as_deref().map(|p| p.trim_end_matches('/')) {
        None | Some("") => None,
        Some(p) => Some(path_of(p)?),
    };
    let store = s.artifacts.clone();
    let files = tokio::task::spawn_blocking(move || store.list(dir.as_ref()))
        .await
        .map_err(|_| MlflowError::internal())??;
    Ok(Json(if files.is_empty() {
        json!({})
    } else {
        json!({ "files": files })
    }))
}

async fn upload(
    State(s): State<AppState>,
    Path(raw): Path<String>,
    body: Body,
) -> Result<Json<serde_json::Value>, MlflowError> {
    let path = path_of(&raw)?;
    let mut seen: u64 = 0;
    let stream = body
        .into_data_stream()
        // Marked so that a client that goes away mid-upload is told apart from a disk
        // failure below.
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::ConnectionAborted, e))
        .and_then(move |chunk: Bytes| {
            seen += chunk.len() as u64;
            futures::future::ready(if seen > MAX_UPLOAD_BYTES {
                Err(std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "artifact too large",
                ))
            } else {
                Ok(chunk)
            })
        });
    let reader = tokio_util::io::StreamReader::new(stream);
    let store = s.artifacts.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut bridge = tokio_util::io::SyncIoBridge::new(reader);
        store.put(&path, &mut bridge)
    })
    .await
    .map_err(|_| MlflowError::internal())?;
    match result {
        Ok(_) => Ok(Json(json!({}))),
        Err(freshet_registry::RegistryError::Io(e))
            if e.kind() == std::io::ErrorKind::FileTooLarge =>
        {
            Err(MlflowError {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "INVALID_PARAMETER_VALUE",
                message: format!("An artifact may be at most {MAX_UPLOAD_BYTES} bytes"),
            })
        }
        Err(freshet_registry::RegistryError::Io(e))
            if e.kind() == std::io::ErrorKind::ConnectionAborted =>
        {
            // The client went away mid-upload: nothing was stored.
            Err(MlflowError::invalid("The upload was interrupted"))
        }
        Err(e) => Err(e.into()),
    }
}

async fn download(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Response, MlflowError> {
    stream_file(&s, path_of(&raw)?).await
}

/// The file at `path`, streamed from the artifact store.
async fn stream_file(s: &AppState, path: ArtifactPath) -> Result<Response, MlflowError> {
    let store = s.artifacts.clone();
    let (reader, size) = tokio::task::spawn_blocking(move || store.open(&path))
        .await
        .map_err(|_| MlflowError::internal())??;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut reader = reader;
        loop {
            let mut buf = vec![0u8; CHUNK];
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn remove(
    State(s): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<serde_json::Value>, MlflowError> {
    let path = path_of(&raw)?;
    let store = s.artifacts.clone();
    tokio::task::spawn_blocking(move || store.delete(&path))
        .await
        .map_err(|_| MlflowError::internal())??;
    Ok(Json(json!({})))
}
