//! The reference model of a return's money lifecycle, for model-based tests of every
//! store: random sequences of decide, track, settle, exposure and restart ([`Op`],
//! [`op`]) answered by a plain model that keeps one record per decided return and
//! nothing else ([`Model`]). It shares only the pure rules (`policy::decide`,
//! `advance_refusals`, `advance_flags`) with the state machine; its bookkeeping (who
//! owes what, what was recorded, what a retry gets) is written from the spec,
//! independently of [`super::machine`] and [`super::Book`].
//!
//! The in-memory ledger runs against it here (`memory_ledger_answers_as_the_model`);
//! the SQLite and PostgreSQL stores run against it in `crates/pg/tests/conformance.rs`
//! (feature `model`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::domain::{
    BuyerId, Category, Decision, MerchantId, Money, OrderId, Outcome, ReasonCode, ReturnId,
    ReturnReason, ReturnRequest, Star,
};
use crate::ledger::{Refusal, StarLookup};
use crate::policy::{self, LedgerView, Policy};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use std::collections::HashMap;

pub const BUYERS: u64 = 3;
pub const RETURNS: u64 = 10;
pub const TRACKING: [&str; 3] = ["SFA", "SFB", "SFC"];
/// 19.90 is offered a refund without return (at most 30.00 by default), to 4★ and up.
pub const AMOUNTS: [&str; 4] = ["19.90", "50.00", "300.00", "700.00"];

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap()
}

/// The snapshot in service was rated as of this instant (after the requests, at
/// 02:00): losses at or after it hold.
pub fn rated_as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 2, 30, 0).unwrap()
}

/// The outcome times [`Op::Settle`] picks from: before the return was requested
/// (refused), before the rating, after it.
pub const OUTCOME_TIMES: usize = 3;

pub fn outcome_time(when: usize) -> DateTime<Utc> {
    let minute = [(1, 0), (2, 10), (2, 45)][when % OUTCOME_TIMES];
    Utc.with_ymd_and_hms(2026, 7, 1, minute.0, minute.1, 0)
        .unwrap()
}

/// A tight policy, so that limits, the daily budget and the refund-only caps are hit
/// often.
pub fn policy() -> Policy {
    let p = Policy::default();
    Policy {
        daily_budget: "1500.00".parse().unwrap(),
        refund_only: policy::RefundOnly {
            per_buyer_30_days: "40.00".parse().unwrap(),
            daily_budget: "60.00".parse().unwrap(),
            ..p.refund_only.clone()
        },
        ..p
    }
}

/// Every buyer's star: buyer 0 has 2★ (no instant release), the others 3★ and 5★.
pub fn star_of(buyer: u64) -> Star {
    Star::try_from([2u8, 3, 5][buyer as usize % 3]).unwrap()
}

pub struct Stars;
impl StarLookup for Stars {
    fn star(&self, buyer: BuyerId) -> Option<Star> {
        Some(star_of(buyer.0))
    }
    fn rated_as_of(&self) -> Option<DateTime<Utc>> {
        Some(rated_as_of())
    }
}

#[derive(Debug, Clone)]
pub enum Op {
    Decide {
        rid: u64,
        buyer: u64,
        order: u64,
        amount: usize,
        tracking: Option<usize>,
        cancel: bool,
    },
    Track {
        rid: u64,
        tracking: usize,
        cancel: bool,
    },
    Settle {
        rid: u64,
        outcome: usize,
        /// Which of the [`outcome_time`]s.
        when: usize,
    },
    Exposure {
        buyer: u64,
    },
    /// Take the refund-without-return offer.
    Keep {
        rid: u64,
        cancel: bool,
    },
    Restart,
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=RETURNS, 0..BUYERS, 1..=RETURNS, 0..AMOUNTS.len(), proptest::option::of(0..TRACKING.len()), proptest::bool::weighted(0.1))
            .prop_map(|(rid, buyer, order, amount, tracking, cancel)| Op::Decide { rid, buyer, order, amount, tracking, cancel }),
        4 => (1..=RETURNS, 0..TRACKING.len(), proptest::bool::weighted(0.1))
            .prop_map(|(rid, tracking, cancel)| Op::Track { rid, tracking, cancel }),
        2 => (1..=RETURNS, 0..4usize, prop_oneof![1 => Just(0), 4 => 1..OUTCOME_TIMES])
            .prop_map(|(rid, outcome, when)| Op::Settle { rid, outcome, when }),
        1 => (0..BUYERS).prop_map(|buyer| Op::Exposure { buyer }),
        2 => (1..=RETURNS, proptest::bool::weighted(0.1)).prop_map(|(rid, cancel)| Op::Keep { rid, cancel }),
        1 => Just(Op::Restart),
    ]
}

pub const OUTCOMES: [Outcome; 4] = [
    Outcome::ReceivedOk,
    Outcome::MerchantFault,
    Outcome::ReceivedMismatch,
    Outcome::NotShipped,
];

pub fn request(
    rid: u64,
    buyer: u64,
    order: u64,
    amount: usize,
    tracking: Option<usize>,
) -> ReturnRequest {
    ReturnRequest {
        return_id: ReturnId(rid),
        buyer_id: BuyerId(buyer),
        order_id: OrderId(order),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: AMOUNTS[amount].parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: Utc.with_ymd_and_hms(2026, 7, 1, 2, 0, 0).unwrap(),
        tracking_number: tracking.map(|t| TRACKING[t].to_string()),
    }
}

/// The reference: one record per decided return, and nothing else.
#[derive(Debug, Clone)]
pub struct RefReturn {
    pub req: ReturnRequest,
    pub decision: Decision,
    pub decision_id: u64,
    /// The advance: its tracking number.
    pub advance: Option<String>,
    pub outcome: Option<(Outcome, DateTime<Utc>)>,
    /// Refunded without return (kept), and when.
    pub kept: Option<DateTime<Utc>>,
    /// A tracking number was recorded for it (advanced or refused).
    pub tracked: bool,
}

#[derive(Debug, Default)]
pub struct Model {
    pub returns: HashMap<u64, RefReturn>,
    next_id: u64,
}

/// What a call answered, reduced to what must agree.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Decided {
        decision: Decision,
        decision_id: u64,
        repeated: bool,
    },
    Tracked {
        advanced: bool,
        amount: Money,
        reasons: Vec<&'static str>,
        repeated: bool,
    },
    Settled {
        amount: Money,
        loss: bool,
        outstanding: Money,
        repeated: bool,
    },
    Exposure(Money, u32),
    Kept {
        amount: Money,
        repeated: bool,
    },
    /// An error, by kind.
    Refused(&'static str),
}

/// A refusal, by kind (what a model answer names).
pub fn refusal_kind(r: &Refusal) -> &'static str {
    match r {
        Refusal::UnknownReturn(_) => "unknown_return",
        Refusal::NotAdvanced(_) => "not_advanced",
        Refusal::OutcomeConflict { .. } => "outcome_conflict",
        Refusal::ReturnIdReused { .. } => "return_id_reused",
        Refusal::TrackingConflict { .. } => "tracking_conflict",
        Refusal::OutcomeAtConflict { .. } => "outcome_at_conflict",
        Refusal::PendingOutcome => "pending",
        Refusal::NotSettled(_) => "not_settled",
        Refusal::CorrectionConflict { .. } => "correction_conflict",
        Refusal::BeforeRequest { .. } => "before_request",
        Refusal::NoRefundWithoutReturnOffer(_) => "no_refund_without_return_offer",
        Refusal::ParcelOnItsWay(_) => "parcel_on_its_way",
        Refusal::RefundOnlyCaps { .. } => "refund_only_caps",
        Refusal::RefundedWithoutReturn(_) => "refunded_without_return",
    }
}

impl Model {
    pub fn open_advances(&self, buyer: u64) -> impl Iterator<Item = &RefReturn> {
        self.returns.values().filter(move |r| {
            r.req.buyer_id.0 == buyer && r.advance.is_some() && r.outcome.is_none()
        })
    }

    pub fn exposure(&self, buyer: u64) -> (Money, u32) {
        self.open_advances(buyer)
            .fold((Money::ZERO, 0), |(m, n), r| (m + r.req.amount, n + 1))
    }

    pub fn view(&self, rid: u64, buyer: u64, order: u64, tracking: Option<&str>) -> LedgerView {
        let advanced = || self.returns.values().filter(|r| r.advance.is_some());
        let kept = || self.returns.values().filter(|r| r.kept.is_some());
        LedgerView {
            outstanding: self.exposure(buyer).0,
            advanced_today: advanced().map(|r| r.req.amount).sum(),
            order_already_refunded: advanced().chain(kept()).any(|r| r.req.order_id.0 == order),
            // Every keep happens at `now()`: within the buyer's 30 days and the day.
            refund_only_30_days: kept()
                .filter(|r| r.req.buyer_id.0 == buyer)
                .map(|r| r.req.amount)
                .sum(),
            refund_only_today: kept().map(|r| r.req.amount).sum(),
            tracking_number_reused: tracking.is_some_and(|t| {
                advanced().any(|r| r.req.return_id.0 != rid && r.advance.as_deref() == Some(t))
            }),
            loss_since_rating: self.returns.values().any(|r| {
                r.req.buyer_id.0 == buyer
                    && r.outcome
                        .is_some_and(|(o, at)| o.is_buyer_loss() && at >= rated_as_of())
            }),
        }
    }

    pub fn decide(&mut self, req: ReturnRequest, p: &Policy) -> Answer {
        let rid = req.return_id.0;
        if let Some(r) = self.returns.get(&rid) {
            return if r.req == req {
                Answer::Decided {
                    decision: r.decision.clone(),
                    decision_id: r.decision_id,
                    repeated: true,
                }
            } else {
                Answer::Refused("return_id_reused")
            };
        }
        let view = self.view(
            rid,
            req.buyer_id.0,
            req.order_id.0,
            req.tracking_number.as_deref(),
        );
        let decision = policy::decide(&req, Some(star_of(req.buyer_id.0)), &view, p, now());
        // Ids: increasing, and at least the decision's time in microseconds.
        let id = (self.next_id + 1).max(now().timestamp_micros() as u64);
        self.next_id = id;
        let r = RefReturn {
            advance: decision
                .advanced_refund
                .then(|| req.tracking_number.clone().unwrap_or_default()),
            req,
            decision: decision.clone(),
            decision_id: self.next_id,
            outcome: None,
            kept: None,
            tracked: false,
        };
        self.returns.insert(rid, r);
        Answer::Decided {
            decision,
            decision_id: self.next_id,
            repeated: false,
        }
    }

    pub fn track(&mut self, rid: u64, tracking: &str, p: &Policy) -> Answer {
        let Some(r) = self.returns.get(&rid).cloned() else {
            return Answer::Refused("unknown_return");
        };
        let amount = r.req.amount;
        if r.kept.is_some() {
            return Answer::Refused("refunded_without_return");
        }
        if let Some(t) = &r.advance {
            return if t == tracking {
                Answer::Tracked {
                    advanced: true,
                    amount,
                    reasons: vec![],
                    repeated: true,
                }
            } else {
                Answer::Refused("tracking_conflict")
            };
        }
        if let Some(rec) = self.returns.get_mut(&rid) {
            rec.tracked = true;
        }
        let mut reasons = Vec::new();
        if !r.decision.instant_address_release {
            reasons.push(ReasonCode::NotInstant);
        } else {
            let view = self.view(rid, r.req.buyer_id.0, r.req.order_id.0, Some(tracking));
            if view.loss_since_rating && p.hold_after_loss {
                reasons.push(ReasonCode::LossSinceRating);
            }
            reasons.extend(policy::merchant_advance_refusals(
                r.req.merchant_id,
                star_of(r.req.buyer_id.0),
                amount,
                &view,
                p,
            ));
            if view.order_already_refunded {
                reasons.push(ReasonCode::AlreadyRefunded);
            }
            if reasons.is_empty() {
                let flags = policy::advance_flags(&view, p);
                if let Some(rec) = self.returns.get_mut(&rid) {
                    rec.advance = Some(tracking.to_string());
                }
                return Answer::Tracked {
                    advanced: true,
                    amount,
                    reasons: flags.iter().map(|c| c.code()).collect(),
                    repeated: false,
                };
            }
        }
        Answer::Tracked {
            advanced: false,
            amount,
            reasons: reasons.iter().map(|c| c.code()).collect(),
            repeated: false,
        }
    }

    pub fn settle(&mut self, rid: u64, outcome: Outcome, at: DateTime<Utc>) -> Answer {
        let Some(r) = self.returns.get(&rid).cloned() else {
            return Answer::Refused("unknown_return");
        };
        if at < r.req.requested_at {
            return Answer::Refused("before_request");
        }
        if r.kept.is_some() {
            return Answer::Refused("refunded_without_return");
        }
        if r.advance.is_none() {
            return Answer::Refused("not_advanced");
        }
        let buyer = r.req.buyer_id.0;
        match r.outcome {
            Some((o, _)) if o != outcome => Answer::Refused("outcome_conflict"),
            Some((_, t)) if t != at => Answer::Refused("outcome_at_conflict"),
            Some(_) => Answer::Settled {
                amount: r.req.amount,
                loss: outcome.is_buyer_loss(),
                outstanding: self.exposure(buyer).0,
                repeated: true,
            },
            None => {
                if let Some(rec) = self.returns.get_mut(&rid) {
                    rec.outcome = Some((outcome, at));
                }
                Answer::Settled {
                    amount: r.req.amount,
                    loss: outcome.is_buyer_loss(),
                    outstanding: self.exposure(buyer).0,
                    repeated: false,
                }
            }
        }
    }
}

impl Model {
    /// The refund service takes the refund-without-return offer of `rid` at `now()`.
    pub fn keep(&mut self, rid: u64, p: &Policy) -> Answer {
        let Some(r) = self.returns.get(&rid).cloned() else {
            return Answer::Refused("unknown_return");
        };
        let amount = r.req.amount;
        if r.kept.is_some() {
            return Answer::Kept {
                amount,
                repeated: true,
            };
        }
        if r.advance.is_some() {
            return Answer::Refused("parcel_on_its_way");
        }
        if !r.decision.refund_without_return {
            return Answer::Refused("no_refund_without_return_offer");
        }
        if r.tracked {
            return Answer::Refused("parcel_on_its_way");
        }
        let view = self.view(rid, r.req.buyer_id.0, r.req.order_id.0, None);
        let rules = &p.refund_only;
        if view.refund_only_30_days + amount > rules.per_buyer_30_days
            || view.refund_only_today + amount > rules.daily_budget
        {
            return Answer::Refused("refund_only_caps");
        }
        if let Some(rec) = self.returns.get_mut(&rid) {
            rec.kept = Some(now());
        }
        Answer::Kept {
            amount,
            repeated: false,
        }
    }
}

/// An answer with its decision id blanked (the `repeated` flag kept).
pub fn without_id(a: &Answer) -> Answer {
    match a {
        Answer::Decided {
            decision, repeated, ..
        } => Answer::Decided {
            decision: decision.clone(),
            decision_id: 0,
            repeated: *repeated,
        },
        other => other.clone(),
    }
}

/// An answer as a store without decision ids gives it.
pub fn without_ids(a: &Answer) -> Answer {
    match a {
        Answer::Decided { decision, .. } => Answer::Decided {
            decision: decision.clone(),
            decision_id: 0,
            repeated: false,
        },
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{KeepStep, MemoryError, MemoryLedger, SettleStep, TrackStep};

    fn kind(e: &MemoryError) -> &'static str {
        match e {
            MemoryError::Refused(r) => refusal_kind(r),
            MemoryError::Invariant(_) => "broken",
        }
    }

    /// Runs `ops` through the in-memory ledger and the model: every answer agrees, and
    /// each buyer's exposure in the book is the model's after every step.
    fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let p = policy();
        let mut model = Model::default();
        let mut mem = MemoryLedger::default();
        for (step, op) in ops.into_iter().enumerate() {
            let (got, want) = match op {
                Op::Decide {
                    rid,
                    buyer,
                    order,
                    amount,
                    tracking,
                    ..
                } => {
                    let req = request(rid, buyer, order, amount, tracking);
                    let got = match mem.decide(
                        &req,
                        Some(star_of(buyer)),
                        Some(rated_as_of()),
                        &p,
                        now(),
                    ) {
                        Ok(decision) => Answer::Decided {
                            decision,
                            decision_id: 0,
                            repeated: false,
                        },
                        Err(e) => Answer::Refused(kind(&e)),
                    };
                    (got, without_ids(&model.decide(req, &p)))
                }
                Op::Track { rid, tracking, .. } => {
                    let want = model.track(rid, TRACKING[tracking], &p);
                    let got = match mem.track(rid, TRACKING[tracking], Some(&Stars), &p, now()) {
                        Ok(TrackStep::Advance { amount, flags }) => Answer::Tracked {
                            advanced: true,
                            amount,
                            reasons: flags.iter().map(|c| c.code()).collect(),
                            repeated: false,
                        },
                        Ok(TrackStep::Repeat { amount }) => Answer::Tracked {
                            advanced: true,
                            amount,
                            reasons: vec![],
                            repeated: true,
                        },
                        Ok(TrackStep::Refuse { reasons }) => Answer::Tracked {
                            advanced: false,
                            amount: model.returns[&rid].req.amount,
                            reasons: reasons.iter().map(|c| c.code()).collect(),
                            repeated: false,
                        },
                        Err(e) => Answer::Refused(kind(&e)),
                    };
                    (got, want)
                }
                Op::Settle { rid, outcome, when } => {
                    let (o, at) = (OUTCOMES[outcome], outcome_time(when));
                    let want = model.settle(rid, o, at);
                    let owed = |mem: &MemoryLedger| {
                        mem.book().exposure(model.returns[&rid].req.buyer_id.0).0
                    };
                    let got = match mem.settle(rid, o, at) {
                        Ok(SettleStep::Settle { amount, loss }) => Answer::Settled {
                            amount,
                            loss,
                            outstanding: owed(&mem),
                            repeated: false,
                        },
                        Ok(SettleStep::Repeat { amount, loss }) => Answer::Settled {
                            amount,
                            loss,
                            outstanding: owed(&mem),
                            repeated: true,
                        },
                        Err(e) => Answer::Refused(kind(&e)),
                    };
                    (got, want)
                }
                Op::Exposure { buyer } => {
                    let (m, n) = mem.book().exposure(buyer);
                    (Answer::Exposure(m, n), {
                        let (m, n) = model.exposure(buyer);
                        Answer::Exposure(m, n)
                    })
                }
                Op::Keep { rid, .. } => {
                    let want = model.keep(rid, &p);
                    let got = match mem.keep(rid, &p, now()) {
                        Ok(KeepStep::Keep { amount }) => Answer::Kept {
                            amount,
                            repeated: false,
                        },
                        Ok(KeepStep::Repeat { amount }) => Answer::Kept {
                            amount,
                            repeated: true,
                        },
                        Err(e) => Answer::Refused(kind(&e)),
                    };
                    (got, want)
                }
                // Memory has nothing to restart from.
                Op::Restart => continue,
            };
            prop_assert_eq!(&got, &want, "step {}", step);
            for buyer in 0..BUYERS {
                prop_assert_eq!(mem.book().exposure(buyer), model.exposure(buyer));
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn memory_ledger_answers_as_the_model(ops in prop::collection::vec(op(), 1..60)) {
            run(ops)?;
        }
    }
}
