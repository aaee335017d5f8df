//! `freshet score <model> --table T --out O`: batch scoring. Every row of a table at a
//! pinned version is scored by a registered version (the champion by default) and
//! written to another table with the prediction beside the input columns, in one
//! commit that records what was scored, so running the same command again adds nothing.

use crate::cli::ScoreArgs;
use crate::runtime::{load_config, open_artifacts, open_lake, open_tracking};
use anyhow::{Context, Result, anyhow, bail};
use freshet_core::{Field, FieldType, Schema, Value};
use freshet_lake::{RowBatchBuilder, Table, TableOptions, Txn, schema_of};
use freshet_serve::loader::load_version;
use freshet_serve::service::predict_rows;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

pub async fn run(config_path: &Path, args: ScoreArgs) -> Result<()> {
    let (config, base) = load_config(config_path)?;
    let lake = open_lake(&config, &base).await?;
    let store = open_tracking(&config, &base)?;
    let artifacts = open_artifacts(&config, &base)?;
    let model_version = match args.model_version {
        Some(v) => v,
        None => {
            store
                .get_version_by_alias(&args.model, &args.alias)
                .with_context(|| {
                    format!(
                        "model '{}' has no alias '{}'; pass --model-version N or set the alias",
                        args.model, args.alias
                    )
                })?
                .version
        }
    };
    let loaded = load_version(
        store.as_ref(),
        artifacts.as_ref(),
        &args.model,
        model_version,
    )?;

    let source = Table::open(lake.table_url(&args.table)?)
        .await
        .with_context(|| format!("no table '{}' (try `freshet tables`)", args.table))?;
    let latest = source.version().await;
    let version = args.version.unwrap_or(latest);
    if version < 0 || version > latest {
        bail!(
            "--version {version} does not exist: {} has versions 0 to {latest}",
            args.table
        );
    }
    let schema = schema_of(&source.arrow_schema());
    let missing: Vec<&str> = loaded
        .columns()
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| schema.index_of(n).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} lacks column(s) the model reads: {}",
            args.table,
            missing.join(", ")
        );
    }

    let app_id = format!("score:{}:v{model_version}:{}", args.model, args.table);
    let mut out_fields: Vec<Field> = schema
        .fields()
        .iter()
        .filter(|f| !["prediction", "probabilities", "model_version"].contains(&f.name.as_str()))
        .cloned()
        .collect();
    let kept = out_fields.len();
    let label_type = if loaded.is_regression() {
        FieldType::Float
    } else {
        loaded.model.spec().label_type
    };
    out_fields.push(Field::new("prediction", label_type));
    out_fields.push(Field::new("probabilities", FieldType::String));
    out_fields.push(Field::new("model_version", FieldType::Int));
    let out_schema = Schema::new(out_fields);
    let out = Table::open_or_create(
        lake.table_url(&args.out)?,
        &out_schema,
        &TableOptions::default(),
    )
    .await
    .with_context(|| format!("cannot open or create '{}'", args.out))?;
    if out
        .txn_version(&app_id)
        .await?
        .is_some_and(|v| v >= version)
    {
        println!(
            "{}@v{version} was already scored by {} v{model_version} into {}; nothing to do",
            args.table, args.model, args.out
        );
        return Ok(());
    }

    let spinner = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    spinner.set_message(format!("reading {}@v{version}", args.table));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let rows = source.read_rows(Some(version), &schema).await?;
    spinner.finish_and_clear();
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(rows.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("scoring {bar:40} {pos}/{len} rows ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Where each kept source column goes in the output, worked out once.
    let copy: Vec<(usize, usize)> = schema
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            out_schema
                .index_of(&f.name)
                .filter(|p| *p < kept)
                .map(|p| (i, p))
        })
        .collect();
    let mut b = RowBatchBuilder::new(&out_schema, rows.len());
    for chunk in rows.chunks(4096) {
        let (preds, _) = predict_rows(&loaded, &schema, chunk)?;
        for (r, p) in chunk.iter().zip(&preds) {
            for &(i, pos) in &copy {
                b.push(pos, r.get(i).unwrap_or(&Value::Null));
            }
            b.push(kept, &p.label);
            match &p.proba {
                Some(v) => b.push_str(kept + 1, &serde_json::to_string(v).unwrap_or_default()),
                None => b.push(kept + 1, &Value::Null),
            }
            b.push(kept + 2, &Value::Int(model_version));
            b.end_row();
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let committed = out
        .append(b.finish()?, &[Txn { app_id, version }])
        .await
        .map_err(|e| anyhow!("cannot write '{}': {e}", args.out))?;
    println!(
        "scored {} rows of {}@v{version} with {} v{model_version} into {} (version {committed})",
        rows.len(),
        args.table,
        args.model,
        args.out
    );
    Ok(())
}
