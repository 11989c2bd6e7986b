//! Reading the model and policy files. The core parses text and does no I/O; reading
//! the file, and saying which file could not be read, happens here.
//!
//! A model that is published again (a snapshot carries the `model.json` that scored
//! it, byte for byte, and its manifest the text's SHA-256) is read once as a
//! [`LoadedModel`]: the checked scorecard and the very text it was parsed from, so the
//! two cannot disagree.

use fastrefund_core::policy::{Policy, PolicyError};
use fastrefund_core::scoring::{Model, ModelError, Scorecard};
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

/// A checked model and the exact text of its `model.json`.
#[derive(Debug, Clone)]
pub struct LoadedModel {
    card: Scorecard,
    json: String,
}

impl LoadedModel {
    /// Parses and checks `json`; `source` names it in errors.
    pub fn from_json(json: String, source: &str) -> Result<LoadedModel, ModelError> {
        let card = Model::from_json(&json, source)?.check()?;
        Ok(LoadedModel { card, json })
    }

    /// The scorecard.
    pub fn card(&self) -> &Scorecard {
        &self.card
    }

    /// The text the scorecard was parsed from.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// Reads `model.json` and checks the model, keeping its text ([`LoadedModel`]).
pub fn load_checked_model(path: &Path) -> Result<LoadedModel, ModelFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(LoadedModel::from_json(text, &path.display().to_string())?)
}

/// Reads and checks a policy file.
pub fn load_policy(path: &Path) -> Result<Policy, PolicyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Policy::from_toml(&text, &path.display().to_string())?)
}
