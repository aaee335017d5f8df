//! The demo's embedded configuration: one HTTP stream shaped like the demo's data, and
//! one model with quick triggers, gates and rollout steps so the loop turns in seconds.

use super::client::Stream;
use crate::cli::DemoArgs;
use freshet_core::{FieldType, PiiAction};
use std::fmt::Write as _;

/// The YAML the demo runs with (written into its folder, so it can be reused with
/// `freshet --config <dir>/freshet.yaml up`).
pub fn render(stream: &Stream, args: &DemoArgs) -> String {
    let mut fields = String::new();
    for f in stream.schema.fields() {
        let _ = write!(fields, "        - {{ name: {}, type: {}", f.name, f.ty);
        if f.pii == Some(PiiAction::Hash) {
            fields.push_str(", pii: hash");
        }
        if f.name == stream.label && f.ty == FieldType::Int {
            fields.push_str(", min: 0, max: 1");
        }
        fields.push_str(" }\n");
    }
    let features = if stream.features.is_empty() {
        String::new()
    } else {
        let mut s = String::from("    features:\n");
        for (name, kind) in &stream.features {
            let _ = writeln!(s, "      - {{ field: {name}, kind: {kind} }}");
        }
        s
    };
    format!(
        r#"# Written by `freshet demo`; every key is documented in docs/.
server:
  listen: 127.0.0.1:0
lake:
  path: data/lake
  compaction: {{ enabled: false }}
registry:
  path: data/registry.db
  artifacts: data/artifacts
pii:
  key_file: pii.key
streams:
  {stream}:
    source: {{ type: http }}
    schema:
      fields:
{fields}    commit: {{ max_latency_ms: 50 }}
models:
  {model}:
    stream: {stream}
    label: {label}
    task: binary
{features}    learner: {{ type: {learner} }}
    holdout: 0.2
    triggers:
      concept_drift: adwin
      initial_rows: {initial}
      rows_after_drift: {after_drift}
      rows: {retrain_rows}
    gates:
      vs_champion: {{ metric: holdout_roc_auc, max_drop: 0.0 }}
      max_latency_us: 5000
    job: {job}
    rollout:
      shadow: {{ min_requests: {requests}, min_secs: {secs} }}
      canary: {{ steps: [50], min_requests: {requests}, min_secs: {secs} }}
      checks: {{ max_prediction_drift: 1.0, min_labels: 100, max_p99_ratio: 3.0, p99_floor_ms: 5 }}
"#,
        stream = stream.name,
        model = stream.model,
        label = stream.label,
        learner = args.learner,
        initial = args.initial_rows,
        after_drift = args.rows_after_drift,
        retrain_rows = args.retrain_rows,
        job = if args.job == "online" {
            "{ type: online, holdout_rows: 2000 }".to_string()
        } else {
            format!("{{ type: builtin, window_rows: {} }}", args.window_rows)
        },
        requests = args.rollout_requests.max(1),
        secs = args.rollout_secs,
    )
}
