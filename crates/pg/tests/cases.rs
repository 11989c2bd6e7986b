#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Cases on both stores: SQLite always, PostgreSQL when `FASTREFUND_TEST_PG` names a
//! server. Random sequences of open, respond, claim, release, decide, clock advances
//! and restarts run through the `LedgerStore` trait and, beside it, through the core's
//! case machine in memory (itself held to a plain reference model in core): every
//! answer and state must agree, and a decision survives a restart. A decided outcome
//! case won by the buyer lifts the loss's hold at once and corrects the export; two
//! reviewers claiming one case on two replicas: one gets it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fastrefund_core::cases::{
    self, Case, CaseDeadlines, CaseKind, CaseRefusal, Command, Opening, Party, Verdict,
};
use fastrefund_core::domain::{
    BuyerId, Category, MerchantId, OrderId, Outcome, ReturnId, ReturnReason, ReturnRequest, Star,
};
use fastrefund_core::policy::Policy;
use fastrefund_ledger::Ledger;
use fastrefund_pg::{PgLedger, PgOptions};
use fastrefund_store::{CaseAnswer, CaseCall, LedgerError, LedgerStore};
use proptest::prelude::*;
use std::sync::Arc;

use fastrefund_testkit::pg as pg_server;

const BUYER: u64 = 7;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap()
}

/// The rating in service stopped seeing before the losses below.
fn rated_as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 30, 0, 0, 0).unwrap()
}

fn req(rid: u64, tracking: Option<&str>) -> ReturnRequest {
    ReturnRequest {
        return_id: ReturnId(rid),
        buyer_id: BuyerId(BUYER),
        order_id: OrderId(rid),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: "80.00".parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: Utc.with_ymd_and_hms(2026, 7, 1, 2, 0, 0).unwrap(),
        tracking_number: tracking.map(str::to_string),
    }
}

enum Store {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Store {
    /// Every decided return, as `export-outcomes` reads the store.
    async fn exported(&self) -> Vec<fastrefund_core::ledger::ExportRow> {
        match self {
            Store::Sqlite(path) => fastrefund_ledger::export_returns(path).unwrap(),
            Store::Postgres(url) => PgLedger::connect(url, PgOptions::default())
                .await
                .unwrap()
                .export_returns()
                .await
                .unwrap(),
        }
    }

    async fn open(&self) -> Arc<dyn LedgerStore> {
        match self {
            Store::Sqlite(path) => Arc::new(Ledger::open(path).unwrap()),
            Store::Postgres(url) => {
                Arc::new(PgLedger::connect(url, PgOptions::default()).await.unwrap())
            }
        }
    }
}

/// Return 41 advanced and lost (`received_mismatch`, after the rating): a loss that
/// holds the buyer back.
async fn with_a_loss(ledger: &dyn LedgerStore) {
    let policy = Arc::new(Policy::default());
    let star = Some(Star::try_from(4u8).unwrap());
    let d = ledger
        .decide(
            req(41, Some("SF41")),
            star,
            Some(rated_as_of()),
            None,
            policy,
            "m".into(),
            t0(),
        )
        .await
        .unwrap();
    assert!(d.decision.advanced_refund, "{:?}", d.decision);
    ledger
        .settle(ReturnId(41), Outcome::ReceivedMismatch, t0(), t0())
        .await
        .unwrap();
}

/// Whether a new return of the buyer's gets instant release now.
async fn released(ledger: &dyn LedgerStore, rid: u64) -> bool {
    ledger
        .decide(
            req(rid, None),
            Some(Star::try_from(4u8).unwrap()),
            Some(rated_as_of()),
            None,
            Arc::new(Policy::default()),
            "m".into(),
            t0(),
        )
        .await
        .unwrap()
        .decision
        .instant_address_release
}

fn one(a: CaseAnswer) -> fastrefund_store::CaseView {
    match a {
        CaseAnswer::One(v) => v,
        other => panic!("one case expected, got {other:?}"),
    }
}

fn opening() -> Opening {
    Opening {
        kind: CaseKind::Outcome,
        buyer_id: BuyerId(BUYER),
        return_id: Some(ReturnId(41)),
        order_id: None,
        opened_by: Party::Buyer,
        statement: "The parcel left sealed.".into(),
        evidence: vec!["https://example.com/seal.jpg".into()],
        contested: None,
    }
}

async fn lifts_the_hold(store: Store) {
    let d = CaseDeadlines::default();
    let ledger = store.open().await;
    with_a_loss(&*ledger).await;
    assert!(
        !released(&*ledger, 50).await,
        "the loss holds the buyer back"
    );
    let case = one(ledger
        .cases(CaseCall::Open(opening()), d, t0())
        .await
        .unwrap())
    .case;
    // A second case on the same return: refused, naming the open one.
    let again = ledger.cases(CaseCall::Open(opening()), d, t0()).await;
    assert!(
        matches!(again, Err(LedgerError::Case(CaseRefusal::AlreadyOpen(id))) if id == case.case_id),
        "{again:?}"
    );
    let step = |command: Command, at: DateTime<Utc>| {
        let ledger = ledger.clone();
        async move {
            ledger
                .cases(
                    CaseCall::Step {
                        case_id: case.case_id,
                        command,
                    },
                    d,
                    at,
                )
                .await
        }
    };
    step(
        Command::Claim {
            reviewer: "li".into(),
        },
        t0() + Duration::hours(49),
    )
    .await
    .unwrap();
    let decided = one(step(
        Command::Decide {
            reviewer: "li".into(),
            verdict: Verdict::BuyerWon,
            note: "the courier's photo shows the sealed box".into(),
            outcome: None,
        },
        t0() + Duration::hours(50),
    )
    .await
    .unwrap());
    assert_eq!(decided.case.state.verdict(), Some(Verdict::BuyerWon));
    let whats: Vec<&str> = decided.events.iter().map(|e| e.what.as_str()).collect();
    assert_eq!(whats, ["opened", "response_missed", "claimed", "decided"]);
    // The very next eligibility call: the hold is gone.
    assert!(
        released(&*ledger, 51).await,
        "the corrected loss still holds"
    );
    // ... and after a restart.
    ledger.close().await.unwrap();
    drop(ledger);
    let ledger = store.open().await;
    assert!(
        released(&*ledger, 52).await,
        "the correction did not survive a restart"
    );
    let got = one(ledger
        .cases(
            CaseCall::Get {
                case_id: case.case_id,
            },
            d,
            t0() + Duration::days(1),
        )
        .await
        .unwrap());
    assert_eq!(got.case.state.verdict(), Some(Verdict::BuyerWon));
    // The export gives the corrected outcome (the batch never counts the loss).
    let exported = store.exported().await;
    let r41 = exported
        .iter()
        .find(|r| r.return_id == ReturnId(41))
        .unwrap();
    assert_eq!(r41.outcome, Outcome::ReceivedOk);
    // The refund service's retry of the original outcome is still answered the same.
    let retry = ledger
        .settle(ReturnId(41), Outcome::ReceivedMismatch, t0(), t0())
        .await
        .unwrap();
    assert!(retry.repeated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_case_won_by_the_buyer_lifts_the_hold_at_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lifts_the_hold(Store::Sqlite(dir.path().join("ledger.sqlite"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_case_won_by_the_buyer_lifts_the_hold_at_once_on_postgres() {
    let Some(server) = pg_server::server() else {
        return;
    };
    lifts_the_hold(Store::Postgres(server.fresh_database().await)).await;
}

/// Two reviewers claim each of 20 cases at the same moment through two replicas:
/// exactly one gets each, the other is told `case_claimed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reviewers_claiming_one_case_on_two_replicas_one_gets_it() {
    let Some(server) = pg_server::server() else {
        return;
    };
    let url = server.fresh_database().await;
    let a: Arc<dyn LedgerStore> =
        Arc::new(PgLedger::connect(&url, PgOptions::default()).await.unwrap());
    let b: Arc<dyn LedgerStore> =
        Arc::new(PgLedger::connect(&url, PgOptions::default()).await.unwrap());
    let d = CaseDeadlines::default();
    let policy = Arc::new(Policy::default());
    for k in 0..20u64 {
        let rid = 100 + k;
        // A 2-star buyer's return is refused instant release: a `decision` case.
        let decided = a
            .decide(
                req(rid, None),
                Some(Star::try_from(2u8).unwrap()),
                None,
                None,
                policy.clone(),
                "m".into(),
                t0(),
            )
            .await
            .unwrap();
        assert!(!decided.decision.instant_address_release);
        let o = Opening {
            kind: CaseKind::Decision,
            return_id: Some(ReturnId(rid)),
            ..opening()
        };
        let case = one(a.cases(CaseCall::Open(o), d, t0()).await.unwrap()).case;
        let claims = [(a.clone(), "li"), (b.clone(), "chen")].map(|(store, who)| {
            let call = CaseCall::Step {
                case_id: case.case_id,
                command: Command::Claim {
                    reviewer: who.into(),
                },
            };
            tokio::spawn(async move { store.cases(call, d, t0()).await })
        });
        let mut got = Vec::new();
        for c in claims {
            got.push(c.await.unwrap());
        }
        let won = got.iter().filter(|r| r.is_ok()).count();
        assert_eq!(won, 1, "case {}: {got:?}", case.case_id);
        assert!(
            got.iter()
                .any(|r| matches!(r, Err(LedgerError::Case(CaseRefusal::Claimed { .. }))))
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    Respond(bool),
    Claim(usize),
    Release(usize),
    Decide(usize, usize),
    Wait(i64),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<bool>().prop_map(Op::Respond),
        (0..2usize).prop_map(Op::Claim),
        (0..2usize).prop_map(Op::Release),
        (0..2usize, 0..3usize).prop_map(|(r, v)| Op::Decide(r, v)),
        (1..30i64).prop_map(Op::Wait),
        Just(Op::Restart),
    ]
}

const REVIEWERS: [&str; 2] = ["li", "chen"];
const VERDICTS: [Verdict; 3] = [Verdict::BuyerWon, Verdict::MerchantWon, Verdict::Split];

/// The store and the core machine in memory, step by step.
async fn run(store: &Store, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let d = CaseDeadlines::default();
    let mut ledger = store.open().await;
    with_a_loss(&*ledger).await;
    let mut now = t0();
    let view = one(ledger
        .cases(CaseCall::Open(opening()), d, now)
        .await
        .unwrap());
    let id = view.case.case_id;
    let mut mine: Case = view.case;
    let mut trail = view.events.len();
    for op in ops {
        let command = match op {
            Op::Wait(h) => {
                now += Duration::hours(h);
                continue;
            }
            Op::Restart => {
                ledger.close().await.unwrap();
                drop(ledger);
                ledger = store.open().await;
                continue;
            }
            Op::Respond(merchant) => Command::Respond {
                party: if merchant {
                    Party::Merchant
                } else {
                    Party::Buyer
                },
                statement: "answer".into(),
                evidence: vec![],
            },
            Op::Claim(r) => Command::Claim {
                reviewer: REVIEWERS[r].into(),
            },
            Op::Release(r) => Command::Release {
                reviewer: REVIEWERS[r].into(),
            },
            Op::Decide(r, v) => Command::Decide {
                reviewer: REVIEWERS[r].into(),
                verdict: VERDICTS[v],
                note: "why".into(),
                outcome: None,
            },
        };
        let want = cases::step(&mine, &command, &d, now);
        let got = ledger
            .cases(
                CaseCall::Step {
                    case_id: id,
                    command: command.clone(),
                },
                d,
                now,
            )
            .await;
        match (want, got) {
            (Ok(w), Ok(g)) => {
                let g = one(g);
                prop_assert_eq!(&g.case, &w.case);
                prop_assert_eq!(g.repeated, w.repeated);
                if !w.repeated {
                    trail += w.events.len();
                }
                prop_assert_eq!(
                    g.events.len(),
                    trail,
                    "the trail only grows, by the move's events"
                );
                mine = w.case;
            }
            (Err(w), Err(LedgerError::Case(g))) => prop_assert_eq!(w, g),
            (w, g) => prop_assert!(false, "machine {:?}, store {:?} for {:?}", w, g, command),
        }
        // A read ticks as the machine does, without writing.
        let read = one(ledger
            .cases(CaseCall::Get { case_id: id }, d, now)
            .await
            .unwrap());
        let mut ticked = mine.clone();
        cases::tick(&mut ticked, now);
        prop_assert_eq!(read.case, ticked);
    }
    // The loss's hold follows the verdict.
    let won = mine.state.verdict() == Some(Verdict::BuyerWon);
    prop_assert_eq!(released(&*ledger, 900).await, won);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn sqlite_cases_move_as_the_core_machine(ops in proptest::collection::vec(op(), 1..25)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        rt.block_on(run(&Store::Sqlite(dir.path().join("ledger.sqlite")), ops))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn postgres_cases_move_as_the_core_machine(ops in proptest::collection::vec(op(), 1..25)) {
        let Some(server) = pg_server::server() else {
            return Ok(());
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let url = rt.block_on(server.fresh_database());
        rt.block_on(run(&Store::Postgres(url), ops))?;
    }
}

async fn outbox(store: Arc<dyn LedgerStore>, other: Arc<dyn LedgerStore>) {
    let d = CaseDeadlines::default();
    with_a_loss(&*store).await;
    one(store
        .cases(CaseCall::Open(opening()), d, t0())
        .await
        .unwrap());
    let due = |s: Arc<dyn LedgerStore>, at: DateTime<Utc>| async move {
        match s
            .cases(
                CaseCall::OutboxDue {
                    limit: 10,
                    lease: Duration::seconds(30),
                },
                d,
                at,
            )
            .await
            .unwrap()
        {
            CaseAnswer::Outbox(e) => e,
            other => panic!("{other:?}"),
        }
    };
    // Claimed by one, leased: the other gets nothing until the lease runs out.
    let (a, b) = tokio::join!(due(store.clone(), t0()), due(other.clone(), t0()));
    assert_eq!(a.len() + b.len(), 1, "one event, claimed once: {a:?} {b:?}");
    let event = a.into_iter().chain(b).next().unwrap();
    assert_eq!(event.event_id, "case-1-1");
    assert!(
        event.body.contains("\"type\":\"case.opened\""),
        "{}",
        event.body
    );
    assert!(
        due(store.clone(), t0() + Duration::seconds(10))
            .await
            .is_empty()
    );
    // A failed delivery is due again at its retry time, then delivered for good.
    let done = |delivered: bool, retry_at: DateTime<Utc>| CaseCall::OutboxDone {
        event_id: event.event_id.clone(),
        delivered,
        retry_at,
    };
    store
        .cases(done(false, t0() + Duration::minutes(2)), d, t0())
        .await
        .unwrap();
    assert!(
        due(store.clone(), t0() + Duration::minutes(1))
            .await
            .is_empty()
    );
    let again = due(other.clone(), t0() + Duration::minutes(3)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    store.cases(done(true, t0()), d, t0()).await.unwrap();
    assert!(
        due(store.clone(), t0() + Duration::days(1))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_leases_each_event_and_retries_it_until_delivered_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let ledger: Arc<dyn LedgerStore> = Store::Sqlite(dir.path().join("ledger.sqlite")).open().await;
    outbox(ledger.clone(), ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_leases_each_event_and_retries_it_until_delivered_on_two_postgres_replicas() {
    let Some(server) = pg_server::server() else {
        return;
    };
    let url = server.fresh_database().await;
    let store = Store::Postgres(url);
    outbox(store.open().await, store.open().await).await;
}

/// A return the rules refused (asked for past the return window), a `decision` case the
/// buyer wins: a person releases it, the tracking call that was refused before now
/// advances it by the ordinary rules, the export says it was released, and all of it
/// survives a restart.
async fn a_reviewer_releases(store: Store) {
    let d = CaseDeadlines::default();
    let ledger = store.open().await;
    let star = Some(Star::try_from(3u8).unwrap());
    let mut r = req(60, None);
    r.delivered_at = Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).unwrap();
    let decided = ledger
        .decide(
            r,
            star,
            Some(rated_as_of()),
            None,
            Arc::new(Policy::default()),
            "m".into(),
            t0(),
        )
        .await
        .unwrap();
    assert!(
        !decided.decision.instant_address_release,
        "{:?}",
        decided.decision
    );
    let track = |ledger: Arc<dyn LedgerStore>| async move {
        ledger
            .track(
                ReturnId(60),
                "SF60".into(),
                t0(),
                None,
                Arc::new(Policy::default()),
                t0(),
            )
            .await
            .unwrap()
    };
    assert!(
        !track(ledger.clone()).await.advanced,
        "advanced without release"
    );
    let o = Opening {
        kind: CaseKind::Decision,
        return_id: Some(ReturnId(60)),
        ..opening()
    };
    let case = one(ledger.cases(CaseCall::Open(o), d, t0()).await.unwrap()).case;
    let step = |command: Command| {
        let ledger = ledger.clone();
        async move {
            ledger
                .cases(
                    CaseCall::Step {
                        case_id: case.case_id,
                        command,
                    },
                    d,
                    t0(),
                )
                .await
                .unwrap()
        }
    };
    step(Command::Claim {
        reviewer: "li".into(),
    })
    .await;
    step(Command::Decide {
        reviewer: "li".into(),
        verdict: Verdict::BuyerWon,
        note: "the parcel was delayed by the carrier, not the buyer".into(),
        outcome: None,
    })
    .await;
    let t = track(ledger.clone()).await;
    assert!(t.advanced, "{t:?}");
    assert_eq!(
        ledger.exposure(BuyerId(BUYER)).await.unwrap().open_advances,
        1
    );
    ledger.close().await.unwrap();
    drop(ledger);
    let ledger = store.open().await;
    let again = track(ledger.clone()).await;
    assert!(again.advanced && again.repeated);
    let exported = store.exported().await;
    let r60 = exported
        .iter()
        .find(|r| r.return_id == ReturnId(60))
        .unwrap();
    assert!(r60.instant && r60.advanced);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_case_won_by_the_buyer_releases_the_return_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    a_reviewer_releases(Store::Sqlite(dir.path().join("ledger.sqlite"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_case_won_by_the_buyer_releases_the_return_on_postgres() {
    let Some(server) = pg_server::server() else {
        return;
    };
    a_reviewer_releases(Store::Postgres(server.fresh_database().await)).await;
}

/// A rating case on a reason, decided for the buyer, is read back as a strike from the
/// store (what the service loads its corrections from), after the store is opened
/// again; a rating case lost, or about the star as a whole, strikes nothing.
async fn strikes_are_read_back(store: Store) {
    use fastrefund_core::cases::{Contested, Strike, Verdict};
    let d = CaseDeadlines::default();
    let ledger = store.open().await;
    let rating = |buyer: u64, contested: Option<Contested>| Opening {
        kind: CaseKind::Rating,
        buyer_id: BuyerId(buyer),
        return_id: None,
        contested,
        ..opening()
    };
    let reason = || {
        Some(Contested {
            reason_code: "days_since_last_bad".into(),
            points: -12,
        })
    };
    let mut ids = Vec::new();
    for (buyer, contested, verdict) in [
        (501, reason(), Verdict::BuyerWon),
        (502, reason(), Verdict::MerchantWon),
        (503, None, Verdict::BuyerWon),
    ] {
        let case = one(ledger
            .cases(CaseCall::Open(rating(buyer, contested)), d, t0())
            .await
            .unwrap())
        .case;
        for command in [
            Command::Claim {
                reviewer: "li".into(),
            },
            Command::Decide {
                reviewer: "li".into(),
                verdict,
                note: "checked".into(),
                outcome: None,
            },
        ] {
            let step = CaseCall::Step {
                case_id: case.case_id,
                command,
            };
            ledger.cases(step, d, t0()).await.unwrap();
        }
        ids.push(case.case_id);
    }
    drop(ledger);
    let ledger = store.open().await;
    let CaseAnswer::Many(decided) = ledger
        .cases(CaseCall::DecidedRating, d, t0())
        .await
        .unwrap()
    else {
        panic!("a list of cases expected");
    };
    assert_eq!(decided.len(), 3);
    let strikes: Vec<Strike> = decided.iter().filter_map(Strike::of).collect();
    assert_eq!(strikes.len(), 1, "{strikes:?}");
    assert_eq!(
        (
            strikes[0].case_id,
            strikes[0].buyer_id,
            strikes[0].points_at_open
        ),
        (ids[0], BuyerId(501), -12)
    );
    assert_eq!(strikes[0].reason_code, "days_since_last_bad");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strikes_are_read_back_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    strikes_are_read_back(Store::Sqlite(dir.path().join("ledger.sqlite"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strikes_are_read_back_on_postgres() {
    let Some(server) = pg_server::server() else {
        return;
    };
    strikes_are_read_back(Store::Postgres(server.fresh_database().await)).await;
}
