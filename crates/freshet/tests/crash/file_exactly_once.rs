//! `freshet ingest` killed partway (SIGKILL) several times, then run to completion:
//! every line of the file is in the table exactly once.

use crate::harness::{Env, seed, tail, terminate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

const STREAMS: &str = r#"streams:
  lines:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true }
        - { name: n, type: int, required: true }
        - { name: score, type: float }
        - { name: text, type: string }
    # One 4 MiB file chunk per commit, so that a run is made of many commits.
    commit: { max_rows: 20000 }
"#;
const TABLE: &str = "events/lines";

fn text_for(i: u64) -> String {
    // ~100 bytes of varied text so that the file spans many 4 MiB chunks.
    format!(
        "line {i} of the crash test; the quick brown fox jumps over the lazy dog {:016x}",
        i.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
}

fn write_ndjson(path: &std::path::Path, lines: u64) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..lines {
        writeln!(
            w,
            "{{\"id\":\"l{i:08}\",\"n\":{i},\"score\":{}.25,\"text\":\"{}\"}}",
            i % 977,
            text_for(i)
        )
        .unwrap();
    }
    w.flush().unwrap();
}

fn write_csv(path: &std::path::Path, lines: u64) {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(w, "id,n,score,text").unwrap();
    for i in 0..lines {
        writeln!(w, "l{i:08},{i},{}.25,\"{}\"", i % 977, text_for(i)).unwrap();
    }
    w.flush().unwrap();
}

/// No duplicates; with `expect_all`, exactly ids 0..lines.
fn check(env: &Env, lines: u64, expect_all: bool) -> usize {
    let info = env
        .table_info(TABLE)
        .unwrap_or_else(|e| panic!("{TABLE} unreadable after a kill: {e}"));
    let ids = env.read_strings(TABLE, "id").expect("read ids");
    assert_eq!(info.rows as usize, ids.len());
    let mut seen = HashSet::with_capacity(ids.len());
    for i in &ids {
        let i = i.as_deref().expect("id is never null");
        assert!(seen.insert(i.to_string()), "duplicate line {i}");
    }
    if expect_all {
        assert_eq!(ids.len() as u64, lines, "rows == lines of the file");
        for i in 0..lines {
            assert!(seen.contains(&format!("l{i:08}")), "line {i} is missing");
        }
    }
    ids.len()
}

fn kill_and_resume(test: &str, file_name: &str, lines: u64, kills: usize) {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed(test));
    let env = Env::new("", STREAMS);
    let file = env.dir.path().join(file_name);
    if file_name.ends_with(".csv") {
        write_csv(&file, lines);
    } else {
        write_ndjson(&file, lines);
    }
    let file_arg = file.to_str().unwrap();
    let args = ["ingest", "lines", file_arg, "--quiet"];
    let mut partway = 0;
    let mut rows_after = Vec::new();
    for _ in 0..kills {
        let before = env.log_version(TABLE).max(0);
        let mut child = env.command("ingest.log", &args).spawn().expect("spawn");
        // Kill once a new data commit exists, after a random 0–150 ms so that some kills
        // land in the middle of the next commit.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut kill_at = None;
        let exited = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            let now = Instant::now();
            assert!(now < deadline, "no commit within 60 s");
            if kill_at.is_none() && env.log_version(TABLE) > before {
                kill_at = Some(now + Duration::from_millis(rng.random_range(0..150)));
            }
            if kill_at.is_some_and(|t| now >= t) {
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        match exited {
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                partway += 1;
            }
            Some(st) => assert!(
                st.success(),
                "ingest failed: {st}\n{}",
                tail(&env.data.join("ingest.log"))
            ),
        }
        rows_after.push(check(&env, lines, false));
    }
    // The final run completes and reports the resume.
    let mut child = env.command("ingest.log", &args).spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            terminate(&mut child, Duration::from_secs(10));
            panic!("the final ingest did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(env.data.join("ingest.log")).unwrap();
    assert!(status.success(), "final ingest failed: {status}\n{log}");
    assert!(
        partway >= kills,
        "only {partway} of {kills} runs were killed partway (the file went in too fast); rows after each: {rows_after:?}"
    );
    assert!(
        log.contains("resumed at byte"),
        "no resume reported:\n{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    check(&env, lines, true);
    assert!(
        env.table_info("dlq/lines").map(|i| i.rows).unwrap_or(0) == 0,
        "nothing was dead-lettered"
    );
    eprintln!(
        "{test}: {lines} lines, {partway} SIGKILLs partway (rows after each: {rows_after:?}), final version {}, {:.1?}",
        env.log_version(TABLE),
        started.elapsed()
    );
}

#[test]
fn file_exactly_once() {
    kill_and_resume("file_exactly_once", "lines.ndjson", 400_000, 4);
}

#[test]
fn file_exactly_once_csv() {
    kill_and_resume("file_exactly_once_csv", "lines.csv", 250_000, 2);
}
