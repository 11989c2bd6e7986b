//! The money a ledger keeps in memory, and the rules that move it.

use super::machine::Effect;
use crate::domain::Money;
use crate::policy::LedgerView;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;

/// What the money rules need at hand: each buyer's open advances (outstanding amount
/// and count; buyers with none are not held), the platform's advances per day, and
/// each buyer's latest loss (an advance settled `received_mismatch` or
/// `not_shipped`, by the outcome's time). Bounded by open advances, days and buyers
/// with a loss, never by history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Book {
    outstanding: HashMap<u64, (Money, u32)>,
    by_day: HashMap<NaiveDate, Money>,
    last_loss: HashMap<u64, DateTime<Utc>>,
}

/// The book disagrees with itself: a buyer would owe less than an advance being
/// settled, or owe something with no advance open. Never clamped: it means the
/// records are wrong, and the command must fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invariant broken: {0}")]
pub struct InvariantBroken(pub String);

impl Book {
    /// `buyer`'s outstanding amount and number of open advances.
    pub fn exposure(&self, buyer: u64) -> (Money, u32) {
        self.outstanding
            .get(&buyer)
            .copied()
            .unwrap_or((Money::ZERO, 0))
    }

    /// Buyers with at least one open advance, and what each owes.
    pub fn open(&self) -> impl Iterator<Item = (u64, Money)> + '_ {
        self.outstanding.iter().map(|(b, (m, _))| (*b, *m))
    }

    /// What the platform advanced on `day` (its own time zone).
    pub fn advanced_on(&self, day: NaiveDate) -> Money {
        self.by_day.get(&day).copied().unwrap_or_default()
    }

    /// Whether `buyer` lost an advance at or after `rated_as_of` (when their star's
    /// rating stopped seeing); `None`: unknown, so no loss is held against them.
    pub fn loss_since(&self, buyer: u64, rated_as_of: Option<DateTime<Utc>>) -> bool {
        match (self.last_loss.get(&buyer), rated_as_of) {
            (Some(loss), Some(cutoff)) => *loss >= cutoff,
            _ => false,
        }
    }

    /// The ledger's view of `buyer` on `day` for the policy. What the book does not hold
    /// (whether the order was refunded, whether the tracking number backs another
    /// return's advance) the store looks up and passes in.
    pub fn view(
        &self,
        buyer: u64,
        day: NaiveDate,
        rated_as_of: Option<DateTime<Utc>>,
        order_already_refunded: bool,
        tracking_number_reused: bool,
    ) -> LedgerView {
        LedgerView {
            outstanding: self.exposure(buyer).0,
            advanced_today: self.advanced_on(day),
            order_already_refunded,
            tracking_number_reused,
            loss_since_rating: self.loss_since(buyer, rated_as_of),
            // Refund-only totals are read by the store (index look-ups) and set on
            // the view it passes: the book holds advances, not history.
            refund_only_30_days: Money::ZERO,
            refund_only_today: Money::ZERO,
        }
    }

    /// `buyer`'s latest loss, if any.
    pub fn last_loss(&self, buyer: u64) -> Option<DateTime<Utc>> {
        self.last_loss.get(&buyer).copied()
    }

    /// Puts one buyer's exposure as a store read it (a shared store keeps the book in
    /// rows and brings into memory only the buyer a command is about). An outstanding
    /// amount with no open advance, or open advances owing nothing, is refused.
    pub fn restore_buyer(
        &mut self,
        buyer: u64,
        outstanding: Money,
        open: u32,
        last_loss: Option<DateTime<Utc>>,
    ) -> Result<(), InvariantBroken> {
        if (open == 0) != (outstanding == Money::ZERO) {
            return Err(InvariantBroken(format!(
                "buyer {buyer} is recorded owing {outstanding} in {open} open advances"
            )));
        }
        if open == 0 {
            self.outstanding.remove(&buyer);
        } else {
            self.outstanding.insert(buyer, (outstanding, open));
        }
        match last_loss {
            Some(at) => {
                self.last_loss.insert(buyer, at);
            }
            None => {
                self.last_loss.remove(&buyer);
            }
        }
        Ok(())
    }

    /// Puts one day's advanced total as a store read it.
    pub fn restore_day(&mut self, day: NaiveDate, advanced: Money) {
        self.by_day.insert(day, advanced);
    }

    /// Applies a move's effect on the money (an advance on `day`, a settlement; the
    /// other effects are rows only), then checks the invariants of what it touched, in
    /// release builds too. A broken invariant is an error, never clamped: the records
    /// are wrong, and the store stops moving money until someone looks.
    pub fn apply(&mut self, effect: &Effect, day: NaiveDate) -> Result<(), InvariantBroken> {
        let buyer = match effect {
            Effect::Advance { buyer, amount, .. } => {
                self.add_advance(buyer.0, *amount, day)?;
                buyer.0
            }
            Effect::Settle {
                buyer,
                amount,
                loss,
                at,
                ..
            } => {
                self.settle(buyer.0, *amount, *loss, *at)?;
                buyer.0
            }
            Effect::TrackingRefused { .. }
            | Effect::Kept { .. }
            | Effect::ReleasedByReviewer { .. }
            | Effect::OutcomeCorrected { .. } => return Ok(()),
        };
        self.check(buyer)
    }

    /// The book's invariant for `buyer`: a buyer it holds owes something, in at least
    /// one open advance (`Money` is never negative, so nothing else can go wrong in
    /// one entry; that what a buyer owes is the sum of their open advances is held by
    /// the property test below and by the stores' `check_invariants` on the records).
    pub fn check(&self, buyer: u64) -> Result<(), InvariantBroken> {
        if let Some((owed, open)) = self.outstanding.get(&buyer)
            && (*open == 0 || *owed == Money::ZERO)
        {
            return Err(InvariantBroken(format!(
                "buyer {buyer} is held owing {owed} in {open} open advances"
            )));
        }
        Ok(())
    }

    /// Counts a new advance of `amount` to `buyer` on `day`; an amount that is not
    /// positive is refused and changes nothing.
    fn add_advance(
        &mut self,
        buyer: u64,
        amount: Money,
        day: NaiveDate,
    ) -> Result<(), InvariantBroken> {
        if amount == Money::ZERO {
            return Err(InvariantBroken(format!(
                "an advance of {amount} to buyer {buyer}"
            )));
        }
        let e = self.outstanding.entry(buyer).or_insert((Money::ZERO, 0));
        e.0 = e.0 + amount;
        e.1 += 1;
        let d = self.by_day.entry(day).or_default();
        *d = *d + amount;
        Ok(())
    }

    /// Settles one of `buyer`'s advances, of `amount`, with an outcome that is a loss
    /// (`loss`, at `at`) or not. Returns what the buyer still owes. The invariant
    /// (outstanding = the sum of open advances) is checked, never clamped; on error the
    /// book is unchanged.
    fn settle(
        &mut self,
        buyer: u64,
        amount: Money,
        loss: bool,
        at: DateTime<Utc>,
    ) -> Result<Money, InvariantBroken> {
        let (owed, open) = self.exposure(buyer);
        let left = owed
            .checked_sub(amount)
            .filter(|_| open > 0)
            .ok_or_else(|| {
                InvariantBroken(format!(
                    "buyer {buyer} owes {owed} in {open} open advances, less than the {amount} being settled"
                ))
            })?;
        if open == 1 {
            if left != Money::ZERO {
                return Err(InvariantBroken(format!(
                    "buyer {buyer} would owe {left} with no open advance"
                )));
            }
            self.outstanding.remove(&buyer);
        } else {
            self.outstanding.insert(buyer, (left, open - 1));
        }
        if loss {
            self.note_loss(buyer, at);
        }
        Ok(left)
    }

    /// Sets `buyer`'s latest loss as the records now say (a loss corrected away by a
    /// case leaves the one before it, or none).
    pub fn set_last_loss(&mut self, buyer: u64, latest: Option<DateTime<Utc>>) {
        match latest {
            Some(at) => self.last_loss.insert(buyer, at),
            None => self.last_loss.remove(&buyer),
        };
    }

    /// Records a loss of `buyer`'s at `at`, keeping the latest (also used to rebuild the
    /// book from a store's records).
    pub fn note_loss(&mut self, buyer: u64, at: DateTime<Utc>) {
        let e = self.last_loss.entry(buyer).or_insert(at);
        *e = (*e).max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BuyerId;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 7, 1, hour, 0, 0).unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
    }

    fn settle(buyer: u64, amount: Money, loss: bool, at: DateTime<Utc>) -> Effect {
        Effect::Settle {
            buyer: BuyerId(buyer),
            amount,
            outcome: if loss {
                crate::domain::Outcome::ReceivedMismatch
            } else {
                crate::domain::Outcome::ReceivedOk
            },
            at,
            loss,
        }
    }

    #[test]
    fn an_advance_of_nothing_is_an_invariant_broken_and_changes_nothing() {
        let mut book = Book::default();
        let e = Effect::Advance {
            buyer: BuyerId(1),
            amount: Money::ZERO,
            tracking: "SF".into(),
            shipped_at: at(1),
        };
        assert!(book.apply(&e, day()).is_err());
        assert_eq!(book, Book::default());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Advance {
            buyer: u64,
            cents: u64,
        },
        /// Settle the buyer's `nth` open advance (if any), as a loss or not.
        Settle {
            buyer: u64,
            nth: usize,
            loss: bool,
            hour: u32,
        },
        /// Settle an amount the buyer does not owe.
        Overdraw {
            buyer: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..3u64, 1..100_000u64).prop_map(|(buyer, cents)| Op::Advance { buyer, cents }),
            (0..3u64, 0..4usize, any::<bool>(), 0..24u32).prop_map(|(buyer, nth, loss, hour)| {
                Op::Settle {
                    buyer,
                    nth,
                    loss,
                    hour,
                }
            }),
            (0..3u64).prop_map(|buyer| Op::Overdraw { buyer }),
        ]
    }

    proptest! {
        /// Against a list of open advances and of losses: what each buyer owes is the sum
        /// of their open advances, the day's total only grows, a settlement the records
        /// cannot back fails and changes nothing, and the loss hold sees the latest loss.
        #[test]
        fn the_book_keeps_the_sums_of_its_open_advances(ops in prop::collection::vec(op(), 1..60)) {
            let mut book = Book::default();
            let mut open: Vec<(u64, Money)> = Vec::new();
            let mut losses: Vec<(u64, DateTime<Utc>)> = Vec::new();
            let mut today = Money::ZERO;
            for op in ops {
                match op {
                    Op::Advance { buyer, cents } => {
                        let m = Money::from_cents(cents);
                        book.apply(&Effect::Advance { buyer: BuyerId(buyer), amount: m, tracking: String::new(), shipped_at: at(1) }, day()).unwrap();
                        open.push((buyer, m));
                        today = today + m;
                    }
                    Op::Settle { buyer, nth, loss, hour } => {
                        let mine: Vec<usize> = open
                            .iter()
                            .enumerate()
                            .filter(|(_, (b, _))| *b == buyer)
                            .map(|(i, _)| i)
                            .collect();
                        let Some(&i) = mine.get(nth % mine.len().max(1)) else { continue };
                        let (_, m) = open.remove(i);
                        book.apply(&settle(buyer, m, loss, at(hour)), day()).unwrap();
                        if loss {
                            losses.push((buyer, at(hour)));
                        }
                    }
                    Op::Overdraw { buyer } => {
                        let before = book.clone();
                        let owed = book.exposure(buyer).0;
                        let more = owed + Money::from_cents(1);
                        prop_assert!(book.apply(&settle(buyer, more, true, at(1)), day()).is_err());
                        prop_assert_eq!(&book, &before, "a refused settlement changes nothing");
                    }
                }
                for buyer in 0..3 {
                    let mine: Vec<Money> =
                        open.iter().filter(|(b, _)| *b == buyer).map(|(_, m)| *m).collect();
                    prop_assert_eq!(
                        book.exposure(buyer),
                        (mine.iter().copied().sum::<Money>(), mine.len() as u32)
                    );
                    for cutoff in [0, 6, 12, 18, 23] {
                        let held = losses.iter().any(|(b, t)| *b == buyer && *t >= at(cutoff));
                        prop_assert_eq!(book.loss_since(buyer, Some(at(cutoff))), held);
                    }
                    prop_assert!(!book.loss_since(buyer, None), "no rating date, no hold");
                }
                prop_assert_eq!(book.advanced_on(day()), today);
            }
        }
    }
}
