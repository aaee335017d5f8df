//! `verify`: walks every segment and checkpoint and names the first bad sequence number.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ed25519_dalek::{Signature, Verifier, VerifyingKey};

use super::AuditError;
use super::keys::{key_id, load_public_key, load_signing_key_public};
use super::read::read_checkpoint_file;
use super::record::{
    GENESIS, RawRecord, checkpoint_bytes, decode_hash, format_time, parse_canonical_time,
};
use super::segments::{Line, LineReader, list_segments};

/// The key that checks checkpoint signatures.
#[derive(Clone, Debug)]
pub enum VerifyingKeyOrPath {
    /// A public key in hand.
    Key(VerifyingKey),
    /// A public key file (`audit.pub`, 64 hex digits): what an examiner uses.
    PublicKeyFile(PathBuf),
    /// The signing key file; the public key is derived from it.
    KeyFile(PathBuf),
}

impl VerifyingKeyOrPath {
    pub fn resolve(&self) -> Result<VerifyingKey, AuditError> {
        match self {
            VerifyingKeyOrPath::Key(k) => Ok(*k),
            VerifyingKeyOrPath::PublicKeyFile(p) => load_public_key(p),
            VerifyingKeyOrPath::KeyFile(p) => load_signing_key_public(p),
        }
    }
}

impl From<VerifyingKey> for VerifyingKeyOrPath {
    fn from(k: VerifyingKey) -> Self {
        VerifyingKeyOrPath::Key(k)
    }
}

/// Why a sequence number is bad.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BadReason {
    /// A complete line that is not a record (or a partial line inside the chain).
    Unreadable,
    /// The record is not spelled canonically (whitespace, field order, time format…).
    NotCanonical,
    /// A record is missing here: the next one found carries `found`.
    Missing { found: u64 },
    /// A record with an earlier sequence number (`found`) appears here: inserted, replayed
    /// or reordered.
    OutOfOrder { found: u64 },
    /// `prev_hash` does not match the previous record's hash.
    PrevHashMismatch,
    /// `hash` does not match the record's fields.
    HashMismatch,
    /// The chain is internally consistent but differs from a signed checkpoint at this seq:
    /// records after `since` were rewritten.
    CheckpointMismatch { since: u64 },
    /// The chain ends at `last_seq`, before a signed checkpoint at `checkpoint_seq`.
    Truncated { last_seq: u64, checkpoint_seq: u64 },
    /// A checkpoint's signature does not verify (or it names another key).
    CheckpointSignature,
    /// A checkpoint line that does not parse.
    CheckpointUnreadable,
    /// A checkpoint whose seq does not follow the previous checkpoint's.
    CheckpointOutOfOrder,
}

impl std::fmt::Display for BadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadReason::Unreadable => write!(f, "record unreadable"),
            BadReason::NotCanonical => write!(f, "record not in canonical form"),
            BadReason::Missing { found } => write!(f, "record missing (next found is {found})"),
            BadReason::OutOfOrder { found } => {
                write!(f, "record out of order or inserted (found seq {found})")
            }
            BadReason::PrevHashMismatch => {
                write!(f, "prev_hash does not link to the previous record")
            }
            BadReason::HashMismatch => write!(f, "hash does not match the record"),
            BadReason::CheckpointMismatch { since } => write!(
                f,
                "hash differs from the signed checkpoint (records after seq {since} rewritten)"
            ),
            BadReason::Truncated {
                last_seq,
                checkpoint_seq,
            } => write!(
                f,
                "chain ends at seq {last_seq} behind the signed checkpoint at seq {checkpoint_seq}"
            ),
            BadReason::CheckpointSignature => write!(f, "checkpoint signature invalid"),
            BadReason::CheckpointUnreadable => write!(f, "checkpoint line unreadable"),
            BadReason::CheckpointOutOfOrder => write!(f, "checkpoint out of order"),
        }
    }
}

/// The first bad sequence number and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    pub seq: u64,
    pub reason: BadReason,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "seq {}: {}", self.seq, self.reason)
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records that passed every check, from seq 1 on.
    pub records_checked: u64,
    /// The last good record's seq (`None` for an empty chain or a bad first record).
    pub last_seq: Option<u64>,
    /// Segment files walked.
    pub segments: u64,
    /// Checkpoints whose signature verified.
    pub checkpoints_checked: u64,
    /// The newest checkpoint whose signature verified.
    pub last_checkpoint_seq: Option<u64>,
    /// The lowest bad sequence number found, if any.
    pub first_bad: Option<Bad>,
    /// The last segment (or the checkpoint file) ends in a partial line: an unacknowledged
    /// write cut by a crash, not tampering. `AuditLog::open` cuts it off.
    pub torn_tail: bool,
}

impl VerifyReport {
    /// No bad sequence number (a torn tail is allowed).
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }

    fn note(&mut self, seq: u64, reason: BadReason) {
        if self.first_bad.as_ref().is_none_or(|b| seq < b.seq) {
            self.first_bad = Some(Bad { seq, reason });
        }
    }
}

/// Verifies the chain in `records_dir` against the checkpoints in `checkpoint_dir`.
///
/// `Err` only for I/O and key problems; everything wrong with the chain itself is in
/// `VerifyReport::first_bad`.
pub fn verify(
    records_dir: &Path,
    checkpoint_dir: &Path,
    public_key: &VerifyingKeyOrPath,
) -> Result<VerifyReport, AuditError> {
    let key = public_key.resolve()?;
    let kid = key_id(&key);
    let mut report = VerifyReport::default();

    // Checkpoints first: the signed (seq, hash) pairs the chain must meet.
    let cps = read_checkpoint_file(checkpoint_dir)?;
    report.torn_tail |= cps.torn;
    let mut sealed: Vec<(u64, [u8; 32])> = Vec::new();
    let mut prev_cp = 0u64;
    for line in &cps.lines {
        let Ok(cp) = line else {
            report.note(prev_cp + 1, BadReason::CheckpointUnreadable);
            continue;
        };
        let sig_ok = cp.key_id == kid
            && checkpoint_bytes(cp.seq, &cp.hash, &format_time(&cp.time), &cp.key_id)
                .zip(decode_sig(&cp.signature))
                .is_some_and(|(bytes, sig)| key.verify(&bytes, &sig).is_ok());
        if !sig_ok {
            report.note(cp.seq, BadReason::CheckpointSignature);
            continue;
        }
        if cp.seq <= prev_cp {
            report.note(cp.seq, BadReason::CheckpointOutOfOrder);
            continue;
        }
        let Some(hash) = decode_hash(&cp.hash) else {
            report.note(cp.seq, BadReason::CheckpointSignature);
            continue;
        };
        sealed.push((cp.seq, hash));
        prev_cp = cp.seq;
        report.checkpoints_checked += 1;
        report.last_checkpoint_seq = Some(cp.seq);
    }

    // Records: segments are checked on their own in parallel (each from its first
    // record's seq and prev_hash), then stitched in order.
    let segments = list_segments(records_dir)?;
    let outcomes = check_segments(&segments, &sealed);
    let mut expected = 1u64;
    let mut prev = GENESIS;
    let mut broken = false;
    for outcome in outcomes {
        let out = outcome?;
        report.segments += 1;
        report.torn_tail |= out.torn;
        if let Some((first_seq, first_prev)) = out.first {
            if let Err(b) = check_seq(first_seq, expected) {
                report.note(b.seq, b.reason);
                broken = true;
                break;
            }
            if first_prev != prev {
                report.note(first_seq, BadReason::PrevHashMismatch);
                broken = true;
                break;
            }
        }
        report.records_checked += out.good;
        match out.bad {
            Some(LocalBad::At(b)) => {
                report.note(b.seq, b.reason);
                expected += out.good;
                broken = true;
                break;
            }
            Some(LocalBad::BeforeFirst(reason)) => {
                report.note(expected, reason);
                broken = true;
                break;
            }
            None => {}
        }
        if let Some((seq, hash)) = out.last {
            expected = seq + 1;
            prev = hash;
        }
    }
    let last = expected - 1;
    report.last_seq = (last > 0).then_some(last);
    if !broken && let Some((cp_seq, _)) = sealed.iter().rev().find(|(s, _)| *s > last) {
        report.note(
            last + 1,
            BadReason::Truncated {
                last_seq: last,
                checkpoint_seq: *cp_seq,
            },
        );
    }
    tracing::info!(
        records = report.records_checked,
        checkpoints = report.checkpoints_checked,
        first_bad = report.first_bad.as_ref().map(|b| b.seq),
        torn_tail = report.torn_tail,
        "audit verify done"
    );
    Ok(report)
}

/// A bad record found inside one segment.
enum LocalBad {
    At(Bad),
    /// The segment's first line is bad: its seq is whatever the stitch expects there.
    BeforeFirst(BadReason),
}

/// What one segment holds, checked on its own.
struct SegmentOutcome {
    /// The first record's seq and prev_hash (for the stitch).
    first: Option<(u64, [u8; 32])>,
    /// The last good record's seq and hash.
    last: Option<(u64, [u8; 32])>,
    /// Good records, counted from the first.
    good: u64,
    bad: Option<LocalBad>,
    torn: bool,
}

/// Checks every segment, on up to as many threads as there are cores, results in order.
fn check_segments(
    segments: &[(u64, PathBuf)],
    sealed: &[(u64, [u8; 32])],
) -> Vec<Result<SegmentOutcome, AuditError>> {
    let n = segments.len();
    let workers = std::thread::available_parallelism()
        .map(|w| w.get())
        .unwrap_or(1)
        .min(n);
    if workers <= 1 {
        return segments
            .iter()
            .enumerate()
            .map(|(i, (_, p))| check_segment(p, i + 1 == n, sealed))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<SegmentOutcome, AuditError>>>> =
        (0..n).map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let r = check_segment(&segments[i].1, i + 1 == n, sealed);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(segments)
        .map(|(slot, (_, path))| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(AuditError::Corrupt {
                    path: path.clone(),
                    after_seq: 0,
                    reason: "segment check did not finish",
                })
            })
        })
        .collect()
}

fn check_segment(
    path: &Path,
    is_last: bool,
    sealed: &[(u64, [u8; 32])],
) -> Result<SegmentOutcome, AuditError> {
    let mut out = SegmentOutcome {
        first: None,
        last: None,
        good: 0,
        bad: None,
        torn: false,
    };
    let mut reader = LineReader::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    let mut canon = Vec::with_capacity(4096);
    let mut expected = 0u64;
    let mut prev = GENESIS;
    let mut seal = 0usize;
    let local_bad = |out: &SegmentOutcome, expected: u64, reason: BadReason| {
        if out.first.is_none() {
            LocalBad::BeforeFirst(reason)
        } else {
            LocalBad::At(Bad {
                seq: expected,
                reason,
            })
        }
    };
    while let Some(kind) = reader.next_line(&mut buf)? {
        if kind == Line::Torn {
            if is_last {
                out.torn = true;
            } else {
                out.bad = Some(local_bad(&out, expected, BadReason::Unreadable));
            }
            break;
        }
        if out.first.is_none() {
            // The segment's own start: taken on trust here, checked by the stitch.
            let Ok(raw) = serde_json::from_slice::<RawRecord<'_>>(&buf) else {
                out.bad = Some(LocalBad::BeforeFirst(BadReason::Unreadable));
                break;
            };
            let Some(p) = decode_hash(&raw.prev_hash) else {
                out.bad = Some(LocalBad::BeforeFirst(BadReason::PrevHashMismatch));
                break;
            };
            expected = raw.seq;
            prev = p;
            out.first = Some((raw.seq, p));
            seal = sealed.partition_point(|(s, _)| *s < raw.seq);
        }
        let (seq, hash) = match check_line(&buf, &mut canon, expected, &prev) {
            Ok(v) => v,
            Err(b) => {
                out.bad = Some(LocalBad::At(b));
                break;
            }
        };
        if let Some((s, h)) = sealed.get(seal)
            && *s == seq
        {
            if *h != hash {
                let since = seal.checked_sub(1).map_or(0, |i| sealed[i].0);
                out.bad = Some(LocalBad::At(Bad {
                    seq,
                    reason: BadReason::CheckpointMismatch { since },
                }));
                break;
            }
            seal += 1;
        }
        prev = hash;
        out.last = Some((seq, hash));
        out.good += 1;
        expected += 1;
    }
    Ok(out)
}

/// A record carrying `found` where `expected` belongs.
fn check_seq(found: u64, expected: u64) -> Result<(), Bad> {
    if found > expected {
        return Err(Bad {
            seq: expected,
            reason: BadReason::Missing { found },
        });
    }
    if found < expected {
        // A second record under the previous seq: one of the two was inserted, and the
        // previous seq is the first bad one. Anything older is out of place right here.
        let at = if found + 1 == expected && found >= 1 {
            found
        } else {
            expected
        };
        return Err(Bad {
            seq: at,
            reason: BadReason::OutOfOrder { found },
        });
    }
    Ok(())
}

fn decode_sig(s: &str) -> Option<Signature> {
    let mut out = [0u8; 64];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(Signature::from_bytes(&out))
}

/// Checks one complete line against the expected seq and previous hash; returns the seq
/// and the record's hash.
fn check_line(
    line: &[u8],
    canon: &mut Vec<u8>,
    expected: u64,
    prev: &[u8; 32],
) -> Result<(u64, [u8; 32]), Bad> {
    let bad = |seq, reason| Bad { seq, reason };
    let raw: RawRecord<'_> =
        serde_json::from_slice(line).map_err(|_| bad(expected, BadReason::Unreadable))?;
    check_seq(raw.seq, expected)?;
    let seq = raw.seq;
    if decode_hash(&raw.prev_hash).as_ref() != Some(prev) {
        return Err(bad(seq, BadReason::PrevHashMismatch));
    }
    let hash = raw.compute_hash(prev);
    if decode_hash(&raw.hash) != Some(hash) {
        return Err(bad(seq, BadReason::HashMismatch));
    }
    canon.clear();
    if serde_json::to_writer(&mut *canon, &raw).is_err()
        || canon.as_slice() != line
        || parse_canonical_time(&raw.time).is_none()
    {
        return Err(bad(seq, BadReason::NotCanonical));
    }
    Ok((seq, hash))
}
