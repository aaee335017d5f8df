//! The live journal: every label a live learner learnt, in the order it learnt them,
//! with the row it learnt it on, so that an answer stamped "lineage L, learned N" can
//! be reproduced: the lineage's base version plus its first N entries, replayed.
//!
//! One file per lineage (`<dir>/<model>/<lineage>.jsonl`): a header line, then one
//! line per learnt row. Values are written in an exact encoding (floats as their bits),
//! so a replayed row is bit for bit the row that was learnt.

use crate::loader::LoadedModel;
use freshet_core::Value;
use freshet_learn::features::{FieldValue, SchemaRow};
use freshet_learn::model::Model;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// A journal that cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("live journal {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("live journal {path}, line {line}: {reason}")]
    Corrupt {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("no live lineage '{0}' is journalled for this model")]
    NoLineage(String),
    #[error("lineage {lineage} learnt {have} rows; {asked} were asked for")]
    TooFew {
        lineage: String,
        have: u64,
        asked: u64,
    },
}

/// Journals kept per model: creating one removes the oldest beyond this many
/// (lineage ids are time-ordered, so by name).
pub const KEEP_LINEAGES: usize = 16;

/// The first line of a journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    pub model: String,
    /// The registered version the lineage starts from.
    pub base: i64,
    pub lineage: String,
    pub started_at_ms: i64,
}

/// Where the journal of `lineage` lives. Lineage ids are generated (hex), and model
/// names are checked by the caller; anything else is refused.
pub fn path(dir: &Path, model: &str, lineage: &str) -> Result<PathBuf, JournalError> {
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if !ok(model) || !lineage.chars().all(|c| c.is_ascii_hexdigit()) || lineage.is_empty() {
        return Err(JournalError::NoLineage(lineage.chars().take(64).collect()));
    }
    Ok(dir.join(model).join(format!("{lineage}.jsonl")))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Exact encoding of one value.
fn encode(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!({ "i": i }),
        Value::Float(f) => json!({ "f": f.to_bits() }),
        Value::Str(s) => json!(s),
        Value::Timestamp(t) => json!({ "t": t }),
        Value::Date(d) => json!({ "d": d }),
        Value::Nested => json!({ "n": 0 }),
    }
}

fn decode(j: &Json) -> Option<Value> {
    Some(match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::String(s) => Value::Str(s.clone()),
        Json::Object(m) => {
            let (k, v) = m.iter().next()?;
            match k.as_str() {
                "i" => Value::Int(v.as_i64()?),
                "f" => Value::Float(f64::from_bits(v.as_u64()?)),
                "t" => Value::Timestamp(v.as_i64()?),
                "d" => Value::Date(i32::try_from(v.as_i64()?).ok()?),
                "n" => Value::Nested,
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Appends learnt rows to one lineage's file.
#[derive(Debug)]
pub struct JournalWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JournalWriter {
    /// Create the lineage's file and write its header.
    ///
    /// # Errors
    /// The directory or file cannot be created.
    pub fn create(dir: &Path, header: &JournalHeader) -> Result<Self, JournalError> {
        let path = path(dir, &header.model, &header.lineage)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(&path))?;
        }
        let file = File::create(&path).map_err(io(&path))?;
        if let Some(parent) = path.parent() {
            prune(parent);
        }
        let mut w = Self {
            out: BufWriter::new(file),
            path,
        };
        let line = serde_json::to_string(header).unwrap_or_default();
        writeln!(w.out, "{line}").map_err(io(&w.path))?;
        Ok(w)
    }

    /// Entry `n` (1-based): `row` (laid out as the base version's input) learnt with
    /// the label's JSON text.
    ///
    /// # Errors
    /// The write fails.
    pub fn append(&mut self, n: u64, row: &[Value], label_json: &str) -> Result<(), JournalError> {
        let row: Vec<Json> = row.iter().map(encode).collect();
        let line = json!({ "n": n, "row": row, "label": label_json });
        writeln!(self.out, "{line}").map_err(io(&self.path))
    }

    /// Push what was appended to the file (after each batch).
    ///
    /// # Errors
    /// The write fails.
    pub fn flush(&mut self) -> Result<(), JournalError> {
        self.out.flush().map_err(io(&self.path))
    }
}

/// Remove the oldest journals of a model's folder beyond [`KEEP_LINEAGES`].
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(KEEP_LINEAGES);
    for old in names.into_iter().take(excess) {
        if let Err(e) = std::fs::remove_file(&old) {
            tracing::warn!(path = %old.display(), error = %e, "an old live journal cannot be removed");
        }
    }
}

/// One learnt row, read back.
#[derive(Debug, Clone)]
pub struct Entry {
    pub row: Vec<Value>,
    pub label_json: String,
}

/// Read a lineage's header and its first `upto` entries.
///
/// # Errors
/// The file is missing ([`JournalError::NoLineage`]), unreadable, corrupt, or holds
/// fewer than `upto` entries.
pub fn read(
    dir: &Path,
    model: &str,
    lineage: &str,
    upto: u64,
) -> Result<(JournalHeader, Vec<Entry>), JournalError> {
    let path = path(dir, model, lineage)?;
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(JournalError::NoLineage(lineage.to_string()));
        }
        Err(e) => return Err(io(&path)(e)),
    };
    let corrupt = |line: usize, reason: &str| JournalError::Corrupt {
        path: path.display().to_string(),
        line,
        reason: reason.to_string(),
    };
    let mut lines = BufReader::new(file).lines();
    let header: JournalHeader = match lines.next() {
        Some(l) => serde_json::from_str(&l.map_err(io(&path))?)
            .map_err(|_| corrupt(1, "the header is not a journal header"))?,
        None => return Err(corrupt(1, "the file is empty")),
    };
    let mut entries = Vec::new();
    for (i, line) in lines.enumerate() {
        if entries.len() as u64 >= upto {
            break;
        }
        let line = line.map_err(io(&path))?;
        let v: Json = serde_json::from_str(&line).map_err(|_| corrupt(i + 2, "not JSON"))?;
        let row = v["row"]
            .as_array()
            .and_then(|r| r.iter().map(decode).collect::<Option<Vec<_>>>())
            .ok_or_else(|| corrupt(i + 2, "the row cannot be read"))?;
        let label_json = v["label"]
            .as_str()
            .ok_or_else(|| corrupt(i + 2, "the label is missing"))?
            .to_string();
        entries.push(Entry { row, label_json });
    }
    if (entries.len() as u64) < upto {
        return Err(JournalError::TooFew {
            lineage: lineage.to_string(),
            have: entries.len() as u64,
            asked: upto,
        });
    }
    Ok((header, entries))
}

/// Learn one row on `model` as the live learner does. `false` when the label is
/// unusable for the model (the row is then not learnt, and not journalled).
pub(crate) fn learn(model: &mut Model, base: &LoadedModel, row: &[Value], label: &Json) -> bool {
    let rec = SchemaRow::new(&base.input, row);
    model.learn_one(&rec, FieldValue::from(label)).is_ok()
}

/// The base version's model after learning `entries` in order: the live state that
/// answered with that many rows learnt.
pub fn replay(base: &LoadedModel, entries: &[Entry]) -> Model {
    let mut model = base.model.clone();
    for e in entries {
        let label: Json = serde_json::from_str(&e.label_json).unwrap_or(Json::Null);
        learn(&mut model, base, &e.row, &label);
    }
    model
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_exactly() {
        let vals = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-7),
            Value::Float(0.1 + 0.2),
            Value::Float(f64::MIN_POSITIVE),
            Value::Str("x".into()),
            Value::Timestamp(1_700_000_000_000_000),
            Value::Date(19_000),
            Value::Nested,
        ];
        for v in &vals {
            assert_eq!(decode(&encode(v)).as_ref(), Some(v));
        }
    }

    #[test]
    fn a_journal_reads_back_what_was_written_and_refuses_odd_names() {
        let dir = tempfile::tempdir().unwrap();
        let header = JournalHeader {
            model: "m".into(),
            base: 3,
            lineage: "0a1b".into(),
            started_at_ms: 1,
        };
        let mut w = JournalWriter::create(dir.path(), &header).unwrap();
        w.append(1, &[Value::Float(1.5)], "1").unwrap();
        w.append(2, &[Value::Float(2.5)], "\"yes\"").unwrap();
        w.flush().unwrap();
        let (h, e) = read(dir.path(), "m", "0a1b", 2).unwrap();
        assert_eq!(h, header);
        assert_eq!(e[1].row, vec![Value::Float(2.5)]);
        assert_eq!(e[1].label_json, "\"yes\"");
        assert!(matches!(
            read(dir.path(), "m", "0a1b", 3),
            Err(JournalError::TooFew { have: 2, .. })
        ));
        assert!(matches!(
            read(dir.path(), "m", "../x", 1),
            Err(JournalError::NoLineage(_))
        ));
        assert!(matches!(
            read(dir.path(), "m", "ff", 1),
            Err(JournalError::NoLineage(_))
        ));
        // Only the newest journals are kept.
        for i in 0..KEEP_LINEAGES + 3 {
            let h = JournalHeader {
                lineage: format!("{:04x}", 0x1000 + i),
                ..header.clone()
            };
            JournalWriter::create(dir.path(), &h).unwrap();
        }
        let left = std::fs::read_dir(dir.path().join("m")).unwrap().count();
        assert_eq!(left, KEEP_LINEAGES);
        assert!(
            read(dir.path(), "m", "0a1b", 0).is_err(),
            "the oldest went first"
        );
        assert!(
            read(
                dir.path(),
                "m",
                &format!("{:04x}", 0x1000 + KEEP_LINEAGES + 2),
                0
            )
            .is_ok()
        );
    }
}
