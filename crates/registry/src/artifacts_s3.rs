//! Artifacts in S3 or an S3-compatible store (`registry.artifacts: s3://<bucket>/<prefix>`),
//! behind the same [`ArtifactStore`] contract as the local disk, so that every node of a
//! deployment reads the same model files. Clients still reach them through the MLflow
//! artifact proxy (`mlflow-artifacts:/…`): they never need S3 credentials.
//!
//! The contract is synchronous (callers are on blocking threads); the S3 client is
//! async, so its requests run on a small runtime of their own and the caller waits on a
//! channel. Files are written in one request up to 8 MiB and as a multipart upload
//! beyond, and read as a stream, so neither side holds a large model in memory at once.
//! An object appears whole or not at all, as S3 guarantees.
//!
//! Unlike a disk, S3 has no directories: a "directory" is a common prefix, a file may
//! share its name with one, and an empty directory does not exist.

use crate::artifacts::{ArtifactPath, ArtifactStore, FileInfo};
use crate::error::{RegistryError, Result};
use bytes::{Buf, Bytes};
use freshet_core::config::S3Config;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::future::Future;
use std::io::Read;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

/// Parts of a multipart upload (S3 wants at least 5 MiB per part but the last).
const PART_BYTES: usize = 8 * 1024 * 1024;

/// The runtime S3 requests run on: two workers, never dropped.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: crate::runtime::Dedicated = OnceLock::new();
    crate::runtime::dedicated(&RUNTIME, "freshet-artifacts-s3", 2)
        .map_err(|e| RegistryError::Io(std::io::Error::other(e)))
}

/// Run `fut` on the S3 runtime from a blocking caller and wait for its result.
fn run<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> Result<T> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .map_err(|_| RegistryError::Io(std::io::Error::other("the S3 request was dropped")))
}

fn s3_error(what: &str, e: object_store::Error) -> RegistryError {
    RegistryError::Io(std::io::Error::other(format!("S3 {what}: {e}")))
}

/// Artifacts as objects under `s3://<bucket>/<prefix>/`.
pub struct S3ArtifactStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    url: String,
}

impl std::fmt::Debug for S3ArtifactStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3ArtifactStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl S3ArtifactStore {
    /// The store at `url` (`s3://<bucket>/<prefix>`), reached with the AWS environment
    /// and `s3` on top. Lists the prefix once, so a missing bucket, an unreachable
    /// endpoint or refused credentials fail here rather than at the first upload.
    pub fn open(url: &str, s3: &S3Config) -> Result<Self> {
        let parsed = url::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "s3" | "s3a") && u.host_str().is_some())
            .ok_or_else(|| {
                RegistryError::InvalidParameter(format!(
                    "'{url}' is not an s3://<bucket>/<prefix> URL"
                ))
            })?;
        let mut builder = AmazonS3Builder::from_env();
        for (k, v) in s3.client_options() {
            if let Ok(key) = AmazonS3ConfigKey::from_str(k) {
                builder = builder.with_config(key, v);
            }
        }
        let store = builder
            .with_url(url)
            .build()
            .map_err(|e| s3_error("configuration", e))?;
        let prefix = Path::from_url_path(parsed.path())
            .map_err(|e| RegistryError::InvalidParameter(format!("'{url}': {e}")))?;
        let this = Self {
            store: Arc::new(store),
            prefix,
            url: url.to_string(),
        };
        let (store, prefix) = (this.store.clone(), this.prefix.clone());
        run(async move { store.list_with_delimiter(Some(&prefix)).await })?
            .map_err(|e| s3_error(&format!("listing {url}"), e))?;
        Ok(this)
    }

    fn location(&self, path: &ArtifactPath) -> Path {
        path.as_str()
            .split('/')
            .fold(self.prefix.clone(), |p, seg| p.join(seg))
    }

    fn not_found(path: &ArtifactPath) -> RegistryError {
        RegistryError::NotFound(format!("No artifact at '{}'", path.as_str()))
    }

    /// Whether any object lies under `dir/`.
    fn has_children(&self, dir: &Path) -> Result<bool> {
        let (store, dir) = (self.store.clone(), dir.clone());
        run(async move { store.list(Some(&dir)).try_next().await })?
            .map(|first| first.is_some())
            .map_err(|e| s3_error("list", e))
    }
}

/// Up to `n` bytes from `r` (fewer only at its end).
fn read_up_to(r: &mut dyn Read, n: usize) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n.min(1 << 20));
    r.take(n as u64)
        .read_to_end(&mut buf)
        .map_err(RegistryError::Io)?;
    Ok(buf)
}

impl ArtifactStore for S3ArtifactStore {
    fn put(&self, path: &ArtifactPath, data: &mut dyn Read) -> Result<u64> {
        let location = self.location(path);
        if self.has_children(&location)? {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid artifact path '{}': it is a directory",
                path.as_str()
            )));
        }
        let first = read_up_to(data, PART_BYTES)?;
        if first.len() < PART_BYTES {
            let n = first.len() as u64;
            let store = self.store.clone();
            run(async move { store.put(&location, PutPayload::from(first)).await })?
                .map_err(|e| s3_error("upload", e))?;
            return Ok(n);
        }
        let store = self.store.clone();
        let mut upload = run(async move { store.put_multipart(&location).await })?
            .map_err(|e| s3_error("upload", e))?;
        let mut total = 0u64;
        let mut part = first;
        let outcome = loop {
            if part.is_empty() {
                break Ok(());
            }
            total += part.len() as u64;
            let sent = upload.put_part(PutPayload::from(part));
            if let Err(e) = run(sent)?.map_err(|e| s3_error("upload", e)) {
                break Err(e);
            }
            part = match read_up_to(data, PART_BYTES) {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
        };
        match outcome {
            Ok(()) => {
                run(async move { upload.complete().await })?.map_err(|e| s3_error("upload", e))?;
                Ok(total)
            }
            Err(e) => {
                // Leave no half-uploaded parts behind (they are billed and invisible).
                let _ = run(async move { upload.abort().await });
                Err(e)
            }
        }
    }

    fn open(&self, path: &ArtifactPath) -> Result<(Box<dyn Read + Send>, u64)> {
        let location = self.location(path);
        let store = self.store.clone();
        let got = match run(async move { store.get(&location).await })? {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(if self.has_children(&self.location(path))? {
                    RegistryError::InvalidParameter(format!(
                        "'{}' is a directory; list it instead",
                        path.as_str()
                    ))
                } else {
                    Self::not_found(path)
                });
            }
            Err(e) => return Err(s3_error("download", e)),
        };
        let size = got.meta.size;
        // The body streams through a small channel; a blocking thread of the S3 runtime
        // feeds it, so a slow reader never stalls the runtime's workers.
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let rt = runtime()?;
        let handle = rt.handle().clone();
        rt.spawn_blocking(move || {
            handle.block_on(async move {
                let mut body = got.into_stream();
                while let Some(chunk) = body.next().await {
                    if tx.send(chunk).is_err() {
                        break;
                    }
                }
            })
        });
        Ok((
            Box::new(ChunkReader {
                rx,
                current: Bytes::new(),
            }),
            size,
        ))
    }

    fn list(&self, dir: Option<&ArtifactPath>) -> Result<Vec<FileInfo>> {
        let base = dir.map_or_else(|| self.prefix.clone(), |d| self.location(d));
        let store = self.store.clone();
        let listing = run(async move { store.list_with_delimiter(Some(&base)).await })?
            .map_err(|e| s3_error("list", e))?;
        let mut out: Vec<FileInfo> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .map(|name| FileInfo {
                path: name.to_string(),
                is_dir: true,
                file_size: None,
            })
            .chain(listing.objects.iter().filter_map(|o| {
                o.location.filename().map(|name| FileInfo {
                    path: name.to_string(),
                    is_dir: false,
                    file_size: Some(o.size),
                })
            }))
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let location = self.location(path);
        let store = self.store.clone();
        let deleted = run(async move {
            let mut targets: Vec<Path> = store
                .list(Some(&location))
                .map_ok(|o| o.location)
                .try_collect()
                .await?;
            match store.head(&location).await {
                Ok(_) => targets.push(location),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            let n = targets.len();
            let stream = futures::stream::iter(targets.into_iter().map(Ok)).boxed();
            store.delete_stream(stream).try_collect::<Vec<_>>().await?;
            Ok(n)
        })?
        .map_err(|e| s3_error("delete", e))?;
        if deleted == 0 {
            return Err(Self::not_found(path));
        }
        Ok(())
    }
}

/// A blocking reader over the chunks of an S3 download.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<object_store::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => return Err(std::io::Error::other(format!("S3 download: {e}"))),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}
