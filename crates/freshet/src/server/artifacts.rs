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
    let mut r = Router::new();
    for p in PREFIXES {
        r = r.route(p, get(list)).route(
            &format!("{p}/{{*path}}"),
            get(download).put(upload).delete(remove),
        );
    }
    r
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
    let path = path_of(&raw)?;
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
