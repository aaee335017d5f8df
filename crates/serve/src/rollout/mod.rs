//! Rollout decisions: a challenger's way from shadow through canary steps to promotion,
//! rollback or a pause for a person.
