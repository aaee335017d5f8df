//! `freshet bench tracking --url URL`: the MLflow tracking workload, against any
//! MLflow-compatible server (Freshet or `mlflow server`), with the same client, so that
//! the two can be compared side by side (`bench/tracking_vs_mlflow.sh` runs both).
//!
//! Each workload runs for a fixed time from concurrent clients and counts completed
//! operations; every answer must be a 200, or the run fails. The client works from
//! pre-rendered bodies and checks answers in full only on each task's first calls, so
//! that it spends little of the CPU it shares with the server under test.

use crate::cli::BenchTrackingArgs;
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One workload's figures.
#[derive(Debug, Serialize)]
pub struct WorkloadReport {
    pub name: &'static str,
    pub ops: u64,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}/api/2.0/mlflow/{path}", self.base)
    }

    /// POST a JSON body; parse the answer only when asked.
    async fn post(&self, path: &str, body: Bytes, parse: bool) -> Result<Value> {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        let status = r.status();
        if !status.is_success() {
            bail!("{path}: {status} {}", r.text().await.unwrap_or_default());
        }
        if parse {
            Ok(r.json().await?)
        } else {
            r.bytes().await?;
            Ok(Value::Null)
        }
    }

    async fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.post(path, Bytes::from(body.to_string()), true).await
    }

    async fn get(&self, path: &str, query: &[(&str, String)], parse: bool) -> Result<Value> {
        let r = self.http.get(self.url(path)).query(query).send().await?;
        let status = r.status();
        if !status.is_success() {
            bail!("{path}: {status}");
        }
        if parse {
            Ok(r.json().await?)
        } else {
            r.bytes().await?;
            Ok(Value::Null)
        }
    }

    async fn create_run(&self, exp: &str) -> Result<String> {
        let v = self
            .post_json(
                "runs/create",
                &json!({ "experiment_id": exp, "start_time": now_ms() }),
            )
            .await?;
        v["run"]["info"]["run_id"]
            .as_str()
            .map(str::to_string)
            .context("runs/create answered no run id")
    }

    async fn create_experiment(&self, name: &str) -> Result<String> {
        let v = self
            .post_json("experiments/create", &json!({ "name": name }))
            .await?;
        v["experiment_id"]
            .as_str()
            .map(str::to_string)
            .context("experiments/create answered no id")
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Ids and pre-rendered bodies the workloads share.
struct Ctx {
    exp: String,
    target_run: String,
    history_run: String,
    history_points: usize,
    big_batches: Vec<Bytes>,
    search_body: Bytes,
}

/// One operation; `n` is unique per call (params are immutable, so keys must differ)
/// and `check` asks for the answer to be verified in full.
type Op = fn(Arc<Client>, Arc<Ctx>, u64, bool) -> BoxFuture<'static, Result<()>>;

/// Calls per task whose answers are verified in full.
const CHECKED_CALLS: usize = 3;

async fn run_workload(
    name: &'static str,
    client: &Arc<Client>,
    ctx: &Arc<Ctx>,
    clients: usize,
    seconds: Duration,
    op: Op,
) -> Result<WorkloadReport> {
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + seconds;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (c, x, counter) = (client.clone(), ctx.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                op(c.clone(), x.clone(), n, lat.len() < CHECKED_CALLS).await?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| super::percentile(&lat, p);
    let r = WorkloadReport {
        name,
        ops: lat.len() as u64,
        ops_per_sec: lat.len() as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    };
    println!(
        "{:<20} {:>10.1} ops/s   p50 {:>8.2} ms   p99 {:>8.2} ms",
        r.name, r.ops_per_sec, r.p50_ms, r.p99_ms
    );
    Ok(r)
}

fn metrics_json(n: usize, prefix: &str, step: i64) -> Value {
    Value::Array((0..n).map(|i| json!({ "key": format!("{prefix}{i}"), "value": i as f64 * 0.5, "timestamp": 1, "step": step })).collect())
}

fn op_create_run(
    c: Arc<Client>,
    x: Arc<Ctx>,
    _n: u64,
    _check: bool,
) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move { c.create_run(&x.exp).await.map(drop) })
}

fn op_log_batch_small(
    c: Arc<Client>,
    x: Arc<Ctx>,
    n: u64,
    _check: bool,
) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        let ms: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"key":"s{i}","value":{i}.5,"timestamp":1,"step":{n}}}"#))
            .collect();
        let ps: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"key":"p{n}_{i}","value":"v"}}"#))
            .collect();
        let ts: Vec<String> = (0..5)
            .map(|i| format!(r#"{{"key":"t{i}","value":"{n}"}}"#))
            .collect();
        let body = format!(
            r#"{{"run_id":"{}","metrics":[{}],"params":[{}],"tags":[{}]}}"#,
            x.target_run,
            ms.join(","),
            ps.join(","),
            ts.join(",")
        );
        c.post("runs/log-batch", body.into(), false).await.map(drop)
    })
}

fn op_log_batch_1000(
    c: Arc<Client>,
    x: Arc<Ctx>,
    n: u64,
    _check: bool,
) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        let body = x.big_batches[(n as usize) % x.big_batches.len()].clone();
        c.post("runs/log-batch", body, false).await.map(drop)
    })
}

fn op_log_metric(
    c: Arc<Client>,
    x: Arc<Ctx>,
    n: u64,
    _check: bool,
) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        let body = format!(
            r#"{{"run_id":"{}","key":"single","value":{n}.0,"timestamp":1,"step":{n}}}"#,
            x.target_run
        );
        c.post("runs/log-metric", body.into(), false)
            .await
            .map(drop)
    })
}

fn op_search(c: Arc<Client>, x: Arc<Ctx>, _n: u64, check: bool) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        let v = c.post("runs/search", x.search_body.clone(), check).await?;
        if check && v["runs"].as_array().map_or(0, Vec::len) == 0 {
            bail!("search returned no runs");
        }
        Ok(())
    })
}

fn op_history(c: Arc<Client>, x: Arc<Ctx>, _n: u64, check: bool) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        let q = [
            ("run_id", x.history_run.clone()),
            ("metric_key", "loss".into()),
            ("max_results", "25000".into()),
        ];
        let v = c.get("metrics/get-history", &q, check).await?;
        let got = v["metrics"].as_array().map_or(0, Vec::len);
        if check && got != x.history_points {
            bail!(
                "history returned {got} points, expected {}",
                x.history_points
            );
        }
        Ok(())
    })
}

pub async fn tracking(a: BenchTrackingArgs) -> Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients)
        .build()?;
    let client = Arc::new(Client {
        http,
        base: a.url.trim_end_matches('/').to_string(),
    });
    let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let exp = client.create_experiment(&name).await?;
    eprintln!(
        "setting up: {} runs for search, {} points of history",
        a.search_runs, a.history_points
    );
    // Search corpus: runs with a metric and a param; about a third match the filter.
    let search_exp = client.create_experiment(&format!("{name}-search")).await?;
    for i in 0..a.search_runs {
        let id = client.create_run(&search_exp).await?;
        let body = json!({
            "run_id": id,
            "metrics": [{ "key": "auc", "value": (i % 100) as f64 / 100.0, "timestamp": now_ms(), "step": 0 }],
            "params": [{ "key": "kind", "value": if i % 3 == 0 { "tree" } else { "linear" } }],
        });
        client.post_json("runs/log-batch", &body).await?;
    }
    let history_run = client.create_run(&exp).await?;
    let mut logged = 0;
    while logged < a.history_points {
        let n = (a.history_points - logged).min(1000);
        let batch: Vec<Value> =
            (0..n).map(|i| json!({ "key": "loss", "value": 1.0 / (1 + logged + i) as f64, "timestamp": now_ms(), "step": logged + i })).collect();
        client
            .post_json(
                "runs/log-batch",
                &json!({ "run_id": history_run, "metrics": batch }),
            )
            .await?;
        logged += n;
    }
    let target_run = client.create_run(&exp).await?;
    let big_batches = (0..16)
        .map(|step| {
            Bytes::from(
                json!({ "run_id": target_run, "metrics": metrics_json(1000, "k", step) })
                    .to_string(),
            )
        })
        .collect();
    let search_body = Bytes::from(
        json!({ "experiment_ids": [search_exp], "filter": "metrics.auc > 0.5 and params.kind = 'linear'",
            "max_results": 1000, "order_by": ["metrics.auc DESC"] })
        .to_string(),
    );
    let ctx = Arc::new(Ctx {
        exp,
        target_run,
        history_run,
        history_points: a.history_points,
        big_batches,
        search_body,
    });

    let seconds = Duration::from_secs_f64(a.seconds);
    let workloads: [(&'static str, Op); 6] = [
        ("create_run", op_create_run),
        ("log_batch_small", op_log_batch_small),
        ("log_batch_1000", op_log_batch_1000),
        ("log_metric", op_log_metric),
        ("search_runs_filter", op_search),
        ("get_history_20k", op_history),
    ];
    let mut reports = Vec::new();
    for (name, op) in workloads {
        reports.push(run_workload(name, &client, &ctx, a.clients, seconds, op).await?);
    }
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&reports)?)?;
    }
    Ok(())
}
