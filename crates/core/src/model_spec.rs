//! The `models:` section of `freshet.yaml`: what a model learns from, what it predicts,
//! how its features are built and which learner it uses.
//!
//! A [`ModelSpec`] is what the user wrote; it may leave the task, the features and the
//! learner to be inferred. [`ModelSpec::resolve`] fills them in against the schema of
//! the stream the model trains from and returns a [`ResolvedModelSpec`], which is what
//! the learn crate builds models from and what a model artifact carries. Resolution
//! errors name the key path, like every other configuration error.
//!
//! `freshet validate` can only resolve models on streams that declare their schema
//! (http and file sources); generator schemas live in the ingest crate, so models on
//! generator streams are resolved by whoever holds that schema.

use crate::config::{ConfigError, StreamConfig, TransformConfig};
use crate::schema::{Field, PiiAction, Schema};
use crate::system_columns as sys;
use crate::value::FieldType;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::num::{NonZeroU32, NonZeroUsize};

#[path = "model_spec_control.rs"]
mod control;
pub use control::{DETECTORS, GatesSpec, JobSpec, MonitorSpec, TriggersSpec, VsChampion};

#[path = "model_spec_serving.rs"]
mod serving;
pub use serving::{LiveSpec, Rebase, ServingMode};

#[path = "model_spec_rollout.rs"]
mod rollout;
pub use rollout::{
    CanarySpec, ChecksSpec, DEFAULT_CANARY_STEPS, DEFAULT_MIN_REQUESTS, DEFAULT_MIN_SECS,
    LABEL_WAIT_FACTOR, RolloutSpec, ShadowSpec,
};

/// Default `max_categories` of one-hot encoding.
pub const DEFAULT_MAX_CATEGORIES: usize = 32;
/// Default `buckets` of hash encoding.
pub const DEFAULT_HASH_BUCKETS: usize = 64;
/// Default share of the most recent rows held out for evaluation.
pub const DEFAULT_HOLDOUT: f64 = 0.2;

/// One model, as declared under `models.<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The stream the model trains from; its table is `events/<stream>`.
    pub stream: String,
    /// The field of the stream holding the ground truth.
    pub label: String,
    /// What is predicted; inferred from the label's type when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// How record fields become model inputs; derived from the stream schema when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<FeatureSpec>>,
    /// The learning algorithm; logistic regression (classification) or linear
    /// regression (regression) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learner: Option<LearnerSpec>,
    /// Share of the most recent rows kept out of training to evaluate the model
    /// out of time, in [0, 1).
    #[serde(default = "default_holdout")]
    pub holdout: f64,
    /// What training does with numeric features whose values trend with arrival order
    /// (timestamps or dates stored as numbers, counters, ids), which a model would
    /// extrapolate: `exclude` (default) leaves them out with a warning, `keep` keeps
    /// them. Features listed under `features` are always kept (docs/models.md).
    #[serde(default, skip_serializing_if = "TrendingPolicy::is_default")]
    pub trending: TrendingPolicy,
    /// How new versions reach production: shadow, canary steps and their checks
    /// (docs/rollout.md). Everything defaults.
    #[serde(default)]
    pub rollout: RolloutSpec,
    /// How the champion answers: `snapshot` (default) or `live`, a learner that starts
    /// from the champion and learns each label as it arrives (docs/serving.md).
    #[serde(default, skip_serializing_if = "ServingMode::is_default")]
    pub serving: ServingMode,
    /// The live learner's safety net (with `serving: live`).
    #[serde(default, skip_serializing_if = "LiveSpec::is_default")]
    pub live: LiveSpec,
    /// Governance: risk tier (deciding whether promotions need a second person's
    /// approval), owner, intended use and review cadence (docs/governance.md).
    #[serde(
        default,
        skip_serializing_if = "crate::config_govern::Governance::is_default"
    )]
    pub governance: crate::config_govern::Governance,
    /// Where every prediction is pushed besides `inference/<name>` (docs/serving.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkSpec>,
    /// Topics whose events the model scores, answering on another topic.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind: Vec<crate::config_connect::BindSpec>,
    /// Topics of labels, landing in `labels/<name>` like `POST .../feedback`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feedback: Vec<crate::config_connect::FeedbackSpec>,
    /// When the model retrains (docs/loop.md).
    #[serde(default)]
    pub triggers: TriggersSpec,
    /// How served traffic is watched for data drift (docs/monitoring.md).
    #[serde(default)]
    pub monitor: MonitorSpec,
    /// What a candidate must show before its rollout starts.
    #[serde(default)]
    pub gates: GatesSpec,
    /// How candidates are trained.
    #[serde(default)]
    pub job: JobSpec,
}

fn default_holdout() -> f64 {
    DEFAULT_HOLDOUT
}

/// What training does with a numeric feature that trends with arrival order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrendingPolicy {
    /// Leave it out of the model's features, with a warning (unless it is listed).
    #[default]
    Exclude,
    /// Keep it as a feature.
    Keep,
}

impl TrendingPolicy {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A prediction sink: predictions as NDJSON lines, pushed after each capture commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// Append to a file (relative to the config file), created if missing.
    Ndjson { path: String },
    /// POST batches (`application/x-ndjson`), retried with backoff.
    Webhook {
        url: String,
        #[serde(default = "default_sink_timeout_ms")]
        timeout_ms: u64,
        #[serde(default = "default_sink_retries")]
        retries: u32,
    },
    /// Produce each prediction to a Kafka topic, keyed `<request_id>/<row>` with the
    /// header `freshet-request-id` (at least once: consumers de-duplicate by key).
    Kafka {
        /// Bootstrap brokers, `host:port[,host:port...]`.
        brokers: String,
        topic: String,
        /// Extra librdkafka producer settings (e.g. `security.protocol`); values never
        /// reach logs or errors.
        #[serde(default)]
        options: std::collections::BTreeMap<String, String>,
    },
    /// Publish each prediction to a Pulsar topic, keyed `<request_id>/<row>` with the
    /// property `freshet-request-id` (at least once: consumers de-duplicate by key).
    Pulsar {
        /// `pulsar://host:port`.
        url: String,
        /// A bare name (`persistent://public/default/<topic>`) or a full one.
        topic: String,
    },
}

fn default_sink_timeout_ms() -> u64 {
    5_000
}
fn default_sink_retries() -> u32 {
    3
}

impl SinkSpec {
    pub(crate) fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        match self {
            SinkSpec::Ndjson { path } if path.trim().is_empty() => {
                errs.push(ConfigError::new(format!("{p}.path"), "must not be empty"));
            }
            SinkSpec::Webhook {
                url, timeout_ms, ..
            } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    errs.push(ConfigError::new(
                        format!("{p}.url"),
                        "must be an http:// or https:// URL",
                    ));
                }
                if *timeout_ms == 0 {
                    errs.push(ConfigError::new(
                        format!("{p}.timeout_ms"),
                        "must be above 0",
                    ));
                }
            }
            SinkSpec::Kafka { brokers, topic, .. } => {
                crate::config_connect::validate_brokers(brokers, &format!("{p}.brokers"), errs);
                crate::config_connect::validate_topic(topic, &format!("{p}.topic"), errs);
            }
            SinkSpec::Pulsar { url, topic } => {
                crate::config_pulsar::validate_pulsar_sink(url, topic, p, errs);
            }
            SinkSpec::Ndjson { .. } => {}
        }
    }
}

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Two classes; probabilities are reported for both.
    Binary,
    /// Any number of classes, discovered as labels arrive.
    Multiclass,
    /// A real number.
    Regression,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
        }
    }

    pub fn is_classification(self) -> bool {
        self != Task::Regression
    }
}

/// One input of a model: a field and how it is encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum FeatureSpec {
    /// An `int` or `float` field, standardised online (running mean and variance).
    Numeric {
        field: String,
        /// What a missing value becomes.
        #[serde(default)]
        missing: MissingPolicy,
    },
    /// A `string`, `int` or `bool` field taken as a category.
    Categorical {
        field: String,
        /// `onehot` (default) or `hash`.
        #[serde(default)]
        encoding: Encoding,
        /// One-hot only: categories learnt before later ones fall in the unseen bucket
        /// (default 32).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_categories: Option<NonZeroUsize>,
        /// Hash only: number of buckets (default 64).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        buckets: Option<NonZeroUsize>,
    },
    /// A `timestamp` (or `date`) field as cyclic time of day and day of week.
    Time { field: String },
    /// A `bool` field as 1/0.
    Bool { field: String },
}

impl FeatureSpec {
    /// The field the feature reads.
    pub fn field(&self) -> &str {
        match self {
            FeatureSpec::Numeric { field, .. }
            | FeatureSpec::Categorical { field, .. }
            | FeatureSpec::Time { field }
            | FeatureSpec::Bool { field } => field,
        }
    }

    /// The `kind` key's value.
    pub fn kind_name(&self) -> &'static str {
        match self {
            FeatureSpec::Numeric { .. } => "numeric",
            FeatureSpec::Categorical { .. } => "categorical",
            FeatureSpec::Time { .. } => "time",
            FeatureSpec::Bool { .. } => "bool",
        }
    }
}

/// What a missing numeric value becomes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPolicy {
    /// The running mean (0 after standardisation).
    #[default]
    Mean,
    /// The raw value 0, standardised like any other value.
    Zero,
    /// The mean, plus a `<field>__missing` column that is 1 when the value is missing.
    Indicator,
}

/// How a categorical value becomes columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One column per learnt category plus one for unseen categories.
    #[default]
    Onehot,
    /// A fixed number of columns; each value lands in the bucket its hash selects.
    Hash,
}

/// The optimizer of a linear learner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent (default learning rate 0.01).
    #[default]
    Sgd,
    /// Adam (default step size 0.1).
    Adam,
    /// FTRL-Proximal; `lr` is its `alpha` (default 0.05).
    Ftrl,
}

/// The learning algorithm of a model and its parameters; `type` selects it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LearnerSpec {
    /// Online logistic regression (binary, or one-vs-rest for multiclass).
    LogisticRegression {
        #[serde(default)]
        optimizer: OptimizerKind,
        /// Learning rate; the optimizer's default when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
        /// L2 penalty added to each weight's gradient.
        #[serde(default)]
        l2: f64,
    },
    /// Online linear regression (squared loss).
    LinearRegression {
        #[serde(default)]
        optimizer: OptimizerKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lr: Option<f64>,
        #[serde(default)]
        l2: f64,
    },
    /// Gaussian naive Bayes.
    GaussianNb {},
    /// Hoeffding tree (VFDT).
    HoeffdingTree(TreeSpec),
    /// Hoeffding adaptive tree: replaces branches whose error drifts up.
    HoeffdingAdaptiveTree(TreeSpec),
    /// Adaptive random forest of Hoeffding trees.
    AdaptiveRandomForest {
        /// Trees in the forest.
        #[serde(default = "default_n_models")]
        n_models: NonZeroUsize,
        #[serde(default = "default_forest_seed")]
        seed: u64,
    },
    /// Leveraging bagging of Hoeffding trees (River's defaults: Poisson(6) weights,
    /// ADWIN on each tree's error, the worst tree replaced on a change).
    LeveragingBagging {
        /// Trees in the ensemble.
        #[serde(default = "default_n_models")]
        n_models: NonZeroUsize,
        #[serde(default = "default_forest_seed")]
        seed: u64,
    },
    /// Streaming random patches: Hoeffding trees, each on its own random 60% of the
    /// features and Poisson(6) sample, replaced on drift (River's defaults).
    StreamingRandomPatches {
        /// Trees in the ensemble.
        #[serde(default = "default_n_models")]
        n_models: NonZeroUsize,
        #[serde(default = "default_forest_seed")]
        seed: u64,
        /// Share of the features each tree sees, in (0, 1].
        #[serde(default = "default_subspace_size")]
        subspace_size: f64,
    },
    /// Several online classifiers that all learn every example; the one with the
    /// lowest recent prequential error answers.
    Selector {
        /// The members, in order of preference on ties; when absent
        /// [`LearnerSpec::default_selector_members`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        members: Option<Vec<LearnerSpec>>,
        /// Memory of the recent error, in examples (the newest has weight 1/window).
        #[serde(default = "default_selector_window")]
        window: u32,
    },
    /// Histogram gradient-boosted trees, trained in batch on a window.
    Gbt {
        #[serde(default = "default_n_trees")]
        n_trees: NonZeroUsize,
        #[serde(default = "default_gbt_learning_rate")]
        learning_rate: f64,
        #[serde(default = "default_gbt_max_depth")]
        max_depth: NonZeroUsize,
        /// Value bins per feature, 2 to 255.
        #[serde(default = "default_max_bins")]
        max_bins: usize,
    },
    /// Gradient-boosted trees made online (classification): refitted every
    /// `refit_every` labels on the newest `window` rows, and on the rows since the
    /// change as soon as its own error drifts (ADWIN). Learns a new concept from a
    /// few hundred rows; a selector member by default.
    WindowedGbt {
        /// Newest labelled rows kept and fitted on.
        #[serde(default = "default_windowed_window")]
        window: u32,
        /// Labels between two refits.
        #[serde(default = "default_refit_every")]
        refit_every: u32,
        #[serde(default = "default_windowed_trees")]
        n_trees: NonZeroUsize,
        #[serde(default = "default_windowed_depth")]
        max_depth: NonZeroUsize,
    },
    /// Baseline: the most frequent class so far.
    Majority {},
    /// Baseline: the last label seen.
    NoChange {},
}

/// Parameters of the Hoeffding trees (River's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeSpec {
    /// Examples a leaf sees between split attempts.
    #[serde(default = "default_grace_period")]
    pub grace_period: NonZeroU32,
    /// Deepest level (root = 0); unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// δ of the Hoeffding bound, in (0, 1).
    #[serde(default = "default_delta")]
    pub delta: f64,
    /// Split anyway once the bound falls below τ.
    #[serde(default = "default_tau")]
    pub tau: f64,
    /// Seed of the adaptive tree's bootstrap draws (unused by the plain tree).
    #[serde(default)]
    pub seed: u64,
}

impl Default for TreeSpec {
    fn default() -> Self {
        Self {
            grace_period: default_grace_period(),
            max_depth: None,
            delta: default_delta(),
            tau: default_tau(),
            seed: 0,
        }
    }
}

fn default_grace_period() -> NonZeroU32 {
    NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN)
}
fn default_delta() -> f64 {
    1e-7
}
fn default_tau() -> f64 {
    0.05
}
fn default_n_models() -> NonZeroUsize {
    NonZeroUsize::new(10).unwrap_or(NonZeroUsize::MIN)
}
fn default_subspace_size() -> f64 {
    0.6
}

fn default_forest_seed() -> u64 {
    42
}
fn default_selector_window() -> u32 {
    500
}
fn default_windowed_window() -> u32 {
    2_000
}
fn default_refit_every() -> u32 {
    100
}
fn default_windowed_trees() -> NonZeroUsize {
    NonZeroUsize::new(50).unwrap_or(NonZeroUsize::MIN)
}
fn default_windowed_depth() -> NonZeroUsize {
    NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN)
}
fn default_n_trees() -> NonZeroUsize {
    NonZeroUsize::new(100).unwrap_or(NonZeroUsize::MIN)
}
fn default_gbt_learning_rate() -> f64 {
    0.1
}
fn default_gbt_max_depth() -> NonZeroUsize {
    NonZeroUsize::new(6).unwrap_or(NonZeroUsize::MIN)
}
fn default_max_bins() -> usize {
    255
}

impl LearnerSpec {
    /// The `type` key's value.
    pub fn name(&self) -> &'static str {
        match self {
            LearnerSpec::LogisticRegression { .. } => "logistic_regression",
            LearnerSpec::LinearRegression { .. } => "linear_regression",
            LearnerSpec::GaussianNb {} => "gaussian_nb",
            LearnerSpec::HoeffdingTree(_) => "hoeffding_tree",
            LearnerSpec::HoeffdingAdaptiveTree(_) => "hoeffding_adaptive_tree",
            LearnerSpec::AdaptiveRandomForest { .. } => "adaptive_random_forest",
            LearnerSpec::LeveragingBagging { .. } => "leveraging_bagging",
            LearnerSpec::StreamingRandomPatches { .. } => "streaming_random_patches",
            LearnerSpec::Selector { .. } => "selector",
            LearnerSpec::Gbt { .. } => "gbt",
            LearnerSpec::WindowedGbt { .. } => "windowed_gbt",
            LearnerSpec::Majority {} => "majority",
            LearnerSpec::NoChange {} => "no_change",
        }
    }

    /// The learner used when a spec names none.
    pub fn default_for(task: Task) -> Self {
        let (optimizer, lr, l2) = (OptimizerKind::Sgd, None, 0.0);
        match task {
            Task::Regression => LearnerSpec::LinearRegression { optimizer, lr, l2 },
            _ => LearnerSpec::LogisticRegression { optimizer, lr, l2 },
        }
    }

    /// The members of a `selector` that lists none: the adaptive random forest (10
    /// trees), the Hoeffding adaptive tree, Gaussian naive Bayes, logistic regression
    /// twice — at River's learning rate (0.01) and at 0.05, a slow and a fast learner:
    /// after an abrupt change the fast one finds the new boundary sooner and answers
    /// until the slow one catches up — and windowed gradient-boosted trees, each with
    /// its defaults.
    pub fn default_selector_members() -> Vec<LearnerSpec> {
        vec![
            LearnerSpec::AdaptiveRandomForest {
                n_models: default_n_models(),
                seed: default_forest_seed(),
            },
            LearnerSpec::HoeffdingAdaptiveTree(TreeSpec::default()),
            LearnerSpec::GaussianNb {},
            LearnerSpec::LogisticRegression {
                optimizer: OptimizerKind::Sgd,
                lr: None,
                l2: 0.0,
            },
            LearnerSpec::LogisticRegression {
                optimizer: OptimizerKind::Sgd,
                lr: Some(0.05),
                l2: 0.0,
            },
            LearnerSpec::WindowedGbt {
                window: default_windowed_window(),
                refit_every: default_refit_every(),
                n_trees: default_windowed_trees(),
                max_depth: default_windowed_depth(),
            },
        ]
    }

    /// Whether the learner can do `task`.
    pub fn supports(&self, task: Task) -> bool {
        match self {
            LearnerSpec::LinearRegression { .. } => task == Task::Regression,
            // Boosting handles both log loss and squared error.
            LearnerSpec::Gbt { .. } => true,
            _ => task.is_classification(),
        }
    }

    fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        let mut check = |ok: bool, key: &str, message: &str| {
            if !ok {
                errs.push(ConfigError::new(format!("{p}.{key}"), message));
            }
        };
        match self {
            LearnerSpec::LogisticRegression { lr, l2, .. }
            | LearnerSpec::LinearRegression { lr, l2, .. } => {
                check(
                    lr.is_none_or(|lr| lr > 0.0 && lr.is_finite()),
                    "lr",
                    "must be a finite number above 0",
                );
                check(
                    *l2 >= 0.0 && l2.is_finite(),
                    "l2",
                    "must be a finite number, 0 or more",
                );
            }
            LearnerSpec::HoeffdingTree(t) | LearnerSpec::HoeffdingAdaptiveTree(t) => {
                check(t.delta > 0.0 && t.delta < 1.0, "delta", "must be in (0, 1)");
                check(
                    t.tau >= 0.0 && t.tau.is_finite(),
                    "tau",
                    "must be a finite number, 0 or more",
                );
            }
            LearnerSpec::Gbt {
                learning_rate,
                max_bins,
                ..
            } => {
                check(
                    *learning_rate > 0.0 && *learning_rate <= 1.0,
                    "learning_rate",
                    "must be in (0, 1]",
                );
                check(
                    (2..=255).contains(max_bins),
                    "max_bins",
                    "must be between 2 and 255",
                );
            }
            LearnerSpec::WindowedGbt {
                window,
                refit_every,
                ..
            } => {
                check(*window >= 100, "window", "must be at least 100 rows");
                check(*refit_every >= 1, "refit_every", "must be at least 1");
            }
            LearnerSpec::Selector { members, window } => {
                check(*window >= 1, "window", "must be at least 1");
                let Some(members) = members else { return };
                check(
                    !members.is_empty(),
                    "members",
                    "must list at least one learner (or be left out for the defaults)",
                );
                for (i, member) in members.iter().enumerate() {
                    let q = format!("{p}.members[{i}]");
                    match member {
                        LearnerSpec::Gbt { .. } => errs.push(ConfigError::new(
                            format!("{q}.type"),
                            "selector members learn online; gbt learns in batches",
                        )),
                        LearnerSpec::LinearRegression { .. } => errs.push(ConfigError::new(
                            format!("{q}.type"),
                            "selector members are classifiers; linear_regression is a regressor",
                        )),
                        _ => member.validate(&q, errs),
                    }
                }
            }
            LearnerSpec::StreamingRandomPatches { subspace_size, .. } => {
                check(
                    *subspace_size > 0.0 && *subspace_size <= 1.0,
                    "subspace_size",
                    "must be in (0, 1]",
                );
            }
            LearnerSpec::GaussianNb {}
            | LearnerSpec::AdaptiveRandomForest { .. }
            | LearnerSpec::LeveragingBagging { .. }
            | LearnerSpec::Majority {}
            | LearnerSpec::NoChange {} => {}
        }
    }
}

/// A model spec with everything inferred filled in, checked against a stream schema.
/// This is what models are built from, and what a model artifact records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedModelSpec {
    /// The model's name (its key under `models:`).
    pub name: String,
    pub stream: String,
    pub label: String,
    /// Type of the label field in the stream.
    pub label_type: FieldType,
    pub task: Task,
    /// In order; the feature vector follows this order.
    pub features: Vec<ResolvedFeature>,
    pub learner: LearnerSpec,
    pub holdout: f64,
    /// Defaulted when absent, so artifacts written before rollouts existed still load.
    #[serde(default)]
    pub rollout: RolloutSpec,
    /// Derived features left out at training because their values trend with arrival
    /// order (`trending: exclude`); empty when none were, and in specs resolved but
    /// not yet trained.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trending_excluded: Vec<String>,
}

/// One feature with its field's type and every parameter set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolvedFeature {
    pub field: String,
    pub field_type: FieldType,
    pub kind: FeatureKind,
}

/// A feature's encoding with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeatureKind {
    Numeric { missing: MissingPolicy },
    Onehot { max_categories: usize },
    Hash { buckets: usize },
    Time,
    Bool,
}

impl FeatureKind {
    fn accepts(&self, ty: FieldType) -> bool {
        use FieldType as T;
        match self {
            FeatureKind::Numeric { .. } => matches!(ty, T::Int | T::Float),
            FeatureKind::Onehot { .. } | FeatureKind::Hash { .. } => {
                matches!(ty, T::String | T::Int | T::Bool)
            }
            FeatureKind::Time => matches!(ty, T::Timestamp | T::Date),
            FeatureKind::Bool => ty == T::Bool,
        }
    }
}

impl ModelSpec {
    /// Checks that need no schema, plus a full [`resolve`](Self::resolve) when the
    /// stream declares its schema; errors are under `models.<name>`.
    pub(crate) fn validate(
        &self,
        name: &str,
        streams: &BTreeMap<String, StreamConfig>,
        errs: &mut Vec<ConfigError>,
    ) {
        let base = format!("models.{name}");
        if !crate::config::is_valid_stream_name(name) {
            errs.push(ConfigError::new(
                &base,
                "model names use letters, digits, '-' and '_' and start with a letter",
            ));
        }
        if !(0.0..1.0).contains(&self.holdout) {
            errs.push(ConfigError::new(
                format!("{base}.holdout"),
                "must be at least 0 and below 1",
            ));
        }
        if let Some(features) = &self.features {
            if features.is_empty() {
                errs.push(ConfigError::new(
                    format!("{base}.features"),
                    "must list at least one feature (or be left out to derive them)",
                ));
            }
            let mut seen = HashSet::new();
            for (i, f) in features.iter().enumerate() {
                let p = format!("{base}.features[{i}]");
                validate_feature_params(f, &p, errs);
                if !seen.insert(f.field()) {
                    errs.push(ConfigError::new(
                        format!("{p}.field"),
                        format!("field '{}' is already a feature", f.field()),
                    ));
                }
                if f.field() == self.label {
                    errs.push(ConfigError::new(
                        format!("{p}.field"),
                        "the label cannot be a feature",
                    ));
                }
            }
        }
        if let Some(learner) = &self.learner {
            learner.validate(&format!("{base}.learner"), errs);
        }
        self.rollout.validate(&format!("{base}.rollout"), errs);
        self.triggers.validate(&format!("{base}.triggers"), errs);
        self.monitor.validate(&format!("{base}.monitor"), errs);
        self.gates.validate(&format!("{base}.gates"), errs);
        self.job.validate(&format!("{base}.job"), errs);
        if matches!(self.job, JobSpec::Online { .. })
            && matches!(self.learner, Some(LearnerSpec::Gbt { .. }))
        {
            errs.push(ConfigError::new(
                format!("{base}.job.type"),
                "online jobs need an online learner; gbt learns in batches (use job type builtin)",
            ));
        }
        self.live.validate(&format!("{base}.live"), errs);
        if self.serving == ServingMode::Live
            && matches!(self.learner, Some(LearnerSpec::Gbt { .. }))
        {
            errs.push(ConfigError::new(
                format!("{base}.serving"),
                "live serving needs an online learner; gbt learns in batches",
            ));
        }
        for (i, sink) in self.sinks.iter().enumerate() {
            sink.validate(&format!("{base}.sinks[{i}]"), errs);
        }
        for (i, b) in self.bind.iter().enumerate() {
            crate::config_connect::validate_bind(b, &format!("{base}.bind[{i}]"), errs);
        }
        for (i, f) in self.feedback.iter().enumerate() {
            crate::config_connect::validate_feedback(f, &format!("{base}.feedback[{i}]"), errs);
        }
        let Some(stream) = streams.get(&self.stream) else {
            errs.push(ConfigError::new(
                format!("{base}.stream"),
                format!("no stream '{}' is declared", self.stream),
            ));
            return;
        };
        if let Some(schema) = declared_output_schema(stream) {
            // Resolution repeats none of the checks above, so nothing is reported twice.
            if let Err(e) = self.resolve(name, &schema) {
                errs.extend(e);
            }
        }
    }

    /// Fill in the task, features and learner against the schema of the stream's rows
    /// (system columns may be included: they are never derived as features). Every
    /// problem is returned, each naming its key path under `models.<name>`.
    pub fn resolve(
        &self,
        name: &str,
        schema: &Schema,
    ) -> Result<ResolvedModelSpec, Vec<ConfigError>> {
        let base = format!("models.{name}");
        let mut errs = Vec::new();
        let label = schema.field(&self.label);
        if label.is_none() {
            errs.push(ConfigError::new(
                format!("{base}.label"),
                format!(
                    "'{}' is not a field of stream '{}'",
                    self.label, self.stream
                ),
            ));
        }
        let task = label.and_then(|l| self.resolve_task(l, &base, &mut errs));
        let features = match &self.features {
            Some(list) => resolve_listed(list, schema, &self.stream, &base, &mut errs),
            None => derive_features(schema, &self.label),
        };
        if self.features.is_none() && features.is_empty() {
            errs.push(ConfigError::new(
                format!("{base}.features"),
                format!(
                    "stream '{}' has no field to derive a feature from: list them",
                    self.stream
                ),
            ));
        }
        let learner = task.map(|t| {
            self.learner
                .clone()
                .unwrap_or_else(|| LearnerSpec::default_for(t))
        });
        if let (Some(t), Some(l)) = (task, &learner)
            && !l.supports(t)
        {
            errs.push(ConfigError::new(
                format!("{base}.learner.type"),
                format!("{} cannot learn a {} task", l.name(), t.as_str()),
            ));
        }
        match (label, task, learner) {
            (Some(label), Some(task), Some(learner)) if errs.is_empty() => Ok(ResolvedModelSpec {
                name: name.to_string(),
                stream: self.stream.clone(),
                label: self.label.clone(),
                label_type: label.ty,
                task,
                features,
                learner,
                holdout: self.holdout,
                rollout: self.rollout.clone(),
                trending_excluded: Vec::new(),
            }),
            _ => Err(errs),
        }
    }

    fn resolve_task(&self, label: &Field, base: &str, errs: &mut Vec<ConfigError>) -> Option<Task> {
        use FieldType as T;
        let ty = label.ty;
        let Some(task) = self.task else {
            let inferred = infer_task(label);
            if inferred.is_none() {
                errs.push(ConfigError::new(
                    format!("{base}.task"),
                    format!("cannot infer the task from a {ty} label: set binary, multiclass or regression"),
                ));
            }
            return inferred;
        };
        let ok = match task {
            Task::Binary | Task::Multiclass => matches!(ty, T::Bool | T::Int | T::String),
            Task::Regression => matches!(ty, T::Int | T::Float),
        };
        if !ok {
            errs.push(ConfigError::new(
                format!("{base}.task"),
                format!(
                    "a {} task cannot use the {ty} label '{}'",
                    task.as_str(),
                    label.name
                ),
            ));
            return None;
        }
        Some(task)
    }
}

/// The task a label implies: bool labels and ints bounded to [0, 1] or strings with
/// two declared categories are binary; other ints and strings multiclass; floats
/// regression. Timestamps and dates imply nothing.
fn infer_task(label: &Field) -> Option<Task> {
    match label.ty {
        FieldType::Bool => Some(Task::Binary),
        FieldType::Int if label.min == Some(0.0) && label.max == Some(1.0) => Some(Task::Binary),
        FieldType::Int => Some(Task::Multiclass),
        FieldType::String if label.categories.as_ref().is_some_and(|c| c.len() == 2) => {
            Some(Task::Binary)
        }
        FieldType::String => Some(Task::Multiclass),
        FieldType::Float => Some(Task::Regression),
        FieldType::Timestamp | FieldType::Date => None,
    }
}

fn validate_feature_params(f: &FeatureSpec, p: &str, errs: &mut Vec<ConfigError>) {
    if let FeatureSpec::Categorical {
        encoding,
        max_categories,
        buckets,
        ..
    } = f
    {
        match encoding {
            Encoding::Onehot if buckets.is_some() => errs.push(ConfigError::new(
                format!("{p}.buckets"),
                "only hash encoding has buckets",
            )),
            Encoding::Hash if max_categories.is_some() => errs.push(ConfigError::new(
                format!("{p}.max_categories"),
                "only onehot encoding has max_categories",
            )),
            _ => {}
        }
    }
}

fn resolve_listed(
    list: &[FeatureSpec],
    schema: &Schema,
    stream: &str,
    base: &str,
    errs: &mut Vec<ConfigError>,
) -> Vec<ResolvedFeature> {
    let mut out = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let p = format!("{base}.features[{i}]");
        let Some(field) = schema.field(f.field()) else {
            errs.push(ConfigError::new(
                format!("{p}.field"),
                format!("'{}' is not a field of stream '{stream}'", f.field()),
            ));
            continue;
        };
        let kind = match f {
            FeatureSpec::Numeric { missing, .. } => FeatureKind::Numeric { missing: *missing },
            FeatureSpec::Categorical {
                encoding: Encoding::Onehot,
                max_categories,
                ..
            } => FeatureKind::Onehot {
                max_categories: max_categories.map_or(DEFAULT_MAX_CATEGORIES, NonZeroUsize::get),
            },
            FeatureSpec::Categorical {
                encoding: Encoding::Hash,
                buckets,
                ..
            } => FeatureKind::Hash {
                buckets: buckets.map_or(DEFAULT_HASH_BUCKETS, NonZeroUsize::get),
            },
            FeatureSpec::Time { .. } => FeatureKind::Time,
            FeatureSpec::Bool { .. } => FeatureKind::Bool,
        };
        if !kind.accepts(field.ty) {
            errs.push(ConfigError::new(
                format!("{p}.kind"),
                format!(
                    "a {} feature cannot read the {} field '{}'",
                    f.kind_name(),
                    field.ty,
                    field.name
                ),
            ));
            continue;
        }
        out.push(ResolvedFeature {
            field: field.name.clone(),
            field_type: field.ty,
            kind,
        });
    }
    out
}

/// Features derived from a schema: every field but the label, system columns (`_`
/// prefix) and PII-tagged fields (hashed identifiers generalise to nothing, and the
/// model should not need them), with the kind their type implies.
pub fn derive_features(schema: &Schema, label: &str) -> Vec<ResolvedFeature> {
    schema
        .fields()
        .iter()
        .filter(|f| f.name != label && !f.name.starts_with('_') && f.pii.is_none())
        .map(|f| ResolvedFeature {
            field: f.name.clone(),
            field_type: f.ty,
            kind: match f.ty {
                FieldType::Int | FieldType::Float => FeatureKind::Numeric {
                    missing: MissingPolicy::Mean,
                },
                // A declared category list bigger than the default still gets a column each.
                FieldType::String => FeatureKind::Onehot {
                    max_categories: f.categories.as_ref().map_or(DEFAULT_MAX_CATEGORIES, |c| {
                        c.len().max(DEFAULT_MAX_CATEGORIES)
                    }),
                },
                FieldType::Bool => FeatureKind::Bool,
                FieldType::Timestamp | FieldType::Date => FeatureKind::Time,
            },
        })
        .collect()
}

/// The columns of `events/<stream>` as far as the configuration tells: the declared
/// fields after the PII policy and the transforms, then the system columns. `None` for
/// streams without a declared schema (generators). The ingest pipeline's output schema
/// is the authority; this mirrors it so that `freshet validate` can check models.
pub fn declared_output_schema(stream: &StreamConfig) -> Option<Schema> {
    let declared = stream.schema.as_ref()?;
    let mut fields: Vec<Field> = Vec::with_capacity(declared.fields.len() + 6);
    let mut hashes = false;
    for f in &declared.fields {
        match f.pii {
            Some(PiiAction::Drop) => {}
            Some(action @ (PiiAction::Hash | PiiAction::Redact)) => {
                hashes |= action == PiiAction::Hash;
                let mut g = Field::new(f.name.clone(), FieldType::String);
                g.required = f.required;
                g.pii = f.pii;
                fields.push(g);
            }
            None => fields.push(f.clone()),
        }
    }
    for t in &stream.transforms {
        match t {
            TransformConfig::Filter { .. } => {}
            TransformConfig::Derive { field, ty, .. } => {
                fields.retain(|f| &f.name != field);
                fields.push(Field::new(field.clone(), *ty));
            }
            TransformConfig::Rename { from, to } => {
                if let Some(f) = fields.iter_mut().find(|f| &f.name == from) {
                    f.name = to.clone();
                }
            }
            TransformConfig::Drop { fields: dropped } => {
                fields.retain(|f| !dropped.contains(&f.name));
            }
        }
    }
    if hashes {
        fields.push(Field::new(sys::PII_KEY_VERSION, FieldType::String));
    }
    fields.extend([
        Field::new(sys::EVENT_ID, FieldType::String),
        Field::new(sys::INGESTED_AT, FieldType::Timestamp),
        Field::new(sys::SOURCE, FieldType::String),
        Field::new(sys::POSITION, FieldType::Int),
        Field::new(sys::INGEST_DATE, FieldType::Date),
    ]);
    Some(Schema::new(fields))
}

#[cfg(test)]
#[path = "model_spec_tests.rs"]
mod tests;
