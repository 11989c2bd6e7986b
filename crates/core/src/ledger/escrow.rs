//! The platform's daily advance budget held in escrow, so that replicas sharing one
//! ledger spend one budget without every advance waiting for one row.
//!
//! Each replica holds a **slice** of the day's budget: it *reserves* part of what is
//! still unreserved (a short transaction on the day's row, now and then) and spends its
//! slice with no shared row at all. The invariant, per day:
//!
//! ```text
//! advanced ≤ reserved ≤ budget
//! ```
//!
//! where `reserved` is what every slice of the day holds (reserved less returned) and
//! `advanced` what the committed advances add up to. A replica never claims more than
//! its slice holds; a slice is only reserved out of what is unreserved; so the budget
//! holds across replicas, kills and database restarts, to the cent.
//!
//! - **A clean stop returns** a slice's unspent part to the day (the replica has no
//!   advance in flight by then).
//! - **A crash loses it** for the day: the slice stays reserved, never spent twice. An
//!   advance whose commit is in doubt (the answer to COMMIT was lost) stays claimed:
//!   fail closed.
//! - **The last of the budget is spendable**: a replica that lacks room reserves at
//!   least what the advance needs when that much is unreserved, so a buyer is refused
//!   only when less than their advance is left unreserved. Slices are a chunk
//!   ordinarily and shrink to a quarter of what is left as the budget runs out, so the
//!   end of the day's budget is spread in small slices rather than held by one replica.
//!
//! This module is the arithmetic, pure; the PostgreSQL store keeps a [`Slice`] per day
//! in memory and the reservations in its tables.

use crate::domain::Money;
use rust_decimal::{Decimal, RoundingStrategy};

/// One replica's slice of one day's budget.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slice {
    /// What the replica reserved for the day (and has not returned).
    pub reserved: Money,
    /// What its advances took: committed, in flight, or in doubt.
    pub claimed: Money,
}

impl Slice {
    /// What is reserved and not claimed.
    pub fn free(&self) -> Money {
        self.reserved
            .checked_sub(self.claimed)
            .unwrap_or(Money::ZERO)
    }

    /// Claims `amount` if the slice has room for it; `false` leaves it unchanged.
    #[must_use]
    pub fn claim(&mut self, amount: Money) -> bool {
        let fits = self.claimed + amount <= self.reserved;
        if fits {
            self.claimed = self.claimed + amount;
        }
        fits
    }

    /// Gives back a claim whose advance was certainly not recorded (its transaction
    /// rolled back before its COMMIT was sent, or was refused).
    pub fn release(&mut self, amount: Money) {
        self.claimed = self.claimed.checked_sub(amount).unwrap_or(Money::ZERO);
    }

    /// How much more the slice must hold for `amount` to fit (zero when it fits).
    pub fn lacks(&self, amount: Money) -> Money {
        amount.checked_sub(self.free()).unwrap_or(Money::ZERO)
    }

    /// Adds a reservation the database granted.
    pub fn grow(&mut self, granted: Money) {
        self.reserved = self.reserved + granted;
    }

    /// Hands the unspent part back (a clean stop): what the day gets back.
    pub fn give_back(&mut self) -> Money {
        let free = self.free();
        self.reserved = self.claimed;
        free
    }
}

/// What a replica lacking `need` reserves of the day's `budget`, of which
/// `reserved_total` is reserved already: at least `need`, ordinarily `chunk`, at most a
/// quarter of what is unreserved when that is more than `need`; `None` when less than
/// `need` is unreserved (the advance is refused for the day's budget).
pub fn grant(budget: Money, reserved_total: Money, need: Money, chunk: Money) -> Option<Money> {
    let unreserved = budget.checked_sub(reserved_total)?;
    if need > unreserved {
        return None;
    }
    let quarter =
        (unreserved.value() / Decimal::from(4)).round_dp_with_strategy(2, RoundingStrategy::ToZero);
    let quarter = Money::new(quarter).unwrap_or(Money::ZERO);
    Some(need.max(chunk.min(quarter)).min(unreserved))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(cents: u64) -> Money {
        Money::from_cents(cents)
    }

    #[test]
    fn a_grant_is_a_chunk_then_shrinks_and_the_last_cents_still_go() {
        // Plenty left: a chunk.
        assert_eq!(grant(m(100_000), m(0), m(500), m(5_000)), Some(m(5_000)));
        // Little left: a quarter of it, at least the need.
        assert_eq!(
            grant(m(100_000), m(90_000), m(500), m(5_000)),
            Some(m(2_500))
        );
        assert_eq!(grant(m(100_000), m(99_000), m(900), m(5_000)), Some(m(900)));
        // Exactly the need left: all of it.
        assert_eq!(grant(m(100_000), m(99_100), m(900), m(5_000)), Some(m(900)));
        // Less than the need left: nothing.
        assert_eq!(grant(m(100_000), m(99_101), m(900), m(5_000)), None);
        // Over-reserved (a budget lowered mid-day): nothing.
        assert_eq!(grant(m(100_000), m(100_001), m(1), m(5_000)), None);
    }

    /// The shared rows as the database keeps them, and each replica's slice as it keeps
    /// it in memory (`None`: the replica is down).
    #[derive(Debug)]
    struct World {
        budget: Money,
        chunk: Money,
        reserved_total: Money,
        advanced: Money,
        replicas: Vec<Option<Slice>>,
        /// Claims of advances in flight: (replica, amount).
        in_flight: Vec<(usize, Money)>,
    }

    #[derive(Debug, Clone)]
    enum Op {
        /// Replica `r` starts an advance of `cents`.
        Start { r: usize, cents: u64 },
        /// The oldest advance in flight commits (or rolls back).
        Finish { commit: bool },
        /// Replica `r` stops cleanly (its advances in flight finish first).
        Stop { r: usize },
        /// Replica `r` dies; each of its advances in flight committed or not (`commit`).
        Crash { r: usize, commit: bool },
    }

    fn op(replicas: usize) -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0..replicas, 1u64..40_000).prop_map(|(r, cents)| Op::Start { r, cents }),
            4 => any::<bool>().prop_map(|commit| Op::Finish { commit }),
            1 => (0..replicas).prop_map(|r| Op::Stop { r }),
            1 => (0..replicas, any::<bool>()).prop_map(|(r, commit)| Op::Crash { r, commit }),
        ]
    }

    impl World {
        fn finish(&mut self, i: usize, commit: bool) {
            let (r, amount) = self.in_flight.remove(i);
            if commit {
                self.advanced = self.advanced + amount;
            } else if let Some(slice) = self.replicas[r].as_mut() {
                slice.release(amount);
            }
        }

        fn check(&self) -> Result<(), TestCaseError> {
            prop_assert!(
                self.advanced <= self.reserved_total,
                "advanced {} > reserved {}",
                self.advanced,
                self.reserved_total
            );
            prop_assert!(
                self.reserved_total <= self.budget,
                "reserved {} > budget {}",
                self.reserved_total,
                self.budget
            );
            let claimed: Money = self.replicas.iter().flatten().map(|s| s.claimed).sum();
            let held: Money = self.replicas.iter().flatten().map(|s| s.reserved).sum();
            prop_assert!(held <= self.reserved_total);
            prop_assert!(claimed <= held);
            for s in self.replicas.iter().flatten() {
                prop_assert!(s.claimed <= s.reserved);
            }
            Ok(())
        }
    }

    proptest! {
        /// Random advances, commits, rollbacks, clean stops and crashes of several
        /// replicas: the day's advances never pass what is reserved, nor what is
        /// reserved the budget; and an advance is refused only when less than it needs
        /// is unreserved.
        #[test]
        fn advanced_never_passes_reserved_nor_reserved_the_budget(
            replicas in 1usize..5,
            budget in 10_000u64..400_000,
            chunk in 100u64..100_000,
            ops in proptest::collection::vec(op(4), 1..200),
        ) {
            let mut w = World {
                budget: m(budget),
                chunk: m(chunk),
                reserved_total: Money::ZERO,
                advanced: Money::ZERO,
                replicas: vec![Some(Slice::default()); replicas],
                in_flight: Vec::new(),
            };
            for op in ops {
                match op {
                    Op::Start { r, cents } => {
                        let r = r % replicas;
                        let amount = m(cents);
                        let slice = w.replicas[r].get_or_insert_with(Slice::default);
                        if !slice.claim(amount) {
                            let need = slice.lacks(amount);
                            match grant(w.budget, w.reserved_total, need, w.chunk) {
                                Some(g) => {
                                    prop_assert!(g >= need);
                                    w.reserved_total = w.reserved_total + g;
                                    slice.grow(g);
                                    prop_assert!(slice.claim(amount), "a grant of the need did not fit");
                                }
                                None => {
                                    let unreserved = w.budget.checked_sub(w.reserved_total).unwrap_or(Money::ZERO);
                                    prop_assert!(unreserved < need, "refused {amount} with {unreserved} unreserved");
                                    continue;
                                }
                            }
                        }
                        w.in_flight.push((r, amount));
                    }
                    Op::Finish { commit } => {
                        if !w.in_flight.is_empty() {
                            w.finish(0, commit);
                        }
                    }
                    Op::Stop { r } => {
                        let r = r % replicas;
                        while let Some(i) = w.in_flight.iter().position(|(x, _)| *x == r) {
                            w.finish(i, true);
                        }
                        if let Some(slice) = w.replicas[r].as_mut() {
                            let back = slice.give_back();
                            w.reserved_total = w.reserved_total.checked_sub(back).expect("returned more than reserved");
                        }
                        w.replicas[r] = Some(Slice::default());
                    }
                    Op::Crash { r, commit } => {
                        let r = r % replicas;
                        w.replicas[r] = None;
                        while let Some(i) = w.in_flight.iter().position(|(x, _)| *x == r) {
                            w.finish(i, commit);
                        }
                        // Its slice stays reserved and is never spent again.
                        w.replicas[r] = Some(Slice::default());
                    }
                }
                w.check()?;
            }
        }

        /// One replica alone spends the budget exactly as one shared total would: an
        /// advance is made if and only if the day's advances plus it fit the budget.
        #[test]
        fn one_replica_spends_exactly_the_budget(
            budget in 1u64..200_000,
            chunk in 1u64..100_000,
            amounts in proptest::collection::vec(1u64..50_000, 1..100),
        ) {
            let (budget, chunk) = (m(budget), m(chunk));
            let (mut slice, mut reserved_total, mut advanced) = (Slice::default(), Money::ZERO, Money::ZERO);
            for a in amounts.into_iter().map(m) {
                let fits = advanced + a <= budget;
                let made = slice.claim(a) || match grant(budget, reserved_total, slice.lacks(a), chunk) {
                    Some(g) => {
                        reserved_total = reserved_total + g;
                        slice.grow(g);
                        slice.claim(a)
                    }
                    None => false,
                };
                prop_assert_eq!(made, fits);
                if made {
                    advanced = advanced + a;
                }
            }
        }
    }
}
