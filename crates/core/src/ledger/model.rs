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
pub const AMOUNTS: [&str; 3] = ["50.00", "300.00", "700.00"];

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap()
}

/// The snapshot in service was rated as of this instant: losses at or after it hold.
pub fn rated_as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 30, 0, 0, 0).unwrap()
}

/// Outcome times: one before the rating, one after.
pub fn outcome_time(late: bool) -> DateTime<Utc> {
    if late {
        Utc.with_ymd_and_hms(2026, 7, 1, 1, 0, 0).unwrap()
    } else {
        Utc.with_ymd_and_hms(2026, 6, 29, 1, 0, 0).unwrap()
    }
}

/// A tight policy, so that limits and the daily budget are hit often.
pub fn policy() -> Policy {
    Policy {
        daily_budget: "1500.00".parse().unwrap(),
        ..Policy::default()
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
        late: bool,
    },
    Exposure {
        buyer: u64,
    },
    Restart,
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=RETURNS, 0..BUYERS, 1..=RETURNS, 0..AMOUNTS.len(), proptest::option::of(0..TRACKING.len()), proptest::bool::weighted(0.1))
            .prop_map(|(rid, buyer, order, amount, tracking, cancel)| Op::Decide { rid, buyer, order, amount, tracking, cancel }),
        4 => (1..=RETURNS, 0..TRACKING.len(), proptest::bool::weighted(0.1))
            .prop_map(|(rid, tracking, cancel)| Op::Track { rid, tracking, cancel }),
        2 => (1..=RETURNS, 0..4usize, any::<bool>())
            .prop_map(|(rid, outcome, late)| Op::Settle { rid, outcome, late }),
        1 => (0..BUYERS).prop_map(|buyer| Op::Exposure { buyer }),
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
        LedgerView {
            outstanding: self.exposure(buyer).0,
            advanced_today: advanced().map(|r| r.req.amount).sum(),
            order_already_refunded: advanced().any(|r| r.req.order_id.0 == order),
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
        let mut reasons = Vec::new();
        if !r.decision.instant_address_release {
            reasons.push(ReasonCode::NotInstant);
        } else {
            let view = self.view(rid, r.req.buyer_id.0, r.req.order_id.0, Some(tracking));
            if view.loss_since_rating && p.hold_after_loss {
                reasons.push(ReasonCode::LossSinceRating);
            }
            reasons.extend(policy::advance_refusals(
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
    use crate::ledger::{MemoryError, MemoryLedger, SettleStep, TrackStep};

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
                Op::Settle { rid, outcome, late } => {
                    let (o, at) = (OUTCOMES[outcome], outcome_time(late));
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
