//! The durable ledger of decisions, advanced refunds and their outcomes.
//!
//! **Rules.** The money rules are the core's, pure and shared with every other store
//! ([`fastrefund_core::ledger`]): a return's lifecycle as one state machine, whose
//! every move ([`decide_step`], [`track_step`], [`settle_step`], a reviewer's release
//! and a case's correction) gives the next state and its effects, and the [`Book`]
//! (open exposure per buyer, advances per day, latest losses), which applies the
//! effects' money and checks its invariant after each, never clamping. This crate
//! reads what a command needs (through the schema's indexes), steps, and writes the
//! effects (`State::write`), atomically and durably. A broken invariant stops every
//! command and turns readiness false until an operator restarts the service. The
//! core's in-memory ledger and the PostgreSQL store run the same steps, and the
//! model-based test (`fastrefund_core::ledger::model`) holds all three to one
//! reference.
//!
//! **Storage.** SQLite (bundled) in WAL mode. The schema is versioned ([`schema`]).
//!
//! **One writer at a time, group commit.** One connection owns the in-memory view
//! (each buyer's open exposure, each day's advances, each buyer's latest loss; a
//! return's own state is read through the schema's indexes, see [`State`]). A
//! caller queues its command; if no batch is being written, it starts a leader task:
//! it takes every command queued (up to [`MAX_BATCH`]), applies them in order against
//! the view inside one transaction, commits, and hands any commands that arrived
//! meanwhile to a new leader task. The leader is a task of its own, never the caller's
//! future: a caller may be dropped at any await (its client went away), and a leader
//! that vanished with it would leave the queue led by no one. (No dedicated writer
//! thread: the commit runs on a runtime thread, which saves a thread hand-off per
//! batch; it takes tens of microseconds.) Anything that moves money (an advance, a
//! settlement, an exposure reading) is answered only after a second thread
//! (`ledger-sync`) has made it durable with one `fdatasync` of the WAL for every batch
//! waiting, overlapping the next batch. SQLite runs with `synchronous = NORMAL`, so its
//! own commit does not sync; our fdatasync of the WAL covers every frame written
//! before it, and SQLite itself syncs the WAL before a checkpoint and the database
//! after one. A decision that moves no money is answered once committed (it survives
//! a crash or kill of the process) and is synced within [`IDLE_SYNC`];
//! [`LedgerOptions::sync_every_decision`] makes it wait for the fdatasync too. So:
//! - nothing is acknowledged before it is durable (a crash loses only unanswered work);
//! - concurrent commands for the same buyer are applied one after another, so two
//!   advances can never together pass the buyer's limit or the day's budget;
//! - a repeated call (same `return_id`) finds the recorded state and answers the same,
//!   advancing nothing twice, even after a restart;
//! - one fsync is shared by every command waiting, and the fsync of one batch overlaps
//!   the work of the next: that is what makes tens of thousands of durable decisions a
//!   second possible with durability on;
//! - WAL checkpoints run on a third thread (`ledger-checkpoint`), off the commit path.
//!
//! If a commit fails, the transaction rolls back, every caller in the batch gets an
//! error, and the in-memory view is rebuilt from the database (the source of truth).
//! If the fdatasync fails, the callers get an error (a retry finds what was recorded).
//!
//! **Designs measured and not taken** (`docs/benchmarks.md`, "What a decision journal
//! would buy"; each prototype is a patch kept in git history, `docs/bench/*.patch` at
//! d1068fa): the caller applying its command itself under the writer's lock, by flat
//! combining, in a transaction
//! committed every 10 ms behind a journal (1.10x this design's eligibility throughput,
//! unpinned); a journal folded into SQLite off the request path (1.27x, its best case);
//! decisions in an LSM tree instead of SQLite (about 1.35x). None reaches half of
//! `/healthz` on 2 shared cores, and each would move durability out of SQLite's
//! transactions, so the group commit stays until a bigger machine or target says
//! otherwise.

pub mod cases;
mod schema;
pub mod store;

use fastrefund_store::{
    BuyerExposure, CaseAnswer, CaseCall, Decided, Kept, LedgerError, Settled, Tracked,
};

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use fastrefund_core::domain::{
    BuyerId, Category, Decision, MerchantId, Money, OrderId, Outcome, ReturnId, ReturnReason,
    ReturnRequest, Star,
};
use fastrefund_core::policy::{self, LedgerView, Policy};
use rusqlite::{Connection, params};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;

use fastrefund_core::ledger::{
    Advance, Book, DecideStep, Effect, NewDecision, Refusal, ReturnRec, ReturnState, decide_step,
    keep_step, settle_step, shadow_record, track_step,
};
use fastrefund_core::ledger::{ExportRow, StarLookup};

/// How many times a new leader lets the other ready tasks run before it writes, so
/// that one commit carries every request already on its way.
const LEADER_YIELDS: usize = 2;

/// Most commands applied in one transaction.
pub const MAX_BATCH: usize = 1024;

/// What the writer holds in memory. It does not grow with the number of returns ever
/// decided (a marketplace decides millions a day): only what the hot path needs and
/// cannot cheaply read, each bounded by something other than history. A decided
/// return, an order already refunded or a tracking number already used is read
/// through an index when a command needs it.
#[derive(Debug, Default)]
struct State {
    /// Ids of the policy and model version strings in `versions`, both ways (a few).
    versions: HashMap<String, i64>,
    version_text: HashMap<i64, String>,
    /// The money: open exposure per buyer, advances per day, each buyer's latest loss
    /// (the core's [`Book`], whose rules every store shares).
    book: Book,
    /// Version ids first recorded by the command being applied (forgotten if its rows
    /// are rolled back).
    new_versions: Vec<i64>,
    next_decision_id: u64,
}

enum Cmd {
    Decide {
        req: ReturnRequest,
        star: Option<Star>,
        rated_as_of: Option<DateTime<Utc>>,
        shadow: Option<Option<Star>>,
        policy: Arc<Policy>,
        model_version: String,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<Decided, LedgerError>>,
    },
    Track {
        return_id: u64,
        tracking_number: String,
        shipped_at: DateTime<Utc>,
        stars: Option<Arc<dyn StarLookup>>,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<Tracked, LedgerError>>,
    },
    Settle {
        return_id: u64,
        outcome: Outcome,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<Settled, LedgerError>>,
    },
    Exposure {
        buyer: u64,
        reply: oneshot::Sender<Result<BuyerExposure, LedgerError>>,
    },
    Keep {
        return_id: u64,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<Kept, LedgerError>>,
    },
    Case {
        call: CaseCall,
        deadlines: fastrefund_core::cases::CaseDeadlines,
        now: DateTime<Utc>,
        reply: oneshot::Sender<Result<CaseAnswer, LedgerError>>,
    },
    /// A read: the recorded answer to a repeated call, if any.
    Replay {
        req: Replayed,
        reply: oneshot::Sender<Result<Option<Replay>, LedgerError>>,
    },
}

/// A call to answer from the record.
enum Replayed {
    Decision(ReturnRequest),
    Tracking { return_id: u64, tracking: String },
}

/// A recorded answer.
enum Replay {
    Decision(Decided),
    Tracking(Tracked),
}

/// A reply waiting for its batch to commit.
enum Reply {
    Decide(
        oneshot::Sender<Result<Decided, LedgerError>>,
        Result<Decided, LedgerError>,
    ),
    Track(
        oneshot::Sender<Result<Tracked, LedgerError>>,
        Result<Tracked, LedgerError>,
    ),
    Settle(
        oneshot::Sender<Result<Settled, LedgerError>>,
        Result<Settled, LedgerError>,
    ),
    Exposure(
        oneshot::Sender<Result<BuyerExposure, LedgerError>>,
        Result<BuyerExposure, LedgerError>,
    ),
    Keep(
        oneshot::Sender<Result<Kept, LedgerError>>,
        Result<Kept, LedgerError>,
    ),
    Replay(
        oneshot::Sender<Result<Option<Replay>, LedgerError>>,
        Result<Option<Replay>, LedgerError>,
    ),
    /// `writes`: the call moved a case (answered once durable).
    Case(
        oneshot::Sender<Result<CaseAnswer, LedgerError>>,
        Result<CaseAnswer, LedgerError>,
        bool,
    ),
}

impl Reply {
    /// Whether the command was refused or failed (so its rows must not stay).
    fn failed(&self) -> bool {
        self.error().is_some()
    }

    fn error(&self) -> Option<&LedgerError> {
        match self {
            Reply::Decide(_, r) => r.as_ref().err(),
            Reply::Track(_, r) => r.as_ref().err(),
            Reply::Settle(_, r) => r.as_ref().err(),
            Reply::Exposure(_, r) => r.as_ref().err(),
            Reply::Keep(_, r) => r.as_ref().err(),
            Reply::Case(_, r, _) => r.as_ref().err(),
            Reply::Replay(_, r) => r.as_ref().err(),
        }
    }

    /// Whether answering this reply must wait for the fdatasync: anything that moves
    /// money (an advance, a settlement) or reports it (exposure).
    fn moves_money(&self) -> bool {
        match self {
            Reply::Decide(_, Ok(d)) => d.decision.advanced_refund,
            Reply::Track(_, Ok(t)) => t.advanced,
            Reply::Settle(_, Ok(_)) | Reply::Exposure(_, Ok(_)) | Reply::Keep(_, Ok(_)) => true,
            // A case's move may correct money (and is a person's word): durable first.
            Reply::Case(_, Ok(_), writes) => *writes,
            _ => false,
        }
    }

    fn send(self, failed: Option<&LedgerError>) {
        // A caller that went away (timeout, client gone) is not an error here.
        match (self, failed) {
            (Reply::Decide(tx, r), None) => drop(tx.send(r)),
            (Reply::Decide(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Reply::Track(tx, r), None) => drop(tx.send(r)),
            (Reply::Track(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Reply::Settle(tx, r), None) => drop(tx.send(r)),
            (Reply::Settle(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Reply::Exposure(tx, r), None) => drop(tx.send(r)),
            (Reply::Exposure(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Reply::Keep(tx, r), None) => drop(tx.send(r)),
            (Reply::Keep(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Reply::Case(tx, r, _), None) => drop(tx.send(r)),
            (Reply::Replay(tx, r), None) => drop(tx.send(r)),
            (Reply::Replay(tx, _), Some(e)) => drop(tx.send(Err(e.clone()))),
            (Reply::Case(tx, _, _), Some(e)) => drop(tx.send(Err(e.clone()))),
        }
    }
}

/// The handle the service holds; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    shared: Arc<Shared>,
    path: Arc<PathBuf>,
}

struct Shared {
    queue: std::sync::Mutex<Queue>,
    writer: std::sync::Mutex<Writer>,
    health: Arc<Health>,
    /// An exclusive lock on `<ledger>.lock`, held while this ledger lives.
    _owner: std::fs::File,
}

/// Takes the exclusive lock that makes one process the ledger file's only writer: the
/// in-memory view is only right if nobody else writes the file. A second `serve` on the
/// same file is refused; within one process, a ledger reopened while the old one still
/// finishes its queued work waits for it (up to 5 s).
fn own(path: &Path) -> Result<std::fs::File, LedgerError> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let open_err = |message: String| LedgerError::Open {
        path: path.display().to_string(),
        message,
    };
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| open_err(format!("cannot open its lock file: {e}")))?;
    for _ in 0..100 {
        match rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(f),
            Err(rustix::io::Errno::WOULDBLOCK) => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Err(e) => return Err(open_err(format!("cannot lock it: {e}"))),
        }
    }
    Err(open_err(
        "another process is using this ledger (its .lock file is held); one ledger file has one writer".into(),
    ))
}

/// Whether the ledger can record, shared by the writer, the sync thread and readiness.
/// Faults fail closed: nothing is answered as recorded that may not be.
#[derive(Debug, Default)]
struct Health {
    /// Set for good when an fdatasync failed. After a failed fsync the kernel may have
    /// dropped the dirty pages and cleared the error, so a retry (even on a fresh
    /// descriptor) can report success for data that never reached the disk
    /// ("fsyncgate"): money moves stop until an operator restarts the service, and
    /// every call is refused saying why.
    sync_failed: std::sync::OnceLock<String>,
    /// Why the last commit failed (disk full, a read-only file, an I/O error); cleared
    /// by the next commit or probe that succeeds.
    commit_failed: std::sync::Mutex<Option<String>>,
    /// Fault injection for tests: the next fdatasync fails as if the disk said EIO.
    fail_next_sync: std::sync::atomic::AtomicBool,
    /// Set for good when the book's invariants broke (the records disagree with
    /// themselves): every command is refused until an operator has looked and
    /// restarted the service.
    broken: std::sync::OnceLock<String>,
}

impl Health {
    fn set_commit_failed(&self, why: Option<String>) {
        if let Ok(mut g) = self.commit_failed.lock() {
            *g = why;
        }
    }
}

#[derive(Default)]
struct Queue {
    cmds: Vec<Cmd>,
    /// A leader is writing a batch (and will hand over what arrives meanwhile).
    leading: bool,
}

/// Runs a leader as a task of its own, never inside a caller's future: hyper drops a
/// request's future when its client goes away, and a leader dropped half-way would
/// leave `leading` set with no one to write the queue, hanging every later call
/// (issue 9). The task lets the other ready tasks queue their commands first, so that
/// one commit carries them all.
fn spawn_leader(shared: Arc<Shared>) {
    tokio::spawn(async move {
        for _ in 0..LEADER_YIELDS {
            tokio::task::yield_now().await;
        }
        lead(&shared);
    });
}

/// Hands leadership on when a leader ends, however it ends (even by a panic while
/// writing): to a new leader task if commands are queued, or clears `leading`.
struct Handoff<'a>(&'a Arc<Shared>);

impl Drop for Handoff<'_> {
    fn drop(&mut self) {
        // A poisoned queue lock: callers already get "the ledger queue failed earlier".
        let more = match self.0.queue.lock() {
            Ok(mut q) => {
                q.leading = !q.cmds.is_empty();
                q.leading
            }
            Err(_) => false,
        };
        if more {
            spawn_leader(self.0.clone());
        }
    }
}

/// Writes one batch of queued commands, then hands leadership to a new task if more
/// arrived meanwhile (so no caller waits behind an unbounded run of batches).
fn lead(shared: &Arc<Shared>) {
    let _handoff = Handoff(shared);
    let mut batch = match shared.queue.lock() {
        Ok(mut q) => {
            let n = q.cmds.len().min(MAX_BATCH);
            q.cmds.drain(..n).collect::<Vec<_>>()
        }
        Err(_) => return,
    };
    if !batch.is_empty() {
        let started = std::time::Instant::now();
        let n = batch.len();
        match shared.writer.lock() {
            Ok(mut w) => w.apply_batch(&mut batch),
            Err(_) => {
                let err = unavailable("the ledger writer failed earlier; restart the service");
                batch.into_iter().for_each(|c| reply_error(c, &err));
            }
        }
        static BATCH_SIZE: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
        static COMMIT_SECONDS: std::sync::OnceLock<metrics::Histogram> = std::sync::OnceLock::new();
        BATCH_SIZE
            .get_or_init(|| metrics::histogram!("fastrefund_ledger_batch_size"))
            .record(n as f64);
        COMMIT_SECONDS
            .get_or_init(|| metrics::histogram!("fastrefund_ledger_commit_seconds"))
            .record(started.elapsed().as_secs_f64());
    }
}

fn unavailable(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

fn open_conn(path: &Path) -> Result<Connection, LedgerError> {
    let open_err = |e: &dyn std::fmt::Display| LedgerError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // (Its folder was made by `Ledger::open_with`, before the lock file in it.)
    let mut conn = Connection::open(path).map_err(|e| open_err(&e))?;
    // Small pages for a new ledger: a decision dirties one leaf of the return_id index
    // at a random place, and every dirty page is written whole to the WAL at commit.
    conn.pragma_update(None, "page_size", 1024)
        .map_err(|e| open_err(&e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| open_err(&e))?;
    // Durability comes from our own fdatasync of the WAL before any answer (see the
    // module doc); SQLite's NORMAL mode still syncs around checkpoints.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| open_err(&e))?;
    // A command's savepoint journal stays in memory, never a temporary file. (SQLite's
    // page cache stays at its default, 2 MiB: a 64 MiB one with a memory map did not
    // make eligibility faster, 0.36 -> 0.37 of /healthz, and grew the process with the
    // ledger's size.)
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(|e| open_err(&e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| open_err(&e))?;
    schema::migrate(&mut conn).map_err(|e| open_err(&e))?;
    Ok(conn)
}

/// A write that must reach the file: a row in `probe` with [`PROBE_BYTES`] of padding,
/// inserted and deleted in one transaction. Fails on a read-only file or mount and on a
/// disk without room for a large batch. (A smaller probe can pass on a full disk: the
/// WAL keeps the room a failed batch's frames took.)
fn probe_write(conn: &Connection) -> Result<(), String> {
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; INSERT INTO probe (at, pad) VALUES (unixepoch(), zeroblob({PROBE_BYTES}));
         DELETE FROM probe; COMMIT;"
    ))
    .map_err(|e| {
        let _ = conn.execute_batch("ROLLBACK");
        e.to_string()
    })
}

/// Padding of a probe write: room for a large batch of decisions.
pub const PROBE_BYTES: usize = 1 << 20;

/// WAL pages past which the writer checkpoints inline (a backstop, see `open_with`).
const WRITER_CHECKPOINT_PAGES: u32 = 20_000;

/// Checkpoints the WAL into the database from its own connection, off the commit
/// path (the writer's automatic checkpoints would stall a batch for milliseconds).
/// Stops when the ledger is dropped.
fn checkpointer(path: PathBuf, alive: std::sync::Weak<Shared>) {
    let Ok(conn) = Connection::open(&path) else {
        return;
    };
    let _ = conn.busy_timeout(std::time::Duration::from_millis(100));
    while alive.strong_count() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }
}

fn parse_money(s: &str) -> Result<Money, LedgerError> {
    s.parse()
        .map_err(|e| unavailable(format!("corrupt amount {s:?} in the ledger: {e}")))
}

/// Rebuilds the in-memory view from the database: versions, open exposure per buyer,
/// advances per day, each buyer's latest loss and the next decision id. Memory is set
/// by open advances, days and buyers with losses, not by history; the time is one
/// pass over the advances.
fn load_state(conn: &Connection) -> Result<State, LedgerError> {
    let mut st = State {
        next_decision_id: 1,
        ..State::default()
    };
    let mut q = conn
        .prepare("SELECT id, text FROM versions")
        .map_err(unavailable)?;
    let rows = q
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(unavailable)?;
    for row in rows {
        let (id, text) = row.map_err(unavailable)?;
        st.version_text.insert(id, text.clone());
        st.versions.insert(text, id);
    }
    let max_id: Option<i64> = conn
        .query_row("SELECT MAX(decision_id) FROM decisions", [], |r| r.get(0))
        .map_err(unavailable)?;
    st.next_decision_id = max_id.map_or(1, |m| m as u64 + 1);
    let mut q = conn
        .prepare(
            "SELECT a.buyer_id, a.amount, a.local_date, o.return_id IS NOT NULL
             FROM advances a LEFT JOIN outcomes o ON o.return_id = a.return_id",
        )
        .map_err(unavailable)?;
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .map_err(unavailable)?;
    let mut open: HashMap<u64, (Money, u32)> = HashMap::new();
    let mut by_day: HashMap<NaiveDate, Money> = HashMap::new();
    for row in rows {
        let (buyer, amount, day, settled) = row.map_err(unavailable)?;
        let amount = parse_money(&amount)?;
        let day: NaiveDate = day.parse().map_err(unavailable)?;
        let d = by_day.entry(day).or_default();
        *d = *d + amount;
        if !settled {
            let e = open.entry(buyer as u64).or_insert((Money::ZERO, 0));
            *e = (e.0 + amount, e.1 + 1);
        }
    }
    // Losses are noted below, with their times.
    for (buyer, (owed, n)) in open {
        st.book.restore_buyer(buyer, owed, n, None)?;
    }
    for (day, total) in by_day {
        st.book.restore_day(day, total);
    }
    let mut q = conn
        .prepare(
            "SELECT d.buyer_id, MAX(o.outcome_at)
             FROM outcomes o JOIN decisions d ON d.return_id = o.return_id
             LEFT JOIN outcome_corrections c ON c.return_id = o.return_id
             WHERE COALESCE(c.to_outcome, o.outcome) IN ('received_mismatch', 'not_shipped')
             GROUP BY d.buyer_id",
        )
        .map_err(unavailable)?;
    let rows = q
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .map_err(unavailable)?;
    for row in rows {
        let (buyer, at) = row.map_err(unavailable)?;
        st.book.note_loss(buyer as u64, ts(at)?);
    }
    Ok(st)
}

/// The decided return `rid` in its state (released, advanced, settled, corrected), if
/// it was decided.
pub(crate) fn find_return(tx: &Connection, rid: u64) -> Result<Option<ReturnRec>, LedgerError> {
    use rusqlite::OptionalExtension;
    let row = tx
        .prepare_cached(
            "SELECT d.buyer_id, d.order_id, d.amount, d.instant OR r.return_id IS NOT NULL, d.star,
                    a.amount, a.tracking_number, o.outcome, o.outcome_at, c.to_outcome,
                    d.requested_at, d.refund_without_return, k.amount, k.kept_at, d.merchant_id
             FROM decisions d
             LEFT JOIN kept k ON k.return_id = d.return_id
             LEFT JOIN advances a ON a.return_id = d.return_id
             LEFT JOIN outcomes o ON o.return_id = d.return_id
             LEFT JOIN reviewer_releases r ON r.return_id = d.return_id
             LEFT JOIN outcome_corrections c ON c.return_id = d.return_id
             WHERE d.return_id = ?1",
        )
        .and_then(|mut s| {
            s.query_row([rid as i64], |r| {
                Ok((
                    (
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, bool>(3)?,
                        r.get::<_, u8>(4)?,
                    ),
                    (
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Option<String>>(7)?,
                        r.get::<_, Option<i64>>(8)?,
                        r.get::<_, Option<String>>(9)?,
                    ),
                    r.get::<_, i64>(10)?,
                    (
                        r.get::<_, bool>(11)?,
                        r.get::<_, Option<String>>(12)?,
                        r.get::<_, Option<i64>>(13)?,
                        r.get::<_, i64>(14)?,
                    ),
                ))
            })
            .optional()
        })
        .map_err(unavailable)?;
    let Some((
        (buyer, order, amount, released, star),
        (advance, tracking, outcome, at, corrected),
        requested_at,
        (refund_only_offered, kept_amount, kept_at, merchant),
    )) = row
    else {
        return Ok(None);
    };
    let outcome_of = |o: Option<String>| {
        o.map(|o| o.parse::<Outcome>().map_err(unavailable))
            .transpose()
    };
    let advance = match (advance, tracking) {
        (Some(a), Some(t)) => Some(Advance {
            amount: parse_money(&a)?,
            tracking_number: t,
        }),
        _ => None,
    };
    let outcome = outcome_of(outcome)?.zip(at);
    Ok(Some(ReturnRec {
        buyer: BuyerId(buyer as u64),
        order: OrderId(order as u64),
        merchant: MerchantId(merchant as u64),
        amount: parse_money(&amount)?,
        requested_at: ts(requested_at)?,
        star: Star::try_from(star).map_err(unavailable)?,
        refund_only_offered,
        state: ReturnState::from_rows(
            kept_amount
                .map(|a| parse_money(&a))
                .transpose()?
                .zip(kept_at),
            released,
            advance,
            outcome,
            outcome_of(corrected)?,
        )?,
    }))
}

/// What the platform refunded without return on `day` (its running total).
fn kept_on(tx: &Connection, day: NaiveDate) -> Result<Money, LedgerError> {
    use rusqlite::OptionalExtension;
    tx.prepare_cached("SELECT total FROM kept_days WHERE local_date = ?1")
        .and_then(|mut s| {
            s.query_row([day.to_string()], |r| r.get::<_, String>(0))
                .optional()
        })
        .map_err(unavailable)?
        .map_or(Ok(Money::ZERO), |t| parse_money(&t))
}

/// `view` with the refund-only totals the caps need: `buyer`'s over the 30 days before
/// `now` (the `kept_buyer_at` index) and the platform's on `day`. Read only while the
/// policy offers refund-only.
fn refund_only_view(
    tx: &Connection,
    view: LedgerView,
    buyer: u64,
    day: NaiveDate,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<LedgerView, LedgerError> {
    if !policy.refund_only.enabled {
        return Ok(view);
    }
    let since = (now - chrono::Duration::days(30)).timestamp_micros();
    let mut q = tx
        .prepare_cached(
            "SELECT amount FROM kept WHERE buyer_id = ?1 AND kept_at > ?2 AND kept_at <= ?3",
        )
        .map_err(unavailable)?;
    let amounts = q
        .query_map(params![buyer as i64, since, now.timestamp_micros()], |r| {
            r.get::<_, String>(0)
        })
        .map_err(unavailable)?;
    let mut total = Money::ZERO;
    for a in amounts {
        total = total + parse_money(&a.map_err(unavailable)?)?;
    }
    Ok(LedgerView {
        refund_only_30_days: total,
        refund_only_today: kept_on(tx, day)?,
        ..view
    })
}

/// Whether a tracking number was ever given for return `rid` (advanced or refused):
/// its parcel is on its way.
fn tracking_given(tx: &Connection, rid: u64) -> Result<bool, LedgerError> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM advances WHERE return_id = ?1)
             OR EXISTS (SELECT 1 FROM tracking_refusals WHERE return_id = ?1)
             OR EXISTS (SELECT 1 FROM decisions WHERE return_id = ?1 AND tracking_number IS NOT NULL)",
    )
    .and_then(|mut s| s.query_row([rid as i64], |r| r.get::<_, bool>(0)))
    .map_err(unavailable)
}

/// The row of return `rid`'s decision, if it was decided.
fn decision_seq(tx: &Connection, rid: u64) -> Result<Option<i64>, LedgerError> {
    use rusqlite::OptionalExtension;
    tx.prepare_cached("SELECT seq FROM decisions WHERE return_id = ?1")
        .and_then(|mut s| s.query_row([rid as i64], |r| r.get(0)).optional())
        .map_err(unavailable)
}

/// The request first decided under `return_id`, recorded at row `seq` (what a repeat is
/// checked against: see `decide_step`).
fn recorded_request(
    tx: &Connection,
    seq: i64,
    return_id: ReturnId,
) -> Result<ReturnRequest, LedgerError> {
    #[allow(clippy::type_complexity)]
    let row: (
        i64,
        i64,
        i64,
        String,
        String,
        String,
        i64,
        i64,
        Option<String>,
    ) = tx
        .prepare_cached(
            "SELECT buyer_id, order_id, merchant_id, category, amount, reason, delivered_at,
                    requested_at, tracking_number
             FROM decisions WHERE seq = ?1",
        )
        .and_then(|mut s| {
            s.query_row([seq], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ))
            })
        })
        .map_err(unavailable)?;
    let (buyer, order, merchant, category, amount, reason, delivered, requested, tracking) = row;
    Ok(ReturnRequest {
        return_id,
        buyer_id: BuyerId(buyer as u64),
        order_id: OrderId(order as u64),
        merchant_id: MerchantId(merchant as u64),
        category: Category::parse(&category).map_err(unavailable)?,
        amount: parse_money(&amount)?,
        reason: reason.parse::<ReturnReason>().map_err(unavailable)?,
        delivered_at: ts(delivered)?,
        requested_at: ts(requested)?,
        tracking_number: tracking,
    })
}

/// The decision recorded at row `seq`, rebuilt exactly as it was answered.
fn recorded_decision(
    tx: &Connection,
    seq: i64,
    versions: &HashMap<i64, String>,
) -> Result<Decided, LedgerError> {
    let ts_opt = |v: Option<i64>| v.and_then(DateTime::from_timestamp_micros);
    let version = |id: i64| {
        versions
            .get(&id)
            .cloned()
            .ok_or_else(|| unavailable(format!("unknown version id {id} in the ledger")))
    };
    tx.prepare_cached(
        "SELECT decision_id, star, rated, instant, pickup, advanced, pickup_from,
                merchant_answer_by, reasons, policy_version, model_version, refund_without_return
         FROM decisions WHERE seq = ?1",
    )
    .and_then(|mut s| {
        s.query_row([seq], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u8>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, bool>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, String>(8)?,
                r.get::<_, i64>(9)?,
                r.get::<_, i64>(10)?,
                r.get::<_, bool>(11)?,
            ))
        })
    })
    .map_err(unavailable)
    .and_then(
        |(id, star, rated, instant, pickup, advanced, from, by, reasons, pv, mv, offer)| {
            Ok(Decided {
                decision_id: id as u64,
                decision: Decision {
                    instant_address_release: instant,
                    courier_pickup: pickup,
                    pickup_from: ts_opt(from),
                    advanced_refund: advanced,
                    refund_without_return: offer,
                    star: Star::try_from(star).map_err(unavailable)?,
                    rated,
                    reasons: serde_json::from_str(&reasons).map_err(unavailable)?,
                    merchant_answer_by: ts_opt(by),
                },
                policy_version: version(pv)?,
                model_version: version(mv)?,
                repeated: true,
                shadow_agrees: None,
            })
        },
    )
}

impl State {
    /// The id of a version string, recording it the first time it is seen.
    fn version_id(&mut self, tx: &Connection, text: &str) -> Result<i64, LedgerError> {
        if let Some(id) = self.versions.get(text) {
            return Ok(*id);
        }
        tx.prepare_cached("INSERT INTO versions (text) VALUES (?1)")
            .and_then(|mut s| s.execute([text]))
            .map_err(unavailable)?;
        let id = tx.last_insert_rowid();
        self.versions.insert(text.to_string(), id);
        self.version_text.insert(id, text.to_string());
        self.new_versions.push(id);
        Ok(id)
    }

    /// Forgets the versions first recorded by a command whose rows were rolled back.
    fn forget_new_versions(&mut self) {
        for id in self.new_versions.drain(..) {
            if let Some(text) = self.version_text.remove(&id) {
                self.versions.remove(&text);
            }
        }
    }

    /// What the ledger knows that a decision on `buyer`'s return of `order` depends on:
    /// `rated_as_of` is when their star's rating stopped seeing, `tracking` the parcel's
    /// tracking number (checked against other returns' advances).
    #[allow(clippy::too_many_arguments)]
    fn view(
        &self,
        tx: &Connection,
        rid: u64,
        buyer: u64,
        order: u64,
        day: NaiveDate,
        rated_as_of: Option<DateTime<Utc>>,
        tracking: Option<&str>,
    ) -> Result<LedgerView, LedgerError> {
        let tracking_number_reused = match tracking {
            Some(t) => tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM advances WHERE tracking_number = ?1 AND return_id <> ?2)",
                )
                .and_then(|mut s| s.query_row(params![t, rid as i64], |r| r.get::<_, bool>(0)))
                .map_err(unavailable)?,
            None => false,
        };
        let order_already_refunded = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM advances WHERE order_id = ?1)
                     OR EXISTS (SELECT 1 FROM kept WHERE order_id = ?1)",
            )
            .and_then(|mut s| s.query_row([order as i64], |r| r.get::<_, bool>(0)))
            .map_err(unavailable)?;
        Ok(self.book.view(
            buyer,
            day,
            rated_as_of,
            order_already_refunded,
            tracking_number_reused,
        ))
    }
}

struct Writer {
    conn: Connection,
    state: State,
    /// Committed batches go here to be made durable and answered.
    to_sync: std::sync::mpsc::Sender<Vec<Reply>>,
    /// Set after every commit; the sync thread clears it when it syncs.
    dirty: Arc<std::sync::atomic::AtomicBool>,
    options: LedgerOptions,
    health: Arc<Health>,
}

/// How durable each answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerOptions {
    /// Also wait for the fdatasync before answering decisions that move no money
    /// (default false: such a decision is answered once committed, which survives a
    /// crash or kill of the process, and is synced within [`IDLE_SYNC`]; anything that
    /// moves money always waits for the fdatasync).
    pub sync_every_decision: bool,
}

/// Longest a committed decision waits for an fdatasync when nothing else forces one.
pub const IDLE_SYNC: std::time::Duration = std::time::Duration::from_millis(20);

/// Makes committed batches durable (one fdatasync of the WAL for all waiting) and
/// answers their callers.
fn syncer(
    wal: PathBuf,
    rx: std::sync::mpsc::Receiver<Vec<Reply>>,
    dirty: Arc<std::sync::atomic::AtomicBool>,
    health: Arc<Health>,
) {
    use std::sync::atomic::Ordering;
    use std::sync::mpsc::RecvTimeoutError;
    let mut file: Option<std::fs::File> = None;
    loop {
        let mut batches = match rx.recv_timeout(IDLE_SYNC) {
            Ok(first) => vec![first],
            // Nothing waiting: sync what was committed since the last sync, if anything.
            Err(RecvTimeoutError::Timeout) if dirty.load(Ordering::Acquire) => vec![],
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(f) = &file {
                    let _ = f.sync_data();
                }
                return;
            }
        };
        while let Ok(more) = rx.try_recv() {
            batches.push(more);
        }
        dirty.store(false, Ordering::Release);
        if let Some(why) = health.sync_failed.get() {
            // Never again: see `Health::sync_failed`.
            let err = unavailable(why);
            for r in batches.into_iter().flatten() {
                r.send(Some(&err));
            }
            continue;
        }
        let started = std::time::Instant::now();
        if file.is_none() {
            file = std::fs::File::open(&wal).ok();
        }
        let synced = match &file {
            Some(_) if health.fail_next_sync.swap(false, Ordering::AcqRel) => {
                Err(std::io::Error::other("injected fault (EIO)"))
            }
            Some(f) => f.sync_data(),
            None => Err(std::io::Error::other("the WAL file cannot be opened")),
        }
        .map_err(|e| {
            let why = format!(
                "fdatasync of {} failed ({e}); money moves are stopped and nothing since is answered as recorded: check the disk, then restart the service",
                wal.display()
            );
            tracing::error!(error = %why, "ledger sync failed");
            let _ = health.sync_failed.set(why.clone());
            unavailable(why)
        });
        metrics::histogram!("fastrefund_ledger_sync_seconds")
            .record(started.elapsed().as_secs_f64());
        for r in batches.into_iter().flatten() {
            r.send(synced.as_ref().err());
        }
    }
}

/// What a move's rows need beyond its effects.
pub(crate) struct Writing {
    pub day: NaiveDate,
    pub now: DateTime<Utc>,
    /// When the parcel was handed to the courier (an advance's `shipped_at`).
    pub shipped_at: DateTime<Utc>,
    /// The case whose decision made the move (a reviewer's release, a correction).
    pub case_id: Option<u64>,
}

impl State {
    /// Writes a move's effects on return `rid` (`rec`): each effect's row, then, once
    /// every row is written, the money in the book (whose invariants are checked as it
    /// applies them).
    pub(crate) fn write(
        &mut self,
        tx: &Connection,
        rid: u64,
        rec: &ReturnRec,
        effects: &[Effect],
        w: &Writing,
    ) -> Result<(), LedgerError> {
        let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
            tx.prepare_cached(sql)
                .and_then(|mut s| s.execute(p))
                .map(|_| ())
                .map_err(unavailable)
        };
        let (rid_, now) = (rid as i64, w.now.timestamp_micros());
        let case_id = w.case_id.map(|c| c as i64);
        let mut latest_loss_of = None;
        for e in effects {
            match e {
                Effect::Advance {
                    buyer,
                    amount,
                    tracking,
                } => exec(
                    "INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at, advanced_at, local_date)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        rid_,
                        buyer.0 as i64,
                        rec.order.0 as i64,
                        amount.to_string(),
                        tracking,
                        w.shipped_at.timestamp_micros(),
                        now,
                        w.day.to_string()
                    ],
                )?,
                Effect::TrackingRefused { tracking, reasons } => exec(
                    "INSERT INTO tracking_refusals (return_id, tracking_number, reasons, at) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        rid_,
                        tracking,
                        serde_json::to_string(reasons).map_err(unavailable)?,
                        now
                    ],
                )?,
                Effect::Settle { outcome, at, .. } => exec(
                    "INSERT INTO outcomes (return_id, outcome, outcome_at, recorded_at) VALUES (?1, ?2, ?3, ?4)",
                    params![rid_, outcome.as_str(), at.timestamp_micros(), now],
                )?,
                Effect::Kept { buyer, amount, at } => {
                    exec(
                        "INSERT INTO kept (return_id, buyer_id, order_id, amount, kept_at, local_date)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            rid_,
                            buyer.0 as i64,
                            rec.order.0 as i64,
                            amount.to_string(),
                            at.timestamp_micros(),
                            w.day.to_string()
                        ],
                    )?;
                    let today = kept_on(tx, w.day)? + *amount;
                    exec(
                        "INSERT INTO kept_days (local_date, total) VALUES (?1, ?2)
                         ON CONFLICT (local_date) DO UPDATE SET total = excluded.total",
                        params![w.day.to_string(), today.to_string()],
                    )?;
                }
                Effect::ReleasedByReviewer { reviewer } => exec(
                    "INSERT INTO reviewer_releases (return_id, case_id, reviewer, at) VALUES (?1, ?2, ?3, ?4)",
                    params![rid_, case_id, reviewer, now],
                )?,
                Effect::OutcomeCorrected {
                    buyer,
                    from,
                    to,
                    loss_changed,
                } => {
                    exec(
                        "INSERT INTO outcome_corrections (return_id, case_id, from_outcome, to_outcome, at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![rid_, case_id, from.as_str(), to.as_str(), now],
                    )?;
                    if *loss_changed {
                        latest_loss_of = Some(*buyer);
                    }
                }
            }
        }
        // Memory changes only once every row is written.
        for e in effects {
            self.book.apply(e, w.day)?;
        }
        if let Some(buyer) = latest_loss_of {
            // The buyer's latest loss, from the outcomes as corrected.
            let latest: Option<i64> = tx
                .prepare_cached(cases::LATEST_LOSS)
                .and_then(|mut s| s.query_row([buyer.0 as i64], |r| r.get(0)))
                .map_err(unavailable)?;
            self.book
                .set_last_loss(buyer.0, latest.map(ts).transpose()?);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        tx: &Connection,
        req: ReturnRequest,
        star: Option<Star>,
        rated_as_of: Option<DateTime<Utc>>,
        shadow: Option<Option<Star>>,
        policy: &Policy,
        model_version: String,
        now: DateTime<Utc>,
    ) -> Result<Decided, LedgerError> {
        let rid = req.return_id.0;
        let seq = decision_seq(tx, rid)?;
        let recorded = seq
            .map(|seq| recorded_request(tx, seq, req.return_id))
            .transpose()?;
        let day = policy::local_date(now, policy);
        let mut view = None;
        let step = decide_step::<LedgerError>(recorded.as_ref(), &req, star, policy, now, || {
            let v = self.view(
                tx,
                rid,
                req.buyer_id.0,
                req.order_id.0,
                day,
                rated_as_of,
                req.tracking_number.as_deref(),
            )?;
            let v = refund_only_view(tx, v, req.buyer_id.0, day, now, policy)?;
            view = Some(v);
            Ok(v)
        })?;
        let (
            DecideStep::New(NewDecision {
                decision,
                rec,
                effects,
            }),
            Some(view),
        ) = (step, view)
        else {
            let seq = seq.ok_or_else(|| {
                unavailable(format!("return {rid}: no recorded decision to repeat"))
            })?;
            return recorded_decision(tx, seq, &self.version_text);
        };
        // Never handed out twice, even after a power cut lost decisions that were
        // answered (committed) but not yet synced: an id is at least the decision's
        // time in microseconds, so ids after a restart are past any lost one (the
        // clock moved on, and no 10^6 decisions a second are made).
        let decision_id = self
            .next_decision_id
            .max(u64::try_from(now.timestamp_micros()).unwrap_or(0));
        let reasons = serde_json::to_string(&decision.reasons).map_err(unavailable)?;
        // What the challenger would have decided, in the same state of the ledger.
        let shadow = shadow.map(|s| shadow_record(&req, s, &view, policy, now, &decision));
        let shadow_json = shadow.as_ref().map(|(json, _)| json.as_str());
        let policy_id = self.version_id(tx, &policy.version)?;
        let model_id = self.version_id(tx, &model_version)?;
        tx.prepare_cached(
            "INSERT INTO decisions (return_id, decision_id, buyer_id, order_id, merchant_id, category, amount,
               reason, delivered_at, requested_at, decided_at, star, rated, instant, pickup, advanced,
               pickup_from, merchant_answer_by, policy_version, model_version, reasons, shadow, tracking_number,
               refund_without_return)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
        )
        .and_then(|mut s| {
            s.execute(params![
                rid as i64,
                decision_id as i64,
                req.buyer_id.0 as i64,
                req.order_id.0 as i64,
                req.merchant_id.0 as i64,
                req.category.as_str(),
                req.amount.to_string(),
                req.reason.as_str(),
                req.delivered_at.timestamp_micros(),
                req.requested_at.timestamp_micros(),
                now.timestamp_micros(),
                decision.star.get(),
                decision.rated,
                decision.instant_address_release,
                decision.courier_pickup,
                decision.advanced_refund,
                decision.pickup_from.map(|t| t.timestamp_micros()),
                decision.merchant_answer_by.map(|t| t.timestamp_micros()),
                policy_id,
                model_id,
                reasons,
                shadow_json,
                req.tracking_number.as_deref(),
                decision.refund_without_return,
            ])
        })
        .map_err(unavailable)?;
        let w = Writing {
            day,
            now,
            shipped_at: now,
            case_id: None,
        };
        self.write(tx, rid, &rec, &effects, &w)?;
        self.next_decision_id = decision_id + 1;
        Ok(Decided {
            decision_id,
            decision,
            policy_version: policy.version.clone(),
            model_version,
            repeated: false,
            shadow_agrees: shadow.map(|(_, agrees)| agrees),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn track(
        &mut self,
        tx: &Connection,
        rid: u64,
        tracking: &str,
        shipped_at: DateTime<Utc>,
        stars: Option<&dyn StarLookup>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<Tracked, LedgerError> {
        let rec = find_return(tx, rid)?.ok_or(Refusal::UnknownReturn(rid))?;
        let day = policy::local_date(now, policy);
        let moved = track_step::<LedgerError>(
            ReturnId(rid),
            &rec,
            tracking,
            shipped_at,
            stars.and_then(|s| s.star(rec.buyer)),
            policy,
            |rec| {
                self.view(
                    tx,
                    rid,
                    rec.buyer.0,
                    rec.order.0,
                    day,
                    stars.and_then(|s| s.rated_as_of()),
                    Some(tracking),
                )
            },
        )?;
        let w = Writing {
            day,
            now,
            shipped_at,
            case_id: None,
        };
        self.write(tx, rid, &rec, &moved.effects, &w)?;
        Ok(Tracked::from_step(rid, &rec, moved.answer))
    }

    fn keep(
        &mut self,
        tx: &Connection,
        rid: u64,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<Kept, LedgerError> {
        let rec = find_return(tx, rid)?.ok_or(Refusal::UnknownReturn(rid))?;
        let day = policy::local_date(now, policy);
        let moved = keep_step::<LedgerError>(
            ReturnId(rid),
            &rec,
            tracking_given(tx, rid)?,
            policy,
            now,
            |rec| {
                let v = self.book.view(rec.buyer.0, day, None, false, false);
                refund_only_view(tx, v, rec.buyer.0, day, now, policy)
            },
        )?;
        let w = Writing {
            day,
            now,
            shipped_at: now,
            case_id: None,
        };
        self.write(tx, rid, &rec, &moved.effects, &w)?;
        Ok(Kept::from_step(rid, moved.answer))
    }

    fn settle(
        &mut self,
        tx: &Connection,
        rid: u64,
        outcome: Outcome,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Settled, LedgerError> {
        let rec = if outcome == Outcome::Pending {
            None // refused as pending by the step, before the look-up
        } else {
            find_return(tx, rid)?
        };
        let moved = settle_step(ReturnId(rid), rec.as_ref(), outcome, at)?;
        let Some(rec) = rec else {
            return Err(Refusal::UnknownReturn(rid).into());
        };
        let w = Writing {
            // (A settlement counts on no day.)
            day: now.date_naive(),
            now,
            shipped_at: now,
            case_id: None,
        };
        self.write(tx, rid, &rec, &moved.effects, &w)?;
        Ok(Settled::from_step(
            rid,
            outcome,
            moved.answer,
            self.book.exposure(rec.buyer.0).0,
        ))
    }
}

impl State {
    /// The recorded answer to a repeated call (see [`LedgerStore::replay_decision`]).
    fn replay(&self, tx: &Connection, req: Replayed) -> Result<Option<Replay>, LedgerError> {
        match req {
            Replayed::Decision(req) => {
                let Some(seq) = decision_seq(tx, req.return_id.0)? else {
                    return Ok(None);
                };
                fastrefund_core::ledger::same_request(
                    &recorded_request(tx, seq, req.return_id)?,
                    &req,
                )?;
                Ok(Some(Replay::Decision(recorded_decision(
                    tx,
                    seq,
                    &self.version_text,
                )?)))
            }
            Replayed::Tracking {
                return_id,
                tracking,
            } => {
                let Some(rec) = find_return(tx, return_id)? else {
                    return Err(Refusal::UnknownReturn(return_id).into());
                };
                let replayed =
                    fastrefund_core::ledger::replay_track(ReturnId(return_id), &rec, &tracking)?;
                Ok(replayed.map(|amount| Replay::Tracking(Tracked::repeat(return_id, amount))))
            }
        }
    }
}

impl Writer {
    fn apply_batch(&mut self, batch: &mut Vec<Cmd>) {
        let mut replies = Vec::with_capacity(batch.len());
        // BEGIN and COMMIT as cached statements: rusqlite's `Transaction` parses them
        // anew for every batch.
        if let Err(e) = exec_cached(&self.conn, "BEGIN") {
            let err = unavailable(e);
            for c in batch.drain(..) {
                reply_error(c, &err);
            }
            return;
        }
        let tx = &self.conn;
        let st = &mut self.state;
        let mut broken: Option<String> = None;
        for c in batch.drain(..) {
            if let Some(why) = self.health.broken.get() {
                reply_error(c, &unavailable(why));
                continue;
            }
            // Each command is atomic: all of its rows or none. A command that fails
            // half-way (an insert refused by the store) is rolled back to its savepoint
            // and answered with its error; the batch's other commands still commit.
            if let Err(e) = exec_cached(tx, "SAVEPOINT cmd") {
                reply_error(c, &unavailable(e));
                continue;
            }
            st.new_versions.clear();
            let reply = match c {
                Cmd::Decide {
                    req,
                    star,
                    rated_as_of,
                    shadow,
                    policy,
                    model_version,
                    now,
                    reply,
                } => Reply::Decide(
                    reply,
                    st.decide(
                        tx,
                        req,
                        star,
                        rated_as_of,
                        shadow,
                        &policy,
                        model_version,
                        now,
                    ),
                ),
                Cmd::Track {
                    return_id,
                    tracking_number,
                    shipped_at,
                    stars,
                    policy,
                    now,
                    reply,
                } => Reply::Track(
                    reply,
                    st.track(
                        tx,
                        return_id,
                        &tracking_number,
                        shipped_at,
                        stars.as_deref(),
                        &policy,
                        now,
                    ),
                ),
                Cmd::Keep {
                    return_id,
                    policy,
                    now,
                    reply,
                } => Reply::Keep(reply, st.keep(tx, return_id, &policy, now)),
                Cmd::Settle {
                    return_id,
                    outcome,
                    at,
                    now,
                    reply,
                } => Reply::Settle(reply, st.settle(tx, return_id, outcome, at, now)),
                Cmd::Case {
                    call,
                    deadlines,
                    now,
                    reply,
                } => {
                    let writes = matches!(call, CaseCall::Open(_) | CaseCall::Step { .. });
                    // (An outbox claim or mark need not wait for the fsync: losing one
                    // only sends an event again.)
                    Reply::Case(reply, cases::apply(tx, st, call, &deadlines, now), writes)
                }
                Cmd::Replay { req, reply } => Reply::Replay(reply, st.replay(tx, req)),
                Cmd::Exposure { buyer, reply } => {
                    let e = st.book.exposure(buyer);
                    Reply::Exposure(
                        reply,
                        Ok(BuyerExposure {
                            outstanding: e.0,
                            open_advances: e.1,
                        }),
                    )
                }
            };
            if let Some(LedgerError::Broken(why)) = reply.error() {
                let _ = self.health.broken.set(format!(
                    "{why}; money moves are stopped: check the ledger's records, then restart the service"
                ));
            }
            if reply.failed() {
                st.forget_new_versions();
                if let Err(e) = exec_cached(tx, "ROLLBACK TO cmd") {
                    // Cannot undo its rows: fail the whole batch (rolled back below).
                    broken = Some(format!("rollback to a command's savepoint failed: {e}"));
                }
            }
            if let Err(e) = exec_cached(tx, "RELEASE cmd") {
                broken = Some(format!("releasing a command's savepoint failed: {e}"));
            }
            replies.push(reply);
        }
        let committed = match broken {
            Some(why) => Err(why),
            None => exec_cached(&self.conn, "COMMIT").map_err(|e| e.to_string()),
        };
        match committed {
            Ok(()) => {
                self.health.set_commit_failed(None);
                self.dirty.store(true, std::sync::atomic::Ordering::Release);
                let (wait, now): (Vec<Reply>, Vec<Reply>) = replies
                    .into_iter()
                    .partition(|r| self.options.sync_every_decision || r.moves_money());
                now.into_iter().for_each(|r| r.send(None));
                if !wait.is_empty()
                    && let Err(std::sync::mpsc::SendError(wait)) = self.to_sync.send(wait)
                {
                    let err = unavailable("the ledger sync thread has stopped");
                    wait.into_iter().for_each(|r| r.send(Some(&err)));
                }
            }
            Err(e) => {
                let err = unavailable(format!("commit failed: {e}"));
                self.health.set_commit_failed(Some(err.to_string()));
                tracing::error!(error = %err, "ledger commit failed; rebuilding the view from the database");
                if !self.conn.is_autocommit()
                    && let Err(e) = self.conn.execute_batch("ROLLBACK")
                {
                    tracing::error!(error = %e, "rollback after a failed commit failed");
                }
                replies.into_iter().for_each(|r| r.send(Some(&err)));
                match load_state(&self.conn) {
                    Ok(s) => self.state = s,
                    Err(e) => tracing::error!(error = %e, "cannot rebuild the ledger view"),
                }
            }
        }
    }
}

fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn reply_error(c: Cmd, e: &LedgerError) {
    match c {
        Cmd::Decide { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Track { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Settle { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Exposure { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Keep { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Case { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Replay { reply, .. } => drop(reply.send(Err(e.clone()))),
    }
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` with the default options.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open_with(path, LedgerOptions::default())
    }

    /// Opens (or creates) the ledger at `path`, migrates it, loads the view and starts
    /// the writer, sync and checkpoint threads.
    pub fn open_with(path: &Path, options: LedgerOptions) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| LedgerError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        }
        let owner = own(path)?;
        let conn = open_conn(path)?;
        // A ledger that cannot be written (read-only file or mount, full disk) is
        // refused at start, not found out by the first refund.
        probe_write(&conn).map_err(|message| LedgerError::Open {
            path: path.display().to_string(),
            message: format!("the ledger cannot be written: {message}"),
        })?;
        let state = load_state(&conn)?;
        tracing::info!(
            path = %path.display(),
            buyers_with_outstanding = state.book.open().count(),
            "ledger opened"
        );
        let spawn_err = |e: &dyn std::fmt::Display| LedgerError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        // Checkpoints are the checkpoint thread's (every 200 ms). The writer's own
        // automatic checkpoint is only a backstop, for a WAL of 20,000 pages (20 MiB)
        // that the thread could not keep up with: at SQLite's default of 1,000 pages
        // the writer checkpointed inline every few dozen batches, copying pages on the
        // request path (16 decisions at once with random return ids, on one core:
        // 0.62x the time per decision, `cargo bench -p fastrefund-ledger`).
        conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
            .map_err(|e| spawn_err(&e))?;
        let (to_sync, sync_rx) = std::sync::mpsc::channel();
        let dirty = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let health = Arc::new(Health::default());
        let writer = Writer {
            conn,
            state,
            to_sync,
            dirty: dirty.clone(),
            options,
            health: health.clone(),
        };
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        std::thread::Builder::new()
            .name("ledger-sync".into())
            .spawn({
                let health = health.clone();
                move || syncer(wal, sync_rx, dirty, health)
            })
            .map_err(|e| spawn_err(&e))?;
        let shared = Arc::new(Shared {
            queue: std::sync::Mutex::new(Queue::default()),
            writer: std::sync::Mutex::new(writer),
            health,
            _owner: owner,
        });
        let p = path.to_path_buf();
        let alive = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || checkpointer(p, alive))
            .map_err(|e| spawn_err(&e))?;
        Ok(Ledger {
            shared,
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the ledger can record now: `Err` says why not (an fdatasync failed,
    /// for good; or the last commit failed). Readiness follows it.
    pub fn health(&self) -> Result<(), String> {
        let h = &self.shared.health;
        if let Some(why) = h.sync_failed.get().or(h.broken.get()) {
            return Err(why.clone());
        }
        match h.commit_failed.lock() {
            Ok(g) => g.clone().map_or(Ok(()), Err),
            Err(_) => Err("the ledger's health lock failed".into()),
        }
    }

    /// After a failed commit: tries a small write on a connection of its own (blocking;
    /// call it off the async threads). If it succeeds the ledger is healthy again (the
    /// disk has room, the file is writable); a failed fdatasync is never cleared.
    pub fn probe(&self) -> Result<(), String> {
        if let Some(why) = self.shared.health.sync_failed.get() {
            return Err(why.clone());
        }
        let conn = Connection::open(self.path.as_ref()).map_err(|e| e.to_string())?;
        let _ = conn.busy_timeout(std::time::Duration::from_secs(1));
        probe_write(&conn)?;
        self.shared.health.set_commit_failed(None);
        Ok(())
    }

    /// Fault injection for tests: the next fdatasync fails as if the disk said EIO.
    #[doc(hidden)]
    pub fn inject_sync_failure(&self) {
        self.shared
            .health
            .fail_next_sync
            .store(true, std::sync::atomic::Ordering::Release);
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, LedgerError>>) -> Cmd,
    ) -> Result<T, LedgerError> {
        if let Some(why) = self.shared.health.sync_failed.get() {
            return Err(unavailable(why));
        }
        let (tx, rx) = oneshot::channel();
        let leader = {
            let mut q =
                self.shared.queue.lock().map_err(|_| {
                    unavailable("the ledger queue failed earlier; restart the service")
                })?;
            q.cmds.push(make(tx));
            !std::mem::replace(&mut q.leading, true)
        };
        if leader {
            spawn_leader(self.shared.clone());
        }
        rx.await
            .map_err(|_| unavailable("the ledger writer has stopped"))?
    }

    /// Decides a return request and records the decision (and the advance, if one is
    /// granted) durably; a `return_id` decided before gets the recorded decision.
    pub async fn decide(
        &self,
        req: ReturnRequest,
        star: Option<Star>,
        policy: Arc<Policy>,
        model_version: String,
        now: DateTime<Utc>,
    ) -> Result<Decided, LedgerError> {
        self.decide_with_shadow(req, star, None, None, policy, model_version, now)
            .await
    }

    /// Like [`Ledger::decide`], knowing also when the buyer's star was rated
    /// (`rated_as_of`, see [`StarLookup::rated_as_of`]: a loss settled since then holds
    /// instant release), and recording what the challenger would have decided with its
    /// star `shadow` (`Some(None)`: the challenger does not know the buyer).
    #[allow(clippy::too_many_arguments)]
    pub async fn decide_with_shadow(
        &self,
        req: ReturnRequest,
        star: Option<Star>,
        rated_as_of: Option<DateTime<Utc>>,
        shadow: Option<Option<Star>>,
        policy: Arc<Policy>,
        model_version: String,
        now: DateTime<Utc>,
    ) -> Result<Decided, LedgerError> {
        // The ledger keeps times in microseconds: answer with what a retry will read.
        let now = now.trunc_subsecs(6);
        self.call(|reply| Cmd::Decide {
            req,
            star,
            rated_as_of,
            shadow,
            policy,
            model_version,
            now,
            reply,
        })
        .await
    }

    /// A tracking number for a decided return: advance the refund if the policy allows.
    /// The limit is that of the buyer's current star in `stars` (the star recorded at
    /// decision time when `stars` is `None` or does not know the buyer). `shipped_at`
    /// is when the parcel was handed to the courier (recorded for the next rating).
    #[allow(clippy::too_many_arguments)]
    pub async fn track(
        &self,
        return_id: ReturnId,
        tracking_number: String,
        shipped_at: DateTime<Utc>,
        stars: Option<Arc<dyn StarLookup>>,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> Result<Tracked, LedgerError> {
        self.call(|reply| Cmd::Track {
            return_id: return_id.0,
            tracking_number,
            shipped_at,
            stars,
            policy,
            now,
            reply,
        })
        .await
    }

    /// Takes the refund-without-return offer of a decided return: the caps are checked
    /// again and charged, and the return settled as `refunded_without_return`, in one
    /// transaction, answered once durable.
    pub async fn keep(
        &self,
        return_id: ReturnId,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> Result<Kept, LedgerError> {
        self.call(|reply| Cmd::Keep {
            return_id: return_id.0,
            policy,
            now,
            reply,
        })
        .await
    }

    /// Settles an advanced return with its outcome.
    pub async fn settle(
        &self,
        return_id: ReturnId,
        outcome: Outcome,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Settled, LedgerError> {
        self.call(|reply| Cmd::Settle {
            return_id: return_id.0,
            outcome,
            at,
            now,
            reply,
        })
        .await
    }

    /// A call on cases (spec §10), in the writer's transaction: a move and its effects
    /// on the money commit together.
    pub async fn cases(
        &self,
        call: CaseCall,
        deadlines: fastrefund_core::cases::CaseDeadlines,
        now: DateTime<Utc>,
    ) -> Result<CaseAnswer, LedgerError> {
        let now = now.trunc_subsecs(6);
        self.call(|reply| Cmd::Case {
            call,
            deadlines,
            now,
            reply,
        })
        .await
    }

    /// See [`LedgerStore::replay_decision`].
    pub async fn replay_decision(
        &self,
        req: ReturnRequest,
    ) -> Result<Option<Decided>, LedgerError> {
        match self
            .call(|reply| Cmd::Replay {
                req: Replayed::Decision(req),
                reply,
            })
            .await?
        {
            Some(Replay::Decision(d)) => Ok(Some(d)),
            _ => Ok(None),
        }
    }

    /// See [`LedgerStore::replay_tracking`].
    pub async fn replay_tracking(
        &self,
        return_id: ReturnId,
        tracking: String,
    ) -> Result<Option<Tracked>, LedgerError> {
        match self
            .call(|reply| Cmd::Replay {
                req: Replayed::Tracking {
                    return_id: return_id.0,
                    tracking,
                },
                reply,
            })
            .await?
        {
            Some(Replay::Tracking(t)) => Ok(Some(t)),
            _ => Ok(None),
        }
    }

    /// A buyer's outstanding advances (as committed).
    pub async fn exposure(&self, buyer: BuyerId) -> Result<BuyerExposure, LedgerError> {
        self.call(|reply| Cmd::Exposure {
            buyer: buyer.0,
            reply,
        })
        .await
    }
}

fn ts(micros: i64) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| unavailable(format!("corrupt time {micros} in the ledger")))
}

/// A ledger file opened read-only (the service may be writing it meanwhile).
fn open_read_only(path: &Path) -> Result<Connection, LedgerError> {
    let open = |message: String| LedgerError::Open {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        return Err(open("no such file".into()));
    }
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| open(e.to_string()))
}

/// Reads every decided return from a ledger file (read-only; the service may be running).
pub fn export_returns(path: &Path) -> Result<Vec<ExportRow>, LedgerError> {
    let conn = open_read_only(path)?;
    let mut q = conn
        .prepare(
            "SELECT d.return_id, d.order_id, d.buyer_id, d.merchant_id, d.category, d.requested_at, d.reason,
                    d.amount, d.instant OR r.return_id IS NOT NULL, a.shipped_at,
                    CASE WHEN k.return_id IS NOT NULL THEN 'refunded_without_return'
                         ELSE COALESCE(c.to_outcome, o.outcome) END,
                    COALESCE(k.kept_at, o.outcome_at)
             FROM decisions d
             LEFT JOIN kept k ON k.return_id = d.return_id
             LEFT JOIN advances a ON a.return_id = d.return_id
             LEFT JOIN outcomes o ON o.return_id = d.return_id
             LEFT JOIN outcome_corrections c ON c.return_id = d.return_id
             LEFT JOIN reviewer_releases r ON r.return_id = d.return_id
             ORDER BY d.return_id",
        )
        .map_err(unavailable)?;
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, bool>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<i64>>(11)?,
            ))
        })
        .map_err(unavailable)?;
    let mut out = Vec::new();
    for row in rows {
        let (
            rid,
            order,
            buyer,
            merchant,
            category,
            requested,
            reason,
            amount,
            instant,
            advanced_at,
            outcome,
            outcome_at,
        ) = row.map_err(unavailable)?;
        out.push(ExportRow {
            return_id: ReturnId(rid as u64),
            order_id: OrderId(order as u64),
            buyer_id: BuyerId(buyer as u64),
            merchant_id: MerchantId(merchant as u64),
            category: Category::parse(&category).map_err(unavailable)?,
            requested_at: ts(requested)?,
            reason: reason.parse().map_err(unavailable)?,
            amount: parse_money(&amount)?,
            instant,
            advanced: advanced_at.is_some(),
            // A parcel that never shipped has no shipping time, whatever was claimed.
            shipped_at: advanced_at
                .filter(|_| outcome.as_deref() != Some(Outcome::NotShipped.as_str()))
                .map(ts)
                .transpose()?,
            outcome: outcome
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(unavailable)?
                .unwrap_or(Outcome::Pending),
            outcome_at: outcome_at.map(ts).transpose()?,
        });
    }
    Ok(out)
}

/// Every decided case in a ledger file, oldest first (read-only; the service may be
/// running), for `export-cases`.
pub fn export_cases(path: &Path) -> Result<Vec<fastrefund_core::cases::Case>, LedgerError> {
    let conn = open_read_only(path)?;
    let mut q = conn
        .prepare("SELECT body FROM cases WHERE state = 'decided' ORDER BY case_id")
        .map_err(unavailable)?;
    let bodies = q
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).map_err(|e| unavailable(format!("corrupt case: {e}"))))
        .collect()
}

/// Invariants a ledger must always hold (checked by the kill tests and on demand):
/// each buyer's outstanding amount is their advances minus their settled advances,
/// no return is advanced twice, every outcome belongs to an advance.
pub fn check_invariants(path: &Path) -> Result<HashMap<u64, Money>, String> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| e.to_string())?;
    let st = load_state(&conn).map_err(|e| e.to_string())?;
    let dup: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM (SELECT return_id FROM advances GROUP BY return_id HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if dup > 0 {
        return Err(format!("{dup} returns advanced more than once"));
    }
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM outcomes o LEFT JOIN advances a ON a.return_id = o.return_id WHERE a.return_id IS NULL",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if orphans > 0 {
        return Err(format!("{orphans} outcomes without an advance"));
    }
    // Each buyer's advances minus their settled advances, from two separate sums: it
    // must equal the outstanding amount the view is built with (open advances).
    let sums = |sql: &str| -> Result<HashMap<u64, Decimal>, String> {
        let mut q = conn.prepare(sql).map_err(|e| e.to_string())?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| e.to_string())?;
        let mut out: HashMap<u64, Decimal> = HashMap::new();
        for row in rows {
            let (buyer, amount) = row.map_err(|e| e.to_string())?;
            let amount = parse_money(&amount).map_err(|e| e.to_string())?;
            *out.entry(buyer as u64).or_default() += amount.value();
        }
        Ok(out)
    };
    let advanced = sums("SELECT buyer_id, amount FROM advances")?;
    let settled = sums(
        "SELECT a.buyer_id, a.amount FROM advances a JOIN outcomes o ON o.return_id = a.return_id",
    )?;
    let mut expect: HashMap<u64, Money> = HashMap::new();
    for (buyer, total) in &advanced {
        let left = *total - settled.get(buyer).copied().unwrap_or_default();
        let left = Money::new(left).map_err(|e| format!("buyer {buyer}: {e}"))?;
        if left != Money::ZERO {
            expect.insert(*buyer, left);
        }
    }
    let view: HashMap<u64, Money> = st.book.open().collect();
    if view != expect {
        return Err(format!(
            "outstanding per buyer {view:?} differs from advances minus settlements {expect:?}"
        ));
    }
    Ok(expect)
}

#[cfg(test)]
mod tests;
