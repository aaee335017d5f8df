//! One module per command; each parses nothing itself (clap did) and calls services.

mod approvals;
mod audit;
mod bench;
mod bench_audit;
mod bench_learners;
mod bench_serve;
mod bench_shared;
mod bench_soak;
mod bench_tracking;
mod demo;
mod ingest;
mod init;
mod inventory;
mod lineage;
mod rollout;
mod score;
mod tables;
mod token;
mod train;
mod up;

use crate::cli::{BenchCommand, Cli, Command};
use anyhow::Result;

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => init::run(&a),
        Command::Demo(a) => demo::run(a).await,
        Command::Validate => validate(&cli.config),
        Command::Up(a) => up::run(&cli.config, a).await,
        Command::Ingest(a) => ingest::run(&cli.config, a).await,
        Command::Train(a) => train::run(&cli.config, a).await,
        Command::Score(a) => score::run(&cli.config, a).await,
        Command::Rollout(a) => rollout::run(&cli.config, a).await,
        Command::Token(c) => token::run(&cli.config, c).await,
        Command::Audit(c) => audit::run(&cli.config, c).await,
        Command::Approvals(c) => approvals::run(&cli.config, c).await,
        Command::Inventory(a) => inventory::run(&cli.config, &a),
        Command::Lineage(c) => lineage::run(&cli.config, c).await,
        Command::Tables => tables::list(&cli.config).await,
        Command::Table(t) => tables::table(&cli.config, t).await,
        Command::Bench(BenchCommand::Ingest(a)) => bench::ingest(a).await,
        Command::Bench(BenchCommand::Tracking(a)) => bench_tracking::tracking(a).await,
        Command::Bench(BenchCommand::Learners(a)) => bench_learners::run(a),
        Command::Bench(BenchCommand::Serve(a)) => bench_serve::serve(a).await,
        Command::Bench(BenchCommand::Audit(a)) => bench_audit::run(a).await,
        Command::Bench(BenchCommand::Records(a)) => bench::records(a),
        Command::Bench(BenchCommand::Soak(a)) => bench_soak::run(a).await,
    }
}

/// `freshet validate`: types, rules, and every stream's pipeline (expressions, PII key).
fn validate(path: &std::path::Path) -> Result<()> {
    let (config, base) = crate::runtime::load_config(path)?;
    let schemas = crate::runtime::events_schemas(&config, &base)
        .map_err(|e| anyhow::anyhow!("{} is invalid: {e:#}", path.display()))?;
    // Models are resolved against the tables their streams write, generator streams too.
    let mut errs = Vec::new();
    for (name, m) in &config.models {
        if let Some(schema) = schemas.get(&m.stream)
            && let Err(e) = m.resolve(name, schema)
        {
            errs.extend(e);
        }
    }
    if !errs.is_empty() {
        let list: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
        anyhow::bail!("{} is invalid:\n{}", path.display(), list.join("\n"));
    }
    println!(
        "{} is valid: {} stream(s), {} model(s)",
        path.display(),
        config.streams.len(),
        config.models.len()
    );
    for (name, s) in &config.streams {
        let kind = match &s.source {
            freshet_core::config::SourceConfig::Http {} => "http",
            freshet_core::config::SourceConfig::File { .. } => "file",
            freshet_core::config::SourceConfig::Generator(_) => "generator",
            freshet_core::config::SourceConfig::Kafka(_) => "kafka",
            freshet_core::config::SourceConfig::PostgresCdc(_) => "postgres_cdc",
            freshet_core::config::SourceConfig::Pulsar(_) => "pulsar",
        };
        println!(
            "  {name}: {kind} source, {} transform(s)",
            s.transforms.len()
        );
    }
    Ok(())
}

/// The `p` quantile (0..1) of sorted values, by nearest rank; 0 for no values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or(0.0)
}
