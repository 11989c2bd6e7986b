//! Contested outcomes for a demo (`simulate --contested-out FILE`): cases and their
//! decisions with a known truth, in the decided-cases file's shape
//! ([`fastrefund_batch::cases`]), so that the overturn rates of `train`, `evaluate` and
//! `rate --cases` have data on a synthetic history such as the shipped sample.
//!
//! **The story it tells.** Some merchants report a loss that was theirs: a parcel
//! "received empty" that left sealed. Every return of the history (before `to`) is
//! drawn once, from its own seeded stream (the seed and its `return_id`, so the draws
//! do not depend on the window or the order):
//! - **misreported** ([`MISREPORT_FAULT`] of the returns whose history outcome is
//!   `merchant_fault`, [`MISREPORT_OK`] of those `received_ok`): the merchant records
//!   `received_mismatch` instead, at the same time. The truth is known: the loss was
//!   the merchant's fault (`merchant_at_fault = true`). The history's own losses
//!   (`received_mismatch`, `not_shipped`) were the buyer's (`false`).
//! - The buyers are rated as the ledger recorded them, misreports included: from the
//!   history with the misreported outcomes, with the scenario's model, on the same
//!   schedule as the replay (`from`, then every `rerate_days`). So a buyer a merchant
//!   wronged can fall a star or two, as one would in service.
//! - A recorded loss settled in the window is **contested** by the buyer
//!   ([`CONTEST_WRONG`] when it was the merchant's fault, [`CONTEST_TRUE`] when it was
//!   theirs: some try their luck), within 30 days of the outcome (at once on their
//!   page, or when the next rating lowers their star); the case is an `outcome` case
//!   opened at that time, with the star and first reason code of the rating in force
//!   then.
//! - A reviewer decides it within the 72 hours of an outcome case, on evidence that is
//!   not perfect ([`REVIEW_WRONG`], [`REVIEW_TRUE`]). Cases not decided before `to` are
//!   left out (still open).
//!
//! What it leaves out: a decision won by the buyer corrects the outcome in service and
//! so in later ratings; here later ratings still see the misreport (as a data team that
//! has not yet re-rated with `export-outcomes` would). Every probability is a named
//! constant below; none is fitted to anything.

use crate::SimulateError;
use chrono::{DateTime, Duration, Utc};
use fastrefund_batch::cases::CaseRow;
use fastrefund_batch::features::date_micros;
use fastrefund_batch::history_returns::returns_in_window;
use fastrefund_batch::rate::score_history;
use fastrefund_batch::tables::History;
use fastrefund_core::cases::{CASE_DISPUTE_ID_BASE, DisputeRow};
use fastrefund_core::cols::{OUTCOME, RETURN_ID};
use fastrefund_core::domain::{BuyerId, OrderId, Outcome, Star};
use fastrefund_core::scoring::Scorecard;
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Share of `merchant_fault` returns the merchant records as `received_mismatch`.
pub const MISREPORT_FAULT: f64 = 0.25;
/// Share of `received_ok` returns the merchant records as `received_mismatch`.
pub const MISREPORT_OK: f64 = 0.005;
/// Share of misreported losses the buyer contests.
pub const CONTEST_WRONG: f64 = 0.9;
/// Share of the buyer's own losses the buyer contests all the same.
pub const CONTEST_TRUE: f64 = 0.25;
/// A misreported loss: the reviewer's (buyer_won, split) shares; the rest merchant_won.
pub const REVIEW_WRONG: (f64, f64) = (0.8, 0.1);
/// The buyer's own loss: the reviewer's (buyer_won, split) shares; the rest merchant_won.
pub const REVIEW_TRUE: (f64, f64) = (0.07, 0.08);
/// A buyer contests within this many days of the outcome.
pub const CONTEST_WITHIN_DAYS: i64 = 30;

/// What the draw made, beside the cases.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContestedSummary {
    pub seed: u64,
    /// Returns the merchant misreported as `received_mismatch` (before `to`).
    pub misreported: u64,
    /// Recorded losses settled in the window (the history's and the misreported).
    pub recorded_losses: u64,
    /// Cases opened in the window, and those decided before `to` (the file's rows).
    pub contested: u64,
    pub decided: u64,
    /// Decided cases whose loss was really the merchant's fault.
    pub merchant_at_fault: u64,
    /// Decided cases overturned (buyer won or split).
    pub overturned: u64,
    /// Of the overturned, those where the loss was really the merchant's fault.
    pub overturned_merchant_at_fault: u64,
}

/// The contested outcomes and what the draw made.
#[derive(Debug, Clone)]
pub struct Contested {
    pub rows: Vec<CaseRow>,
    pub summary: ContestedSummary,
}

/// One rating of the schedule: buyer → (star, first reason code).
type Rated = HashMap<u64, (Star, Option<String>)>;

fn stream(seed: u64, return_id: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ return_id.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn instant(return_id: u64, what: &str, us: i64) -> Result<DateTime<Utc>, SimulateError> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| {
        SimulateError::Invalid(format!(
            "return {return_id}: {what} ({us} µs since the epoch) is out of range"
        ))
    })
}

/// `h` as the merchants recorded it: the returns in `misreported` get
/// `received_mismatch`.
fn as_recorded(h: &History, misreported: &HashSet<u64>) -> Result<History, SimulateError> {
    let ids = h.returns.column(RETURN_ID)?.u64()?.clone();
    let outcomes = h.returns.column(OUTCOME)?.str()?.clone();
    let recorded: Vec<Option<&str>> = ids
        .iter()
        .zip(outcomes.iter())
        .map(|(id, o)| match id {
            Some(id) if misreported.contains(&id) => Some(Outcome::ReceivedMismatch.as_str()),
            _ => o,
        })
        .collect();
    let mut returns = h.returns.clone();
    returns.with_column(Column::new(OUTCOME.into(), recorded))?;
    Ok(History {
        returns,
        fingerprint: format!("{}-misreported-{}", h.fingerprint, misreported.len()),
        ..h.clone()
    })
}

/// Draws the contested outcomes of `[from, to)` (µs), rating buyers with `card` at
/// `from` and every `rerate_us` after, from the history as recorded.
pub fn contested(
    h: &History,
    card: &Scorecard,
    (from, to): (i64, i64),
    rerate_us: i64,
    seed: u64,
) -> Result<Contested, SimulateError> {
    if rerate_us <= 0 || to <= from {
        return Err(SimulateError::Invalid(format!(
            "contested outcomes need a window (from {from} µs to {to} µs) and a re-rating interval > 0"
        )));
    }
    let returns = returns_in_window(h, i64::MIN, to)?;
    let mut summary = ContestedSummary {
        seed,
        ..Default::default()
    };
    // Misreports, over the whole history before `to`.
    let mut misreported = HashSet::new();
    for r in &returns {
        let p = match r.outcome {
            Some((Outcome::MerchantFault, _)) => MISREPORT_FAULT,
            Some((Outcome::ReceivedOk, _)) => MISREPORT_OK,
            _ => continue,
        };
        if stream(seed, r.return_id).random::<f64>() < p {
            misreported.insert(r.return_id);
        }
    }
    summary.misreported = misreported.len() as u64;
    let recorded = as_recorded(h, &misreported)?;
    // The rating schedule, on the history as recorded.
    let mut schedule: Vec<Rated> = Vec::new();
    let mut t = from;
    while t < to {
        let s = score_history(&recorded, card, t)?;
        schedule.push(
            s.buyer_ids
                .iter()
                .zip(&s.scored)
                .map(|(id, x)| (*id, (x.star, x.reasons[0].map(|r| r.code(card)))))
                .collect(),
        );
        t += rerate_us;
    }
    let mut rows = Vec::new();
    for r in &returns {
        let wronged = misreported.contains(&r.return_id);
        let at = match r.outcome {
            Some((_, at)) if wronged => at,
            Some((o, at)) if o.is_buyer_loss() => at,
            _ => continue,
        };
        if !(from..to).contains(&at) {
            continue;
        }
        summary.recorded_losses += 1;
        // The return's stream, past the misreport's draw (always drawn first).
        let mut rng = stream(seed, r.return_id);
        let _ = rng.random::<f64>();
        let p = if wronged { CONTEST_WRONG } else { CONTEST_TRUE };
        if rng.random::<f64>() >= p {
            continue;
        }
        let opened = at + rng.random_range(0..CONTEST_WITHIN_DAYS * 86_400_000_000);
        if opened >= to {
            continue;
        }
        summary.contested += 1;
        let decided = opened + rng.random_range(2 * 3_600_000_000..72 * 3_600_000_000_i64);
        let (won, split) = if wronged { REVIEW_WRONG } else { REVIEW_TRUE };
        let x = rng.random::<f64>();
        let decision = if x < won {
            "buyer_won"
        } else if x < won + split {
            "split"
        } else {
            "merchant_won"
        };
        if decided >= to {
            continue;
        }
        let k = usize::try_from((opened - from) / rerate_us)
            .unwrap_or(0)
            .min(schedule.len() - 1);
        let (star, reason) = match schedule[k].get(&r.buyer_id) {
            Some((s, reason)) => (Some(*s), reason.clone()),
            None => (None, None),
        };
        summary.decided += 1;
        summary.merchant_at_fault += u64::from(wronged);
        if decision != "merchant_won" {
            summary.overturned += 1;
            summary.overturned_merchant_at_fault += u64::from(wronged);
        }
        rows.push(CaseRow {
            dispute: DisputeRow {
                dispute_id: CASE_DISPUTE_ID_BASE + r.return_id,
                order_id: OrderId(r.order_id),
                buyer_id: BuyerId(r.buyer_id),
                opened_at: instant(r.return_id, "the case's opening", opened)?,
                decided_at: Some(instant(r.return_id, "the case's decision", decided)?),
                decision,
                fraud_flag: false,
            },
            case_kind: "outcome",
            return_id: Some(r.return_id),
            star_at_open: star,
            reason_code: reason,
            merchant_at_fault: Some(wronged),
        });
    }
    rows.sort_by_key(|c| (c.dispute.opened_at, c.dispute.dispute_id));
    Ok(Contested { rows, summary })
}

/// [`contested`] over the window and schedule of a simulation's options.
pub fn contested_for(
    h: &History,
    card: &Scorecard,
    opts: &crate::SimulateOptions,
    to: chrono::NaiveDate,
    seed: u64,
) -> Result<Contested, SimulateError> {
    opts.check()?;
    contested(
        h,
        card,
        (date_micros(opts.from), date_micros(to)),
        Duration::days(i64::from(opts.rerate_days))
            .num_microseconds()
            .unwrap_or(i64::MAX),
        seed,
    )
}
