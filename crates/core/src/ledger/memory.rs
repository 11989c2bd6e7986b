//! A ledger in memory: the same rules as the durable one ([`super::machine`] and
//! [`super::Book`]), with every record held in maps. `simulate` replays a history
//! through it, so a simulated policy meets the limits, the daily budget, the hold
//! after a loss and the one-advance-per-order rule exactly as the service applies them.
//! Its memory grows with the returns it has seen: it is for a bounded replay, not
//! for serving.

use super::StarLookup;
use super::book::{Book, InvariantBroken};
use super::machine::{
    DecideStep, Effect, KeepStep, Moved, NewDecision, Refusal, ReturnRec, SettleStep, TrackStep,
    decide_step, keep_step, settle_step, track_step,
};
use crate::domain::{BuyerId, Decision, Money, Outcome, ReturnId, ReturnRequest, Star};
use crate::policy::{self, LedgerView, Policy};
use chrono::{DateTime, NaiveDate, Utc};
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
    /// Set when an invariant broke: no money moves after it.
    broken: Option<InvariantBroken>,
    /// Refunds without return per buyer (when, how much), and per day.
    kept: HashMap<u64, Vec<(DateTime<Utc>, Money)>>,
    kept_by_day: HashMap<NaiveDate, Money>,
    /// Returns a tracking number was given for (advanced or not).
    tracked: HashSet<u64>,
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
    ) -> Result<Decision, MemoryError> {
        let rid = req.return_id.0;
        let recorded = self.decisions.get(&rid);
        let day = policy::local_date(now, policy);
        let step = decide_step::<MemoryError>(
            recorded.map(|(first, _)| first),
            req,
            star,
            policy,
            now,
            || {
                let reused = req
                    .tracking_number
                    .as_deref()
                    .is_some_and(|t| self.tracking.get(t).is_some_and(|r| *r != rid));
                Ok(self.book.view(
                    req.buyer_id.0,
                    day,
                    rated_as_of,
                    self.refunded_orders.contains(&req.order_id.0),
                    reused,
                ))
            },
            |view| Ok(self.refund_only_view(view, req.buyer_id, day, now)),
        )?;
        match (step, recorded) {
            (DecideStep::Recorded, Some((_, d))) => Ok(d.clone()),
            (DecideStep::Recorded, None) => Err(InvariantBroken(format!(
                "return {rid} answered as recorded with no recorded decision"
            ))
            .into()),
            (
                DecideStep::New(NewDecision {
                    decision,
                    rec,
                    effects,
                }),
                _,
            ) => {
                self.apply(rid, &rec, &effects, day)?;
                self.returns.insert(rid, rec);
                self.decisions.insert(rid, (req.clone(), decision.clone()));
                Ok(decision)
            }
        }
    }

    /// The tracking number of return `rid`, handed over at `now`; `stars` is the rating in force
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
        let star_now = stars.and_then(|s| s.star(rec.buyer));
        let rated_as_of = stars.and_then(|s| s.rated_as_of());
        let moved =
            track_step::<Refusal>(ReturnId(rid), rec, tracking, now, star_now, policy, |rec| {
                Ok(self.book.view(
                    rec.buyer.0,
                    day,
                    rated_as_of,
                    self.refunded_orders.contains(&rec.order.0),
                    self.tracking.get(tracking).is_some_and(|r| *r != rid),
                ))
            })?;
        // A tracking number is on record: the parcel is on its way.
        self.tracked.insert(rid);
        self.moved(rid, moved, day)
    }

    /// The refund service takes the refund-without-return offer of return `rid` at
    /// `now`: the caps are checked again and charged in the same move.
    pub fn keep(
        &mut self,
        rid: u64,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<KeepStep, MemoryError> {
        let day = policy::local_date(now, policy);
        let rec = self.returns.get(&rid).ok_or(Refusal::UnknownReturn(rid))?;
        let moved = keep_step::<Refusal>(
            ReturnId(rid),
            rec,
            self.tracked.contains(&rid),
            policy,
            now,
            |rec| {
                Ok(self.refund_only_view(
                    self.book.view(rec.buyer.0, day, None, false, false),
                    rec.buyer,
                    day,
                    now,
                ))
            },
        )?;
        self.moved(rid, moved, day)
    }

    /// `view` with the buyer's refund-only total over the 30 days before `now` and the
    /// platform's on `day`.
    fn refund_only_view(
        &self,
        view: LedgerView,
        buyer: BuyerId,
        day: NaiveDate,
        now: DateTime<Utc>,
    ) -> LedgerView {
        let since = now - chrono::Duration::days(30);
        LedgerView {
            refund_only_30_days: self
                .kept
                .get(&buyer.0)
                .map(|v| {
                    v.iter()
                        .filter(|(t, _)| *t > since && *t <= now)
                        .map(|(_, m)| *m)
                        .sum()
                })
                .unwrap_or(Money::ZERO),
            refund_only_today: self.kept_by_day.get(&day).copied().unwrap_or(Money::ZERO),
            ..view
        }
    }

    /// The outcome of return `rid`.
    pub fn settle(
        &mut self,
        rid: u64,
        outcome: Outcome,
        at: DateTime<Utc>,
    ) -> Result<SettleStep, MemoryError> {
        let moved = settle_step(ReturnId(rid), self.returns.get(&rid), outcome, at)?;
        self.moved(rid, moved, NaiveDate::default())
    }

    /// Applies a move of return `rid`: its effects, then its next state.
    fn moved<A>(&mut self, rid: u64, moved: Moved<A>, day: NaiveDate) -> Result<A, MemoryError> {
        let Some(rec) = self.returns.get(&rid).cloned() else {
            return Err(Refusal::UnknownReturn(rid).into());
        };
        self.apply(rid, &rec, &moved.effects, day)?;
        if let Some(rec) = self.returns.get_mut(&rid) {
            rec.state = moved.next;
        }
        Ok(moved.answer)
    }

    /// Applies `effects` of a move of return `rid` (`rec`): the book's money and the
    /// maps a store would keep as rows and indexes.
    fn apply(
        &mut self,
        rid: u64,
        rec: &ReturnRec,
        effects: &[Effect],
        day: NaiveDate,
    ) -> Result<(), MemoryError> {
        if let Some(broken) = &self.broken
            && !effects.is_empty()
        {
            return Err(broken.clone().into());
        }
        for e in effects {
            if let Err(broken) = self.book.apply(e, day) {
                self.broken = Some(broken.clone());
                return Err(broken.into());
            }
            match e {
                Effect::Advance { tracking, .. } => {
                    self.refunded_orders.insert(rec.order.0);
                    self.tracking.insert(tracking.clone(), rid);
                }
                Effect::Kept { buyer, amount, at } => {
                    self.refunded_orders.insert(rec.order.0);
                    self.kept.entry(buyer.0).or_default().push((*at, *amount));
                    let d = self.kept_by_day.entry(day).or_default();
                    *d = *d + *amount;
                }
                // (Cases' moves, a reviewer's release and a correction, are the
                // durable stores' only: `simulate` replays no case.)
                Effect::TrackingRefused { .. }
                | Effect::Settle { .. }
                | Effect::ReleasedByReviewer { .. }
                | Effect::OutcomeCorrected { .. } => {}
            }
        }
        Ok(())
    }
}
