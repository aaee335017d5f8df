//! Node storage shared by both trees: an arena of nodes addressed by index (flat to
//! serialise, no recursion limit, a subtree is replaced in place) and the binary branch.

use serde::{Deserialize, Serialize};

use super::exact;

pub(crate) type NodeId = usize;

/// The value of feature `i`, or `None` when it is missing (NaN or past the end of `x`).
pub(crate) fn feature_value(x: &[f64], i: usize) -> Option<f64> {
    x.get(i).copied().filter(|v| !v.is_nan())
}

/// Add `w` to `stats[class]`, growing the vector as needed.
pub(crate) fn add_weight(stats: &mut Vec<f64>, class: usize, w: f64) {
    if stats.len() <= class {
        stats.resize(class + 1, 0.0);
    }
    stats[class] += w;
}

/// `stats` scaled to sum to one; `None` when it holds no weight.
pub(crate) fn normalized(stats: &[f64]) -> Option<Vec<f64>> {
    let total: f64 = stats.iter().sum();
    if total > 0.0 && total.is_finite() {
        Some(stats.iter().map(|w| w / total).collect())
    } else {
        None
    }
}

/// Nodes by index; removed slots are reused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Arena<T> {
    slots: Vec<Option<T>>,
    free: Vec<NodeId>,
}

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Arena<T> {
    pub(crate) fn alloc(&mut self, node: T) -> NodeId {
        while let Some(id) = self.free.pop() {
            if let Some(slot @ None) = self.slots.get_mut(id) {
                *slot = Some(node);
                return id;
            }
        }
        self.slots.push(Some(node));
        self.slots.len() - 1
    }

    pub(crate) fn get(&self, id: NodeId) -> Option<&T> {
        self.slots.get(id)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: NodeId) -> Option<&mut T> {
        self.slots.get_mut(id)?.as_mut()
    }

    /// Take the node out, freeing its slot.
    pub(crate) fn remove(&mut self, id: NodeId) -> Option<T> {
        let node = self.slots.get_mut(id)?.take();
        if node.is_some() {
            self.free.push(id);
        }
        node
    }

    /// Put `node` at `id` (which must exist), returning what was there.
    pub(crate) fn replace(&mut self, id: NodeId, node: T) -> Option<T> {
        let slot = self.slots.get_mut(id)?;
        let old = slot.replace(node);
        if old.is_none() {
            self.free.retain(|&f| f != id);
        }
        old
    }

    pub(crate) fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// A binary test on a numeric feature.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Branch {
    pub(crate) feature: usize,
    #[serde(with = "exact")]
    pub(crate) threshold: f64,
    /// Left (`x <= threshold`) and right children.
    pub(crate) children: [NodeId; 2],
    pub(crate) depth: u32,
    /// Class weights: those of the leaf when it split (the plain tree), kept up to date
    /// by the adaptive tree.
    #[serde(with = "exact::vec")]
    pub(crate) stats: Vec<f64>,
}

impl Branch {
    /// The child for `x`; a missing value goes to the child with more weight according to
    /// `weight_of` (left on ties).
    pub(crate) fn route(&self, x: &[f64], weight_of: impl Fn(NodeId) -> f64) -> NodeId {
        match feature_value(x, self.feature) {
            Some(v) if v <= self.threshold => self.children[0],
            Some(_) => self.children[1],
            None => {
                let [l, r] = self.children;
                if weight_of(r) > weight_of(l) { r } else { l }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arena_reuses_freed_slots() {
        let mut a = Arena::default();
        let x = a.alloc('x');
        let y = a.alloc('y');
        assert_eq!(a.live(), 2);
        assert_eq!(a.remove(x), Some('x'));
        assert_eq!(a.remove(x), None);
        assert_eq!(a.get(x), None);
        assert_eq!(a.alloc('z'), x);
        assert_eq!(a.replace(y, 'w'), Some('y'));
        assert_eq!(a.get(y), Some(&'w'));
        assert_eq!(a.live(), 2);
        assert_eq!(a.get(99), None);
    }

    #[test]
    fn missing_values_take_the_heavier_child() {
        let b = Branch {
            feature: 1,
            threshold: 0.5,
            children: [10, 11],
            depth: 0,
            stats: vec![],
        };
        let heavier_right = |id| if id == 11 { 5.0 } else { 1.0 };
        assert_eq!(b.route(&[0.0, 0.5], heavier_right), 10);
        assert_eq!(b.route(&[0.0, 0.6], heavier_right), 11);
        assert_eq!(b.route(&[0.0, f64::NAN], heavier_right), 11);
        assert_eq!(b.route(&[0.0], heavier_right), 11);
        assert_eq!(b.route(&[], |_| 1.0), 10);
        assert_eq!(b.route(&[0.0, f64::INFINITY], heavier_right), 11);
        assert_eq!(b.route(&[0.0, f64::NEG_INFINITY], heavier_right), 10);
    }
}
