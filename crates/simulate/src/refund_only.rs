//! Refund without return (仅退款) in a simulation: every offer the policy makes is
//! taken at once (an upper bound: a buyer may prefer to send the parcel back), through
//! the core ledger's own keep step, so the per-buyer 30-day cap and the day's
//! refund-only budget bind as online. A kept return is never shipped, advanced or
//! settled by the history's outcome.
//!
//! Reported per scenario, in total, per star, per category and per merchant: refunds
//! without return (count and value); the return shipping they save (`parcel_cost` per
//! parcel not sent: courier, warehouse check, restocking); the **losses they would have
//! allowed** — the value kept on returns whose history outcome was a buyer loss
//! (`received_mismatch`, `not_shipped`): buyers the history caught sending nothing or
//! the wrong thing, whom refund-only pays without a parcel to check; and offers the
//! caps refused.

use fastrefund_core::domain::{Money, ReasonCode};
use serde::Serialize;
use std::collections::BTreeMap;

/// Refund-only figures of one group of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct RefundOnlyTotals {
    /// Requests offered (and, in the simulation, taking) a refund without return.
    pub kept: u64,
    /// Their value: refunded with no goods back.
    pub value: Money,
    /// `kept` × the per-parcel return cost.
    pub shipping_saved: Money,
    /// Kept returns whose history outcome was a buyer loss, and their value.
    pub losses_allowed: u64,
    pub losses_allowed_value: Money,
    /// Offers refused by the buyer's 30-day cap, and by the day's refund-only budget.
    pub refused_by_buyer_cap: u64,
    pub refused_by_budget: u64,
}

impl RefundOnlyTotals {
    /// Counts one refund without return of `amount`; `loss`: its history outcome was a
    /// buyer loss.
    pub fn kept(&mut self, amount: Money, parcel_cost: Money, loss: bool) {
        self.kept += 1;
        self.value = self.value + amount;
        self.shipping_saved = self.shipping_saved + parcel_cost;
        if loss {
            self.losses_allowed += 1;
            self.losses_allowed_value = self.losses_allowed_value + amount;
        }
    }

    /// Counts the caps' refusals among a decision's reasons.
    pub fn refused(&mut self, reasons: &[ReasonCode]) {
        for r in reasons {
            match r {
                ReasonCode::RefundOnlyBuyerCap { .. } => self.refused_by_buyer_cap += 1,
                ReasonCode::RefundOnlyBudgetExhausted => self.refused_by_budget += 1,
                _ => {}
            }
        }
    }
}

/// The refund-only comparison as a Markdown section: totals, then per star, category
/// and merchant (the merchants with the most value kept in either scenario, up to
/// `top_merchants`).
pub fn markdown(
    parcel_cost: Money,
    current: (
        &RefundOnlyTotals,
        &[RefundOnlyTotals],
        &BTreeMap<String, RefundOnlyTotals>,
    ),
    candidate: (
        &RefundOnlyTotals,
        &[RefundOnlyTotals],
        &BTreeMap<String, RefundOnlyTotals>,
    ),
    merchants: (
        &BTreeMap<u64, RefundOnlyTotals>,
        &BTreeMap<u64, RefundOnlyTotals>,
    ),
    top_merchants: usize,
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "\n## Refund without return\n");
    let _ = writeln!(
        s,
        "Every offer taken at once (an upper bound), through the ledger's keep step (the \
         buyer's 30-day cap and the day's refund-only budget bind); return shipping saved \
         at {parcel_cost} per parcel not sent; losses allowed: the value kept on returns \
         whose history outcome was a buyer loss (received_mismatch, not_shipped).\n"
    );
    let _ = writeln!(s, "| | current | candidate |");
    let _ = writeln!(s, "| --- | --- | --- |");
    let (a, b) = (current.0, candidate.0);
    let rows: [(&str, String, String); 6] = [
        (
            "refunds without return",
            a.kept.to_string(),
            b.kept.to_string(),
        ),
        (
            "value refunded without return",
            a.value.to_string(),
            b.value.to_string(),
        ),
        (
            "return shipping saved",
            a.shipping_saved.to_string(),
            b.shipping_saved.to_string(),
        ),
        (
            "losses allowed (count)",
            a.losses_allowed.to_string(),
            b.losses_allowed.to_string(),
        ),
        (
            "losses allowed (value)",
            a.losses_allowed_value.to_string(),
            b.losses_allowed_value.to_string(),
        ),
        (
            "offers refused by the buyer cap / the budget",
            format!("{} / {}", a.refused_by_buyer_cap, a.refused_by_budget),
            format!("{} / {}", b.refused_by_buyer_cap, b.refused_by_budget),
        ),
    ];
    for (name, x, y) in rows {
        let _ = writeln!(s, "| {name} | {x} | {y} |");
    }
    let group =
        |s: &mut String, title: &str, rows: Vec<(String, &RefundOnlyTotals, &RefundOnlyTotals)>| {
            let _ = writeln!(s, "\n### Refund without return by {title}\n");
            let _ = writeln!(
                s,
                "| | kept (current → candidate) | value | shipping saved | losses allowed (value) |"
            );
            let _ = writeln!(s, "| --- | --- | --- | --- | --- |");
            for (k, p, q) in rows {
                let _ = writeln!(
                    s,
                    "| {k} | {} → {} | {} → {} | {} → {} | {} → {} |",
                    p.kept,
                    q.kept,
                    p.value,
                    q.value,
                    p.shipping_saved,
                    q.shipping_saved,
                    p.losses_allowed_value,
                    q.losses_allowed_value
                );
            }
        };
    let empty = RefundOnlyTotals::default();
    let stars = (0..5)
        .map(|k| {
            (
                format!("{}★", k + 1),
                current.1.get(k).unwrap_or(&empty),
                candidate.1.get(k).unwrap_or(&empty),
            )
        })
        .collect();
    group(&mut s, "star", stars);
    let cats: std::collections::BTreeSet<&String> =
        current.2.keys().chain(candidate.2.keys()).collect();
    let cats = cats
        .into_iter()
        .map(|c| {
            (
                c.clone(),
                current.2.get(c).unwrap_or(&empty),
                candidate.2.get(c).unwrap_or(&empty),
            )
        })
        .collect();
    group(&mut s, "category", cats);
    let mut ids: Vec<u64> = merchants
        .0
        .keys()
        .chain(merchants.1.keys())
        .copied()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let value = |m: &u64| {
        let x = merchants.0.get(m).map_or(Money::ZERO, |t| t.value);
        let y = merchants.1.get(m).map_or(Money::ZERO, |t| t.value);
        x.max(y)
    };
    ids.sort_by_key(|m| (std::cmp::Reverse(value(m)), *m));
    let shown = ids.len().min(top_merchants);
    let rows = ids[..shown]
        .iter()
        .map(|m| {
            (
                format!("merchant {m}"),
                merchants.0.get(m).unwrap_or(&empty),
                merchants.1.get(m).unwrap_or(&empty),
            )
        })
        .collect();
    group(
        &mut s,
        &format!(
            "merchant ({shown} of {} with the most value; all in simulation.json)",
            ids.len()
        ),
        rows,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_return_counts_its_value_its_parcel_and_a_loss_the_history_showed() {
        let mut t = RefundOnlyTotals::default();
        let m = |s: &str| s.parse::<Money>().unwrap();
        t.kept(m("19.90"), m("12.00"), false);
        t.kept(m("9.10"), m("12.00"), true);
        t.refused(&[ReasonCode::RefundOnlyBudgetExhausted]);
        assert_eq!(t.kept, 2);
        assert_eq!(t.value, m("29.00"));
        assert_eq!(t.shipping_saved, m("24.00"));
        assert_eq!((t.losses_allowed, t.losses_allowed_value), (1, m("9.10")));
        assert_eq!((t.refused_by_buyer_cap, t.refused_by_budget), (0, 1));
    }
}
