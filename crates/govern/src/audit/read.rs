//! Reading the chain back: records across segments, checkpoints, JSON-lines export.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::record::{AuditRecord, Checkpoint};
use super::segments::{Line, LineReader, list_segments};
use super::{AuditError, CHECKPOINT_FILE};

/// The checkpoint file, line by line.
pub(crate) struct CheckpointFile {
    /// One entry per complete line: the checkpoint, or `Err(())` if the line is unreadable.
    pub lines: Vec<Result<Checkpoint, ()>>,
    /// The file ends in a partial line (a crash while writing a checkpoint).
    pub torn: bool,
    /// Bytes up to the end of the last complete line.
    pub valid_len: u64,
}

pub(crate) fn read_checkpoint_file(dir: &Path) -> Result<CheckpointFile, AuditError> {
    let path = dir.join(CHECKPOINT_FILE);
    let mut out = CheckpointFile {
        lines: Vec::new(),
        torn: false,
        valid_len: 0,
    };
    if !path.exists() {
        return Ok(out);
    }
    let mut reader = LineReader::open(&path)?;
    let mut buf = Vec::new();
    while let Some(kind) = reader.next_line(&mut buf)? {
        match kind {
            Line::Complete => {
                out.lines
                    .push(serde_json::from_slice::<Checkpoint>(&buf).map_err(|_| ()));
                out.valid_len = reader.offset;
            }
            Line::Torn => out.torn = true,
        }
    }
    Ok(out)
}

/// Iterates the records of a chain in order across segments. A torn final line (an
/// unacknowledged write cut by a crash) ends the iteration quietly; a complete line that
/// does not parse yields one `Err` and ends it. It does not check hashes: use `verify`.
pub struct RecordIter {
    segments: std::vec::IntoIter<(u64, PathBuf)>,
    current: Option<(LineReader, PathBuf)>,
    remaining_segments: usize,
    buf: Vec<u8>,
    last_seq: u64,
    done: bool,
}

/// Opens the records of `records_dir` for reading (see [`RecordIter`]).
pub fn read_records(records_dir: &Path) -> Result<RecordIter, AuditError> {
    let segments = list_segments(records_dir)?;
    Ok(RecordIter {
        remaining_segments: segments.len(),
        segments: segments.into_iter(),
        current: None,
        buf: Vec::with_capacity(4096),
        last_seq: 0,
        done: false,
    })
}

impl RecordIter {
    fn step(&mut self) -> Result<Option<AuditRecord>, AuditError> {
        loop {
            if self.current.is_none() {
                match self.segments.next() {
                    Some((_, path)) => {
                        self.remaining_segments -= 1;
                        self.current = Some((LineReader::open(&path)?, path));
                    }
                    None => return Ok(None),
                }
            }
            let Some((reader, path)) = self.current.as_mut() else {
                continue;
            };
            match reader.next_line(&mut self.buf)? {
                None => self.current = None,
                Some(Line::Torn) if self.remaining_segments == 0 => {
                    tracing::warn!(path = %path.display(), after_seq = self.last_seq, "audit torn tail ignored");
                    return Ok(None);
                }
                Some(kind) => {
                    let parsed = match kind {
                        Line::Complete => serde_json::from_slice::<AuditRecord>(&self.buf).ok(),
                        Line::Torn => None,
                    };
                    let Some(rec) = parsed else {
                        return Err(AuditError::Corrupt {
                            path: path.clone(),
                            after_seq: self.last_seq,
                            reason: "record line does not parse",
                        });
                    };
                    self.last_seq = rec.seq;
                    return Ok(Some(rec));
                }
            }
        }
    }
}

impl Iterator for RecordIter {
    type Item = Result<AuditRecord, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Writes every record whose time is at or after `since` (all when `None`) to `out` as
/// JSON lines, in chain order, byte-identical to the stored lines of a verified chain.
/// Returns the number of records written.
pub fn export_jsonl(
    records_dir: &Path,
    since: Option<DateTime<Utc>>,
    out: &mut impl Write,
) -> Result<u64, AuditError> {
    let mut n = 0u64;
    let mut line = Vec::with_capacity(1024);
    for rec in read_records(records_dir)? {
        let rec = rec?;
        if since.is_some_and(|s| rec.time < s) {
            continue;
        }
        line.clear();
        serde_json::to_writer(&mut line, &rec)
            .map_err(|e| AuditError::WriteFailed(format!("encode record: {e}")))?;
        line.push(b'\n');
        out.write_all(&line)
            .map_err(|e| AuditError::io("<export output>", e))?;
        n += 1;
    }
    Ok(n)
}
