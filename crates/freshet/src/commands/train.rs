//! `freshet train <model>`: train a model declared in freshet.yaml from its stream's
//! table at a pinned Delta version, score it on the newest slice (out-of-time holdout),
//! and publish it to the registry as a new version with its lineage.

use crate::cli::TrainArgs;
use crate::runtime::{events_schemas, load_config, open_artifacts, open_lake, open_tracking};
use anyhow::{Context, Result, anyhow};
use freshet_control::publish::{Lineage, publish};
use freshet_core::SystemClock;
use freshet_lake::{Table, TableKind, schema_of};
use freshet_learn::features::SchemaRow;
use freshet_learn::features::trend::exclude_trending;
use freshet_learn::model::{Model, ModelStamp};
use freshet_learn::train::{holdout_start, train_with_holdout};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

pub async fn run(config_path: &Path, args: TrainArgs) -> Result<()> {
    let started_ms = chrono::Utc::now().timestamp_millis();
    let (config, base) = load_config(config_path)?;
    let spec = config.models.get(&args.model).with_context(|| {
        let known: Vec<&String> = config.models.keys().collect();
        format!(
            "no model '{}' in {} (declared: {known:?}); see docs/models.md",
            args.model,
            config_path.display()
        )
    })?;
    let lake = open_lake(&config, &base).await?;
    let table_name = format!("events/{}", spec.stream);
    let table = Table::open(lake.url_for(TableKind::Events, &spec.stream)?)
        .await
        .with_context(|| {
            format!(
                "no table {table_name} yet: ingest into stream '{}' first",
                spec.stream
            )
        })?;
    let latest = table.version().await;
    let version = args.version.unwrap_or(latest);
    if version < 0 || version > latest {
        return Err(anyhow!(
            "--version {version} does not exist: {table_name} has versions 0 to {latest}"
        ));
    }
    let info = table.info(Some(version)).await?;
    // The configured schema keeps what the table cannot (ranges, categories, PII marks);
    // the table's own columns are the fallback.
    let schema = match events_schemas(&config, &base)?.remove(&spec.stream) {
        Some(s) => s,
        None => schema_of(&table.arrow_schema()),
    };
    let mut resolved = spec.resolve(&args.model, &schema).map_err(|errs| {
        let lines: Vec<String> = errs.iter().map(|e| format!("  {e}")).collect();
        anyhow!(
            "model '{}' does not fit its table:\n{}",
            args.model,
            lines.join("\n")
        )
    })?;
    if let Some(h) = args.holdout {
        if !(0.0..1.0).contains(&h) {
            return Err(anyhow!("--holdout must be in [0, 1), got {h}"));
        }
        resolved.holdout = h;
    }

    let spinner = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    spinner.set_message(format!(
        "reading {table_name}@v{version} ({} rows)",
        info.rows
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let mut rows = table
        .read_rows(Some(version), &schema)
        .await
        .with_context(|| format!("cannot read {table_name} at version {version}"))?;
    spinner.finish_and_clear();
    if rows.len() < 2 {
        return Err(anyhow!(
            "{table_name}@v{version} has {} rows; training needs at least 2",
            rows.len()
        ));
    }
    freshet_control::job::sort_by_arrival(&mut rows, &schema);
    let records: Vec<SchemaRow<'_>> = rows.iter().map(|r| SchemaRow::new(&schema, r)).collect();
    // Features are judged on the training rows only, never on the holdout.
    let split = holdout_start(records.len(), resolved.holdout);
    exclude_trending(spec, &mut resolved, &records[..split]);

    let model = Model::new(&resolved, &schema, ModelStamp::new(&SystemClock))?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(records.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("training {bar:40} {pos}/{len} rows ({per_sec}, {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let outcome = train_with_holdout(model, &records, resolved.holdout, |n| bar.set_position(n))?;
    bar.finish_and_clear();

    let lineage = Lineage {
        table: table_name.clone(),
        table_uri: table.url().to_string(),
        version,
        rows: info.rows,
    };
    let store = open_tracking(&config, &base)?;
    let artifacts = open_artifacts(&config, &base)?;
    let name = args.model.clone();
    let published = tokio::task::spawn_blocking(move || {
        publish(
            store.as_ref(),
            artifacts.as_ref(),
            &name,
            &outcome,
            &lineage,
            started_ms,
        )
        .map(|p| (p, outcome))
    })
    .await?
    .context("cannot publish the model to the registry")?;
    let (p, outcome) = published;

    println!(
        "model {} version {} trained on {table_name}@v{version}: {} rows learnt, {} held out (newest), {} skipped",
        args.model, p.version, outcome.train_rows, outcome.holdout_rows, outcome.skipped_rows
    );
    for (k, v) in &outcome.metrics {
        println!("  {k:<32} {v:.4}");
    }
    println!(
        "run {} in experiment {}; model id {}",
        p.run_id, p.experiment_id, p.model_id
    );
    println!(
        "load it with MLflow: mlflow.artifacts.download_artifacts(\"models:/{}/{}\")",
        args.model, p.version
    );
    Ok(())
}
