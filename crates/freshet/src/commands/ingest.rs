//! `freshet ingest <stream> <file>`: the file source from the command line.

use crate::cli::{Format, IngestArgs};
use crate::runtime::{Runtime, load_config};
use anyhow::{Context, Result};
use freshet_core::config::FileFormat;
use freshet_ingest::source::file::{FileOptions, FileProgress, ingest_file};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::Path;

pub async fn run(config_path: &Path, args: IngestArgs) -> Result<()> {
    let (config, base) = load_config(config_path)?;
    if !config.streams.contains_key(&args.stream) {
        let known: Vec<&String> = config.streams.keys().collect();
        anyhow::bail!(
            "unknown stream '{}'; the configuration has {known:?}",
            args.stream
        );
    }
    let format = match args.format {
        Some(Format::Csv) => FileFormat::Csv,
        Some(Format::Ndjson) => FileFormat::Ndjson,
        None => FileFormat::from_path(&args.file).with_context(|| {
            format!(
                "cannot tell the format of {}: pass --format csv|ndjson",
                args.file.display()
            )
        })?,
    };
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .len();
    let runtime = Runtime::start(config, base).await?;
    let mut opts = FileOptions::new(format);
    opts.follow = args.follow;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let ctrl_c = tokio::spawn(async move {
        super::up::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let b = bar.clone();
    let report = move |p: FileProgress| {
        b.set_length(p.size.max(p.offset));
        b.set_position(p.offset);
        b.set_message(format!(
            "{} accepted, {} rejected, {} filtered",
            p.accepted, p.rejected, p.filtered
        ));
    };
    let result = ingest_file(
        &runtime.ingest,
        &args.stream,
        &args.file,
        &opts,
        stop,
        &report,
    )
    .await;
    ctrl_c.abort();
    bar.finish_and_clear();
    runtime.shutdown().await;
    let p = result?;
    if p.resumed_from > 0 {
        println!(
            "resumed at byte {} (already committed by an earlier run)",
            p.resumed_from
        );
    }
    println!(
        "{}: {} accepted, {} rejected (see dlq/{}), {} filtered; committed through byte {}",
        args.file.display(),
        p.accepted,
        p.rejected,
        args.stream,
        p.filtered,
        p.offset
    );
    Ok(())
}
