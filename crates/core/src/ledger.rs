//! The ledger's pure vocabulary, shared by every store and by the batch side: where a
//! buyer's star comes from ([`StarLookup`]) and one decided return in the shape of the
//! `returns` table ([`ExportRow`]). No I/O.

use crate::domain::{
    BuyerId, Category, MerchantId, Money, OrderId, Outcome, ReturnId, ReturnReason, Star,
};
use chrono::{DateTime, Utc};

/// Where the ledger finds a buyer's current star (the service's ratings snapshot).
pub trait StarLookup: Send + Sync {
    fn star(&self, buyer: BuyerId) -> Option<Star>;
    /// From when on the stars know nothing: a loss settled at or after this instant
    /// happened after the rating (`None`: unknown, so no loss is held against a buyer).
    fn rated_as_of(&self) -> Option<DateTime<Utc>> {
        None
    }
}

/// One decided return, in the shape of the `returns` table (spec §2).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub return_id: ReturnId,
    pub order_id: OrderId,
    pub buyer_id: BuyerId,
    pub merchant_id: MerchantId,
    pub category: Category,
    pub requested_at: DateTime<Utc>,
    pub reason: ReturnReason,
    pub amount: Money,
    pub instant: bool,
    pub advanced: bool,
    /// When the parcel was handed to the courier (as the tracking call said, or when the
    /// tracking number was entered).
    pub shipped_at: Option<DateTime<Utc>>,
    pub outcome: Outcome,
    pub outcome_at: Option<DateTime<Utc>>,
}
