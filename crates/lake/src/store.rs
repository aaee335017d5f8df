//! Object stores beyond the local disk: S3 and S3-compatible stores, registered with
//! `deltalake` so that every table under an `s3://` root opens like a local one.
//!
//! Commits stay safe with several writers (several Freshet nodes on one table) because
//! `deltalake` writes each commit file with "create if absent", which S3 honours through
//! a conditional write (`If-None-Match: *`): of two writers racing for the same version
//! one wins and the other re-checks its commit against the winner and tries the next
//! version. No lock table (DynamoDB) is needed. A store that ignores the condition would
//! let one commit overwrite another, so [`probe_conditional_writes`] checks it at start.

use crate::error::{LakeError, Result};
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreFactory, ObjectStoreRef, StorageConfig, default_logstore,
    logstore_factories, object_store_factories,
};
use deltalake::{DeltaResult, DeltaTableError};
use freshet_core::config::S3Config;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};
use std::str::FromStr;
use std::sync::Arc;
use url::Url;

/// How the S3 stores of this process are built: the AWS environment, then the lake's
/// `s3` settings on top.
#[derive(Debug, Clone, Default)]
struct S3Factory {
    config: S3Config,
}

impl S3Factory {
    fn builder(
        &self,
        url: &Url,
        raw: &std::collections::HashMap<String, String>,
    ) -> AmazonS3Builder {
        let settings = self.config.client_options();
        let extra = raw.iter().map(|(k, v)| (k.as_str(), v.clone()));
        let mut b = AmazonS3Builder::from_env();
        for (k, v) in settings.into_iter().chain(extra) {
            if let Ok(key) = AmazonS3ConfigKey::from_str(k) {
                b = b.with_config(key, v);
            }
        }
        b.with_url(url.as_str())
    }
}

impl ObjectStoreFactory for S3Factory {
    fn parse_url_opts(
        &self,
        url: &Url,
        config: &StorageConfig,
    ) -> DeltaResult<(ObjectStoreRef, Path)> {
        let store = self
            .builder(url, &config.raw)
            .build()
            .map_err(|e| DeltaTableError::generic(format!("S3 store for {url}: {e}")))?;
        let path = Path::from_url_path(url.path())
            .map_err(|e| DeltaTableError::generic(format!("S3 path of {url}: {e}")))?;
        Ok((Arc::new(store), path))
    }
}

/// Every S3 table uses Delta's default log store: commit files written with "create if
/// absent", which S3's conditional writes make atomic.
#[derive(Debug, Clone, Copy, Default)]
struct S3LogStores;

impl LogStoreFactory for S3LogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Make `s3://` (and `s3a://`) roots open through `deltalake` with these settings. The
/// registry is process-wide: the last call wins, as one process has one lake.
pub(crate) fn register_s3(config: &S3Config) {
    for scheme in ["s3://", "s3a://"] {
        let Ok(key) = Url::parse(scheme) else {
            continue;
        };
        object_store_factories().insert(
            key.clone(),
            Arc::new(S3Factory {
                config: config.clone(),
            }),
        );
        logstore_factories().insert(key, Arc::new(S3LogStores));
    }
}

pub(crate) fn is_s3(url: &Url) -> bool {
    matches!(url.scheme(), "s3" | "s3a")
}

/// The store holding `root` and the path of `root` inside it (for listings).
pub(crate) fn store_for(root: &Url, config: &S3Config) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let factory = S3Factory {
        config: config.clone(),
    };
    let store = factory
        .builder(root, &Default::default())
        .build()
        .map_err(|e| LakeError::Location(format!("{root}: {e}")))?;
    let path = Path::from_url_path(root.path())
        .map_err(|e| LakeError::Location(format!("{root}: {e}")))?;
    Ok((Arc::new(store), path))
}

/// Check that the store under `root` refuses to overwrite an object written with "create
/// if absent" — what keeps concurrent commits from replacing each other. Writes (and
/// leaves) one small marker object, `_freshet/conditional-write-probe`.
pub(crate) async fn probe_conditional_writes(root: &Url, config: &S3Config) -> Result<()> {
    let (store, base) = store_for(root, config)?;
    let marker = base.join("_freshet").join("conditional-write-probe");
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let first = store
        .put_opts(&marker, PutPayload::from_static(b"freshet"), create())
        .await;
    match first {
        Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
        Err(e) => {
            return Err(LakeError::Location(format!(
                "{root}: cannot write to the store: {e}"
            )));
        }
    }
    match store
        .put_opts(&marker, PutPayload::from_static(b"freshet"), create())
        .await
    {
        Err(object_store::Error::AlreadyExists { .. })
        | Err(object_store::Error::Precondition { .. }) => Ok(()),
        Ok(_) => Err(LakeError::Location(format!(
            "{root}: the store overwrote an object written with If-None-Match: *, so \
             concurrent Delta commits could replace each other; use a store with \
             conditional writes (AWS S3, MinIO, R2, ...)"
        ))),
        Err(e) => Err(LakeError::Location(format!(
            "{root}: conditional write check failed: {e}"
        ))),
    }
}
