//! Histogram gradient-boosted trees, the batch learner for periodic retraining on a window.
