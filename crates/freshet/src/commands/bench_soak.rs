//! `freshet bench soak`: the whole loop under a steady load for a fixed time, watched for
//! anything that grows without bound.
//!
//! Against its own `freshet up` (a logistic regression trained on synthetic rows,
//! declared with its loop on: it retrains every 1,000,000 new rows and watches for
//! drift), at the same time and at fixed rates: HTTP ingest of NDJSON batches into the
//! model's stream, single-row scoring with capture on, and labels fed back for one
//! answer in `--label-every`. Every interval it samples the server's RSS, open files and
//! threads, the lake's size on disk, and the interval's scoring latencies and errors. At
//! the end it judges the run after the warm-up: no failed request, RSS growth and every
//! interval's p99 within their bounds, open files and threads not climbing, and the
//! rates held. A failed judgement is an error exit.

use super::bench_serve::{freshet_cli, set_champion, status_kb, write_own_data};
use super::bench_shared::Server;
use crate::cli::BenchSoakArgs;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODEL: &str = "lr";
const COLUMNS: [&str; 8] = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"];
/// The synthetic rows' true weights (as `write_own_data` draws them).
const WEIGHTS: [f64; 8] = [1.5, -2.0, 0.7, 0.0, 1.0, -0.5, 0.3, 0.0];

/// One interval of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the load started, at the end of the interval.
    pub at_secs: f64,
    pub rss_mb: f64,
    pub open_files: u64,
    pub threads: u64,
    pub lake_mb: f64,
    /// Cores the server used over the interval (CPU seconds per second).
    pub server_cpu: f64,
    /// Cores this load generator used over the interval.
    pub load_cpu: f64,
    pub scored: u64,
    pub score_p50_ms: f64,
    pub score_p99_ms: f64,
    pub ingested_records: u64,
    pub labels_fed: u64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    minutes: f64,
    score_rate: f64,
    ingest_rate: f64,
    samples: Vec<Sample>,
    first_error: Option<String>,
    verdict: Vec<Check>,
    passed: bool,
}

/// One judged figure.
#[derive(Debug, Serialize)]
struct Check {
    what: String,
    passed: bool,
    detail: String,
}

/// What the load tasks share with the sampler.
#[derive(Default)]
struct Counters {
    latencies: Mutex<Vec<f64>>,
    scored: AtomicU64,
    ingested: AtomicU64,
    labels: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// (request id, label) pairs waiting to be fed back.
    to_label: Mutex<Vec<(String, bool)>>,
}

impl Counters {
    fn fail(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert(what);
    }
}

pub async fn run(a: BenchSoakArgs) -> Result<()> {
    check_args(&a)?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let config_file = dir.join("freshet.yaml");
    std::fs::write(&config_file, config())?;
    // Authentication off: the soak measures the loop, not the token check (which
    // `bench serve --auth both` measures).
    super::bench_shared::configure_auth(&config_file, false, &[])?;
    write_own_data(&dir.join("bench.csv"))?;
    eprintln!("bench soak: training the first version of {MODEL}");
    let csv = dir.join("bench.csv").display().to_string();
    freshet_cli(&config_file, &["ingest", "bench", &csv, "--quiet"]).await?;
    freshet_cli(&config_file, &["train", MODEL, "--quiet"]).await?;
    let server = Server::start(dir, &config_file).await?;
    let base = format!("http://{}", server.addr);
    let outcome = soak(&a, &base, server.pid, &dir.join("lake")).await;
    server.stop().await;
    let report = outcome?;
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    println!("verdict after the warm-up:");
    for c in &report.verdict {
        let mark = if c.passed { "ok  " } else { "FAIL" };
        println!("  {mark} {}: {}", c.what, c.detail);
    }
    if !report.passed {
        bail!(
            "the soak failed: {}",
            report
                .verdict
                .iter()
                .filter(|c| !c.passed)
                .map(|c| c.what.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

fn check_args(a: &BenchSoakArgs) -> Result<()> {
    let positive = |v: f64, name: &str| -> Result<()> {
        if !(v.is_finite() && v > 0.0) {
            bail!("--{name} must be a positive number, not {v}");
        }
        Ok(())
    };
    positive(a.minutes, "minutes")?;
    positive(a.interval_secs, "interval-secs")?;
    positive(a.score_rate, "score-rate")?;
    positive(a.ingest_rate, "ingest-rate")?;
    if !(a.warmup_minutes.is_finite() && a.warmup_minutes >= 0.0) {
        bail!("--warmup-minutes must be 0 or more");
    }
    if a.warmup_minutes >= a.minutes {
        bail!("--warmup-minutes must be shorter than --minutes: nothing would be judged");
    }
    if a.connections == 0 || a.ingest_connections == 0 || a.ingest_batch == 0 {
        bail!("--connections, --ingest-connections and --ingest-batch must be at least 1");
    }
    Ok(())
}

/// The stream of the synthetic rows and the model declared on it, its loop on.
fn config() -> String {
    let mut fields: String = COLUMNS
        .iter()
        .map(|c| format!("        - {{ name: {c}, type: float }}\n"))
        .collect();
    fields.push_str("        - { name: y, type: bool, required: true }\n");
    format!(
        "lake: {{ path: lake }}\n\
         registry: {{ path: registry.db }}\n\
         streams:\n  bench:\n    source: {{ type: http }}\n    schema:\n      fields:\n{fields}\
         models:\n  {MODEL}: {{ stream: bench, label: y, learner: {{ type: logistic_regression }}, \
         triggers: {{ initial_rows: 1000, rows: 1000000 }} }}\n"
    )
}

/// A synthetic row: uniform features and the label of its noise-free score.
fn row(rng: &mut rand::rngs::StdRng) -> (serde_json::Map<String, serde_json::Value>, bool) {
    use rand::Rng;
    let x: Vec<f64> = (0..COLUMNS.len())
        .map(|_| (rng.random_range(-3.0..3.0f64) * 1e4).round() / 1e4)
        .collect();
    let label = x.iter().zip(WEIGHTS).map(|(x, w)| x * w).sum::<f64>() > 0.0;
    let map = COLUMNS
        .iter()
        .zip(&x)
        .map(|(c, v)| (c.to_string(), serde_json::json!(v)))
        .collect();
    (map, label)
}

async fn soak(a: &BenchSoakArgs, base: &str, pid: u32, lake: &Path) -> Result<Report> {
    set_champion(base, MODEL, None, None).await?;
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    // Scoring bodies with the label of each row, and ingest bodies.
    let scoring: Arc<Vec<(Bytes, bool)>> = Arc::new(
        (0..1024)
            .map(|_| {
                let (r, y) = row(&mut rng);
                (
                    Bytes::from(serde_json::json!({ "dataframe_records": [r] }).to_string()),
                    y,
                )
            })
            .collect(),
    );
    let ingest: Arc<Vec<Bytes>> = Arc::new(
        (0..64)
            .map(|_| {
                let mut body = String::new();
                for _ in 0..a.ingest_batch {
                    let (mut r, y) = row(&mut rng);
                    r.insert("y".into(), serde_json::json!(y));
                    body.push_str(&serde_json::Value::Object(r).to_string());
                    body.push('\n');
                }
                Bytes::from(body)
            })
            .collect(),
    );

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let score_url = format!("{base}/serving-endpoints/{MODEL}/invocations");
    let period = Duration::from_secs_f64(a.connections as f64 / a.score_rate);
    for c in 0..a.connections {
        let client = client()?;
        let (url, bodies, counters, stop) = (
            score_url.clone(),
            scoring.clone(),
            counters.clone(),
            stop.clone(),
        );
        let label_every = a.label_every;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = c as u64 * 97;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (body, label) = &bodies[n as usize % bodies.len()];
                n += 1;
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let answer = match res {
                    Ok(r) if r.status().is_success() => r.bytes().await.map_err(|e| e.to_string()),
                    Ok(r) => Err(format!("scoring answered {}", r.status())),
                    Err(e) => Err(format!("scoring failed: {e}")),
                };
                match answer {
                    Ok(bytes) => {
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        counters
                            .latencies
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(ms);
                        counters.scored.fetch_add(1, Ordering::Relaxed);
                        if label_every > 0 && n.is_multiple_of(label_every) {
                            let id = serde_json::from_slice::<serde_json::Value>(&bytes)
                                .ok()
                                .and_then(|v| v["request_id"].as_str().map(str::to_string));
                            match id {
                                Some(id) => counters
                                    .to_label
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .push((id, *label)),
                                None => counters.fail("an answer without request_id".into()),
                            }
                        }
                    }
                    Err(e) => counters.fail(e),
                }
            }
        }));
    }
    // Ingest: paced senders, each with one request in flight (an acknowledgement waits
    // for the records' commit, so one sender alone cannot reach a high rate).
    let ingest_url = format!("{base}/v1/streams/bench/events");
    let senders = a.ingest_connections;
    let per_sec = a.ingest_rate / a.ingest_batch as f64 / senders as f64;
    for s in 0..senders {
        let client = client()?;
        let (url, bodies, counters, stop) = (
            ingest_url.clone(),
            ingest.clone(),
            counters.clone(),
            stop.clone(),
        );
        let batch = a.ingest_batch as u64;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_sec));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = s * 31;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let body = bodies[n % bodies.len()].clone();
                n += 1;
                match client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        counters.ingested.fetch_add(batch, Ordering::Relaxed);
                    }
                    Ok(r) => counters.fail(format!("ingest answered {}", r.status())),
                    Err(e) => counters.fail(format!("ingest failed: {e}")),
                }
            }
        }));
    }
    // Feedback: what is queued, once a second.
    {
        let client = client()?;
        let url = format!("{base}/v1/models/{MODEL}/feedback");
        let (counters, stop) = (counters.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let batch = std::mem::take(
                    &mut *counters.to_label.lock().unwrap_or_else(|e| e.into_inner()),
                );
                if batch.is_empty() {
                    continue;
                }
                let body: Vec<serde_json::Value> = batch
                    .iter()
                    .map(|(id, y)| serde_json::json!({ "request_id": id, "label": y }))
                    .collect();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status().is_success() => {
                        counters
                            .labels
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    Ok(r) => counters.fail(format!("feedback answered {}", r.status())),
                    Err(e) => counters.fail(format!("feedback failed: {e}")),
                }
            }
        }));
    }

    // Sample every interval until the end.
    eprintln!(
        "bench soak: {:.1} min at {:.0} scoring requests/s and {:.0} records/s, a label per {} answers; a row every {:.0} s",
        a.minutes, a.score_rate, a.ingest_rate, a.label_every, a.interval_secs
    );
    println!(
        "{:>7} {:>8} {:>6} {:>7} {:>8} {:>7} {:>7} {:>8} {:>9} {:>9} {:>10} {:>7} {:>6}",
        "at s",
        "RSS MB",
        "files",
        "threads",
        "lake MB",
        "srv cpu",
        "gen cpu",
        "scored/s",
        "p50 ms",
        "p99 ms",
        "records/s",
        "labels",
        "errors"
    );
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(a.minutes * 60.0);
    let mut samples = Vec::new();
    let (mut last_scored, mut last_ingested, mut last_labels, mut last_errors) = (0, 0, 0, 0);
    let mut last_at = 0.0;
    let (mut last_server_cpu, mut last_load_cpu) = (cpu_secs(&pid.to_string()), cpu_secs("self"));
    while Instant::now() < end {
        let next = (started
            + Duration::from_secs_f64(a.interval_secs * (samples.len() + 1) as f64))
        .min(end);
        tokio::time::sleep_until(next.into()).await;
        let at = started.elapsed().as_secs_f64();
        let mut lat =
            std::mem::take(&mut *counters.latencies.lock().unwrap_or_else(|e| e.into_inner()));
        lat.sort_by(f64::total_cmp);
        let pct = |q: f64| -> f64 {
            if lat.is_empty() {
                f64::NAN
            } else {
                lat[((lat.len() - 1) as f64 * q).round() as usize]
            }
        };
        let take = |c: &AtomicU64, last: &mut u64| {
            let now = c.load(Ordering::Relaxed);
            let d = now - *last;
            *last = now;
            d
        };
        let secs = (at - last_at).max(1e-9);
        let (server_cpu, load_cpu) = (cpu_secs(&pid.to_string()), cpu_secs("self"));
        let s = Sample {
            server_cpu: (server_cpu - last_server_cpu) / secs,
            load_cpu: (load_cpu - last_load_cpu) / secs,
            at_secs: at,
            rss_mb: status_kb(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0,
            open_files: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|d| d.count() as u64)
                .unwrap_or(0),
            threads: status_kb(pid, "Threads:").unwrap_or(0),
            lake_mb: dir_bytes(lake) as f64 / (1 << 20) as f64,
            scored: take(&counters.scored, &mut last_scored),
            score_p50_ms: pct(0.5),
            score_p99_ms: pct(0.99),
            ingested_records: take(&counters.ingested, &mut last_ingested),
            labels_fed: take(&counters.labels, &mut last_labels),
            errors: take(&counters.errors, &mut last_errors),
        };
        (last_server_cpu, last_load_cpu) = (server_cpu, load_cpu);
        last_at = at;
        println!(
            "{:>7.0} {:>8.1} {:>6} {:>7} {:>8.1} {:>7.2} {:>7.2} {:>8.0} {:>9.2} {:>9.2} {:>10.0} {:>7} {:>6}",
            s.at_secs,
            s.rss_mb,
            s.open_files,
            s.threads,
            s.lake_mb,
            s.server_cpu,
            s.load_cpu,
            s.scored as f64 / secs,
            s.score_p50_ms,
            s.score_p99_ms,
            s.ingested_records as f64 / secs,
            s.labels_fed,
            s.errors
        );
        samples.push(s);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }
    let first_error = counters
        .first_error
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let verdict = judge(a, &samples, first_error.as_deref());
    Ok(Report {
        minutes: a.minutes,
        score_rate: a.score_rate,
        ingest_rate: a.ingest_rate,
        passed: verdict.iter().all(|c| c.passed),
        samples,
        first_error,
        verdict,
    })
}

fn client() -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// The judgement of the samples after the warm-up (the first sample at or after it is
/// the baseline).
fn judge(a: &BenchSoakArgs, samples: &[Sample], first_error: Option<&str>) -> Vec<Check> {
    let warm = a.warmup_minutes * 60.0;
    let Some(b) = samples.iter().position(|s| s.at_secs >= warm - 1e-6) else {
        return vec![Check {
            what: "samples after the warm-up".into(),
            passed: false,
            detail: "none".into(),
        }];
    };
    let after = &samples[b..];
    let base = &samples[b];
    let mut checks = Vec::new();
    let errors: u64 = samples.iter().map(|s| s.errors).sum();
    checks.push(Check {
        what: "no failed request".into(),
        passed: errors == 0,
        detail: match first_error {
            Some(e) => format!("{errors} failed, the first: {e}"),
            None => "0 failed".into(),
        },
    });
    let rss_max = after.iter().map(|s| s.rss_mb).fold(f64::MIN, f64::max);
    let growth = (rss_max - base.rss_mb) / base.rss_mb.max(1e-9);
    checks.push(Check {
        what: format!("RSS growth under {:.0}%", a.max_rss_growth * 100.0),
        passed: growth < a.max_rss_growth,
        detail: format!(
            "{:.1} MB at {:.0} s, at most {:.1} MB after ({:+.1}%)",
            base.rss_mb,
            base.at_secs,
            rss_max,
            growth * 100.0
        ),
    });
    // The baseline sample's own interval straddles the warm-up, so p99 is judged on the
    // intervals wholly after it (the baseline's too when it is the only one).
    let judged = if after.len() > 1 { &after[1..] } else { after };
    let mut p99: Vec<f64> = judged
        .iter()
        .map(|s| s.score_p99_ms)
        .filter(|v| v.is_finite())
        .collect();
    p99.sort_by(f64::total_cmp);
    let median = p99.get(p99.len() / 2).copied().unwrap_or(f64::NAN);
    let worst = p99
        .iter()
        .map(|v| (v - median).abs() / median)
        .fold(0.0, f64::max);
    checks.push(Check {
        what: format!("p99 within {:.0}% of its median", a.max_p99_change * 100.0),
        passed: !p99.is_empty() && worst <= a.max_p99_change,
        detail: format!(
            "median {:.2} ms, intervals {}",
            median,
            p99.iter()
                .map(|v| format!("{v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    let last = &samples[samples.len() - 1];
    let bounded = |now: u64, then: u64| now <= then + then / 5 + 16;
    checks.push(Check {
        what: "open files and threads not climbing".into(),
        passed: bounded(last.open_files, base.open_files) && bounded(last.threads, base.threads),
        detail: format!(
            "files {} → {}, threads {} → {}",
            base.open_files, last.open_files, base.threads, last.threads
        ),
    });
    let span: f64 = judged.last().map_or(0.0, |s| s.at_secs) - base.at_secs;
    let (scored, ingested): (u64, u64) = judged
        .iter()
        .fold((0, 0), |(x, y), s| (x + s.scored, y + s.ingested_records));
    if span > 0.0 && after.len() > 1 {
        let (sr, ir) = (scored as f64 / span, ingested as f64 / span);
        checks.push(Check {
            what: "rates held (95% of the asked)".into(),
            passed: sr >= 0.95 * a.score_rate && ir >= 0.95 * a.ingest_rate,
            detail: format!(
                "{sr:.0} scoring requests/s of {:.0}, {ir:.0} records/s of {:.0}",
                a.score_rate, a.ingest_rate
            ),
        });
    }
    checks
}

/// CPU seconds (user and system) a process has used: `/proc/<pid>/stat` fields 14
/// and 15, in clock ticks of 1/100 s (Linux's `USER_HZ` on every platform it runs on).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // After ')', field 3 (state) is index 0, so fields 14 and 15 are 11 and 12.
    (tick(11) + tick(12)) / 100.0
}

/// Bytes of every file under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BenchSoakArgs {
        BenchSoakArgs {
            minutes: 5.0,
            interval_secs: 60.0,
            warmup_minutes: 2.0,
            score_rate: 100.0,
            connections: 1,
            ingest_rate: 1000.0,
            ingest_batch: 100,
            ingest_connections: 2,
            label_every: 10,
            max_rss_growth: 0.1,
            max_p99_change: 0.2,
            json: None,
        }
    }

    fn sample(at: f64, rss: f64, p99: f64) -> Sample {
        Sample {
            at_secs: at,
            rss_mb: rss,
            open_files: 40,
            threads: 20,
            lake_mb: 1.0,
            server_cpu: 1.0,
            load_cpu: 0.5,
            scored: 6000,
            score_p50_ms: 1.0,
            score_p99_ms: p99,
            ingested_records: 60_000,
            labels_fed: 600,
            errors: 0,
        }
    }

    #[test]
    fn a_steady_run_passes_and_growth_or_a_slow_interval_fails() {
        let steady: Vec<Sample> = (1..=5)
            .map(|i| sample(60.0 * i as f64, 100.0 + i as f64, 2.0))
            .collect();
        assert!(judge(&args(), &steady, None).iter().all(|c| c.passed));

        let mut leaking = steady.clone();
        leaking[4].rss_mb = 130.0;
        let v = judge(&args(), &leaking, None);
        assert!(!v.iter().find(|c| c.what.starts_with("RSS")).unwrap().passed);

        let mut slow = steady.clone();
        slow[3].score_p99_ms = 3.0;
        let v = judge(&args(), &slow, None);
        assert!(!v.iter().find(|c| c.what.starts_with("p99")).unwrap().passed);

        let mut failing = steady;
        failing[2].errors = 1;
        let v = judge(&args(), &failing, Some("scoring answered 503"));
        let c = v.iter().find(|c| c.what == "no failed request").unwrap();
        assert!(!c.passed && c.detail.contains("503"));
    }
}
