#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The database goes away and comes back: the replica's ledger says it is not ready and
//! refuses money calls with `Unavailable` (the service's 503) while it is down, and
//! recovers by itself when it returns; nothing acknowledged before is lost. A test
//! binary of its own: it stops the shared test server. Skipped, saying so, without a
//! throwaway server (`FASTREFUND_TEST_PG_DIR`).

use chrono::{TimeZone, Utc};
use fastrefund_core::domain::{
    BuyerId, Category, MerchantId, OrderId, Outcome, ReturnId, ReturnReason, ReturnRequest, Star,
};
use fastrefund_core::policy::Policy;
use fastrefund_pg::{PgLedger, PgOptions};
use fastrefund_store::{LedgerError, LedgerStore};
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
    system_setting(&admin, "ALTER SYSTEM SET fsync = off").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = PgLedger::connect(&url, PgOptions::default()).await;
    system_setting(&admin, "ALTER SYSTEM RESET fsync").await;
    assert!(
        matches!(&refused, Err(LedgerError::Open { message, .. }) if message.contains("fsync = off")),
        "{:?}",
        refused.err()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    PgLedger::connect(&url, PgOptions::default()).await.unwrap();
}

/// Changes a server-wide setting (`ALTER SYSTEM …`, which cannot run in a transaction
/// block) and has the server reload its configuration.
async fn system_setting(admin: &tokio_postgres::Client, sql: &str) {
    admin.batch_execute(sql).await.unwrap();
    admin
        .batch_execute("SELECT pg_reload_conf()")
        .await
        .unwrap();
}

/// An advance of 37.13 for buyer `rid` (one each, so that only the day's budget binds),
/// advanced at decision time.
fn advance_req(rid: u64) -> fastrefund_core::domain::ReturnRequest {
    fastrefund_core::domain::ReturnRequest {
        buyer_id: BuyerId(rid),
        amount: "37.13".parse().unwrap(),
        ..req(rid)
    }
}

/// Four replicas spend one daily budget at once; one is killed (dropped without its
/// clean stop) and PostgreSQL crashes and restarts in the middle; the others stop
/// cleanly. The day's advances never pass what is reserved, nor that the budget, to the
/// cent; what every acknowledged answer advanced is what the ledger holds; and at the
/// end, a buyer is refused for the budget only when less than their advance is left
/// unreserved (the killed replica's unspent slice is lost for the day, never spent).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_daily_budget_holds_to_the_cent_across_replicas_kills_and_restarts() {
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    if std::env::var("FASTREFUND_TEST_PG_DIR").is_err() {
        fastrefund_testkit::pg::say_skipped(
            "FASTREFUND_TEST_PG_DIR does not name a server this test may restart",
        );
        return;
    }
    let _alone = SERVER.lock().await;
    let url = server.fresh_database().await;
    let options = PgOptions {
        budget_slices: 8,
        ..PgOptions::default()
    };
    let mut replicas = Vec::new();
    for _ in 0..4 {
        replicas.push(Arc::new(PgLedger::connect(&url, options).await.unwrap()));
    }
    let policy = Arc::new(Policy {
        daily_budget: "2000.00".parse().unwrap(),
        ..Policy::default()
    });
    let star = Some(Star::try_from(5u8).unwrap());
    let now = Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap();
    let day = fastrefund_core::policy::local_date(now, &policy);
    let budget = policy.daily_budget;
    let amount: fastrefund_core::domain::Money = "37.13".parse().unwrap();
    let acknowledged = Arc::new(std::sync::Mutex::new(fastrefund_core::domain::Money::ZERO));
    let wave = |from: u64, to: u64, live: Vec<Arc<PgLedger>>| {
        let (policy, acknowledged) = (policy.clone(), acknowledged.clone());
        async move {
            let calls: Vec<_> = (from..to)
                .map(|rid| {
                    let (ledger, policy, acknowledged) = (
                        live[rid as usize % live.len()].clone(),
                        policy.clone(),
                        acknowledged.clone(),
                    );
                    tokio::spawn(async move {
                        let d = ledger
                            .decide(advance_req(rid), star, None, None, policy, "m".into(), now)
                            .await;
                        if let Ok(d) = &d
                            && d.decision.advanced_refund
                            && !d.repeated
                        {
                            let mut a = acknowledged.lock().unwrap();
                            *a = *a + amount;
                        }
                        d
                    })
                })
                .collect();
            let mut refused_for_budget = 0;
            for c in calls {
                if let Ok(d) = c.await.unwrap()
                    && d.decision
                        .reasons
                        .iter()
                        .any(|r| r.code() == "daily_budget_exhausted")
                {
                    refused_for_budget += 1;
                }
            }
            refused_for_budget
        }
    };
    // Half the budget's worth through all four.
    wave(1, 28, replicas.clone()).await;
    // One replica is killed: no clean stop, its unspent slice stays reserved.
    let killed = replicas.pop().unwrap();
    drop(killed);
    // The database crashes and comes back; the rest go on.
    assert!(server.crash_restart());
    let mut back = false;
    for _ in 0..100 {
        if replicas[0].ready().await.is_ok() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "PostgreSQL did not come back");
    let refused = wave(100, 200, replicas.clone()).await;
    assert!(refused > 0, "the budget never bound");
    let (advanced, reserved) = replicas[0].day_totals(day).await.unwrap();
    assert!(
        advanced <= reserved && reserved <= budget,
        "{advanced} / {reserved} / {budget}"
    );
    assert_eq!(
        advanced,
        *acknowledged.lock().unwrap(),
        "acknowledged advances"
    );
    replicas[0].check_invariants().await.unwrap();

    // Clean stops give their slices back; a new replica spends what is unreserved,
    // to the last advance that fits.
    for r in &replicas {
        r.close().await.unwrap();
    }
    drop(replicas);
    let last = PgLedger::connect(&url, options).await.unwrap();
    let mut rid = 1000;
    loop {
        let d = last
            .decide(
                advance_req(rid),
                star,
                None,
                None,
                policy.clone(),
                "m".into(),
                now,
            )
            .await
            .unwrap();
        rid += 1;
        if !d.decision.advanced_refund {
            assert!(
                d.decision
                    .reasons
                    .iter()
                    .any(|r| r.code() == "daily_budget_exhausted"),
                "{:?}",
                d.decision.reasons
            );
            break;
        }
    }
    let (advanced, reserved) = last.day_totals(day).await.unwrap();
    assert!(
        advanced <= reserved && reserved <= budget,
        "{advanced} / {reserved} / {budget}"
    );
    let unreserved = budget.value() - reserved.value();
    assert!(
        unreserved < amount.value(),
        "refused with {unreserved} of the budget unreserved"
    );
    last.check_invariants().await.unwrap();
}

/// A CA and a server certificate for 127.0.0.1 and localhost it signed: (CA PEM,
/// certificate PEM, key PEM).
fn test_certificates(ca_name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), server.pem(), key.serialize_pem())
}

/// The ledger over TLS (`sslmode=verify-full`, the server's CA given as `sslrootcert`)
/// against the throwaway server with a self-signed CA: its sessions are encrypted, and
/// a server whose certificate another CA signed is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_runs_over_tls_and_refuses_a_server_it_cannot_verify() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    let Ok(dir) = std::env::var("FASTREFUND_TEST_PG_DIR") else {
        fastrefund_testkit::pg::say_skipped(
            "FASTREFUND_TEST_PG_DIR does not name a server this test may reconfigure",
        );
        return;
    };
    let _alone = SERVER.lock().await;
    let url = server.fresh_database().await;
    // The server's files belong to the user PostgreSQL runs as.
    let owner = std::fs::metadata(&dir).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_certificates("fastrefund test CA");
    let (other_ca, _, _) = test_certificates("another CA");
    let path = |name: &str| certs.path().join(name);
    for (name, text) in [
        ("ca.pem", &ca),
        ("other.pem", &other_ca),
        ("server.crt", &cert),
        ("server.key", &key),
    ] {
        std::fs::write(path(name), text).unwrap();
        std::os::unix::fs::chown(path(name), Some(owner.uid()), Some(owner.gid())).unwrap();
    }
    std::fs::set_permissions(path("server.key"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(certs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    system_setting(
        &admin,
        &format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            path("server.crt").display()
        ),
    )
    .await;
    system_setting(
        &admin,
        &format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            path("server.key").display()
        ),
    )
    .await;
    system_setting(&admin, "ALTER SYSTEM SET ssl = on").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sep = if url.contains('?') { '&' } else { '?' };
    let tls_url = format!(
        "{url}{sep}sslmode=verify-full&sslrootcert={}",
        path("ca.pem").display()
    );
    let result = async {
        let ledger = PgLedger::connect(&tls_url, PgOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let policy = Arc::new(Policy::default());
        let now = Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap();
        let d = ledger
            .decide(
                req(1),
                Some(Star::try_from(5u8).unwrap()),
                None,
                None,
                policy,
                "m".into(),
                now,
            )
            .await
            .map_err(|e| e.to_string())?;
        let encrypted: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE s.ssl AND a.datname = current_database()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let wrong_ca = format!(
            "{url}{sep}sslmode=verify-full&sslrootcert={}",
            path("other.pem").display()
        );
        let refused = PgLedger::connect(&wrong_ca, PgOptions::default()).await;
        Ok::<_, String>((d.decision.advanced_refund, encrypted, refused.err()))
    }
    .await;
    system_setting(&admin, "ALTER SYSTEM RESET ssl").await;
    system_setting(&admin, "ALTER SYSTEM RESET ssl_cert_file").await;
    system_setting(&admin, "ALTER SYSTEM RESET ssl_key_file").await;
    let (advanced, encrypted, refused) = result.unwrap();
    assert!(advanced);
    assert!(encrypted >= 1, "no encrypted session of the ledger");
    let refused = refused.expect("a server signed by another CA was accepted");
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
}

/// Issue 25: a broken invariant stops this replica's money moves. An advance written
/// behind the ledger's back (its buyer has no exposure row) is settled: the book
/// refuses to settle what it never counted, the call fails naming the invariant, the
/// replica is not ready, and every later call is refused until it is restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_invariant_stops_the_replica_until_a_restart() {
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    // The other tests of this binary stop the server: not while this one runs.
    let _alone = SERVER.lock().await;
    let url = server.fresh_database().await;
    let ledger = PgLedger::connect(&url, PgOptions::default()).await.unwrap();
    let policy = Arc::new(Policy::default());
    let star = Some(Star::try_from(5u8).unwrap());
    let now = Utc.with_ymd_and_hms(2026, 7, 1, 3, 0, 0).unwrap();
    let d = ledger
        .decide(req(1), star, None, None, policy.clone(), "m".into(), now)
        .await
        .unwrap();
    assert!(d.decision.advanced_refund);
    let (side, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    side.batch_execute(
        "INSERT INTO decisions (return_id, decision_id, buyer_id, order_id, merchant_id, category,
           amount, reason, delivered_at, requested_at, tracking_number, decided_at, star, instant,
           decision, policy_version, model_version, shadow)
         SELECT 2, decision_id + 1000, 8, 2, merchant_id, category, amount, reason, delivered_at,
           requested_at, 'SF2', decided_at, star, instant, decision, policy_version,
           model_version, shadow
         FROM decisions WHERE return_id = 1;
         INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at,
           advanced_at, local_date)
         SELECT 2, 8, 2, amount, 'SF2', shipped_at, advanced_at, local_date
         FROM advances WHERE return_id = 1;",
    )
    .await
    .unwrap();
    let e = ledger
        .settle(ReturnId(2), Outcome::ReceivedOk, now, now)
        .await
        .unwrap_err();
    assert!(matches!(e, LedgerError::Broken(_)), "{e}");
    assert!(
        ledger
            .ready()
            .await
            .unwrap_err()
            .contains("money moves are stopped")
    );
    let e = ledger
        .settle(ReturnId(1), Outcome::ReceivedOk, now, now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("money moves are stopped"), "{e}");
    // Another replica (or this one restarted) is not stopped: only what it read was
    // broken, and it refuses the same settlement on its own.
    let other = PgLedger::connect(&url, PgOptions::default()).await.unwrap();
    assert!(other.ready().await.is_ok());
    let e = other
        .settle(ReturnId(2), Outcome::ReceivedOk, now, now)
        .await
        .unwrap_err();
    assert!(matches!(e, LedgerError::Broken(_)), "{e}");
}
