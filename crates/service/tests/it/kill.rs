//! Money is never lost or counted twice: concurrent tracking and outcome calls against
//! the real service process, killed with SIGKILL at random moments (several times)
//! and restarted on the same ledger — the embedded SQLite ledger, and a PostgreSQL
//! ledger shared by two replicas (one of them killed each round, and once PostgreSQL
//! itself restarted with `pg_ctl restart -m immediate`; skipped, saying so, without
//! `FASTREFUND_TEST_PG`). After every restart:
//! - every acknowledged advance is there (a repeat answers `advanced: true`), once;
//! - every acknowledged outcome is there;
//! - each buyer's outstanding amount, as the server reports it, equals the advances
//!   minus the settlements recorded in the database;
//! - no buyer is above the limit for their star.

use fastrefund_core::domain::{BuyerId, Money, Star};
use fastrefund_core::policy::Policy;
use fastrefund_snapshot::Ratings;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API: &str = "kill-test-api-token";

pub struct Server {
    child: Child,
    pub base: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real service process (`fastrefund-serve`, the options of `fastrefund serve`) on a
/// free loopback port, once ready.
pub async fn start(ledger: &str, snapshot: &Path) -> Server {
    start_with(ledger, snapshot, &[]).await
}

/// [`start`] with more options.
pub async fn start_with(ledger: &str, snapshot: &Path, more: &[&str]) -> Server {
    let port = free_port();
    let server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_fastrefund-serve"))
            .args(["--snapshot", snapshot.to_str().unwrap(), "--ledger", ledger])
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(more)
            .env("FASTREFUND_API_TOKEN", API)
            .env("FASTREFUND_ADMIN_TOKEN", "kill-test-admin-token")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{}/readyz", server.base)).send().await
            && r.status() == 200
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

impl Server {
    /// SIGKILL, as a crash would.
    fn kill(self) {
        drop(self);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Acked {
    /// return_id -> (buyer, amount)
    advances: BTreeMap<u64, (u64, Money)>,
    /// return_id -> outcome
    outcomes: BTreeMap<u64, &'static str>,
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> Option<(u16, Value)> {
    let r = client
        .post(format!("{base}{path}"))
        .bearer_auth(API)
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let s = r.status().as_u16();
    Some((s, r.json().await.ok()?))
}

fn copy(acked: &Mutex<Acked>) -> Acked {
    let a = acked.lock().unwrap();
    Acked {
        advances: a.advances.clone(),
        outcomes: a.outcomes.clone(),
    }
}

/// The ledger under test.
enum Db {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Db {
    fn spec(&self) -> String {
        match self {
            Db::Sqlite(p) => p.to_str().unwrap().to_string(),
            Db::Postgres(url) => url.clone(),
        }
    }

    /// Outstanding per buyer from the database's own records (advances not settled),
    /// checking that no advance is recorded twice.
    async fn outstanding(&self) -> HashMap<u64, Money> {
        match self {
            Db::Sqlite(path) => outstanding_in_sqlite(path),
            Db::Postgres(url) => {
                // Advances are keyed by return_id there: one per return by the schema.
                let pg = fastrefund_pg::PgLedger::connect(url, Default::default())
                    .await
                    .unwrap();
                let rows = pg.check_invariants().await.unwrap();
                rows.into_iter().map(|(b, m, _)| (b, m)).collect()
            }
        }
    }
}

/// Outstanding per buyer from the SQLite file's own records.
fn outstanding_in_sqlite(ledger: &Path) -> HashMap<u64, Money> {
    let conn =
        rusqlite::Connection::open_with_flags(ledger, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut q = conn
        .prepare(
            "SELECT a.buyer_id, a.amount FROM advances a LEFT JOIN outcomes o ON o.return_id = a.return_id
             WHERE o.return_id IS NULL",
        )
        .unwrap();
    let mut out: HashMap<u64, Money> = HashMap::new();
    for row in q
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (b, a) = row.unwrap();
        let e = out.entry(b as u64).or_default();
        *e = *e + a.parse::<Money>().unwrap();
    }
    let dup: i64 = conn
        .query_row(
            "SELECT COUNT(*) - COUNT(DISTINCT return_id) FROM advances",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dup, 0, "an advance is recorded twice");
    out
}

async fn verify(server: &Server, db: &Db, acked: &Acked, buyers: &[(u64, Star)]) {
    let client = reqwest::Client::new();
    for (rid, (_, amount)) in &acked.advances {
        let (s, t) = post(
            &client,
            &server.base,
            &format!("/v1/returns/{rid}/tracking"),
            json!({"tracking_number": format!("T{rid}")}),
        )
        .await
        .unwrap();
        assert_eq!(
            (s, &t["advanced"]),
            (200, &json!(true)),
            "acknowledged advance {rid} lost: {t}"
        );
        assert_eq!(t["amount"].as_str().unwrap(), amount.to_string());
    }
    for (rid, outcome) in &acked.outcomes {
        let (s, o) = post(
            &client,
            &server.base,
            &format!("/v1/returns/{rid}/outcome"),
            json!({"outcome": outcome, "at": "2026-07-05T02:00:00Z"}),
        )
        .await
        .unwrap();
        assert_eq!(s, 200, "acknowledged outcome of {rid} lost: {o}");
    }
    let db = db.outstanding().await;
    let policy = Policy::default();
    for (b, star) in buyers {
        let r = client
            .get(format!("{}/v1/buyers/{b}/exposure", server.base))
            .bearer_auth(API)
            .send()
            .await
            .unwrap();
        let e: Value = r.json().await.unwrap();
        let served: Money = e["outstanding"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            served,
            db.get(b).copied().unwrap_or_default(),
            "buyer {b}: served vs recorded"
        );
        assert!(
            served <= policy.limit_for(*star),
            "buyer {b} above the limit: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_money_survives_sigkill_and_is_never_counted_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::Sqlite(dir.path().join("ledger.sqlite"));
    kill_rounds(&db, 1, None).await;
    fastrefund_ledger::check_invariants(Path::new(&db.spec())).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_postgres_survive_sigkill_and_a_database_crash() {
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    let db = Db::Postgres(server.fresh_database().await);
    kill_rounds(&db, 2, Some(&server)).await;
}

/// Five rounds of traffic through `replicas` service processes on `db`; each round
/// kills the first replica with SIGKILL at a random moment (and, with `crash`, round 2
/// restarts PostgreSQL itself as a crash would), then verifies what was acknowledged
/// through fresh processes.
async fn kill_rounds(db: &Db, replicas: usize, crash: Option<&fastrefund_testkit::pg::Server>) {
    let ledger = db.spec();
    let snapshot: PathBuf = fastrefund_testkit::repo_root().join("data/snapshot");
    let ratings = Ratings::load(&snapshot).unwrap();
    // Twenty buyers who get instant release, so that limits are reached often.
    let buyers: Vec<(u64, Star)> = ratings
        .sample_ids(ratings.len())
        .iter()
        .filter_map(|b| ratings.get(BuyerId(*b)).map(|r| (*b, r.star)))
        .filter(|(_, s)| s.get() >= 3)
        .take(20)
        .collect();
    let acked = Arc::new(Mutex::new(Acked::default()));
    let next_id = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for round in 0..5 {
        let mut servers = Vec::new();
        for _ in 0..replicas {
            servers.push(start(&ledger, &snapshot).await);
        }
        if round > 0 {
            let so_far = copy(&acked);
            verify(&servers[0], db, &so_far, &buyers).await;
        }
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..12u64 {
            let (base, acked, next_id, buyers, stop) = (
                servers[w as usize % replicas].base.clone(),
                acked.clone(),
                next_id.clone(),
                buyers.clone(),
                stop.clone(),
            );
            let seed = round * 100 + w;
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let mut failures = 0;
                while failures < 3 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let rid = next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (buyer, _) = buyers[rng.random_range(0..buyers.len())];
                    let amount = Money::from_cents(rng.random_range(1_000..40_000));
                    let body = json!({
                        "return_id": rid, "buyer_id": buyer, "order_id": rid, "merchant_id": 1,
                        "category": "shoes", "amount": amount.to_string(), "reason": "no_reason",
                        "delivered_at": "2026-06-30T02:00:00Z", "requested_at": "2026-07-01T02:00:00Z"
                    });
                    if post(&client, &base, "/v1/eligibility", body).await.is_none() {
                        failures += 1;
                        continue;
                    }
                    match post(&client, &base, &format!("/v1/returns/{rid}/tracking"), json!({"tracking_number": format!("T{rid}")})).await {
                        Some((200, t)) if t["advanced"] == true => {
                            acked.lock().unwrap().advances.insert(rid, (buyer, amount));
                        }
                        Some(_) => {}
                        None => failures += 1,
                    }
                    // Settle an earlier acknowledged advance now and then.
                    let pick = {
                        let a = acked.lock().unwrap();
                        a.advances.keys().find(|k| !a.outcomes.contains_key(k) && **k % 3 == rid % 3).copied()
                    };
                    if let Some(old) = pick {
                        let outcome = ["received_ok", "merchant_fault", "received_mismatch", "not_shipped"][rng.random_range(0..4)];
                        match post(&client, &base, &format!("/v1/returns/{old}/outcome"), json!({"outcome": outcome, "at": "2026-07-05T02:00:00Z"})).await {
                            Some((200, _)) => {
                                acked.lock().unwrap().outcomes.insert(old, outcome);
                            }
                            Some((409, _)) => {} // settled concurrently by another worker
                            Some(_) => {}
                            None => failures += 1,
                        }
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1200))).await;
        servers.remove(0).kill();
        if round == 2
            && let Some(pg) = crash
            && !pg.crash_restart()
        {
            fastrefund_testkit::pg::say_skipped(
                "the database crash: FASTREFUND_TEST_PG_DIR does not name a server this test may restart",
            );
        }
        // The surviving replica's workers go on a little, then stop.
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        drop(servers);
    }
    let server = start(&ledger, &snapshot).await;
    let final_acked = copy(&acked);
    assert!(
        final_acked.advances.len() > 20,
        "too few advances to mean anything: {}",
        final_acked.advances.len()
    );
    verify(&server, db, &final_acked, &buyers).await;
    server.kill();
}
