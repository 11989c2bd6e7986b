//! One writer at a time, group commit: a caller queues its command; a leader task
//! takes every command queued, applies them in order inside one transaction (each in a
//! savepoint), commits, and hands the answers that move money to the sync thread (see
//! the crate's doc).

use super::*;

/// How many times a new leader lets the other ready tasks run before it writes, so
/// that one commit carries every request already on its way.
pub(crate) const LEADER_YIELDS: usize = 2;

/// Most commands applied in one transaction.
pub const MAX_BATCH: usize = 1024;

pub(crate) enum Cmd {
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
pub(crate) enum Replayed {
    Decision(ReturnRequest),
    Tracking { return_id: u64, tracking: String },
}

/// A recorded answer.
pub(crate) enum Replay {
    Decision(Decided),
    Tracking(Tracked),
}

/// A reply waiting for its batch to commit.
pub(crate) enum Reply {
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
    pub(crate) fn failed(&self) -> bool {
        self.error().is_some()
    }

    pub(crate) fn error(&self) -> Option<&LedgerError> {
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
    pub(crate) fn moves_money(&self) -> bool {
        match self {
            Reply::Decide(_, Ok(d)) => d.decision.advanced_refund,
            Reply::Track(_, Ok(t)) => t.advanced,
            Reply::Settle(_, Ok(_)) | Reply::Exposure(_, Ok(_)) | Reply::Keep(_, Ok(_)) => true,
            // A case's move may correct money (and is a person's word): durable first.
            Reply::Case(_, Ok(_), writes) => *writes,
            _ => false,
        }
    }

    pub(crate) fn send(self, failed: Option<&LedgerError>) {
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

#[derive(Default)]
pub(crate) struct Queue {
    pub(crate) cmds: Vec<Cmd>,
    /// A leader is writing a batch (and will hand over what arrives meanwhile).
    pub(crate) leading: bool,
}

/// Runs a leader as a task of its own, never inside a caller's future: hyper drops a
/// request's future when its client goes away, and a leader dropped half-way would
/// leave `leading` set with no one to write the queue, hanging every later call
/// (issue 9). The task lets the other ready tasks queue their commands first, so that
/// one commit carries them all.
pub(crate) fn spawn_leader(shared: Arc<Shared>) {
    tokio::spawn(async move {
        for _ in 0..LEADER_YIELDS {
            tokio::task::yield_now().await;
        }
        lead(&shared);
    });
}

/// Hands leadership on when a leader ends, however it ends (even by a panic while
/// writing): to a new leader task if commands are queued, or clears `leading`.
pub(crate) struct Handoff<'a>(pub(crate) &'a Arc<Shared>);

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
pub(crate) fn lead(shared: &Arc<Shared>) {
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

pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) state: State,
    /// Committed batches go here to be made durable and answered.
    pub(crate) to_sync: std::sync::mpsc::Sender<Vec<Reply>>,
    /// Set after every commit; the sync thread clears it when it syncs.
    pub(crate) dirty: Arc<std::sync::atomic::AtomicBool>,
    pub(crate) options: LedgerOptions,
    pub(crate) health: Arc<Health>,
}

impl Writer {
    pub(crate) fn apply_batch(&mut self, batch: &mut Vec<Cmd>) {
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

pub(crate) fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

pub(crate) fn reply_error(c: Cmd, e: &LedgerError) {
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
