//! The vote of a tree ensemble, shared by the forest, leveraging bagging and streaming
//! random patches.

/// The members' class probabilities (`(weight, probabilities)`, one per member)
/// summed, weighted when `weighted` and some weight is positive (else every member
/// counts once), and normalised; uniform when nothing has weight (no member has learned
/// anything); empty when `n_classes` is 0.
pub(crate) fn vote(members: &[(f64, Vec<f64>)], n_classes: usize, weighted: bool) -> Vec<f64> {
    if n_classes == 0 {
        return Vec::new();
    }
    let weighted = weighted && members.iter().any(|(w, _)| *w > 0.0);
    let mut votes = vec![0.0; n_classes];
    for (w, p) in members {
        let w = if weighted { *w } else { 1.0 };
        for (v, q) in votes.iter_mut().zip(p) {
            *v += w * q;
        }
    }
    let total: f64 = votes.iter().sum();
    if total > 0.0 && total.is_finite() {
        votes.iter_mut().for_each(|v| *v /= total);
        votes
    } else {
        vec![1.0 / n_classes as f64; n_classes]
    }
}

#[cfg(test)]
mod tests {
    use super::vote;

    fn close(got: &[f64], want: &[f64]) -> bool {
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-12)
    }

    #[test]
    fn weights_count_only_when_asked_and_positive() {
        let m = [(0.9, vec![0.0, 1.0]), (0.1, vec![1.0, 0.0])];
        assert!(close(&vote(&m, 2, true), &[0.1, 0.9]));
        assert!(close(&vote(&m, 2, false), &[0.5, 0.5]));
        let unscored = [(0.0, vec![0.2, 0.8]), (0.0, vec![0.6, 0.4])];
        assert!(close(&vote(&unscored, 2, true), &[0.4, 0.6]));
        assert!(close(&vote(&[], 3, true), &[1.0 / 3.0; 3]));
        assert!(vote(&m, 0, true).is_empty());
    }
}
