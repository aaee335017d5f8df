//! Controller errors.

/// Why a controller step failed. Never carries a record value.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Registry(#[from] freshet_registry::RegistryError),
    #[error(transparent)]
    Lake(#[from] freshet_lake::LakeError),
    #[error(transparent)]
    Model(#[from] freshet_learn::model::ModelError),
    #[error(transparent)]
    Serve(#[from] freshet_serve::ServeError),
    #[error(transparent)]
    Rollout(#[from] freshet_serve::rollout::RolloutError),
    #[error("model '{model}': {reason}")]
    Config { model: String, reason: String },
    #[error("the controller state of '{model}' is unreadable: {reason}")]
    BadState { model: String, reason: String },
    #[error("training job for '{model}' failed: {reason}")]
    Job { model: String, reason: String },
}

pub type Result<T, E = ControlError> = std::result::Result<T, E>;
