//! The Hoeffding adaptive tree (HAT) classifier.

use serde::{Deserialize, Serialize};

use super::adwin::Adwin;
use super::config::{HoeffdingAdaptiveTreeConfig, TreeConfigError};
use super::leaf::{Leaf, SplitOutcome};
use super::node::{Arena, Branch, NodeId, add_weight, normalized};
use super::rng::SplitMix64;
use super::{MAX_CLASSES, SplitRule, TreeSummary};
use crate::{Classifier, argmax};

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Node {
    Leaf {
        leaf: Leaf,
        adwin: Adwin,
    },
    Branch {
        branch: Branch,
        adwin: Adwin,
        alternate: Option<NodeId>,
    },
}

impl Node {
    fn weight(&self) -> f64 {
        match self {
            Node::Leaf { leaf, .. } => leaf.total_weight(),
            Node::Branch { branch, .. } => branch.stats.iter().sum(),
        }
    }

    fn adwin(&self) -> &Adwin {
        match self {
            Node::Leaf { adwin, .. } | Node::Branch { adwin, .. } => adwin,
        }
    }
}

/// Hoeffding adaptive tree (Bifet & Gavaldà 2009) as River's
/// `tree.HoeffdingAdaptiveTreeClassifier`: a [`HoeffdingTreeClassifier`](super::HoeffdingTreeClassifier)
/// whose nodes each watch their 0/1 error with [`Adwin`]. When a branch's error rises
/// significantly it starts an alternate subtree (a fresh leaf that grows like any
/// tree); once both error windows are longer than `drift_window_threshold`, the
/// alternate replaces the branch if its error is lower by more than
/// `sqrt(2 e (1 − e) ln(2/α) (1/n_alt + 1/n))` (`e` the branch's error, α the
/// `switch_significance`), or is dropped if it is worse by as much. Predictions add the
/// probabilities of every leaf reached, alternates included, each weighted by
/// `1 / error²`. Leaves learn with Poisson(1) bootstrap weights from a seeded generator.
///
/// ```
/// use freshet_learn::Classifier;
/// use freshet_learn::tree::HoeffdingAdaptiveTreeClassifier;
/// use rand::{Rng, SeedableRng};
///
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let mut tree = HoeffdingAdaptiveTreeClassifier::default();
/// let mut correct_after_flip = 0;
/// for t in 0..6000 {
///     let x = [rng.random::<f64>(), rng.random::<f64>()];
///     // The concept flips half way.
///     let y = usize::from((x[0] > 0.5) == (t < 3000));
///     if t >= 4000 && tree.predict_one(&x) == Some(y) {
///         correct_after_flip += 1;
///     }
///     tree.learn_one(&x, y);
/// }
/// assert_eq!(correct_after_flip, 1996);
/// assert_eq!(tree.n_switched_alternate_trees(), 1);
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HoeffdingAdaptiveTreeClassifier {
    config: HoeffdingAdaptiveTreeConfig,
    nodes: Arena<Node>,
    root: Option<NodeId>,
    n_classes: usize,
    rng: SplitMix64,
    n_alternate_trees: u64,
    n_pruned_alternate_trees: u64,
    n_switched_alternate_trees: u64,
}

impl Default for HoeffdingAdaptiveTreeClassifier {
    fn default() -> Self {
        Self::with_valid_config(HoeffdingAdaptiveTreeConfig::default())
    }
}

impl HoeffdingAdaptiveTreeClassifier {
    /// An empty tree with the given parameters.
    ///
    /// # Errors
    /// [`TreeConfigError::OutOfRange`] naming the first field out of range.
    pub fn new(config: HoeffdingAdaptiveTreeConfig) -> Result<Self, TreeConfigError> {
        config.validate()?;
        Ok(Self::with_valid_config(config))
    }

    fn with_valid_config(config: HoeffdingAdaptiveTreeConfig) -> Self {
        Self {
            rng: SplitMix64::new(config.seed),
            config,
            nodes: Arena::default(),
            root: None,
            n_classes: 0,
            n_alternate_trees: 0,
            n_pruned_alternate_trees: 0,
            n_switched_alternate_trees: 0,
        }
    }

    /// The parameters.
    pub fn config(&self) -> &HoeffdingAdaptiveTreeConfig {
        &self.config
    }

    /// Alternate subtrees started so far.
    pub fn n_alternate_trees(&self) -> u64 {
        self.n_alternate_trees
    }

    /// Alternate subtrees dropped for being worse than their branch.
    pub fn n_pruned_alternate_trees(&self) -> u64 {
        self.n_pruned_alternate_trees
    }

    /// Alternate subtrees that replaced their branch.
    pub fn n_switched_alternate_trees(&self) -> u64 {
        self.n_switched_alternate_trees
    }

    /// The test at the root of the main tree, once it has split.
    pub fn root_split(&self) -> Option<SplitRule> {
        match self.nodes.get(self.root?)? {
            Node::Branch { branch, .. } => Some(SplitRule {
                feature: branch.feature,
                threshold: branch.threshold,
            }),
            Node::Leaf { .. } => None,
        }
    }

    /// Shape of the main tree; `n_nodes` also counts alternate subtrees.
    pub fn summary(&self) -> TreeSummary {
        let mut summary = TreeSummary {
            n_nodes: self.nodes.live(),
            ..TreeSummary::default()
        };
        let mut stack: Vec<(NodeId, usize)> = self.root.map(|r| (r, 0)).into_iter().collect();
        while let Some((id, depth)) = stack.pop() {
            if summary.n_branches + summary.n_leaves > self.nodes.live() {
                break;
            }
            summary.depth = summary.depth.max(depth);
            match self.nodes.get(id) {
                Some(Node::Branch { branch, .. }) => {
                    summary.n_branches += 1;
                    stack.extend(branch.children.iter().map(|&c| (c, depth + 1)));
                }
                Some(Node::Leaf { leaf, .. }) => {
                    summary.n_leaves += 1;
                    summary.n_active_leaves += usize::from(leaf.is_active());
                }
                None => {}
            }
        }
        summary
    }

    fn weight_of(&self, id: NodeId) -> f64 {
        self.nodes.get(id).map_or(0.0, Node::weight)
    }

    fn new_adwin(&self) -> Adwin {
        Adwin::with_valid_config(self.config.adwin.clone())
    }

    /// The leaf of the main path below `id` (alternates ignored).
    fn main_leaf(&self, mut id: NodeId, x: &[f64]) -> Option<&Leaf> {
        for _ in 0..=self.nodes.live() {
            match self.nodes.get(id)? {
                Node::Leaf { leaf, .. } => return Some(leaf),
                Node::Branch { branch, .. } => id = branch.route(x, |c| self.weight_of(c)),
            }
        }
        None
    }

    /// Every leaf `x` reaches from `id`, following alternates as well.
    fn reached_leaves(&self, start: NodeId, x: &[f64], out: &mut Vec<NodeId>, budget: &mut usize) {
        let mut id = start;
        while *budget > 0 {
            *budget -= 1;
            match self.nodes.get(id) {
                Some(Node::Leaf { .. }) => {
                    out.push(id);
                    return;
                }
                Some(Node::Branch {
                    branch, alternate, ..
                }) => {
                    if let Some(alt) = *alternate {
                        self.reached_leaves(alt, x, out, budget);
                    }
                    id = branch.route(x, |c| self.weight_of(c));
                }
                None => return,
            }
        }
    }

    fn learn_node(&mut self, id: NodeId, x: &[f64], y: usize, w: f64, budget: usize) {
        let Some(budget) = budget.checked_sub(1) else {
            return;
        };
        match self.nodes.get(id) {
            Some(Node::Leaf { .. }) => self.learn_leaf(id, x, y, w),
            Some(Node::Branch { .. }) => self.learn_branch(id, x, y, w, budget),
            None => {}
        }
    }

    fn learn_leaf(&mut self, id: NodeId, x: &[f64], y: usize, w: f64) {
        let w = if self.config.bootstrap_sampling {
            match self.rng.poisson(1.0) {
                0 => w,
                k => w * f64::from(k),
            }
        } else {
            w
        };
        let config = &self.config.tree;
        let Some(Node::Leaf { leaf, adwin }) = self.nodes.get_mut(id) else {
            return;
        };
        let correct = leaf.predict(x, config).and_then(|p| argmax(&p)) == Some(y);
        adwin.update(if correct { 0.0 } else { 1.0 });
        leaf.learn(x, y, w, config);
        if leaf.due_for_split_attempt(config) {
            self.split_leaf(id);
        }
    }

    fn split_leaf(&mut self, id: NodeId) {
        let config = &self.config.tree;
        let Some(Node::Leaf { leaf, .. }) = self.nodes.get(id) else {
            return;
        };
        let outcome = if config.max_depth.is_some_and(|max| leaf.depth >= max) {
            SplitOutcome::Deactivate
        } else {
            leaf.attempt_split(config)
        };
        let (depth, stats) = (leaf.depth, leaf.stats.clone());
        match outcome {
            SplitOutcome::Keep => {}
            SplitOutcome::Deactivate => {
                if let Some(Node::Leaf { leaf, .. }) = self.nodes.get_mut(id) {
                    leaf.deactivate();
                }
            }
            SplitOutcome::Restart => {
                if let Some(Node::Leaf { leaf, .. }) = self.nodes.get_mut(id) {
                    leaf.restart();
                }
            }
            SplitOutcome::Split(split) => {
                let [left, right] = split.children_stats;
                let child = |stats| Node::Leaf {
                    leaf: Leaf::new(stats, depth + 1),
                    adwin: self.new_adwin(),
                };
                let (left, right) = (child(left), child(right));
                let children = [self.nodes.alloc(left), self.nodes.alloc(right)];
                let branch = Node::Branch {
                    branch: Branch {
                        feature: split.feature,
                        threshold: split.threshold,
                        children,
                        depth,
                        stats,
                    },
                    adwin: self.new_adwin(),
                    alternate: None,
                };
                self.nodes.replace(id, branch);
                return;
            }
        }
        if let Some(Node::Leaf { leaf, .. }) = self.nodes.get_mut(id) {
            leaf.last_split_attempt_at = leaf.total_weight();
        }
    }

    fn learn_branch(&mut self, id: NodeId, x: &[f64], y: usize, w: f64, budget: usize) {
        let config = &self.config.tree;
        let correct = self
            .main_leaf(id, x)
            .and_then(|leaf| leaf.predict(x, config))
            .and_then(|p| argmax(&p))
            == Some(y);
        let Some(Node::Branch {
            branch,
            adwin,
            alternate,
        }) = self.nodes.get_mut(id)
        else {
            return;
        };
        add_weight(&mut branch.stats, y, w);
        let old_error = adwin.estimation();
        // Only a rising error counts as drift.
        let drift =
            adwin.update(if correct { 0.0 } else { 1.0 }) && adwin.estimation() >= old_error;
        let (depth, width, error, alt) =
            (branch.depth, adwin.width(), adwin.estimation(), *alternate);

        if drift {
            if let Some(old_alt) = alt {
                self.free_subtree(old_alt);
            }
            let fresh = Node::Leaf {
                leaf: Leaf::new(Vec::new(), depth),
                adwin: self.new_adwin(),
            };
            let alt_id = self.nodes.alloc(fresh);
            self.set_alternate(id, Some(alt_id));
            self.n_alternate_trees += 1;
        } else if let Some(alt_id) = alt {
            let threshold = u64::from(self.config.drift_window_threshold);
            let (alt_width, alt_error) = self
                .nodes
                .get(alt_id)
                .map_or((0, 0.0), |n| (n.adwin().width(), n.adwin().estimation()));
            if width > threshold && alt_width > threshold {
                let n_recip = 1.0 / alt_width as f64 + 1.0 / width as f64;
                let bound = (2.0
                    * error
                    * (1.0 - error)
                    * (2.0 / self.config.switch_significance).ln()
                    * n_recip)
                    .sqrt();
                if bound < error - alt_error {
                    self.switch_to_alternate(id, alt_id);
                    self.n_switched_alternate_trees += 1;
                    // The alternate now stands at `id`; it learns this example as it would have.
                    return self.learn_node(id, x, y, w, budget);
                } else if bound < alt_error - error {
                    self.free_subtree(alt_id);
                    self.set_alternate(id, None);
                    self.n_pruned_alternate_trees += 1;
                }
            }
        }

        let Some(Node::Branch {
            branch, alternate, ..
        }) = self.nodes.get(id)
        else {
            return;
        };
        let alternate = *alternate;
        let child = branch.route(x, |c| self.weight_of(c));
        if let Some(alt_id) = alternate {
            self.learn_node(alt_id, x, y, w, budget);
        }
        self.learn_node(child, x, y, w, budget);
    }

    fn set_alternate(&mut self, id: NodeId, to: Option<NodeId>) {
        if let Some(Node::Branch { alternate, .. }) = self.nodes.get_mut(id) {
            *alternate = to;
        }
    }

    /// Put the alternate subtree in the branch's place and free the branch's subtree.
    fn switch_to_alternate(&mut self, id: NodeId, alt_id: NodeId) {
        self.set_alternate(id, None);
        let Some(alt_node) = self.nodes.remove(alt_id) else {
            return;
        };
        if let Some(Node::Branch {
            branch, alternate, ..
        }) = self.nodes.replace(id, alt_node)
        {
            for child in branch.children.into_iter().chain(alternate) {
                self.free_subtree(child);
            }
        }
    }

    fn free_subtree(&mut self, root: NodeId) {
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if let Some(Node::Branch {
                branch, alternate, ..
            }) = self.nodes.remove(id)
            {
                stack.extend(branch.children);
                stack.extend(alternate);
            }
        }
    }
}

impl Classifier for HoeffdingAdaptiveTreeClassifier {
    /// Update every node on the path of `x` (and the alternates met on the way); each
    /// node first scores its own prediction on ADWIN. Labels at or above
    /// [`MAX_CLASSES`] are ignored.
    fn learn_one(&mut self, x: &[f64], y: usize) {
        if y >= MAX_CLASSES {
            return;
        }
        self.n_classes = self.n_classes.max(y + 1);
        let root = match self.root {
            Some(root) => root,
            None => {
                let leaf = Node::Leaf {
                    leaf: Leaf::new(Vec::new(), 0),
                    adwin: self.new_adwin(),
                };
                let root = self.nodes.alloc(leaf);
                self.root = Some(root);
                root
            }
        };
        let budget = self.nodes.live() + 1;
        self.learn_node(root, x, y, 1.0, budget);
    }

    /// Sum over the leaves reached (main tree and alternates) of each leaf's
    /// probabilities divided by its squared ADWIN error (floored at `1/(width + 1)`),
    /// normalised; one entry per class seen; uniform when no reached leaf holds anything;
    /// empty before any learning.
    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        let mut leaves = Vec::new();
        if let Some(root) = self.root {
            let mut budget = self.nodes.live();
            self.reached_leaves(root, x, &mut leaves, &mut budget);
        }
        let mut votes = vec![0.0; self.n_classes];
        for id in leaves {
            let Some(Node::Leaf { leaf, adwin }) = self.nodes.get(id) else {
                continue;
            };
            let Some(p) = leaf.predict(x, &self.config.tree) else {
                continue;
            };
            let error = adwin.estimation().max(1.0 / (adwin.width() as f64 + 1.0));
            for (vote, p) in votes.iter_mut().zip(p) {
                *vote += p / (error * error);
            }
        }
        normalized(&votes).unwrap_or_else(|| vec![1.0 / self.n_classes as f64; self.n_classes])
    }
}
