use super::*;
use chrono::TimeZone;
use fastrefund_core::domain::{Category, MerchantId, OrderId, ReasonCode, ReturnReason};

pub(super) fn req(
    rid: u64,
    buyer: u64,
    order: u64,
    amount: &str,
    tracking: Option<&str>,
) -> ReturnRequest {
    ReturnRequest {
        return_id: ReturnId(rid),
        buyer_id: BuyerId(buyer),
        order_id: OrderId(order),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: amount.parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: Utc.with_ymd_and_hms(2026, 7, 1, 2, 0, 0).unwrap(),
        tracking_number: tracking.map(str::to_string),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap()
}

fn star(s: u8) -> Option<Star> {
    Some(Star::try_from(s).unwrap())
}

/// Every buyer has this star.
struct Fixed(u8);
impl StarLookup for Fixed {
    fn star(&self, _: BuyerId) -> Option<Star> {
        Star::try_from(self.0).ok()
    }
}

fn stars(s: u8) -> Option<Arc<dyn StarLookup>> {
    Some(Arc::new(Fixed(s)))
}

fn money(s: &str) -> Money {
    s.parse().unwrap()
}

#[tokio::test]
async fn a_repeated_decision_is_the_recorded_one_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let p = Arc::new(Policy::default());
    let l = Ledger::open(&path).unwrap();
    let a = l
        .decide(
            req(1, 7, 70, "10.00", None),
            star(4),
            p.clone(),
            "m1".into(),
            now(),
        )
        .await
        .unwrap();
    assert!(a.decision.instant_address_release && !a.repeated);
    // Asked again, even with a lower star now: the first decision stands.
    let b = l
        .decide(
            req(1, 7, 70, "10.00", None),
            star(1),
            p.clone(),
            "m2".into(),
            now(),
        )
        .await
        .unwrap();
    assert!(b.repeated);
    assert_eq!(
        (b.decision_id, &b.decision, &b.model_version),
        (a.decision_id, &a.decision, &a.model_version)
    );
    drop(l);
    let l = Ledger::open(&path).unwrap();
    let c = l
        .decide(
            req(1, 7, 70, "10.00", None),
            star(1),
            p.clone(),
            "m3".into(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!((c.decision_id, c.decision), (a.decision_id, a.decision));
    // New decisions keep unique ids after a restart.
    let d = l
        .decide(req(2, 7, 71, "10.00", None), star(4), p, "m3".into(), now())
        .await
        .unwrap();
    assert!(d.decision_id > a.decision_id);
}

#[tokio::test]
async fn tracking_advances_once_and_a_repeat_answers_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let p = Arc::new(Policy::default());
    l.decide(
        req(1, 7, 70, "120.00", None),
        star(4),
        p.clone(),
        "m".into(),
        now(),
    )
    .await
    .unwrap();
    let a = l
        .track(ReturnId(1), "SF1".into(), now(), stars(4), p.clone(), now())
        .await
        .unwrap();
    assert!(a.advanced && !a.repeated);
    let b = l
        .track(ReturnId(1), "SF1".into(), now(), stars(4), p.clone(), now())
        .await
        .unwrap();
    assert!(b.advanced && b.repeated);
    assert_eq!(
        l.exposure(BuyerId(7)).await.unwrap().outstanding,
        money("120.00")
    );
}

#[tokio::test]
async fn no_advance_without_instant_release_and_unknown_returns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let p = Arc::new(Policy::default());
    l.decide(
        req(1, 7, 70, "10.00", None),
        star(2),
        p.clone(),
        "m".into(),
        now(),
    )
    .await
    .unwrap();
    let t = l
        .track(ReturnId(1), "SF1".into(), now(), stars(2), p.clone(), now())
        .await
        .unwrap();
    assert!(!t.advanced);
    assert_eq!(t.reasons, vec![ReasonCode::NotInstant]);
    assert_eq!(
        l.track(ReturnId(99), "SF".into(), now(), stars(4), p, now())
            .await
            .unwrap_err(),
        LedgerError::Refused(Refusal::UnknownReturn(99))
    );
}

#[tokio::test]
async fn concurrent_advances_for_one_buyer_never_pass_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let p = Arc::new(Policy::default()); // 3★ limit 1000.00
    for i in 0..50 {
        l.decide(
            req(i, 7, 100 + i, "90.00", None),
            star(3),
            p.clone(),
            "m".into(),
            now(),
        )
        .await
        .unwrap();
    }
    let calls = (0..50).map(|i| {
        let (l, p) = (l.clone(), p.clone());
        tokio::spawn(async move {
            l.track(ReturnId(i), format!("SF{i}"), now(), stars(3), p, now())
                .await
        })
    });
    let results = futures_join(calls).await;
    let granted = results.iter().filter(|r| r.advanced).count();
    assert_eq!(granted, 11, "1000.00 / 90.00 = 11 advances fit");
    let refused: Vec<&Tracked> = results.iter().filter(|r| !r.advanced).collect();
    assert!(
        refused
            .iter()
            .all(|r| r.reasons.iter().any(|c| c.code() == "exposure_limit"))
    );
    assert_eq!(
        l.exposure(BuyerId(7)).await.unwrap().outstanding,
        money("990.00")
    );
}

async fn futures_join(
    calls: impl Iterator<Item = tokio::task::JoinHandle<Result<Tracked, LedgerError>>>,
) -> Vec<Tracked> {
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn outcomes_settle_once_and_impossible_transitions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let l = Ledger::open(&path).unwrap();
    let p = Arc::new(Policy::default());
    l.decide(
        req(1, 7, 70, "50.00", Some("SF1")),
        star(5),
        p.clone(),
        "m".into(),
        now(),
    )
    .await
    .unwrap();
    l.decide(
        req(2, 7, 71, "30.00", Some("SF2")),
        star(5),
        p.clone(),
        "m".into(),
        now(),
    )
    .await
    .unwrap();
    l.decide(
        req(3, 7, 72, "30.00", None),
        star(5),
        p.clone(),
        "m".into(),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(
        l.exposure(BuyerId(7)).await.unwrap().outstanding,
        money("80.00")
    );
    let s = l
        .settle(ReturnId(1), Outcome::ReceivedOk, now(), now())
        .await
        .unwrap();
    assert!(!s.loss && s.outstanding == money("30.00"));
    let again = l
        .settle(ReturnId(1), Outcome::ReceivedOk, now(), now())
        .await
        .unwrap();
    assert!(again.repeated && again.outstanding == money("30.00"));
    assert!(matches!(
        l.settle(ReturnId(1), Outcome::NotShipped, now(), now())
            .await,
        Err(LedgerError::Refused(Refusal::OutcomeConflict { .. }))
    ));
    assert_eq!(
        l.settle(ReturnId(3), Outcome::ReceivedOk, now(), now())
            .await
            .unwrap_err(),
        LedgerError::Refused(Refusal::NotAdvanced(3))
    );
    assert_eq!(
        l.settle(ReturnId(2), Outcome::Pending, now(), now())
            .await
            .unwrap_err(),
        LedgerError::Refused(Refusal::PendingOutcome)
    );
    let loss = l
        .settle(ReturnId(2), Outcome::NotShipped, now(), now())
        .await
        .unwrap();
    assert!(loss.loss && loss.outstanding == Money::ZERO);
    drop(l);
    check_invariants(&path).unwrap();
    let rows = export_returns(&path).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        (rows[0].outcome, rows[0].advanced),
        (Outcome::ReceivedOk, true)
    );
    assert_eq!(
        (rows[1].outcome, rows[1].advanced),
        (Outcome::NotShipped, true)
    );
    assert_eq!(
        (rows[2].outcome, rows[2].advanced),
        (Outcome::Pending, false)
    );
}

#[tokio::test]
async fn a_second_return_of_an_advanced_order_gets_no_instant_release() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let p = Arc::new(Policy::default());
    l.decide(
        req(1, 7, 70, "50.00", Some("SF1")),
        star(5),
        p.clone(),
        "m".into(),
        now(),
    )
    .await
    .unwrap();
    let d = l
        .decide(
            req(2, 7, 70, "50.00", Some("SF2")),
            star(5),
            p,
            "m".into(),
            now(),
        )
        .await
        .unwrap();
    assert!(!d.decision.instant_address_release);
    assert!(
        d.decision
            .reasons
            .iter()
            .any(|r| r.code() == "already_refunded")
    );
}

#[tokio::test]
async fn the_daily_budget_is_shared_by_all_buyers() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let p = Arc::new(Policy {
        daily_budget: money("100.00"),
        ..Policy::default()
    });
    let a = l
        .decide(
            req(1, 7, 70, "60.00", Some("A")),
            star(5),
            p.clone(),
            "m".into(),
            now(),
        )
        .await
        .unwrap();
    let b = l
        .decide(
            req(2, 8, 71, "60.00", Some("B")),
            star(5),
            p.clone(),
            "m".into(),
            now(),
        )
        .await
        .unwrap();
    assert!(a.decision.advanced_refund);
    assert!(!b.decision.advanced_refund);
    assert!(
        b.decision
            .reasons
            .iter()
            .any(|r| r.code() == "daily_budget_exhausted")
    );
    // The next day has a fresh budget.
    let c = l
        .decide(
            req(3, 8, 72, "60.00", Some("C")),
            star(5),
            p,
            "m".into(),
            now() + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert!(c.decision.advanced_refund);
}

/// Issue 9: a caller dropped while its command waits (its client went away) must not
/// leave the queue led by no one. On a current-thread runtime, each call is polled once
/// (it queues its command and would have become the leader) and then dropped; every
/// later call must still be answered, within a second.
#[test]
fn callers_dropped_mid_flight_never_stall_the_ledger() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
        let p = Arc::new(Policy::default());
        for i in 0..300u64 {
            {
                let mut call = std::pin::pin!(l.decide(
                    req(1_000 + i, 7, 10_000 + i, "10.00", None),
                    star(4),
                    p.clone(),
                    "m".into(),
                    now(),
                ));
                // Polled once, then dropped: what hyper does to a request whose client left.
                let first = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(call.as_mut().poll(cx).is_pending())
                })
                .await;
                assert!(first, "call {i} finished in its first poll");
                // `call` is dropped here, never polled again.
            }
            if i % 50 == 49 {
                let e =
                    tokio::time::timeout(std::time::Duration::from_secs(1), l.exposure(BuyerId(7)))
                        .await;
                assert!(
                    e.is_ok(),
                    "the ledger stalled after {} dropped calls",
                    i + 1
                );
            }
        }
        let d = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            l.decide(req(1, 7, 1, "10.00", None), star(4), p, "m".into(), now()),
        )
        .await
        .expect("a decision after 300 dropped calls is answered within a second")
        .unwrap();
        assert!(!d.repeated);
    });
}

/// Every buyer has this star, rated as of this instant.
struct RatedAt(u8, DateTime<Utc>);
impl StarLookup for RatedAt {
    fn star(&self, _: BuyerId) -> Option<Star> {
        Star::try_from(self.0).ok()
    }
    fn rated_as_of(&self) -> Option<DateTime<Utc>> {
        Some(self.1)
    }
}

#[tokio::test]
async fn one_parcel_backs_one_advance() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let p = Arc::new(Policy::default());
    for rid in [1, 2] {
        let r = req(rid, 7, rid, "10.00", None);
        l.decide(r, star(5), p.clone(), "m".into(), now())
            .await
            .unwrap();
    }
    let track = |rid: u64| {
        l.track(
            ReturnId(rid),
            "SF1".into(),
            now(),
            stars(5),
            p.clone(),
            now(),
        )
    };
    let a = track(1).await.unwrap();
    assert!(a.advanced && a.reasons.is_empty());
    let b = track(2).await.unwrap();
    assert!(!b.advanced);
    assert_eq!(
        b.reasons.iter().map(|r| r.code()).collect::<Vec<_>>(),
        ["tracking_number_reused"]
    );
    // The first return's own retry is not a reuse.
    assert!(track(1).await.unwrap().repeated);
    // With the policy only flagging it, the advance goes through, flagged.
    let lenient = Policy {
        refuse_reused_tracking: false,
        ..Policy::default()
    };
    let c = l
        .track(
            ReturnId(2),
            "SF1".into(),
            now(),
            stars(5),
            Arc::new(lenient),
            now(),
        )
        .await
        .unwrap();
    assert!(c.advanced);
    assert_eq!(c.reasons[0].code(), "tracking_number_reused");
}

#[tokio::test]
async fn a_loss_since_the_rating_holds_instant_release_and_advances_until_the_next_rating() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let l = Ledger::open(&path).unwrap();
    let p = Arc::new(Policy::default());
    let rated = Utc.with_ymd_and_hms(2026, 6, 30, 0, 0, 0).unwrap();
    let snapshot = || -> Option<Arc<dyn StarLookup>> { Some(Arc::new(RatedAt(5, rated))) };
    let decide = |l: &Ledger, rid: u64, rated_as_of: DateTime<Utc>| {
        let (l, p) = (l.clone(), p.clone());
        async move {
            l.decide_with_shadow(
                req(rid, 7, rid, "10.00", None),
                star(5),
                Some(rated_as_of),
                None,
                p,
                "m".into(),
                now(),
            )
            .await
            .unwrap()
        }
    };
    // Two returns decided with instant release; the first is advanced and lost.
    assert!(decide(&l, 1, rated).await.decision.instant_address_release);
    assert!(decide(&l, 2, rated).await.decision.instant_address_release);
    let track = |rid: u64| {
        let t = format!("SF{rid}");
        l.track(ReturnId(rid), t, now(), snapshot(), p.clone(), now())
    };
    assert!(track(1).await.unwrap().advanced);
    l.settle(ReturnId(1), Outcome::NotShipped, now(), now())
        .await
        .unwrap();
    // The second return's tracking number now gets no advance...
    let t = track(2).await.unwrap();
    assert!(!t.advanced);
    assert_eq!(t.reasons[0].code(), "loss_since_rating");
    // ...a new return no instant release, even after a restart...
    drop(l);
    let l = Ledger::open(&path).unwrap();
    let d = decide(&l, 3, rated).await;
    assert!(!d.decision.instant_address_release);
    assert!(
        d.decision
            .reasons
            .iter()
            .any(|r| r.code() == "loss_since_rating")
    );
    // ...until a rating made after the loss has seen it.
    let later = Utc.with_ymd_and_hms(2026, 7, 2, 0, 0, 0).unwrap();
    assert!(decide(&l, 4, later).await.decision.instant_address_release);
}

/// Issue 9.2: a fault between a decision's rows (the advance's insert aborted by a
/// trigger) stores nothing of that decision, answers an error, lets the rest of the
/// batch commit, and leaves the in-memory view equal to the database: a retry once the
/// fault is gone is recorded once, under a model version that still resolves after a
/// restart.
#[tokio::test]
async fn a_fault_between_a_decisions_rows_stores_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    drop(Ledger::open(&path).unwrap());
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER fault BEFORE INSERT ON advances WHEN NEW.return_id = 2
         BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
    )
    .unwrap();
    let l = Ledger::open(&path).unwrap();
    let p = Arc::new(Policy::default());
    let decide = |rid: u64, model: &str| {
        l.decide(
            req(rid, 7, rid, "10.00", Some(&format!("SF{rid}"))),
            star(5),
            p.clone(),
            model.into(),
            now(),
        )
    };
    // One batch: the faulty decision (the first to use model "m-new") between two good.
    let (a, b, c) = tokio::join!(decide(1, "m"), decide(2, "m-new"), decide(3, "m"));
    assert!(a.unwrap().decision.advanced_refund);
    assert!(matches!(b, Err(LedgerError::Unavailable(_))), "{b:?}");
    assert!(c.unwrap().decision.advanced_refund);
    let count = |sql: &str| -> i64 { raw.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT COUNT(*) FROM decisions WHERE return_id = 2"),
        0
    );
    assert_eq!(count("SELECT COUNT(*) FROM decisions"), 2);
    assert_eq!(count("SELECT COUNT(*) FROM advances"), 2);
    assert_eq!(
        l.exposure(BuyerId(7)).await.unwrap().outstanding,
        money("20.00")
    );
    // The fault goes; the retry is decided and recorded once.
    raw.execute_batch("DROP TRIGGER fault").unwrap();
    let d = decide(2, "m-new").await.unwrap();
    assert!(d.decision.advanced_refund && !d.repeated);
    assert!(decide(2, "m-new").await.unwrap().repeated);
    assert_eq!(
        count("SELECT COUNT(*) FROM decisions WHERE return_id = 2"),
        1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM advances WHERE return_id = 2"),
        1
    );
    drop(l);
    check_invariants(&path).unwrap();
    let l = Ledger::open(&path).unwrap();
    let again = l
        .decide(
            req(2, 7, 2, "10.00", Some("SF2")),
            star(5),
            p.clone(),
            "other".into(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        (again.model_version.as_str(), again.repeated),
        ("m-new", true)
    );
}

/// Issue 9.5: a failed fdatasync is fatal for money. The calls of that batch get an
/// error, every later call is refused saying why (no retry on a fresh descriptor that
/// would then report durable), and the ledger reports itself unhealthy for good.
#[tokio::test]
async fn a_failed_fdatasync_stops_money_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let l = Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let p = Arc::new(Policy::default());
    let decide = |rid: u64| {
        l.decide(
            req(rid, 7, rid, "10.00", Some(&format!("SF{rid}"))),
            star(5),
            p.clone(),
            "m".into(),
            now(),
        )
    };
    assert!(decide(1).await.unwrap().decision.advanced_refund);
    assert_eq!(l.health(), Ok(()));
    l.inject_sync_failure();
    let e = decide(2).await.unwrap_err().to_string();
    assert!(e.contains("fdatasync"), "{e}");
    for rid in 3..6 {
        let e = decide(rid).await.unwrap_err().to_string();
        assert!(e.contains("restart"), "{e}");
    }
    assert!(l.exposure(BuyerId(7)).await.is_err());
    assert!(l.health().unwrap_err().contains("fdatasync"));
    assert!(
        l.probe().is_err(),
        "a probe never clears a failed fdatasync"
    );
}

/// A ledger that cannot be written is refused at start, naming why.
#[test]
fn a_ledger_on_a_read_only_file_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    drop(Ledger::open(&path).unwrap());
    // Read-only as SQLite sees it (file permissions do not stop root).
    let uri = format!("file:{}?mode=ro", path.display());
    let ro = Connection::open_with_flags(
        &uri,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    let e = probe_write(&ro).unwrap_err();
    assert!(e.contains("readonly"), "{e}");
}

/// One ledger file has one writer: a second open while the first lives is refused
/// (after waiting a little for an old instance to finish), and works once it is gone.
#[test]
fn a_second_writer_on_the_same_ledger_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let first = Ledger::open(&path).unwrap();
    let e = Ledger::open(&path).err().expect("refused").to_string();
    assert!(e.contains("another process"), "{e}");
    drop(first);
    Ledger::open(&path).unwrap();
}

/// Checkpoints run on the checkpoint thread, not inline in the writer's commits: the
/// writer's automatic checkpoint is only a backstop far past SQLite's default of 1,000
/// pages (which copied pages on the request path every few dozen batches), and the
/// thread still copies the WAL into the database by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_run_off_the_commit_path_and_still_happen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let l = Ledger::open(&path).unwrap();
    let pages: u32 = {
        let w = l.shared.writer.lock().unwrap();
        w.conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(pages, WRITER_CHECKPOINT_PAGES);
    let p = Arc::new(Policy::default());
    // 2,000 decisions with ids spread over the whole range: about 4,000 WAL pages, far
    // below the backstop, so only the thread can have copied them.
    for round in 0..40u64 {
        let calls: Vec<_> = (0..50u64)
            .map(|k| {
                let i = round * 50 + k + 1;
                let (l, p) = (l.clone(), p.clone());
                tokio::spawn(async move {
                    let rid = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1;
                    l.decide(req(rid, i, i, "10.00", None), star(4), p, "m".into(), now())
                        .await
                })
            })
            .collect();
        for c in calls {
            assert!(!c.await.unwrap().unwrap().repeated);
        }
    }
    // The database file alone (a copy, without its WAL) holds what was checkpointed.
    let copy = dir.path().join("copy.sqlite");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        std::fs::copy(&path, &copy).unwrap();
        let in_file: Result<i64, _> = Connection::open(&copy)
            .and_then(|c| c.query_row("SELECT COUNT(*) FROM decisions", [], |r| r.get(0)));
        if in_file.as_ref().is_ok_and(|n| *n == 2_000) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "10 s after 2,000 decisions the database file alone holds {in_file:?} of them: the WAL was not checkpointed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Issue 25: a broken invariant stops money moves. An advance written behind the
/// ledger's back (a buyer the book holds owing nothing) is settled: the book refuses to
/// settle what it never counted, the command fails naming the invariant, readiness
/// turns false, and every later command is refused until a restart, which rebuilds the
/// book from the records.
#[tokio::test]
async fn a_broken_invariant_stops_money_moves_until_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.sqlite");
    let l = Ledger::open(&path).unwrap();
    let p = Arc::new(Policy::default());
    let d = l
        .decide(
            req(1, 7, 1, "10.00", Some("SF1")),
            star(5),
            p.clone(),
            "m".into(),
            now(),
        )
        .await
        .unwrap();
    assert!(d.decision.advanced_refund);
    let side = rusqlite::Connection::open(&path).unwrap();
    side.execute_batch(
        "INSERT INTO decisions (return_id, decision_id, buyer_id, order_id, merchant_id, category,
           amount, reason, delivered_at, requested_at, decided_at, star, rated, instant, pickup,
           advanced, pickup_from, merchant_answer_by, policy_version, model_version, reasons,
           shadow, tracking_number)
         SELECT 2, decision_id + 1, 8, 2, merchant_id, category, amount, reason, delivered_at,
           requested_at, decided_at, star, rated, instant, pickup, advanced, pickup_from,
           merchant_answer_by, policy_version, model_version, reasons, shadow, 'SF2'
         FROM decisions WHERE return_id = 1;
         INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at,
           advanced_at, local_date)
         SELECT 2, 8, 2, amount, 'SF2', shipped_at, advanced_at, local_date
         FROM advances WHERE return_id = 1;",
    )
    .unwrap();
    drop(side);
    let e = l
        .settle(ReturnId(2), Outcome::ReceivedOk, now(), now())
        .await
        .unwrap_err();
    assert!(matches!(e, LedgerError::Broken(_)), "{e}");
    assert!(l.health().unwrap_err().contains("money moves are stopped"));
    // Nothing moves any more, not even for a buyer the book has right.
    let e = l
        .settle(ReturnId(1), Outcome::ReceivedOk, now(), now())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("money moves are stopped"), "{e}");
    assert!(l.exposure(BuyerId(7)).await.is_err());
    drop(l);
    // A restart rebuilds the book from the records: both advances are open.
    let l = Ledger::open(&path).unwrap();
    assert_eq!(l.health(), Ok(()));
    assert_eq!(l.exposure(BuyerId(8)).await.unwrap().open_advances, 1);
    let s = l
        .settle(ReturnId(2), Outcome::ReceivedOk, now(), now())
        .await
        .unwrap();
    assert_eq!(s.outstanding, Money::ZERO);
}
