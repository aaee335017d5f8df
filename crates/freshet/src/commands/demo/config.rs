//! The demo's embedded configuration: one HTTP stream shaped like the demo's data, and
//! one model with quick triggers, gates and rollout steps so the loop turns in seconds.

use super::client::Stream;
use crate::cli::DemoArgs;
use freshet_core::{FieldType, PiiAction};
use std::fmt::Write as _;

/// The loop's settings for one demo run: what the flags say, else the defaults of
/// the stream. The card stream keeps the settings its narrative was written for; any
/// other stream (a CSV, a concept-drift generator) gets the defaults for a stream
/// nobody tuned for, chosen for fast recovery from abrupt change (docs/loop.md).
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    pub learner: String,
    pub job: String,
    pub initial_rows: u64,
    pub rows_after_drift: u64,
    pub window_rows: u64,
    pub retrain_rows: u64,
    pub rollout_requests: u64,
    pub rollout_secs: u64,
    /// Canary steps in percent; empty: promotion straight after shadow, judged on
    /// the live labels of the same requests, with the bake period as the safety net.
    pub canary_steps: Vec<f64>,
    /// `snapshot` or `live`.
    pub serving: String,
}

impl Knobs {
    pub fn resolve(stream: &Stream, args: &DemoArgs) -> Self {
        let cards = stream.model == "fraud";
        // A generated concept-drift stream defaults to a live champion. A CSV replay
        // keeps snapshots: live answers go one event at a time so that the label delay
        // is exact, a few hundred events a second in this client, too slow for a
        // 45,000-row file at the default 1,500 a second.
        let serving = args.serving.clone().unwrap_or_else(|| {
            if cards || args.data.is_some() {
                "snapshot"
            } else {
                "live"
            }
            .into()
        });
        let live = serving == "live";
        let pick = |flag: Option<u64>, cards_default: u64, other: u64| {
            flag.unwrap_or(if cards { cards_default } else { other })
        };
        Self {
            learner: args.learner.clone().unwrap_or_else(|| {
                if live && cards {
                    LIVE_LEARNER.into()
                } else if live {
                    UNTUNED_LIVE_LEARNER.into()
                } else if cards {
                    "logistic_regression".into()
                } else {
                    UNTUNED_LEARNER.into()
                }
            }),
            job: args
                .job
                .clone()
                .unwrap_or_else(|| if live { "online" } else { "builtin" }.into()),
            initial_rows: pick(args.initial_rows, 4_000, 1_000),
            // A live champion adapts by itself; its snapshot is the safety net, and a
            // promoted snapshot restarts the live state from it. So after a drift the
            // snapshot waits until the live learner has a full window of the new
            // concept (its boosted member keeps 2,000 rows), and a periodic one is
            // rarer: a restart in the middle of a recovery would undo it.
            rows_after_drift: pick(
                args.rows_after_drift,
                4_000,
                if live { LIVE_ROWS_AFTER_DRIFT } else { 500 },
            ),
            window_rows: pick(args.window_rows, 20_000, 5_000),
            retrain_rows: pick(
                args.retrain_rows,
                0,
                if live { LIVE_RETRAIN_ROWS } else { 1_000 },
            ),
            rollout_requests: pick(args.rollout_requests, 300, 100),
            rollout_secs: pick(args.rollout_secs, 2, 1),
            canary_steps: if cards { vec![50.0] } else { Vec::new() },
            serving,
        }
    }
}

/// The learner of a stream nobody tuned for: gradient-boosted trees retrained on the
/// newest rows of the current concept need no scaling and learn thresholds and
/// interactions from a few hundred rows.
pub const UNTUNED_LEARNER: &str = "gbt";

/// Rows of the new concept a live champion's snapshot waits for after a drift.
pub const LIVE_ROWS_AFTER_DRIFT: u64 = 2_000;
/// Rows between two periodic snapshots of a live champion.
pub const LIVE_RETRAIN_ROWS: u64 = 5_000;

/// The learner of a live champion on the card stream: an ensemble that detects drift
/// per tree and replaces the trees that stop working, learning every label as it comes.
pub const LIVE_LEARNER: &str = "adaptive_random_forest";

/// The learner of a live champion on a stream nobody tuned for: the model selector,
/// whose members (an adaptive random forest, an adaptive tree, naive Bayes, logistic
/// regression at a slow and a fast learning rate, and boosted trees refitted on the
/// rows since the change) all learn every
/// label, the one with the lowest recent error answering. No single learner wins on
/// every stream; the selector follows whichever does on this one.
pub const UNTUNED_LIVE_LEARNER: &str = "selector";

/// The YAML the demo runs with (written into its folder, so it can be reused with
/// `freshet --config <dir>/freshet.yaml up`).
pub fn render(stream: &Stream, k: &Knobs) -> String {
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
auth:
  enabled: true
  store: data/govern.db
  admin_token_file: admin.token
audit:
  dir: data/audit
  checkpoint_dir: data/audit-checkpoints
  key_file: audit.key
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
{features}    learner: {learner}
    serving: {serving}
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
      canary: {{ steps: [{steps}], min_requests: {requests}, min_secs: {secs} }}
      checks: {{ max_prediction_drift: 1.0, min_labels: 100, max_p99_ratio: 3.0, p99_floor_ms: 5{require} }}
"#,
        steps = k
            .canary_steps
            .iter()
            .map(f64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        // Without a canary, shadow must have compared the live labels.
        require = if k.canary_steps.is_empty() {
            ", require_labels: true, max_label_wait_secs: 60"
        } else {
            ""
        },
        stream = stream.name,
        model = stream.model,
        label = stream.label,
        // A bare name is the learner's type; an inline mapping is the whole spec.
        learner = if k.learner.trim_start().starts_with('{') {
            k.learner.clone()
        } else {
            format!("{{ type: {} }}", k.learner)
        },
        serving = k.serving,
        initial = k.initial_rows,
        after_drift = k.rows_after_drift,
        retrain_rows = k.retrain_rows,
        job = if k.job == "online" {
            "{ type: online, holdout_rows: 2000 }".to_string()
        } else {
            format!("{{ type: builtin, window_rows: {} }}", k.window_rows)
        },
        requests = k.rollout_requests.max(1),
        secs = k.rollout_secs,
    )
}
