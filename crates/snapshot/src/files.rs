//! Reading the model and policy files. The core parses text and does no I/O; reading
//! the file, and saying which file could not be read, happens here.

use fastrefund_core::policy::{Policy, PolicyError};
use fastrefund_core::scoring::{Model, ModelError};
use std::path::Path;

/// Why a `model.json` cannot be used: unreadable, or not a valid model.
#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Why a policy file cannot be used: unreadable, or not a valid policy.
#[derive(Debug, thiserror::Error)]
pub enum PolicyFileError {
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// Reads and validates `model.json`.
pub fn load_model(path: &Path) -> Result<Model, ModelFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Model::from_json(&text, &path.display().to_string())?)
}

/// Reads and checks a policy file.
pub fn load_policy(path: &Path) -> Result<Policy, PolicyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Policy::from_toml(&text, &path.display().to_string())?)
}
