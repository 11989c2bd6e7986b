//! Who the rating treats well, by group (issue 14): the batch half, which reads each
//! buyer of the test population's features, star, label and main category from a
//! history and adds them to a [`FairnessTally`]; the table and its reading (the
//! adverse-impact ratio, the four-fifths flag) are plain data in
//! [`fastrefund_train::evaluation`].
//!
//! A buyer's main category is the one they ordered most often in the 365 days before
//! the as-of date (ties: the first by name); "none" without orders in that year.

use crate::error::WorkflowError;
use crate::features::{DAY, labelled_with_norms, performance_rows};
use crate::shards::Source;
use fastrefund_core::cols::*;
use fastrefund_core::scoring::Scorecard;
use fastrefund_train::evaluation::{FairnessRow, FairnessTally};
use polars::prelude::*;

/// The fairness table of `card` on the performance population of `src` as of `t`.
pub fn fairness(
    src: &Source<'_>,
    t: i64,
    card: &Scorecard,
    min_star: u8,
) -> Result<Vec<FairnessRow>, WorkflowError> {
    let norms = src.norms_for(t, card)?;
    let mut tally = FairnessTally::default();
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
            tally.add(
                age[i],
                orders[i],
                cats.get(i).unwrap_or("none"),
                star >= min_star,
                label[i] > 0.5,
            );
        }
    }
    Ok(tally.rows())
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
