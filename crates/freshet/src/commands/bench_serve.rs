//! `freshet bench serve --url URL --model M`: a closed-loop HTTP/1.1 load generator for
//! scoring endpoints, so that Freshet's `/serving-endpoints/{m}/invocations` and
//! `mlflow models serve`'s `/invocations` are measured with the same client
//! (`bench/serve_vs_mlflow.sh` runs both).
//!
//! Each connection is its own keep-alive client that sends one request, waits for the
//! answer and sends the next. Latency is measured per request from send to the last byte
//! of the answer. With `--server-pid`, the server's resident memory and CPU (summed over
//! the process and its descendants, so that a Python server's worker processes count)
//! are sampled from `/proc` during the measured window.
//!
//! The client runs on its own small runtime (`--threads`, one by default) so that it
//! takes as little as it can of the cores it shares with the server under test.
//!
//! Without `--url` the bench serves its own model from a `freshet up` it starts, which
//! `--auth on|both` needs: with auth on the config has `auth: { enabled: true }` and
//! the load generator sends a scorer token (the helpers are in `bench_shared`).

use crate::cli::{BenchAuth, BenchServeArgs};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use freshet_govern::identity::Role;
use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Distinct single-row bodies rotated through, so no answer can be cached.
const DISTINCT_BODIES: usize = 256;

/// The run's figures.
#[derive(Debug, Serialize)]
pub struct ServeReport {
    pub url: String,
    pub model: String,
    pub connections: usize,
    pub seconds: f64,
    pub requests: u64,
    pub failures: u64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Highest sampled resident set of the server (and its descendants) during the run.
    pub server_peak_rss_mb: Option<f64>,
    /// The kernel's high-water mark of the same processes at the end (covers start-up).
    pub server_vm_hwm_mb: Option<f64>,
    /// Server processes sampled (the pid and its descendants).
    pub server_processes: Option<usize>,
    /// Each of those processes at the end: pid, command name, VmHWM in MB.
    pub server_hwm_by_process: Vec<(u32, String, f64)>,
    /// CPU the server used during the run, in cores.
    pub server_cpu_cores: Option<f64>,
    /// CPU this load generator used during the run, in cores.
    pub client_cpu_cores: Option<f64>,
    /// The first answer's body (truncated), to see what was scored.
    pub first_response: String,
    /// The first failure, if any.
    pub first_failure: Option<String>,
}

pub async fn serve(a: BenchServeArgs) -> Result<()> {
    if a.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if !(a.seconds > 0.0 && a.seconds.is_finite()) {
        bail!("--seconds must be a positive number");
    }
    let Some(base) = a.url.clone() else {
        return own_server(a).await;
    };
    if a.auth != BenchAuth::Off {
        bail!("--auth on|both needs the bench's own server: leave out --url");
    }
    let report = run_load(a.clone(), &base, None).await?;
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// One measured run against `base`, on the load generator's own runtime.
async fn run_load(a: BenchServeArgs, base: &str, token: Option<String>) -> Result<ServeReport> {
    let bodies = bodies(&a)?;
    let path = a
        .path
        .clone()
        .unwrap_or_else(|| format!("/serving-endpoints/{}/invocations", a.model));
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    eprintln!(
        "bench serve: {url}, {} connections, {} s (+{} s warm-up), {} distinct bodies of ~{} B{}",
        a.connections,
        a.seconds,
        a.warmup,
        bodies.len(),
        bodies.first().map_or(0, Bytes::len),
        if token.is_some() {
            ", bearer token"
        } else {
            ""
        }
    );
    let threads = a.threads.max(1);
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .context("cannot start the load generator's runtime")?;
        rt.block_on(load(a, url, bodies, token))
    })
    .await?
}

/// Rows of the bench's own model: 8 float features and a bool label.
const OWN_ROWS: usize = 20_000;
const OWN_COLUMNS: [&str; 8] = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"];

/// Without `--url`: trains a logistic regression named `--model` on synthetic rows in a
/// temporary folder, then for each run of `--auth` starts `freshet up` (the model
/// registered, not declared, as in bench/serve_vs_mlflow.sh; capture on), sets its
/// champion alias with an operator token and measures with a scorer token.
async fn own_server(mut a: BenchServeArgs) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    if a.columns.is_empty() && a.body_file.is_none() {
        a.columns = OWN_COLUMNS.iter().map(|c| c.to_string()).collect();
    }
    let config_file = dir.join("freshet.yaml");
    std::fs::write(&config_file, own_config(Some(&a.model)))?;
    write_own_data(&dir.join("bench.csv"))?;
    eprintln!(
        "bench serve: training {} on {OWN_ROWS} synthetic rows",
        a.model
    );
    let csv = dir.join("bench.csv").display().to_string();
    freshet_cli(&config_file, &["ingest", "bench", &csv, "--quiet"]).await?;
    freshet_cli(&config_file, &["train", &a.model, "--quiet"]).await?;

    let runs = super::bench_shared::auth_runs(a.auth);
    let mut reports = Vec::new();
    for (i, &auth) in runs.iter().enumerate() {
        std::fs::write(&config_file, own_config(None))?;
        let mut tokens = super::bench_shared::configure_auth(
            &config_file,
            auth,
            &[
                (&format!("bench-scorer-{i}"), Role::Scorer),
                (&format!("bench-operator-{i}"), Role::Operator),
            ],
        )?
        .into_iter();
        let (scorer, operator) = (tokens.next().flatten(), tokens.next().flatten());
        let server = super::bench_shared::Server::start(dir, &config_file).await?;
        let base = format!("http://{}", server.addr);
        set_champion(&base, &a.model, operator.as_deref(), scorer.as_deref()).await?;
        eprintln!(
            "== run {} of {}, auth {} (pid {})",
            i + 1,
            runs.len(),
            super::bench_shared::on_off(auth),
            server.pid
        );
        let mut run = a.clone();
        run.server_pid = Some(server.pid);
        let report = run_load(run, &base, scorer).await;
        server.stop().await;
        reports.push((auth, report?));
    }
    if runs.len() > 1 {
        let fig = |f: fn(&ServeReport) -> f64| -> Vec<(bool, f64)> {
            reports.iter().map(|(auth, r)| (*auth, f(r))).collect()
        };
        super::bench_shared::print_auth_comparison(&[
            ("requests/s", fig(|r| r.requests_per_sec)),
            ("p50 ms", fig(|r| r.p50_ms)),
            ("p99 ms", fig(|r| r.p99_ms)),
            (
                "server CPU cores",
                fig(|r| r.server_cpu_cores.unwrap_or(f64::NAN)),
            ),
        ]);
    }
    if let Some(p) = &a.json {
        let v: Vec<serde_json::Value> = reports
            .iter()
            .map(|(auth, r)| serde_json::json!({ "auth": auth, "report": r }))
            .collect();
        std::fs::write(p, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(())
}

/// The bench's config: one HTTP stream of the synthetic rows and, for training, the
/// model with its triggers out of reach.
pub(super) fn own_config(model: Option<&str>) -> String {
    let mut fields: String = OWN_COLUMNS
        .iter()
        .map(|c| format!("        - {{ name: {c}, type: float }}\n"))
        .collect();
    fields.push_str("        - { name: y, type: bool, required: true }\n");
    let mut text = format!(
        "lake: {{ path: lake, compaction: {{ enabled: false }} }}\n\
         registry: {{ path: registry.db }}\n\
         streams:\n  bench:\n    source: {{ type: http }}\n    schema:\n      fields:\n{fields}"
    );
    if let Some(m) = model {
        text.push_str(&format!(
            "models:\n  {m}: {{ stream: bench, label: y, learner: {{ type: logistic_regression }}, \
             triggers: {{ initial_rows: 1000000000000, concept_drift: none }} }}\n"
        ));
    }
    text
}

/// Synthetic rows: uniform features, a label from a noisy linear score.
pub(super) fn write_own_data(path: &std::path::Path) -> Result<()> {
    use rand::{Rng, SeedableRng};
    use std::fmt::Write;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let w = [1.5, -2.0, 0.7, 0.0, 1.0, -0.5, 0.3, 0.0];
    let mut out = format!("{},y\n", OWN_COLUMNS.join(","));
    for _ in 0..OWN_ROWS {
        let x: Vec<f64> = (0..8).map(|_| rng.random_range(-3.0..3.0)).collect();
        let score: f64 =
            x.iter().zip(w).map(|(x, w)| x * w).sum::<f64>() + rng.random_range(-1.0..1.0);
        for v in &x {
            write!(out, "{v:.6},")?;
        }
        out.push_str(if score > 0.0 { "true\n" } else { "false\n" });
    }
    std::fs::write(path, out)?;
    Ok(())
}

/// Runs this binary with `args` against `config_file`, failing with its output.
pub(super) async fn freshet_cli(config_file: &std::path::Path, args: &[&str]) -> Result<()> {
    let out = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--config")
        .arg(config_file)
        .args(args)
        .env("FRESHET_LOG", "warn")
        .output()
        .await?;
    if !out.status.success() {
        bail!(
            "freshet {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Points the `champion` alias at version 1 (the operator's token) and waits until the
/// model is ready to serve (the scorer's).
pub(super) async fn set_champion(
    base: &str,
    model: &str,
    operator: Option<&str>,
    scorer: Option<&str>,
) -> Result<()> {
    let admin = reqwest::Client::builder()
        .default_headers(super::bench_shared::auth_headers(operator)?)
        .build()?;
    let r = admin
        .post(format!("{base}/api/2.0/mlflow/registered-models/alias"))
        .json(&serde_json::json!({ "name": model, "alias": "champion", "version": "1" }))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "setting the champion answered {}: {}",
            r.status(),
            r.text().await?
        );
    }
    let client = reqwest::Client::builder()
        .default_headers(super::bench_shared::auth_headers(scorer)?)
        .build()?;
    for _ in 0..400 {
        let ready = client
            .get(format!("{base}/v2/models/{model}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not serve {model} within 20 s (see server.log)")
}

/// The request bodies: the file's, or single-row `dataframe_records` bodies with
/// random values for the given columns.
fn bodies(a: &BenchServeArgs) -> Result<Vec<Bytes>> {
    if let Some(f) = &a.body_file {
        let b = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
        return Ok(vec![Bytes::from(b)]);
    }
    if a.columns.is_empty() {
        bail!("give --columns c1,c2,... (numeric inputs) or --body-file");
    }
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
    Ok((0..DISTINCT_BODIES)
        .map(|_| {
            let row: serde_json::Map<String, serde_json::Value> = a
                .columns
                .iter()
                .map(|c| {
                    let x: f64 = rng.random_range(-3.0..3.0);
                    // Four decimals, as a client would send.
                    let x = (x * 1e4).round() / 1e4;
                    (c.clone(), serde_json::json!(x))
                })
                .collect();
            Bytes::from(serde_json::json!({ "dataframe_records": [row] }).to_string())
        })
        .collect())
}

struct Sampler {
    pid: u32,
    peak_rss_kb: AtomicU64,
    processes: AtomicU64,
}

async fn load(
    a: BenchServeArgs,
    url: String,
    bodies: Vec<Bytes>,
    token: Option<String>,
) -> Result<ServeReport> {
    let bodies = Arc::new(bodies);
    let content_type = a.content_type.clone();
    let headers = super::bench_shared::auth_headers(token.as_deref())?;
    let mut clients = Vec::with_capacity(a.connections);
    for _ in 0..a.connections {
        clients.push(
            reqwest::Client::builder()
                .http1_only()
                .default_headers(headers.clone())
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(30))
                .build()?,
        );
    }

    // One request first: the endpoint must answer before anything is measured.
    let first = clients[0]
        .post(&url)
        .header("content-type", &content_type)
        .body(bodies[0].clone())
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = first.status();
    let text = first.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("{url} answered {status}: {}", truncate(&text, 500));
    }
    let first_response = truncate(&text, 300);

    // Warm-up, then the measured window; the same tasks run through both.
    let measuring = Arc::new(AtomicBool::new(a.warmup <= 0.0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::with_capacity(a.connections);
    for (i, client) in clients.into_iter().enumerate() {
        let (bodies, url, ct) = (bodies.clone(), url.clone(), content_type.clone());
        let (measuring, stop) = (measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<f64> = Vec::with_capacity(1 << 16);
            let mut failures = 0u64;
            let mut first_failure: Option<String> = None;
            let mut n = i * 31;
            while !stop.load(Ordering::Relaxed) {
                let body = bodies[n % bodies.len()].clone();
                n += 1;
                let t = Instant::now();
                let outcome = match client
                    .post(&url)
                    .header("content-type", &ct)
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map(drop).map_err(|e| e.to_string())
                    }
                    Ok(r) => {
                        let s = r.status();
                        let t = r.text().await.unwrap_or_default();
                        Err(format!("{s}: {}", truncate(&t, 200)))
                    }
                    Err(e) => Err(e.to_string()),
                };
                let ms = t.elapsed().as_secs_f64() * 1e3;
                if !measuring.load(Ordering::Relaxed) {
                    continue;
                }
                match outcome {
                    Ok(()) => lat.push(ms),
                    Err(e) => {
                        failures += 1;
                        first_failure.get_or_insert(e);
                        // A refused connection fails at once; do not spin on it.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            (lat, failures, first_failure)
        }));
    }
    if a.warmup > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(a.warmup)).await;
        measuring.store(true, Ordering::Relaxed);
    }

    let sampler = a.server_pid.map(|pid| {
        Arc::new(Sampler {
            pid,
            peak_rss_kb: AtomicU64::new(0),
            processes: AtomicU64::new(0),
        })
    });
    let sampling = sampler.as_ref().map(|s| {
        let (s, stop) = (s.clone(), stop.clone());
        tokio::spawn(async move {
            let mut pids = process_tree(s.pid);
            let mut last_scan = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                if last_scan.elapsed() > Duration::from_secs(1) {
                    pids = process_tree(s.pid);
                    last_scan = Instant::now();
                }
                let kb: u64 = pids.iter().filter_map(|p| status_kb(*p, "VmRSS:")).sum();
                s.peak_rss_kb.fetch_max(kb, Ordering::Relaxed);
                s.processes.store(pids.len() as u64, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let server_ticks0 = a.server_pid.map(|p| tree_cpu_ticks(&process_tree(p)));
    let client_ticks0 = cpu_ticks(std::process::id());
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(a.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let server_ticks1 = a.server_pid.map(|p| tree_cpu_ticks(&process_tree(p)));
    let client_ticks1 = cpu_ticks(std::process::id());

    let mut lat = Vec::new();
    let mut failures = 0;
    let mut first_failure = None;
    for t in tasks {
        let (l, f, e) = t.await?;
        lat.extend(l);
        failures += f;
        if first_failure.is_none() {
            first_failure = e;
        }
    }
    if let Some(s) = sampling {
        let _ = s.await;
    }
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| super::percentile(&lat, p);
    let cores = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / CLK_TCK / elapsed),
        _ => None,
    };
    let tree = a.server_pid.map(process_tree);
    let report = ServeReport {
        url,
        model: a.model.clone(),
        connections: a.connections,
        seconds: elapsed,
        requests: lat.len() as u64,
        failures,
        requests_per_sec: lat.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        max_ms: lat.last().copied().unwrap_or(0.0),
        server_peak_rss_mb: sampler
            .as_ref()
            .map(|s| s.peak_rss_kb.load(Ordering::Relaxed) as f64 / 1024.0),
        server_vm_hwm_mb: tree.as_ref().map(|pids| {
            pids.iter()
                .filter_map(|p| status_kb(*p, "VmHWM:"))
                .sum::<u64>() as f64
                / 1024.0
        }),
        server_hwm_by_process: tree
            .iter()
            .flatten()
            .filter_map(|p| Some((*p, comm(*p)?, status_kb(*p, "VmHWM:")? as f64 / 1024.0)))
            .collect(),
        server_processes: sampler
            .as_ref()
            .map(|s| s.processes.load(Ordering::Relaxed) as usize),
        server_cpu_cores: cores(server_ticks0.flatten(), server_ticks1.flatten()),
        client_cpu_cores: cores(client_ticks0, client_ticks1),
        first_response,
        first_failure,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    if report.requests == 0 {
        bail!(
            "no request succeeded: {}",
            report.first_failure.as_deref().unwrap_or("?")
        );
    }
    Ok(report)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// The fields of `/proc/<pid>/stat` after the command name (state first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime + stime of one process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let f = stat_fields(pid)?;
    let user: u64 = f.get(11)?.parse().ok()?;
    let system: u64 = f.get(12)?.parse().ok()?;
    Some(user + system)
}

fn tree_cpu_ticks(pids: &[u32]) -> Option<u64> {
    let ticks: Vec<u64> = pids.iter().filter_map(|p| cpu_ticks(*p)).collect();
    (!ticks.is_empty()).then(|| ticks.iter().sum())
}

/// `pid` and all its descendants that are alive now.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut tree: HashSet<u32> = HashSet::from([pid]);
    loop {
        let before = tree.len();
        for (p, pp) in &parent_of {
            if tree.contains(pp) {
                tree.insert(*p);
            }
        }
        if tree.len() == before {
            break;
        }
    }
    let mut v: Vec<u32> = tree.into_iter().collect();
    v.sort_unstable();
    v
}

/// The command name of a process.
fn comm(pid: u32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(s.trim().to_string())
}

/// A figure of `/proc/<pid>/status`: a `kB` line (`VmRSS:`, `VmHWM:`) or a count
/// (`Threads:`).
pub(super) fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_measurable() {
        let me = std::process::id();
        assert!(process_tree(me).contains(&me));
        assert!(cpu_ticks(me).is_some());
        assert!(status_kb(me, "VmRSS:").is_some_and(|kb| kb > 0));
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é…");
    }
}
