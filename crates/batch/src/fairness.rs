//! Who the rating treats well, by group (issue 14): for the buyers of the test
//! population, grouped by account tenure, main category and number of orders, the
//! share at or above the instant-release star, the bad rate, and the adverse-impact
//! ratio: a group's share at ≥ 3★ over that of the best-treated group of the same
//! dimension. Below 0.8 (the "four-fifths rule" of US employment practice, the usual
//! screen in credit fairness reviews too) the group is flagged for a person to look at:
//! a flag is a question, not a verdict, since groups can differ in risk.
//!
//! A buyer's main category is the one they ordered most often in the 365 days before
//! the as-of date (ties: the first by name); "none" without orders in that year.

use crate::features::{DAY, labelled_with_norms, performance_rows};
use crate::shards::Source;
use crate::training::WorkflowError;
use fastrefund_core::cols::*;
use fastrefund_core::scoring::Scorecard;
use polars::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// The fairness table of `card` on the performance population of `src` as of `t`.
pub fn fairness(
    src: &Source<'_>,
    t: i64,
    card: &Scorecard,
    min_star: u8,
) -> Result<Vec<FairnessRow>, WorkflowError> {
    let norms = src.norms_for(t, card)?;
    // (dimension, group) -> (buyers, at or above min_star, bads)
    let mut tally: BTreeMap<(&'static str, usize, String), (u64, u64, u64)> = BTreeMap::new();
    for k in 0..src.parts() {
        let part = src.part(k)?;
        let df = performance_rows(&labelled_with_norms(&part, t, norms.clone().lazy())?)?;
        let df = df
            .lazy()
            .join(
                main_category(&part.orders, t),
                [col(BUYER_ID)],
                [col(BUYER_ID)],
                JoinArgs::new(JoinType::Left),
            )
            .collect()?;
        let f64s = |name: &str| -> Result<Vec<f64>, WorkflowError> {
            Ok(df
                .column(name)?
                .cast(&DataType::Float64)?
                .f64()?
                .iter()
                .map(|v| v.unwrap_or(f64::NAN))
                .collect())
        };
        let cols = crate::rate::model_inputs(card, &df)
            .map_err(|e| WorkflowError::Invalid(e.to_string()))?;
        let (age, orders, label) = (f64s("account_age_days")?, f64s("orders_365")?, f64s(LABEL)?);
        let cats = df.column(MAIN_CATEGORY)?.str()?.clone();
        let mut row = vec![0.0; cols.len()];
        for i in 0..df.height() {
            for (j, c) in cols.iter().enumerate() {
                row[j] = c[i];
            }
            let star = card
                .score_numeric(&row)
                .map_err(|e| WorkflowError::Invalid(e.to_string()))?
                .star
                .get();
            let at = u64::from(star >= min_star);
            let bad = u64::from(label[i] > 0.5);
            let (t, o) = (tenure_band(age[i]), orders_band(orders[i]));
            for key in [
                ("tenure", t.0, t.1.to_string()),
                (
                    "main_category",
                    0,
                    cats.get(i).unwrap_or("none").to_string(),
                ),
                ("orders_365", o.0, o.1.to_string()),
            ] {
                let e = tally.entry(key).or_default();
                e.0 += 1;
                e.1 += at;
                e.2 += bad;
            }
        }
    }
    let share = |(n, at, _): (u64, u64, u64)| at as f64 / n.max(1) as f64;
    let mut best: BTreeMap<&str, f64> = BTreeMap::new();
    for ((dim, _, _), v) in &tally {
        let b = best.entry(dim).or_insert(0.0);
        *b = b.max(share(*v));
    }
    Ok(tally
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
        .collect())
}

const MAIN_CATEGORY: &str = "__main_category";

/// Each buyer's most ordered category in the 365 days before `t`.
fn main_category(orders: &DataFrame, t: i64) -> LazyFrame {
    orders
        .clone()
        .lazy()
        .filter(
            col(ORDERED_AT)
                .lt(lit(t))
                .and(col(ORDERED_AT).gt_eq(lit(t - 365 * DAY)))
                .and(col(STATUS).neq(lit("cancelled"))),
        )
        .group_by([col(BUYER_ID), col(CATEGORY)])
        .agg([len().alias("__n")])
        .group_by([col(BUYER_ID)])
        .agg([col(CATEGORY)
            .cast(DataType::String)
            .sort_by(
                [col("__n"), col(CATEGORY).cast(DataType::String)],
                SortMultipleOptions::default().with_order_descending_multi([true, false]),
            )
            .first()
            .alias(MAIN_CATEGORY)])
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
