//! Segment files: naming, listing, line reading, directory fsync.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::AuditError;

const PREFIX: &str = "seg-";
const SUFFIX: &str = ".jsonl";

pub(crate) fn segment_name(first_seq: u64) -> String {
    format!("{PREFIX}{first_seq:020}{SUFFIX}")
}

/// The segments of `dir`, by first sequence number. A missing directory has none.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(AuditError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AuditError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(num) = name
            .strip_prefix(PREFIX)
            .and_then(|n| n.strip_suffix(SUFFIX))
        else {
            continue;
        };
        if num.len() != 20 || !num.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(first) = num.parse::<u64>() {
            out.push((first, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Makes a directory entry (a created or renamed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AuditError::io(dir, e))
}

/// A line of a segment file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// Ends with `\n` (not included in the buffer).
    Complete,
    /// Bytes at the end of the file without a final `\n`.
    Torn,
}

/// Reads a file line by line into a reused buffer.
pub(crate) struct LineReader {
    inner: BufReader<File>,
    path: PathBuf,
    /// Byte offset of the start of the next line.
    pub offset: u64,
}

impl LineReader {
    pub(crate) fn open(path: &Path) -> Result<Self, AuditError> {
        let f = File::open(path).map_err(|e| AuditError::io(path, e))?;
        Ok(LineReader {
            inner: BufReader::with_capacity(1 << 20, f),
            path: path.to_path_buf(),
            offset: 0,
        })
    }

    /// The next line into `buf` (cleared first), or `None` at end of file.
    pub(crate) fn next_line(&mut self, buf: &mut Vec<u8>) -> Result<Option<Line>, AuditError> {
        buf.clear();
        let n = self
            .inner
            .read_until(b'\n', buf)
            .map_err(|e| AuditError::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.offset += n as u64;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            Ok(Some(Line::Complete))
        } else {
            Ok(Some(Line::Torn))
        }
    }
}
