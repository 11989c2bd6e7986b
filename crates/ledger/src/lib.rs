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
//! **Modules, by concern.** The caller's API is here ([`Ledger`]) and behind the
//! store trait ([`store`]); `commit` is the queue and the group commit; `durability`
//! the one-writer lock, health, the probe write, the sync and checkpoint threads;
//! `rows` the SQL of each command (the in-memory view and the rows a move writes);
//! `export` reading a file without taking it; [`cases`] the SQLite half of cases;
//! `schema` the migrations.
//!
//! **Storage.** SQLite (bundled) in WAL mode. The schema is versioned (`schema`).
//!
//! **One writer at a time, group commit.** One connection owns the in-memory view
//! (each buyer's open exposure, each day's advances, each buyer's latest loss; a
//! return's own state is read through the schema's indexes, see `rows::State`). A
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
mod commit;
mod durability;
mod export;
mod rows;
mod schema;
pub mod store;

pub use commit::MAX_BATCH;
use commit::*;
use durability::*;
pub use durability::{IDLE_SYNC, PROBE_BYTES};
pub use export::{check_invariants, export_cases, export_returns};
use rows::*;

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

/// How durable each answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerOptions {
    /// Also wait for the fdatasync before answering decisions that move no money
    /// (default false: such a decision is answered once committed, which survives a
    /// crash or kill of the process, and is synced within [`IDLE_SYNC`]; anything that
    /// moves money always waits for the fdatasync).
    pub sync_every_decision: bool,
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
        let checkpoints = Connection::open(path).map_err(|e| LedgerError::Open {
            path: path.display().to_string(),
            message: format!("the checkpointer's connection: {e}"),
        })?;
        let alive = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("ledger-checkpoint".into())
            .spawn(move || checkpointer(checkpoints, alive))
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

    /// See [`fastrefund_store::LedgerStore::replay_decision`].
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

    /// See [`fastrefund_store::LedgerStore::replay_tracking`].
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

#[cfg(test)]
mod tests;
