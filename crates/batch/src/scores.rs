//! What scoring a history gives: every buyer's id and score result, with the feature
//! table they came from. [`crate::rate`] makes it and adds it to the drift tally
//! ([`fastrefund_snapshot::drift::Tally`]) that compares it with the snapshot in
//! service.

use fastrefund_core::scoring::Scored;
use polars::prelude::DataFrame;

/// Every buyer's id and score result.
pub struct Scores {
    pub buyer_ids: Vec<u64>,
    pub scored: Vec<Scored>,
    /// The feature table the scores came from.
    pub features: DataFrame,
}

impl Scores {
    /// A feature's values in buyer order (NaN = missing), for the drift tally; `None`
    /// when the feature table has no such `f64` column (a feature of another model).
    pub fn feature_values(&self, name: &str) -> Option<Vec<f64>> {
        let c = self.features.column(name).ok()?.f64().ok()?.clone();
        Some(c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
}
