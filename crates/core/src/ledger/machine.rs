//! A return's money lifecycle, as one state machine of pure functions. Every store (the
//! SQLite ledger, the PostgreSQL one, the in-memory one `simulate` runs on) reads a
//! return's [`ReturnRec`] and what the rules need to see ([`LedgerView`]), calls one
//! step here, and writes what it decided: the next [`ReturnState`] follows from the
//! [`Effect`]s, which the store turns into rows and the [`super::Book`] into money
//! ([`super::Book::apply`]). No store holds a rule of its own.
//!
//! ```text
//!                  decide (no instant release)
//!   (new) ──────────────────────────────────────▶ Held ── ReleaseByReviewer ──┐
//!     │  decide (instant release)                                              ▼
//!     ├──────────────────────────────────────────────────────────────────▶ Released
//!     │  decide (instant release + tracking number + room)                     │ Track (room)
//!     └──────────────────────────────────────────────────────────────▶ Advanced ◀┘
//!                                                                          │ Settle
//!                                                                          ▼
//!                                                  Settled ── CorrectOutcome (a case) ──▶ Settled{corrected}
//!
//!   Held or Released, with a refund-without-return offer ── Keep (caps allow) ──▶ Kept
//! ```
//!
//! **Kept** (仅退款): the refund service took the decision's refund-without-return
//! offer; the buyer keeps the goods and is refunded at once, settled with the outcome
//! `refunded_without_return`. A kept return takes no tracking number and no outcome; an
//! advanced one (its parcel on its way) can no longer be kept.
//!
//! Every other pair of state and command is a typed [`Refusal`], or a repeat that
//! answers what is recorded and moves nothing (a retry is never a second move).

use crate::domain::{
    BuyerId, Decision, MerchantId, Money, OrderId, Outcome, ReasonCode, ReturnId, ReturnRequest,
    Star,
};
use crate::policy::{self, LedgerView, Policy};
use chrono::{DateTime, Utc};

use super::book::InvariantBroken;

/// An advance the ledger made on a return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advance {
    pub amount: Money,
    pub tracking_number: String,
}

/// Where a decided return is in its money lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnState {
    /// Decided without instant address release: the parcel goes back the ordinary way
    /// and is never advanced (unless a reviewer releases it).
    Held,
    /// The return address was released at once (by the rules, or by a reviewer on a
    /// decision case); nothing is advanced yet: a tracking number may advance it.
    Released,
    /// Advanced on its parcel; the outcome is not back yet.
    Advanced(Advance),
    /// The outcome came back (microseconds since the epoch). `corrected`: what a
    /// reviewer corrected it to on an outcome case; the refund service's outcome stays
    /// the record it is checked against.
    Settled {
        advance: Advance,
        outcome: Outcome,
        at: i64,
        corrected: Option<Outcome>,
    },
    /// Refunded without return at `at` (microseconds since the epoch): settled, the
    /// goods stay with the buyer.
    Kept { amount: Money, at: i64 },
}

impl ReturnState {
    /// The state as a store's rows hold it: whether the address was released (by the
    /// rules or a reviewer), the advance, the outcome and its correction. Rows that no
    /// state fits (an outcome without an advance, a correction without an outcome)
    /// are an [`InvariantBroken`], never guessed at.
    pub fn from_rows(
        kept: Option<(Money, i64)>,
        released: bool,
        advance: Option<Advance>,
        outcome: Option<(Outcome, i64)>,
        corrected: Option<Outcome>,
    ) -> Result<ReturnState, InvariantBroken> {
        if let Some((amount, at)) = kept {
            if advance.is_some() || outcome.is_some() || corrected.is_some() {
                return Err(InvariantBroken(format!(
                    "a return refunded without return also has rows of an advance ({}) or an outcome ({outcome:?})",
                    advance.is_some()
                )));
            }
            return Ok(ReturnState::Kept { amount, at });
        }
        Ok(match (released, advance, outcome, corrected) {
            (false, None, None, None) => ReturnState::Held,
            (true, None, None, None) => ReturnState::Released,
            (true, Some(a), None, None) => ReturnState::Advanced(a),
            (true, Some(advance), Some((outcome, at)), corrected) => ReturnState::Settled {
                advance,
                outcome,
                at,
                corrected,
            },
            (released, advance, outcome, corrected) => {
                return Err(InvariantBroken(format!(
                    "a return's rows fit no state: released {released}, advanced {}, outcome {outcome:?}, corrected {corrected:?}",
                    advance.is_some()
                )));
            }
        })
    }

    /// The advance, once there is one.
    pub fn advance(&self) -> Option<&Advance> {
        match self {
            ReturnState::Advanced(a) | ReturnState::Settled { advance: a, .. } => Some(a),
            ReturnState::Held | ReturnState::Released | ReturnState::Kept { .. } => None,
        }
    }

    /// The outcome as it now stands (corrected, if a case corrected it) and its time.
    pub fn outcome(&self) -> Option<(Outcome, i64)> {
        match self {
            ReturnState::Settled {
                outcome,
                at,
                corrected,
                ..
            } => Some((corrected.unwrap_or(*outcome), *at)),
            ReturnState::Kept { at, .. } => Some((Outcome::RefundedWithoutReturn, *at)),
            _ => None,
        }
    }
}

/// A decided return as commands on it need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnRec {
    pub buyer: BuyerId,
    pub order: OrderId,
    /// The merchant whose order it is (its rules narrow the advance).
    pub merchant: MerchantId,
    pub amount: Money,
    /// When the buyer asked for the return: no parcel moves and no outcome comes back
    /// before it.
    pub requested_at: DateTime<Utc>,
    /// The star it was decided with.
    pub star: Star,
    /// The decision offered a refund without return.
    pub refund_only_offered: bool,
    pub state: ReturnState,
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
    #[error("return {0} has no settled outcome to correct")]
    NotSettled(u64),
    #[error(
        "`{field}` is before return {return_id} was requested: no parcel moves and no outcome comes back before the return exists"
    )]
    BeforeRequest { return_id: u64, field: &'static str },
    #[error("return {return_id}'s outcome was already corrected to {existing}")]
    CorrectionConflict { return_id: u64, existing: Outcome },
    #[error("return {0} was decided without an offer of a refund without return")]
    NoRefundWithoutReturnOffer(u64),
    #[error(
        "return {0}'s parcel is already on its way (an advance or a tracking number); its refund follows the parcel"
    )]
    ParcelOnItsWay(u64),
    #[error("return {return_id} can no longer be refunded without return: {}", reasons.iter().map(|r| r.message()).collect::<Vec<_>>().join("; "))]
    RefundOnlyCaps {
        return_id: u64,
        reasons: Vec<ReasonCode>,
    },
    #[error("return {0} was refunded without return: the refund is paid, no parcel follows")]
    RefundedWithoutReturn(u64),
}

/// What a move writes and does to the money. A store writes each effect's row in the
/// move's transaction and hands the money effects to [`super::Book::apply`].
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Advance `amount` to `buyer` on `tracking`, handed to the courier at
    /// `shipped_at` (an `advances` row; the book adds it to the buyer's exposure and the
    /// day's total).
    Advance {
        buyer: BuyerId,
        amount: Money,
        tracking: String,
        shipped_at: DateTime<Utc>,
    },
    /// A tracking number that advanced nothing, and why (a `tracking_refusals` row).
    TrackingRefused {
        tracking: String,
        reasons: Vec<ReasonCode>,
    },
    /// The outcome of the advance (an `outcomes` row; the book settles the advance and
    /// notes a loss).
    Settle {
        buyer: BuyerId,
        amount: Money,
        outcome: Outcome,
        at: DateTime<Utc>,
        loss: bool,
    },
    /// A reviewer released the address the rules held (a `reviewer_releases` row).
    ReleasedByReviewer { reviewer: String },
    /// A refund without return of `amount` to `buyer` at `at` (a `kept` row; the store
    /// adds it to the buyer's 30-day and the day's refund-only totals).
    Kept {
        buyer: BuyerId,
        amount: Money,
        at: DateTime<Utc>,
    },
    /// A case corrected the outcome (an `outcome_corrections` row). When whether the
    /// buyer lost changed with it (`loss_changed`), the store reads the buyer's latest
    /// loss again from the outcomes as corrected and sets it in the book.
    OutcomeCorrected {
        buyer: BuyerId,
        from: Outcome,
        to: Outcome,
        loss_changed: bool,
    },
}

/// One move: the return's next state, what the store writes, and the caller's answer.
/// No effects: a repeat, nothing to write.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved<A> {
    pub next: ReturnState,
    pub effects: Vec<Effect>,
    pub answer: A,
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

/// What a return request does to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub enum DecideStep {
    /// The same request was decided before: answer the recorded decision.
    Recorded,
    New(NewDecision),
}

/// A new decision, the return it creates, and what to write (its advance, when the
/// request carried a tracking number and the rules advanced it).
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    pub decision: Decision,
    pub rec: ReturnRec,
    pub effects: Vec<Effect>,
}

/// The request `req` for a buyer rated `star` (`None`: unknown to the rating).
/// `recorded` is the request first decided under the same `return_id`, if any: the
/// same request again is [`DecideStep::Recorded`], another one is refused, naming the
/// field that differs (an idempotency key is bound to its first request, as
/// Stripe's are). `view` is read only for a new decision; `refund_only` fills in the
/// refund-only totals (the buyer's 30 days, the day's) only when the decision made
/// without them offers a refund without return: the caps can only take the offer
/// away, and the offer changes no other answer (both held by the policy's property
/// test), so a store reads those totals for the few requests that could be offered
/// one, not for every decision.
#[allow(clippy::too_many_arguments)]
pub fn decide_step<E: From<Refusal> + From<InvariantBroken>>(
    recorded: Option<&ReturnRequest>,
    req: &ReturnRequest,
    star: Option<Star>,
    policy: &Policy,
    now: DateTime<Utc>,
    view: impl FnOnce() -> Result<LedgerView, E>,
    refund_only: impl FnOnce(LedgerView) -> Result<LedgerView, E>,
) -> Result<DecideStep, E> {
    if let Some(first) = recorded {
        same_request(first, req)?;
        return Ok(DecideStep::Recorded);
    }
    let view = view()?;
    let mut decision = policy::decide(req, star, &view, policy, now);
    if decision.refund_without_return {
        decision = policy::decide(req, star, &refund_only(view)?, policy, now);
    }
    decided(req, decision, now).map(DecideStep::New)
}

/// Refuses `again` unless it is the request `first` recorded under its `return_id`,
/// naming the first field that differs (another buyer, order, merchant, category,
/// amount, reason, dates or tracking number): a retry gets the recorded answer, a
/// different request under the same key a refusal.
pub fn same_request(first: &ReturnRequest, again: &ReturnRequest) -> Result<(), Refusal> {
    match first.first_difference(again) {
        None => Ok(()),
        Some(field) => Err(Refusal::ReturnIdReused {
            return_id: again.return_id.0,
            field,
        }),
    }
}

/// The return and effects a new `decision` on `req`, taken at `now`, makes (for a
/// store that decides again when its budget claim fails, see `decide_step`).
pub fn decided<E: From<InvariantBroken>>(
    req: &ReturnRequest,
    decision: Decision,
    now: DateTime<Utc>,
) -> Result<NewDecision, E> {
    let (state, effects) = match (
        decision.instant_address_release,
        decision.advanced_refund,
        &req.tracking_number,
    ) {
        (false, false, _) => (ReturnState::Held, vec![]),
        (true, false, _) => (ReturnState::Released, vec![]),
        (true, true, Some(t)) => (
            ReturnState::Advanced(Advance {
                amount: req.amount,
                tracking_number: t.clone(),
            }),
            // A parcel named in the request is taken as handed over when decided.
            vec![Effect::Advance {
                buyer: req.buyer_id,
                amount: req.amount,
                tracking: t.clone(),
                shipped_at: now,
            }],
        ),
        (instant, true, t) => {
            return Err(InvariantBroken(format!(
                "return {} was decided advanced with instant release {instant} and tracking number {t:?}",
                req.return_id
            ))
            .into());
        }
    };
    let rec = ReturnRec {
        buyer: req.buyer_id,
        order: req.order_id,
        merchant: req.merchant_id,
        amount: req.amount,
        requested_at: req.requested_at,
        star: decision.star,
        refund_only_offered: decision.refund_without_return,
        state,
    };
    Ok(NewDecision {
        decision,
        rec,
        effects,
    })
}

/// What a tracking number does to a decided return, as the caller is answered.
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

/// The tracking number `tracking`, handed to the courier at `shipped_at`, for the
/// decided return `rid` (`rec`: its record; a store refuses a return never decided,
/// [`Refusal::UnknownReturn`], before asking).
/// `star_now` is the buyer's current star (`None`: the rating does not know them, so
/// the star the return was decided with counts). `view` is asked for only when the
/// answer hinges on the ledger (a released return not yet advanced): reading it may
/// cost the store an index look-up.
#[allow(clippy::too_many_arguments)]
pub fn track_step<E: From<Refusal>>(
    rid: ReturnId,
    rec: &ReturnRec,
    tracking: &str,
    shipped_at: DateTime<Utc>,
    star_now: Option<Star>,
    policy: &Policy,
    view: impl FnOnce(&ReturnRec) -> Result<LedgerView, E>,
) -> Result<Moved<TrackStep>, E> {
    let refused = |reasons: Vec<ReasonCode>| Moved {
        next: rec.state.clone(),
        effects: vec![Effect::TrackingRefused {
            tracking: tracking.to_string(),
            reasons: reasons.clone(),
        }],
        answer: TrackStep::Refuse { reasons },
    };
    if shipped_at < rec.requested_at {
        return Err(Refusal::BeforeRequest {
            return_id: rid.0,
            field: "shipped_at",
        }
        .into());
    }
    match &rec.state {
        ReturnState::Advanced(a) | ReturnState::Settled { advance: a, .. } => {
            if a.tracking_number != tracking {
                return Err(Refusal::TrackingConflict { return_id: rid.0 }.into());
            }
            Ok(Moved {
                next: rec.state.clone(),
                effects: vec![],
                answer: TrackStep::Repeat { amount: a.amount },
            })
        }
        ReturnState::Kept { .. } => Err(Refusal::RefundedWithoutReturn(rid.0).into()),
        ReturnState::Held => Ok(refused(vec![ReasonCode::NotInstant])),
        ReturnState::Released => {
            let view = view(rec)?;
            let star = star_now.unwrap_or(rec.star);
            let mut reasons = Vec::new();
            // A loss since the rating holds further advances, as it holds instant release.
            if view.loss_since_rating && policy.hold_after_loss {
                reasons.push(ReasonCode::LossSinceRating);
            }
            reasons.extend(policy::merchant_advance_refusals(
                rec.merchant,
                star,
                rec.amount,
                &view,
                policy,
            ));
            if view.order_already_refunded {
                reasons.push(ReasonCode::AlreadyRefunded);
            }
            if !reasons.is_empty() {
                return Ok(refused(reasons));
            }
            let advance = Advance {
                amount: rec.amount,
                tracking_number: tracking.to_string(),
            };
            Ok(Moved {
                next: ReturnState::Advanced(advance),
                effects: vec![Effect::Advance {
                    buyer: rec.buyer,
                    amount: rec.amount,
                    tracking: tracking.to_string(),
                    shipped_at,
                }],
                answer: TrackStep::Advance {
                    amount: rec.amount,
                    flags: policy::advance_flags(&view, policy),
                },
            })
        }
    }
}

/// The recorded answer to a tracking call that repeats one, deciding nothing: the
/// advance's amount when `rec` was advanced on `tracking`, `None` when it was not
/// advanced (a store then has nothing recorded to answer with), and a refusal when it
/// was advanced on another parcel.
pub fn replay_track(
    rid: ReturnId,
    rec: &ReturnRec,
    tracking: &str,
) -> Result<Option<Money>, Refusal> {
    match rec.state.advance() {
        Some(a) if a.tracking_number == tracking => Ok(Some(a.amount)),
        Some(_) => Err(Refusal::TrackingConflict { return_id: rid.0 }),
        None => Ok(None),
    }
}

/// What an outcome does to an advanced return, as the caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleStep {
    /// The same outcome at the same time was recorded before: answer the same.
    Repeat { amount: Money, loss: bool },
    /// Settle the advance of `amount`; `loss`: the buyer lost it.
    Settle { amount: Money, loss: bool },
}

/// The outcome `outcome` at `at` for return `rid` (`rec`: its record, if decided).
pub fn settle_step(
    rid: ReturnId,
    rec: Option<&ReturnRec>,
    outcome: Outcome,
    at: DateTime<Utc>,
) -> Result<Moved<SettleStep>, Refusal> {
    if outcome == Outcome::Pending {
        return Err(Refusal::PendingOutcome);
    }
    let rec = rec.ok_or(Refusal::UnknownReturn(rid.0))?;
    if at < rec.requested_at {
        return Err(Refusal::BeforeRequest {
            return_id: rid.0,
            field: "at",
        });
    }
    let loss = outcome.is_buyer_loss();
    match &rec.state {
        ReturnState::Held | ReturnState::Released => Err(Refusal::NotAdvanced(rid.0)),
        ReturnState::Kept { .. } => Err(Refusal::RefundedWithoutReturn(rid.0)),
        ReturnState::Advanced(a) => Ok(Moved {
            next: ReturnState::Settled {
                advance: a.clone(),
                outcome,
                at: at.timestamp_micros(),
                corrected: None,
            },
            effects: vec![Effect::Settle {
                buyer: rec.buyer,
                amount: a.amount,
                outcome,
                at,
                loss,
            }],
            answer: SettleStep::Settle {
                amount: a.amount,
                loss,
            },
        }),
        // The refund service's outcome is what a retry is checked against, even after
        // a case corrected it.
        ReturnState::Settled {
            outcome: existing, ..
        } if *existing != outcome => Err(Refusal::OutcomeConflict {
            return_id: rid.0,
            existing: *existing,
            given: outcome,
        }),
        ReturnState::Settled { at: recorded, .. } if *recorded != at.timestamp_micros() => {
            Err(Refusal::OutcomeAtConflict {
                return_id: rid.0,
                outcome,
            })
        }
        ReturnState::Settled { advance, .. } => Ok(Moved {
            next: rec.state.clone(),
            effects: vec![],
            answer: SettleStep::Repeat {
                amount: advance.amount,
                loss,
            },
        }),
    }
}

/// A reviewer releases the address of a return the rules held (a decision case the
/// buyer won). A return already released or advanced moves nothing: the release is
/// what it already has.
pub fn release_step(rec: &ReturnRec, reviewer: &str) -> Moved<()> {
    match rec.state {
        ReturnState::Held => Moved {
            next: ReturnState::Released,
            effects: vec![Effect::ReleasedByReviewer {
                reviewer: reviewer.to_string(),
            }],
            answer: (),
        },
        _ => Moved {
            next: rec.state.clone(),
            effects: vec![],
            answer: (),
        },
    }
}

/// A case corrects the settled outcome of return `rid` to `to`. The same correction
/// again moves nothing; a different one, or a return with no outcome, is refused.
pub fn correct_step(rid: ReturnId, rec: &ReturnRec, to: Outcome) -> Result<Moved<()>, Refusal> {
    match &rec.state {
        ReturnState::Settled {
            advance,
            outcome,
            at,
            corrected: None,
        } => Ok(Moved {
            next: ReturnState::Settled {
                advance: advance.clone(),
                outcome: *outcome,
                at: *at,
                corrected: Some(to),
            },
            effects: vec![Effect::OutcomeCorrected {
                buyer: rec.buyer,
                from: *outcome,
                to,
                loss_changed: outcome.is_buyer_loss() != to.is_buyer_loss(),
            }],
            answer: (),
        }),
        ReturnState::Settled {
            corrected: Some(c), ..
        } if *c == to => Ok(Moved {
            next: rec.state.clone(),
            effects: vec![],
            answer: (),
        }),
        ReturnState::Settled {
            corrected: Some(c), ..
        } => Err(Refusal::CorrectionConflict {
            return_id: rid.0,
            existing: *c,
        }),
        _ => Err(Refusal::NotSettled(rid.0)),
    }
}

/// What taking a refund-without-return offer does, as the caller is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepStep {
    /// Taken before: answer the same, pay nothing twice.
    Repeat { amount: Money },
    /// Refund `amount` now, the goods stay with the buyer.
    Keep { amount: Money },
}

/// The refund service takes the refund-without-return offer of return `rid` at `at`
/// (`rec`: its record). Only a decision that made the offer may be taken, and only
/// while the parcel is not on its way (no advance, no tracking number given:
/// `tracking_given`); the buyer's 30-day cap and the day's refund-only budget are
/// checked again against `view` (read only when the answer hinges on it). The return
/// moves to [`ReturnState::Kept`], settled with the outcome `refunded_without_return`.
pub fn keep_step<E: From<Refusal>>(
    rid: ReturnId,
    rec: &ReturnRec,
    tracking_given: bool,
    policy: &Policy,
    at: DateTime<Utc>,
    view: impl FnOnce(&ReturnRec) -> Result<LedgerView, E>,
) -> Result<Moved<KeepStep>, E> {
    match &rec.state {
        ReturnState::Kept { amount, .. } => Ok(Moved {
            next: rec.state.clone(),
            effects: vec![],
            answer: KeepStep::Repeat { amount: *amount },
        }),
        ReturnState::Advanced(_) | ReturnState::Settled { .. } => {
            Err(Refusal::ParcelOnItsWay(rid.0).into())
        }
        ReturnState::Held | ReturnState::Released => {
            if !rec.refund_only_offered {
                return Err(Refusal::NoRefundWithoutReturnOffer(rid.0).into());
            }
            if tracking_given {
                return Err(Refusal::ParcelOnItsWay(rid.0).into());
            }
            let view = view(rec)?;
            let reasons = policy::refund_only::cap_refusals(rec.amount, &view, policy);
            if !reasons.is_empty() {
                return Err(Refusal::RefundOnlyCaps {
                    return_id: rid.0,
                    reasons,
                }
                .into());
            }
            Ok(Moved {
                next: ReturnState::Kept {
                    amount: rec.amount,
                    at: at.timestamp_micros(),
                },
                effects: vec![Effect::Kept {
                    buyer: rec.buyer,
                    amount: rec.amount,
                    at,
                }],
                answer: KeepStep::Keep { amount: rec.amount },
            })
        }
    }
}

#[cfg(test)]
mod tests;
