//! The safety net: the live learner and its snapshot graded on the same labelled
//! answers, over a sliding window, and the decision to fall back or resume.

use freshet_core::model_spec::LiveSpec;
use std::collections::VecDeque;

/// What the window says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Verdict {
    /// Keep serving as now.
    Hold,
    /// The live learner is worse than the snapshot by more than the margin.
    FallBack {
        live: f64,
        snapshot: f64,
        labels: usize,
    },
    /// The restarted live learner is again at least as good as the snapshot.
    Resume {
        live: f64,
        snapshot: f64,
        labels: usize,
    },
}

/// Errors of both sides over the last `window` labelled answers.
#[derive(Debug, Clone)]
pub(crate) struct SafetyNet {
    spec: LiveSpec,
    /// Regression grades mean absolute error, and the margin is relative to the
    /// snapshot's.
    regression: bool,
    pairs: VecDeque<(f64, f64)>,
    live_sum: f64,
    snap_sum: f64,
}

impl SafetyNet {
    pub(crate) fn new(spec: LiveSpec, regression: bool) -> Self {
        Self {
            spec,
            regression,
            pairs: VecDeque::new(),
            live_sum: 0.0,
            snap_sum: 0.0,
        }
    }

    /// One labelled answer: each side's error on it (0/1 for a class, absolute error
    /// for a value).
    pub(crate) fn push(&mut self, live: f64, snapshot: f64) {
        self.pairs.push_back((live, snapshot));
        self.live_sum += live;
        self.snap_sum += snapshot;
        if self.pairs.len() > self.spec.window
            && let Some((l, s)) = self.pairs.pop_front()
        {
            self.live_sum -= l;
            self.snap_sum -= s;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.pairs.clear();
        self.live_sum = 0.0;
        self.snap_sum = 0.0;
    }

    /// Mean errors `(live, snapshot)` and the labels they rest on, once there are
    /// `min_labels` of them.
    pub(crate) fn errors(&self) -> Option<(f64, f64, usize)> {
        let n = self.pairs.len();
        (n >= self.spec.min_labels && n > 0).then(|| {
            (
                (self.live_sum / n as f64).max(0.0),
                (self.snap_sum / n as f64).max(0.0),
                n,
            )
        })
    }

    fn gap(&self, snapshot: f64) -> f64 {
        if self.regression {
            self.spec.max_error_gap * snapshot
        } else {
            self.spec.max_error_gap
        }
    }

    /// The decision for a learner that is live (`fallen_back == false`) or waiting to
    /// resume.
    pub(crate) fn verdict(&self, fallen_back: bool) -> Verdict {
        let Some((live, snapshot, labels)) = self.errors() else {
            return Verdict::Hold;
        };
        if !fallen_back && live - snapshot > self.gap(snapshot) {
            Verdict::FallBack {
                live,
                snapshot,
                labels,
            }
        } else if fallen_back && live <= snapshot {
            Verdict::Resume {
                live,
                snapshot,
                labels,
            }
        } else {
            Verdict::Hold
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LiveSpec {
        LiveSpec {
            window: 100,
            min_labels: 20,
            max_error_gap: 0.05,
            ..LiveSpec::default()
        }
    }

    #[test]
    fn holds_until_min_labels_then_falls_back_past_the_margin() {
        let mut net = SafetyNet::new(spec(), false);
        for _ in 0..19 {
            net.push(1.0, 0.0);
        }
        assert_eq!(net.verdict(false), Verdict::Hold);
        net.push(1.0, 0.0);
        assert!(matches!(
            net.verdict(false),
            Verdict::FallBack { labels: 20, .. }
        ));
    }

    #[test]
    fn a_gap_within_the_margin_holds_and_resume_needs_no_worse() {
        let mut net = SafetyNet::new(spec(), false);
        // live wrong 4 in 100, snapshot never: a gap of 0.04 < 0.05.
        for i in 0..100 {
            net.push(if i % 25 == 0 { 1.0 } else { 0.0 }, 0.0);
        }
        assert_eq!(net.verdict(false), Verdict::Hold);
        assert_eq!(net.verdict(true), Verdict::Hold);
        // The window slides: 100 answers both right.
        for _ in 0..100 {
            net.push(0.0, 0.0);
        }
        assert!(matches!(net.verdict(true), Verdict::Resume { .. }));
        net.clear();
        assert_eq!(net.errors(), None);
    }

    #[test]
    fn regression_margins_are_relative_to_the_snapshot() {
        let mut net = SafetyNet::new(spec(), true);
        for _ in 0..50 {
            net.push(10.4, 10.0);
        }
        assert_eq!(net.verdict(false), Verdict::Hold);
        for _ in 0..100 {
            net.push(10.6, 10.0);
        }
        assert!(matches!(net.verdict(false), Verdict::FallBack { .. }));
    }
}
