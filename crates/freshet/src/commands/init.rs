//! `freshet init`: a working example to start from.

use crate::cli::InitArgs;
use anyhow::{Context, Result};
use std::path::Path;

/// The example configuration `freshet init` writes. Every key is documented in
/// docs/configuration.md.
pub const EXAMPLE_CONFIG: &str = r#"# Freshet configuration (docs/configuration.md). `${VAR}` and `${VAR:-default}` read
# the environment. Secrets never go here: the PII key comes from FRESHET_PII_KEY or the
# key file below.
server:
  listen: ${FRESHET_LISTEN:-127.0.0.1:7070}
  max_body_bytes: 16777216        # larger bodies get 413
  max_buffered_records: 400000    # past this, ingest answers 503 with Retry-After

lake:
  path: data/lake                 # or file:///abs/path; relative to this file
  checkpoint_interval: 50
  retention_hours: 168            # vacuum removes unreferenced files older than this
  compaction: { enabled: true, interval_secs: 60, min_files: 16, small_file_mb: 32 }

registry:
  path: data/registry.db          # experiments and runs (MLflow API at /api/2.0/mlflow)
  artifacts: data/artifacts       # run files and model directories (mlflow-artifacts:/)

auth:
  enabled: true                   # every route but /healthz and /readyz needs a token
  store: data/govern.db           # API tokens (hashed) and approvals
  admin_token_file: .freshet/admin.token   # written 0600 by `freshet init`
  metrics_public: true

audit:                            # every change, allowed or not, in a hash chain
  dir: data/audit
  checkpoint_dir: data/audit-checkpoints   # signed checkpoints, kept apart
  key_file: .freshet/audit.key

pii:
  key_env: FRESHET_PII_KEY
  key_file: .freshet/pii.key
  key_version: v1

streams:
  # Payments posted by applications: POST /v1/streams/payments/events
  payments:
    source: { type: http }
    schema:
      unknown_fields: reject
      fields:
        - { name: payment_id, type: string, required: true, max_length: 64 }
        - { name: card_number, type: string, required: true, pii: hash }
        - { name: email, type: string, pii: redact }
        - { name: amount, type: float, required: true, min: 0, max: 100000 }
        - { name: currency, type: string, required: true, categories: [EUR, USD, GBP] }
        - { name: country, type: string, max_length: 2 }
        - { name: ts, type: timestamp, required: true }
        - { name: is_fraud, type: int, min: 0, max: 1 }
    transforms:
      - { type: filter, expr: "amount > 0" }
      - { type: derive, field: amount_band, as: string, expr: "amount >= 1000 ? 'high' : 'normal'" }
      - { type: rename, from: country, to: country_code }
    commit: { max_rows: 100000, max_bytes: 67108864, max_latency_ms: 20 }

  # Synthetic card transactions whose fraud pattern changes at event 60000.
  cards:
    source: { type: generator, kind: cards, seed: 42, rate_per_sec: 500, drift: [{ at: 60000 }] }
    commit: { max_latency_ms: 1000 }

models:
  # `freshet train fraud` learns events/cards at its latest version, scores the newest
  # 20% of rows, and registers a version (docs/models.md).
  fraud:
    stream: cards
    label: is_fraud
    learner: { type: logistic_regression, optimizer: adam }
"#;

pub fn run(args: &InitArgs) -> Result<()> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config = dir.join("freshet.yaml");
    write_new(&config, EXAMPLE_CONFIG.as_bytes(), args.force)?;
    let key_dir = dir.join(".freshet");
    std::fs::create_dir_all(&key_dir)?;
    let key_path = key_dir.join("pii.key");
    if !key_path.exists() || args.force {
        let key: [u8; 32] = rand::random();
        write_new(&key_path, hex::encode(key).as_bytes(), true)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    let (config_model, base) = crate::runtime::load_config(&config)?;
    let gov = crate::governance::open(&config_model, &base)?;
    let token_file = crate::governance::admin_token_path(&config_model, &base);
    let created = crate::governance::ensure_admin_token(&gov, &token_file, "init")?;
    gov.audit().checkpoint_now()?;
    drop(gov);
    let samples = dir.join("samples");
    std::fs::create_dir_all(&samples)?;
    write_new(
        &samples.join("payments.ndjson"),
        sample_payments(1000).as_bytes(),
        args.force,
    )?;
    println!(
        "wrote {}, {} and {}",
        config.display(),
        key_path.display(),
        samples.join("payments.ndjson").display()
    );
    if created {
        println!(
            "wrote an admin token to {} (mode 0600); the CLI uses it, clients send it as `Authorization: Bearer <token>`",
            token_file.display()
        );
    }
    println!("next:");
    println!("  freshet --config {} validate", config.display());
    println!("  freshet --config {} up", config.display());
    println!(
        "  freshet --config {} ingest payments {}",
        config.display(),
        samples.join("payments.ndjson").display()
    );
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    if path.exists() && !force {
        anyhow::bail!("{} exists; pass --force to overwrite", path.display());
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Sample payments; every 50th has a problem the validator catches.
pub fn sample_payments(n: usize) -> String {
    let mut out = String::new();
    for i in 0..n {
        let amount = match i % 50 {
            7 => -5.0,
            _ => ((i * 7919) % 250_000) as f64 / 100.0 + 1.0,
        };
        let currency = ["EUR", "USD", "GBP"][i % 3];
        let card = format!(
            "4{:015}",
            (i as u64).wrapping_mul(2_654_435_761) % 1_000_000_000_000_000
        );
        let line = if i % 50 == 23 {
            format!(
                r#"{{"payment_id":"p{i}","amount":{amount},"currency":"{currency}","ts":"2026-11-21T10:00:00Z"}}"#
            )
        } else {
            format!(
                r#"{{"payment_id":"p{i}","card_number":"{card}","email":"user{i}@example.com","amount":{amount},"currency":"{currency}","country":"FR","ts":"2026-11-21T10:{:02}:{:02}Z","is_fraud":{}}}"#,
                (i / 60) % 60,
                i % 60,
                u8::from(i % 37 == 0)
            )
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}
