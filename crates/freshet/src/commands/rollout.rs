//! `freshet rollout …`: look at and steer a model's rollout by hand. With `--url` each
//! step is a call to the running server's rollout API (authenticated, authorized and
//! audited as the token); without it the commands work on the registry database
//! directly (SQLite in WAL mode), so they act while a server runs, and the server's
//! controller sees the new state on its next tick.

use crate::cli::{RolloutArgs, RolloutCommand, ServerArgs};
use crate::runtime::{load_config, open_tracking};
use anyhow::{Context, Result};
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

pub async fn run(config_path: &Path, args: RolloutArgs) -> Result<()> {
    if args.url.is_some() {
        let server = ServerArgs {
            url: args.url,
            token: args.token,
        };
        return through_api(config_path, &server, args.command).await;
    }
    let cmd = args.command;
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

/// The same steps through the server's `/v1/models/{model}/rollout` API.
async fn through_api(config_path: &Path, server: &ServerArgs, cmd: RolloutCommand) -> Result<()> {
    use reqwest::Method;
    use serde_json::json;
    let (url, token) = crate::commands::token::server_client(config_path, server)?;
    let (config, _) = load_config(config_path)?;
    let base = |model: &str| format!("{url}/v1/models/{model}/rollout");
    let (model, method, path, body) = match cmd {
        RolloutCommand::Status { model } => {
            let v =
                crate::commands::token::call(Method::GET, &base(&model), token.as_deref(), None)
                    .await?;
            let state: Option<RolloutState> = serde_json::from_value(v["state"].clone())
                .map_err(|e| anyhow::anyhow!("the server's rollout state does not parse: {e}"))?;
            let status = RolloutStatus {
                champion: v["champion"].as_i64(),
                challenger: v["challenger"].as_i64(),
                state,
                auto: v["auto"].as_bool().unwrap_or(false),
            };
            let c = RolloutController::from_models(&config.models);
            print_status(&model, &status, c.spec(&model), now_ms());
            return Ok(());
        }
        RolloutCommand::Start { model, version } => {
            let p = format!("{}/start", base(&model));
            (model, Method::POST, p, json!({ "version": version }))
        }
        RolloutCommand::Promote { model } => {
            let p = format!("{}/promote", base(&model));
            (model, Method::POST, p, json!({}))
        }
        RolloutCommand::Rollback { model, to_version } => {
            let p = format!("{}/rollback", base(&model));
            let body = to_version.map_or_else(|| json!({}), |v| json!({ "to_version": v }));
            (model, Method::POST, p, body)
        }
        RolloutCommand::Pause { model, reason } => {
            let p = format!("{}/pause", base(&model));
            let body = reason.map_or_else(|| json!({}), |r| json!({ "reason": r }));
            (model, Method::POST, p, body)
        }
        RolloutCommand::Resume { model } => {
            let p = format!("{}/resume", base(&model));
            (model, Method::POST, p, json!({}))
        }
    };
    let v = crate::commands::token::call(method, &path, token.as_deref(), Some(body))
        .await
        .with_context(|| format!("rollout of '{model}'"))?;
    let state: RolloutState = serde_json::from_value(v)
        .map_err(|e| anyhow::anyhow!("the server's answer is not a rollout state: {e}"))?;
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
