//! Adaptive random forest: an ensemble of Hoeffding trees with drift-driven replacement.
