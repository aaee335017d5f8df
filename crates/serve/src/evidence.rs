//! The rollout controller's evidence, from what serving recorded: per-version request,
//! error, latency and prediction counts (the router's statistics) and, once feedback
//! arrived, each version's accuracy on its labels.

use crate::rollout::{Evidence, EvidenceSource, VariantStats};
use crate::router::Endpoints;
use std::collections::HashMap;

/// Label figures of one version: labelled predictions and their accuracy.
pub type LabelFigures = HashMap<(String, i64), (u64, Option<f64>)>;

/// Evidence from the served endpoints and the latest label join.
pub struct ServedEvidence<'a> {
    pub endpoints: &'a Endpoints,
    pub labels: &'a LabelFigures,
    pub now_ms: i64,
}

impl ServedEvidence<'_> {
    fn variant(&self, model: &str, version: Option<i64>, since_ms: i64) -> VariantStats {
        let Some(version) = version else {
            return VariantStats::default();
        };
        let summary = self
            .endpoints
            .get(model)
            .map(|ep| ep.stats(version).summary(since_ms, self.now_ms))
            .unwrap_or_default();
        let (labels, metric) = self
            .labels
            .get(&(model.to_string(), version))
            .copied()
            .unwrap_or((0, None));
        VariantStats {
            requests: summary.requests,
            errors: summary.errors,
            p99_ms: summary.p99_ms,
            prediction_hist: summary.classes.iter().map(|c| *c as f64).collect(),
            labels,
            label_metric: metric,
        }
    }
}

impl EvidenceSource for ServedEvidence<'_> {
    fn evidence(
        &self,
        model: &str,
        champion: Option<i64>,
        challenger: i64,
        since_ms: i64,
    ) -> Evidence {
        let mut champion = self.variant(model, champion, since_ms);
        let mut challenger = self.variant(model, Some(challenger), since_ms);
        // Both histograms must span the same classes.
        let n = champion
            .prediction_hist
            .len()
            .max(challenger.prediction_hist.len());
        champion.prediction_hist.resize(n, 0.0);
        challenger.prediction_hist.resize(n, 0.0);
        Evidence {
            champion,
            challenger,
            now_ms: self.now_ms,
        }
    }
}

/// Sum the label join per (model, version) across variants.
pub fn label_figures(model: &str, perf: &[crate::feedback::VersionPerformance]) -> LabelFigures {
    let mut acc: HashMap<i64, (u64, f64)> = HashMap::new();
    for p in perf {
        let e = acc.entry(p.version).or_default();
        if let Some(a) = p.accuracy {
            e.0 += p.labelled;
            e.1 += a * p.labelled as f64;
        }
    }
    acc.into_iter()
        .map(|(v, (n, correct))| {
            let metric = (n > 0).then(|| correct / n as f64);
            ((model.to_string(), v), (n, metric))
        })
        .collect()
}
