//! The writer: one thread owns the segment and checkpoint files and commits in groups.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::keys::{self, key_id};
use super::read::read_checkpoint_file;
use super::record::{
    AuditRecord, Checkpoint, GENESIS, RawRecord, checkpoint_bytes, decode_hash, format_time,
    parse_canonical_time, record_hash,
};
use super::segments::{Line, LineReader, list_segments, segment_name, sync_dir};
use super::{AuditConfig, AuditError, AuditEvent, CHECKPOINT_FILE, redact};

/// Longest principal, action, resource, request id, detail key or detail value.
pub const MAX_FIELD_BYTES: usize = 64 * 1024;
/// Most detail entries per event.
pub const MAX_DETAIL_ENTRIES: usize = 256;
/// Most records in one group commit.
const MAX_BATCH: usize = 4096;

type Ack = Result<u64, AuditError>;
type CheckpointAck = Result<Option<Checkpoint>, AuditError>;

enum Reply {
    Async(tokio::sync::oneshot::Sender<Ack>),
    Blocking(SyncSender<Ack>),
}

impl Reply {
    fn send(self, r: Ack) {
        // A caller that stopped waiting (a dropped future) is not an error of the log.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(r);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

enum Msg {
    Append(AuditEvent, Reply),
    Checkpoint(SyncSender<CheckpointAck>),
    Close(SyncSender<CheckpointAck>),
}

/// A handle on the audit chain; clone it freely. The last handle dropped (or `close`)
/// drains the queue and writes a final checkpoint.
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Sender<Msg>,
    thread: Mutex<Option<JoinHandle<()>>>,
    public_key: VerifyingKey,
    key_id: String,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("key_id", &self.inner.key_id)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (or creates) the chain: takes the directory lock, loads or creates the key,
    /// cuts off a torn final line of records or checkpoints, and resumes the sequence and
    /// the previous hash from the last complete record.
    pub fn open(cfg: AuditConfig) -> Result<Self, AuditError> {
        let writer = Writer::open(cfg)?;
        let public_key = writer.signing.verifying_key();
        let key_id = writer.key_id.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| AuditError::WriteFailed(format!("spawn writer thread: {e}")))?;
        Ok(AuditLog {
            inner: Arc::new(Inner {
                tx,
                thread: Mutex::new(Some(thread)),
                public_key,
                key_id,
            }),
        })
    }

    /// Appends one event; resolves once the record is on disk (fsync), with its sequence
    /// number. Never blocks the runtime: the writer thread does the I/O. A future dropped
    /// after the event was queued does not withdraw it: the record may still be written.
    pub async fn append(&self, mut ev: AuditEvent) -> Result<u64, AuditError> {
        prepare(&mut ev)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner
            .tx
            .send(Msg::Append(ev, Reply::Async(tx)))
            .map_err(|_| AuditError::Closed)?;
        rx.await.map_err(|_| AuditError::Closed)?
    }

    /// `append` for threads outside an async runtime (or inside `spawn_blocking`).
    pub fn append_blocking(&self, mut ev: AuditEvent) -> Result<u64, AuditError> {
        prepare(&mut ev)?;
        let (tx, rx) = mpsc::sync_channel(1);
        self.inner
            .tx
            .send(Msg::Append(ev, Reply::Blocking(tx)))
            .map_err(|_| AuditError::Closed)?;
        rx.recv().map_err(|_| AuditError::Closed)?
    }

    /// Writes a checkpoint now over everything acknowledged so far; `None` when the newest
    /// checkpoint already covers the last record (or there is no record).
    pub fn checkpoint_now(&self) -> Result<Option<Checkpoint>, AuditError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.inner
            .tx
            .send(Msg::Checkpoint(tx))
            .map_err(|_| AuditError::Closed)?;
        rx.recv().map_err(|_| AuditError::Closed)?
    }

    /// Drains the queue, writes a final checkpoint and stops the writer (for every clone:
    /// later appends fail with `Closed`).
    pub fn close(self) -> Result<Option<Checkpoint>, AuditError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let result = match self.inner.tx.send(Msg::Close(tx)) {
            Ok(()) => rx.recv().unwrap_or(Ok(None)),
            Err(_) => Ok(None),
        };
        self.inner.join();
        result
    }

    /// The public key that verifies this chain's checkpoints.
    pub fn public_key(&self) -> VerifyingKey {
        self.inner.public_key
    }

    /// The key id written in each checkpoint.
    pub fn key_id(&self) -> &str {
        &self.inner.key_id
    }
}

impl Inner {
    fn join(&self) {
        let handle = match self.thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("audit writer thread panicked");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.tx.send(Msg::Close(tx)).is_ok()
            && let Ok(Err(e)) = rx.recv()
        {
            tracing::error!(error = %e, "audit final checkpoint failed");
        }
        self.join();
    }
}

/// Bounds and redacts an event before it is queued.
fn prepare(ev: &mut AuditEvent) -> Result<(), AuditError> {
    let check = |field: &'static str, s: &str| {
        if s.len() > MAX_FIELD_BYTES {
            Err(AuditError::InvalidEvent {
                field,
                reason: "longer than 64 KiB",
            })
        } else {
            Ok(())
        }
    };
    check("principal", &ev.principal)?;
    check("action", &ev.action)?;
    check("resource", &ev.resource)?;
    check("request_id", &ev.request_id)?;
    if ev.detail.len() > MAX_DETAIL_ENTRIES {
        return Err(AuditError::InvalidEvent {
            field: "detail",
            reason: "more than 256 entries",
        });
    }
    for (k, v) in &ev.detail {
        check("detail key", k)?;
        check("detail value", v)?;
    }
    redact(ev);
    Ok(())
}

/// Takes an exclusive advisory lock on `dir/LOCK` for the writer's lifetime.
fn lock_dir(dir: &Path) -> Result<File, AuditError> {
    let path = dir.join("LOCK");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AuditError::io(&path, e))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own and keep open; no memory is shared.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                return Err(AuditError::Locked {
                    path: dir.to_path_buf(),
                });
            }
            return Err(AuditError::io(&path, err));
        }
    }
    Ok(f)
}

struct Writer {
    cfg: AuditConfig,
    _lock: File,
    file: File,
    path: PathBuf,
    len: u64,
    next_seq: u64,
    prev: [u8; 32],
    last_time: DateTime<Utc>,
    signing: SigningKey,
    key_id: String,
    cp_file: File,
    cp_path: PathBuf,
    cp_len: u64,
    last_cp_seq: u64,
    /// When the first record not yet covered by a checkpoint was committed.
    uncovered_since: Option<Instant>,
    buf: Vec<u8>,
    /// Set when a failed batch could not be rolled back: the file end is unknown.
    poisoned: bool,
}

/// The last complete record of the chain, found on open.
struct Tail {
    seq: u64,
    hash: [u8; 32],
    time: Option<DateTime<Utc>>,
}

impl Writer {
    fn open(cfg: AuditConfig) -> Result<Self, AuditError> {
        for d in [&cfg.dir, &cfg.checkpoint_dir] {
            fs::create_dir_all(d).map_err(|e| AuditError::io(d, e))?;
        }
        let lock = lock_dir(&cfg.dir)?;
        let signing = keys::load_or_create(&cfg.key_file)?;
        let key_id = key_id(&signing.verifying_key());

        // Checkpoints: cut a torn final line, find the newest one.
        let cp_path = cfg.checkpoint_dir.join(CHECKPOINT_FILE);
        let cps = read_checkpoint_file(&cfg.checkpoint_dir)?;
        if cps.torn {
            tracing::warn!(path = %cp_path.display(), keep_bytes = cps.valid_len, "audit checkpoint torn tail cut");
            truncate(&cp_path, cps.valid_len)?;
        }
        let last_cp_seq = cps
            .lines
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .map(|c| c.seq)
            .max()
            .unwrap_or(0);
        let cp_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cp_path)
            .map_err(|e| AuditError::io(&cp_path, e))?;
        sync_dir(&cfg.checkpoint_dir)?;

        // Records: find the tail, cutting a torn final line of the last segment.
        let segments = list_segments(&cfg.dir)?;
        let tail = find_tail(&segments)?;
        let (next_seq, prev, last_time) = match &tail {
            Some(t) => (
                t.seq + 1,
                t.hash,
                t.time.unwrap_or(DateTime::<Utc>::MIN_UTC),
            ),
            None => (1, GENESIS, DateTime::<Utc>::MIN_UTC),
        };
        if last_cp_seq >= next_seq {
            return Err(AuditError::BehindCheckpoint {
                last_seq: next_seq - 1,
                checkpoint_seq: last_cp_seq,
            });
        }

        // The segment to append to: the last one unless it is full, or empty under a name
        // that does not match the next sequence number.
        let reuse = match segments.last() {
            Some((first, path)) => {
                let len = fs::metadata(path)
                    .map_err(|e| AuditError::io(path, e))?
                    .len();
                if len == 0 && *first != next_seq {
                    fs::remove_file(path).map_err(|e| AuditError::io(path, e))?;
                    None
                } else if len >= cfg.segment_max_bytes {
                    None
                } else {
                    Some((path.clone(), len))
                }
            }
            None => None,
        };
        let (file, path, len) = match reuse {
            Some((path, len)) => {
                let f = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| AuditError::io(&path, e))?;
                (f, path, len)
            }
            None => {
                let (f, path) = create_segment(&cfg.dir, next_seq)?;
                (f, path, 0)
            }
        };
        tracing::info!(
            dir = %cfg.dir.display(),
            next_seq,
            last_checkpoint = last_cp_seq,
            key_id = %key_id,
            "audit chain opened"
        );
        let uncovered_since = (next_seq - 1 > last_cp_seq).then(Instant::now);
        Ok(Writer {
            cfg,
            _lock: lock,
            file,
            path,
            len,
            next_seq,
            prev,
            last_time,
            signing,
            key_id,
            cp_file,
            cp_path,
            cp_len: cps.valid_len,
            last_cp_seq,
            uncovered_since,
            buf: Vec::with_capacity(1 << 16),
            poisoned: false,
        })
    }

    fn run(mut self, rx: Receiver<Msg>) {
        let mut batch: Vec<(AuditEvent, Reply)> = Vec::new();
        loop {
            let first = match self.checkpoint_deadline() {
                Some(deadline) => {
                    let now = Instant::now();
                    if deadline <= now {
                        self.checkpoint_logged();
                        continue;
                    }
                    match rx.recv_timeout(deadline - now) {
                        Ok(m) => m,
                        Err(RecvTimeoutError::Timeout) => {
                            self.checkpoint_logged();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                },
            };
            let mut control = None;
            match first {
                Msg::Append(ev, r) => batch.push((ev, r)),
                other => control = Some(other),
            }
            while control.is_none() && batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(Msg::Append(ev, r)) => batch.push((ev, r)),
                    Ok(other) => control = Some(other),
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch);
                if self.checkpoint_due() {
                    self.checkpoint_logged();
                }
                self.maybe_roll();
            }
            match control {
                Some(Msg::Checkpoint(reply)) => {
                    let _ = reply.send(self.checkpoint());
                }
                Some(Msg::Close(reply)) => {
                    let r = self.checkpoint();
                    let _ = reply.send(r);
                    tracing::info!(last_seq = self.next_seq - 1, "audit chain closed");
                    return;
                }
                Some(Msg::Append(..)) | None => {}
            }
        }
        // Every handle is gone without `close`: seal what was written.
        self.checkpoint_logged();
    }

    /// Writes the batch, one fsync, then acknowledges every sender.
    fn commit(&mut self, batch: &mut Vec<(AuditEvent, Reply)>) {
        if self.poisoned {
            for (_, reply) in batch.drain(..) {
                reply.send(Err(AuditError::WriteFailed(
                    "writer stopped after an earlier failure".into(),
                )));
            }
            return;
        }
        let start = (self.next_seq, self.prev, self.last_time, self.len);
        self.buf.clear();
        let mut seqs = Vec::with_capacity(batch.len());
        let mut encode_err = None;
        for (ev, _) in batch.iter_mut() {
            let now = Utc::now().max(self.last_time);
            let time = format_time(&now);
            let seq = self.next_seq;
            let hash = record_hash(
                &super::record::Head {
                    seq,
                    time: &time,
                    principal: &ev.principal,
                    action: &ev.action,
                    resource: &ev.resource,
                    request_id: &ev.request_id,
                    outcome: ev.outcome,
                },
                ev.detail.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                &self.prev,
            );
            let rec = AuditRecord {
                seq,
                time: now,
                principal: std::mem::take(&mut ev.principal),
                action: std::mem::take(&mut ev.action),
                resource: std::mem::take(&mut ev.resource),
                request_id: std::mem::take(&mut ev.request_id),
                outcome: ev.outcome,
                detail: std::mem::take(&mut ev.detail),
                prev_hash: hex::encode(self.prev),
                hash: hex::encode(hash),
            };
            if let Err(e) = serde_json::to_writer(&mut self.buf, &rec) {
                encode_err = Some(e.to_string());
                break;
            }
            self.buf.push(b'\n');
            seqs.push(seq);
            self.next_seq += 1;
            self.prev = hash;
            self.last_time = now;
        }
        let result = match encode_err {
            Some(e) => Err(format!("encode record: {e}")),
            None => self
                .file
                .write_all(&self.buf)
                .and_then(|()| self.file.sync_data())
                .map_err(|e| format!("{}: {e}", self.path.display())),
        };
        match result {
            Ok(()) => {
                self.len += self.buf.len() as u64;
                if self.uncovered_since.is_none() {
                    self.uncovered_since = Some(Instant::now());
                }
                for ((_, reply), seq) in batch.drain(..).zip(seqs) {
                    reply.send(Ok(seq));
                }
            }
            Err(msg) => {
                tracing::error!(error = %msg, records = batch.len(), "audit batch not written");
                (self.next_seq, self.prev, self.last_time, self.len) = start;
                // Roll back whatever part of the batch reached the file.
                if let Err(e) = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data())
                {
                    tracing::error!(error = %e, "audit rollback failed; writer stopped");
                    self.poisoned = true;
                }
                for (_, reply) in batch.drain(..) {
                    reply.send(Err(AuditError::WriteFailed(msg.clone())));
                }
            }
        }
    }

    fn checkpoint_deadline(&self) -> Option<Instant> {
        self.uncovered_since
            .map(|t| t + self.cfg.checkpoint_interval)
    }

    fn checkpoint_due(&self) -> bool {
        let pending = self.next_seq - 1 - self.last_cp_seq;
        if pending == 0 {
            return false;
        }
        (self.cfg.checkpoint_every > 0 && pending >= self.cfg.checkpoint_every)
            || self
                .checkpoint_deadline()
                .is_some_and(|d| d <= Instant::now())
    }

    fn checkpoint_logged(&mut self) {
        if let Err(e) = self.checkpoint() {
            tracing::error!(error = %e, "audit checkpoint failed");
            // Retry at the next interval rather than spinning.
            self.uncovered_since = Some(Instant::now());
        }
    }

    fn checkpoint(&mut self) -> Result<Option<Checkpoint>, AuditError> {
        let seq = self.next_seq - 1;
        if seq == 0 || seq <= self.last_cp_seq {
            self.uncovered_since = None;
            return Ok(None);
        }
        let time = Utc::now();
        let hash = hex::encode(self.prev);
        let bytes = checkpoint_bytes(seq, &hash, &format_time(&time), &self.key_id)
            .ok_or_else(|| AuditError::WriteFailed("checkpoint hash malformed".into()))?;
        let signature = hex::encode(self.signing.sign(&bytes).to_bytes());
        let cp = Checkpoint {
            seq,
            hash,
            time,
            key_id: self.key_id.clone(),
            signature,
        };
        let mut line = serde_json::to_vec(&cp)
            .map_err(|e| AuditError::WriteFailed(format!("encode checkpoint: {e}")))?;
        line.push(b'\n');
        let written = self
            .cp_file
            .write_all(&line)
            .and_then(|()| self.cp_file.sync_data());
        if let Err(e) = written {
            let _ = self.cp_file.set_len(self.cp_len);
            return Err(AuditError::io(&self.cp_path, e));
        }
        self.cp_len += line.len() as u64;
        self.last_cp_seq = seq;
        self.uncovered_since = None;
        tracing::debug!(seq, "audit checkpoint written");
        Ok(Some(cp))
    }

    fn maybe_roll(&mut self) {
        if self.len < self.cfg.segment_max_bytes || self.poisoned {
            return;
        }
        match create_segment(&self.cfg.dir, self.next_seq) {
            Ok((f, path)) => {
                tracing::info!(first_seq = self.next_seq, "audit segment rolled over");
                self.file = f;
                self.path = path;
                self.len = 0;
            }
            Err(e) => tracing::error!(error = %e, "audit segment roll-over failed; continuing"),
        }
    }
}

fn create_segment(dir: &Path, first_seq: u64) -> Result<(File, PathBuf), AuditError> {
    let path = dir.join(segment_name(first_seq));
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| AuditError::io(&path, e))?;
    f.sync_all().map_err(|e| AuditError::io(&path, e))?;
    sync_dir(dir)?;
    Ok((f, path))
}

fn truncate(path: &Path, len: u64) -> Result<(), AuditError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| AuditError::io(path, e))?;
    f.set_len(len)
        .and_then(|()| f.sync_all())
        .map_err(|e| AuditError::io(path, e))
}

/// Finds the last complete record, newest segment first, cutting a torn final line of the
/// last segment. A complete line that does not parse or hash is an error, not a tail.
fn find_tail(segments: &[(u64, PathBuf)]) -> Result<Option<Tail>, AuditError> {
    let mut buf = Vec::new();
    let mut last = Vec::new();
    for (i, (first_seq, path)) in segments.iter().enumerate().rev() {
        let after_seq = first_seq.saturating_sub(1);
        let is_last = i + 1 == segments.len();
        let mut reader = LineReader::open(path)?;
        let mut complete_end = 0u64;
        let mut found = false;
        loop {
            let start = reader.offset;
            match reader.next_line(&mut buf)? {
                None => break,
                Some(Line::Complete) => {
                    std::mem::swap(&mut last, &mut buf);
                    complete_end = reader.offset;
                    found = true;
                }
                Some(Line::Torn) => {
                    if !is_last {
                        return Err(AuditError::Corrupt {
                            path: path.clone(),
                            after_seq,
                            reason: "segment ends in a partial line but is not the last",
                        });
                    }
                    tracing::warn!(
                        path = %path.display(),
                        keep_bytes = start,
                        torn_bytes = buf.len(),
                        "audit torn tail cut"
                    );
                    truncate(path, complete_end)?;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let corrupt = |reason| AuditError::Corrupt {
            path: path.clone(),
            after_seq,
            reason,
        };
        let raw: RawRecord<'_> =
            serde_json::from_slice(&last).map_err(|_| corrupt("last record does not parse"))?;
        let prev = decode_hash(&raw.prev_hash).ok_or_else(|| corrupt("last record prev_hash"))?;
        let hash = raw.compute_hash(&prev);
        if decode_hash(&raw.hash) != Some(hash) {
            return Err(corrupt("last record hash does not match its fields"));
        }
        return Ok(Some(Tail {
            seq: raw.seq,
            hash,
            time: parse_canonical_time(&raw.time),
        }));
    }
    Ok(None)
}
