//! Serving: the models the registry's aliases point at, answering requests.
//!
//! This room holds the scoring request and response [`formats`] (MLflow's invocation
//! formats and the Open Inference Protocol v2), the [`router`] that sends each request
//! to the champion or the challenger (shadow or canary) and swaps versions without a
//! restart, the [`rollout`] decisions that move a challenger through shadow and canary
//! steps to promotion or rollback, and the [`capture`] of every prediction into the
//! `inference/<model>` table, and [`live`] serving: a champion that learns each label
//! as it arrives, with its snapshot as a safety net.
//!
//! It may touch `core`, `learn` (models score through the same feature pipeline they
//! trained with), `registry` (aliases, versions, artifacts, rollout state) and `lake`
//! (inference and label tables). HTTP lives in the binary; this crate has no server.

pub mod capture;
pub mod error;
pub mod evidence;
pub mod feedback;
pub mod formats;
pub mod live;
pub mod loader;
pub mod metrics;
pub mod rollout;
pub mod router;
pub mod service;
pub mod sinks;
pub mod stats;

pub use error::ServeError;
