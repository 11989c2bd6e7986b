//! The ledger as the service sees it: one trait, [`LedgerStore`], with two stores
//! behind it — SQLite ([`crate::Ledger`], embedded, one process) and PostgreSQL
//! (`fastrefund-pg`, shared by replicas) — that apply the same rules, the core's
//! ([`fastrefund_core::ledger`]). A conformance suite runs the same command sequences
//! against both.

use crate::{
    BuyerExposure, CaseAnswer, CaseCall, Decided, Kept, Ledger, LedgerError, Settled, StarLookup,
    Tracked,
};
use chrono::{DateTime, Utc};
use fastrefund_core::cases::CaseDeadlines;
use fastrefund_core::domain::{BuyerId, Outcome, ReturnId, ReturnRequest, Star};
use fastrefund_core::policy::Policy;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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

impl LedgerStore for Ledger {
    fn decide(
        &self,
        req: ReturnRequest,
        star: Option<Star>,
        rated_as_of: Option<DateTime<Utc>>,
        shadow: Option<Option<Star>>,
        policy: Arc<Policy>,
        model_version: String,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Decided> {
        let this = self.clone();
        Box::pin(async move {
            this.decide_with_shadow(req, star, rated_as_of, shadow, policy, model_version, now)
                .await
        })
    }

    fn track(
        &self,
        return_id: ReturnId,
        tracking_number: String,
        shipped_at: DateTime<Utc>,
        stars: Option<Arc<dyn StarLookup>>,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Tracked> {
        let this = self.clone();
        Box::pin(async move {
            Ledger::track(
                &this,
                return_id,
                tracking_number,
                shipped_at,
                stars,
                policy,
                now,
            )
            .await
        })
    }

    fn settle(
        &self,
        return_id: ReturnId,
        outcome: Outcome,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Settled> {
        let this = self.clone();
        Box::pin(async move { Ledger::settle(&this, return_id, outcome, at, now).await })
    }

    fn keep(
        &self,
        return_id: ReturnId,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Kept> {
        let this = self.clone();
        Box::pin(async move { Ledger::keep(&this, return_id, policy, now).await })
    }

    fn exposure(&self, buyer: BuyerId) -> LedgerFuture<BuyerExposure> {
        let this = self.clone();
        Box::pin(async move { Ledger::exposure(&this, buyer).await })
    }

    fn cases(
        &self,
        call: CaseCall,
        deadlines: CaseDeadlines,
        now: DateTime<Utc>,
    ) -> LedgerFuture<CaseAnswer> {
        let this = self.clone();
        Box::pin(async move { Ledger::cases(&this, call, deadlines, now).await })
    }

    fn replay_decision(&self, req: ReturnRequest) -> LedgerFuture<Option<Decided>> {
        let this = self.clone();
        Box::pin(async move { Ledger::replay_decision(&this, req).await })
    }

    fn replay_tracking(
        &self,
        return_id: ReturnId,
        tracking_number: String,
    ) -> LedgerFuture<Option<Tracked>> {
        let this = self.clone();
        Box::pin(async move { Ledger::replay_tracking(&this, return_id, tracking_number).await })
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let this = self.clone();
        Box::pin(async move {
            if this.health().is_ok() {
                return Ok(());
            }
            // A probe write may block on the disk: off the runtime's threads.
            tokio::task::spawn_blocking(move || this.probe())
                .await
                .map_err(|e| format!("the probe did not finish: {e}"))?
        })
    }

    fn describe(&self) -> String {
        format!("SQLite at {}", self.path().display())
    }
}
