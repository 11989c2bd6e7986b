//! The rating's promises to honest buyers, tried on a real history (issue 14): the
//! metamorphic half of the checks whose static half is
//! [`fastrefund_core::scoring::safety`].
//!
//! For a seeded sample of buyers with a delivered, unreturned order, one more return of
//! that order is added to their history in turn, of each kind, and every buyer is rated
//! again with the same model and the same category norms (a population statistic, not
//! the buyer's own history):
//!
//! | variant | the return | promise |
//! |---|---|---|
//! | `honest` | no reason, asked a day after delivery, shipped the next day, refund advanced, received intact | never raises the score; costs at most one star; never takes a buyer below the floor star |
//! | `late_and_slow` | no reason, asked 6 days after delivery, shipped 5 days later, intact | never raises the score |
//! | `mismatch` | advanced, arrived empty or swapped | never raises the score |
//! | `not_shipped` | advanced, never shipped | never raises the score |
//! | `claim` | "not received", pending | never raises the score |
//! | `merchant_fault` | the merchant's fault | changes nothing |
//!
//! And for every sampled buyer with a bad outcome, that outcome corrected to the
//! merchant's fault must rate exactly as a history without that return.
//!
//! Features are computed exactly as `rate` computes them, so a feature whose definition
//! breaks its declared [`ReturnEffect`](fastrefund_core::scoring::ReturnEffect) shows
//! here even when the points table looks right.

use crate::features::DAY;
use crate::tables::History;
use fastrefund_core::cols::*;
use fastrefund_core::scoring::Scorecard;
use fastrefund_train::challenger::Challenger;
use fastrefund_train::evaluation::{OrdersBand, PromiseCheck, VariantMoves};
use polars::prelude::*;

struct Added {
    variant: &'static str,
    reason: &'static str,
    /// Days after delivery the return is asked, and after that shipped (None: never).
    ask_days: f64,
    ship_days: Option<f64>,
    advanced: bool,
    outcome: &'static str,
    /// Days after delivery the outcome is known (None: pending).
    outcome_days: Option<f64>,
}

const VARIANTS: &[Added] = &[
    Added {
        variant: "honest",
        reason: "no_reason",
        ask_days: 1.0,
        ship_days: Some(1.0),
        advanced: true,
        outcome: "received_ok",
        outcome_days: Some(5.0),
    },
    Added {
        variant: "late_and_slow",
        reason: "no_reason",
        ask_days: 6.0,
        ship_days: Some(5.0),
        advanced: false,
        outcome: "received_ok",
        outcome_days: Some(14.0),
    },
    Added {
        variant: "mismatch",
        reason: "no_reason",
        ask_days: 2.0,
        ship_days: Some(1.0),
        advanced: true,
        outcome: "received_mismatch",
        outcome_days: Some(6.0),
    },
    Added {
        variant: "not_shipped",
        reason: "no_reason",
        ask_days: 1.0,
        ship_days: None,
        advanced: true,
        outcome: "not_shipped",
        outcome_days: Some(12.0),
    },
    Added {
        variant: "claim",
        reason: "not_received",
        ask_days: 1.0,
        ship_days: None,
        advanced: false,
        outcome: "pending",
        outcome_days: None,
    },
    Added {
        variant: "merchant_fault",
        reason: "quality",
        ask_days: 1.0,
        ship_days: Some(1.0),
        advanced: true,
        outcome: "merchant_fault",
        outcome_days: Some(5.0),
    },
];

/// Buyer ids (sorted) with their score, star and orders of the last 365 days.
type Rated = (Vec<u64>, Vec<i32>, Vec<u8>, Vec<f64>);

/// Orders old enough that every added return settles before `t`.
const SETTLED_DAYS: i64 = 16;

/// The model whose promises are tried: the scorecard, or the challenger that runs in
/// its shadow (on the scorecard's features: the features, not the points, come from
/// the card).
#[derive(Clone, Copy)]
pub enum Judge<'a> {
    Card,
    Challenger(&'a Challenger),
}

/// Runs the check on up to `sample` buyers of `h` (chosen by a seeded hash of their id)
/// as of `t`, with the category `norms` of the whole history, on the scores of `judge`.
#[allow(clippy::too_many_arguments)]
pub fn check(
    h: &History,
    t: i64,
    card: &Scorecard,
    judge: Judge<'_>,
    norms: &DataFrame,
    sample: usize,
    seed: u64,
    floor_star: u8,
) -> PolarsResult<PromiseCheck> {
    // Each buyer's latest delivered, unreturned, not cancelled order old enough.
    let returned = h.returns.column(ORDER_ID)?.as_materialized_series().clone();
    let orders = h
        .orders
        .clone()
        .lazy()
        .filter(
            col(DELIVERED_AT)
                .lt(lit(t - SETTLED_DAYS * DAY))
                .and(col(STATUS).neq(lit("cancelled")))
                .and(
                    col(ORDER_ID)
                        .is_in(lit(returned).implode(false), false)
                        .not(),
                ),
        )
        .sort([ORDERED_AT], SortMultipleOptions::default())
        .group_by([col(BUYER_ID)])
        .agg([
            col(ORDER_ID).last(),
            col(DELIVERED_AT).last(),
            col(AMOUNT).last(),
        ])
        .collect()?;
    let mut picked: Vec<(u64, u64, u64, i64, f64)> = {
        let b = orders.column(BUYER_ID)?.cast(&DataType::UInt64)?;
        let o = orders.column(ORDER_ID)?.cast(&DataType::UInt64)?;
        let d = orders.column(DELIVERED_AT)?.cast(&DataType::Int64)?;
        let a = orders.column(AMOUNT)?.cast(&DataType::Float64)?;
        let (b, o, d, a) = (b.u64()?, o.u64()?, d.i64()?, a.f64()?);
        (0..orders.height())
            .filter_map(|i| {
                let buyer = b.get(i)?;
                Some((
                    crate::sample::sample_key(buyer, seed),
                    buyer,
                    o.get(i)?,
                    d.get(i)?,
                    a.get(i)?,
                ))
            })
            .collect()
    };
    picked.sort_unstable_by_key(|p| (p.0, p.1));
    picked.truncate(sample);
    picked.sort_unstable_by_key(|p| p.1);
    let buyers: Vec<u64> = picked.iter().map(|p| p.1).collect();
    let sub = restrict(h, &buyers)?;
    let rate = |hist: &History| -> PolarsResult<Rated> { score(hist, t, card, judge, norms) };
    let (ids, base, base_star, orders_365) = rate(&sub)?;
    let floor = match judge {
        Judge::Card => card.model().volume_floor_star.unwrap_or(floor_star),
        Judge::Challenger(_) => floor_star,
    };
    let mut next_id = max_u64(&h.returns, RETURN_ID)? + 1;
    let mut variants = Vec::new();
    let mut honest_delta: Vec<(i32, i32)> = Vec::new();
    let mut violations = Vec::new();
    for v in VARIANTS {
        let rows = added_returns(&sub.returns, &picked, v, &mut next_id)?;
        let mut plus = sub.clone();
        plus.returns = sub.returns.vstack(&rows)?;
        let (_, score, star, _) = rate(&plus)?;
        let mut m = VariantMoves {
            variant: v.variant,
            buyers: ids.len() as u64,
            score_up: 0,
            score_moved: 0,
            stars_lost: [0; 5],
            fell_below_floor: 0,
        };
        for i in 0..ids.len() {
            m.score_up += u64::from(score[i] > base[i]);
            m.score_moved += u64::from(score[i] != base[i]);
            let lost = base_star[i].saturating_sub(star[i]).min(4);
            m.stars_lost[usize::from(lost)] += 1;
            m.fell_below_floor += u64::from(base_star[i] >= floor && star[i] < floor);
            if v.variant == "honest" {
                honest_delta.push((base[i] - score[i], i32::from(lost)));
            }
        }
        if m.score_up > 0 {
            violations.push(format!(
                "one more `{}` return raised the score of {} of {} buyers",
                v.variant, m.score_up, m.buyers
            ));
        }
        if v.variant == "honest" {
            let two = m.stars_lost[2..].iter().sum::<u64>();
            if two > 0 {
                violations.push(format!(
                    "one honest return cost {two} buyers two stars or more"
                ));
            }
            if m.fell_below_floor > 0 {
                violations.push(format!(
                    "one honest return took {} buyers below {floor}★",
                    m.fell_below_floor
                ));
            }
        }
        if v.variant == "merchant_fault" && m.score_moved > 0 {
            violations.push(format!(
                "a merchant-fault return moved the score of {} buyers",
                m.score_moved
            ));
        }
        variants.push(m);
    }
    let (corrected_tried, corrected_differs) = corrected(&sub, t, &buyers, &rate)?;
    if corrected_differs > 0 {
        violations.push(format!(
            "{corrected_differs} of {corrected_tried} buyers whose bad outcome was corrected to the merchant's fault did not rate as if the return had never been"
        ));
    }
    Ok(PromiseCheck {
        as_of: chrono::DateTime::from_timestamp_micros(t)
            .map(|d| d.date_naive().to_string())
            .ok_or_else(
                || polars_err!(ComputeError: "the promise check's date ({t} µs) is out of range"),
            )?,
        sampled_buyers: ids.len() as u64,
        floor_star: floor,
        variants,
        honest_by_orders: OrdersBand::bands(&orders_365, &honest_delta),
        corrected_tried,
        corrected_differs,
        violations,
    })
}

fn max_u64(df: &DataFrame, c: &str) -> PolarsResult<u64> {
    Ok(df
        .column(c)?
        .cast(&DataType::UInt64)?
        .u64()?
        .max()
        .unwrap_or(0))
}

/// The part of `h` about `buyers`.
fn restrict(h: &History, buyers: &[u64]) -> PolarsResult<History> {
    let ids = Series::new("ids".into(), buyers);
    let keep = |df: &DataFrame| -> PolarsResult<DataFrame> {
        let ids = ids.cast(df.column(BUYER_ID)?.dtype())?;
        df.clone()
            .lazy()
            .filter(col(BUYER_ID).is_in(lit(ids).implode(false), false))
            .collect()
    };
    Ok(History {
        orders: keep(&h.orders)?,
        returns: keep(&h.returns)?,
        disputes: keep(&h.disputes)?,
        buyers: h.buyers.as_ref().map(keep).transpose()?,
        fingerprint: format!("{}-promises", h.fingerprint),
    })
}

/// One return of kind `v` per picked order, in the schema of `like`.
fn added_returns(
    like: &DataFrame,
    picked: &[(u64, u64, u64, i64, f64)],
    v: &Added,
    next_id: &mut u64,
) -> PolarsResult<DataFrame> {
    let at = |d: i64, days: f64| d + (days * DAY as f64) as i64;
    let n = picked.len();
    let ids: Vec<u64> = (0..n as u64).map(|k| *next_id + k).collect();
    *next_id += n as u64;
    let asked: Vec<i64> = picked.iter().map(|p| at(p.3, v.ask_days)).collect();
    let shipped: Vec<Option<i64>> = asked
        .iter()
        .map(|a| v.ship_days.map(|s| at(*a, s)))
        .collect();
    let outcome_at: Vec<Option<i64>> = picked
        .iter()
        .map(|p| v.outcome_days.map(|o| at(p.3, o)))
        .collect();
    let cols: Vec<Column> = vec![
        Column::new(RETURN_ID.into(), ids),
        Column::new(
            ORDER_ID.into(),
            picked.iter().map(|p| p.2).collect::<Vec<_>>(),
        ),
        Column::new(
            BUYER_ID.into(),
            picked.iter().map(|p| p.1).collect::<Vec<_>>(),
        ),
        Column::new(REQUESTED_AT.into(), asked),
        Column::new(REASON.into(), vec![v.reason; n]),
        Column::new(
            AMOUNT.into(),
            picked.iter().map(|p| p.4).collect::<Vec<_>>(),
        ),
        Column::new(INSTANT.into(), vec![v.advanced; n]),
        Column::new(ADVANCED.into(), vec![v.advanced; n]),
        Column::new(SHIPPED_AT.into(), shipped),
        Column::new(OUTCOME.into(), vec![v.outcome; n]),
        Column::new(OUTCOME_AT.into(), outcome_at),
    ];
    let df = DataFrame::new(n, cols)?;
    let schema = like.schema();
    let exprs: Vec<Expr> = schema
        .iter()
        .map(|(name, dtype)| {
            if df.column(name).is_ok() {
                col(name.clone()).cast(dtype.clone())
            } else {
                lit(NULL).cast(dtype.clone()).alias(name.clone())
            }
        })
        .collect();
    df.lazy().select(exprs).collect()
}

/// Score, star and orders of the last 365 days of every buyer of `h` as of `t`, as `rate`
/// scores them ([`crate::rate::score_part`], [`crate::rate::challenger_scores`]).
fn score(
    h: &History,
    t: i64,
    card: &Scorecard,
    judge: Judge<'_>,
    norms: &DataFrame,
) -> PolarsResult<Rated> {
    let err = |e: crate::rate::RateError| PolarsError::ComputeError(e.to_string().into());
    let s = crate::rate::score_part(h, card, t, norms).map_err(err)?;
    let orders = s
        .features
        .column("orders_365")?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(0.0))
        .collect();
    let (score, star) = match judge {
        Judge::Card => (
            s.scored.iter().map(|x| x.score).collect(),
            s.scored.iter().map(|x| x.star.get()).collect(),
        ),
        Judge::Challenger(ch) => crate::rate::challenger_scores(ch, &s)
            .map_err(err)?
            .into_iter()
            .unzip(),
    };
    Ok((s.buyer_ids, score, star, orders))
}

type Rate<'a> = dyn Fn(&History) -> PolarsResult<Rated> + 'a;

/// For each sampled buyer's first bad outcome known at `t`: corrected to the merchant's
/// fault versus removed. (tried, differing)
fn corrected(h: &History, t: i64, buyers: &[u64], rate: &Rate<'_>) -> PolarsResult<(u64, u64)> {
    let bad = h
        .returns
        .clone()
        .lazy()
        .filter(
            col(OUTCOME)
                .eq(lit("received_mismatch"))
                .or(col(OUTCOME).eq(lit("not_shipped")))
                .and(col(OUTCOME_AT).lt(lit(t))),
        )
        .group_by([col(BUYER_ID)])
        .agg([col(RETURN_ID).min()])
        .collect()?;
    if bad.height() == 0 {
        return Ok((0, 0));
    }
    let ids = bad.column(RETURN_ID)?.as_materialized_series().clone();
    let is_bad = col(RETURN_ID).is_in(lit(ids).implode(false), false);
    let mut fixed = h.clone();
    fixed.returns = h
        .returns
        .clone()
        .lazy()
        .with_column(
            when(is_bad.clone())
                .then(lit("merchant_fault"))
                .otherwise(col(OUTCOME))
                .cast(h.returns.column(OUTCOME)?.dtype().clone())
                .alias(OUTCOME),
        )
        .collect()?;
    let mut gone = h.clone();
    gone.returns = h.returns.clone().lazy().filter(is_bad.not()).collect()?;
    let (ids_a, a, _, _) = rate(&fixed)?;
    let (_, b, _, _) = rate(&gone)?;
    let had: std::collections::HashSet<u64> = bad
        .column(BUYER_ID)?
        .cast(&DataType::UInt64)?
        .u64()?
        .into_no_null_iter()
        .collect();
    let mut tried = 0;
    let mut differs = 0;
    for (i, id) in ids_a.iter().enumerate() {
        if had.contains(id) && buyers.binary_search(id).is_ok() {
            tried += 1;
            differs += u64::from(a[i] != b[i]);
        }
    }
    Ok((tried, differs))
}
