//! Names of the tables under one lake root.

use crate::error::{LakeError, Result};
use crate::store;
use freshet_core::config::S3Config;
use futures::TryStreamExt;
use url::Url;

/// The kinds of table Freshet keeps per stream or model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// `events/<stream>`: accepted records.
    Events,
    /// `dlq/<stream>`: rejected records with stage, field and reason.
    DeadLetter,
}

impl TableKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TableKind::Events => "events",
            TableKind::DeadLetter => "dlq",
        }
    }
}

/// The table groups under a lake root.
const GROUPS: [&str; 4] = ["events", "dlq", "inference", "labels"];

/// A lake root: a local directory or an object-store URL.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
    s3: S3Config,
}

impl Lake {
    /// `root` is a local path (created if missing) or a URL such as `file:///data/lake`;
    /// an `s3://` root reaches S3 through the AWS environment alone (see [`Lake::open`]).
    pub fn new(root: &str) -> Result<Self> {
        Self::with_s3(root, &S3Config::default())
    }

    /// Open a lake root; an `s3://<bucket>/<prefix>` root is reached with `s3` on top of
    /// the AWS environment, and checked to honour conditional writes, which keep
    /// concurrent commits (several nodes on one table) from replacing each other.
    pub async fn open(root: &str, s3: &S3Config) -> Result<Self> {
        let lake = Self::with_s3(root, s3)?;
        if store::is_s3(&lake.root) {
            store::probe_conditional_writes(&lake.root, &lake.s3).await?;
        }
        Ok(lake)
    }

    fn with_s3(root: &str, s3: &S3Config) -> Result<Self> {
        let url = match Url::parse(root) {
            Ok(u) if u.scheme().len() > 1 => match u.scheme() {
                "file" => u,
                "s3" | "s3a" if u.host_str().is_some_and(|h| !h.is_empty()) => {
                    store::register_s3(s3);
                    u
                }
                _ => return Err(LakeError::Location(root.to_string())),
            },
            _ => {
                std::fs::create_dir_all(root)?;
                let abs = std::fs::canonicalize(root)?;
                Url::from_directory_path(&abs).map_err(|_| LakeError::Location(root.to_string()))?
            }
        };
        let root = if url.path().ends_with('/') {
            url
        } else {
            Url::parse(&format!("{url}/")).map_err(|_| LakeError::Location(root.into()))?
        };
        Ok(Self {
            root,
            s3: s3.clone(),
        })
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The URL of a table given its name, e.g. `events/cards`.
    pub fn table_url(&self, name: &str) -> Result<Url> {
        let name = name.trim_matches('/');
        if name.is_empty()
            || name
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(LakeError::Location(name.to_string()));
        }
        self.root
            .join(&format!("{name}/"))
            .map_err(|_| LakeError::Location(name.to_string()))
    }

    pub fn url_for(&self, kind: TableKind, stream: &str) -> Result<Url> {
        self.table_url(&format!("{}/{stream}", kind.prefix()))
    }

    /// Names of the tables under the root (`events/x`, `dlq/x`, …).
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        if store::is_s3(&self.root) {
            return self.list_object_store_tables().await;
        }
        let Ok(root) = self.root.to_file_path() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for group in GROUPS {
            let dir = root.join(group);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.path().join("_delta_log").is_dir() {
                    out.push(format!("{group}/{}", e.file_name().to_string_lossy()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Tables in an object store: the folders of each group that hold a `_delta_log`.
    async fn list_object_store_tables(&self) -> Result<Vec<String>> {
        let (store, base) = store::store_for(&self.root, &self.s3)?;
        let mut out = Vec::new();
        for group in GROUPS {
            let listing = store
                .list_with_delimiter(Some(&base.clone().join(group)))
                .await?;
            for dir in listing.common_prefixes {
                let Some(name) = dir.filename().map(str::to_string) else {
                    continue;
                };
                let log = dir.join("_delta_log");
                let mut entries = store.list(Some(&log));
                if entries.try_next().await?.is_some() {
                    out.push(format!("{group}/{name}"));
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap()).unwrap();
        assert!(lake.table_url("events/../../etc").is_err());
        assert!(lake.table_url("").is_err());
        let u = lake.table_url("events/cards").unwrap();
        assert!(u.as_str().ends_with("/events/cards/"));
    }
}
