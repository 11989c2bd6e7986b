//! A ledger in memory: the same rules as the durable one ([`super::machine`] and
//! [`super::Book`]), with every record held in maps. `simulate` replays a history
//! through it, so a simulated policy meets the limits, the daily budget, the hold
//! after a loss and the one-advance-per-order rule exactly as the service applies them.
//! Its memory grows with the returns it has seen: it is for a bounded replay, not
//! for serving.

use super::StarLookup;
use super::book::{Book, InvariantBroken};
use super::machine::{Advance, Refusal, ReturnRec, SettleStep, TrackStep, settle_step, track_step};
use crate::domain::{BuyerId, Decision, Outcome, ReturnRequest, Star};
use crate::policy::{self, Policy};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// Why the in-memory ledger refused or failed a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Invariant(#[from] InvariantBroken),
}

/// Decided returns, their advances and outcomes, and the [`Book`].
#[derive(Debug, Clone, Default)]
pub struct MemoryLedger {
    book: Book,
    returns: HashMap<u64, ReturnRec>,
    /// Each return's first request and its decision.
    decisions: HashMap<u64, (ReturnRequest, Decision)>,
    refunded_orders: HashSet<u64>,
    /// Tracking number → the return it backs an advance of.
    tracking: HashMap<String, u64>,
}

impl MemoryLedger {
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Decides `req` for a buyer rated `star` by a rating that stopped seeing at
    /// `rated_as_of`. The same request again gets its recorded decision; another
    /// request under the same `return_id` is refused, naming the field that differs.
    pub fn decide(
        &mut self,
        req: &ReturnRequest,
        star: Option<Star>,
        rated_as_of: Option<DateTime<Utc>>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<Decision, Refusal> {
        let rid = req.return_id.0;
        if let Some((first, d)) = self.decisions.get(&rid) {
            return match first.first_difference(req) {
                None => Ok(d.clone()),
                Some(field) => Err(Refusal::ReturnIdReused {
                    return_id: rid,
                    field,
                }),
            };
        }
        let day = policy::local_date(now, policy);
        let reused = req
            .tracking_number
            .as_deref()
            .is_some_and(|t| self.tracking.get(t).is_some_and(|r| *r != rid));
        let view = self.book.view(
            req.buyer_id.0,
            day,
            rated_as_of,
            self.refunded_orders.contains(&req.order_id.0),
            reused,
        );
        let d = policy::decide(req, star, &view, policy, now);
        let rec = ReturnRec {
            buyer: req.buyer_id.0,
            order: req.order_id.0,
            amount: req.amount,
            instant: d.instant_address_release,
            star: d.star,
            advance: None,
            outcome: None,
        };
        self.returns.insert(rid, rec);
        if d.advanced_refund {
            self.advance(rid, req.tracking_number.as_deref().unwrap_or_default(), day);
        }
        self.decisions.insert(rid, (req.clone(), d.clone()));
        Ok(d)
    }

    /// The tracking number of return `rid`, at `now`; `stars` is the rating in force
    /// (the buyer's current star and when it stopped seeing), as for the durable ledger.
    pub fn track(
        &mut self,
        rid: u64,
        tracking: &str,
        stars: Option<&dyn StarLookup>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<TrackStep, MemoryError> {
        let day = policy::local_date(now, policy);
        let rec = self.returns.get(&rid).ok_or(Refusal::UnknownReturn(rid))?;
        let star_now = stars.and_then(|s| s.star(BuyerId(rec.buyer)));
        let rated_as_of = stars.and_then(|s| s.rated_as_of());
        let step = track_step::<Refusal>(rid, rec, tracking, star_now, policy, |rec| {
            Ok(self.book.view(
                rec.buyer,
                day,
                rated_as_of,
                self.refunded_orders.contains(&rec.order),
                self.tracking.get(tracking).is_some_and(|r| *r != rid),
            ))
        })?;
        if let TrackStep::Advance { .. } = step {
            self.advance(rid, tracking, day);
        }
        Ok(step)
    }

    /// The outcome of return `rid`.
    pub fn settle(
        &mut self,
        rid: u64,
        outcome: Outcome,
        at: DateTime<Utc>,
    ) -> Result<SettleStep, MemoryError> {
        let step = settle_step(rid, self.returns.get(&rid), outcome, at)?;
        if let SettleStep::Settle { amount, loss } = step
            && let Some(rec) = self.returns.get_mut(&rid)
        {
            self.book.settle(rec.buyer, amount, loss, at)?;
            rec.outcome = Some((outcome, at.timestamp_micros()));
        }
        Ok(step)
    }

    /// Advances the decided return `rid` on `tracking`.
    fn advance(&mut self, rid: u64, tracking: &str, day: chrono::NaiveDate) {
        let Some(rec) = self.returns.get_mut(&rid) else {
            return;
        };
        self.book.add_advance(rec.buyer, rec.amount, day);
        self.refunded_orders.insert(rec.order);
        self.tracking.insert(tracking.to_string(), rid);
        rec.advance = Some(Advance {
            amount: rec.amount,
            tracking_number: tracking.to_string(),
        });
    }
}
