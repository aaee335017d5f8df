//! The file source: CSV or NDJSON, one-shot backfill or follow mode (tail a growing file).
//!
//! Each chunk of complete lines is submitted with a Delta transaction recording the byte
//! offset reached (`app_id = file:<absolute path>`). On start the source reads that
//! offset back from the event table and resumes after it, so a crash or restart neither
//! loses nor duplicates a line. A record's `_position` is the byte offset of its line.

use crate::decode::{CsvHeader, DecodedRecord, RecordProblem, decode_json_record};
use crate::error::{IngestError, Result};
use crate::service::IngestService;
use crate::sink::Txn;
use freshet_core::config::FileFormat;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How a file is read.
#[derive(Debug, Clone)]
pub struct FileOptions {
    pub format: FileFormat,
    pub follow: bool,
    pub poll: Duration,
    /// Upper bound of bytes per chunk (a chunk is one submission).
    pub chunk_bytes: usize,
    /// Submissions awaiting their commit at once.
    pub max_in_flight: usize,
}

impl FileOptions {
    pub fn new(format: FileFormat) -> Self {
        Self {
            format,
            follow: false,
            poll: Duration::from_millis(200),
            chunk_bytes: 4 << 20,
            max_in_flight: 4,
        }
    }
}

/// Progress of a file ingest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileProgress {
    /// Bytes committed (including what an earlier run committed).
    pub offset: u64,
    /// Current size of the file.
    pub size: u64,
    /// The offset an earlier run had committed, where this run resumed (0 on a first
    /// run, even past a CSV header).
    pub resumed_from: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub filtered: u64,
}

/// The transaction id of a file.
pub fn file_app_id(path: &Path) -> String {
    format!("file:{}", path.display())
}

fn io_err(path: &Path, e: std::io::Error) -> IngestError {
    IngestError::Io {
        path: path.display().to_string(),
        source: e,
    }
}

/// Ingest `path` into `stream`. Returns when the file is fully committed (or, in
/// follow mode, when `stop` turns true).
pub async fn ingest_file(
    service: &IngestService,
    stream: &str,
    path: &Path,
    opts: &FileOptions,
    mut stop: watch::Receiver<bool>,
    progress: &(dyn Fn(FileProgress) + Send + Sync),
) -> Result<FileProgress> {
    let rt = service.stream(stream)?.clone();
    let path: PathBuf = std::fs::canonicalize(path).map_err(|e| io_err(path, e))?;
    let app_id = file_app_id(&path);
    let committed = service
        .sink()
        .txn_version(stream, &app_id)
        .await
        .map_err(IngestError::Commit)?;
    let start = committed.unwrap_or(0).max(0) as u64;
    let id_prefix = hex::encode(&Sha256::digest(app_id.as_bytes())[..8]);
    let source: Arc<str> = app_id.as_str().into();

    let mut file = std::fs::File::open(&path).map_err(|e| io_err(&path, e))?;
    let schema = rt.pipeline.input_schema().clone();
    let (csv_header, header_end) = match opts.format {
        FileFormat::Csv => {
            let (h, end) = read_csv_header(&mut file, &path)?;
            (Some(CsvHeader::new(&h, &schema)), end)
        }
        FileFormat::Ndjson => (None, 0),
    };
    let mut offset = start.max(header_end);
    // The position each chunk follows on (see `Txn::after`).
    let mut prev_version = committed.unwrap_or(-1);
    let mut state = FileProgress {
        offset,
        resumed_from: start,
        ..Default::default()
    };
    let mut line_no = count_lines(&mut file, offset).map_err(|e| io_err(&path, e))? + 1;
    let mut in_flight: VecDeque<(crate::batch::Ack, u64)> = VecDeque::new();
    let mut buf = Vec::with_capacity(opts.chunk_bytes);
    let mut carry: Vec<u8> = Vec::new();

    loop {
        state.size = file.metadata().map_err(|e| io_err(&path, e))?.len();
        if state.size < offset {
            return Err(IngestError::BadRequest(format!(
                "{} shrank below the committed offset {offset}; refusing to guess where to resume",
                path.display()
            )));
        }
        let read_from = offset + carry.len() as u64;
        buf.clear();
        buf.extend_from_slice(&carry);
        if state.size > read_from {
            file.seek(SeekFrom::Start(read_from))
                .map_err(|e| io_err(&path, e))?;
            let want = (opts.chunk_bytes.saturating_sub(buf.len())).max(64 * 1024) as u64;
            (&mut file)
                .take(want)
                .read_to_end(&mut buf)
                .map_err(|e| io_err(&path, e))?;
        }
        // Only complete lines are taken; the partial tail waits for more data.
        let complete = match buf.iter().rposition(|b| *b == b'\n') {
            Some(i) => i + 1,
            None if !opts.follow
                && read_from + (buf.len() - carry.len()) as u64 >= state.size
                && !buf.is_empty() =>
            {
                buf.len()
            }
            None => 0,
        };
        if complete == 0 {
            carry = std::mem::take(&mut buf);
            if !opts.follow && read_from >= state.size {
                break;
            }
            if opts.follow {
                while let Some((ack, end)) = in_flight.pop_front() {
                    finish(ack, end, &mut state).await?;
                    progress(state);
                }
                tokio::select! {
                    _ = tokio::time::sleep(opts.poll) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    break;
                }
            }
            continue;
        }
        carry = buf[complete..].to_vec();
        let chunk = &buf[..complete];
        let (records, positions, lines) =
            decode_lines(chunk, offset, line_no, csv_header.as_ref(), &schema);
        let end = offset + complete as u64;
        let (outcome, ack) = service
            .submit(
                &rt,
                records,
                positions,
                source.clone(),
                &id_prefix,
                Some(Txn {
                    app_id: app_id.clone(),
                    version: end as i64,
                    after: Some(prev_version),
                }),
                false,
            )
            .await?;
        prev_version = end as i64;
        state.rejected += outcome.rejected as u64;
        state.filtered += outcome.filtered as u64;
        state.accepted += outcome.accepted as u64;
        in_flight.push_back((ack, end));
        offset = end;
        line_no += lines;
        while in_flight.len() >= opts.max_in_flight.max(1) {
            if let Some((ack, end)) = in_flight.pop_front() {
                finish(ack, end, &mut state).await?;
                progress(state);
            }
        }
        if *stop.borrow() {
            break;
        }
    }
    while let Some((ack, end)) = in_flight.pop_front() {
        finish(ack, end, &mut state).await?;
    }
    progress(state);
    Ok(state)
}

async fn finish(ack: crate::batch::Ack, end: u64, state: &mut FileProgress) -> Result<()> {
    ack.await.map_err(|_| IngestError::ShuttingDown)??;
    state.offset = end;
    Ok(())
}

/// Decode complete lines; a malformed line becomes a record with a problem so that it
/// is dead-lettered and the rest of the file goes on.
fn decode_lines(
    chunk: &[u8],
    base_offset: u64,
    first_line: usize,
    csv: Option<&CsvHeader>,
    schema: &freshet_core::Schema,
) -> (Vec<DecodedRecord>, Vec<i64>, usize) {
    let mut records = Vec::new();
    let mut positions = Vec::new();
    let mut at = 0usize;
    let mut lines = 0usize;
    for line in chunk.split_inclusive(|b| *b == b'\n') {
        let pos = base_offset as i64 + at as i64;
        at += line.len();
        lines += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if text.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let line_number = first_line + lines - 1;
        let rec = match csv {
            None => decode_json_record(text, schema)
                .unwrap_or_else(|e| malformed_record(schema, line_number, &e)),
            Some(h) => decode_csv_line(text, h, schema)
                .unwrap_or_else(|e| malformed_record(schema, line_number, &e)),
        };
        records.push(rec);
        positions.push(pos);
    }
    (records, positions, lines)
}

fn malformed_record(schema: &freshet_core::Schema, line: usize, e: &IngestError) -> DecodedRecord {
    let message = match e {
        IngestError::Malformed {
            column, message, ..
        } => format!("malformed at line {line}, column {column}: {message}"),
        other => format!("malformed at line {line}: {other}"),
    };
    DecodedRecord {
        values: vec![freshet_core::Value::Null; schema.len()],
        problem: Some(RecordProblem::Malformed(message)),
    }
}

fn decode_csv_line(
    text: &[u8],
    h: &CsvHeader,
    schema: &freshet_core::Schema,
) -> Result<DecodedRecord> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text);
    let mut rec = csv::ByteRecord::new();
    match reader.read_byte_record(&mut rec) {
        Ok(true) => {
            if rec.len() != h.width() {
                return Err(IngestError::Malformed {
                    line: 0,
                    column: 0,
                    message: format!("expected {} columns, found {}", h.width(), rec.len()),
                });
            }
            h.decode(&rec, schema)
        }
        Ok(false) => Err(IngestError::Malformed {
            line: 0,
            column: 0,
            message: "empty line".into(),
        }),
        Err(e) => Err(crate::decode::csv_error(&e)),
    }
}

fn read_csv_header(file: &mut std::fs::File, path: &Path) -> Result<(csv::StringRecord, u64)> {
    file.seek(SeekFrom::Start(0)).map_err(|e| io_err(path, e))?;
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = file.read(&mut byte).map_err(|e| io_err(path, e))?;
        if n == 0 || byte[0] == b'\n' {
            if n == 0 && first.is_empty() {
                return Err(IngestError::BadRequest(format!(
                    "{} has no CSV header line",
                    path.display()
                )));
            }
            break;
        }
        first.push(byte[0]);
        if first.len() > 1 << 20 {
            return Err(IngestError::BadRequest(
                "CSV header line longer than 1 MiB".into(),
            ));
        }
    }
    let end = first.len() as u64 + 1;
    let text = first.strip_suffix(b"\r").unwrap_or(&first);
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text);
    let mut rec = csv::StringRecord::new();
    r.read_record(&mut rec)
        .map_err(|e| crate::decode::csv_error(&e))?;
    Ok((rec, end))
}

/// Lines before `offset`, so that error messages keep real line numbers after a resume.
fn count_lines(file: &mut std::fs::File, offset: u64) -> std::io::Result<usize> {
    file.seek(SeekFrom::Start(0))?;
    let mut left = offset;
    let mut count = 0;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = file.read(&mut buf[..(left.min(1 << 20)) as usize])?;
        if n == 0 {
            break;
        }
        count += buf[..n].iter().filter(|b| **b == b'\n').count();
        left -= n as u64;
    }
    Ok(count)
}
