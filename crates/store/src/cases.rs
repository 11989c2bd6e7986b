//! The calls on cases and their answers (spec §10), as every store takes them, and
//! what a webhook receiver gets.

use crate::LedgerError;
use chrono::{DateTime, Utc};
use fastrefund_core::cases::{Case, CaseEvent, Command, Opening};
use fastrefund_core::domain::BuyerId;

/// A call on cases.
#[derive(Debug, Clone)]
pub enum CaseCall {
    /// Opens a case.
    Open(Opening),
    /// A move on case `case_id`.
    Step { case_id: u64, command: Command },
    /// One case with its trail.
    Get { case_id: u64 },
    /// A buyer's cases, newest first.
    OfBuyer(BuyerId),
    /// The review queue: open cases (or those in `state`), breached first, then the
    /// soonest `decide_by`.
    Queue { state: Option<String> },
    /// Every decided case, oldest first (for `export-cases`).
    Decided,
    /// The record of a case's return (its decision's star, amount, advance, outcome and
    /// correction), for the reviewer's page; `None` when it was never decided.
    Record(fastrefund_core::domain::ReturnId),
    /// Every decided `rating` case, oldest first: the service keeps the strikes among
    /// them ([`fastrefund_core::cases::Strike::of`]) to correct the stars it serves.
    DecidedRating,
    /// Claims up to `limit` webhook events due at `now`: each is leased for `lease`
    /// (not due again for that long), so that replicas sharing a ledger rarely send
    /// the same event at once; receivers deduplicate by `event_id` all the same.
    OutboxDue {
        limit: usize,
        lease: chrono::Duration,
    },
    /// What became of a claimed event: delivered to every receiver, or to be tried
    /// again at `retry_at`.
    OutboxDone {
        event_id: String,
        delivered: bool,
        retry_at: DateTime<Utc>,
    },
}

/// A webhook event waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub event_id: String,
    /// The JSON to send ([`webhook_payload`]).
    pub body: String,
    /// Deliveries tried so far.
    pub attempts: u32,
}

/// A case as a call answers it: the case, its trail, and whether the call repeated an
/// earlier move.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseView {
    #[serde(flatten)]
    pub case: Case,
    pub events: Vec<CaseEvent>,
    #[serde(skip)]
    pub repeated: bool,
}

/// What a case call answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseAnswer {
    One(CaseView),
    Many(Vec<Case>),
    Outbox(Vec<OutboxEvent>),
    /// A return's record ([`CaseCall::Record`]).
    Record(Option<fastrefund_core::ledger::ReturnRec>),
    Done,
}

/// The stable id of a case's `seq`th event, for a webhook receiver to deduplicate.
pub fn event_id(case_id: u64, seq: u64) -> String {
    format!("case-{case_id}-{seq}")
}

/// The JSON a webhook receiver gets for one event of a case.
pub fn webhook_payload(case: &Case, seq: u64, e: &CaseEvent) -> Result<String, LedgerError> {
    serde_json::to_string(&serde_json::json!({
        "event_id": event_id(case.case_id, seq),
        "type": format!("case.{}", e.what),
        "case_id": case.case_id,
        "kind": case.kind,
        "state": case.state.name(),
        "verdict": case.state.verdict().map(|v| v.as_str()),
        "buyer_id": case.buyer_id.0,
        "return_id": case.return_id.map(|r| r.0),
        "order_id": case.order_id.map(|o| o.0),
        "respond_by": case.respond_by,
        "decide_by": case.decide_by,
        "at": e.at,
        "actor": e.actor,
        "statement": e.statement,
    }))
    .map_err(|e| LedgerError::Unavailable(e.to_string()))
}
