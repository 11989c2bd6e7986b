#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ledger stores' conformance suite: a model-based property test. Random
//! sequences of decide, track, settle, exposure, restart and cancelled calls run
//! through the `LedgerStore` trait against each store — SQLite (group commit) always,
//! PostgreSQL when `FASTREFUND_TEST_PG` names a server (CI always sets it; elsewhere the
//! PostgreSQL run says it was skipped) — and against the reference model that lives
//! beside the state machine (`fastrefund_core::ledger::model`, where the in-memory
//! ledger runs against it too). Every answer must agree, and after every step each
//! buyer's outstanding amount must equal the model's (the sum of their open advances)
//! and stay within the limit of their star; at the end `check_invariants` reads the
//! records themselves.

use fastrefund_core::domain::{BuyerId, Money, ReturnId};
use fastrefund_core::ledger::StarLookup;
use fastrefund_core::ledger::model::{
    Answer, BUYERS, Model, OUTCOMES, Op, Stars, TRACKING, now, op, outcome_time, policy,
    rated_as_of, refusal_kind, request, star_of, without_id,
};
use fastrefund_ledger::{Ledger, check_invariants};
use fastrefund_pg::{PgLedger, PgOptions};
use fastrefund_store::{LedgerError, LedgerStore};
use proptest::prelude::*;
use std::future::Future;
use std::sync::Arc;

use fastrefund_testkit::pg as pg_server;

fn kind(e: &LedgerError) -> &'static str {
    match e {
        LedgerError::Refused(r) => refusal_kind(r),
        LedgerError::Unavailable(_) => "unavailable",
        LedgerError::Broken(_) => "broken",
        LedgerError::Open { .. } => "open",
        LedgerError::Case(_) => "case",
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
                    // Not applied: the model skips it too.
                    cancel(call).await;
                    continue;
                }
                // A cancelled call's command is still applied: the model applies it too,
                // and nobody sees the answer.
                let want = model.decide(req, &p);
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
            Op::Settle { rid, outcome, when } => {
                let (o, at) = (OUTCOMES[outcome], outcome_time(when));
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
                (got, want)
            }
            Op::Keep {
                rid,
                cancel: cancelled,
            } => {
                let call = ledger.keep(ReturnId(rid), p.clone(), now());
                if cancelled && !store.applies_cancelled() {
                    cancel(call).await;
                    continue;
                }
                let want = model.keep(rid, &p);
                if cancelled {
                    cancel(call).await;
                    continue;
                }
                let got = match call.await {
                    Ok(k) => Answer::Kept {
                        amount: k.amount,
                        repeated: k.repeated,
                    },
                    Err(e) => Answer::Refused(kind(&e)),
                };
                (got, want)
            }
            Op::Exposure { buyer } => {
                let got = match ledger.exposure(BuyerId(buyer)).await {
                    Ok(e) => Answer::Exposure(e.outstanding, e.open_advances),
                    Err(e) => Answer::Refused(kind(&e)),
                };
                let (m, n) = model.exposure(buyer);
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
