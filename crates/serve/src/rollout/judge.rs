//! The pure part of the rollout: given the configured checks and the evidence of the
//! current phase, is the challenger good enough to go on? No I/O and no clock here
//! (the time is in the [`Evidence`]), so every decision can be replayed from the
//! recorded figures.

use super::state::{Phase, RolloutState};
use freshet_core::model_spec::{LABEL_WAIT_FACTOR, RolloutSpec};
use serde::{Deserialize, Serialize};

/// What one variant did since the phase began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantStats {
    /// Requests scored (in shadow, the challenger's mirrored requests count).
    pub requests: u64,
    /// Requests that failed to score.
    pub errors: u64,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: f64,
    /// Predictions per class (classification) or per fixed bin (regression). Both
    /// variants must use the same classes or bins, in the same order.
    pub prediction_hist: Vec<f64>,
    /// Predictions whose label has arrived.
    pub labels: u64,
    /// The label metric on those (bigger is better: accuracy, or e.g. −MAE), once any
    /// labels have arrived.
    pub label_metric: Option<f64>,
}

impl VariantStats {
    /// Errors per request; `None` without requests.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    fn summary(&self) -> String {
        let mut s = format!("{} req", self.requests);
        if let Some(r) = self.error_rate() {
            s.push_str(&format!(", {:.2}% err", r * 100.0));
        }
        s.push_str(&format!(", p99 {:.1} ms", self.p99_ms));
        if let Some(m) = self.label_metric {
            s.push_str(&format!(", metric {m:.4} on {} labels", self.labels));
        } else if self.labels > 0 {
            s.push_str(&format!(", {} labels", self.labels));
        }
        s
    }
}

/// Both variants' figures for the current phase, and the time they were read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub champion: VariantStats,
    pub challenger: VariantStats,
    /// Unix milliseconds.
    pub now_ms: i64,
    /// The model has received feedback labels that joined its predictions recently:
    /// canary steps then wait for the label metric before they pass.
    #[serde(default)]
    pub labels_flowing: bool,
}

impl Evidence {
    /// One line for a decision record.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "challenger {}; champion {}",
            self.challenger.summary(),
            self.champion.summary()
        );
        if let Some(d) = js_distance(
            &self.champion.prediction_hist,
            &self.challenger.prediction_hist,
        ) {
            s.push_str(&format!("; drift {d:.3}"));
        }
        s
    }

    /// One line for a decision of the bake, where the serving champion is the
    /// candidate and the shadowed challenger is the previous champion.
    pub fn bake_summary(&self, candidate: i64, previous: i64) -> String {
        format!(
            "v{candidate} (champion) {}; v{previous} (shadow) {}",
            self.champion.summary(),
            self.challenger.summary()
        )
    }
}

/// The outcome of judging a phase.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not enough requests or time yet (or labels still expected).
    Wait,
    /// Every check passed.
    Pass,
    /// A check failed; the reason names it with its figures.
    Fail(String),
    /// Too close to call, or labels never came: a person decides.
    Inconclusive(String),
}

/// The outcome of judging the bake after a promotion; each ending says why.
#[derive(Debug, Clone, PartialEq)]
pub enum BakeVerdict {
    /// Neither enough labels for both versions nor the bake's longest time yet.
    Wait,
    /// The candidate stays champion: not worse by more than the allowed drop, or the
    /// labels did not come in time.
    Passed(String),
    /// The candidate did worse than the previous champion on the same live labels.
    Failed(String),
}

/// What the controller does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    Stay,
    /// Go to the next phase (shadow or a canary step).
    Enter(Phase),
    Promote,
    Rollback(String),
    Pause(String),
    /// Checks passed but a second person must sign the promotion off (request id).
    AwaitApproval(String),
}

/// The phase a rollout begins with; `None` when nothing is configured (validation
/// refuses that, but a hand-built spec could say it).
pub fn first_phase(spec: &RolloutSpec) -> Option<(Phase, usize)> {
    if spec.shadow.enabled {
        return Some((Phase::Shadow, 0));
    }
    spec.canary
        .steps
        .first()
        .map(|w| (Phase::Canary { weight_pct: *w }, 0))
}

/// The phase after `phase`, with its step index; `None` means promotion. Steps are
/// found by weight, so a step list edited during a rollout still moves forward.
pub fn next_phase(spec: &RolloutSpec, phase: &Phase) -> Option<(Phase, usize)> {
    let above = match phase {
        Phase::Candidate => return first_phase(spec),
        Phase::Shadow => f64::NEG_INFINITY,
        Phase::Canary { weight_pct } => *weight_pct,
        Phase::Baking
        | Phase::Promoted
        | Phase::RolledBack
        | Phase::Paused { .. }
        | Phase::AwaitingApproval { .. } => {
            return None;
        }
    };
    spec.canary
        .steps
        .iter()
        .enumerate()
        .find(|(_, w)| **w > above)
        .map(|(i, w)| (Phase::Canary { weight_pct: *w }, i))
}

/// Minimum challenger requests and seconds of a judged phase.
fn hold(spec: &RolloutSpec, phase: &Phase) -> Option<(u64, u64)> {
    match phase {
        Phase::Shadow => Some((spec.shadow.min_requests.get(), spec.shadow.min_secs)),
        Phase::Canary { .. } => Some((spec.canary.min_requests.get(), spec.canary.min_secs)),
        _ => None,
    }
}

/// Whether a passing value lies within `margin` (a fraction of the limit's size) of
/// an upper limit.
fn near_upper(value: f64, limit: f64, margin: f64) -> bool {
    margin > 0.0 && value > limit - margin * limit.abs()
}

fn near_lower(value: f64, limit: f64, margin: f64) -> bool {
    margin > 0.0 && value < limit + margin * limit.abs()
}

/// Judge the current phase. It waits until the challenger has served the phase's
/// minimum requests (mirrored ones in shadow) and the phase has lasted its minimum
/// time; then any failing check fails it, labels that are required but missing make it
/// wait (and, past the label wait, inconclusive), a check within the inconclusive
/// margin makes it inconclusive, and otherwise it passes. In a canary step labels are
/// also awaited whenever they are flowing ([`Evidence::labels_flowing`]): users get
/// the challenger's answers there, so its label metric is compared before it passes.
///
/// Comparisons with the champion are skipped when the champion served nothing in the
/// phase: there is nothing to compare with, and waiting would never end.
pub fn judge(spec: &RolloutSpec, phase: &Phase, phase_started_ms: i64, ev: &Evidence) -> Verdict {
    let Some((min_requests, min_secs)) = hold(spec, phase) else {
        return Verdict::Wait;
    };
    let elapsed_ms = ev.now_ms.saturating_sub(phase_started_ms);
    let held_ms = i64::try_from(min_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if ev.challenger.requests < min_requests || elapsed_ms < held_ms {
        return Verdict::Wait;
    }
    let c = &spec.checks;
    let (champ, chall) = (&ev.champion, &ev.challenger);
    let margin = c.inconclusive_margin;
    let mut fails = Vec::new();
    let mut close = Vec::new();

    if let (Some(a), Some(b)) = (champ.error_rate(), chall.error_rate()) {
        let rise = b - a;
        let text = format!(
            "error rate {:.2}% vs champion {:.2}% (limit +{:.2} points)",
            b * 100.0,
            a * 100.0,
            c.max_error_rate_increase * 100.0
        );
        if rise > c.max_error_rate_increase {
            fails.push(text);
        } else if near_upper(rise, c.max_error_rate_increase, margin) {
            close.push(text);
        }
    }

    // Under the floor, latency never fails: ratios of sub-millisecond figures are noise.
    if champ.requests > 0 && chall.p99_ms > c.p99_floor_ms {
        let ratio = if champ.p99_ms > 0.0 {
            chall.p99_ms / champ.p99_ms
        } else {
            f64::INFINITY
        };
        let text = format!(
            "p99 latency {:.1} ms vs champion {:.1} ms (x{ratio:.2}, limit x{})",
            chall.p99_ms, champ.p99_ms, c.max_p99_ratio
        );
        if ratio > c.max_p99_ratio {
            fails.push(text);
        } else if near_upper(ratio, c.max_p99_ratio, margin) {
            close.push(text);
        }
    }

    if let Some(d) = js_distance(&champ.prediction_hist, &chall.prediction_hist) {
        let text = format!(
            "prediction drift {d:.3} (Jensen-Shannon distance, limit {})",
            c.max_prediction_drift
        );
        if d > c.max_prediction_drift {
            fails.push(text);
        } else if near_upper(d, c.max_prediction_drift, margin) {
            close.push(text);
        }
    }

    let min_labels = c.min_labels.get();
    let labelled = match (champ.label_metric, chall.label_metric) {
        (Some(a), Some(b)) if champ.labels >= min_labels && chall.labels >= min_labels => {
            Some((a, b))
        }
        _ => None,
    };
    if let Some((a, b)) = labelled {
        let delta = b - a;
        let text = format!(
            "label metric {b:.4} vs champion {a:.4} ({delta:+.4}, limit {:+})",
            c.min_label_metric_delta
        );
        if delta < c.min_label_metric_delta {
            fails.push(text);
        } else if near_lower(delta, c.min_label_metric_delta, margin) {
            close.push(text);
        }
    }

    if !fails.is_empty() {
        return Verdict::Fail(fails.join("; "));
    }
    let canary_labels = ev.labels_flowing && matches!(phase, Phase::Canary { .. });
    if (c.require_labels || canary_labels) && labelled.is_none() {
        let wait_secs = c
            .max_label_wait_secs
            .unwrap_or_else(|| min_secs.saturating_mul(LABEL_WAIT_FACTOR));
        let wait_ms = i64::try_from(wait_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        if elapsed_ms < wait_ms {
            return Verdict::Wait;
        }
        let why = if c.require_labels {
            "labels are required"
        } else {
            "labels are flowing"
        };
        return Verdict::Inconclusive(format!(
            "{why} but after {} s the challenger has {} and the champion {} (need {min_labels} each)",
            elapsed_ms / 1000,
            chall.labels,
            champ.labels
        ));
    }
    if !close.is_empty() {
        return Verdict::Inconclusive(format!("too close to call: {}", close.join("; ")));
    }
    Verdict::Pass
}

/// Judge the bake of `state` (phase [`Phase::Baking`]). In `ev` the champion is the
/// candidate (serving) and the challenger the previous champion (shadowed), both
/// counted from the bake's start. Once both have `bake.min_labels` labels, a drop of
/// the candidate's label metric below the previous champion's by more than
/// `bake.max_accuracy_drop` fails the bake and anything else passes it; without those
/// labels by `bake.max_secs`, it passes and says so.
pub fn judge_bake(spec: &RolloutSpec, state: &RolloutState, ev: &Evidence) -> BakeVerdict {
    let b = &spec.bake;
    let (candidate, previous) = (state.candidate_version, state.champion_version);
    let Some(previous) = previous else {
        return BakeVerdict::Passed("bake ended: no previous champion to compare with".into());
    };
    let (new, old) = (&ev.champion, &ev.challenger);
    let min_labels = b.min_labels.get();
    if let (Some(n), Some(o)) = (new.label_metric, old.label_metric)
        && new.labels >= min_labels
        && old.labels >= min_labels
    {
        let drop = o - n;
        let figures = format!(
            "v{candidate} scored {n:.3} on {} live labels, v{previous} {o:.3} on the same period",
            new.labels
        );
        return if drop > b.max_accuracy_drop {
            BakeVerdict::Failed(format!(
                "bake: {figures} (drop {drop:.3} > {})",
                b.max_accuracy_drop
            ))
        } else {
            BakeVerdict::Passed(format!(
                "bake passed: {figures} (drop {drop:.3} <= {})",
                b.max_accuracy_drop
            ))
        };
    }
    let elapsed_ms = ev.now_ms.saturating_sub(state.phase_started_ms);
    let max_ms = i64::try_from(b.max_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    if elapsed_ms < max_ms {
        return BakeVerdict::Wait;
    }
    BakeVerdict::Passed(format!(
        "bake ended after {} s without enough labels to compare: v{candidate} has {}, v{previous} {} (need {min_labels} each); v{candidate} stays champion",
        elapsed_ms / 1000,
        new.labels,
        old.labels
    ))
}

/// What to do next in `state` given the evidence of its current phase. Terminal and
/// paused rollouts stay where they are: only a person moves a paused one. A bake that
/// passes is a `Promote` (the promotion becomes final), one that fails a `Rollback`.
pub fn step(spec: &RolloutSpec, state: &RolloutState, ev: &Evidence) -> Transition {
    match &state.phase {
        Phase::Candidate => match first_phase(spec) {
            Some((p, _)) => Transition::Enter(p),
            None => Transition::Promote,
        },
        phase @ (Phase::Shadow | Phase::Canary { .. }) => {
            match judge(spec, phase, state.phase_started_ms, ev) {
                Verdict::Wait => Transition::Stay,
                Verdict::Pass => match next_phase(spec, phase) {
                    Some((p, _)) => Transition::Enter(p),
                    None => Transition::Promote,
                },
                Verdict::Fail(r) => Transition::Rollback(r),
                Verdict::Inconclusive(r) => Transition::Pause(r),
            }
        }
        Phase::Baking => match judge_bake(spec, state, ev) {
            BakeVerdict::Wait => Transition::Stay,
            BakeVerdict::Passed(_) => Transition::Promote,
            BakeVerdict::Failed(r) => Transition::Rollback(r),
        },
        Phase::Promoted
        | Phase::RolledBack
        | Phase::Paused { .. }
        | Phase::AwaitingApproval { .. } => Transition::Stay,
    }
}

/// The Jensen-Shannon distance between two histograms (counts; normalised here), in
/// base 2 so that it lies in [0, 1]: 0 for the same distribution, 1 for disjoint ones.
/// The shorter histogram is padded with zeros (a class only one variant predicted).
/// Terms with zero probability contribute 0 (0·log 0 = 0), so no epsilon is needed: a
/// bin that is positive in P or Q is positive in their mixture M.
///
/// `None` when either histogram is empty, sums to zero, or holds a negative or
/// non-finite count: there is no distribution to compare.
pub fn js_distance(p: &[f64], q: &[f64]) -> Option<f64> {
    let valid = |h: &[f64]| h.iter().all(|x| x.is_finite() && *x >= 0.0);
    if !valid(p) || !valid(q) {
        return None;
    }
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    if sp <= 0.0 || sq <= 0.0 || !sp.is_finite() || !sq.is_finite() {
        return None;
    }
    let n = p.len().max(q.len());
    let mut divergence = 0.0;
    for i in 0..n {
        let pi = p.get(i).copied().unwrap_or(0.0) / sp;
        let qi = q.get(i).copied().unwrap_or(0.0) / sq;
        let mi = 0.5 * (pi + qi);
        if pi > 0.0 {
            divergence += 0.5 * pi * (pi / mi).log2();
        }
        if qi > 0.0 {
            divergence += 0.5 * qi * (qi / mi).log2();
        }
    }
    // Rounding can leave a hair below 0 or above 1.
    Some(divergence.clamp(0.0, 1.0).sqrt())
}
