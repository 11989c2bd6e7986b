//! One return of a history as its tables record it, joined with its order: what the
//! replay client sends to a running service and what `simulate` replays through the
//! policy. The batch side reads it from a history (and refuses a row it cannot read,
//! naming the return and the column); nothing here reads a file.

use super::Outcome;

/// One return of the history, as a refund service would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryReturn {
    pub return_id: u64,
    pub order_id: u64,
    pub buyer_id: u64,
    pub merchant_id: u64,
    pub category: String,
    /// Cents.
    pub amount_cents: u64,
    pub reason: String,
    /// µs since the epoch.
    pub delivered_at: i64,
    /// µs since the epoch.
    pub requested_at: i64,
    /// The buyer entered a tracking number (shipped, or advanced on a fake one).
    pub tracking: bool,
    /// The history advanced the refund.
    pub advanced: bool,
    /// µs since the epoch.
    pub shipped_at: Option<i64>,
    /// The history's outcome and when it was known, µs since the epoch (`None` =
    /// pending).
    pub outcome: Option<(Outcome, i64)>,
}
