//! `freshet demo`: the whole loop on one machine, narrated.
//!
//! A server starts in-process on an ephemeral port with an embedded configuration. A
//! simulated client walks a stream (the card-transaction generator, whose fraud
//! pattern changes at a known event, or a CSV file): it asks the served model about
//! each event, and only later — a fixed number of events afterwards, as real labels
//! arrive late — sends the true label as feedback and lands the labelled event in the
//! stream's table. The loop controller trains and promotes v1, watches the live error
//! stream, detects the drift, retrains on the new concept, gates the candidate and
//! rolls it out through shadow and canary to champion, with no manual step. At the end
//! a table compares every version with the static v1 before and after the drift.

mod client;
mod config;
mod summary;

use crate::cli::DemoArgs;
use crate::runtime::{LoopObserver, Runtime, load_config};
use anyhow::{Context, Result, bail};
use client::{Client, Stream};
use freshet_control::controller::LoopEvent;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Marks a folder as the demo's, so that a rerun may clear it.
const MARKER: &str = ".freshet-demo";

/// What happened when, for the narrative and the summary.
#[derive(Debug, Default)]
pub struct Timeline {
    pub drift_onset: Option<(Instant, u64)>,
    pub detected: Option<(Instant, u64)>,
    /// The first answer from a version trained after the drift, as champion.
    pub new_champion: Option<(Instant, u64, i64)>,
    pub versions: Vec<(i64, String)>,
    /// The champion whose served traffic was last said to drift from its profile.
    pub data_drift_said: Option<i64>,
}

fn prepare_dir(dir: &std::path::Path) -> Result<()> {
    if dir.exists() {
        let ours = dir.join(MARKER).exists();
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !ours && !empty {
            bail!(
                "{} exists and was not made by `freshet demo`; pick another --dir",
                dir.display()
            );
        }
        if ours {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), "made by freshet demo; safe to delete\n")?;
    // The card numbers are hashed with a key of the demo's own.
    let key: [u8; 32] = rand::random();
    let key_path = dir.join("pii.key");
    std::fs::write(&key_path, hex::encode(key))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let started = Instant::now();
    prepare_dir(&args.dir)?;
    let stream = match (&args.data, &args.label) {
        (Some(path), Some(label)) => Stream::csv(path, label)?,
        (Some(_), None) => bail!("--data needs --label <column>"),
        (None, Some(_)) => bail!("--label goes with --data <csv>"),
        (None, None) => Stream::generated(args.generator, args.seed, args.drift_at, args.noise),
    };
    let knobs = config::Knobs::resolve(&stream, &args);
    let yaml = config::render(&stream, &knobs);
    let cfg_path = args.dir.join("freshet.yaml");
    std::fs::write(&cfg_path, &yaml)?;
    let (config, base) = load_config(&cfg_path)?;
    let max_body = config.server.max_body_bytes.get();

    println!(
        "freshet demo — the continuous loop on {}",
        stream.describe()
    );
    println!("  data and registry: {}", args.dir.display());
    println!(
        "  loop: {} ({} job{}), first version after {} rows, retrain {}{} rows after a drift; labels {} events late",
        knobs.learner,
        knobs.job,
        if knobs.job == "builtin" {
            format!(" on at most the newest {} rows", knobs.window_rows)
        } else {
            String::new()
        },
        knobs.initial_rows,
        if knobs.retrain_rows > 0 {
            format!("every {} rows and ", knobs.retrain_rows)
        } else {
            String::new()
        },
        knobs.rows_after_drift,
        args.label_delay
    );
    if knobs.serving == "live" {
        println!(
            "  serving: live — the champion learns each label as it arrives, its snapshot in shadow as the safety net"
        );
    }
    let token_file = crate::governance::admin_token_path(&config, &base);
    let mut runtime = Runtime::start(config, base).await?;
    crate::governance::ensure_admin_token(&runtime.governance, &token_file, "demo")?;
    let token = std::fs::read_to_string(&token_file)?.trim().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = runtime.app_state(Arc::new(std::sync::atomic::AtomicBool::new(false)));
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve(
        listener,
        state,
        max_body,
        async move {
            let _ = server_stopped.await;
        },
    ));
    println!("  server: http://{addr} (MLflow API, scoring, feedback)\n");

    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let log = client::Narrator::new(started);
    let observer: LoopObserver = {
        let (timeline, log) = (timeline.clone(), log.clone());
        Arc::new(move |_model: &str, e: &LoopEvent| {
            let mut t = timeline.lock().unwrap_or_else(|e| e.into_inner());
            match e {
                LoopEvent::DriftDetected { rows, reason } => {
                    if t.detected.is_none() {
                        t.detected = Some((Instant::now(), *rows));
                    }
                    log.say(&format!(
                        "⚠ {reason} detected ({rows} labelled events in the table)"
                    ));
                }
                LoopEvent::Trained {
                    version,
                    trigger,
                    table_version,
                    train_rows,
                    metrics,
                    gates,
                    outcome,
                } => {
                    let get = |k: &str| {
                        metrics
                            .iter()
                            .find(|(n, _)| n == k)
                            .map_or("-".into(), |(_, v)| format!("{v:.3}"))
                    };
                    t.versions.push((*version, trigger.clone()));
                    log.say(&format!(
                        "trained v{version} on events@v{table_version} ({train_rows} rows; trigger: {trigger}): holdout accuracy {} AUC {} — gates {}; {outcome}",
                        get("holdout_accuracy"),
                        get("holdout_roc_auc"),
                        if gates.passed { "passed" } else { "failed" },
                    ));
                    for line in &gates.lines {
                        log.say(&format!("    gate: {line}"));
                    }
                }
                LoopEvent::Coalesced { reason } => {
                    log.say(&format!("trigger while busy, queued: {reason}"))
                }
                LoopEvent::JobFailed { reason } => log.say(&format!("training failed: {reason}")),
                LoopEvent::RolloutSuperseded { version, outcome } => log.say(&format!(
                    "the rollout of v{version} ends ({outcome}): it was trained before the drift"
                )),
                LoopEvent::Monitored { version, report } => {
                    if report.dataset.drifted && t.data_drift_said != Some(*version) {
                        t.data_drift_said = Some(*version);
                        log.say(&format!(
                            "served traffic of v{version} drifts from its training profile: {} of {} features (share {:.2})",
                            report.dataset.drifted_columns,
                            report.dataset.columns,
                            report.dataset.share
                        ));
                    }
                }
                LoopEvent::LiveAccuracy { .. } => {}
            }
        })
    };
    runtime.start_serving(Duration::from_millis(200));
    runtime.start_rollouts(Duration::from_millis(500));
    runtime.start_loops(Duration::from_millis(250), observer)?;

    let mut client = Client::new(
        format!("http://{addr}"),
        stream,
        args.rate,
        args.label_delay,
        timeline.clone(),
        log.clone(),
        knobs.serving == "live",
        &token,
    )?;
    let budget = Duration::from_secs(args.max_seconds);
    let outcome = client
        .run(&runtime, budget, args.after_promotion, args.events)
        .await;
    if let Err(e) = &outcome {
        log.say(&format!("the client stopped: {e:#}"));
    }
    client.finish().await;
    log.say("every label is in; scoring each version on the whole run for the summary");

    let store = runtime.tracking.clone();
    let artifacts = runtime.artifacts.clone();
    let (report, figures) = summary::build(
        store.as_ref(),
        artifacts.as_ref(),
        &client,
        &timeline.lock().unwrap_or_else(|e| e.into_inner()),
    );
    let figures_path = args.dir.join("summary.json");
    if let Err(e) = std::fs::write(&figures_path, format!("{figures:#}\n")) {
        log.say(&format!("cannot write {}: {e}", figures_path.display()));
    }
    log.say("stopping the server");
    let _ = stop_server.send(());
    let _ = server.await;
    runtime.shutdown().await;
    println!("\n{report}");
    println!(
        "finished in {:.0} s; the data stays in {} — try:\n  freshet --config {} tables\n  MLFLOW_TRACKING_URI=… mlflow (start `freshet --config {} up` first)",
        started.elapsed().as_secs_f64(),
        args.dir.display(),
        cfg_path.display(),
        cfg_path.display()
    );
    outcome
}
