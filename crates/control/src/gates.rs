//! Offline gates: what a candidate must show before its rollout starts. Minimums and
//! maximums on its holdout metrics, the champion scored on the candidate's own
//! out-of-time holdout (the same rows, so the comparison is fair), and a latency budget.

use freshet_core::model_spec::GatesSpec;
use freshet_core::{Schema, Value};
use freshet_learn::features::SchemaRow;
use freshet_learn::model::Model;
use freshet_learn::train::score_rows;
use std::time::Instant;

/// The gates' verdict with the figures behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReport {
    pub passed: bool,
    /// One line per check, e.g. `holdout_accuracy 0.93 ≥ champion 0.91 - 0.00`.
    pub lines: Vec<String>,
}

fn metric(metrics: &[(String, f64)], name: &str) -> Option<f64> {
    metrics.iter().find(|(k, _)| k == name).map(|(_, v)| *v)
}

/// Judge a candidate (its holdout metrics, the model, and the holdout rows laid out by
/// `schema`) against the gates and, when there is one, the champion.
pub fn judge(
    spec: &GatesSpec,
    candidate: &Model,
    candidate_metrics: &[(String, f64)],
    champion: Option<&Model>,
    schema: &Schema,
    holdout: &[Vec<Value>],
) -> GateReport {
    let GateReport {
        mut passed,
        mut lines,
    } = judge_metrics(spec, candidate_metrics);
    let records: Vec<SchemaRow<'_>> = holdout.iter().map(|r| SchemaRow::new(schema, r)).collect();
    if let (Some(vs), Some(champ)) = (&spec.vs_champion, champion) {
        let (_, champ_metrics) = score_rows(champ, &records, "holdout");
        match (
            metric(candidate_metrics, &vs.metric),
            metric(&champ_metrics, &vs.metric),
        ) {
            (Some(c), Some(h)) => {
                let ok = c >= h - vs.max_drop;
                passed &= ok;
                lines.push(format!(
                    "{} {c:.4} vs champion {h:.4} on the same holdout (max drop {}): {}",
                    vs.metric,
                    vs.max_drop,
                    if ok { "pass" } else { "fail" }
                ));
            }
            _ => lines.push(format!(
                "{}: not computed on this holdout, comparison skipped",
                vs.metric
            )),
        }
    }
    if spec.max_latency_us > 0 && !records.is_empty() {
        let started = Instant::now();
        for r in &records {
            let _ = candidate.predict_output(r);
        }
        let per_row = started.elapsed().as_secs_f64() * 1e6 / records.len() as f64;
        let ok = per_row <= spec.max_latency_us as f64;
        passed &= ok;
        lines.push(format!(
            "latency {per_row:.1} µs/row ≤ {} µs: {}",
            spec.max_latency_us,
            if ok { "pass" } else { "fail" }
        ));
    }
    GateReport { passed, lines }
}

/// The absolute gates (`min`, `max`) on a candidate's metrics alone: what can be judged
/// without its holdout rows (an external job's version, say).
pub fn judge_metrics(spec: &GatesSpec, candidate_metrics: &[(String, f64)]) -> GateReport {
    let mut lines = Vec::new();
    let mut passed = true;
    for (k, min) in &spec.min {
        let ok = metric(candidate_metrics, k).is_some_and(|v| v >= *min);
        passed &= ok;
        lines.push(format!(
            "{k} {} ≥ {min}: {}",
            metric(candidate_metrics, k).map_or("missing".into(), |v| format!("{v:.4}")),
            if ok { "pass" } else { "fail" }
        ));
    }
    for (k, max) in &spec.max {
        let ok = metric(candidate_metrics, k).is_some_and(|v| v <= *max);
        passed &= ok;
        lines.push(format!(
            "{k} {} ≤ {max}: {}",
            metric(candidate_metrics, k).map_or("missing".into(), |v| format!("{v:.4}")),
            if ok { "pass" } else { "fail" }
        ));
    }
    GateReport { passed, lines }
}
