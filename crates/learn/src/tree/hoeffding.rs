//! The Hoeffding tree classifier (VFDT).

use serde::{Deserialize, Serialize};

use super::config::{HoeffdingTreeConfig, TreeConfigError};
use super::leaf::{Leaf, SplitOutcome};
use super::node::{Arena, Branch, NodeId};
use super::subspace::{MaxFeatures, Subspace};
use super::{MAX_CLASSES, SplitRule, TreeSummary};
use crate::Classifier;

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Node {
    Leaf(Leaf),
    Branch(Branch),
}

impl Node {
    fn weight(&self) -> f64 {
        match self {
            Node::Leaf(leaf) => leaf.total_weight(),
            Node::Branch(branch) => branch.stats.iter().sum(),
        }
    }
}

/// Hoeffding tree (Very Fast Decision Tree, Domingos & Hulten 2000) for numeric
/// features, as River's `tree.HoeffdingTreeClassifier` with its defaults: grace period
/// 200, δ = 1e-7, τ = 0.05, information gain, naive Bayes adaptive leaves, Gaussian
/// splitters with 10 candidate thresholds, binary splits, unlimited depth.
///
/// See the [module documentation](super) for how missing values are handled.
///
/// ```
/// use freshet_learn::Classifier;
/// use freshet_learn::tree::HoeffdingTreeClassifier;
/// use rand::{Rng, SeedableRng};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut tree = HoeffdingTreeClassifier::default();
/// let mut correct = 0;
/// for _ in 0..1000 {
///     let x = [rng.random::<f64>(), rng.random::<f64>()];
///     let y = usize::from(x[0] > 0.5);
///     correct += usize::from(tree.predict_one(&x) == Some(y));
///     tree.learn_one(&x, y);
/// }
/// assert_eq!(correct, 987);
/// let root = tree.root_split().unwrap();
/// assert_eq!(root.feature, 0);
/// assert_eq!(tree.predict_one(&[0.9, 0.1]), Some(1));
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoeffdingTreeClassifier {
    config: HoeffdingTreeConfig,
    nodes: Arena<Node>,
    root: Option<NodeId>,
    n_classes: usize,
    /// Set for a random-subspace tree: each leaf watches a random subset of features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subspace: Option<Subspace>,
}

impl Default for HoeffdingTreeClassifier {
    fn default() -> Self {
        Self::with_valid_config(HoeffdingTreeConfig::default())
    }
}

impl HoeffdingTreeClassifier {
    /// An empty tree with the given parameters.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn new(config: HoeffdingTreeConfig) -> Result<Self, TreeConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    /// [`Self::new`] for a configuration already validated (an ensemble checks its
    /// tree parameters once, then grows trees without re-checking).
    pub(crate) fn with_valid_config(config: HoeffdingTreeConfig) -> Self {
        Self {
            config,
            nodes: Arena::default(),
            root: None,
            n_classes: 0,
            subspace: None,
        }
    }

    /// An empty random-subspace tree, the base learner of
    /// [`ARFClassifier`](crate::forest::ARFClassifier): each leaf, when it first learns,
    /// draws `max_features` of the example's features (from a generator seeded with
    /// `seed`) and considers only those for its splits and its naive Bayes model.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn with_random_subspace(
        config: HoeffdingTreeConfig,
        max_features: MaxFeatures,
        seed: u64,
    ) -> Result<Self, TreeConfigError> {
        config.validate()?;
        Ok(Self::random_subspace_valid(config, max_features, seed))
    }

    /// [`Self::with_random_subspace`] for a configuration already validated (the forest
    /// checks its tree parameters once, then grows trees without re-checking).
    pub(crate) fn random_subspace_valid(
        config: HoeffdingTreeConfig,
        max_features: MaxFeatures,
        seed: u64,
    ) -> Self {
        let mut tree = Self::with_valid_config(config);
        tree.subspace = Some(Subspace::new(max_features, seed));
        tree
    }

    /// The parameters.
    pub fn config(&self) -> &HoeffdingTreeConfig {
        &self.config
    }

    /// The test at the root, once the root has split.
    pub fn root_split(&self) -> Option<SplitRule> {
        match self.nodes.get(self.root?)? {
            Node::Branch(b) => Some(SplitRule {
                feature: b.feature,
                threshold: b.threshold,
            }),
            Node::Leaf(_) => None,
        }
    }

    /// Node counts and depth.
    pub fn summary(&self) -> TreeSummary {
        let mut summary = TreeSummary {
            n_nodes: self.nodes.live(),
            ..TreeSummary::default()
        };
        let mut stack: Vec<(NodeId, usize)> = self.root.map(|r| (r, 0)).into_iter().collect();
        while let Some((id, depth)) = stack.pop() {
            summary.depth = summary.depth.max(depth);
            match self.nodes.get(id) {
                Some(Node::Branch(b)) => {
                    summary.n_branches += 1;
                    stack.extend(b.children.iter().map(|&c| (c, depth + 1)));
                }
                Some(Node::Leaf(leaf)) => {
                    summary.n_leaves += 1;
                    summary.n_active_leaves += usize::from(leaf.is_active());
                }
                None => {}
            }
        }
        summary
    }

    /// Learn `x` as if it had been seen `w` times (online bagging draws `w` from a
    /// Poisson distribution); the grace period counts weight, as in River. A weight
    /// that is not positive and finite, or a label at or above [`MAX_CLASSES`], is
    /// ignored.
    pub fn learn_weighted(&mut self, x: &[f64], y: usize, w: f64) {
        if y >= MAX_CLASSES || !(w > 0.0 && w.is_finite()) {
            return;
        }
        self.n_classes = self.n_classes.max(y + 1);
        if self.root.is_none() {
            self.root = Some(self.nodes.alloc(Node::Leaf(Leaf::new(Vec::new(), 0))));
        }
        let Some(id) = self.leaf_for(x) else {
            return;
        };
        let due = match self.nodes.get_mut(id) {
            Some(Node::Leaf(leaf)) => {
                if let Some(subspace) = &mut self.subspace
                    && leaf.features.is_none()
                    && !x.is_empty()
                {
                    leaf.features = Some(subspace.sample(x.len()));
                }
                leaf.learn(x, y, w, &self.config);
                leaf.due_for_split_attempt(&self.config)
            }
            _ => false,
        };
        if due {
            self.split_leaf(id);
        }
    }

    fn weight_of(&self, id: NodeId) -> f64 {
        self.nodes.get(id).map_or(0.0, Node::weight)
    }

    /// The leaf that `x` reaches (missing values follow the heavier child).
    fn leaf_for(&self, x: &[f64]) -> Option<NodeId> {
        let mut id = self.root?;
        // A path can never be longer than the number of nodes; the bound guards against
        // a corrupted (deserialised) structure with a cycle.
        for _ in 0..=self.nodes.live() {
            match self.nodes.get(id)? {
                Node::Leaf(_) => return Some(id),
                Node::Branch(b) => id = b.route(x, |c| self.weight_of(c)),
            }
        }
        None
    }

    fn split_leaf(&mut self, id: NodeId) {
        let Some(Node::Leaf(leaf)) = self.nodes.get(id) else {
            return;
        };
        let outcome = if self.config.max_depth.is_some_and(|max| leaf.depth >= max) {
            SplitOutcome::Deactivate
        } else {
            leaf.attempt_split(&self.config)
        };
        let (depth, stats) = (leaf.depth, leaf.stats.clone());
        match outcome {
            SplitOutcome::Keep => {}
            SplitOutcome::Deactivate => {
                if let Some(Node::Leaf(leaf)) = self.nodes.get_mut(id) {
                    leaf.deactivate();
                }
            }
            SplitOutcome::Restart => {
                if let Some(Node::Leaf(leaf)) = self.nodes.get_mut(id) {
                    leaf.restart();
                }
            }
            SplitOutcome::Split(split) => {
                let [left, right] = split.children_stats;
                let children = [
                    self.nodes.alloc(Node::Leaf(Leaf::new(left, depth + 1))),
                    self.nodes.alloc(Node::Leaf(Leaf::new(right, depth + 1))),
                ];
                self.nodes.replace(
                    id,
                    Node::Branch(Branch {
                        feature: split.feature,
                        threshold: split.threshold,
                        children,
                        depth,
                        stats,
                    }),
                );
                return;
            }
        }
        if let Some(Node::Leaf(leaf)) = self.nodes.get_mut(id) {
            leaf.last_split_attempt_at = leaf.total_weight();
        }
    }
}

impl Classifier for HoeffdingTreeClassifier {
    /// Sort `x` to a leaf, update its statistics, and try to split it every grace period.
    /// Labels at or above [`MAX_CLASSES`] are ignored.
    fn learn_one(&mut self, x: &[f64], y: usize) {
        self.learn_weighted(x, y, 1.0);
    }

    /// The reached leaf's probabilities, one per class seen by the tree; uniform when
    /// the leaf holds nothing; empty before any learning.
    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        let mut proba = self
            .leaf_for(x)
            .and_then(|id| match self.nodes.get(id) {
                Some(Node::Leaf(leaf)) => leaf.predict(x, &self.config),
                _ => None,
            })
            .unwrap_or_else(|| vec![1.0 / self.n_classes as f64; self.n_classes]);
        proba.resize(self.n_classes, 0.0);
        proba
    }
}
