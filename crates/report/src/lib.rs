//! Reports a person looks at: tables as JSON/Markdown and figures as SVG.
//!
//! It draws what the other crates computed, as plain data (the evaluation and the
//! drift report from `fastrefund-train` and `fastrefund-snapshot`, the judge's rows
//! read by `fastrefund-batch` and handed over by the caller), so it links neither
//! polars nor the batch crate.
//!
//! - [`judge`]: a snapshot's stars against the generator's hidden truth.
//! - [`model_report`]: the evaluation report of a trained model (HTML, SVG, CSV).
//! - [`cases_svg`], [`cases_csv`]: the overturn rates of decided cases (the `cases`
//!   section of the report and of a snapshot's monitoring).

mod cases;
mod drift;
mod judge;
mod model_report;
pub mod plot;

pub use cases::{cases_csv, cases_figure, cases_svg};
pub use drift::{drift_figure, drift_svg};
pub use judge::{Judgement, judge};
pub use model_report::model_report;

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("plot: {0}")]
    Plot(String),
}

pub(crate) fn io(path: &std::path::Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
