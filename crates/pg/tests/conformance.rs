#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ledger stores' conformance suite: a model-based property test. Random
//! sequences of decide, track, settle, exposure, restart and cancelled calls run
//! through the `LedgerStore` trait against each store — SQLite (group commit) always,
//! PostgreSQL when `FASTREFUND_TEST_PG` names a server (CI always sets it; elsewhere the
//! PostgreSQL run says it was skipped) — and against a plain reference model that keeps
//! the money in a few maps. Every answer must agree, and after every step each buyer's outstanding
//! amount must equal the model's (the sum of their open advances) and stay within the
//! limit of their star; at the end `check_invariants` reads the file itself.
//!
//! The model shares only the pure rules (`policy::decide`, `advance_refusals`,
//! `advance_flags`) with the ledger; its bookkeeping (who owes what, what was recorded,
//! what a retry gets) is written from the spec, independently of the ledger's.
//!
//! The core's in-memory ledger (`MemoryLedger`, what `simulate` replays through) runs
//! the same sequences and must answer as the reference model too (decision ids and the
//! `repeated` flag aside, which only a durable store keeps): two stores, one state
//! machine, one conformance test.

use chrono::{DateTime, TimeZone, Utc};
use fastrefund_core::domain::{
    BuyerId, Category, Decision, MerchantId, Money, OrderId, Outcome, ReasonCode, ReturnId,
    ReturnReason, ReturnRequest, Star,
};
use fastrefund_core::ledger::{MemoryError, SettleStep, StarLookup, TrackStep};
use fastrefund_core::policy::{self, LedgerView, Policy};
use fastrefund_ledger::{Ledger, LedgerError, LedgerStore, check_invariants};
use fastrefund_pg::{PgLedger, PgOptions};
use proptest::prelude::*;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use fastrefund_testkit::pg as pg_server;

const BUYERS: u64 = 3;
const RETURNS: u64 = 10;
const TRACKING: [&str; 3] = ["SFA", "SFB", "SFC"];
const AMOUNTS: [&str; 3] = ["50.00", "300.00", "700.00"];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap()
}

/// The snapshot in service was rated as of this instant: losses at or after it hold.
fn rated_as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 30, 0, 0, 0).unwrap()
}

/// Outcome times: one before the rating, one after.
fn outcome_time(late: bool) -> DateTime<Utc> {
    if late {
        Utc.with_ymd_and_hms(2026, 7, 1, 1, 0, 0).unwrap()
    } else {
        Utc.with_ymd_and_hms(2026, 6, 29, 1, 0, 0).unwrap()
    }
}

/// A tight policy, so that limits and the daily budget are hit often.
fn policy() -> Policy {
    Policy {
        daily_budget: "1500.00".parse().unwrap(),
        ..Policy::default()
    }
}

/// Every buyer's star: buyer 0 has 2★ (no instant release), the others 3★ and 5★.
fn star_of(buyer: u64) -> Star {
    Star::try_from([2u8, 3, 5][buyer as usize % 3]).unwrap()
}

struct Stars;
impl StarLookup for Stars {
    fn star(&self, buyer: BuyerId) -> Option<Star> {
        Some(star_of(buyer.0))
    }
    fn rated_as_of(&self) -> Option<DateTime<Utc>> {
        Some(rated_as_of())
    }
}

#[derive(Debug, Clone)]
enum Op {
    Decide {
        rid: u64,
        buyer: u64,
        order: u64,
        amount: usize,
        tracking: Option<usize>,
        cancel: bool,
    },
    Track {
        rid: u64,
        tracking: usize,
        cancel: bool,
    },
    Settle {
        rid: u64,
        outcome: usize,
        late: bool,
    },
    Exposure {
        buyer: u64,
    },
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..=RETURNS, 0..BUYERS, 1..=RETURNS, 0..AMOUNTS.len(), proptest::option::of(0..TRACKING.len()), proptest::bool::weighted(0.1))
            .prop_map(|(rid, buyer, order, amount, tracking, cancel)| Op::Decide { rid, buyer, order, amount, tracking, cancel }),
        4 => (1..=RETURNS, 0..TRACKING.len(), proptest::bool::weighted(0.1))
            .prop_map(|(rid, tracking, cancel)| Op::Track { rid, tracking, cancel }),
        2 => (1..=RETURNS, 0..4usize, any::<bool>())
            .prop_map(|(rid, outcome, late)| Op::Settle { rid, outcome, late }),
        1 => (0..BUYERS).prop_map(|buyer| Op::Exposure { buyer }),
        1 => Just(Op::Restart),
    ]
}

const OUTCOMES: [Outcome; 4] = [
    Outcome::ReceivedOk,
    Outcome::MerchantFault,
    Outcome::ReceivedMismatch,
    Outcome::NotShipped,
];

fn request(
    rid: u64,
    buyer: u64,
    order: u64,
    amount: usize,
    tracking: Option<usize>,
) -> ReturnRequest {
    ReturnRequest {
        return_id: ReturnId(rid),
        buyer_id: BuyerId(buyer),
        order_id: OrderId(order),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: AMOUNTS[amount].parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: Utc.with_ymd_and_hms(2026, 7, 1, 2, 0, 0).unwrap(),
        tracking_number: tracking.map(|t| TRACKING[t].to_string()),
    }
}

/// The reference: one record per decided return, and nothing else.
#[derive(Debug, Clone)]
struct RefReturn {
    req: ReturnRequest,
    decision: Decision,
    decision_id: u64,
    /// The advance: its tracking number.
    advance: Option<String>,
    outcome: Option<(Outcome, DateTime<Utc>)>,
}

#[derive(Debug, Default)]
struct Model {
    returns: HashMap<u64, RefReturn>,
    next_id: u64,
}

/// What a call answered, reduced to what must agree.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Decided {
        decision: Decision,
        decision_id: u64,
        repeated: bool,
    },
    Tracked {
        advanced: bool,
        amount: Money,
        reasons: Vec<&'static str>,
        repeated: bool,
    },
    Settled {
        amount: Money,
        loss: bool,
        outstanding: Money,
        repeated: bool,
    },
    Exposure(Money, u32),
    /// An error, by kind.
    Refused(&'static str),
}

fn kind(e: &LedgerError) -> &'static str {
    match e {
        LedgerError::Unavailable(_) => "unavailable",
        LedgerError::UnknownReturn(_) => "unknown_return",
        LedgerError::NotAdvanced(_) => "not_advanced",
        LedgerError::OutcomeConflict { .. } => "outcome_conflict",
        LedgerError::ReturnIdReused { .. } => "return_id_reused",
        LedgerError::TrackingConflict { .. } => "tracking_conflict",
        LedgerError::OutcomeAtConflict { .. } => "outcome_at_conflict",
        LedgerError::PendingOutcome => "pending",
        LedgerError::Open { .. } => "open",
        LedgerError::Case(_) => "case",
    }
}

impl Model {
    fn open_advances(&self, buyer: u64) -> impl Iterator<Item = &RefReturn> {
        self.returns.values().filter(move |r| {
            r.req.buyer_id.0 == buyer && r.advance.is_some() && r.outcome.is_none()
        })
    }

    fn exposure(&self, buyer: u64) -> (Money, u32) {
        self.open_advances(buyer)
            .fold((Money::ZERO, 0), |(m, n), r| (m + r.req.amount, n + 1))
    }

    fn view(&self, rid: u64, buyer: u64, order: u64, tracking: Option<&str>) -> LedgerView {
        let advanced = || self.returns.values().filter(|r| r.advance.is_some());
        LedgerView {
            outstanding: self.exposure(buyer).0,
            advanced_today: advanced().map(|r| r.req.amount).sum(),
            order_already_refunded: advanced().any(|r| r.req.order_id.0 == order),
            tracking_number_reused: tracking.is_some_and(|t| {
                advanced().any(|r| r.req.return_id.0 != rid && r.advance.as_deref() == Some(t))
            }),
            loss_since_rating: self.returns.values().any(|r| {
                r.req.buyer_id.0 == buyer
                    && r.outcome
                        .is_some_and(|(o, at)| o.is_buyer_loss() && at >= rated_as_of())
            }),
        }
    }

    fn decide(&mut self, req: ReturnRequest, p: &Policy) -> Answer {
        let rid = req.return_id.0;
        if let Some(r) = self.returns.get(&rid) {
            return if r.req == req {
                Answer::Decided {
                    decision: r.decision.clone(),
                    decision_id: r.decision_id,
                    repeated: true,
                }
            } else {
                Answer::Refused("return_id_reused")
            };
        }
        let view = self.view(
            rid,
            req.buyer_id.0,
            req.order_id.0,
            req.tracking_number.as_deref(),
        );
        let decision = policy::decide(&req, Some(star_of(req.buyer_id.0)), &view, p, now());
        // Ids: increasing, and at least the decision's time in microseconds.
        let id = (self.next_id + 1).max(now().timestamp_micros() as u64);
        self.next_id = id;
        let r = RefReturn {
            advance: decision
                .advanced_refund
                .then(|| req.tracking_number.clone().unwrap_or_default()),
            req,
            decision: decision.clone(),
            decision_id: self.next_id,
            outcome: None,
        };
        self.returns.insert(rid, r);
        Answer::Decided {
            decision,
            decision_id: self.next_id,
            repeated: false,
        }
    }

    fn track(&mut self, rid: u64, tracking: &str, p: &Policy) -> Answer {
        let Some(r) = self.returns.get(&rid).cloned() else {
            return Answer::Refused("unknown_return");
        };
        let amount = r.req.amount;
        if let Some(t) = &r.advance {
            return if t == tracking {
                Answer::Tracked {
                    advanced: true,
                    amount,
                    reasons: vec![],
                    repeated: true,
                }
            } else {
                Answer::Refused("tracking_conflict")
            };
        }
        let mut reasons = Vec::new();
        if !r.decision.instant_address_release {
            reasons.push(ReasonCode::NotInstant);
        } else {
            let view = self.view(rid, r.req.buyer_id.0, r.req.order_id.0, Some(tracking));
            if view.loss_since_rating && p.hold_after_loss {
                reasons.push(ReasonCode::LossSinceRating);
            }
            reasons.extend(policy::advance_refusals(
                star_of(r.req.buyer_id.0),
                amount,
                &view,
                p,
            ));
            if view.order_already_refunded {
                reasons.push(ReasonCode::AlreadyRefunded);
            }
            if reasons.is_empty() {
                let flags = policy::advance_flags(&view, p);
                if let Some(rec) = self.returns.get_mut(&rid) {
                    rec.advance = Some(tracking.to_string());
                }
                return Answer::Tracked {
                    advanced: true,
                    amount,
                    reasons: flags.iter().map(|c| c.code()).collect(),
                    repeated: false,
                };
            }
        }
        Answer::Tracked {
            advanced: false,
            amount,
            reasons: reasons.iter().map(|c| c.code()).collect(),
            repeated: false,
        }
    }

    fn settle(&mut self, rid: u64, outcome: Outcome, at: DateTime<Utc>) -> Answer {
        let Some(r) = self.returns.get(&rid).cloned() else {
            return Answer::Refused("unknown_return");
        };
        if r.advance.is_none() {
            return Answer::Refused("not_advanced");
        }
        let buyer = r.req.buyer_id.0;
        match r.outcome {
            Some((o, _)) if o != outcome => Answer::Refused("outcome_conflict"),
            Some((_, t)) if t != at => Answer::Refused("outcome_at_conflict"),
            Some(_) => Answer::Settled {
                amount: r.req.amount,
                loss: outcome.is_buyer_loss(),
                outstanding: self.exposure(buyer).0,
                repeated: true,
            },
            None => {
                if let Some(rec) = self.returns.get_mut(&rid) {
                    rec.outcome = Some((outcome, at));
                }
                Answer::Settled {
                    amount: r.req.amount,
                    loss: outcome.is_buyer_loss(),
                    outstanding: self.exposure(buyer).0,
                    repeated: false,
                }
            }
        }
    }
}

/// An answer with its decision id blanked (the `repeated` flag kept).
fn without_id(a: &Answer) -> Answer {
    match a {
        Answer::Decided {
            decision, repeated, ..
        } => Answer::Decided {
            decision: decision.clone(),
            decision_id: 0,
            repeated: *repeated,
        },
        other => other.clone(),
    }
}

/// An answer as a store without decision ids gives it.
fn without_ids(a: &Answer) -> Answer {
    match a {
        Answer::Decided { decision, .. } => Answer::Decided {
            decision: decision.clone(),
            decision_id: 0,
            repeated: false,
        },
        other => other.clone(),
    }
}

/// Polls a call once and drops it, as hyper does when the client goes away.
async fn cancel<F: Future>(call: F) {
    let mut call = std::pin::pin!(call);
    std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx).is_pending())).await;
}

/// A store under test: how to open it (again) and check its records directly.
enum Store {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Store {
    async fn open(&self) -> Box<dyn LedgerStore> {
        match self {
            Store::Sqlite(path) => Box::new(Ledger::open(path).unwrap()),
            Store::Postgres(url) => {
                Box::new(PgLedger::connect(url, PgOptions::default()).await.unwrap())
            }
        }
    }

    /// A call dropped after its first poll: SQLite has queued its command by then and
    /// applies it; PostgreSQL has not committed it and rolls it back. Either way the
    /// caller saw no answer; the model follows the store.
    fn applies_cancelled(&self) -> bool {
        matches!(self, Store::Sqlite(_))
    }

    async fn check(&self) -> Result<(), String> {
        match self {
            Store::Sqlite(path) => check_invariants(path).map(drop),
            Store::Postgres(url) => PgLedger::connect(url, PgOptions::default())
                .await
                .map_err(|e| e.to_string())?
                .check_invariants()
                .await
                .map(drop),
        }
    }
}

async fn run(store: &Store, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut ledger = store.open().await;
    let p = Arc::new(policy());
    let mut model = Model::default();
    let mut mem = fastrefund_core::ledger::MemoryLedger::default();
    let stars: Arc<dyn StarLookup> = Arc::new(Stars);
    for (step, op) in ops.into_iter().enumerate() {
        let (got, want) = match op {
            Op::Decide {
                rid,
                buyer,
                order,
                amount,
                tracking,
                cancel: cancelled,
            } => {
                let req = request(rid, buyer, order, amount, tracking);
                let call = ledger.decide(
                    req.clone(),
                    Some(star_of(buyer)),
                    Some(rated_as_of()),
                    None,
                    p.clone(),
                    "m".into(),
                    now(),
                );
                if cancelled && !store.applies_cancelled() {
                    // Not applied: the model and the memory ledger skip it too.
                    cancel(call).await;
                    continue;
                }
                let mem_got =
                    match mem.decide(&req, Some(star_of(buyer)), Some(rated_as_of()), &p, now()) {
                        Ok(decision) => Answer::Decided {
                            decision,
                            decision_id: 0,
                            repeated: false,
                        },
                        Err(e) => Answer::Refused(kind(&e.into())),
                    };
                // A cancelled call's command is still applied: the model applies it too,
                // and nobody sees the answer.
                let want = model.decide(req, &p);
                prop_assert_eq!(&mem_got, &without_ids(&want), "memory, step {}", step);
                if cancelled {
                    cancel(call).await;
                    continue;
                }
                let got = match call.await {
                    Ok(d) => Answer::Decided {
                        decision: d.decision,
                        decision_id: d.decision_id,
                        repeated: d.repeated,
                    },
                    Err(e) => Answer::Refused(kind(&e)),
                };
                (got, want)
            }
            Op::Track {
                rid,
                tracking,
                cancel: cancelled,
            } => {
                let call = ledger.track(
                    ReturnId(rid),
                    TRACKING[tracking].into(),
                    now(),
                    Some(stars.clone()),
                    p.clone(),
                    now(),
                );
                if cancelled && !store.applies_cancelled() {
                    cancel(call).await;
                    continue;
                }
                let want = model.track(rid, TRACKING[tracking], &p);
                let mem_got = match mem.track(rid, TRACKING[tracking], Some(&Stars), &p, now()) {
                    Ok(TrackStep::Advance { amount, flags }) => Answer::Tracked {
                        advanced: true,
                        amount,
                        reasons: flags.iter().map(|c| c.code()).collect(),
                        repeated: false,
                    },
                    Ok(TrackStep::Repeat { amount }) => Answer::Tracked {
                        advanced: true,
                        amount,
                        reasons: vec![],
                        repeated: true,
                    },
                    Ok(TrackStep::Refuse { reasons }) => Answer::Tracked {
                        advanced: false,
                        amount: model.returns[&rid].req.amount,
                        reasons: reasons.iter().map(|c| c.code()).collect(),
                        repeated: false,
                    },
                    Err(MemoryError::Refused(e)) => Answer::Refused(kind(&e.into())),
                    Err(e) => Answer::Refused(kind(&LedgerError::Unavailable(e.to_string()))),
                };
                prop_assert_eq!(&mem_got, &want, "memory, step {}", step);
                if cancelled {
                    cancel(call).await;
                    continue;
                }
                let got = match call.await {
                    Ok(t) => Answer::Tracked {
                        advanced: t.advanced,
                        amount: t.amount,
                        reasons: t.reasons.iter().map(|c| c.code()).collect(),
                        repeated: t.repeated,
                    },
                    Err(e) => Answer::Refused(kind(&e)),
                };
                (got, want)
            }
            Op::Settle { rid, outcome, late } => {
                let (o, at) = (OUTCOMES[outcome], outcome_time(late));
                let got = match ledger.settle(ReturnId(rid), o, at, now()).await {
                    Ok(s) => Answer::Settled {
                        amount: s.amount,
                        loss: s.loss,
                        outstanding: s.outstanding,
                        repeated: s.repeated,
                    },
                    Err(e) => Answer::Refused(kind(&e)),
                };
                let want = model.settle(rid, o, at);
                let mem_got = match mem.settle(rid, o, at) {
                    Ok(SettleStep::Settle { amount, loss }) => Answer::Settled {
                        amount,
                        loss,
                        outstanding: mem.book().exposure(model.returns[&rid].req.buyer_id.0).0,
                        repeated: false,
                    },
                    Ok(SettleStep::Repeat { amount, loss }) => Answer::Settled {
                        amount,
                        loss,
                        outstanding: mem.book().exposure(model.returns[&rid].req.buyer_id.0).0,
                        repeated: true,
                    },
                    Err(MemoryError::Refused(e)) => Answer::Refused(kind(&e.into())),
                    Err(e) => Answer::Refused(kind(&LedgerError::Unavailable(e.to_string()))),
                };
                prop_assert_eq!(&mem_got, &want, "memory, step {}", step);
                (got, want)
            }
            Op::Exposure { buyer } => {
                let got = match ledger.exposure(BuyerId(buyer)).await {
                    Ok(e) => Answer::Exposure(e.outstanding, e.open_advances),
                    Err(e) => Answer::Refused(kind(&e)),
                };
                let (m, n) = model.exposure(buyer);
                prop_assert_eq!(mem.book().exposure(buyer), (m, n), "memory, step {}", step);
                (got, Answer::Exposure(m, n))
            }
            Op::Restart => {
                // The work already queued finishes first (a crash instead would lose
                // only unanswered work, which the kill tests cover).
                let _ = ledger.exposure(BuyerId(0)).await;
                // A clean stop gives back what the store holds (PostgreSQL: its unspent
                // slices of the day's budget), so the budget stays exact.
                ledger.close().await.unwrap();
                drop(ledger);
                ledger = store.open().await;
                continue;
            }
        };
        // PostgreSQL's decision ids come from a sequence shared by the replicas, not from
        // the clock: the race test checks that they are unique.
        let (got, want) = match store {
            Store::Sqlite(_) => (got, want),
            Store::Postgres(_) => (without_id(&got), without_id(&want)),
        };
        prop_assert_eq!(&got, &want, "step {}", step);
        // Invariants after every answered command: each buyer owes what the model says,
        // within the limit of their star; the day within its budget.
        let mut day = Money::ZERO;
        for buyer in 0..BUYERS {
            let e = ledger.exposure(BuyerId(buyer)).await.unwrap();
            let (m, n) = model.exposure(buyer);
            prop_assert_eq!(
                (e.outstanding, e.open_advances),
                (m, n),
                "buyer {} at step {}",
                buyer,
                step
            );
            prop_assert!(
                e.outstanding <= p.limit_for(star_of(buyer)),
                "buyer {} over the limit",
                buyer
            );
            day = day + e.outstanding;
        }
        prop_assert!(day <= p.daily_budget);
    }
    let _ = ledger.exposure(BuyerId(0)).await;
    drop(ledger);
    let checked = store.check().await;
    prop_assert!(checked.is_ok(), "{:?}", checked);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_answers_as_the_reference_model_and_keeps_its_invariants(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Sqlite(dir.path().join("ledger.sqlite"));
        rt.block_on(run(&store, ops))?;
    }
}

proptest! {
    // Each case gets a database of its own: fewer cases than SQLite's.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn postgres_answers_as_the_reference_model_and_keeps_its_invariants(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let Some(server) = pg_server::server() else {
            return Ok(());
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = rt.block_on(server.fresh_database());
        rt.block_on(run(&Store::Postgres(url), ops))?;
    }
}
