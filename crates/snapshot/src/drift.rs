//! Drift between a new ratings snapshot and the one in service: the population
//! stability index (PSI) of scores, stars and every model feature.
//!
//! Each snapshot records its distributions in its manifest ([`Distribution`]): score
//! deciles, star shares, and the share of buyers in each bin of every model feature.
//! The new snapshot's scores are put in the baseline's score deciles, and its buyers'
//! feature values in the baseline *model's* bins, so the comparison holds even when
//! the model changed. `PSI = Σ (actual − expected) · ln(actual / expected)`; by the
//! usual reading, < 0.1 is stable, 0.1–0.25 worth a look, > 0.25 a shift.
//!
//! Plain data and arithmetic, no polars: the batch side adds each scored part of a
//! history to a [`Tally`] (its scores, and each feature's values read from its table),
//! and the report crate draws a [`DriftReport`] as `drift.svg`.

use crate::{Baseline, Distribution};
use fastrefund_core::scoring::{Scorecard, Scored};
use serde::Serialize;
use std::collections::BTreeMap;

/// Population stability index between two distributions over the same bins (each a
/// list of shares); empty bins are floored at 0.0001 so the index stays finite.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(1e-4), a.max(1e-4));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// PSI of the new snapshot against the baseline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DriftReport {
    pub baseline_model_version: String,
    pub baseline_as_of: String,
    pub score_psi: f64,
    pub star_psi: f64,
    /// Per feature of the baseline model, largest first.
    pub features: Vec<(String, f64)>,
}

impl DriftReport {
    /// Features whose PSI is at least `min`, for messages.
    pub fn moved(&self, min: f64) -> Vec<String> {
        self.features
            .iter()
            .filter(|(_, p)| *p >= min)
            .map(|(f, p)| format!("{f} (PSI {p:.3})"))
            .collect()
    }
}

fn shares(counts: &[u64]) -> Vec<f64> {
    let n = counts.iter().sum::<u64>().max(1) as f64;
    counts.iter().map(|c| *c as f64 / n).collect()
}

/// Buyers per bin of each of `card`'s features (one slot more for values no bin takes).
type BinCounts = BTreeMap<String, Vec<u64>>;

/// A feature's values (NaN = missing) by its name; `None`: the table does not have it.
pub type FeatureValues<'a> = dyn Fn(&str) -> Option<Vec<f64>> + 'a;

fn add_feature_counts(into: &mut BinCounts, card: &Scorecard, values_of: &FeatureValues<'_>) {
    for (j, name) in card.feature_names().enumerate() {
        let Some(values) = values_of(name) else {
            continue;
        };
        let slots = card.model().features[j].bins.len() + 1;
        let counts = into
            .entry(name.to_string())
            .or_insert_with(|| vec![0u64; slots]);
        for x in values {
            if let Some(k) = card.numeric_bin(j, x) {
                counts[k.min(slots - 1)] += 1;
            }
        }
    }
}

fn feature_shares(counts: &BinCounts) -> BTreeMap<String, Vec<f64>> {
    counts
        .iter()
        .map(|(name, c)| (name.clone(), shares(c)))
        .collect()
}

/// What the distributions and the drift of a snapshot are made from, added up part by
/// part as a history is scored (so no part's features are kept): every score, the
/// stars, and the buyers per bin of every feature of the scoring model and of the
/// baseline's model.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    scores: Vec<i32>,
    stars: [u64; 5],
    own: BinCounts,
    baseline: BinCounts,
}

impl Tally {
    /// Adds one scored part: its buyers' score results, and `values_of` each feature's
    /// values in the same buyer order; `baseline` is the model of the snapshot in
    /// service, if any.
    pub fn add(
        &mut self,
        card: &Scorecard,
        baseline: Option<&Scorecard>,
        scored: &[Scored],
        values_of: &FeatureValues<'_>,
    ) {
        for x in scored {
            self.scores.push(x.score);
            self.stars[x.star.index()] += 1;
        }
        add_feature_counts(&mut self.own, card, values_of);
        if let Some(b) = baseline {
            add_feature_counts(&mut self.baseline, b, values_of);
        }
    }

    /// Buyers scored.
    pub fn rows(&self) -> u64 {
        self.scores.len() as u64
    }

    /// Buyers per star (1★ first).
    pub fn star_counts(&self) -> [u64; 5] {
        self.stars
    }

    /// A tally of one scored history.
    pub fn of(
        card: &Scorecard,
        baseline: Option<&Scorecard>,
        scored: &[Scored],
        values_of: &FeatureValues<'_>,
    ) -> Tally {
        let mut t = Tally::default();
        t.add(card, baseline, scored, values_of);
        t
    }
}

/// The distributions of a freshly scored snapshot.
pub fn distribution(tally: &Tally) -> Distribution {
    let mut sorted = tally.scores.clone();
    sorted.sort_unstable();
    let n = sorted.len();
    let mut edges: Vec<i32> = (1..10)
        .filter_map(|k| sorted.get(k * n / 10).copied())
        .collect();
    edges.dedup();
    let mut score_counts = vec![0u64; edges.len() + 1];
    for x in &tally.scores {
        score_counts[edges.partition_point(|e| *e <= *x)] += 1;
    }
    let st = shares(&tally.stars);
    Distribution {
        score_shares: shares(&score_counts),
        score_edges: edges,
        star_shares: [st[0], st[1], st[2], st[3], st[4]],
        features: feature_shares(&tally.own),
    }
}

/// Drift of newly scored buyers against a baseline snapshot (the tally must have been
/// added up with the baseline's model).
pub fn drift(baseline: &Baseline, new: &Tally) -> Option<DriftReport> {
    let base = baseline.manifest.distribution.as_ref()?;
    let mut score_counts = vec![0u64; base.score_edges.len() + 1];
    for x in &new.scores {
        score_counts[base.score_edges.partition_point(|e| *e <= *x)] += 1;
    }
    // Feature values binned with the baseline's own model.
    let now = feature_shares(&new.baseline);
    let mut features: Vec<(String, f64)> = base
        .features
        .iter()
        .filter_map(|(name, expected)| {
            now.get(name)
                .filter(|a| a.len() == expected.len())
                .map(|actual| (name.clone(), psi(expected, actual)))
        })
        .collect();
    features.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(DriftReport {
        baseline_model_version: baseline.manifest.model_version.clone(),
        baseline_as_of: baseline.manifest.as_of.to_string(),
        score_psi: psi(&base.score_shares, &shares(&score_counts)),
        star_psi: psi(&base.star_shares, &shares(&new.stars)),
        features,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_grows_with_shift() {
        let a = [0.25, 0.25, 0.25, 0.25];
        assert!(psi(&a, &a).abs() < 1e-12);
        let b = [0.1, 0.2, 0.3, 0.4];
        let c = [0.01, 0.09, 0.3, 0.6];
        assert!(psi(&a, &b) > 0.0 && psi(&a, &c) > psi(&a, &b));
    }
}
