//! `freshet ingest --follow`: lines appended to a growing file land as they come,
//! a line written in two pieces is never split, SIGTERM stops cleanly after committing,
//! and the next run resumes after the last committed byte.

use crate::harness::{Env, tail, terminate};
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
"#;

fn append(path: &std::path::Path, from: u64, to: u64) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    for i in from..to {
        writeln!(f, "{{\"id\":\"f{i:06}\",\"n\":{i}}}").unwrap();
    }
    f.flush().unwrap();
}

fn wait_rows(env: &Env, want: u64, log: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = env.table_info("events/lines").map(|i| i.rows).unwrap_or(0);
        if rows == want {
            return;
        }
        assert!(
            rows <= want,
            "more rows ({rows}) than lines written ({want})"
        );
        assert!(
            Instant::now() < deadline,
            "only {rows} of {want} rows after 30 s:\n{}",
            tail(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ids(env: &Env) -> Vec<String> {
    env.read_strings("events/lines", "id")
        .unwrap()
        .into_iter()
        .map(|s| s.unwrap_or_default())
        .collect()
}

#[test]
fn follow_mode_tails_a_growing_file_and_resumes() {
    let env = Env::new("", STREAMS);
    let file = env.dir.path().join("growing.ndjson");
    std::fs::write(&file, "").unwrap();
    let log = env.data.join("follow.log");
    let path = file.to_str().unwrap();
    let mut child = env
        .command(
            "follow.log",
            &["ingest", "lines", path, "--follow", "--quiet"],
        )
        .spawn()
        .unwrap();

    append(&file, 0, 1000);
    wait_rows(&env, 1000, &log);
    // A line written in two pieces: the first half must wait for its end.
    {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(b"{\"id\":\"f001000\",").unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(
            env.table_info("events/lines").unwrap().rows,
            1000,
            "a partial line was committed"
        );
        f.write_all(b"\"n\":1000}\n").unwrap();
    }
    append(&file, 1001, 2500);
    wait_rows(&env, 2500, &log);
    let st = terminate(&mut child, Duration::from_secs(20));
    assert!(
        st.success(),
        "ingest --follow exited with {st}:\n{}",
        tail(&log)
    );

    // Lines added while nothing was following are picked up by the next run, once.
    append(&file, 2500, 3000);
    let mut child = env
        .command(
            "follow.log",
            &["ingest", "lines", path, "--follow", "--quiet"],
        )
        .spawn()
        .unwrap();
    wait_rows(&env, 3000, &log);
    let st = terminate(&mut child, Duration::from_secs(20));
    assert!(st.success(), "second run exited with {st}:\n{}", tail(&log));

    let ids = ids(&env);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 3000);
    assert_eq!(unique.len(), 3000, "duplicates after resume");
    assert!(
        unique.contains(&"f001000".to_string()),
        "the two-piece line is missing or split"
    );
    assert_eq!(
        env.table_info("dlq/lines").map(|i| i.rows).unwrap_or(0),
        0,
        "a line was split into malformed halves"
    );
}
