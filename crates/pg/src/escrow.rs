//! A day's budget in escrow (the arithmetic and its invariant, `spent ≤ reserved ≤
//! budget`, are [`fastrefund_core::ledger::escrow`]'s). Two budgets use it, each with
//! its own tables ([`Tables`]): the advances' (`daily`, `budget_slices`) and the
//! refunds without return's (`refund_only_days`, `refund_only_slices`).
//!
//! A replica keeps its slice of each day in memory and its reservations in two tables:
//! `daily.reserved` (what every slice of the day holds, with what was advanced before
//! slices existed) and `budget_slices` (one row per replica and day). An advance claims
//! from the slice in memory and records its `slice_id` beside it: no shared row. Only a
//! reservation locks the day's row, in a short transaction of its own, on a connection
//! of its own (a command waiting for a reservation holds a pooled connection; the
//! reservation must not wait for one), one reservation at a time per replica.
//!
//! A claim lives with its command's transaction ([`Claims`]): kept once the COMMIT is
//! answered, given back when the transaction certainly did not commit (an error before
//! the COMMIT was sent, or a COMMIT refused), and kept, in doubt, when the COMMIT was
//! sent and its answer lost: fail closed, the budget is never spent twice.

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use fastrefund_core::domain::Money;
use fastrefund_core::ledger::escrow::{Slice, grant};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// This replica's slice of one day.
#[derive(Debug, Default)]
struct DaySlice {
    /// Its row of `budget_slices`, once something was reserved.
    slice_id: Option<i64>,
    slice: Slice,
}

/// A claim on this replica's slice of `day`, for one advance.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claim {
    pub day: NaiveDate,
    pub amount: Money,
    pub slice_id: i64,
}

/// Where one budget's reservations live: the day's row (its `reserved` total) and the
/// replicas' slice rows. Names written here, never taken from input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tables {
    pub days: &'static str,
    pub slices: &'static str,
    /// The payments, each with its `amount`, `local_date` and `slice_id`.
    pub paid: &'static str,
    /// The day row's column of what was paid before slices existed (reserved for good).
    pub before: &'static str,
    /// What the budget pays, for the log.
    pub what: &'static str,
}

/// The advances' budget.
pub(crate) const ADVANCES: Tables = Tables {
    days: "daily",
    slices: "budget_slices",
    paid: "advances",
    before: "advanced",
    what: "advance",
};

/// The refunds without return's budget (issue 27).
pub(crate) const REFUND_ONLY: Tables = Tables {
    days: "refund_only_days",
    slices: "refund_only_slices",
    paid: "kept",
    before: "kept_before",
    what: "refund without return",
};

/// This replica's slices, and how it reserves more.
pub(crate) struct Escrow {
    tables: Tables,
    days: Mutex<HashMap<NaiveDate, DaySlice>>,
    /// One reservation at a time: a command that finds the slice short waits for the
    /// reservation under way, then tries its slice again.
    reserving: tokio::sync::Mutex<()>,
    /// Connections for reservations and returns only.
    pool: Pool,
    /// Who holds the slices, for an operator reading `budget_slices`.
    holder: String,
    /// A day's budget is reserved in slices of about `1 / slices` of it.
    slices: u32,
}

/// Why a reservation did not happen.
pub(crate) enum ReserveError {
    /// Less than the advance needs is unreserved: refuse it for the day's budget.
    Exhausted,
    /// The database did not answer or refused: the command fails as unavailable.
    Db(String),
}

impl Escrow {
    pub(crate) fn new(pool: Pool, slices: u32, tables: Tables) -> Escrow {
        let holder = format!(
            "pid {} on {} since {}",
            std::process::id(),
            std::env::var("HOSTNAME").unwrap_or_else(|_| "?".into()),
            Utc::now().format("%Y-%m-%dT%H:%M:%SZ")
        );
        Escrow {
            tables,
            days: Mutex::new(HashMap::new()),
            reserving: tokio::sync::Mutex::new(()),
            pool,
            holder,
            slices: slices.max(1),
        }
    }

    /// What the budget pays, for messages.
    pub(crate) fn what(&self) -> &'static str {
        self.tables.what
    }

    fn days(&self) -> std::sync::MutexGuard<'_, HashMap<NaiveDate, DaySlice>> {
        self.days.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `amount` of `day`'s budget for an advance, reserving more of it when the
    /// slice is short.
    pub(crate) async fn claim(
        &self,
        day: NaiveDate,
        amount: Money,
        budget: Money,
        now: DateTime<Utc>,
    ) -> Result<Claim, ReserveError> {
        if let Some(c) = self.try_claim(day, amount) {
            return Ok(c);
        }
        let _one = self.reserving.lock().await;
        loop {
            // Another command's reservation may have made room while this one waited.
            if let Some(c) = self.try_claim(day, amount) {
                return Ok(c);
            }
            let (slice_id, need) = {
                let mut days = self.days();
                let d = days.entry(day).or_default();
                (d.slice_id, d.slice.lacks(amount))
            };
            let (slice_id, granted) = self.reserve(day, slice_id, need, budget, now).await?;
            let mut days = self.days();
            let d = days.entry(day).or_default();
            d.slice_id = Some(slice_id);
            d.slice.grow(granted);
            if d.slice.claim(amount) {
                return Ok(Claim {
                    day,
                    amount,
                    slice_id,
                });
            }
            // Commands claiming meanwhile took the room: reserve again.
        }
    }

    /// What the day's budget has left for this replica, as far as it knows without a
    /// lock: its slice's free part and what is unreserved (`reserved_total` as read).
    /// An advance of more is refused for the budget; one of less may still be, if
    /// another replica reserves first (then [`Escrow::claim`] says so).
    pub(crate) fn room(&self, day: NaiveDate, budget: Money, reserved_total: Money) -> Money {
        let free = self
            .days()
            .get(&day)
            .map_or(Money::ZERO, |d| d.slice.free());
        free + budget.checked_sub(reserved_total).unwrap_or(Money::ZERO)
    }

    fn try_claim(&self, day: NaiveDate, amount: Money) -> Option<Claim> {
        let mut days = self.days();
        let d = days.get_mut(&day)?;
        let slice_id = d.slice_id?;
        d.slice.claim(amount).then_some(Claim {
            day,
            amount,
            slice_id,
        })
    }

    /// Gives a claim back: its advance was certainly not recorded.
    pub(crate) fn release(&self, claim: &Claim) {
        if let Some(d) = self.days().get_mut(&claim.day) {
            d.slice.release(claim.amount);
        }
    }

    /// Reserves at least `need` of `day`'s `budget` for this replica, in one short
    /// transaction that locks the day's row: what [`grant`] gives, added to the day's
    /// total and to this replica's slice row (made on its first reservation).
    async fn reserve(
        &self,
        day: NaiveDate,
        slice_id: Option<i64>,
        need: Money,
        budget: Money,
        now: DateTime<Utc>,
    ) -> Result<(i64, Money), ReserveError> {
        let db = |e: tokio_postgres::Error| ReserveError::Db(crate::db_error(&e));
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| ReserveError::Db(e.to_string()))?;
        let Tables { days, slices, .. } = self.tables;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            &format!(
                "INSERT INTO {days} (day, reserved) VALUES ($1, 0) ON CONFLICT (day) DO NOTHING"
            ),
            &[&day],
        )
        .await
        .map_err(db)?;
        let reserved: Decimal = tx
            .query_one(
                &format!("SELECT reserved FROM {days} WHERE day = $1 FOR UPDATE"),
                &[&day],
            )
            .await
            .map_err(db)?
            .get(0);
        let reserved = Money::new(reserved)
            .map_err(|e| ReserveError::Db(format!("corrupt {days}.reserved: {e}")))?;
        let chunk = (budget.value() / Decimal::from(self.slices))
            .round_dp_with_strategy(2, RoundingStrategy::ToZero);
        let chunk = Money::new(chunk).unwrap_or(Money::ZERO);
        let Some(granted) = grant(budget, reserved, need, chunk) else {
            return Err(ReserveError::Exhausted);
        };
        tx.execute(
            &format!("UPDATE {days} SET reserved = reserved + $2 WHERE day = $1"),
            &[&day, &granted.value()],
        )
        .await
        .map_err(db)?;
        let slice_id: i64 = match slice_id {
            Some(id) => {
                tx.execute(
                    &format!("UPDATE {slices} SET reserved = reserved + $2 WHERE slice_id = $1"),
                    &[&id, &granted.value()],
                )
                .await
                .map_err(db)?;
                id
            }
            None => tx
                .query_one(
                    &format!(
                        "INSERT INTO {slices} (day, holder, reserved, opened_at)
                         VALUES ($1, $2, $3, $4) RETURNING slice_id"
                    ),
                    &[
                        &day,
                        &self.holder,
                        &granted.value(),
                        &now.timestamp_micros(),
                    ],
                )
                .await
                .map_err(db)?
                .get(0),
        };
        // A COMMIT whose answer is lost counts as refused: what it reserved, if
        // anything, stays unspent for the day (fail closed).
        tx.commit().await.map_err(db)?;
        tracing::debug!(%day, %granted, slice_id, budget = self.tables.what, "budget slice reserved");
        Ok((slice_id, granted))
    }

    /// Returns the unspent part of every slice to its day (a clean stop: call it once
    /// no command is in flight; a claim still held stays spent).
    pub(crate) async fn give_back(&self, now: DateTime<Utc>) -> Result<Money, String> {
        let _one = self.reserving.lock().await;
        let backs: Vec<(NaiveDate, i64, Money)> = self
            .days()
            .iter_mut()
            .filter_map(|(day, d)| Some((*day, d.slice_id?, d.slice.give_back())))
            .filter(|(_, _, back)| *back > Money::ZERO)
            .collect();
        let mut total = Money::ZERO;
        let Tables { days, slices, .. } = self.tables;
        let mut client = self.pool.get().await.map_err(|e| e.to_string())?;
        for (day, slice_id, back) in backs {
            let tx = client.transaction().await.map_err(|e| e.to_string())?;
            tx.execute(
                &format!("UPDATE {days} SET reserved = reserved - $2 WHERE day = $1"),
                &[&day, &back.value()],
            )
            .await
            .map_err(|e| crate::db_error(&e))?;
            tx.execute(
                &format!(
                    "UPDATE {slices} SET reserved = reserved - $2, closed_at = $3
                     WHERE slice_id = $1"
                ),
                &[&slice_id, &back.value(), &now.timestamp_micros()],
            )
            .await
            .map_err(|e| crate::db_error(&e))?;
            tx.commit().await.map_err(|e| crate::db_error(&e))?;
            total = total + back;
        }
        Ok(total)
    }
}

/// Where the records break the escrow of `tables`' budget, if they do: a day whose
/// payments pass what is reserved for it, a day whose reserved total is not what was
/// paid before slices plus what its slices hold, or a slice whose payments pass it.
pub(crate) async fn broken(
    client: &tokio_postgres::Client,
    tables: Tables,
) -> Result<Option<String>, String> {
    let Tables {
        days,
        slices,
        paid,
        before,
        what,
    } = tables;
    let rows = client
        .query(
            &format!(
                "WITH spent AS (
                    SELECT local_date AS day, SUM(amount) AS paid FROM {paid} GROUP BY local_date),
                 held AS (
                    SELECT day, SUM(reserved) AS reserved FROM {slices} GROUP BY day)
                 SELECT COALESCE(d.day, s.day)::TEXT, s.paid, d.reserved, d.{before}, h.reserved
                 FROM {days} d FULL JOIN spent s ON s.day = d.day
                 LEFT JOIN held h ON h.day = COALESCE(d.day, s.day)
                 WHERE COALESCE(s.paid, 0) > COALESCE(d.reserved, 0)
                    OR COALESCE(d.reserved, 0) <> COALESCE(d.{before}, 0) + COALESCE(h.reserved, 0)
                 UNION ALL
                 SELECT 'slice ' || b.slice_id, SUM(p.amount), b.reserved, NULL, NULL
                 FROM {slices} b JOIN {paid} p ON p.slice_id = b.slice_id
                 GROUP BY b.slice_id, b.reserved HAVING SUM(p.amount) > b.reserved"
            ),
            &[],
        )
        .await
        .map_err(|e| crate::db_error(&e))?;
    Ok(rows.first().map(|r| {
        format!(
            "{what} budget escrow broken on {}: paid {:?}, reserved {:?} (before slices {:?}, in slices {:?})",
            r.get::<_, String>(0),
            r.get::<_, Option<Decimal>>(1),
            r.get::<_, Option<Decimal>>(2),
            r.get::<_, Option<Decimal>>(3),
            r.get::<_, Option<Decimal>>(4),
        )
    }))
}

/// The claims a command's transaction holds, and what becomes of them when it ends.
#[derive(Default)]
pub(crate) struct Claims {
    held: Mutex<Vec<Claim>>,
}

impl Claims {
    pub(crate) fn hold(&self, c: Claim) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(c);
    }

    /// The budget slice of the last claim, recorded beside the advance.
    pub(crate) fn slice_id(&self) -> Option<i64> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .map(|c| c.slice_id)
    }

    /// Settles the claims when the transaction is over: `committed`, kept as spent;
    /// certainly not committed, given back; in doubt, kept (fail closed).
    pub(crate) fn settle(&self, escrow: &Arc<Escrow>, fate: Fate) {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(PoisonError::into_inner));
        match fate {
            Fate::Committed => {}
            Fate::RolledBack => held.iter().for_each(|c| escrow.release(c)),
            Fate::InDoubt => {
                for c in &held {
                    tracing::warn!(day = %c.day, amount = %c.amount, slice_id = c.slice_id,
                        "a COMMIT that spent a budget went unanswered: its claim stays spent");
                }
            }
        }
    }
}

/// How a transaction ended, for its claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    Committed,
    RolledBack,
    InDoubt,
}
