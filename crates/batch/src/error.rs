//! Why a training or evaluation workflow failed ([`WorkflowError`]): one error for
//! [`crate::training`] and the checks it runs ([`crate::fairness`],
//! [`crate::promises`]), kept apart from them so that none of those modules needs
//! another's.

use crate::tables::DataError;
use fastrefund_core::scoring::ModelError;
use fastrefund_train::TrainError;
use fastrefund_train::dataset::DatasetError;
use polars::prelude::PolarsError;
use std::path::Path;

/// Why a workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("computing features: {0}")]
    Polars(#[from] PolarsError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    ModelFile(#[from] fastrefund_snapshot::ModelFileError),
    #[error(transparent)]
    Promises(#[from] BrokenPromises),
}

pub(crate) fn encode(what: &'static str, e: serde_json::Error) -> WorkflowError {
    WorkflowError::Encode { what, source: e }
}

pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the model breaks its promises to honest buyers, so it is not published (train with --force to publish it anyway):\n  - {}",
    .0.join("\n  - ")
)]
pub struct BrokenPromises(pub Vec<String>);
