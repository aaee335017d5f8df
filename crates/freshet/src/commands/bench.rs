//! `freshet bench ingest`: the ingest benchmark.
//!
//! Starts a real `freshet up` as a child process on an ephemeral port with an HTTP
//! stream of realistic card transactions (16 fields, ~360 bytes of JSON, one field
//! PII-hashed), drives it from concurrent clients in this process for a fixed time, and
//! reports records per second *landed in Delta* (counted from the table afterwards, not
//! from the client), acknowledgement latency percentiles and the server's peak RSS.
//! `--auth on|both` turns authentication on in the server's config and sends a producer
//! token (the helpers are in `bench_shared`, which `bench serve` uses too).

use super::bench_shared::{
    Server, auth_headers, auth_runs, configure_auth, on_off, print_auth_comparison,
};
use crate::cli::BenchIngestArgs;
use anyhow::{Context, Result};
use freshet_core::config::{GeneratorConfig, GeneratorKind};
use freshet_govern::identity::Role;
use freshet_ingest::source::generator::Generator;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The benchmark's findings.
#[derive(Debug, Serialize)]
pub struct IngestReport {
    /// Whether the server ran with `auth.enabled: true` (the client sending a token).
    pub auth: bool,
    pub seconds: f64,
    pub clients: usize,
    pub batch: usize,
    pub record_bytes: usize,
    pub requests_ok: u64,
    pub requests_rejected_busy: u64,
    pub records_acked: u64,
    pub rows_in_table: u64,
    pub records_per_sec: f64,
    pub mb_per_sec: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_max_ms: f64,
    pub peak_rss_mb: f64,
    pub commits: i64,
}

pub async fn ingest(a: BenchIngestArgs) -> Result<()> {
    let runs = auth_runs(a.auth);
    let bodies = render_bodies(a.batch, 32);
    let record_bytes = bodies[0].len() / a.batch.max(1);
    let bodies: Arc<Vec<bytes::Bytes>> =
        Arc::new(bodies.into_iter().map(bytes::Bytes::from).collect());
    eprintln!(
        "bench ingest: {} clients x {} records/request (~{record_bytes} B/record) for {} s, {} run(s)",
        a.clients,
        a.batch,
        a.seconds,
        runs.len()
    );
    let mut reports = Vec::new();
    for (i, &auth) in runs.iter().enumerate() {
        let tmp;
        let dir = match &a.data_dir {
            Some(d) if runs.len() > 1 => d.join(format!("run{}-auth-{}", i + 1, on_off(auth))),
            Some(d) => d.clone(),
            None => {
                tmp = tempfile::tempdir()?;
                tmp.path().to_path_buf()
            }
        };
        std::fs::create_dir_all(&dir)?;
        if runs.len() > 1 {
            println!("== run {} of {}, auth {}", i + 1, runs.len(), on_off(auth));
        }
        reports.push(ingest_once(&a, &dir, bodies.clone(), record_bytes, auth).await?);
    }
    if runs.len() > 1 {
        let fig = |f: fn(&IngestReport) -> f64| -> Vec<(bool, f64)> {
            reports.iter().map(|r| (r.auth, f(r))).collect()
        };
        print_auth_comparison(&[
            ("records/s landed", fig(|r| r.records_per_sec)),
            ("ack p50 ms", fig(|r| r.ack_p50_ms)),
            ("ack p99 ms", fig(|r| r.ack_p99_ms)),
            ("peak RSS MB", fig(|r| r.peak_rss_mb)),
        ]);
    }
    if let Some(p) = &a.json {
        let v = match reports.as_slice() {
            [one] => serde_json::to_value(one)?,
            all => serde_json::to_value(all)?,
        };
        std::fs::write(p, serde_json::to_vec_pretty(&v)?)?;
    }
    Ok(())
}

async fn ingest_once(
    a: &BenchIngestArgs,
    dir: &Path,
    bodies: Arc<Vec<bytes::Bytes>>,
    record_bytes: usize,
    auth: bool,
) -> Result<IngestReport> {
    let schema = Generator::schema_for(GeneratorKind::Cards);
    let config_file = write_config(dir, &schema, a)?;
    let token = configure_auth(&config_file, auth, &[("bench-producer", Role::Producer)])?
        .pop()
        .flatten();
    let server = Server::start(dir, &config_file).await?;
    let pid = server.pid;
    let url = format!("http://{}/v1/streams/bench/events", server.addr);

    let stop = Arc::new(AtomicBool::new(false));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak_rss.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kb) = rss_kb(pid) {
                    peak.fetch_max(kb, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients)
        .default_headers(auth_headers(token.as_deref())?)
        .build()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(a.seconds);
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let (client, bodies, url) = (client.clone(), bodies.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut ok, mut busy, mut acked) = (0u64, 0u64, 0u64);
            let mut i = c;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        let v: serde_json::Value = r.json().await.unwrap_or_default();
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        acked += v["accepted"].as_u64().unwrap_or(0);
                        ok += 1;
                    }
                    Ok(r) if r.status().as_u16() == 503 || r.status().as_u16() == 429 => {
                        busy += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Ok(r) => return Err(anyhow::anyhow!("unexpected status {}", r.status())),
                    Err(e) => return Err(anyhow::anyhow!("request failed: {e}")),
                }
            }
            Ok::<_, anyhow::Error>((lat, ok, busy, acked))
        }));
    }
    let mut lat = Vec::new();
    let (mut ok, mut busy, mut acked) = (0, 0, 0);
    for t in tasks {
        let (l, o, b, n) = t.await??;
        lat.extend(l);
        ok += o;
        busy += b;
        acked += n;
    }
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    server.stop().await;

    let root = a
        .lake
        .clone()
        .unwrap_or_else(|| dir.join("lake").display().to_string());
    let lake = freshet_lake::Lake::open(&root, &Default::default()).await?;
    let table = freshet_lake::Table::open(lake.table_url("events/bench")?).await?;
    let info = table.info(None).await?;
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| super::percentile(&lat, p);
    let report = IngestReport {
        auth,
        seconds: elapsed,
        clients: a.clients,
        batch: a.batch,
        record_bytes,
        requests_ok: ok,
        requests_rejected_busy: busy,
        records_acked: acked,
        rows_in_table: info.rows,
        records_per_sec: info.rows as f64 / elapsed,
        mb_per_sec: (info.rows as f64 * record_bytes as f64) / elapsed / 1e6,
        ack_p50_ms: pct(0.50),
        ack_p99_ms: pct(0.99),
        ack_max_ms: lat.last().copied().unwrap_or(0.0),
        peak_rss_mb: peak_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        commits: info.version,
    };
    println!(
        "records landed in Delta : {} ({} acknowledged)",
        report.rows_in_table, report.records_acked
    );
    println!(
        "throughput              : {:.0} records/s ({:.1} MB/s of JSON)",
        report.records_per_sec, report.mb_per_sec
    );
    println!(
        "ack latency             : p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        report.ack_p50_ms, report.ack_p99_ms, report.ack_max_ms
    );
    println!("server peak RSS         : {:.0} MB", report.peak_rss_mb);
    println!(
        "requests                : {} ok, {} answered busy (503)",
        report.requests_ok, report.requests_rejected_busy
    );
    println!(
        "commits                 : {} ({:.0} records/commit)",
        report.commits,
        report.rows_in_table as f64 / report.commits.max(1) as f64
    );
    if report.rows_in_table != report.records_acked {
        anyhow::bail!(
            "table holds {} rows but {} were acknowledged",
            report.rows_in_table,
            report.records_acked
        );
    }
    Ok(report)
}

fn write_config(
    dir: &Path,
    schema: &freshet_core::Schema,
    a: &BenchIngestArgs,
) -> Result<std::path::PathBuf> {
    let fields = serde_json::to_string(schema.fields())?;
    std::fs::write(dir.join("pii.key"), "bench-key-0123456789abcdef")?;
    let mut commit = String::new();
    if let Some(r) = a.max_rows {
        commit.push_str(&format!("max_rows: {r}, "));
    }
    if let Some(l) = a.max_latency_ms {
        commit.push_str(&format!("max_latency_ms: {l}, "));
    }
    let commit = commit.trim_end_matches(", ");
    let lake = serde_json::to_string(a.lake.as_deref().unwrap_or("lake"))?;
    let text = format!(
        "lake: {{ path: {lake}, compaction: {{ enabled: false }} }}\n\
         pii: {{ key_env: FRESHET_BENCH_NO_ENV, key_file: pii.key }}\n\
         streams:\n  bench:\n    source: {{ type: http }}\n    schema: {{ fields: {fields} }}\n    commit: {{ {commit} }}\n"
    );
    let file = dir.join("freshet.yaml");
    std::fs::write(&file, text)?;
    Ok(file)
}

/// `freshet bench records`: the bench's records as NDJSON on stdout.
pub fn records(a: crate::cli::BenchRecordsArgs) -> Result<()> {
    use std::io::Write;
    if let Some(path) = &a.schema_out {
        let schema = Generator::schema_for(GeneratorKind::Cards);
        std::fs::write(path, serde_json::to_string(schema.fields())?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut g = Generator::new(&bench_generator());
    let names = field_names(&g);
    for _ in 0..a.count {
        let Some(row) = g.next_row() else { break };
        serde_json::to_writer(&mut out, &record_json(&names, &row))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn field_names(g: &Generator) -> Vec<String> {
    g.schema().fields().iter().map(|f| f.name.clone()).collect()
}

/// A generated row as a JSON object keyed by field name.
fn record_json(
    names: &[String],
    row: &[freshet_core::Value],
) -> serde_json::Map<String, serde_json::Value> {
    names
        .iter()
        .cloned()
        .zip(row.iter().map(freshet_core::Value::to_json))
        .collect()
}

fn bench_generator() -> GeneratorConfig {
    GeneratorConfig {
        kind: GeneratorKind::Cards,
        seed: 7,
        rate_per_sec: None,
        limit: None,
        drift: Vec::new(),
        noise: 0.0,
        n_features: 10,
    }
}

/// NDJSON bodies of card transactions from the generator (distinct records per body).
fn render_bodies(batch: usize, count: usize) -> Vec<String> {
    let mut g = Generator::new(&bench_generator());
    let names = field_names(&g);
    (0..count)
        .map(|_| {
            let mut body = String::with_capacity(batch * 400);
            for _ in 0..batch {
                let Some(row) = g.next_row() else { break };
                body.push_str(&serde_json::Value::Object(record_json(&names, &row)).to_string());
                body.push('\n');
            }
            body
        })
        .collect()
}

/// Resident set size of a process in KiB, from /proc.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
