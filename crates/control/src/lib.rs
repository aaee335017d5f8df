//! The loop controller: when a model retrains, how, and what happens to the result.
//!
//! This room holds, per model, the [`triggers`] (new rows, a schedule, concept drift on
//! the live error stream, data drift of served traffic against the champion's reference
//! profile ([`drift_watch`]), accuracy below a floor; triggers that fire during a job
//! coalesce into one follow-up), the training [`job`] (built-in learners in-process on
//! a window of the stream's table at a pinned Delta version, an [`online`] learner that
//! keeps learning from the stream and is snapshotted into versions, or an external
//! command),
//! the offline [`gates`] (minimums, the champion scored on the candidate's own
//! out-of-time holdout, a latency budget), and the hand-over of a passing candidate to
//! the rollout controller. Its state lives in the registry (the registered model's tag
//! `freshet.control`), so a restart resumes a job where it stopped and never trains the
//! same trigger twice. It also answers [`lineage`] queries from the records the loop
//! keeps (runs, table versions, alias history, captured predictions, approvals).
//!
//! It may touch every crate to its left: core, govern (approvals and lineage's rules),
//! lake, learn, registry, serve and monitor (the concept-drift detectors and the drift
//! tests).

mod captured;
pub mod controller;
pub mod drift_watch;
pub mod error;
pub mod errors;
pub mod gates;
pub mod job;
pub mod lineage;
pub mod online;
pub mod publish;
pub mod state;
pub mod triggers;

pub use controller::{ModelLoop, Signals};
pub use error::ControlError;
