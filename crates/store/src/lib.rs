//! The ledger as its callers see it, whichever store is behind it: the
//! [`LedgerStore`] trait, its errors ([`LedgerError`], which wraps the core's
//! [`Refusal`] rather than copying it) and its answers ([`Decided`], [`Tracked`],
//! [`Settled`], [`Kept`], [`BuyerExposure`], and the cases' calls and answers). Two
//! stores implement it: SQLite (`fastrefund-ledger`, embedded, one process) and
//! PostgreSQL (`fastrefund-pg`, shared by replicas), each depending on this crate and
//! not on the other; `fastrefund-stores` opens one by URL. The rules they apply are
//! the core's ([`fastrefund_core::ledger`]); a conformance suite runs the same command
//! sequences against both.

mod cases;

pub use cases::{CaseAnswer, CaseCall, CaseView, OutboxEvent, event_id, webhook_payload};
pub use fastrefund_core::ledger::{ExportRow, StarLookup};

use chrono::{DateTime, Utc};
use fastrefund_core::cases::{CaseDeadlines, CaseRefusal};
use fastrefund_core::domain::{
    BuyerId, Decision, Money, Outcome, ReasonCode, ReturnId, ReturnRequest, Star,
};
use fastrefund_core::ledger::{
    InvariantBroken, KeepStep, Refusal, ReturnRec, SettleStep, TrackStep,
};
use fastrefund_core::policy::Policy;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Why a ledger call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger cannot store this now: {0}")]
    Unavailable(String),
    /// The command conflicts with what is recorded, or is the caller's mistake (the
    /// core's state machine refused it).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The records disagree with themselves: money moves stop until someone looks
    /// (readiness turns false), never clamped.
    #[error("the ledger stopped moving money: {0}")]
    Broken(InvariantBroken),
    #[error("cannot open the ledger at {path}: {message}")]
    Open { path: String, message: String },
    /// A case or a move on it refused (spec §10).
    #[error(transparent)]
    Case(fastrefund_core::cases::CaseRefusal),
}

impl From<InvariantBroken> for LedgerError {
    fn from(e: InvariantBroken) -> Self {
        tracing::error!(error = %e, "ledger invariant broken; money moves stop");
        LedgerError::Broken(e)
    }
}

/// A decided return request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision_id: u64,
    pub decision: Decision,
    pub policy_version: String,
    pub model_version: String,
    /// The return was decided before; this is the recorded decision.
    pub repeated: bool,
    /// A new decision taken in shadow mode: whether the challenger's would have been the
    /// same on instant release and the advance (`None`: no challenger, or a repeat).
    pub shadow_agrees: Option<bool>,
}

/// The answer to a tracking number.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub return_id: u64,
    pub advanced: bool,
    pub amount: Money,
    pub reasons: Vec<ReasonCode>,
    pub repeated: bool,
}

impl Tracked {
    /// The answer to a tracking call on return `rid` (`rec`) that the state machine
    /// answered with `step`.
    pub fn from_step(rid: u64, rec: &ReturnRec, step: TrackStep) -> Tracked {
        match step {
            TrackStep::Repeat { amount } => Tracked::repeat(rid, amount),
            TrackStep::Advance { amount, flags } => Tracked {
                return_id: rid,
                advanced: true,
                amount,
                reasons: flags,
                repeated: false,
            },
            TrackStep::Refuse { reasons } => Tracked {
                return_id: rid,
                advanced: false,
                amount: rec.amount,
                reasons,
                repeated: false,
            },
        }
    }

    /// The answer to a tracking call that repeats a recorded advance.
    pub fn repeat(return_id: u64, amount: Money) -> Tracked {
        Tracked {
            return_id,
            advanced: true,
            amount,
            reasons: vec![],
            repeated: true,
        }
    }
}

/// The answer to an outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub return_id: u64,
    pub outcome: Outcome,
    pub amount: Money,
    /// The advance was lost (mismatch or never shipped).
    pub loss: bool,
    /// The buyer's outstanding advances after this settlement.
    pub outstanding: Money,
    pub repeated: bool,
}

impl Settled {
    /// The answer to an outcome for return `rid` that the state machine answered with
    /// `step`; `outstanding`: what the buyer owes after it.
    pub fn from_step(rid: u64, outcome: Outcome, step: SettleStep, outstanding: Money) -> Settled {
        let (amount, loss, repeated) = match step {
            SettleStep::Repeat { amount, loss } => (amount, loss, true),
            SettleStep::Settle { amount, loss } => (amount, loss, false),
        };
        Settled {
            return_id: rid,
            outcome,
            amount,
            loss,
            outstanding,
            repeated,
        }
    }
}

/// The answer to a keep call: the refund without return paid (now, or before).
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub return_id: u64,
    pub amount: Money,
    pub repeated: bool,
}

impl Kept {
    /// The answer the state machine's `step` gives for return `rid`.
    pub fn from_step(rid: u64, step: KeepStep) -> Kept {
        let (amount, repeated) = match step {
            KeepStep::Keep { amount } => (amount, false),
            KeepStep::Repeat { amount } => (amount, true),
        };
        Kept {
            return_id: rid,
            amount,
            repeated,
        }
    }
}

/// A buyer's exposure as the ledger knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerExposure {
    pub outstanding: Money,
    /// Advances not yet settled.
    pub open_advances: u32,
}

impl From<CaseRefusal> for LedgerError {
    fn from(r: CaseRefusal) -> Self {
        LedgerError::Case(r)
    }
}

/// A ledger call in flight. It owns what it needs (`'static`): a caller may drop it at
/// any await (its client went away) and the store must stay consistent.
pub type LedgerFuture<T> = Pin<Box<dyn Future<Output = Result<T, LedgerError>> + Send + 'static>>;

/// A durable ledger of decisions, advances and outcomes. Every call is idempotent by
/// `return_id`; anything that moves money is answered only once it is durable.
pub trait LedgerStore: Send + Sync + 'static {
    /// Decides a return request and records the decision (and the advance, if one is
    /// granted); a `return_id` decided before gets the recorded decision, and another
    /// request under it is refused (`ReturnIdReused`). `rated_as_of`: when the buyer's
    /// star stopped seeing (a loss since holds instant release); `shadow`: the
    /// challenger's star, to record what it would have decided.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &self,
        req: ReturnRequest,
        star: Option<Star>,
        rated_as_of: Option<DateTime<Utc>>,
        shadow: Option<Option<Star>>,
        policy: Arc<Policy>,
        model_version: String,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Decided>;

    /// A tracking number for a decided return: advance the refund if the rules allow,
    /// within the limit of the buyer's current star in `stars`.
    fn track(
        &self,
        return_id: ReturnId,
        tracking_number: String,
        shipped_at: DateTime<Utc>,
        stars: Option<Arc<dyn StarLookup>>,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Tracked>;

    /// Settles an advanced return with its outcome.
    fn settle(
        &self,
        return_id: ReturnId,
        outcome: Outcome,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Settled>;

    /// Takes the refund-without-return offer of a decided return (spec §11): refused
    /// when no offer was made or the parcel is on its way; the buyer's 30-day cap and
    /// the day's refund-only budget are checked again and charged, and the return
    /// settled as `refunded_without_return`, in one command answered once durable. A
    /// repeat answers the same and pays nothing twice.
    fn keep(
        &self,
        return_id: ReturnId,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Kept>;

    /// A buyer's outstanding advances, as committed.
    fn exposure(&self, buyer: BuyerId) -> LedgerFuture<BuyerExposure>;

    /// Whether the store can record now, for `/readyz`: a fault it knows of is checked
    /// again (a probe write, a round trip), so readiness comes back by itself when the
    /// disk or the database does.
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

    /// What and where the store is, for the log (no secrets).
    fn describe(&self) -> String;

    /// The recorded answer to `req`, if its `return_id` was decided before, deciding
    /// nothing (another request under that id is refused, `ReturnIdReused`); `None`
    /// when it never was. What the service answers a retry with while it has no
    /// ratings snapshot to decide a new request by.
    fn replay_decision(&self, req: ReturnRequest) -> LedgerFuture<Option<Decided>>;

    /// The recorded answer to a tracking call, if the return was advanced on
    /// `tracking_number` before (another tracking number: `TrackingConflict`), advancing
    /// nothing; `None` otherwise.
    fn replay_tracking(
        &self,
        return_id: ReturnId,
        tracking_number: String,
    ) -> LedgerFuture<Option<Tracked>>;

    /// A call on cases (spec §10): open, move, read; a move and its effects on the
    /// money commit together, and are answered once durable.
    fn cases(
        &self,
        call: CaseCall,
        deadlines: CaseDeadlines,
        now: DateTime<Utc>,
    ) -> LedgerFuture<CaseAnswer>;

    /// A clean stop, once no call is in flight: gives back what this process holds of
    /// shared resources (the PostgreSQL store's slices of the daily budget). A store
    /// that holds none has nothing to do. Not calling it (a crash) loses nothing
    /// recorded; what was held stays unspent.
    fn close(&self) -> LedgerFuture<()> {
        Box::pin(async { Ok(()) })
    }
}
