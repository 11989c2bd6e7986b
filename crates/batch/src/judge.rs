//! The reading half of `judge`: a generated history's hidden truth (`truth.parquet`,
//! each buyer's hidden type) beside a snapshot's ratings, one row per truth buyer. The
//! report crate turns these rows into the table and figure without polars.

use crate::dataset_io::read_parquet;
use fastrefund_core::cols::BUYER_ID;
use fastrefund_snapshot::ratings;
use polars::prelude::*;
use std::path::Path;

/// The truth file a generated history carries.
pub const TRUTH_FILE: &str = "truth.parquet";
/// Its column naming each buyer's hidden type.
pub const HIDDEN_TYPE: &str = "hidden_type";

/// Every truth buyer's hidden type, and their star and whether their rating carries a
/// reason (`None` / `false`: the snapshot does not rate them).
#[derive(Debug, Clone, Default)]
pub struct TruthAndStars {
    pub hidden_type: Vec<String>,
    pub star: Vec<Option<u8>>,
    pub has_reason: Vec<bool>,
}

impl TruthAndStars {
    /// `(hidden type, star, has a reason)` per truth buyer.
    pub fn rows(&self) -> impl Iterator<Item = (&str, Option<u8>, bool)> {
        self.hidden_type
            .iter()
            .zip(&self.star)
            .zip(&self.has_reason)
            .map(|((t, s), r)| (t.as_str(), *s, *r))
    }
}

/// Why the truth and the ratings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    #[error("{path}: {source}")]
    Read { path: String, source: PolarsError },
    #[error("joining the truth with the ratings: {0}")]
    Join(#[from] PolarsError),
    #[error("{path}, truth row {row}: no hidden type")]
    NoType { path: String, row: usize },
}

/// Reads `DATA/truth.parquet` and `SNAPSHOT/ratings.parquet` and joins them by buyer.
pub fn truth_and_stars(data: &Path, snapshot: &Path) -> Result<TruthAndStars, JudgeError> {
    let read = |p: &Path| {
        read_parquet(p).map_err(|source| JudgeError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let truth_path = data.join(TRUTH_FILE);
    let truth = read(&truth_path)?;
    let rated = read(&snapshot.join(fastrefund_snapshot::RATINGS_FILE))?;
    let joined = truth
        .lazy()
        .join(
            rated.lazy(),
            [col(BUYER_ID)],
            [col(BUYER_ID)],
            JoinArgs::new(JoinType::Left),
        )
        .collect()?;
    let types = joined.column(HIDDEN_TYPE)?.str()?;
    let stars = joined.column(ratings::STAR)?.u8()?;
    let reason = joined.column(&ratings::reason_column(1))?.str()?;
    Ok(TruthAndStars {
        hidden_type: types
            .iter()
            .enumerate()
            .map(|(row, t)| {
                t.map(str::to_string).ok_or_else(|| JudgeError::NoType {
                    path: truth_path.display().to_string(),
                    row,
                })
            })
            .collect::<Result<_, _>>()?,
        star: stars.iter().collect(),
        has_reason: reason.iter().map(|r| r.is_some()).collect(),
    })
}
