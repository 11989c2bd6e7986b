//! A history's returns in a window of time, each joined with its order, as
//! [`HistoryReturn`]s: what the replay client (`fastrefund-replay`) sends to a running
//! service and what `simulate` replays through the policy.
//!
//! A history is checked when it is loaded ([`crate::tables`]), so every value read here
//! is there and valid; should one not be (a table built in code), the row is refused
//! naming the return and the column, never read as 0, an empty text or "pending".

use crate::tables::History;
use fastrefund_core::cols::*;
use fastrefund_core::domain::{HistoryReturn, Outcome};
use polars::prelude::*;

/// Why a history's returns could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReturnsError {
    #[error("reading the history's returns: {0}")]
    Polars(#[from] PolarsError),
    #[error("return {return_id}: column `{column}` {problem}")]
    Bad {
        return_id: u64,
        column: &'static str,
        problem: String,
    },
}

/// The returns asked in `[from, to)` (µs), oldest first, with their order's details.
pub fn returns_in_window(
    h: &History,
    from: i64,
    to: i64,
) -> Result<Vec<HistoryReturn>, ReturnsError> {
    let df = h
        .returns
        .clone()
        .lazy()
        .filter(
            col(REQUESTED_AT)
                .gt_eq(lit(from))
                .and(col(REQUESTED_AT).lt(lit(to))),
        )
        .join(
            h.orders.clone().lazy().select([
                col(ORDER_ID),
                col(MERCHANT_ID),
                col(CATEGORY),
                col(DELIVERED_AT),
            ]),
            [col(ORDER_ID)],
            [col(ORDER_ID)],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col(DELIVERED_AT).is_not_null())
        .sort([REQUESTED_AT], SortMultipleOptions::default())
        .collect()?;
    let rid: Vec<Option<u64>> = df.column(RETURN_ID)?.u64()?.iter().collect();
    // The return a row is about, for messages (a row without an id is named by its
    // place in the window).
    let id = |i: usize| rid[i].unwrap_or(i as u64);
    let missing = |i: usize, column: &'static str| ReturnsError::Bad {
        return_id: id(i),
        column,
        problem: "is missing".into(),
    };
    let u = |c: &'static str| -> Result<Vec<Option<u64>>, ReturnsError> {
        Ok(df.column(c)?.u64()?.iter().collect())
    };
    let t = |c: &'static str| -> Result<Vec<Option<i64>>, ReturnsError> {
        Ok(df.column(c)?.i64()?.iter().collect())
    };
    let s = |c: &'static str| -> Result<Vec<Option<String>>, ReturnsError> {
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .map(|v| v.map(str::to_string))
            .collect())
    };
    let (oid, bid, mid) = (u(ORDER_ID)?, u(BUYER_ID)?, u(MERCHANT_ID)?);
    let (cat, reason, outcome) = (s(CATEGORY)?, s(REASON)?, s(OUTCOME)?);
    let (delivered, requested, shipped, outcome_at) = (
        t(DELIVERED_AT)?,
        t(REQUESTED_AT)?,
        t(SHIPPED_AT)?,
        t(OUTCOME_AT)?,
    );
    let amount: Vec<Option<f64>> = df.column(AMOUNT)?.f64()?.iter().collect();
    let advanced: Vec<Option<bool>> = df.column(ADVANCED)?.bool()?.iter().collect();
    (0..df.height())
        .map(|i| {
            let need = |v: Option<u64>, c| v.ok_or_else(|| missing(i, c));
            let amount = amount[i].ok_or_else(|| missing(i, AMOUNT))?;
            let cents = amount * 100.0;
            if !(cents.is_finite() && cents >= 0.0 && cents < u64::MAX as f64) {
                return Err(ReturnsError::Bad {
                    return_id: id(i),
                    column: AMOUNT,
                    problem: format!("is {amount}, not an amount of money"),
                });
            }
            let outcome = match outcome[i].as_deref() {
                None => return Err(missing(i, OUTCOME)),
                Some(o) => o.parse::<Outcome>().map_err(|e| ReturnsError::Bad {
                    return_id: id(i),
                    column: OUTCOME,
                    problem: e.to_string(),
                })?,
            };
            let advanced = advanced[i].ok_or_else(|| missing(i, ADVANCED))?;
            Ok(HistoryReturn {
                return_id: need(rid[i], RETURN_ID)?,
                order_id: need(oid[i], ORDER_ID)?,
                buyer_id: need(bid[i], BUYER_ID)?,
                merchant_id: need(mid[i], MERCHANT_ID)?,
                category: cat[i].clone().ok_or_else(|| missing(i, CATEGORY))?,
                amount_cents: cents.round() as u64,
                reason: reason[i].clone().ok_or_else(|| missing(i, REASON))?,
                delivered_at: delivered[i].ok_or_else(|| missing(i, DELIVERED_AT))?,
                requested_at: requested[i].ok_or_else(|| missing(i, REQUESTED_AT))?,
                tracking: advanced || shipped[i].is_some(),
                advanced,
                shipped_at: shipped[i],
                // A settled outcome without its time is pending as far as a replay can
                // tell (the history has not said when it was known).
                outcome: Some(outcome)
                    .filter(|o| *o != Outcome::Pending)
                    .zip(outcome_at[i]),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::tests::write_history;
    use crate::tables::load_history;

    fn history() -> History {
        let dir = tempfile::tempdir().unwrap();
        write_history(dir.path(), ["", "", "", ""]);
        load_history(dir.path()).unwrap()
    }

    #[test]
    fn a_checked_history_gives_its_returns_in_time_order_with_cents() {
        let r = returns_in_window(&history(), i64::MIN, i64::MAX).unwrap();
        let ids: Vec<u64> = r.iter().map(|x| x.return_id).collect();
        assert_eq!(ids, [3, 2, 1, 6]);
        let first = &r[0];
        assert_eq!((first.amount_cents, first.merchant_id), (20_000, 10));
        assert_eq!(first.outcome.map(|o| o.0), Some(Outcome::MerchantFault));
    }

    /// An amount that is not money (a table built in code) refuses the window, naming
    /// the return and the column: it is never sent or replayed as 0.
    #[test]
    fn an_amount_that_is_not_money_is_refused_naming_the_return() {
        for bad in [f64::NAN, -1.0] {
            let mut h = history();
            let amounts: Vec<f64> = h
                .returns
                .column(AMOUNT)
                .unwrap()
                .f64()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, v)| if i == 0 { bad } else { v.unwrap() })
                .collect();
            h.returns
                .with_column(Column::new(AMOUNT.into(), amounts))
                .unwrap();
            let e = returns_in_window(&h, i64::MIN, i64::MAX)
                .unwrap_err()
                .to_string();
            assert!(e.contains("return 1: column `amount`"), "{e}");
        }
    }
}
