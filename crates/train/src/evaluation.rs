//! What a trained model's evaluation found, as plain data (no polars): the figures
//! written as `evaluation.json` beside the model and drawn by the report crate, the
//! promises to honest buyers tried on a history, and the fairness table by group.
//!
//! The batch side computes the parts that need a history (features, the added
//! returns of the promise check, each buyer's group) and fills these in; the report
//! crate only reads them, so it needs neither polars nor the batch crate.
//!
//! **Fairness** (issue 14): for the buyers of the test population, grouped by account
//! tenure, main category and number of orders, the share at or above the
//! instant-release star, the bad rate, and the adverse-impact ratio: a group's share at
//! or above that star over that of the best-treated group of the same dimension. Below
//! 0.8 (the "four-fifths rule" of US employment practice, the usual screen in credit
//! fairness reviews too) the group is flagged for a person to look at: a flag is a
//! question, not a verdict, since groups can differ in risk.

use crate::TrainError;
use crate::challenger::Challenger;
use crate::dataset::Dataset;
use crate::metrics::{self, CalibrationRow};
use fastrefund_core::scoring::SplitMetrics;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything an evaluation found, written as `evaluation.json` next to the model.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub model_version: String,
    pub train: Option<SplitMetrics>,
    pub test: SplitMetrics,
    /// Calibration of the test split by score decile.
    pub calibration: Vec<CalibrationRow>,
    /// Information value of every candidate feature, and whether the model kept it.
    pub information_value: Vec<IvRow>,
    /// ROC curve on the test split: `[false positive rate, true positive rate]`.
    pub roc: Vec<[f64; 2]>,
    /// Cumulative shares of bads and goods by score on the test split.
    pub ks_curve: Vec<[f64; 3]>,
    /// Score distribution of goods and bads on the test split.
    pub score_distribution: metrics::ScoreDistribution,
    /// The challenger on the same splits, when one was trained.
    pub challenger: Option<ChallengerEval>,
    /// The promises to honest buyers (buyer models): what the points table guarantees
    /// and what adding returns to sampled buyers did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promises: Option<Promises>,
    /// Share at ≥ 3★, bad rate and adverse-impact ratio by group ([`FairnessTally`];
    /// buyer models).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fairness: Vec<FairnessRow>,
    /// Overturn rates of decided cases by star at opening and by reason code
    /// (`train --cases`; [`crate::overturn`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cases: Option<crate::overturn::Overturns>,
    pub notes: Vec<String>,
}

/// [`Evaluation::promises`].
#[derive(Debug, Clone, Serialize)]
pub struct Promises {
    /// Broken promises read off the points table (empty: all kept).
    pub table_violations: Vec<String>,
    /// The most points one honest return can cost anyone, by the points table.
    pub honest_cost_bound: i32,
    /// The narrowest star band above the floor star, which that cost must not exceed.
    pub narrowest_band: Option<i32>,
    pub floor_star: Option<u8>,
    pub check: PromiseCheck,
    /// Published although a promise is broken (`--force`).
    pub forced: bool,
}

/// The challenger's figures on the same splits as the champion's.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengerEval {
    pub model_version: String,
    pub kind: String,
    pub train_auc: f64,
    pub auc: f64,
    pub ks: f64,
    pub gini: f64,
    pub brier: f64,
    pub roc: Vec<[f64; 2]>,
    /// Population and bad rate by the challenger's star, test split.
    pub stars: Vec<fastrefund_core::scoring::StarRow>,
    /// The same promises to honest buyers tried on the challenger (buyer models): it
    /// runs in shadow only, so a broken promise does not stop publication, but the
    /// report shows it beside the champion's, and an AUC bought by breaking them is
    /// no reason to replace the champion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promises: Option<PromiseCheck>,
}

impl ChallengerEval {
    /// The challenger's figures: its scores on the training rows, and `te`, its scores
    /// of the test rows with their `labels`.
    pub fn of(
        ch: &Challenger,
        train: &Dataset,
        te: &[i32],
        labels: &[u8],
    ) -> Result<ChallengerEval, TrainError> {
        let tr = crate::challenger::scores(ch, train)?;
        let risk = |s: &[i32]| s.iter().map(|v| -f64::from(*v)).collect::<Vec<_>>();
        let risk_te = risk(te);
        let auc = metrics::auc(&risk_te, labels);
        let p: Vec<f64> = te.iter().map(|s| 1.0 - f64::from(*s) / 1000.0).collect();
        Ok(ChallengerEval {
            model_version: ch.model_version.clone(),
            kind: ch.kind.clone(),
            train_auc: metrics::auc(&risk(&tr), &train.labels),
            auc,
            ks: metrics::ks(&risk_te, labels),
            gini: 2.0 * auc - 1.0,
            brier: metrics::brier(&p, labels),
            roc: metrics::roc_points(&risk_te, labels, 200),
            stars: metrics::star_table(&ch.cutoffs(), te, labels),
            promises: None,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IvRow {
    pub feature: String,
    pub iv: f64,
    pub kept: bool,
}

/// The figures `evaluate --json` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub auc: f64,
    pub ks: f64,
    pub gini: f64,
    pub brier: f64,
    pub rows: u64,
    pub bads: u64,
}

impl From<&SplitMetrics> for Summary {
    fn from(m: &SplitMetrics) -> Summary {
        Summary {
            auc: m.auc,
            ks: m.ks,
            gini: m.gini,
            brier: m.brier,
            rows: m.rows,
            bads: m.bads,
        }
    }
}

/// What one kind of added return did to the sampled buyers.
#[derive(Debug, Clone, Serialize)]
pub struct VariantMoves {
    pub variant: &'static str,
    pub buyers: u64,
    /// Buyers whose score rose.
    pub score_up: u64,
    /// Buyers whose score changed at all.
    pub score_moved: u64,
    /// Buyers by how many stars they lost (index 0: none … 4).
    pub stars_lost: [u64; 5],
    /// Buyers at or above the floor star before who fell below it.
    pub fell_below_floor: u64,
}

/// The honest return's effect by how many orders the buyer placed in the last year.
#[derive(Debug, Clone, Serialize)]
pub struct OrdersBand {
    pub orders_365: String,
    pub buyers: u64,
    /// Share of the band whose star fell (by one: more is a broken promise).
    pub star_down_share: f64,
    /// Mean points the honest return cost the band.
    pub mean_points_lost: f64,
}

/// Everything the check found.
#[derive(Debug, Clone, Serialize)]
pub struct PromiseCheck {
    pub as_of: String,
    pub sampled_buyers: u64,
    pub floor_star: u8,
    pub variants: Vec<VariantMoves>,
    pub honest_by_orders: Vec<OrdersBand>,
    /// Buyers with a bad outcome whose correction to merchant fault was tried, and
    /// how many of them did not rate as if the return had never been.
    pub corrected_tried: u64,
    pub corrected_differs: u64,
    /// Broken promises, in words (empty: all kept).
    pub violations: Vec<String>,
}

impl OrdersBand {
    /// The honest return's effect by band of `orders` (each sampled buyer's orders of
    /// the last 365 days), from each buyer's `(points lost, stars lost)`.
    pub fn bands(orders: &[f64], delta: &[(i32, i32)]) -> Vec<OrdersBand> {
        const BANDS: &[(f64, f64, &str)] = &[
            (0.0, 1.0, "0"),
            (1.0, 3.0, "1–2"),
            (3.0, 10.0, "3–9"),
            (10.0, 30.0, "10–29"),
            (30.0, 100.0, "30–99"),
            (100.0, f64::INFINITY, "100+"),
        ];
        BANDS
            .iter()
            .map(|(lo, hi, name)| {
                let rows: Vec<&(i32, i32)> = orders
                    .iter()
                    .zip(delta)
                    .filter(|(o, _)| *o >= lo && *o < hi)
                    .map(|(_, d)| d)
                    .collect();
                let n = rows.len().max(1) as f64;
                OrdersBand {
                    orders_365: (*name).into(),
                    buyers: rows.len() as u64,
                    star_down_share: rows.iter().filter(|d| d.1 > 0).count() as f64 / n,
                    mean_points_lost: rows.iter().map(|d| f64::from(d.0)).sum::<f64>() / n,
                }
            })
            .collect()
    }
}

/// The adverse-impact ratio below which a group is flagged.
pub const FLAG_BELOW: f64 = 0.8;

/// One group's row of the fairness table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FairnessRow {
    /// `tenure`, `main_category` or `orders_365`.
    pub dimension: String,
    pub group: String,
    pub buyers: u64,
    /// Share of the group at or above `min_star`.
    pub share_at_min_star: f64,
    /// Share of the group that turned bad in the label window.
    pub bad_rate: f64,
    /// `share_at_min_star` over the best group's of the same dimension.
    pub adverse_impact_ratio: f64,
    /// Below [`FLAG_BELOW`] (groups of fewer than 30 buyers are never flagged: too few
    /// to tell).
    pub flagged: bool,
}

/// The fairness table added up buyer by buyer (so no part of a history is kept): per
/// (dimension, group), the buyers, those at or above the star, and the bads.
#[derive(Debug, Clone, Default)]
pub struct FairnessTally {
    // (dimension, place in order, group) -> (buyers, at or above min_star, bads)
    groups: BTreeMap<(&'static str, usize, String), (u64, u64, u64)>,
}

impl FairnessTally {
    /// Adds one buyer of the performance population: account age in days, orders of the
    /// last 365 days, main category ("none" without orders that year), whether their
    /// star is at or above the star looked at, and whether they turned bad.
    pub fn add(
        &mut self,
        account_age_days: f64,
        orders_365: f64,
        main_category: &str,
        at_min_star: bool,
        bad: bool,
    ) {
        let (t, o) = (tenure_band(account_age_days), orders_band(orders_365));
        for key in [
            ("tenure", t.0, t.1.to_string()),
            ("main_category", 0, main_category.to_string()),
            ("orders_365", o.0, o.1.to_string()),
        ] {
            let e = self.groups.entry(key).or_default();
            e.0 += 1;
            e.1 += u64::from(at_min_star);
            e.2 += u64::from(bad);
        }
    }

    /// The table: every group's share at or above the star, bad rate and adverse-impact
    /// ratio against the best-treated group of its dimension.
    pub fn rows(self) -> Vec<FairnessRow> {
        let share = |(n, at, _): (u64, u64, u64)| at as f64 / n.max(1) as f64;
        let mut best: BTreeMap<&str, f64> = BTreeMap::new();
        for ((dim, _, _), v) in &self.groups {
            let b = best.entry(dim).or_insert(0.0);
            *b = b.max(share(*v));
        }
        self.groups
            .into_iter()
            .map(|((dim, _, group), v)| {
                let s = share(v);
                let air = s / best[dim].max(f64::MIN_POSITIVE);
                FairnessRow {
                    dimension: dim.to_string(),
                    group,
                    buyers: v.0,
                    share_at_min_star: s,
                    bad_rate: v.2 as f64 / v.0.max(1) as f64,
                    adverse_impact_ratio: air,
                    flagged: air < FLAG_BELOW && v.0 >= 30,
                }
            })
            .collect()
    }
}

/// The tenure band of an account age in days, with its place in order.
pub fn tenure_band(days: f64) -> (usize, &'static str) {
    match days {
        d if d < 90.0 => (0, "< 3 months"),
        d if d < 365.0 => (1, "3–12 months"),
        d if d < 730.0 => (2, "1–2 years"),
        d if d < 1826.0 => (3, "2–5 years"),
        _ => (4, "5+ years"),
    }
}

/// The band of a number of orders in the last year, with its place in order.
pub fn orders_band(n: f64) -> (usize, &'static str) {
    match n {
        n if n < 1.0 => (0, "0"),
        n if n < 3.0 => (1, "1–2"),
        n if n < 10.0 => (2, "3–9"),
        n if n < 30.0 => (3, "10–29"),
        _ => (4, "30+"),
    }
}
