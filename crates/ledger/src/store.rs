//! The SQLite store behind the [`LedgerStore`] trait (`fastrefund-store`).

use crate::Ledger;
use chrono::{DateTime, Utc};
use fastrefund_core::cases::CaseDeadlines;
use fastrefund_core::domain::{BuyerId, Outcome, ReturnId, ReturnRequest, Star};
use fastrefund_core::policy::Policy;
use fastrefund_store::{
    BuyerExposure, CaseAnswer, CaseCall, Decided, Kept, LedgerFuture, LedgerStore, Settled,
    StarLookup, Tracked,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

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
