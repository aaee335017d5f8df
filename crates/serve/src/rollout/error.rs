//! Why a rollout operation was refused. Each message says what to do instead, since
//! most of them reach a person at the command line.

use freshet_registry::RegistryError;

pub type Result<T, E = RolloutError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The registry has no registered model of that name.
    #[error("no registered model '{0}': register a version of it first")]
    UnknownModel(String),
    /// The model has no such version.
    #[error("model '{model}' has no version {version}")]
    VersionNotFound { model: String, version: i64 },
    /// The operation needs a rollout in progress and there is none.
    #[error(
        "model '{0}' has no rollout in progress: start one with `freshet rollout start {0} --version N`"
    )]
    NoRollout(String),
    /// A rollout is already under way; only one at a time per model.
    #[error(
        "model '{model}' already has a rollout of version {version} in progress ({phase}): promote or roll it back first"
    )]
    InProgress {
        model: String,
        version: i64,
        phase: String,
    },
    /// There is no champion to compare a candidate with, or to restore.
    #[error(
        "model '{model}' has no champion {why}: point the alias 'champion' at a version with `freshet rollout rollback {model} --to-version N`"
    )]
    NoChampion { model: String, why: &'static str },
    /// The operation does not apply in the rollout's current phase.
    #[error("model '{model}': {message}")]
    InvalidOp { model: String, message: String },
    /// The stored state does not parse or comes from a newer Freshet.
    #[error("the rollout state of model '{model}' (tag freshet.rollout) cannot be read: {reason}")]
    BadState { model: String, reason: String },
    /// Someone else (a server's controller, another command) wrote the state between
    /// our read and our write; the operation was not applied.
    #[error(
        "the rollout of model '{0}' changed while this operation ran: look at `freshet rollout status {0}` and try again"
    )]
    Conflict(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}
