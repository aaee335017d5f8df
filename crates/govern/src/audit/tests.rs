//! Tests of the audit chain, on real files in temporary directories.

use std::collections::BTreeSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::record::{AuditRecord, GENESIS};
use super::segments::list_segments;
use super::*;

fn config(root: &Path) -> AuditConfig {
    AuditConfig {
        dir: root.join("records"),
        checkpoint_dir: root.join("checkpoints"),
        key_file: root.join("keys").join("audit.key"),
        checkpoint_every: 1000,
        checkpoint_interval: Duration::from_secs(3600),
        segment_max_bytes: 64 * 1024 * 1024,
    }
}

fn event(i: u64) -> AuditEvent {
    let outcome = match i % 5 {
        0 => Outcome::Allowed,
        1 => Outcome::Denied,
        2 => Outcome::Unauthenticated,
        3 => Outcome::Succeeded,
        _ => Outcome::Failed,
    };
    AuditEvent::new(
        format!("token:t{}", i % 7),
        "model.promote",
        format!("models/payments/versions/{i}"),
        format!("req-{i:08}"),
        outcome,
    )
    .with_detail("stage", "canary")
    .with_detail("reason", format!("drift \"quoted\" \\ {i}"))
}

fn write_chain(cfg: &AuditConfig, n: u64) {
    let log = AuditLog::open(cfg.clone()).expect("open");
    for i in 1..=n {
        assert_eq!(log.append_blocking(event(i)).expect("append"), i);
    }
    log.close().expect("close");
}

fn check(cfg: &AuditConfig) -> VerifyReport {
    verify(
        &cfg.dir,
        &cfg.checkpoint_dir,
        &VerifyingKeyOrPath::PublicKeyFile(cfg.public_key_file()),
    )
    .expect("verify runs")
}

fn only_segment(cfg: &AuditConfig) -> PathBuf {
    let segs = list_segments(&cfg.dir).expect("list");
    assert_eq!(segs.len(), 1);
    segs[0].1.clone()
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .expect("read")
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    fs::write(path, text).expect("write");
}

fn record_at(lines: &[String], seq: u64) -> AuditRecord {
    serde_json::from_str(&lines[(seq - 1) as usize]).expect("parse record")
}

fn bad_seq(r: &VerifyReport) -> Option<u64> {
    r.first_bad.as_ref().map(|b| b.seq)
}

#[test]
fn appended_chain_verifies_reads_back_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 100);

    let r = check(&cfg);
    assert!(r.is_ok(), "{:?}", r.first_bad);
    assert_eq!(r.records_checked, 100);
    assert_eq!(r.last_seq, Some(100));
    assert_eq!(r.last_checkpoint_seq, Some(100));
    assert!(!r.torn_tail);

    let recs: Vec<AuditRecord> = read_records(&cfg.dir)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(recs.len(), 100);
    assert_eq!(recs[0].prev_hash, hex::encode(GENESIS));
    for (i, rec) in recs.iter().enumerate() {
        let i = i as u64 + 1;
        assert_eq!(rec.seq, i);
        assert_eq!(rec.request_id, format!("req-{i:08}"));
        assert_eq!(rec.outcome, event(i).outcome);
        assert_eq!(rec.compute_hash().as_deref(), Some(rec.hash.as_str()));
        if i > 1 {
            assert_eq!(rec.prev_hash, recs[i as usize - 2].hash);
            assert!(rec.time >= recs[i as usize - 2].time);
        }
    }

    // Export is byte-identical to the stored lines; `since` filters by time.
    let mut out = Vec::new();
    assert_eq!(export_jsonl(&cfg.dir, None, &mut out).unwrap(), 100);
    assert_eq!(out, fs::read(only_segment(&cfg)).unwrap());
    let mut out = Vec::new();
    let since = recs[60].time;
    let n = export_jsonl(&cfg.dir, Some(since), &mut out).unwrap();
    let expect = recs.iter().filter(|r| r.time >= since).count() as u64;
    assert_eq!(n, expect);
    assert!(n <= 40);

    // Every way of naming the key gives the same answer.
    let kf = verify(
        &cfg.dir,
        &cfg.checkpoint_dir,
        &VerifyingKeyOrPath::KeyFile(cfg.key_file.clone()),
    )
    .unwrap();
    assert_eq!(kf, r);
    let k = load_public_key(&cfg.public_key_file()).unwrap();
    assert_eq!(verify(&cfg.dir, &cfg.checkpoint_dir, &k.into()).unwrap(), r);
}

#[test]
fn key_file_is_private_and_public_key_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let log = AuditLog::open(cfg.clone()).unwrap();
    let pk = log.public_key();
    drop(log);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&cfg.key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(load_public_key(&cfg.public_key_file()).unwrap(), pk);
    assert_eq!(load_signing_key_public(&cfg.key_file).unwrap(), pk);
    // Reopening keeps the key.
    let log = AuditLog::open(cfg.clone()).unwrap();
    assert_eq!(log.public_key(), pk);
}

#[test]
fn reopen_resumes_sequence_and_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 10);
    let log = AuditLog::open(cfg.clone()).unwrap();
    for i in 11..=20 {
        assert_eq!(log.append_blocking(event(i)).unwrap(), i);
    }
    drop(log); // Drop seals like close.
    let r = check(&cfg);
    assert!(r.is_ok(), "{:?}", r.first_bad);
    assert_eq!(r.records_checked, 20);
    assert_eq!(r.last_checkpoint_seq, Some(20));
    assert_eq!(r.checkpoints_checked, 2);
}

#[test]
fn second_writer_on_same_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let _log = AuditLog::open(cfg.clone()).unwrap();
    assert!(matches!(
        AuditLog::open(cfg.clone()),
        Err(AuditError::Locked { .. })
    ));
}

#[test]
fn tamper_edit_a_field_is_found_at_its_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 50);
    let seg = only_segment(&cfg);
    let mut lines = read_lines(&seg);
    let mut rec = record_at(&lines, 20);
    rec.outcome = Outcome::Allowed;
    rec.resource = "models/other".into();
    lines[19] = serde_json::to_string(&rec).unwrap();
    write_lines(&seg, &lines);
    let r = check(&cfg);
    assert_eq!(bad_seq(&r), Some(20), "{:?}", r.first_bad);
    assert_eq!(r.first_bad.unwrap().reason, BadReason::HashMismatch);
    assert_eq!(r.records_checked, 19);
}

#[test]
fn tamper_edit_with_rehashed_chain_is_found_at_next_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_every = 10;
    write_chain(&cfg, 50);
    let seg = only_segment(&cfg);
    let mut lines = read_lines(&seg);
    // Edit record 25 and rehash everything after it: the chain links, checkpoints don't.
    let mut prev = record_at(&lines, 24).hash;
    for seq in 25..=50 {
        let mut rec = record_at(&lines, seq);
        if seq == 25 {
            rec.principal = "token:someone-else".into();
        }
        rec.prev_hash = prev.clone();
        rec.hash = rec.compute_hash().unwrap();
        prev = rec.hash.clone();
        lines[seq as usize - 1] = serde_json::to_string(&rec).unwrap();
    }
    write_lines(&seg, &lines);
    let r = check(&cfg);
    let bad = r.first_bad.clone().unwrap();
    assert_eq!(bad.seq, 30);
    assert_eq!(bad.reason, BadReason::CheckpointMismatch { since: 20 });
}

#[test]
fn tamper_delete_a_record_is_found_at_its_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 50);
    let seg = only_segment(&cfg);
    let mut lines = read_lines(&seg);
    lines.remove(19);
    write_lines(&seg, &lines);
    let r = check(&cfg);
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 20);
    assert_eq!(bad.reason, BadReason::Missing { found: 21 });
}

#[test]
fn tamper_insert_a_forged_record_is_found_at_its_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 50);
    let seg = only_segment(&cfg);
    let original = read_lines(&seg);

    // A well-forged record: right seq, linked to record 19, correct own hash.
    let mut forged = record_at(&original, 20);
    forged.principal = "token:attacker".into();
    forged.outcome = Outcome::Allowed;
    forged.prev_hash = record_at(&original, 19).hash;
    forged.hash = forged.compute_hash().unwrap();
    let mut lines = original.clone();
    lines.insert(19, serde_json::to_string(&forged).unwrap());
    write_lines(&seg, &lines);
    let r = check(&cfg);
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 20, "{bad}");
    assert_eq!(bad.reason, BadReason::OutOfOrder { found: 20 });

    // A forged record with the next seq number pushed in front of the real one.
    let mut forged = record_at(&original, 20);
    forged.seq = 21;
    forged.hash = forged.compute_hash().unwrap();
    let mut lines = original.clone();
    lines.insert(19, serde_json::to_string(&forged).unwrap());
    write_lines(&seg, &lines);
    assert_eq!(bad_seq(&check(&cfg)), Some(20));
}

#[test]
fn tamper_reorder_two_records_is_found_at_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 50);
    let seg = only_segment(&cfg);
    let mut lines = read_lines(&seg);
    lines.swap(19, 20);
    write_lines(&seg, &lines);
    let r = check(&cfg);
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 20);
    assert_eq!(bad.reason, BadReason::Missing { found: 21 });
}

#[test]
fn tamper_non_canonical_spelling_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 30);
    let seg = only_segment(&cfg);
    let mut lines = read_lines(&seg);
    lines[11] = lines[11].replacen("\"seq\":12,", "\"seq\": 12,", 1);
    write_lines(&seg, &lines);
    let r = check(&cfg);
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 12);
    assert_eq!(bad.reason, BadReason::NotCanonical);
}

#[test]
fn truncation_behind_the_last_checkpoint_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_every = 10;
    write_chain(&cfg, 50);
    let seg = only_segment(&cfg);
    let lines = read_lines(&seg);
    write_lines(&seg, &lines[..45]);
    let r = check(&cfg);
    let bad = r.first_bad.clone().unwrap();
    assert_eq!(bad.seq, 46);
    assert_eq!(
        bad.reason,
        BadReason::Truncated {
            last_seq: 45,
            checkpoint_seq: 50
        }
    );
    assert_eq!(r.records_checked, 45);
    // Reopening would reuse sealed sequence numbers: refused.
    assert!(matches!(
        AuditLog::open(cfg.clone()),
        Err(AuditError::BehindCheckpoint {
            last_seq: 45,
            checkpoint_seq: 50
        })
    ));

    // Cut back to nothing at all: seq 1 is the first missing.
    write_lines(&seg, &[]);
    assert_eq!(bad_seq(&check(&cfg)), Some(1));
    fs::remove_file(&seg).unwrap();
    assert_eq!(bad_seq(&check(&cfg)), Some(1));
}

#[test]
fn deleted_middle_segment_is_found_at_its_first_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.segment_max_bytes = 4 * 1024;
    cfg.checkpoint_every = 25;
    write_chain(&cfg, 200);
    let segs = list_segments(&cfg.dir).unwrap();
    assert!(segs.len() >= 4, "{} segments", segs.len());
    let r = check(&cfg);
    assert!(r.is_ok(), "{:?}", r.first_bad);
    assert_eq!(r.records_checked, 200);
    assert_eq!(r.segments, segs.len() as u64);

    // Across a segment boundary: the first record of a segment edited, then deleted.
    let (first, path) = segs[1].clone();
    let original = read_lines(&path);
    let mut lines = original.clone();
    lines[0] = lines[0].replace("model.promote", "model.demote");
    write_lines(&path, &lines);
    assert_eq!(bad_seq(&check(&cfg)), Some(first));
    write_lines(&path, &original[1..]);
    let bad = check(&cfg).first_bad.unwrap();
    assert_eq!(bad.seq, first);
    assert_eq!(bad.reason, BadReason::Missing { found: first + 1 });
    // Its last record moved to the head of the next segment: a reorder across files.
    let (next_first, next_path) = segs[2].clone();
    let mut moved = original.clone();
    let tail = moved.pop().unwrap();
    write_lines(&path, &moved);
    let mut next = read_lines(&next_path);
    next.insert(0, tail);
    write_lines(&next_path, &next);
    let r = check(&cfg);
    assert!(
        r.is_ok(),
        "a record moved between files is still in order: {r:?}"
    );
    next.remove(0);
    write_lines(&next_path, &next);
    assert_eq!(bad_seq(&check(&cfg)), Some(next_first - 1));
    write_lines(&path, &original);
    assert!(check(&cfg).is_ok());

    let (first, path) = segs[2].clone();
    fs::remove_file(&path).unwrap();
    let r = check(&cfg);
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, first);
    assert!(matches!(bad.reason, BadReason::Missing { .. }));

    // The last segment deleted: only the checkpoint shows it.
    let tmp2 = tempfile::tempdir().unwrap();
    let mut cfg2 = config(tmp2.path());
    cfg2.segment_max_bytes = 4 * 1024;
    write_chain(&cfg2, 200);
    let segs = list_segments(&cfg2.dir).unwrap();
    let (first, path) = segs.last().unwrap().clone();
    fs::remove_file(path).unwrap();
    let bad = check(&cfg2).first_bad.unwrap();
    assert_eq!(bad.seq, first);
    assert!(matches!(bad.reason, BadReason::Truncated { .. }));
}

#[test]
fn forged_checkpoint_signature_is_found_at_its_seq() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_every = 10;
    write_chain(&cfg, 30);
    let cp_path = cfg.checkpoint_dir.join(CHECKPOINT_FILE);
    let original = read_lines(&cp_path);
    assert_eq!(original.len(), 3);

    // Flip one hex digit of the signature of the checkpoint at 20.
    let mut cp: Checkpoint = serde_json::from_str(&original[1]).unwrap();
    assert_eq!(cp.seq, 20);
    let flipped = if cp.signature.starts_with('0') {
        "1"
    } else {
        "0"
    };
    cp.signature.replace_range(0..1, flipped);
    let mut lines = original.clone();
    lines[1] = serde_json::to_string(&cp).unwrap();
    write_lines(&cp_path, &lines);
    let bad = check(&cfg).first_bad.unwrap();
    assert_eq!(bad.seq, 20);
    assert_eq!(bad.reason, BadReason::CheckpointSignature);

    // A checkpoint re-pointed at another hash keeps its old signature: found too.
    let mut cp: Checkpoint = serde_json::from_str(&original[1]).unwrap();
    cp.hash = "ab".repeat(32);
    let mut lines = original.clone();
    lines[1] = serde_json::to_string(&cp).unwrap();
    write_lines(&cp_path, &lines);
    assert_eq!(bad_seq(&check(&cfg)), Some(20));

    // A checkpoint signed by another key (a full forgery) is not trusted.
    let other = tempfile::tempdir().unwrap();
    let mut ocfg = config(other.path());
    ocfg.checkpoint_every = 10;
    write_chain(&ocfg, 20);
    let foreign = read_lines(&ocfg.checkpoint_dir.join(CHECKPOINT_FILE));
    let mut lines = original.clone();
    lines[1] = foreign[1].clone();
    write_lines(&cp_path, &lines);
    let bad = check(&cfg).first_bad.unwrap();
    assert_eq!(bad.seq, 20);
    assert_eq!(bad.reason, BadReason::CheckpointSignature);

    // Verifying with the wrong public key fails every checkpoint; the first is named.
    write_lines(&cp_path, &original);
    let r = verify(
        &cfg.dir,
        &cfg.checkpoint_dir,
        &VerifyingKeyOrPath::PublicKeyFile(ocfg.public_key_file()),
    )
    .unwrap();
    assert_eq!(bad_seq(&r), Some(10));
    assert!(check(&cfg).is_ok());
}

#[test]
fn torn_tail_is_not_tampering_and_open_repairs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 20);
    let seg = only_segment(&cfg);
    let good_len = fs::metadata(&seg).unwrap().len();
    // A crash cut the 21st record's line short (never acknowledged: no fsync returned).
    let lines = read_lines(&seg);
    let mut next = record_at(&lines, 20);
    next.seq = 21;
    let partial = serde_json::to_string(&next).unwrap();
    fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&partial.as_bytes()[..partial.len() / 2])
        .unwrap();
    // And a torn checkpoint line too.
    let cp_path = cfg.checkpoint_dir.join(CHECKPOINT_FILE);
    let cp_good_len = fs::metadata(&cp_path).unwrap().len();
    fs::OpenOptions::new()
        .append(true)
        .open(&cp_path)
        .unwrap()
        .write_all(b"{\"seq\":21,\"ha")
        .unwrap();

    let r = check(&cfg);
    assert!(r.is_ok(), "{:?}", r.first_bad);
    assert!(r.torn_tail);
    assert_eq!(r.records_checked, 20);
    assert_eq!(read_records(&cfg.dir).unwrap().count(), 20);

    let log = AuditLog::open(cfg.clone()).unwrap();
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len);
    assert_eq!(fs::metadata(&cp_path).unwrap().len(), cp_good_len);
    assert_eq!(log.append_blocking(event(21)).unwrap(), 21);
    log.close().unwrap();
    let r = check(&cfg);
    assert!(r.is_ok() && !r.torn_tail, "{r:?}");
    assert_eq!(r.records_checked, 21);
}

#[test]
fn complete_garbage_final_line_is_tampering_not_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    write_chain(&cfg, 20);
    let seg = only_segment(&cfg);
    fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(b"{\"seq\":21,\"garbage\":true}\n")
        .unwrap();
    let r = check(&cfg);
    assert!(!r.torn_tail);
    let bad = r.first_bad.unwrap();
    assert_eq!(bad.seq, 21);
    assert_eq!(bad.reason, BadReason::Unreadable);
    assert!(matches!(
        AuditLog::open(cfg.clone()),
        Err(AuditError::Corrupt { .. })
    ));
}

#[test]
fn credentials_never_reach_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let log = AuditLog::open(cfg.clone()).unwrap();
    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    let ev = AuditEvent::new(
        "oidc:alice",
        "token.create",
        "tokens/t1",
        "req-1",
        Outcome::Allowed,
    )
    .with_detail("token", "fsh_SECRET_VALUE_1")
    .with_detail("Authorization", "Bearer fsh_SECRET_VALUE_2")
    .with_detail("client_secret", "SECRET_VALUE_3")
    .with_detail("note", jwt)
    .with_detail("header", "bearer SECRET_VALUE_4")
    .with_detail("version", "v7");
    log.append_blocking(ev).unwrap();
    log.close().unwrap();
    let text = fs::read_to_string(only_segment(&cfg)).unwrap();
    for secret in ["SECRET_VALUE", jwt] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    let rec = read_records(&cfg.dir).unwrap().next().unwrap().unwrap();
    assert_eq!(rec.detail["token"], REDACTED);
    assert_eq!(rec.detail["note"], REDACTED);
    assert_eq!(rec.detail["version"], "v7");
    assert!(check(&cfg).is_ok());
}

#[test]
fn oversized_event_is_rejected_without_echoing_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let log = AuditLog::open(cfg).unwrap();
    let big = "x".repeat(log::MAX_FIELD_BYTES + 1);
    let err = log
        .append_blocking(AuditEvent::new("p", "a", big, "r", Outcome::Allowed))
        .unwrap_err();
    assert!(matches!(
        err,
        AuditError::InvalidEvent {
            field: "resource",
            ..
        }
    ));
    assert!(!err.to_string().contains("xxx"));
}

#[test]
fn checkpoints_follow_count_interval_and_close() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_every = 10;
    cfg.checkpoint_interval = Duration::from_millis(100);
    let cp_path = cfg.checkpoint_dir.join(CHECKPOINT_FILE);
    let log = AuditLog::open(cfg.clone()).unwrap();
    for i in 1..=25 {
        log.append_blocking(event(i)).unwrap();
    }
    let seqs = |p: &Path| -> Vec<u64> {
        read_lines(p)
            .iter()
            .map(|l| serde_json::from_str::<Checkpoint>(l).unwrap().seq)
            .collect()
    };
    let counted = seqs(&cp_path);
    assert!(counted.starts_with(&[10, 20]), "{counted:?}");
    // The interval seals the remaining 5 without any further append.
    let deadline = Instant::now() + Duration::from_secs(5);
    while seqs(&cp_path).last() != Some(&25) {
        assert!(Instant::now() < deadline, "interval checkpoint never came");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(log.checkpoint_now().unwrap(), None);
    log.append_blocking(event(26)).unwrap();
    let cp = log.checkpoint_now().unwrap().unwrap();
    assert_eq!(cp.seq, 26);
    assert_eq!(cp.key_id, log.key_id());
    log.append_blocking(event(27)).unwrap();
    let clone = log.clone();
    assert_eq!(log.close().unwrap().map(|c| c.seq), Some(27));
    assert!(matches!(
        clone.append_blocking(event(28)),
        Err(AuditError::Closed)
    ));
    assert_eq!(check(&cfg).last_checkpoint_seq, Some(27));
}

#[test]
fn concurrent_async_appends_get_unique_sequence_numbers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.checkpoint_every = 100;
    cfg.segment_max_bytes = 32 * 1024;
    let log = AuditLog::open(cfg.clone()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let seqs = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..50u64 {
                    got.push(log.append(event(t * 1000 + i)).await.unwrap());
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let set: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(set.len(), 800);
    assert_eq!(set.first(), Some(&1));
    assert_eq!(set.last(), Some(&800));
    drop(log);
    let r = check(&cfg);
    assert!(r.is_ok(), "{:?}", r.first_bad);
    assert_eq!(r.records_checked, 800);
    assert!(r.segments > 1);
}

const CRASH_CHILD_ENV: &str = "FRESHET_AUDIT_CRASH_CHILD_DIR";

/// The child half: append from 8 threads forever, printing each acknowledged seq.
fn crash_child(root: &Path) -> ! {
    let mut cfg = config(root);
    cfg.checkpoint_every = 100;
    cfg.segment_max_bytes = 256 * 1024;
    let log = AuditLog::open(cfg).expect("child open");
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let mut handles = Vec::new();
    for t in 0..8u64 {
        let log = log.clone();
        let out = out.clone();
        handles.push(std::thread::spawn(move || {
            for i in 0.. {
                let seq = log
                    .append_blocking(event(t * 1_000_000 + i))
                    .expect("append");
                let mut o = out.lock().expect("stdout");
                writeln!(o, "ack {seq}").expect("print");
                o.flush().expect("flush");
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    std::process::exit(0)
}

#[test]
#[cfg(unix)]
fn crash_during_appends_loses_no_acknowledged_record() {
    if let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) {
        crash_child(Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path());
    let test_name = "audit::tests::crash_during_appends_loses_no_acknowledged_record";
    let mut acked = BTreeSet::new();
    for round in 0..3u64 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env(CRASH_CHILD_ENV, tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let pid = child.id() as libc::pid_t;
        let target = (round + 1) * 2000 + (round * 337) % 500;
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut killed = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line
                    .strip_prefix("ack ")
                    .and_then(|n| n.parse::<u64>().ok())
                {
                    seen.push(n);
                }
                if !killed && seen.len() as u64 >= target / 3 {
                    // SAFETY: signalling our own child process by its pid.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    killed = true;
                }
            }
            seen
        });
        // Kill after a time limit too, whatever was acknowledged by then.
        let start = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if start.elapsed() > Duration::from_secs(20) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = child.wait().unwrap();
        assert!(!status.success(), "child ended by itself: {status:?}");
        let seen = reader.join().unwrap();
        assert!(
            !seen.is_empty(),
            "child acknowledged nothing in round {round}"
        );
        acked.extend(seen);

        // What the examiner sees before any repair: no bad seq (maybe a torn tail).
        let r = check(&cfg);
        assert!(r.is_ok(), "round {round}: {:?}", r.first_bad);
        // Reopen (repairing a torn tail), then every acknowledged seq is present.
        let log = AuditLog::open(cfg.clone()).unwrap();
        let present: BTreeSet<u64> = read_records(&cfg.dir)
            .unwrap()
            .map(|r| r.unwrap().seq)
            .collect();
        let missing: Vec<_> = acked.difference(&present).take(5).collect();
        assert!(
            missing.is_empty(),
            "round {round}: lost acknowledged {missing:?}"
        );
        drop(log);
        let r = check(&cfg);
        assert!(r.is_ok() && !r.torn_tail, "round {round}: {r:?}");
        eprintln!(
            "crash round {round}: {} acknowledged so far, chain at {:?}",
            acked.len(),
            r.last_seq
        );
    }
}

/// `cargo test -p freshet-govern audit_bench -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: 1,000,000 records, run by hand"]
fn audit_bench() {
    let tmp = tempfile::tempdir_in(
        std::env::var_os("AUDIT_BENCH_DIR").unwrap_or_else(|| std::env::temp_dir().into()),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();

    // Append throughput with 1, 8 and 64 concurrent appenders.
    for (appenders, per) in [(1u64, 2_000u64), (8, 2_000), (64, 1_000)] {
        let dir = tmp.path().join(format!("tp{appenders}"));
        let mut cfg = config(&dir);
        cfg.checkpoint_every = 10_000;
        let log = AuditLog::open(cfg).unwrap();
        let n = appenders * per;
        let start = Instant::now();
        rt.block_on(workload::append_concurrently(&log, appenders, n))
            .unwrap();
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "append: {appenders:>2} appenders, {n} records in {secs:.2} s = {:.0} records/s, {:.1} us/record/appender",
            n as f64 / secs,
            secs * 1e6 / per as f64
        );
    }

    // 1,000,000 records through the real writer (256 appenders), then verify.
    let cfg = config(&tmp.path().join("million"));
    let log = AuditLog::open(cfg.clone()).unwrap();
    let start = Instant::now();
    rt.block_on(workload::append_concurrently(&log, 256, 1_000_000))
        .unwrap();
    let write_secs = start.elapsed().as_secs_f64();
    log.close().unwrap();
    let bytes: u64 = list_segments(&cfg.dir)
        .unwrap()
        .iter()
        .map(|(_, p)| fs::metadata(p).unwrap().len())
        .sum();
    let start = Instant::now();
    let r = check(&cfg);
    let verify_secs = start.elapsed().as_secs_f64();
    assert!(r.is_ok(), "{:?}", r.first_bad);
    eprintln!(
        "million: wrote {} records ({:.0} MB, {} segments, {} checkpoints) in {write_secs:.1} s; verify {verify_secs:.2} s ({:.0} records/s)",
        r.records_checked,
        bytes as f64 / 1e6,
        r.segments,
        r.checkpoints_checked,
        r.records_checked as f64 / verify_secs
    );
    assert!(r.records_checked >= 1_000_000);
    assert!(verify_secs <= 10.0, "verify took {verify_secs:.2} s");
}
