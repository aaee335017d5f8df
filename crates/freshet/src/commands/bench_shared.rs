//! What the benches that start their own server share: the `freshet up` child process,
//! and the `--auth off|on|both` runs (tokens in the config's store, the bearer header,
//! the off/on comparison).

use crate::cli::BenchAuth;
use anyhow::{Context, Result};
use freshet_govern::identity::{Grant, Role};
use freshet_govern::tokens::TokenStore;
use std::path::Path;
use std::time::Duration;

/// A `freshet up` child process on an ephemeral loopback port, no sources started,
/// logging to `server.log` in its folder (`FRESHET_BENCH_SERVER_LOG` sets the level).
pub struct Server {
    child: tokio::process::Child,
    pub pid: u32,
    pub addr: String,
}

impl Server {
    pub async fn start(dir: &Path, config_file: &Path) -> Result<Server> {
        let addr_file = dir.join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::File::create(dir.join("server.log"))?;
        let child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--config")
            .arg(config_file)
            .args([
                "up",
                "--listen",
                "127.0.0.1:0",
                "--no-sources",
                "--addr-file",
            ])
            .arg(&addr_file)
            .env(
                "FRESHET_LOG",
                std::env::var("FRESHET_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start the server")?;
        let pid = child.id().context("server has no pid")?;
        let addr = wait_for_addr(&addr_file).await?;
        Ok(Server { child, pid, addr })
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The runs an `--auth` choice asks for, in order: `both` interleaves off and on, three
/// runs each, so that drift in the machine's load falls on both alike.
pub fn auth_runs(mode: BenchAuth) -> Vec<bool> {
    match mode {
        BenchAuth::Off => vec![false],
        BenchAuth::On => vec![true],
        BenchAuth::Both => [false, true].repeat(3),
    }
}

pub fn on_off(auth: bool) -> &'static str {
    if auth { "on" } else { "off" }
}

/// Authentication of a bench's generated config: appends `auth: { enabled: … }` to
/// `config_file` and, with auth on, creates one token per `(name, role)` (a role over
/// every resource) in the config's token store before the server starts — the server
/// looks each request's token up there. Returns the tokens (`None` each with auth off).
pub fn configure_auth(
    config_file: &Path,
    on: bool,
    tokens: &[(&str, Role)],
) -> Result<Vec<Option<String>>> {
    let mut text = std::fs::read_to_string(config_file)?;
    text.push_str(&format!("auth: {{ enabled: {on} }}\n"));
    std::fs::write(config_file, text)?;
    if !on {
        return Ok(vec![None; tokens.len()]);
    }
    let (config, base) = crate::runtime::load_config(config_file)?;
    let store = TokenStore::open(&crate::governance::token_store_path(&config, &base))?;
    tokens
        .iter()
        .map(|(name, role)| {
            let grant = Grant::new(vec![*role], vec!["*".into()])?;
            Ok(Some(
                store.create(name, vec![grant], None, "system:bench")?.token,
            ))
        })
        .collect()
}

/// Default headers of a bench's HTTP client: `Authorization: Bearer …` when given a token.
pub fn auth_headers(token: Option<&str>) -> Result<reqwest::header::HeaderMap> {
    let mut h = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {t}"))?;
        v.set_sensitive(true);
        h.insert(reqwest::header::AUTHORIZATION, v);
    }
    Ok(h)
}

/// Prints, per figure, the median of the runs with auth off and with auth on and their
/// ratio (on / off).
pub fn print_auth_comparison(figures: &[(&str, Vec<(bool, f64)>)]) {
    let median = |auth: bool, runs: &[(bool, f64)]| {
        let mut v: Vec<f64> = runs.iter().filter(|r| r.0 == auth).map(|r| r.1).collect();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let n = figures
        .first()
        .map_or(0, |f| f.1.iter().filter(|r| r.0).count());
    println!("\nauth off vs on, median of {n} interleaved runs each:");
    println!(
        "{:<20} {:>12} {:>12} {:>9}",
        "figure", "auth off", "auth on", "on/off"
    );
    for (name, runs) in figures {
        let (off, on) = (median(false, runs), median(true, runs));
        println!("{name:<20} {off:>12.2} {on:>12.2} {:>9.3}", on / off);
    }
}

async fn wait_for_addr(path: &Path) -> Result<String> {
    for _ in 0..600 {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.is_empty()
        {
            return Ok(s.trim().to_string());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the server did not start within 30 s (see server.log)")
}
