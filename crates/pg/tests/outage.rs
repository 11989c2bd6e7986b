#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The database goes away and comes back: the replica's ledger says it is not ready and
//! refuses money calls with `Unavailable` (the service's 503) while it is down, and
//! recovers by itself when it returns; nothing acknowledged before is lost. A test
//! binary of its own: it stops the shared test server. Skipped, saying so, without a
//! throwaway server (`FASTREFUND_TEST_PG_DIR`).

use chrono::{TimeZone, Utc};
use fastrefund_core::domain::{
    BuyerId, Category, MerchantId, OrderId, ReturnId, ReturnReason, ReturnRequest, Star,
};
use fastrefund_core::policy::Policy;
use fastrefund_ledger::{LedgerError, LedgerStore};
use fastrefund_pg::{PgLedger, PgOptions};
use std::sync::Arc;
use std::time::Duration;

fn req(rid: u64) -> ReturnRequest {
    ReturnRequest {
        return_id: ReturnId(rid),
        buyer_id: BuyerId(9),
        order_id: OrderId(rid),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: "59.90".parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: Utc.with_ymd_and_hms(2026, 7, 1, 2, 0, 0).unwrap(),
        tracking_number: Some(format!("SF{rid}")),
    }
}

/// The tests of this binary change the whole server: one at a time.
static SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_unready_while_the_database_is_down_and_recovers_by_itself() {
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    let _alone = SERVER.lock().await;
    if std::env::var("FASTREFUND_TEST_PG_DIR").is_err() {
        fastrefund_testkit::pg::say_skipped(
            "FASTREFUND_TEST_PG_DIR does not name a server this test may stop",
        );
        return;
    }
    let url = server.fresh_database().await;
    let options = PgOptions {
        connect_timeout: Duration::from_millis(500),
        ..PgOptions::default()
    };
    let ledger = PgLedger::connect(&url, options).await.unwrap();
    let policy = Arc::new(Policy::default());
    let star = Some(Star::try_from(5u8).unwrap());
    let now = Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap();
    let first = ledger
        .decide(req(1), star, None, None, policy.clone(), "m".into(), now)
        .await
        .unwrap();
    assert!(first.decision.advanced_refund);
    assert!(ledger.ready().await.is_ok());

    assert!(server.control("down"));
    assert!(
        ledger.ready().await.is_err(),
        "ready with the database down"
    );
    let during = ledger
        .decide(req(2), star, None, None, policy.clone(), "m".into(), now)
        .await;
    assert!(
        matches!(during, Err(LedgerError::Unavailable(_))),
        "{during:?}"
    );

    assert!(server.control("up"));
    let mut ready = false;
    for _ in 0..100 {
        if ledger.ready().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "not ready 10 s after the database came back");
    // What was acknowledged before is there; new work goes through.
    let again = ledger
        .decide(req(1), star, None, None, policy.clone(), "m".into(), now)
        .await
        .unwrap();
    assert!(again.repeated && again.decision_id == first.decision_id);
    let e = ledger.exposure(BuyerId(9)).await.unwrap();
    assert_eq!(e.open_advances, 1);
    ledger
        .decide(req(3), star, None, None, policy, "m".into(), now)
        .await
        .unwrap();
}

/// A server that would acknowledge commits it can lose (`fsync = off`), or sessions that
/// would answer before the WAL is flushed (`synchronous_commit = off` in the URL's
/// options), are refused at start, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_refuses_a_server_that_does_not_make_commits_durable() {
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    if std::env::var("FASTREFUND_TEST_PG_DIR").is_err() {
        fastrefund_testkit::pg::say_skipped(
            "FASTREFUND_TEST_PG_DIR does not name a server this test may reconfigure",
        );
        return;
    }
    let _alone = SERVER.lock().await;
    let url = server.fresh_database().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let lax = format!("{url}{sep}options=-c%20synchronous_commit%3Doff");
    let refused = PgLedger::connect(&lax, PgOptions::default()).await;
    assert!(
        matches!(&refused, Err(LedgerError::Open { message, .. }) if message.contains("synchronous_commit")),
        "{:?}",
        refused.err()
    );

    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute("ALTER SYSTEM SET fsync = off")
        .await
        .unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = PgLedger::connect(&url, PgOptions::default()).await;
    admin
        .batch_execute("ALTER SYSTEM RESET fsync")
        .await
        .unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
    assert!(
        matches!(&refused, Err(LedgerError::Open { message, .. }) if message.contains("fsync = off")),
        "{:?}",
        refused.err()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    PgLedger::connect(&url, PgOptions::default()).await.unwrap();
}
