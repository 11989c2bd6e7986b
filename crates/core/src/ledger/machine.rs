//! The ledger's rules for a decided return, as pure functions: given what the store
//! read for a command, what the command does. Every store (the SQLite ledger, the
//! in-memory one `simulate` runs on) applies the same steps; a store only reads,
//! writes and keeps the [`super::Book`] in step.

use crate::domain::{Decision, Money, Outcome, ReasonCode, ReturnRequest, Star};
use crate::policy::{self, LedgerView, Policy};
use chrono::{DateTime, Utc};

/// An advance the ledger made on a return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance {
    pub amount: Money,
    pub tracking_number: String,
}

/// A decided return as commands on it need it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnRec {
    pub buyer: u64,
    pub order: u64,
    pub amount: Money,
    /// The return got instant address release (only such returns are advanced).
    pub instant: bool,
    /// The star it was decided with.
    pub star: Star,
    pub advance: Option<Advance>,
    /// The outcome and its time (microseconds since the epoch).
    pub outcome: Option<(Outcome, i64)>,
}

/// Why the ledger refuses a command on a return: the caller's mistake or a conflict
/// with what is recorded, never a fault of the store.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("return {0} was never decided")]
    UnknownReturn(u64),
    #[error("return {0} was not advanced, so it has no outcome to settle")]
    NotAdvanced(u64),
    #[error(
        "return {return_id} already has outcome {existing}; a different outcome ({given}) is refused"
    )]
    OutcomeConflict {
        return_id: u64,
        existing: Outcome,
        given: Outcome,
    },
    #[error(
        "return {return_id} was advanced on another tracking number; one return has one parcel"
    )]
    TrackingConflict { return_id: u64 },
    #[error(
        "return {return_id} was settled as {outcome} at another time; a different `at` is refused"
    )]
    OutcomeAtConflict { return_id: u64, outcome: Outcome },
    #[error("`pending` is not an outcome that settles a return")]
    PendingOutcome,
    #[error(
        "return {return_id} was decided for another request (its `{field}` differs); a return_id is the key of one request only"
    )]
    ReturnIdReused { return_id: u64, field: &'static str },
}

/// What the challenger would have decided for the same request in the same state of
/// the ledger, as a store records it beside the decision (JSON), and whether it agrees
/// with `decision` on what matters for money (instant release and the advance).
pub fn shadow_record(
    req: &ReturnRequest,
    shadow_star: Option<Star>,
    view: &LedgerView,
    policy: &Policy,
    now: DateTime<Utc>,
    decision: &Decision,
) -> (String, bool) {
    let d = policy::decide(req, shadow_star, view, policy, now);
    let agrees = d.instant_address_release == decision.instant_address_release
        && d.advanced_refund == decision.advanced_refund;
    let json = serde_json::json!({
        "star": d.star.get(),
        "instant_address_release": d.instant_address_release,
        "courier_pickup": d.courier_pickup,
        "advanced_refund": d.advanced_refund,
        "reasons": d.reasons.iter().map(|r| r.code()).collect::<Vec<_>>(),
    })
    .to_string();
    (json, agrees)
}

/// What a tracking number does to a decided return.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackStep {
    /// The return was advanced on this tracking number before: answer the same, move
    /// nothing.
    Repeat { amount: Money },
    /// Advance `amount` now; `flags` are reasons that did not refuse it.
    Advance {
        amount: Money,
        flags: Vec<ReasonCode>,
    },
    /// No advance, for these reasons (recorded; a later tracking call may advance).
    Refuse { reasons: Vec<ReasonCode> },
}

/// The tracking number `tracking` for the decided return `rid` (`rec`: its record; a
/// store refuses a return never decided, [`Refusal::UnknownReturn`], before asking).
/// `star_now` is the buyer's current star (`None`: the rating does not know them, so
/// the star the return was decided with counts). `view` is asked for only when the
/// answer hinges on the ledger (a return released instantly and not yet advanced):
/// reading it may cost the store an index look-up.
pub fn track_step<E: From<Refusal>>(
    rid: u64,
    rec: &ReturnRec,
    tracking: &str,
    star_now: Option<Star>,
    policy: &Policy,
    view: impl FnOnce(&ReturnRec) -> Result<LedgerView, E>,
) -> Result<TrackStep, E> {
    if let Some(a) = &rec.advance {
        if a.tracking_number != tracking {
            return Err(Refusal::TrackingConflict { return_id: rid }.into());
        }
        return Ok(TrackStep::Repeat { amount: a.amount });
    }
    if !rec.instant {
        return Ok(TrackStep::Refuse {
            reasons: vec![ReasonCode::NotInstant],
        });
    }
    let view = view(rec)?;
    let star = star_now.unwrap_or(rec.star);
    let mut reasons = Vec::new();
    // A loss since the rating holds further advances, as it holds instant release.
    if view.loss_since_rating && policy.hold_after_loss {
        reasons.push(ReasonCode::LossSinceRating);
    }
    reasons.extend(policy::advance_refusals(star, rec.amount, &view, policy));
    if view.order_already_refunded {
        reasons.push(ReasonCode::AlreadyRefunded);
    }
    Ok(if reasons.is_empty() {
        TrackStep::Advance {
            amount: rec.amount,
            flags: policy::advance_flags(&view, policy),
        }
    } else {
        TrackStep::Refuse { reasons }
    })
}

/// The recorded answer to a tracking call that repeats one, deciding nothing: the
/// advance's amount when `rec` was advanced on `tracking`, `None` when it was not
/// advanced (a store then has nothing recorded to answer with), and a refusal when it
/// was advanced on another parcel.
pub fn replay_track(rid: u64, rec: &ReturnRec, tracking: &str) -> Result<Option<Money>, Refusal> {
    match &rec.advance {
        Some(a) if a.tracking_number == tracking => Ok(Some(a.amount)),
        Some(_) => Err(Refusal::TrackingConflict { return_id: rid }),
        None => Ok(None),
    }
}

/// What an outcome does to an advanced return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleStep {
    /// The same outcome at the same time was recorded before: answer the same.
    Repeat { amount: Money, loss: bool },
    /// Settle the advance of `amount`; `loss`: the buyer lost it.
    Settle { amount: Money, loss: bool },
}

/// The outcome `outcome` at `at` for return `rid` (`rec`: its record, if decided).
pub fn settle_step(
    rid: u64,
    rec: Option<&ReturnRec>,
    outcome: Outcome,
    at: DateTime<Utc>,
) -> Result<SettleStep, Refusal> {
    if outcome == Outcome::Pending {
        return Err(Refusal::PendingOutcome);
    }
    let rec = rec.ok_or(Refusal::UnknownReturn(rid))?;
    let amount = rec
        .advance
        .as_ref()
        .ok_or(Refusal::NotAdvanced(rid))?
        .amount;
    let loss = outcome.is_buyer_loss();
    match rec.outcome {
        Some((existing, _)) if existing != outcome => Err(Refusal::OutcomeConflict {
            return_id: rid,
            existing,
            given: outcome,
        }),
        Some((_, recorded_at)) if recorded_at != at.timestamp_micros() => {
            Err(Refusal::OutcomeAtConflict {
                return_id: rid,
                outcome,
            })
        }
        Some(_) => Ok(SettleStep::Repeat { amount, loss }),
        None => Ok(SettleStep::Settle { amount, loss }),
    }
}
