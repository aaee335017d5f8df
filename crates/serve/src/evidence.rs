//! The rollout controller's evidence, from what serving recorded: per-version request,
//! error, latency and prediction counts (the router's statistics) and, once feedback
//! arrived, each version's accuracy on the labels of the predictions it made since the
//! phase began, and whether the model's labels are flowing.

use crate::feedback::PhaseLabels;
use crate::rollout::{Evidence, EvidenceSource, VariantStats};
use crate::router::Endpoints;
use std::collections::HashMap;

/// Label figures of one version: labelled predictions and their accuracy.
pub type LabelFigures = HashMap<(String, i64), (u64, Option<f64>)>;

/// Labels flow when one that graded a prediction of the model arrived within this many
/// milliseconds.
pub const LABELS_FLOWING_MS: i64 = 3_600_000;

/// What one model's label join covered.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LabelWindow {
    /// Only predictions captured at or after this moment (Unix ms: the start of the
    /// phase being judged) were joined.
    pub since_ms: i64,
    /// A label that graded one of the model's predictions arrived recently
    /// ([`LABELS_FLOWING_MS`]).
    pub flowing: bool,
}

/// Evidence from the served endpoints and the latest label join.
pub struct ServedEvidence<'a> {
    pub endpoints: &'a Endpoints,
    pub labels: &'a LabelFigures,
    /// Per model, what its label figures cover. A model's labels are used only when
    /// they were counted from the start of the phase being judged (a phase that moved
    /// on since the join gets none until the next one); a model without a window has
    /// neither labels nor flowing labels.
    pub windows: &'a HashMap<String, LabelWindow>,
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
        let same_phase = self
            .windows
            .get(model)
            .is_some_and(|w| w.since_ms == since_ms);
        let (labels, metric) = self
            .labels
            .get(&(model.to_string(), version))
            .copied()
            .filter(|_| same_phase)
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
            labels_flowing: self.windows.get(model).is_some_and(|w| w.flowing),
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

/// The label figures and window of one model's phase join
/// ([`crate::feedback::performance_since`] from `since_ms`).
pub fn phase_label_figures(
    model: &str,
    since_ms: i64,
    join: &PhaseLabels,
) -> (LabelFigures, LabelWindow) {
    let window = LabelWindow {
        since_ms,
        flowing: join.recent_labels > 0,
    };
    (label_figures(model, &join.versions), window)
}
