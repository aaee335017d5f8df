//! Artifact storage behind a trait: run files and model directories, addressed by
//! relative paths such as `1/models/m-…/artifacts/MLmodel`. The local-disk store is the
//! default; an object store (S3) can follow behind the same trait.
//!
//! Every path is checked before it touches storage: relative, `/`-separated, with no
//! empty, `.` or `..` segment, no backslash and no control character, so a client can
//! never read or write outside the store's root.

use crate::error::{RegistryError, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A checked artifact path (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath(String);

impl ArtifactPath {
    /// Check `raw`; a trailing slash is ignored.
    pub fn parse(raw: &str) -> Result<Self> {
        let trimmed = raw.trim_end_matches('/');
        let bad =
            |why: &str| RegistryError::InvalidParameter(format!("Invalid artifact path: {why}"));
        if trimmed.starts_with('/') {
            return Err(bad("absolute paths are not allowed"));
        }
        if trimmed.is_empty() {
            return Err(bad("the path is empty"));
        }
        if trimmed.contains('\\') || trimmed.chars().any(char::is_control) {
            return Err(bad("backslashes and control characters are not allowed"));
        }
        if trimmed.len() > 4096 {
            return Err(bad("the path is longer than 4096 bytes"));
        }
        // A drive letter (`C:`) would make the path absolute on Windows.
        if trimmed.len() >= 2 && trimmed.as_bytes()[1] == b':' {
            return Err(bad("absolute paths are not allowed"));
        }
        for seg in trimmed.split('/') {
            match seg {
                "" => return Err(bad("empty path segments are not allowed")),
                "." | ".." => return Err(bad("'.' and '..' segments are not allowed")),
                _ => {}
            }
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `self/child`, checked.
    pub fn join(&self, child: &str) -> Result<Self> {
        Self::parse(&format!("{}/{child}", self.0))
    }
}

/// One entry of a listing, relative to the listed directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileInfo {
    pub path: String,
    pub is_dir: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

/// Where artifact bytes live.
pub trait ArtifactStore: Send + Sync + std::fmt::Debug {
    /// Store `data` at `path`, replacing any file there; readers see the old or the new
    /// file, never a partial one. Returns the bytes written.
    fn put(&self, path: &ArtifactPath, data: &mut dyn Read) -> Result<u64>;
    /// A reader over the file at `path`, and its size.
    fn open(&self, path: &ArtifactPath) -> Result<(Box<dyn Read + Send>, u64)>;
    /// The entries directly under `dir` (the root when `None`), sorted by name; empty
    /// when the directory does not exist.
    fn list(&self, dir: Option<&ArtifactPath>) -> Result<Vec<FileInfo>>;
    /// Delete the file or directory tree at `path`.
    fn delete(&self, path: &ArtifactPath) -> Result<()>;
}

/// Artifacts as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalArtifactStore {
    root: PathBuf,
}

fn io(e: std::io::Error) -> RegistryError {
    RegistryError::Io(e)
}

impl LocalArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io)?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, path: &ArtifactPath) -> PathBuf {
        let mut p = self.root.clone();
        p.extend(path.as_str().split('/'));
        p
    }

    fn not_found(path: &ArtifactPath) -> RegistryError {
        RegistryError::NotFound(format!("No artifact at '{}'", path.as_str()))
    }
}

impl ArtifactStore for LocalArtifactStore {
    fn put(&self, path: &ArtifactPath, data: &mut dyn Read) -> Result<u64> {
        let target = self.file(path);
        let dir = target
            .parent()
            .ok_or_else(|| RegistryError::InvalidParameter("Invalid artifact path".into()))?;
        std::fs::create_dir_all(dir).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotADirectory
                || e.kind() == std::io::ErrorKind::AlreadyExists
            {
                RegistryError::InvalidParameter(format!(
                    "Invalid artifact path '{}': a parent is a file",
                    path.as_str()
                ))
            } else {
                io(e)
            }
        })?;
        if target.is_dir() {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid artifact path '{}': it is a directory",
                path.as_str()
            )));
        }
        let tmp = dir.join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
        let written = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            let n = std::io::copy(data, &mut f)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            Ok::<_, std::io::Error>(n)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io)
    }

    fn open(&self, path: &ArtifactPath) -> Result<(Box<dyn Read + Send>, u64)> {
        let p = self.file(path);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => {
                let f = std::fs::File::open(&p).map_err(io)?;
                Ok((Box::new(f), m.len()))
            }
            Ok(_) => Err(RegistryError::InvalidParameter(format!(
                "'{}' is a directory; list it instead",
                path.as_str()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Self::not_found(path)),
            Err(e) => Err(io(e)),
        }
    }

    fn list(&self, dir: Option<&ArtifactPath>) -> Result<Vec<FileInfo>> {
        let d = dir.map_or_else(|| self.root.clone(), |p| self.file(p));
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(io(e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".upload-") {
                continue;
            }
            let meta = entry.metadata().map_err(io)?;
            out.push(FileInfo {
                path: name,
                is_dir: meta.is_dir(),
                file_size: meta.is_file().then_some(meta.len()),
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn delete(&self, path: &ArtifactPath) -> Result<()> {
        let p = self.file(path);
        let res = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match res {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Self::not_found(path)),
            Err(e) => Err(io(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_paths_are_refused() {
        for bad in [
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "",
            "/",
            "//etc/passwd",
            "a\\..\\b",
            "C:/x",
            "a/\u{0}b",
        ] {
            assert!(ArtifactPath::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(ArtifactPath::parse("/etc/passwd").is_err());
        assert_eq!(
            ArtifactPath::parse("0/run/artifacts/").unwrap().as_str(),
            "0/run/artifacts"
        );
    }

    #[test]
    fn put_open_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalArtifactStore::new(dir.path()).unwrap();
        let p = ArtifactPath::parse("1/m/artifacts/model.json").unwrap();
        assert_eq!(store.put(&p, &mut &b"{}"[..]).unwrap(), 2);
        let (mut r, n) = store.open(&p).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((s.as_str(), n), ("{}", 2));
        let listed = store
            .list(Some(&ArtifactPath::parse("1/m").unwrap()))
            .unwrap();
        assert_eq!(
            listed,
            vec![FileInfo {
                path: "artifacts".into(),
                is_dir: true,
                file_size: None
            }]
        );
        assert!(
            store
                .list(Some(&ArtifactPath::parse("nope").unwrap()))
                .unwrap()
                .is_empty()
        );
        // A file cannot become a directory.
        let under_file = ArtifactPath::parse("1/m/artifacts/model.json/x").unwrap();
        assert!(store.put(&under_file, &mut &b"x"[..]).is_err());
        store.delete(&ArtifactPath::parse("1/m").unwrap()).unwrap();
        assert!(matches!(store.open(&p), Err(RegistryError::NotFound(_))));
    }
}
