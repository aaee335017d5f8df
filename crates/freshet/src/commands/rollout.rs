//! `freshet rollout …`: look at and steer a model's rollout by hand. The commands work
//! on the registry database directly (SQLite in WAL mode), so they act while a server
//! runs; the server's controller sees the new state on its next tick.

use crate::cli::RolloutCommand;
use crate::runtime::{load_config, open_tracking};
use anyhow::Result;
use freshet_core::model_spec::RolloutSpec;
use freshet_serve::rollout::{
    Phase, RolloutController, RolloutState, RolloutStatus, Routing, routing,
};
use std::path::Path;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn version(v: Option<i64>) -> String {
    v.map_or("-".to_string(), |v| format!("version {v}"))
}

pub fn run(config_path: &Path, cmd: RolloutCommand) -> Result<()> {
    let (config, base) = load_config(config_path)?;
    let store = open_tracking(&config, &base)?;
    let store = store.as_ref();
    let c = RolloutController::from_models(&config.models).with_approvals(std::sync::Arc::new(
        crate::governance::open_approvals(&config, &base)?,
    ));
    let now = now_ms();
    let state = match cmd {
        RolloutCommand::Status { model } => {
            let status = c.status(store, &model)?;
            print_status(&model, &status, c.spec(&model), now);
            return Ok(());
        }
        RolloutCommand::Start { model, version } => c.start(store, &model, version, now)?,
        RolloutCommand::Promote { model } => {
            let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
            c.promote_as(store, &model, now, &format!("cli:{user}"))?
        }
        RolloutCommand::Rollback {
            model,
            to_version: Some(v),
        } => c.rollback_to(store, &model, v, now)?,
        RolloutCommand::Rollback {
            model,
            to_version: None,
        } => c.rollback(store, &model, now)?,
        RolloutCommand::Pause { model, reason } => {
            let reason = reason.unwrap_or_else(|| "paused by hand".to_string());
            c.pause(store, &model, &reason, now)?
        }
        RolloutCommand::Resume { model } => c.resume(store, &model, now)?,
    };
    print_outcome(&state);
    Ok(())
}

fn print_outcome(s: &RolloutState) {
    if let Some(d) = s.decisions.last() {
        println!("{}: {} -> {} ({})", s.model, d.from, d.to, d.reason);
    }
    let champion = if s.phase == Phase::Promoted || s.phase.is_baking() {
        Some(s.candidate_version)
    } else {
        s.champion_version
    };
    println!(
        "  champion {}, candidate version {}, phase {}",
        version(champion),
        s.candidate_version,
        s.phase
    );
}

fn routing_text(r: Routing) -> String {
    match r {
        Routing::None => "no traffic to the challenger".to_string(),
        Routing::Shadow => "shadow (mirrored, answers unused)".to_string(),
        Routing::Canary { weight_pct } => format!("canary: {weight_pct}% of requests"),
    }
}

fn print_status(model: &str, st: &RolloutStatus, spec: &RolloutSpec, now: i64) {
    println!("model {model}");
    println!("  champion    {}", version(st.champion));
    println!("  challenger  {}", version(st.challenger));
    let Some(s) = &st.state else {
        println!(
            "  rollout     none yet (start one with `freshet rollout start {model} --version N`)"
        );
        return;
    };
    let secs = (now - s.phase_started_ms).max(0) / 1000;
    if s.phase.is_baking() {
        println!(
            "  rollout     version {} is champion and bakes against {}: {} for {secs} s",
            s.candidate_version,
            version(s.champion_version),
            s.phase
        );
    } else if s.phase.is_active() {
        println!(
            "  rollout     version {} against champion {}: {} for {secs} s",
            s.candidate_version,
            version(s.champion_version),
            s.phase
        );
    } else {
        println!(
            "  last rollout version {}: {} at {} UTC",
            s.candidate_version,
            s.phase,
            when(s.phase_started_ms)
        );
    }
    if let Phase::Paused { reason, .. } = &s.phase {
        println!("  paused      {reason}");
    }
    if s.phase.is_baking() {
        println!(
            "  traffic     version {} answers; {} (the previous champion) scores a mirrored copy",
            s.candidate_version,
            version(s.champion_version)
        );
        let b = &spec.bake;
        println!(
            "  bake        judged once both have {} labels since it began (rolled back if the accuracy drops by more than {}); passes after {} s without them",
            b.min_labels, b.max_accuracy_drop, b.max_secs
        );
    } else if s.phase.is_active() {
        println!("  traffic     {}", routing_text(routing(s)));
    }
    if s.phase.is_active() {
        println!(
            "  controller  {}",
            if st.auto {
                "acts on its own (auto)"
            } else {
                "waits for commands (auto: false)"
            }
        );
    }
    if s.decisions.is_empty() {
        return;
    }
    println!("decisions (oldest first)");
    let rows: Vec<[String; 5]> = s
        .decisions
        .iter()
        .map(|d| {
            [
                when(d.at_ms),
                format!("v{}", d.candidate_version),
                format!("{} -> {}", d.from, d.to),
                if d.manual { "person" } else { "controller" }.to_string(),
                d.reason.clone(),
            ]
        })
        .collect();
    let header = ["at (UTC)", "version", "transition", "by", "reason"].map(str::to_string);
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i + 1 == r.len() {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        println!("  {}", cells.join("  "));
    }
    if let Some(e) = s.decisions.last().and_then(|d| d.evidence.as_deref()) {
        println!("last evidence: {e}");
    }
}
