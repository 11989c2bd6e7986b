//! What scoring a history gives: every buyer's id and score result, with the feature
//! table they came from. [`crate::rate`] makes it; [`crate::drift`] compares it with
//! the snapshot in service.

use fastrefund_core::scoring::Scored;
use polars::prelude::DataFrame;

/// Every buyer's id and score result.
pub struct Scores {
    pub buyer_ids: Vec<u64>,
    pub scored: Vec<Scored>,
    /// The feature table the scores came from.
    pub features: DataFrame,
}
