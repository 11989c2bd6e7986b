//! What scoring a history gives: every buyer's id, score result and points per feature,
//! with the feature table they came from. [`crate::rate`] makes it and adds it to the
//! drift tally ([`fastrefund_snapshot::drift::Tally`]) that compares it with the
//! snapshot in service.

use fastrefund_core::scoring::{Points, Scored};
use polars::prelude::{DataFrame, Int32Chunked};

/// Every buyer's id and score result.
pub struct Scores {
    pub buyer_ids: Vec<u64>,
    /// Each buyer's rating: as the model scores their features, or, after
    /// [`crate::overrides::Overrides::apply`], with the reasons their strikes struck.
    pub scored: Vec<Scored>,
    /// Each buyer's points per feature, as the model scores their features (never
    /// struck): the snapshot's `points_<feature>` columns.
    pub points: PointsTable,
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

/// Every buyer's points per feature, a buyer's `n_features` values after the other's
/// (model order), with whether each value was missing: 5 bytes a value, flat, so a
/// part of millions of buyers holds no vector per buyer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointsTable {
    n_features: usize,
    points: Vec<i32>,
    missing: Vec<bool>,
}

impl PointsTable {
    /// A table of `buyers` rows of `n_features` points, all 0 and present, to fill
    /// row by row ([`PointsTable::rows_mut`]).
    pub fn zeroed(buyers: usize, n_features: usize) -> PointsTable {
        PointsTable {
            n_features,
            points: vec![0; buyers * n_features],
            missing: vec![false; buyers * n_features],
        }
    }

    /// A table from its flat rows (buyer after buyer, `n_features` values each);
    /// `None` when the lengths do not make whole rows of the same width.
    pub fn from_flat(
        n_features: usize,
        points: Vec<i32>,
        missing: Vec<bool>,
    ) -> Option<PointsTable> {
        (n_features > 0 && points.len() == missing.len() && points.len().is_multiple_of(n_features))
            .then_some(PointsTable {
                n_features,
                points,
                missing,
            })
    }

    /// Buyers (rows).
    pub fn len(&self) -> usize {
        self.points.len().checked_div(self.n_features).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Features a buyer (columns).
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// Buyer `i`'s points, as the scorecard takes them.
    pub fn row(&self, i: usize) -> Points {
        let r = i * self.n_features..(i + 1) * self.n_features;
        Points {
            points: self.points[r.clone()].to_vec(),
            missing: self.missing[r].to_vec(),
        }
    }

    /// Each row's points and missing flags, to fill in parallel.
    pub fn rows_mut(
        &mut self,
    ) -> impl rayon::iter::IndexedParallelIterator<Item = (&mut [i32], &mut [bool])> {
        use rayon::prelude::*;
        // A model has at least one feature (its check refuses one without); a chunk
        // size of 0 would panic, so an empty row width gives no rows.
        let w = self.n_features.max(1);
        self.points
            .par_chunks_mut(w)
            .zip(self.missing.par_chunks_mut(w))
    }

    /// Feature `j`'s points of every buyer, null where the value was missing: the
    /// column `points_<feature>` of `ratings.parquet`.
    pub fn column(&self, j: usize) -> Int32Chunked {
        let w = self.n_features;
        (0..self.len())
            .map(|i| (!self.missing[i * w + j]).then_some(self.points[i * w + j]))
            .collect()
    }
}
