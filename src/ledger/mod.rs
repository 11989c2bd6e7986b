//! The durable ledger of decisions, advanced refunds and their outcomes.
//!
//! **Storage.** SQLite (bundled) in WAL mode with `synchronous = FULL`: a commit is on
//! disk when it returns. The schema is versioned ([`schema`]).
//!
//! **One writer, group commit.** A single thread owns the connection and the
//! in-memory view (each return's state, each buyer's outstanding amount, each day's
//! advances). Handlers send it commands over a channel; it takes every command
//! waiting (up to [`MAX_BATCH`]), applies them in order against the view inside one
//! transaction, commits once, and only then answers each caller. So:
//! - nothing is acknowledged before it is durable (a crash loses only unanswered work);
//! - concurrent commands for the same buyer are applied one after another, so two
//!   advances can never together pass the buyer's limit or the day's budget;
//! - a repeated call (same `return_id`) finds the recorded state and answers the same,
//!   advancing nothing twice, even after a restart;
//! - one fsync is shared by every command in the batch, which is what makes thousands
//!   of durable advances a second possible with durability on.
//!
//! If a commit fails, the transaction rolls back, every caller in the batch gets an
//! error, and the in-memory view is rebuilt from the database (the source of truth).

pub mod export;
mod schema;

use crate::domain::{
    BuyerId, Category, Decision, MerchantId, Money, OrderId, Outcome, ReasonCode, ReturnId,
    ReturnReason, ReturnRequest, Star,
};
use crate::policy::{self, LedgerView, Policy};
use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, Transaction, params};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Where the ledger finds a buyer's current star (the service's ratings snapshot).
pub trait StarLookup: Send + Sync {
    fn star(&self, buyer: BuyerId) -> Option<Star>;
}

impl StarLookup for crate::snapshot::Ratings {
    fn star(&self, buyer: BuyerId) -> Option<Star> {
        self.get(buyer).map(|r| r.star)
    }
}

/// Most commands applied in one transaction.
pub const MAX_BATCH: usize = 1024;

/// Why a ledger call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LedgerError {
    #[error("the ledger cannot store this now: {0}")]
    Unavailable(String),
    #[error("return {0} was never decided")]
    UnknownReturn(u64),
    #[error("return {0} was not advanced, so it has no outcome to settle")]
    NotAdvanced(u64),
    #[error(
        "return {return_id} already has outcome {existing}; a different outcome ({given}) is refused"
    )]
    OutcomeConflict {
        return_id: u64,
        existing: Outcome,
        given: Outcome,
    },
    #[error("`pending` is not an outcome that settles a return")]
    PendingOutcome,
    #[error("cannot open the ledger at {path}: {message}")]
    Open { path: String, message: String },
}

/// A decided return request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    pub decision_id: u64,
    pub decision: Decision,
    pub policy_version: String,
    pub model_version: String,
    /// The return was decided before; this is the recorded decision.
    pub repeated: bool,
}

/// The answer to a tracking number.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracked {
    pub return_id: u64,
    pub advanced: bool,
    pub amount: Money,
    pub reasons: Vec<ReasonCode>,
    pub repeated: bool,
}

/// The answer to an outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    pub return_id: u64,
    pub outcome: Outcome,
    pub amount: Money,
    /// The advance was lost (mismatch or never shipped).
    pub loss: bool,
    /// The buyer's outstanding advances after this settlement.
    pub outstanding: Money,
    pub repeated: bool,
}

/// A buyer's exposure as the ledger knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerExposure {
    pub outstanding: Money,
    /// Advances not yet settled.
    pub open_advances: u32,
}

#[derive(Debug, Clone)]
struct Advance {
    amount: Money,
}

#[derive(Debug, Clone)]
struct ReturnRec {
    buyer: u64,
    order: u64,
    amount: Money,
    instant: bool,
    star: Star,
    advance: Option<Advance>,
    outcome: Option<Outcome>,
}

#[derive(Debug, Default)]
struct State {
    returns: HashMap<u64, ReturnRec>,
    outstanding: HashMap<u64, (Money, u32)>,
    by_day: HashMap<NaiveDate, Money>,
    advanced_orders: HashSet<u64>,
    next_decision_id: u64,
}

enum Cmd {
    Decide {
        req: ReturnRequest,
        star: Option<Star>,
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
}

impl Reply {
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
        }
    }
}

/// The handle the service holds; cheap to clone.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Cmd>,
    path: Arc<PathBuf>,
}

fn unavailable(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

fn open_conn(path: &Path) -> Result<Connection, LedgerError> {
    let open_err = |e: &dyn std::fmt::Display| LedgerError::Open {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
    }
    let mut conn = Connection::open(path).map_err(|e| open_err(&e))?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| open_err(&e))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| open_err(&e))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| open_err(&e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| open_err(&e))?;
    schema::migrate(&mut conn).map_err(|e| open_err(&e))?;
    Ok(conn)
}

fn parse_money(s: &str) -> Result<Money, LedgerError> {
    s.parse()
        .map_err(|e| unavailable(format!("corrupt amount {s:?} in the ledger: {e}")))
}

/// Rebuilds the in-memory view from the database.
fn load_state(conn: &Connection) -> Result<State, LedgerError> {
    let mut st = State {
        next_decision_id: 1,
        ..State::default()
    };
    let mut q = conn
        .prepare("SELECT return_id, buyer_id, order_id, amount, instant, star, decision_id FROM decisions")
        .map_err(unavailable)?;
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
                r.get::<_, u8>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })
        .map_err(unavailable)?;
    for row in rows {
        let (rid, buyer, order, amount, instant, star, did) = row.map_err(unavailable)?;
        st.next_decision_id = st.next_decision_id.max(did as u64 + 1);
        st.returns.insert(
            rid as u64,
            ReturnRec {
                buyer: buyer as u64,
                order: order as u64,
                amount: parse_money(&amount)?,
                instant,
                star: Star::try_from(star).map_err(unavailable)?,
                advance: None,
                outcome: None,
            },
        );
    }
    let mut q = conn
        .prepare("SELECT return_id, amount, local_date FROM advances")
        .map_err(unavailable)?;
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(unavailable)?;
    for row in rows {
        let (rid, amount, day) = row.map_err(unavailable)?;
        let amount = parse_money(&amount)?;
        let day: NaiveDate = day.parse().map_err(unavailable)?;
        let rec = st
            .returns
            .get_mut(&(rid as u64))
            .ok_or_else(|| unavailable(format!("advance for undecided return {rid}")))?;
        rec.advance = Some(Advance { amount });
        st.advanced_orders.insert(rec.order);
        *st.by_day.entry(day).or_default() =
            st.by_day.get(&day).copied().unwrap_or_default() + amount;
        let e = st.outstanding.entry(rec.buyer).or_insert((Money::ZERO, 0));
        e.0 = e.0 + amount;
        e.1 += 1;
    }
    let mut q = conn
        .prepare("SELECT return_id, outcome FROM outcomes")
        .map_err(unavailable)?;
    let rows = q
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .map_err(unavailable)?;
    for row in rows {
        let (rid, outcome) = row.map_err(unavailable)?;
        let outcome: Outcome = outcome.parse().map_err(unavailable)?;
        let rec = st
            .returns
            .get_mut(&(rid as u64))
            .ok_or_else(|| unavailable(format!("outcome for undecided return {rid}")))?;
        let amount = rec.advance.as_ref().map(|a| a.amount).unwrap_or_default();
        rec.outcome = Some(outcome);
        let e = st.outstanding.entry(rec.buyer).or_insert((Money::ZERO, 0));
        e.0 = e.0.checked_sub(amount).unwrap_or(Money::ZERO);
        e.1 = e.1.saturating_sub(1);
    }
    Ok(st)
}

impl State {
    fn view(&self, buyer: u64, order: u64, day: NaiveDate) -> LedgerView {
        LedgerView {
            outstanding: self
                .outstanding
                .get(&buyer)
                .map(|e| e.0)
                .unwrap_or_default(),
            advanced_today: self.by_day.get(&day).copied().unwrap_or_default(),
            order_already_refunded: self.advanced_orders.contains(&order),
        }
    }

    fn add_advance(&mut self, rid: u64, amount: Money, day: NaiveDate) {
        if let Some(rec) = self.returns.get_mut(&rid) {
            rec.advance = Some(Advance { amount });
            self.advanced_orders.insert(rec.order);
            let e = self
                .outstanding
                .entry(rec.buyer)
                .or_insert((Money::ZERO, 0));
            e.0 = e.0 + amount;
            e.1 += 1;
            let d = self.by_day.entry(day).or_default();
            *d = *d + amount;
        }
    }
}

struct Writer {
    conn: Connection,
    state: State,
}

#[allow(clippy::too_many_arguments)]
fn insert_advance(
    tx: &Transaction<'_>,
    rid: u64,
    rec: &ReturnRec,
    tracking: &str,
    shipped_at: DateTime<Utc>,
    now: DateTime<Utc>,
    day: NaiveDate,
) -> Result<(), LedgerError> {
    tx.prepare_cached(
        "INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at, advanced_at, local_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            rid as i64,
            rec.buyer as i64,
            rec.order as i64,
            rec.amount.to_string(),
            tracking,
            shipped_at.to_rfc3339(),
            now.to_rfc3339(),
            day.to_string()
        ])
    })
    .map(|_| ())
    .map_err(unavailable)
}

impl State {
    fn decide(
        &mut self,
        tx: &Transaction<'_>,
        req: ReturnRequest,
        star: Option<Star>,
        policy: &Policy,
        model_version: String,
        now: DateTime<Utc>,
    ) -> Result<Decided, LedgerError> {
        let rid = req.return_id.0;
        if self.returns.contains_key(&rid) {
            let (decision_id, json, pv, mv): (i64, String, String, String) = tx
                .prepare_cached(
                    "SELECT decision_id, decision, policy_version, model_version FROM decisions WHERE return_id = ?1",
                )
                .and_then(|mut s| s.query_row([rid as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))))
                .map_err(unavailable)?;
            let decision: Decision = serde_json::from_str(&json).map_err(unavailable)?;
            return Ok(Decided {
                decision_id: decision_id as u64,
                decision,
                policy_version: pv,
                model_version: mv,
                repeated: true,
            });
        }
        let day = policy::local_date(now, policy);
        let view = self.view(req.buyer_id.0, req.order_id.0, day);
        let decision = policy::decide(&req, star, &view, policy, now);
        let decision_id = self.next_decision_id;
        let json = serde_json::to_string(&decision).map_err(unavailable)?;
        tx.prepare_cached(
            "INSERT INTO decisions (return_id, decision_id, buyer_id, order_id, merchant_id, category, amount,
               reason, delivered_at, requested_at, star, instant, pickup, advanced, policy_version,
               model_version, decided_at, decision)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
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
                req.delivered_at.to_rfc3339(),
                req.requested_at.to_rfc3339(),
                decision.star.get(),
                decision.instant_address_release,
                decision.courier_pickup,
                decision.advanced_refund,
                policy.version,
                model_version,
                now.to_rfc3339(),
                json,
            ])
        })
        .map_err(unavailable)?;
        self.next_decision_id += 1;
        let rec = ReturnRec {
            buyer: req.buyer_id.0,
            order: req.order_id.0,
            amount: req.amount,
            instant: decision.instant_address_release,
            star: decision.star,
            advance: None,
            outcome: None,
        };
        if decision.advanced_refund {
            let tracking = req.tracking_number.as_deref().unwrap_or_default();
            insert_advance(tx, rid, &rec, tracking, now, now, day)?;
        }
        self.returns.insert(rid, rec);
        if decision.advanced_refund {
            self.add_advance(rid, req.amount, day);
        }
        Ok(Decided {
            decision_id,
            decision,
            policy_version: policy.version.clone(),
            model_version,
            repeated: false,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn track(
        &mut self,
        tx: &Transaction<'_>,
        rid: u64,
        tracking: &str,
        shipped_at: DateTime<Utc>,
        stars: Option<&dyn StarLookup>,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<Tracked, LedgerError> {
        let rec = self
            .returns
            .get(&rid)
            .ok_or(LedgerError::UnknownReturn(rid))?
            .clone();
        if let Some(a) = &rec.advance {
            return Ok(Tracked {
                return_id: rid,
                advanced: true,
                amount: a.amount,
                reasons: vec![],
                repeated: true,
            });
        }
        let day = policy::local_date(now, policy);
        let reasons = if !rec.instant {
            vec![ReasonCode::NotInstant]
        } else {
            let view = self.view(rec.buyer, rec.order, day);
            let star = stars
                .and_then(|s| s.star(BuyerId(rec.buyer)))
                .unwrap_or(rec.star);
            let mut r = policy::advance_refusals(star, rec.amount, &view, policy);
            if view.order_already_refunded {
                r.push(ReasonCode::AlreadyRefunded);
            }
            r
        };
        if reasons.is_empty() {
            insert_advance(tx, rid, &rec, tracking, shipped_at, now, day)?;
            self.add_advance(rid, rec.amount, day);
            return Ok(Tracked {
                return_id: rid,
                advanced: true,
                amount: rec.amount,
                reasons,
                repeated: false,
            });
        }
        let codes = serde_json::to_string(&reasons).map_err(unavailable)?;
        tx.prepare_cached(
            "INSERT INTO tracking_refusals (return_id, tracking_number, reasons, at) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut s| s.execute(params![rid as i64, tracking, codes, now.to_rfc3339()]))
        .map_err(unavailable)?;
        Ok(Tracked {
            return_id: rid,
            advanced: false,
            amount: rec.amount,
            reasons,
            repeated: false,
        })
    }

    fn settle(
        &mut self,
        tx: &Transaction<'_>,
        rid: u64,
        outcome: Outcome,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Settled, LedgerError> {
        if outcome == Outcome::Pending {
            return Err(LedgerError::PendingOutcome);
        }
        let rec = self
            .returns
            .get(&rid)
            .ok_or(LedgerError::UnknownReturn(rid))?;
        let amount = rec
            .advance
            .as_ref()
            .ok_or(LedgerError::NotAdvanced(rid))?
            .amount;
        let buyer = rec.buyer;
        let outstanding = |st: &State| st.outstanding.get(&buyer).map(|e| e.0).unwrap_or_default();
        if let Some(existing) = rec.outcome {
            return if existing == outcome {
                Ok(Settled {
                    return_id: rid,
                    outcome,
                    amount,
                    loss: outcome.is_buyer_loss(),
                    outstanding: outstanding(self),
                    repeated: true,
                })
            } else {
                Err(LedgerError::OutcomeConflict {
                    return_id: rid,
                    existing,
                    given: outcome,
                })
            };
        }
        tx.prepare_cached("INSERT INTO outcomes (return_id, outcome, outcome_at, recorded_at) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut s| s.execute(params![rid as i64, outcome.as_str(), at.to_rfc3339(), now.to_rfc3339()]))
            .map_err(unavailable)?;
        if let Some(rec) = self.returns.get_mut(&rid) {
            rec.outcome = Some(outcome);
        }
        let e = self.outstanding.entry(buyer).or_insert((Money::ZERO, 0));
        e.0 = e.0.checked_sub(amount).unwrap_or(Money::ZERO);
        e.1 = e.1.saturating_sub(1);
        Ok(Settled {
            return_id: rid,
            outcome,
            amount,
            loss: outcome.is_buyer_loss(),
            outstanding: outstanding(self),
            repeated: false,
        })
    }
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            let started = std::time::Instant::now();
            let n = batch.len();
            self.apply_batch(&mut batch);
            metrics::histogram!("fastrefund_ledger_batch_size").record(n as f64);
            metrics::histogram!("fastrefund_ledger_commit_seconds")
                .record(started.elapsed().as_secs_f64());
        }
    }

    fn apply_batch(&mut self, batch: &mut Vec<Cmd>) {
        let mut replies = Vec::with_capacity(batch.len());
        let tx = match self.conn.transaction() {
            Ok(tx) => tx,
            Err(e) => {
                let err = unavailable(e);
                for c in batch.drain(..) {
                    reply_error(c, &err);
                }
                return;
            }
        };
        let st = &mut self.state;
        for c in batch.drain(..) {
            replies.push(match c {
                Cmd::Decide {
                    req,
                    star,
                    policy,
                    model_version,
                    now,
                    reply,
                } => Reply::Decide(
                    reply,
                    st.decide(&tx, req, star, &policy, model_version, now),
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
                        &tx,
                        return_id,
                        &tracking_number,
                        shipped_at,
                        stars.as_deref(),
                        &policy,
                        now,
                    ),
                ),
                Cmd::Settle {
                    return_id,
                    outcome,
                    at,
                    now,
                    reply,
                } => Reply::Settle(reply, st.settle(&tx, return_id, outcome, at, now)),
                Cmd::Exposure { buyer, reply } => {
                    let e = st
                        .outstanding
                        .get(&buyer)
                        .copied()
                        .unwrap_or((Money::ZERO, 0));
                    Reply::Exposure(
                        reply,
                        Ok(BuyerExposure {
                            outstanding: e.0,
                            open_advances: e.1,
                        }),
                    )
                }
            });
        }
        match tx.commit() {
            Ok(()) => replies.into_iter().for_each(|r| r.send(None)),
            Err(e) => {
                let err = unavailable(format!("commit failed: {e}"));
                tracing::error!(error = %err, "ledger commit failed; rebuilding the view from the database");
                replies.into_iter().for_each(|r| r.send(Some(&err)));
                match load_state(&self.conn) {
                    Ok(s) => self.state = s,
                    Err(e) => tracing::error!(error = %e, "cannot rebuild the ledger view"),
                }
            }
        }
    }
}

fn reply_error(c: Cmd, e: &LedgerError) {
    match c {
        Cmd::Decide { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Track { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Settle { reply, .. } => drop(reply.send(Err(e.clone()))),
        Cmd::Exposure { reply, .. } => drop(reply.send(Err(e.clone()))),
    }
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`, migrates it, loads the view and starts
    /// the writer thread.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let conn = open_conn(path)?;
        let state = load_state(&conn)?;
        tracing::info!(
            path = %path.display(),
            returns = state.returns.len(),
            buyers_with_outstanding = state.outstanding.values().filter(|e| e.1 > 0).count(),
            "ledger opened"
        );
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let writer = Writer { conn, state };
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| LedgerError::Open {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        Ok(Ledger {
            tx,
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Where the ledger lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, LedgerError>>) -> Cmd,
    ) -> Result<T, LedgerError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| unavailable("the ledger writer has stopped"))?;
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
        self.call(|reply| Cmd::Decide {
            req,
            star,
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

    /// A buyer's outstanding advances (as committed).
    pub async fn exposure(&self, buyer: BuyerId) -> Result<BuyerExposure, LedgerError> {
        self.call(|reply| Cmd::Exposure {
            buyer: buyer.0,
            reply,
        })
        .await
    }
}

/// One decided return, in the shape of the `returns` table (spec §2).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub return_id: ReturnId,
    pub order_id: OrderId,
    pub buyer_id: BuyerId,
    pub merchant_id: MerchantId,
    pub category: Category,
    pub requested_at: DateTime<Utc>,
    pub reason: ReturnReason,
    pub amount: Money,
    pub instant: bool,
    pub advanced: bool,
    /// When the parcel was handed to the courier (as the tracking call said, or when the
    /// tracking number was entered).
    pub shipped_at: Option<DateTime<Utc>>,
    pub outcome: Outcome,
    pub outcome_at: Option<DateTime<Utc>>,
}

fn ts(s: &str) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| unavailable(format!("corrupt time {s:?} in the ledger: {e}")))
}

/// Reads every decided return from a ledger file (read-only; the service may be running).
pub fn export_returns(path: &Path) -> Result<Vec<ExportRow>, LedgerError> {
    if !path.exists() {
        return Err(LedgerError::Open {
            path: path.display().to_string(),
            message: "no such file".into(),
        });
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| LedgerError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    let mut q = conn
        .prepare(
            "SELECT d.return_id, d.order_id, d.buyer_id, d.merchant_id, d.category, d.requested_at, d.reason,
                    d.amount, d.instant, a.shipped_at, o.outcome, o.outcome_at
             FROM decisions d
             LEFT JOIN advances a ON a.return_id = d.return_id
             LEFT JOIN outcomes o ON o.return_id = d.return_id
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
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, bool>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<String>>(11)?,
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
            requested_at: ts(&requested)?,
            reason: reason.parse().map_err(unavailable)?,
            amount: parse_money(&amount)?,
            instant,
            advanced: advanced_at.is_some(),
            // A parcel that never shipped has no shipping time, whatever was claimed.
            shipped_at: advanced_at
                .as_deref()
                .filter(|_| outcome.as_deref() != Some(Outcome::NotShipped.as_str()))
                .map(ts)
                .transpose()?,
            outcome: outcome
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(unavailable)?
                .unwrap_or(Outcome::Pending),
            outcome_at: outcome_at.as_deref().map(ts).transpose()?,
        });
    }
    Ok(out)
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
    let mut expect: HashMap<u64, Money> = HashMap::new();
    for rec in st.returns.values() {
        if let (Some(a), None) = (&rec.advance, rec.outcome) {
            let e = expect.entry(rec.buyer).or_default();
            *e = *e + a.amount;
        }
    }
    for (buyer, (out, _)) in &st.outstanding {
        let want = expect.get(buyer).copied().unwrap_or_default();
        if *out != want {
            return Err(format!(
                "buyer {buyer}: outstanding {out}, advances minus settlements {want}"
            ));
        }
    }
    Ok(expect)
}

#[cfg(test)]
mod tests;
