//! The ledger's money core, pure and shared by every store: the [`Book`] of open
//! exposure, advances per day and losses, with the invariant it checks after every
//! effect it applies; a return's money lifecycle as one state machine, every move
//! (decide, track, settle, a reviewer's release, a case's correction) a pure step
//! ([`machine`]); a ledger in memory that
//! runs them ([`MemoryLedger`], what `simulate` replays through); the daily budget
//! held in escrow by replicas ([`escrow`]); where a buyer's star
//! comes from ([`StarLookup`]); and one decided return in the shape of the `returns`
//! table ([`ExportRow`]). No I/O: a store reads what a command needs, calls these, and
//! writes what they decided.

mod book;
pub mod escrow;
pub mod machine;
mod memory;
#[cfg(any(test, feature = "model"))]
pub mod model;

pub use book::{Book, InvariantBroken};
pub use machine::{
    Advance, DecideStep, Effect, KeepStep, Moved, NewDecision, Refusal, ReturnRec, ReturnState,
    SettleStep, TrackStep, correct_step, decide_step, decided, keep_step, release_step,
    replay_track, same_request, settle_step, shadow_record, track_step,
};
pub use memory::{MemoryError, MemoryLedger};

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
