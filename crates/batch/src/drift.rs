//! Drift between a new ratings snapshot and the one in service: the population
//! stability index (PSI) of scores, stars and every model feature.
//!
//! Each snapshot records its distributions in its manifest ([`Distribution`]): score
//! deciles, star shares, and the share of buyers in each bin of every model feature.
//! The new snapshot's scores are put in the baseline's score deciles, and its buyers'
//! feature values in the baseline *model's* bins, so the comparison holds even when
//! the model changed. `PSI = Σ (actual − expected) · ln(actual / expected)`; by the
//! usual reading, < 0.1 is stable, 0.1–0.25 worth a look, > 0.25 a shift.

use crate::scores::Scores;
use fastrefund_core::scoring::Scorecard;
use fastrefund_snapshot::{Distribution, Ratings};
use fastrefund_train::metrics::psi;
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

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

fn feature_values(df: &DataFrame, name: &str) -> Option<Vec<f64>> {
    let c = df.column(name).ok()?.f64().ok()?.clone();
    Some(c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

fn feature_shares(card: &Scorecard, df: &DataFrame) -> BTreeMap<String, Vec<f64>> {
    let mut out = BTreeMap::new();
    for (j, name) in card.feature_names().enumerate() {
        let Some(values) = feature_values(df, name) else {
            continue;
        };
        let slots = card.model().features[j].bins.len() + 1;
        let mut counts = vec![0u64; slots];
        for x in values {
            if let Some(k) = card.numeric_bin(j, x) {
                counts[k.min(slots - 1)] += 1;
            }
        }
        out.insert(name.to_string(), shares(&counts));
    }
    out
}

/// The distributions of a freshly scored snapshot.
pub fn distribution(card: &Scorecard, s: &Scores) -> Distribution {
    let mut sorted: Vec<i32> = s.scored.iter().map(|x| x.score).collect();
    sorted.sort_unstable();
    let n = sorted.len();
    let mut edges: Vec<i32> = (1..10)
        .filter_map(|k| sorted.get(k * n / 10).copied())
        .collect();
    edges.dedup();
    let mut score_counts = vec![0u64; edges.len() + 1];
    let mut star_counts = [0u64; 5];
    for x in &s.scored {
        score_counts[edges.partition_point(|e| *e <= x.score)] += 1;
        star_counts[x.star.index()] += 1;
    }
    let st = shares(&star_counts);
    Distribution {
        score_shares: shares(&score_counts),
        score_edges: edges,
        star_shares: [st[0], st[1], st[2], st[3], st[4]],
        features: feature_shares(card, &s.features),
    }
}

/// Drift of newly scored buyers against a baseline snapshot.
pub fn drift(baseline: &Ratings, new: &Scores) -> Option<DriftReport> {
    let base = baseline.manifest.distribution.as_ref()?;
    let mut score_counts = vec![0u64; base.score_edges.len() + 1];
    let mut star_counts = [0u64; 5];
    for x in &new.scored {
        score_counts[base.score_edges.partition_point(|e| *e <= x.score)] += 1;
        star_counts[x.star.index()] += 1;
    }
    // Feature values binned with the baseline's own model.
    let now = feature_shares(baseline.model(), &new.features);
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
        star_psi: psi(&base.star_shares, &shares(&star_counts)),
        features,
    })
}
