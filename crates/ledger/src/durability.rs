//! What makes an answer durable and keeps the file healthy: the one-writer lock, the
//! health that fails closed, the probe write, the sync thread (one fdatasync of the WAL
//! for every batch waiting) and the checkpoint thread.

use super::*;

/// Takes the exclusive lock that makes one process the ledger file's only writer: the
/// in-memory view is only right if nobody else writes the file. A second `serve` on the
/// same file is refused; within one process, a ledger reopened while the old one still
/// finishes its queued work waits for it (up to 5 s).
pub(crate) fn own(path: &Path) -> Result<std::fs::File, LedgerError> {
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
pub(crate) struct Health {
    /// Set for good when an fdatasync failed. After a failed fsync the kernel may have
    /// dropped the dirty pages and cleared the error, so a retry (even on a fresh
    /// descriptor) can report success for data that never reached the disk
    /// ("fsyncgate"): money moves stop until an operator restarts the service, and
    /// every call is refused saying why.
    pub(crate) sync_failed: std::sync::OnceLock<String>,
    /// Why the last commit failed (disk full, a read-only file, an I/O error); cleared
    /// by the next commit or probe that succeeds.
    pub(crate) commit_failed: std::sync::Mutex<Option<String>>,
    /// Fault injection for tests: the next fdatasync fails as if the disk said EIO.
    pub(crate) fail_next_sync: std::sync::atomic::AtomicBool,
    /// Set for good when the book's invariants broke (the records disagree with
    /// themselves): every command is refused until an operator has looked and
    /// restarted the service.
    pub(crate) broken: std::sync::OnceLock<String>,
}

impl Health {
    pub(crate) fn set_commit_failed(&self, why: Option<String>) {
        if let Ok(mut g) = self.commit_failed.lock() {
            *g = why;
        }
    }
}

/// A write that must reach the file: a row in `probe` with [`PROBE_BYTES`] of padding,
/// inserted and deleted in one transaction. Fails on a read-only file or mount and on a
/// disk without room for a large batch. (A smaller probe can pass on a full disk: the
/// WAL keeps the room a failed batch's frames took.)
pub(crate) fn probe_write(conn: &Connection) -> Result<(), String> {
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
pub(crate) const WRITER_CHECKPOINT_PAGES: u32 = 20_000;

/// Checkpoints the WAL into the database from its own connection, off the commit
/// path (the writer's automatic checkpoints would stall a batch for milliseconds).
/// Stops when the ledger is dropped.
/// Its connection is opened by the caller (`Ledger::open_with`), so a ledger whose
/// checkpointer cannot start is refused at open, never left to grow its WAL; a
/// checkpoint that fails (the writer busy) is counted and tried again.
pub(crate) fn checkpointer(conn: Connection, alive: std::sync::Weak<Shared>) {
    let _ = conn.busy_timeout(std::time::Duration::from_millis(100));
    while alive.strong_count() > 0 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            metrics::counter!("fastrefund_ledger_checkpoints_skipped_total").increment(1);
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }
}

/// Longest a committed decision waits for an fdatasync when nothing else forces one.
pub const IDLE_SYNC: std::time::Duration = std::time::Duration::from_millis(20);

/// Makes committed batches durable (one fdatasync of the WAL for all waiting) and
/// answers their callers.
pub(crate) fn syncer(
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
