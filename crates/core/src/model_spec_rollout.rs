//! `models.<m>.rollout`: how a new version earns its way from shadow traffic through
//! canary steps to champion, and what evidence it must show at each step.
//!
//! Every key has a default, so a model that declares nothing still rolls out safely:
//! a shadow phase (no answer ever comes from the challenger), canary steps at 5, 25 and
//! 50 percent, and checks that compare the challenger with the champion on errors,
//! p99 latency, prediction drift and (once labels arrive) the label metric. The serve
//! crate's rollout controller executes this; docs/rollout.md describes it for users.

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};
use std::num::NonZeroU64;

/// Default requests a phase holds for.
pub const DEFAULT_MIN_REQUESTS: u64 = 200;
/// Default seconds a phase holds for.
pub const DEFAULT_MIN_SECS: u64 = 10;
/// Default canary weights, in percent of requests.
pub const DEFAULT_CANARY_STEPS: [f64; 3] = [5.0, 25.0, 50.0];
/// Without `max_label_wait_secs`, a phase waits this many times its `min_secs` for
/// labels before it gives up and pauses for a person.
pub const LABEL_WAIT_FACTOR: u64 = 10;
/// Default labels each version needs before a bake is judged.
pub const DEFAULT_BAKE_MIN_LABELS: u64 = 200;
/// Default longest bake, in seconds.
pub const DEFAULT_BAKE_MAX_SECS: u64 = 900;

/// The rollout of a model's new versions, under `models.<name>.rollout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RolloutSpec {
    /// Whether the controller moves a rollout on by itself. With `false` it still
    /// records evidence, but every step is taken by hand (`freshet rollout promote`).
    pub auto: bool,
    /// The first phase: the challenger scores a copy of every request, unseen by users.
    pub shadow: ShadowSpec,
    /// The canary steps: the challenger answers a growing share of requests.
    pub canary: CanarySpec,
    /// What the challenger must show at the end of every phase.
    pub checks: ChecksSpec,
    /// The watch after promotion: the previous champion keeps scoring in shadow and
    /// the new one is rolled back if it does worse on the same live labels.
    pub bake: BakeSpec,
}

impl Default for RolloutSpec {
    fn default() -> Self {
        Self {
            auto: true,
            shadow: ShadowSpec::default(),
            canary: CanarySpec::default(),
            checks: ChecksSpec::default(),
            bake: BakeSpec::default(),
        }
    }
}

/// The shadow phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowSpec {
    /// `false` skips shadow and starts at the first canary step.
    pub enabled: bool,
    /// Mirrored requests the challenger must have scored before the phase is judged.
    pub min_requests: NonZeroU64,
    /// Seconds the phase lasts at least, so that a burst cannot decide alone.
    pub min_secs: u64,
}

impl Default for ShadowSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            min_requests: default_min_requests(),
            min_secs: DEFAULT_MIN_SECS,
        }
    }
}

/// The canary steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CanarySpec {
    /// Share of requests the challenger answers at each step, in percent, strictly
    /// increasing, each above 0 and below 100. Promotion follows the last step.
    pub steps: Vec<f64>,
    /// Requests the challenger must have answered in a step before it is judged.
    pub min_requests: NonZeroU64,
    /// Seconds each step lasts at least.
    pub min_secs: u64,
}

impl Default for CanarySpec {
    fn default() -> Self {
        Self {
            steps: DEFAULT_CANARY_STEPS.to_vec(),
            min_requests: default_min_requests(),
            min_secs: DEFAULT_MIN_SECS,
        }
    }
}

/// The checks that end every phase. A failed check rolls back; a check too close to
/// call (or labels that never came) pauses for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChecksSpec {
    /// Largest allowed rise of the error rate over the champion's, absolute (0.01 = one
    /// percentage point).
    pub max_error_rate_increase: f64,
    /// Largest allowed challenger p99 latency over the champion's p99.
    pub max_p99_ratio: f64,
    /// A challenger p99 at or under this many milliseconds never fails the latency
    /// check: ratios of tiny latencies are noise.
    pub p99_floor_ms: f64,
    /// Largest allowed Jensen-Shannon distance (base 2, in [0, 1]) between the two
    /// variants' prediction distributions.
    pub max_prediction_drift: f64,
    /// Smallest allowed challenger label metric minus the champion's (negative: a small
    /// loss is tolerated). Checked once both variants have `min_labels` labels.
    pub min_label_metric_delta: f64,
    /// Labels each variant needs before the label metric is compared.
    pub min_labels: NonZeroU64,
    /// Whether a phase may pass only after the label metric was compared. Without
    /// enough labels by `max_label_wait_secs`, the rollout pauses for a person.
    pub require_labels: bool,
    /// How long a phase waits for labels when they are required; `LABEL_WAIT_FACTOR`
    /// times the phase's `min_secs` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_label_wait_secs: Option<u64>,
    /// A passing check whose value lies within this fraction of its limit is too close
    /// to call and pauses the rollout (0 turns this off).
    pub inconclusive_margin: f64,
}

impl Default for ChecksSpec {
    fn default() -> Self {
        Self {
            max_error_rate_increase: 0.01,
            max_p99_ratio: 1.5,
            p99_floor_ms: 2.0,
            max_prediction_drift: 0.2,
            min_label_metric_delta: -0.02,
            min_labels: NonZeroU64::new(100).unwrap_or(NonZeroU64::MIN),
            require_labels: false,
            max_label_wait_secs: None,
            inconclusive_margin: 0.0,
        }
    }
}

/// The bake after promotion: the new champion answers every request while the
/// previous champion scores a mirrored copy, until both have been graded on enough
/// live labels to compare them. Only a model the controller moves by itself (`auto`)
/// bakes: nobody else would judge it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BakeSpec {
    /// Whether a promotion is followed by a bake; `false` makes promotion final at once.
    pub enabled: bool,
    /// Labelled outcomes each of the two versions needs, counted from the bake's
    /// start, before the bake is judged.
    pub min_labels: NonZeroU64,
    /// How far the new champion's label metric (accuracy) may fall below the previous
    /// champion's on the same live labels before it is rolled back (0.02 = two points).
    pub max_accuracy_drop: f64,
    /// Seconds after which the bake ends as passed, saying so, when the labels have not
    /// arrived: a model whose labels never come is not held forever.
    pub max_secs: u64,
}

impl Default for BakeSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            min_labels: NonZeroU64::new(DEFAULT_BAKE_MIN_LABELS).unwrap_or(NonZeroU64::MIN),
            max_accuracy_drop: 0.02,
            max_secs: DEFAULT_BAKE_MAX_SECS,
        }
    }
}

fn default_min_requests() -> NonZeroU64 {
    NonZeroU64::new(DEFAULT_MIN_REQUESTS).unwrap_or(NonZeroU64::MIN)
}

impl RolloutSpec {
    /// The phase after which the challenger is promoted: nothing to check otherwise.
    pub fn has_phases(&self) -> bool {
        self.shadow.enabled || !self.canary.steps.is_empty()
    }

    /// Rules the types cannot say; every problem is reported under `base`
    /// (`models.<name>.rollout`).
    pub fn validate(&self, base: &str, errs: &mut Vec<ConfigError>) {
        let mut err = |key: &str, message: String| {
            errs.push(ConfigError::new(format!("{base}.{key}"), message));
        };
        let mut previous: Option<f64> = None;
        for (i, w) in self.canary.steps.iter().enumerate() {
            if !(w.is_finite() && *w > 0.0 && *w < 100.0) {
                err(
                    &format!("canary.steps[{i}]"),
                    "must be a percentage above 0 and below 100 (promotion follows the last step)"
                        .into(),
                );
            } else if let Some(p) = previous
                && *w <= p
            {
                err(
                    &format!("canary.steps[{i}]"),
                    format!("must be greater than the step before it ({p})"),
                );
            }
            previous = Some(*w);
        }
        if !self.has_phases() {
            err(
                "canary.steps",
                "with shadow disabled, at least one canary step is needed: nothing would be checked before promotion".into(),
            );
        }
        let c = &self.checks;
        let mut within = |key: &str, v: f64, ok: bool, what: &str| {
            if !(v.is_finite() && ok) {
                err(&format!("checks.{key}"), format!("must be {what}"));
            }
        };
        within(
            "max_error_rate_increase",
            c.max_error_rate_increase,
            (0.0..=1.0).contains(&c.max_error_rate_increase),
            "between 0 and 1 (an absolute rise of the error rate)",
        );
        within(
            "max_p99_ratio",
            c.max_p99_ratio,
            c.max_p99_ratio >= 1.0,
            "a number of 1 or more (challenger p99 / champion p99)",
        );
        within(
            "p99_floor_ms",
            c.p99_floor_ms,
            c.p99_floor_ms >= 0.0,
            "a number of milliseconds, 0 or more",
        );
        within(
            "max_prediction_drift",
            c.max_prediction_drift,
            c.max_prediction_drift > 0.0 && c.max_prediction_drift <= 1.0,
            "above 0 and at most 1 (a Jensen-Shannon distance)",
        );
        within(
            "min_label_metric_delta",
            c.min_label_metric_delta,
            (-1.0..=1.0).contains(&c.min_label_metric_delta),
            "between -1 and 1 (challenger metric minus champion metric)",
        );
        within(
            "inconclusive_margin",
            c.inconclusive_margin,
            (0.0..1.0).contains(&c.inconclusive_margin),
            "at least 0 and below 1 (a fraction of each limit)",
        );
        if c.max_label_wait_secs == Some(0) {
            err(
                "checks.max_label_wait_secs",
                "must be above 0 (or left out for 10 times the phase's min_secs)".into(),
            );
        }
        let b = &self.bake;
        if !(b.max_accuracy_drop.is_finite() && (0.0..=1.0).contains(&b.max_accuracy_drop)) {
            err(
                "bake.max_accuracy_drop",
                "must be between 0 and 1 (previous champion's metric minus the new one's)".into(),
            );
        }
        if b.max_secs == 0 {
            err(
                "bake.max_secs",
                "must be above 0 (to skip the bake, set bake.enabled: false)".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FreshetConfig;

    const STREAM: &str = "streams:\n  pay:\n    source: { type: http }\n    schema:\n      fields:\n        - { name: amount, type: float }\n        - { name: y, type: bool }\nmodels:\n  m:\n    stream: pay\n    label: y\n";

    fn parse(rollout: &str) -> Result<FreshetConfig, Vec<ConfigError>> {
        FreshetConfig::from_yaml_str_with_env(&format!("{STREAM}{rollout}"), &|_| None)
    }

    fn paths(errs: &[ConfigError]) -> Vec<&str> {
        errs.iter().map(|e| e.path.as_str()).collect()
    }

    #[test]
    fn everything_defaults_and_carries_into_the_resolved_spec() {
        let c = parse("").expect("valid");
        let spec = &c.models["m"];
        assert_eq!(spec.rollout, RolloutSpec::default());
        assert!(spec.rollout.auto && spec.rollout.shadow.enabled);
        assert_eq!(spec.rollout.canary.steps, vec![5.0, 25.0, 50.0]);
        assert_eq!(spec.rollout.shadow.min_requests.get(), 200);
        assert_eq!(spec.rollout.checks.max_p99_ratio, 1.5);
        let schema = crate::model_spec::declared_output_schema(&c.streams["pay"]).expect("schema");
        let resolved = spec.resolve("m", &schema).expect("resolves");
        assert_eq!(resolved.rollout, spec.rollout);
    }

    #[test]
    fn partial_sections_keep_the_other_defaults() {
        let c = parse(
            "    rollout:\n      auto: false\n      shadow: { enabled: false }\n      canary: { steps: [10, 0.5e2], min_secs: 0 }\n      checks: { max_p99_ratio: 2, require_labels: true }\n",
        )
        .expect("valid");
        let r = &c.models["m"].rollout;
        assert!(!r.auto && !r.shadow.enabled);
        assert_eq!(r.canary.steps, vec![10.0, 50.0]);
        assert_eq!(r.canary.min_requests.get(), 200);
        assert_eq!(r.checks.max_p99_ratio, 2.0);
        assert_eq!(r.checks.max_error_rate_increase, 0.01);
        assert!(r.checks.require_labels);
    }

    #[test]
    fn bad_values_name_their_key_path() {
        let errs = parse(
            "    rollout:\n      canary: { steps: [5, 5, 120, 0] }\n      checks:\n        max_error_rate_increase: 2\n        max_p99_ratio: 0.5\n        max_prediction_drift: 0\n        min_label_metric_delta: -3\n        inconclusive_margin: 1\n        p99_floor_ms: -1\n        max_label_wait_secs: 0\n",
        )
        .unwrap_err();
        let p = paths(&errs);
        for want in [
            "models.m.rollout.canary.steps[1]",
            "models.m.rollout.canary.steps[2]",
            "models.m.rollout.canary.steps[3]",
            "models.m.rollout.checks.max_error_rate_increase",
            "models.m.rollout.checks.max_p99_ratio",
            "models.m.rollout.checks.max_prediction_drift",
            "models.m.rollout.checks.min_label_metric_delta",
            "models.m.rollout.checks.inconclusive_margin",
            "models.m.rollout.checks.p99_floor_ms",
            "models.m.rollout.checks.max_label_wait_secs",
        ] {
            assert!(p.contains(&want), "missing {want} in {p:?}");
        }
        assert!(!p.contains(&"models.m.rollout.canary.steps[0]"), "{p:?}");
    }

    #[test]
    fn the_bake_has_defaults_and_checked_values() {
        let r = parse("").expect("valid").models["m"].rollout.clone();
        assert!(r.bake.enabled);
        assert_eq!(r.bake.min_labels.get(), 200);
        assert_eq!(r.bake.max_accuracy_drop, 0.02);
        assert_eq!(r.bake.max_secs, 900);
        let c = parse("    rollout: { bake: { min_labels: 50, max_secs: 60 } }\n").expect("valid");
        let b = &c.models["m"].rollout.bake;
        assert_eq!((b.min_labels.get(), b.max_secs), (50, 60));
        assert!(b.enabled && b.max_accuracy_drop == 0.02);
        let errs =
            parse("    rollout: { bake: { max_accuracy_drop: 1.5, max_secs: 0 } }\n").unwrap_err();
        assert_eq!(
            paths(&errs),
            [
                "models.m.rollout.bake.max_accuracy_drop",
                "models.m.rollout.bake.max_secs"
            ]
        );
        let errs = parse("    rollout: { bake: { min_labels: 0 } }\n").unwrap_err();
        assert_eq!(errs[0].path, "models.m.rollout.bake.min_labels", "{errs:?}");
        let errs = parse("    rollout: { bake: { max_drop: 0.1 } }\n").unwrap_err();
        assert_eq!(errs[0].path, "models.m.rollout.bake.max_drop", "{errs:?}");
    }

    #[test]
    fn nothing_to_check_is_an_error() {
        let errs = parse("    rollout: { shadow: { enabled: false }, canary: { steps: [] } }\n")
            .unwrap_err();
        assert_eq!(paths(&errs), ["models.m.rollout.canary.steps"]);
    }

    #[test]
    fn unknown_keys_and_zero_requests_are_type_errors_with_paths() {
        let errs = parse("    rollout: { shadow: { min_request: 5 } }\n").unwrap_err();
        assert_eq!(
            errs[0].path, "models.m.rollout.shadow.min_request",
            "{errs:?}"
        );
        assert!(errs[0].message.contains("min_request"), "{errs:?}");
        let errs = parse("    rollout: { canary: { min_requests: 0 } }\n").unwrap_err();
        assert_eq!(
            errs[0].path, "models.m.rollout.canary.min_requests",
            "{errs:?}"
        );
    }

    #[test]
    fn the_spec_round_trips_through_json() {
        let spec = RolloutSpec::default();
        let text = serde_json::to_string(&spec).expect("json");
        let back: RolloutSpec = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, spec);
    }
}
