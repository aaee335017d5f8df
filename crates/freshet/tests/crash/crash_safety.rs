//! SIGKILL the server at random moments while clients send keyed batches and retry
//! every unacknowledged one; in the end every record is in the table exactly once.

use crate::harness::{Env, Server, post_events, seed, tail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KILLS: usize = 30;
const CLIENTS: usize = 3;
const BATCH: usize = 200;
const STREAM: &str = "orders";
const TABLE: &str = "events/orders";

const STREAMS: &str = r#"streams:
  orders:
    source: { type: http }
    schema:
      fields:
        - { name: id, type: string, required: true }
        - { name: client, type: int, required: true }
        - { name: amount, type: float, min: 0 }
        - { name: card, type: string, pii: hash }
    commit: { max_latency_ms: 20 }
"#;

/// Lake settings that put checkpoints and compaction commits in the way of the kills.
const LAKE: &str = "  checkpoint_interval: 7\n  compaction: { enabled: true, interval_secs: 1, min_files: 4, small_file_mb: 8 }";

struct Batch {
    key: String,
    body: Arc<Vec<u8>>,
    first_id: u64,
    acked: bool,
    attempts: u32,
}

#[derive(Default)]
struct Ledger {
    batches: Vec<Batch>,
    /// Unacknowledged batch of each client (at most one: it is retried before a new one).
    outstanding: [Option<usize>; CLIENTS],
    next_id: u64,
    acks: u64,
    replays: u64,
    failures: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
}

impl Ledger {
    fn acked_ids(&self) -> HashSet<String> {
        self.batches
            .iter()
            .filter(|b| b.acked)
            .flat_map(|b| (b.first_id..b.first_id + BATCH as u64).map(id))
            .collect()
    }
    fn sent_ids(&self) -> HashSet<String> {
        self.batches
            .iter()
            .flat_map(|b| (b.first_id..b.first_id + BATCH as u64).map(id))
            .collect()
    }
}

fn id(n: u64) -> String {
    format!("r{n:09}")
}

fn make_batch(l: &mut Ledger, client: usize) -> usize {
    let first = l.next_id;
    l.next_id += BATCH as u64;
    let mut body = String::with_capacity(BATCH * 90);
    for n in first..first + BATCH as u64 {
        body.push_str(&format!(
            "{{\"id\":\"{}\",\"client\":{client},\"amount\":{}.5,\"card\":\"4{:015}\"}}\n",
            id(n),
            n % 1000,
            n
        ));
    }
    l.batches.push(Batch {
        key: format!("batch-{first}"),
        body: Arc::new(body.into_bytes()),
        first_id: first,
        acked: false,
        attempts: 0,
    });
    l.batches.len() - 1
}

/// One client: send (or resend) its batch until `stop`; in `drain` mode, stop once
/// nothing of its own is outstanding instead of making new batches.
fn client(
    c: usize,
    addr: std::net::SocketAddr,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    drain: bool,
) {
    while !stop.load(Ordering::SeqCst) {
        let (idx, key, body) = {
            let mut l = ledger.lock().unwrap();
            let idx = match l.outstanding[c] {
                Some(i) => i,
                None if drain => return,
                None => {
                    let i = make_batch(&mut l, c);
                    l.outstanding[c] = Some(i);
                    i
                }
            };
            let b = &mut l.batches[idx];
            b.attempts += 1;
            (idx, b.key.clone(), b.body.clone())
        };
        let r = post_events(addr, STREAM, &body, "application/x-ndjson", Some(&key));
        let mut l = ledger.lock().unwrap();
        match r {
            Ok((200, text)) => {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("200 with a body that is not JSON ({e}): {text}"));
                assert_eq!(v["accepted"], BATCH, "{text}");
                assert_eq!(v["rejected"], 0, "{text}");
                if v["replayed"] == true {
                    l.replays += 1;
                } else {
                    assert!(v["version"].as_i64().is_some(), "{text}");
                }
                l.batches[idx].acked = true;
                l.outstanding[c] = None;
                l.acks += 1;
                *l.statuses.entry(200).or_default() += 1;
            }
            Ok((status, _)) => {
                *l.statuses.entry(status).or_default() += 1;
                drop(l);
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => {
                l.failures += 1;
                drop(l);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn run_clients(
    addr: std::net::SocketAddr,
    ledger: &Arc<Mutex<Ledger>>,
    stop: &Arc<AtomicBool>,
    drain: bool,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|c| {
            let (ledger, stop) = (ledger.clone(), stop.clone());
            std::thread::spawn(move || client(c, addr, ledger, stop, drain))
        })
        .collect()
}

/// Between restarts: the table opens, has no duplicate, holds every acknowledged record
/// and nothing that was never sent.
fn check_table(env: &Env, ledger: &Ledger, last_version: &mut i64) {
    let info = env
        .table_info(TABLE)
        .unwrap_or_else(|e| panic!("{TABLE} unreadable after a kill: {e}"));
    assert!(
        info.version >= *last_version,
        "version went back from {last_version} to {}",
        info.version
    );
    *last_version = info.version;
    let ids = env.read_strings(TABLE, "id").expect("read ids");
    assert_eq!(info.rows as usize, ids.len(), "info rows vs rows read");
    let mut seen = HashSet::with_capacity(ids.len());
    for i in ids {
        let i = i.expect("id is never null");
        assert!(seen.insert(i.clone()), "duplicate record {i}");
    }
    let acked = ledger.acked_ids();
    let missing = acked.difference(&seen).count();
    assert_eq!(missing, 0, "{missing} acknowledged records are missing");
    let sent = ledger.sent_ids();
    assert!(seen.is_subset(&sent), "the table holds records never sent");
}

#[test]
fn crash_safety() {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed("crash_safety"));
    let env = Env::new(LAKE, STREAMS);
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut last_version = -1;
    let mut early_kills = 0;
    for round in 0..KILLS {
        let mut server = Server::spawn(&env, &[]);
        // One kill in five lands during start-up (tables opening, txn lookups).
        if round > 0 && rng.random_bool(0.2) {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..250)));
            server.kill();
            early_kills += 1;
        } else {
            server.wait_ready(&env, Duration::from_secs(60));
            let stop = Arc::new(AtomicBool::new(false));
            let clients = run_clients(server.addr(), &ledger, &stop, false);
            std::thread::sleep(Duration::from_millis(rng.random_range(50..1200)));
            server.kill();
            stop.store(true, Ordering::SeqCst);
            for c in clients {
                c.join().expect("client thread panicked");
            }
        }
        check_table(&env, &ledger.lock().unwrap(), &mut last_version);
    }

    // Last start: resend whatever is still unacknowledged, then stop cleanly.
    let server = Server::start(&env, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(120);
    for c in run_clients(server.addr(), &ledger, &stop, true) {
        while !c.is_finished() {
            if Instant::now() > deadline {
                stop.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        c.join().expect("client thread panicked");
    }
    let status = server.stop();
    assert!(status.success(), "freshet up exited with {status}");

    let l = ledger.lock().unwrap();
    assert!(
        l.batches.iter().all(|b| b.acked),
        "some batches were never acknowledged"
    );
    check_table(&env, &l, &mut last_version);
    let ids = env.read_strings(TABLE, "id").unwrap();
    assert_eq!(
        ids.len() as u64,
        l.next_id,
        "every record sent is in the table"
    );
    let log = std::fs::read_to_string(env.data.join("server.log")).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "the server panicked:\n{}",
        tail(&env.data.join("server.log"))
    );
    let retried = l.batches.iter().filter(|b| b.attempts > 1).count();
    eprintln!(
        "crash_safety: {KILLS} SIGKILLs ({early_kills} during start-up), {} batches / {} records \
         acknowledged, {retried} batches resent, {} replays recognised, {} failed connections, \
         statuses {:?}, final version {last_version}, {:.1?}",
        l.batches.len(),
        l.next_id,
        l.replays,
        l.failures,
        l.statuses,
        started.elapsed()
    );
}
