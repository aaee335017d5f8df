//! Rollout decisions: a challenger's way from shadow through canary steps to promotion,
//! rollback or a pause for a person.
//!
//! A rollout is a state machine kept in the registry (the registered model's tag
//! `freshet.rollout`), so it survives restarts and every node and command sees the same:
//!
//! ```text
//! candidate ─► shadow ─► canary 5% ─► canary 25% ─► canary 50% ─► baking ─► promoted
//!                 │          │            │             │           │
//!                 └──────────┴─ fail ─────┴─────────────┴───────────┴──► rolled_back
//!                 └──────────┴─ inconclusive ───────────┴──► paused ─(resume)─► same phase
//! ```
//!
//! After the last phase the candidate becomes champion and **bakes**: the previous
//! champion (now the `challenger` alias) scores a mirrored copy of the traffic, and
//! [`judge_bake`] rolls the candidate back if it does worse on the same live labels.
//!
//! Each phase holds for a minimum number of challenger requests and a minimum time,
//! then [`judge`] compares the variants (error rate, p99 latency, prediction drift,
//! label metric). [`judge`] and [`step`] are pure; the [`RolloutController`] applies
//! their outcome to the registry (aliases `champion` and `challenger`, the state tag)
//! and records a [`Decision`] for each transition. The router asks [`routing`] (or
//! [`RolloutModes`]) how much traffic the challenger gets. docs/rollout.md is the
//! user's description.

mod controller;
mod error;
mod judge;
mod state;

pub use controller::{EvidenceSource, RolloutController, RolloutModes, RolloutStatus};
pub use error::{Result, RolloutError};
pub use judge::{
    BakeVerdict, Evidence, Transition, VariantStats, Verdict, first_phase, js_distance, judge,
    judge_bake, next_phase, step,
};
pub use state::{
    Decision, MAX_DECISIONS, Phase, RolloutState, Routing, STATE_FORMAT, STATE_TAG, load_state,
    routing, save_state, state_from_tags,
};

#[cfg(test)]
mod controller_tests;
#[cfg(test)]
mod judge_tests;
