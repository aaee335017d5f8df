//! Names of the tables under one lake root.

use crate::error::{LakeError, Result};
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

/// A lake root: a local directory or an object-store URL.
#[derive(Debug, Clone)]
pub struct Lake {
    root: Url,
}

impl Lake {
    /// `root` is a local path (created if missing) or a URL such as `file:///data/lake`.
    pub fn new(root: &str) -> Result<Self> {
        let url = match Url::parse(root) {
            Ok(u) if u.scheme().len() > 1 => u,
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
        Ok(Self { root })
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

    /// Names of the tables under the root (`events/x`, `dlq/x`, …), for local lakes.
    pub fn list_tables(&self) -> Result<Vec<String>> {
        let Ok(root) = self.root.to_file_path() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for group in ["events", "dlq", "inference", "labels"] {
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
