//! The ledger in PostgreSQL, for several service replicas behind a load balancer.
//!
//! **Same rules.** Every command is a move of the core's return state machine
//! ([`fastrefund_core::ledger::machine`]: [`decide_step`], [`track_step`],
//! [`settle_step`], and the case's release and correction), exactly as in the embedded
//! SQLite ledger; this crate only reads the return and the buyer's row, steps, and
//! writes the move's effects ([`write`]), whose money the [`Book`] applies and checks.
//! A broken invariant stops this replica's money moves and readiness until a restart.
//!
//! **One transaction per command, no global lock on the fast path.** Each command runs
//! in one READ COMMITTED transaction that first takes a transaction-level advisory lock
//! keyed by the buyer (`pg_advisory_xact_lock`), so two commands about one buyer, on any
//! replicas, run one after the other and see each other's advances; commands about
//! different buyers never wait for each other. The buyer's exposure lives in its row of
//! `exposure`, read and written only under that lock. An advance also takes its
//! parcel's lock (keyed by the tracking number) before it reads whether another return
//! was advanced on that parcel, so two buyers' returns on one parcel are decided one
//! after the other; and `advances.order_id` is unique, so an order is refunded once.
//! Locks are always taken buyer first, then parcel.
//!
//! **The daily budget in escrow** ([`escrow`]): no advance locks a shared row. Each
//! replica reserves slices of the day's budget in a short transaction of its own and
//! spends them from memory, recording the slice beside each advance; `advanced ≤
//! reserved ≤ budget` holds per day across replicas, kills and restarts. A clean stop
//! ([`PgLedger::close`]) gives the unspent part back; a crash loses it for the day.
//! The day's refund-only budget (issue 27) is held the same way, in tables of its own
//! (`refund_only_days`, `refund_only_slices`, the slice beside each `kept` row), so no
//! refund without return locks a shared row either.
//!
//! **Nothing waits for ever.** Every session sets `lock_timeout`, `statement_timeout`
//! and `idle_in_transaction_session_timeout` ([`PgOptions`]), and TCP keepalives; a
//! command dropped mid-transaction closes its connection and cancels its statement on
//! the server, so backends stay bounded by the pools. A stuck lock ends a call in a
//! 503 within the lock timeout; a replica frozen inside a transaction has its session
//! ended by the server.
//!
//! **Idempotency across replicas.** `decisions.return_id` is the primary key. The same
//! `return_id` decided on two replicas at once: one commits, the other's insert waits
//! for it and fails with a unique violation, and its retry finds the recorded decision
//! and answers it (or refuses another request under that id with `ReturnIdReused`).
//! Serialization failures, deadlocks and that unique violation are retried, a few times
//! with a short backoff. Decision ids come from a sequence: unique across replicas.
//!
//! **Few round trips.** Each round trip to the database is a wake-up of a backend and
//! of the replica on shared cores, so a command pipelines what does not depend on an
//! answer (tokio-postgres sends requests in the order their futures are first polled;
//! PostgreSQL runs them in that order): `BEGIN` goes with the buyer's lock and every
//! read, a decision's insert with its `COMMIT`, an advance's rows together. A decision
//! is two round trips (five before), an advance by tracking number five (ten). Every
//! statement is prepared before it is pipelined, so none waits for its own preparing
//! and overtakes another; the futures are joined `biased` (polled in the order written,
//! never rotated), so that they are sent in that order and, when one statement fails,
//! its error wins over the "transaction is aborted" of the statements behind it; `COMMIT` is pipelined only behind a single statement
//! ([`commit_with`]), never behind several, so that nothing can fall after it. A
//! transaction that did not end cleanly (its caller went away mid-command) never goes
//! back to the pool: the connection is closed and PostgreSQL rolls it back.
//!
//! **Durability.** A command is answered after its COMMIT, which with
//! `synchronous_commit = on` (set by every session, not assumed) has flushed the WAL:
//! nothing acknowledged is lost. A replica refuses to start on a server with `fsync =
//! off`, naming the setting.
//!
//! **Schema.** Versioned migrations ([`MIGRATIONS`]) run at start inside one
//! transaction under an advisory lock, so replicas starting together migrate once.
//! Amounts are `NUMERIC(16,2)`; times are microseconds since the epoch, as in SQLite.

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use deadpool_postgres::{ClientWrapper, Object};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use fastrefund_core::cases::CaseDeadlines;
use fastrefund_core::domain::{
    BuyerId, Category, Decision, MerchantId, Money, OrderId, Outcome, ReturnId, ReturnReason,
    ReturnRequest, Star,
};
use fastrefund_core::ledger::{
    Advance, Book, DecideStep, Effect, ExportRow, InvariantBroken, KeepStep, NewDecision, Refusal,
    ReturnRec, ReturnState, StarLookup, TrackStep, decide_step, decided, keep_step, same_request,
    settle_step, shadow_record, track_step,
};
use fastrefund_core::policy::{self, LedgerView, Policy};
use fastrefund_store::{
    BuyerExposure, CaseAnswer, CaseCall, Decided, Kept, LedgerError, LedgerFuture, LedgerStore,
    Settled, Tracked,
};
use rust_decimal::Decimal;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;
use tokio_postgres::NoTls;

mod cases;
mod escrow;
mod tls;
use escrow::{Claims, Escrow, Fate, ReserveError};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The schema, one migration per version, applied in order and recorded in
/// `schema_migrations`. Never edit one that has shipped: add the next.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE decisions (
        return_id BIGINT PRIMARY KEY,
        decision_id BIGINT NOT NULL UNIQUE,
        buyer_id BIGINT NOT NULL,
        order_id BIGINT NOT NULL,
        merchant_id BIGINT NOT NULL,
        category TEXT NOT NULL,
        amount NUMERIC(16,2) NOT NULL CHECK (amount > 0),
        reason TEXT NOT NULL,
        delivered_at BIGINT NOT NULL,
        requested_at BIGINT NOT NULL,
        tracking_number TEXT,
        decided_at BIGINT NOT NULL,
        star SMALLINT NOT NULL,
        instant BOOLEAN NOT NULL,
        decision TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        model_version TEXT NOT NULL,
        shadow TEXT
    );
    CREATE INDEX decisions_buyer ON decisions (buyer_id);
    CREATE TABLE advances (
        return_id BIGINT PRIMARY KEY REFERENCES decisions (return_id),
        buyer_id BIGINT NOT NULL,
        order_id BIGINT NOT NULL,
        amount NUMERIC(16,2) NOT NULL CHECK (amount > 0),
        tracking_number TEXT NOT NULL,
        shipped_at BIGINT NOT NULL,
        advanced_at BIGINT NOT NULL,
        local_date DATE NOT NULL
    );
    CREATE INDEX advances_tracking ON advances (tracking_number);
    CREATE INDEX advances_order ON advances (order_id);
    CREATE TABLE outcomes (
        return_id BIGINT PRIMARY KEY REFERENCES advances (return_id),
        outcome TEXT NOT NULL,
        outcome_at BIGINT NOT NULL,
        recorded_at BIGINT NOT NULL
    );
    CREATE TABLE tracking_refusals (
        id BIGSERIAL PRIMARY KEY,
        return_id BIGINT NOT NULL REFERENCES decisions (return_id),
        tracking_number TEXT NOT NULL,
        reasons TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE TABLE exposure (
        buyer_id BIGINT PRIMARY KEY,
        outstanding NUMERIC(16,2) NOT NULL CHECK (outstanding >= 0),
        open_advances INT NOT NULL CHECK (open_advances >= 0),
        last_loss BIGINT
    );
    CREATE TABLE daily (
        day DATE PRIMARY KEY,
        advanced NUMERIC(16,2) NOT NULL CHECK (advanced >= 0)
    );
    CREATE SEQUENCE decision_ids;",
    ),
    (
        2,
        // An order is refunded once, whichever replicas and buyers race for it: the
        // database refuses a second advance of an order (the losing command's retry
        // then reads the first one and refuses with `already_refunded`, as SQLite
        // does). A database that already holds a doubly advanced order fails this
        // migration, naming the order, for an operator to settle by hand.
        "CREATE UNIQUE INDEX advances_order_once ON advances (order_id);
        DROP INDEX advances_order;",
    ),
    (
        3,
        // The daily budget in escrow (see `escrow`): each replica reserves slices of
        // the day's budget in `budget_slices` (the day's total in `daily.reserved`)
        // and records which slice each advance spent. What was advanced before this
        // migration stays reserved for its day (`daily.advanced`, no longer written).
        "CREATE TABLE budget_slices (
            slice_id BIGSERIAL PRIMARY KEY,
            day DATE NOT NULL,
            holder TEXT NOT NULL,
            reserved NUMERIC(16,2) NOT NULL CHECK (reserved >= 0),
            opened_at BIGINT NOT NULL,
            closed_at BIGINT
        );
        CREATE INDEX budget_slices_day ON budget_slices (day);
        ALTER TABLE daily ADD COLUMN reserved NUMERIC(16,2) NOT NULL DEFAULT 0
            CHECK (reserved >= 0);
        UPDATE daily SET reserved = advanced;
        ALTER TABLE advances ADD COLUMN slice_id BIGINT REFERENCES budget_slices (slice_id);
        CREATE INDEX advances_slice ON advances (slice_id);",
    ),
    // Cases (spec §10): see `cases`.
    (4, cases::MIGRATION),
    // A `decision` case won by the buyer: a person released the return (see `cases`).
    (
        5,
        "CREATE TABLE reviewer_releases (
            return_id BIGINT PRIMARY KEY REFERENCES decisions (return_id),
            case_id BIGINT NOT NULL REFERENCES cases (case_id),
            reviewer TEXT NOT NULL,
            at BIGINT NOT NULL
        );",
    ),
    // Refund without return (仅退款, issue 27): each offer taken (`kept`, one per return),
    // found by buyer and time (the rolling 30-day cap) and by order (refunded once);
    // the day's running total in `kept_days`, whose row a keep locks, so that the
    // day's refund-only budget holds exactly across replicas. Whether a decision made
    // the offer is in its `decision` JSON.
    (
        6,
        "CREATE TABLE kept (
            return_id BIGINT PRIMARY KEY REFERENCES decisions (return_id),
            buyer_id BIGINT NOT NULL,
            order_id BIGINT NOT NULL,
            amount NUMERIC(16,2) NOT NULL CHECK (amount > 0),
            kept_at BIGINT NOT NULL,
            local_date DATE NOT NULL
        );
        CREATE INDEX kept_buyer_at ON kept (buyer_id, kept_at);
        CREATE INDEX kept_order ON kept (order_id);
        CREATE TABLE kept_days (
            day DATE PRIMARY KEY,
            total NUMERIC(16,2) NOT NULL CHECK (total >= 0)
        );",
    ),
    // The refund-only daily budget in escrow too, as the advances' is (see `escrow`):
    // no keep locks a shared row. What was kept before this migration stays reserved
    // for its day (`kept_days`, no longer written).
    (
        7,
        "ALTER TABLE daily ALTER COLUMN advanced SET DEFAULT 0;
        CREATE TABLE refund_only_days (
            day DATE PRIMARY KEY,
            reserved NUMERIC(16,2) NOT NULL DEFAULT 0 CHECK (reserved >= 0),
            kept_before NUMERIC(16,2) NOT NULL DEFAULT 0 CHECK (kept_before >= 0)
        );
        INSERT INTO refund_only_days (day, reserved, kept_before)
            SELECT day, total, total FROM kept_days;
        CREATE TABLE refund_only_slices (
            slice_id BIGSERIAL PRIMARY KEY,
            day DATE NOT NULL,
            holder TEXT NOT NULL,
            reserved NUMERIC(16,2) NOT NULL CHECK (reserved >= 0),
            opened_at BIGINT NOT NULL,
            closed_at BIGINT
        );
        CREATE INDEX refund_only_slices_day ON refund_only_slices (day);
        ALTER TABLE kept ADD COLUMN slice_id BIGINT REFERENCES refund_only_slices (slice_id);",
    ),
];

/// The advisory lock (two-int form, apart from the buyers' bigint keys) that serializes
/// migrations across replicas.
const MIGRATION_LOCK: (i32, i32) = (0x6672_6664, 1);

/// Attempts of one command when PostgreSQL asks for a retry (serialization failure,
/// deadlock, or a concurrent first decision of the same `return_id`).
const MAX_ATTEMPTS: u32 = 8;

/// Whether a ledger setting names a PostgreSQL database (`postgres://` or
/// `postgresql://`, libpq's URL forms) rather than a SQLite file.
pub fn is_url(ledger: &str) -> bool {
    ledger.starts_with("postgres://") || ledger.starts_with("postgresql://")
}

/// How the pool and each of its sessions behave. The defaults fit the service's
/// handler timeout (5 s): nothing a command waits for on the database outlasts it, so a
/// stuck lock, a frozen peer or a silent network ends in a clear 503 rather than a
/// pile of waiting calls and backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections per replica (PostgreSQL's own `max_connections`, 100 by default, is
    /// shared by all replicas).
    pub max_connections: usize,
    /// How long a command waits for a connection, or for one to be made, before it is
    /// answered 503.
    pub connect_timeout: Duration,
    /// `lock_timeout` of every session (default 1 s): the longest a statement waits for
    /// a lock (a buyer's, a parcel's, a budget slice's) before the command fails with
    /// 503. A command holds its locks for milliseconds, so a wait this long means a
    /// stuck peer.
    pub lock_timeout: Duration,
    /// `statement_timeout` of every session (default 3 s).
    pub statement_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of every session (default 2 s): a replica
    /// that freezes or vanishes inside a transaction has its session ended and its
    /// locks released by the server after this long.
    pub idle_in_transaction_timeout: Duration,
    /// TCP keepalives: idle time before the first probe (default 5 s); with 1 s between
    /// probes and 3 probes, a peer gone without a FIN is noticed within about 8 s, and
    /// unacknowledged writes give up after the same time (`TCP_USER_TIMEOUT`).
    pub keepalive_idle: Duration,
    /// The daily budget is reserved by each replica in slices of about `1 /
    /// budget_slices` of it (default 32), smaller as the day's budget runs out (see
    /// [`fastrefund_core::ledger::escrow`]).
    pub budget_slices: u32,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(2),
            lock_timeout: Duration::from_secs(1),
            statement_timeout: Duration::from_secs(3),
            idle_in_transaction_timeout: Duration::from_secs(2),
            keepalive_idle: Duration::from_secs(5),
            budget_slices: 32,
        }
    }
}

impl PgOptions {
    /// The `-c` settings every session starts with (libpq's `options`). `synchronous_commit
    /// = on` is set, not assumed: an acknowledged command has its WAL flushed whatever the
    /// server's or the role's default.
    pub fn session_settings(&self) -> String {
        format!(
            "-c synchronous_commit=on -c lock_timeout={} -c statement_timeout={} \
             -c idle_in_transaction_session_timeout={}",
            self.lock_timeout.as_millis(),
            self.statement_timeout.as_millis(),
            self.idle_in_transaction_timeout.as_millis()
        )
    }
}

/// A replica's handle on the shared ledger; cheap to clone.
#[derive(Clone)]
pub struct PgLedger {
    pool: Pool,
    /// This replica's slices of the daily budget.
    escrow: Arc<Escrow>,
    /// This replica's slices of the daily refund-only budget.
    refund_escrow: Arc<Escrow>,
    /// The TLS connector (`None`: plain TCP), for cancel requests too.
    tls: Option<MakeRustlsConnect>,
    /// `host:port/db`, never the password.
    described: Arc<str>,
    /// Set for good when a command found the records breaking the book's invariants:
    /// this replica refuses every command and is not ready until an operator has
    /// looked and restarted it.
    broken: Arc<std::sync::OnceLock<String>>,
}

/// Why a command's transaction stopped: the database, or the rules.
enum TxError {
    Db(tokio_postgres::Error),
    Ledger(LedgerError),
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<LedgerError> for TxError {
    fn from(e: LedgerError) -> Self {
        TxError::Ledger(e)
    }
}

impl From<Refusal> for TxError {
    fn from(e: Refusal) -> Self {
        TxError::Ledger(e.into())
    }
}

impl From<InvariantBroken> for TxError {
    fn from(e: InvariantBroken) -> Self {
        TxError::Ledger(e.into())
    }
}

fn unavailable(e: impl std::fmt::Display) -> LedgerError {
    LedgerError::Unavailable(e.to_string())
}

/// A command's transaction on one pooled connection (see [`PgLedger::run`]).
struct Tx<'c> {
    client: &'c ClientWrapper,
    /// The transaction is over: its COMMIT was answered (by a commit, or by the
    /// rollback PostgreSQL makes of it after a failed statement).
    ended: AtomicBool,
    /// Where its COMMIT is: [`OPEN`], [`COMMIT_SENT`], [`COMMITTED`] or [`NOT_COMMITTED`].
    commit: AtomicU8,
    /// The replica's budget slices, and what this transaction claimed of them.
    escrow: &'c Arc<Escrow>,
    claims: Claims,
    /// The same for the refund-only budget.
    refund_escrow: &'c Arc<Escrow>,
    refund_claims: Claims,
}

/// The transaction has not sent its COMMIT.
const OPEN: u8 = 0;
/// Its COMMIT was sent and not answered yet (if it never is, the outcome is unknown).
const COMMIT_SENT: u8 = 1;
const COMMITTED: u8 = 2;
/// Its COMMIT was answered with a rollback or an error from the server.
const NOT_COMMITTED: u8 = 3;

impl Tx<'_> {
    /// Marks the COMMIT sent, before it is.
    fn sending_commit(&self) {
        self.commit.store(COMMIT_SENT, Ordering::Release);
    }

    /// Records how the COMMIT was answered: `Ok(true)` committed, `Ok(false)` rolled
    /// back by the server, `Err` not answered by the server (the connection failed).
    fn commit_answered(&self, answer: Result<bool, ()>) {
        let state = match answer {
            Ok(true) => COMMITTED,
            Ok(false) => NOT_COMMITTED,
            Err(()) => COMMIT_SENT,
        };
        self.commit.store(state, Ordering::Release);
    }
}

impl Drop for Tx<'_> {
    /// Settles the budget claims by how the transaction ended, on every path: an
    /// answer, an error, or a caller that went away mid-command.
    fn drop(&mut self) {
        let fate = match self.commit.load(Ordering::Acquire) {
            COMMITTED => Fate::Committed,
            COMMIT_SENT => Fate::InDoubt,
            _ => Fate::RolledBack,
        };
        self.claims.settle(self.escrow, fate);
        self.refund_claims.settle(self.refund_escrow, fate);
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = ClientWrapper;
    fn deref(&self) -> &ClientWrapper {
        self.client
    }
}

/// A pooled connection inside a transaction. It goes back to the pool only through
/// [`Pooled::finish`] once its transaction is over; otherwise (an error the rollback
/// could not clear, or a caller that went away mid-command) it is closed, and
/// PostgreSQL rolls its transaction back.
struct Pooled(Option<Object>, Option<MakeRustlsConnect>);

impl Pooled {
    /// Back to the pool if the transaction is over (`clean`), else closed.
    fn finish(mut self, clean: bool) {
        match self.0.take() {
            Some(object) if clean => drop(object),
            Some(object) => drop(Object::take(object)),
            None => {}
        }
    }
}

impl Drop for Pooled {
    /// The command was dropped mid-transaction (its caller gave up: the handler's
    /// timeout, a client gone). Closing the socket alone would leave the backend
    /// running or waiting on a lock until it next writes to it; so the running
    /// statement is also cancelled on the server, at once, and the backend ends.
    fn drop(&mut self) {
        if let Some(object) = self.0.take() {
            let cancel = object.cancel_token();
            let tls = self.1.take();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let cancelled = match tls {
                        Some(tls) => cancel.cancel_query(tls).await,
                        None => cancel.cancel_query(NoTls).await,
                    };
                    if let Err(e) = cancelled {
                        tracing::debug!(error = %e, "cancelling an abandoned ledger statement");
                    }
                });
            }
            drop(Object::take(object));
        }
    }
}

/// Sends a command's last write and its `COMMIT` together: one round trip for both.
/// `last` must use a statement prepared already, so that its first poll sends it
/// before the `COMMIT` (see [`PgLedger::run`]). If the write fails, PostgreSQL answers
/// the `COMMIT` with a rollback, and the write's error is returned.
async fn commit_with<T>(
    tx: &Tx<'_>,
    last: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, TxError> {
    tx.sending_commit();
    let (written, committed) = tokio::join!(biased; last, tx.client.batch_execute("COMMIT"));
    if committed.is_ok() {
        tx.ended.store(true, Ordering::Release);
    }
    tx.commit_answered(match (&written, &committed) {
        // The server refused the write: the transaction cannot commit.
        (Err(w), _) if w.as_db_error().is_some() => Ok(false),
        (_, Ok(())) => Ok(written.is_ok()),
        (_, Err(e)) if e.as_db_error().is_some() => Ok(false),
        _ => Err(()),
    });
    let v = written?;
    committed?;
    Ok(v)
}

/// Prepares `sqls` on this connection unless they are already (then without a round
/// trip), so that the statements pipelined after it go out in the order polled.
async fn warm(tx: &Tx<'_>, sqls: &[&str]) -> Result<(), tokio_postgres::Error> {
    for sql in sqls {
        tx.prepare_cached(sql).await?;
    }
    Ok(())
}

fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

/// An error with its causes (a pool's error hides why it could not connect: a refused
/// certificate, a wrong password), for an operator.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// A database error with what the server said (tokio-postgres' own text is only "db
/// error"), for the logs: the SQLSTATE, the message and the constraint, never a value.
fn db_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.constraint()
                .map(|c| format!(", constraint {c}"))
                .unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

fn money(d: Decimal) -> Result<Money, LedgerError> {
    Money::new(d).map_err(|e| unavailable(format!("corrupt amount {d} in the ledger: {e}")))
}

fn ts(micros: i64) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| unavailable(format!("corrupt time {micros} in the ledger")))
}

impl PgLedger {
    /// Connects to `url` (`postgres://USER@HOST:PORT/DB`, libpq's form), checks that
    /// the database answers, and runs the migrations it has not seen.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgLedger, LedgerError> {
        let open = |message: String| LedgerError::Open {
            path: redact(url),
            message,
        };
        let tls = tls::settings(url).map_err(open)?;
        let mut config: tokio_postgres::Config = tls
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| open(format!("not a PostgreSQL URL: {e}")))?;
        config.connect_timeout(options.connect_timeout);
        // Ours first, so that `-c` settings in the URL's `options` override them.
        let settings = match config.get_options() {
            Some(given) => format!("{} {given}", options.session_settings()),
            None => options.session_settings(),
        };
        config.options(settings);
        let named = |key: &str| url_query_keys(url).any(|k| k == key);
        if !named("keepalives_idle") {
            config.keepalives_idle(options.keepalive_idle);
        }
        if !named("keepalives_interval") {
            config.keepalives_interval(Duration::from_secs(1));
        }
        if !named("keepalives_retries") {
            config.keepalives_retries(3);
        }
        if !named("tcp_user_timeout") {
            config.tcp_user_timeout(options.keepalive_idle + Duration::from_secs(3));
        }
        let pool = |size: usize| {
            let manager_config = ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            };
            let manager = match &tls.connector {
                Some(c) => Manager::from_config(config.clone(), c.clone(), manager_config),
                None => Manager::from_config(config.clone(), NoTls, manager_config),
            };
            Pool::builder(manager)
                .max_size(size)
                .wait_timeout(Some(options.connect_timeout))
                .create_timeout(Some(options.connect_timeout))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .build()
                .map_err(|e| open(e.to_string()))
        };
        let ledger = PgLedger {
            pool: pool(options.max_connections)?,
            // Reservations have connections of their own: a command waiting for one
            // holds a pooled connection, so the reservation must not wait for another.
            escrow: Arc::new(Escrow::new(
                pool(1)?,
                options.budget_slices,
                escrow::ADVANCES,
            )),
            refund_escrow: Arc::new(Escrow::new(
                pool(1)?,
                options.budget_slices,
                escrow::REFUND_ONLY,
            )),
            tls: tls.connector.clone(),
            described: Arc::from(format!("PostgreSQL at {}", redact(url))),
            broken: Arc::default(),
        };
        ledger.check_durable().await.map_err(open)?;
        ledger.migrate().await.map_err(|e| open(e.to_string()))?;
        Ok(ledger)
    }

    /// Refuses a server that would acknowledge a commit it may lose: with `fsync = off`
    /// a crash of the machine loses or corrupts committed money moves.
    async fn check_durable(&self) -> Result<(), String> {
        let client = self.pool.get().await.map_err(|e| with_causes(&e))?;
        let row = client
            .query_one(
                "SELECT current_setting('fsync'), current_setting('synchronous_commit')",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        let (fsync, sync_commit): (String, String) = (row.get(0), row.get(1));
        if fsync != "on" {
            return Err(format!(
                "the server runs with `fsync = {fsync}`, so a commit it acknowledges can be lost in a crash: set `fsync = on` in postgresql.conf"
            ));
        }
        if sync_commit != "on" {
            return Err(format!(
                "sessions run with `synchronous_commit = {sync_commit}` (set by the URL's options?): the ledger needs `on`"
            ));
        }
        Ok(())
    }

    /// Applies the migrations not yet applied, in one transaction, under an advisory
    /// lock: a replica starting at the same moment waits, then finds them applied.
    async fn migrate(&self) -> Result<(), LedgerError> {
        let mut client = self.pool.get().await.map_err(unavailable)?;
        let tx = client.transaction().await.map_err(unavailable)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&MIGRATION_LOCK.0, &MIGRATION_LOCK.1],
        )
        .await
        .map_err(unavailable)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(unavailable)?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM schema_migrations", &[])
            .await
            .map_err(unavailable)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let newest = MIGRATIONS.last().map_or(0, |m| m.0);
        if let Some(v) = applied.iter().find(|v| **v > newest) {
            return Err(unavailable(format!(
                "the database has schema version {v}, newer than this build's {newest}: upgrade this replica"
            )));
        }
        for (version, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.batch_execute(sql).await.map_err(unavailable)?;
            tx.execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(unavailable)?;
            tracing::info!(version, "ledger schema migrated");
        }
        tx.commit().await.map_err(unavailable)
    }

    /// Runs `work` in a transaction, retrying it when PostgreSQL asks (serialization
    /// failure, deadlock, a concurrent first decision of the same return).
    ///
    /// `BEGIN` is not a round trip of its own: it goes out with the command's first
    /// statements (tokio-postgres sends requests in the order their futures are first
    /// polled, and PostgreSQL runs them in that order). `COMMIT` goes out with the last
    /// write when the command uses [`commit_with`], or after the work otherwise. A
    /// transaction that did not end cleanly (an error, or the caller dropped this future
    /// while it was open) never goes back to the pool: its connection is closed, and
    /// PostgreSQL rolls the transaction back.
    async fn run<T, F>(&self, work: F) -> Result<T, LedgerError>
    where
        F: for<'t> Fn(&'t Tx<'t>) -> Pin<Box<dyn Future<Output = Result<T, TxError>> + Send + 't>>
            + Send,
    {
        if let Some(why) = self.broken.get() {
            return Err(unavailable(why));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = Pooled(
                Some(self.pool.get().await.map_err(unavailable)?),
                self.tls.clone(),
            );
            let Some(client) = conn.0.as_deref() else {
                return Err(unavailable("no pooled connection"));
            };
            let tx = Tx {
                client,
                ended: AtomicBool::new(false),
                commit: AtomicU8::new(OPEN),
                escrow: &self.escrow,
                claims: Claims::default(),
                refund_escrow: &self.refund_escrow,
                refund_claims: Claims::default(),
            };
            let (begun, worked) = tokio::join!(biased; client.batch_execute("BEGIN"), work(&tx));
            let result = match (begun, worked) {
                (Err(e), _) => Err(TxError::Db(e)),
                (Ok(()), Ok(v)) if tx.ended.load(Ordering::Acquire) => Ok(v),
                (Ok(()), Ok(v)) => {
                    tx.sending_commit();
                    match client.batch_execute("COMMIT").await {
                        Ok(()) => {
                            tx.ended.store(true, Ordering::Release);
                            tx.commit_answered(Ok(true));
                            Ok(v)
                        }
                        Err(e) => {
                            tx.commit_answered(if e.as_db_error().is_some() {
                                Ok(false)
                            } else {
                                Err(())
                            });
                            Err(TxError::Db(e))
                        }
                    }
                }
                (Ok(()), Err(e)) => Err(e),
            };
            let clean = tx.ended.load(Ordering::Acquire)
                || (result.is_err() && client.batch_execute("ROLLBACK").await.is_ok());
            drop(tx);
            conn.finish(clean);
            match result {
                Ok(v) => return Ok(v),
                Err(TxError::Ledger(LedgerError::Broken(why))) => {
                    let _ = self.broken.set(format!(
                        "{why}; money moves are stopped: check the ledger's records, then restart the service"
                    ));
                    return Err(LedgerError::Broken(why));
                }
                Err(TxError::Ledger(e)) => return Err(e),
                Err(TxError::Db(e)) if retryable(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "ledger transaction retried");
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt) * 2)).await;
                }
                Err(TxError::Db(e)) => return Err(unavailable(db_error(&e))),
            }
        }
    }

    /// Every decided case, oldest first (for `export-cases`).
    pub async fn export_cases(&self) -> Result<Vec<fastrefund_core::cases::Case>, LedgerError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        client
            .query(
                "SELECT body FROM cases WHERE state = 'decided' ORDER BY case_id",
                &[],
            )
            .await
            .map_err(|e| unavailable(db_error(&e)))?
            .iter()
            .map(|r| {
                serde_json::from_str(r.get(0))
                    .map_err(|e| unavailable(format!("corrupt case: {e}")))
            })
            .collect()
    }

    /// Every decided return, in the shape of the `returns` table.
    pub async fn export_returns(&self) -> Result<Vec<ExportRow>, LedgerError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let rows = client
            .query(
                "SELECT d.return_id, d.order_id, d.buyer_id, d.merchant_id, d.category,
                        d.requested_at, d.reason, d.amount, d.instant OR r.return_id IS NOT NULL,
                        a.return_id IS NOT NULL, a.shipped_at,
                        CASE WHEN k.return_id IS NOT NULL THEN 'refunded_without_return'
                             ELSE COALESCE(c.to_outcome, o.outcome) END,
                        COALESCE(k.kept_at, o.outcome_at)
                 FROM decisions d
                 LEFT JOIN kept k ON k.return_id = d.return_id
                 LEFT JOIN advances a ON a.return_id = d.return_id
                 LEFT JOIN outcomes o ON o.return_id = d.return_id
                 LEFT JOIN outcome_corrections c ON c.return_id = d.return_id
                 LEFT JOIN reviewer_releases r ON r.return_id = d.return_id
                 ORDER BY d.decision_id",
                &[],
            )
            .await
            .map_err(unavailable)?;
        rows.iter()
            .map(|r| {
                Ok(ExportRow {
                    return_id: ReturnId(r.get::<_, i64>(0) as u64),
                    order_id: OrderId(r.get::<_, i64>(1) as u64),
                    buyer_id: BuyerId(r.get::<_, i64>(2) as u64),
                    merchant_id: MerchantId(r.get::<_, i64>(3) as u64),
                    category: Category::parse(r.get(4)).map_err(unavailable)?,
                    requested_at: ts(r.get(5))?,
                    reason: r.get::<_, &str>(6).parse().map_err(unavailable)?,
                    amount: money(r.get(7))?,
                    instant: r.get(8),
                    advanced: r.get(9),
                    shipped_at: r.get::<_, Option<i64>>(10).map(ts).transpose()?,
                    outcome: match r.get::<_, Option<&str>>(11) {
                        Some(o) => o.parse().map_err(unavailable)?,
                        None => Outcome::Pending,
                    },
                    outcome_at: r.get::<_, Option<i64>>(12).map(ts).transpose()?,
                })
            })
            .collect()
    }

    /// Returns the unspent part of this replica's budget slices to their days: a clean
    /// stop, once no command is in flight (what a replica that crashes held stays
    /// reserved and unspent for its day). Returns how much went back.
    pub async fn close(&self) -> Result<Money, LedgerError> {
        let back = self
            .escrow
            .give_back(Utc::now())
            .await
            .map_err(unavailable)?;
        let refund_back = self
            .refund_escrow
            .give_back(Utc::now())
            .await
            .map_err(unavailable)?;
        tracing::info!(%refund_back, "unspent refund-only slices returned");
        tracing::info!(%back, "unspent budget slices returned");
        Ok(back)
    }

    /// `day`'s advanced total (the committed advances) and reserved total (what every
    /// replica's slices hold, with what was advanced before slices): the escrow's
    /// invariant is `advanced <= reserved <= budget`.
    pub async fn day_totals(&self, day: NaiveDate) -> Result<(Money, Money), LedgerError> {
        let client = self.pool.get().await.map_err(unavailable)?;
        let r = client
            .query_one(
                "SELECT (SELECT COALESCE(SUM(amount), 0) FROM advances WHERE local_date = $1),
                        (SELECT COALESCE(MAX(reserved), 0) FROM daily WHERE day = $1)",
                &[&day],
            )
            .await
            .map_err(|e| unavailable(db_error(&e)))?;
        Ok((money(r.get(0))?, money(r.get(1))?))
    }

    /// Checks the money invariants against the rows themselves: each buyer's exposure
    /// row equals their advances minus their settled advances, and no row is negative;
    /// each day's advances fit what is reserved for it, which is what its slices hold;
    /// each slice's advances fit the slice; the same for the refund-only budget and the
    /// refunds without return. Returns each buyer's outstanding amount.
    pub async fn check_invariants(&self) -> Result<Vec<(u64, Money, u32)>, String> {
        let client = self.pool.get().await.map_err(|e| e.to_string())?;
        for tables in [escrow::ADVANCES, escrow::REFUND_ONLY] {
            if let Some(why) = escrow::broken(&client, tables).await? {
                return Err(why);
            }
        }
        let wrong = client
            .query(
                "WITH open AS (
                    SELECT a.buyer_id, SUM(a.amount) AS owed, COUNT(*)::INT AS n
                    FROM advances a LEFT JOIN outcomes o ON o.return_id = a.return_id
                    WHERE o.return_id IS NULL GROUP BY a.buyer_id)
                 SELECT COALESCE(e.buyer_id, open.buyer_id), e.outstanding, open.owed
                 FROM exposure e FULL JOIN open ON open.buyer_id = e.buyer_id
                 WHERE COALESCE(e.outstanding, 0) <> COALESCE(open.owed, 0)
                    OR COALESCE(e.open_advances, 0) <> COALESCE(open.n, 0)",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Some(r) = wrong.first() {
            return Err(format!(
                "buyer {}: exposure row {:?} but open advances {:?} ({} buyers disagree)",
                r.get::<_, i64>(0),
                r.get::<_, Option<Decimal>>(1),
                r.get::<_, Option<Decimal>>(2),
                wrong.len()
            ));
        }
        let rows = client
            .query(
                "SELECT buyer_id, outstanding, open_advances FROM exposure
                 WHERE open_advances > 0 ORDER BY buyer_id",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.get::<_, i64>(0) as u64,
                    money(r.get(1)).map_err(|e| e.to_string())?,
                    r.get::<_, i32>(2) as u32,
                ))
            })
            .collect()
    }
}

/// A URL without its password, for logs and errors: neither the userinfo's nor a
/// `password` (or `sslpassword`) in its query.
fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match (base.find("://"), base.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &base[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}@{}", &base[..s + 3], &base[at + 1..])
        }
        _ => base.to_string(),
    };
    if let Some(q) = query {
        let kept: Vec<&str> = q
            .split('&')
            .filter(|kv| {
                let key = kv.split('=').next().unwrap_or_default();
                key != "password" && key != "sslpassword"
            })
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

/// The keys of a URL's query string.
fn url_query_keys(url: &str) -> impl Iterator<Item = &str> {
    url.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .filter(|k| !k.is_empty())
}

/// Statements that are pipelined; named so that [`warm`] prepares the very strings the
/// helpers that send them use.
const LOCK_BUYER: &str = "SELECT pg_advisory_xact_lock($1)";
const READ_RESERVED: &str = "SELECT reserved FROM daily WHERE day = $1";
/// A parcel's lock (the two-int form, in a class of its own: apart from the buyers'
/// bigint keys and from the migrations' class), keyed by a hash of its tracking number.
/// Taken after the buyer's lock and before any read of who the parcel backs, so two
/// buyers' returns on one tracking number, on any replicas, are decided one after the
/// other and the second sees the first's advance. A hash collision only makes two
/// parcels wait for each other a moment.
const LOCK_TRACKING: &str = "SELECT pg_advisory_xact_lock(1718776944, hashtext($1))";
const READ_BUYER: &str =
    "SELECT outstanding, open_advances, last_loss FROM exposure WHERE buyer_id = $1";
const INDEXED_FACTS: &str = "SELECT EXISTS (SELECT 1 FROM advances WHERE order_id = $1)
            OR EXISTS (SELECT 1 FROM kept WHERE order_id = $1),
        EXISTS (SELECT 1 FROM advances WHERE tracking_number = $2 AND return_id <> $3)";
const RECORDED: &str = "SELECT buyer_id, order_id, merchant_id, category, amount, reason,
        delivered_at, requested_at, tracking_number, decision_id, decision, policy_version,
        model_version
     FROM decisions WHERE return_id = $1";
const INDEXED_FACTS_OF: &str = "SELECT EXISTS (SELECT 1 FROM advances
            WHERE order_id = (SELECT order_id FROM decisions WHERE return_id = $1))
            OR EXISTS (SELECT 1 FROM kept
            WHERE order_id = (SELECT order_id FROM decisions WHERE return_id = $1)),
        EXISTS (SELECT 1 FROM advances WHERE tracking_number = $2 AND return_id <> $1)";
const STORE_EXPOSURE: &str =
    "INSERT INTO exposure (buyer_id, outstanding, open_advances, last_loss)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (buyer_id) DO UPDATE SET outstanding = EXCLUDED.outstanding,
         open_advances = EXCLUDED.open_advances, last_loss = EXCLUDED.last_loss";
const INSERT_DECISION: &str = "INSERT INTO decisions (return_id, decision_id, buyer_id,
        order_id, merchant_id, category, amount, reason, delivered_at, requested_at,
        tracking_number, decided_at, star, instant, decision, policy_version, model_version,
        shadow)
     VALUES ($1, nextval('decision_ids'), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
        $13, $14, $15, $16, $17)
     RETURNING decision_id";

const INSERT_ADVANCE: &str = "INSERT INTO advances (return_id, buyer_id, order_id, amount,
        tracking_number, shipped_at, advanced_at, local_date, slice_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The statement for `sql`, prepared once per connection (a statement sent as text
/// would be parsed and described again on every call: a round trip more each).
async fn st(tx: &Tx<'_>, sql: &str) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
    tx.prepare_cached(sql).await
}

/// Finds the buyer of decided return `rid` and takes their lock in the same statement
/// (a decision's buyer never changes); a return never decided is refused.
async fn lock_buyer_of(tx: &Tx<'_>, rid: u64) -> Result<u64, TxError> {
    let buyer: Option<i64> = tx
        .query_opt(
            &st(
                tx,
                "SELECT buyer_id, pg_advisory_xact_lock(buyer_id) FROM decisions WHERE return_id = $1",
            )
            .await?,
            &[&(rid as i64)],
        )
        .await?
        .map(|r| r.get(0));
    buyer
        .map(|b| b as u64)
        .ok_or_else(|| Refusal::UnknownReturn(rid).into())
}

/// Serializes every command about `buyer` until the transaction ends, on any replica.
async fn lock_buyer(tx: &Tx<'_>, buyer: u64) -> Result<(), TxError> {
    tx.execute(&st(tx, LOCK_BUYER).await?, &[&(buyer as i64)])
        .await?;
    Ok(())
}

/// Serializes every advance on tracking number `tracking` until the transaction ends,
/// on any replica (no tracking number: nothing to lock, and no round trip).
async fn lock_tracking(tx: &Tx<'_>, tracking: Option<&str>) -> Result<(), TxError> {
    if let Some(t) = tracking {
        tx.execute(&st(tx, LOCK_TRACKING).await?, &[&t]).await?;
    }
    Ok(())
}

/// A buyer's exposure row: outstanding, open advances, latest loss (no row: nothing).
type Exposure = (Money, u32, Option<DateTime<Utc>>);

/// The buyer's row of `exposure`.
async fn read_buyer(tx: &Tx<'_>, buyer: u64) -> Result<Exposure, TxError> {
    let row = tx
        .query_opt(&st(tx, READ_BUYER).await?, &[&(buyer as i64)])
        .await?;
    Ok(match row {
        Some(r) => (
            money(r.get(0))?,
            r.get::<_, i32>(1) as u32,
            r.get::<_, Option<i64>>(2).map(ts).transpose()?,
        ),
        None => (Money::ZERO, 0, None),
    })
}

/// Puts the buyer's exposure row into `book`.
fn restore(book: &mut Book, buyer: u64, (owed, open, loss): Exposure) -> Result<(), TxError> {
    Ok(book.restore_buyer(buyer, owed, open, loss)?)
}

/// One of the day's two budgets, each held in escrow by its own [`Escrow`].
#[derive(Debug, Clone, Copy)]
enum Budget {
    Advances,
    RefundOnly,
}

impl Budget {
    fn of(self, policy: &Policy) -> Money {
        match self {
            Budget::Advances => policy.daily_budget,
            Budget::RefundOnly => policy.refund_only.daily_budget,
        }
    }
}

impl Tx<'_> {
    fn escrow_of(&self, b: Budget) -> (&Arc<Escrow>, &Claims) {
        match b {
            Budget::Advances => (self.escrow, &self.claims),
            Budget::RefundOnly => (self.refund_escrow, &self.refund_claims),
        }
    }

    /// What `day`'s budget `b` looks spent, to the rules: the budget less this
    /// replica's room ([`Escrow::room`]), so that the rules refuse for the budget (and
    /// say so among the reasons) exactly when a payment would not fit; for one replica
    /// alone, what the day's payments add up to. `reserved`: the day's reserved total.
    fn spent_as_seen(&self, b: Budget, day: NaiveDate, policy: &Policy, reserved: Money) -> Money {
        let budget = b.of(policy);
        let room = self.escrow_of(b).0.room(day, budget, reserved);
        budget.checked_sub(room).unwrap_or(Money::ZERO)
    }

    /// Claims `amount` of `day`'s budget `b` from this replica's slice for the payment
    /// the transaction is about to write (reserving more first when the slice is
    /// short): `false` when less than that is left unreserved. The claim is kept if the
    /// transaction commits and given back if it certainly does not ([`escrow::Claims`]).
    async fn claim(
        &self,
        b: Budget,
        day: NaiveDate,
        amount: Money,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Result<bool, TxError> {
        let (escrow, claims) = self.escrow_of(b);
        match escrow.claim(day, amount, b.of(policy), now).await {
            Ok(claim) => {
                claims.hold(claim);
                Ok(true)
            }
            Err(ReserveError::Exhausted) => Ok(false),
            Err(ReserveError::Db(e)) => Err(TxError::Ledger(unavailable(format!(
                "reserving a slice of the day's {} budget: {e}",
                escrow.what()
            )))),
        }
    }
}

/// The day's reserved total, read without a lock (for [`Tx::spent_as_seen`]).
async fn read_reserved(tx: &Tx<'_>, day: NaiveDate) -> Result<Money, TxError> {
    let reserved = tx
        .query_opt(&st(tx, READ_RESERVED).await?, &[&day])
        .await?
        .map_or(Decimal::ZERO, |r| r.get(0));
    Ok(money(reserved)?)
}

/// Writes the buyer's exposure back from `book`.
async fn store_book(tx: &Tx<'_>, book: &Book, buyer: u64) -> Result<(), TxError> {
    let (owed, open) = book.exposure(buyer);
    let (buyer, owed, open) = (buyer as i64, owed.value(), open as i32);
    let loss = book.last_loss(buyer as u64).map(|t| t.timestamp_micros());
    tx.execute(
        &st(tx, STORE_EXPOSURE).await?,
        &[&buyer, &owed, &open, &loss],
    )
    .await?;
    Ok(())
}

/// Whether `order` already has an advance, and whether `tracking` backs one for a
/// return other than `rid`.
async fn indexed_facts(
    tx: &Tx<'_>,
    rid: u64,
    order: u64,
    tracking: Option<&str>,
) -> Result<(bool, bool), TxError> {
    // One statement for both (no tracking number: `= NULL` matches nothing).
    let r = tx
        .query_one(
            &st(tx, INDEXED_FACTS).await?,
            &[&(order as i64), &tracking, &(rid as i64)],
        )
        .await?;
    Ok((r.get(0), r.get(1)))
}

/// Like [`indexed_facts`] for the order of decided return `rid` (found in the same
/// statement, so that it needs no round trip of its own).
async fn indexed_facts_of(tx: &Tx<'_>, rid: u64, tracking: &str) -> Result<(bool, bool), TxError> {
    let r = tx
        .query_one(
            &st(tx, INDEXED_FACTS_OF).await?,
            &[&(rid as i64), &tracking],
        )
        .await?;
    Ok((r.get(0), r.get(1)))
}

/// The decided return `rid` in its state (released, advanced, settled, corrected).
pub(crate) async fn find_return(tx: &Tx<'_>, rid: u64) -> Result<Option<ReturnRec>, TxError> {
    let Some(r) = tx
        .query_opt(
            &st(
                tx,
                "SELECT d.buyer_id, d.order_id, d.amount, d.instant OR r.return_id IS NOT NULL,
                    d.star, a.amount, a.tracking_number, o.outcome, o.outcome_at, c.to_outcome,
                    d.requested_at,
                    COALESCE((d.decision::jsonb ->> 'refund_without_return')::boolean, false),
                    k.amount, k.kept_at, d.merchant_id
             FROM decisions d
             LEFT JOIN kept k ON k.return_id = d.return_id
             LEFT JOIN advances a ON a.return_id = d.return_id
             LEFT JOIN outcomes o ON o.return_id = d.return_id
             LEFT JOIN reviewer_releases r ON r.return_id = d.return_id
             LEFT JOIN outcome_corrections c ON c.return_id = d.return_id
             WHERE d.return_id = $1",
            )
            .await?,
            &[&(rid as i64)],
        )
        .await?
    else {
        return Ok(None);
    };
    let outcome_of = |i: usize| {
        r.get::<_, Option<&str>>(i)
            .map(|o| o.parse::<Outcome>().map_err(unavailable))
            .transpose()
    };
    let advance = match (
        r.get::<_, Option<Decimal>>(5),
        r.get::<_, Option<String>>(6),
    ) {
        (Some(a), Some(t)) => Some(Advance {
            amount: money(a)?,
            tracking_number: t,
        }),
        _ => None,
    };
    let outcome = outcome_of(7)?.zip(r.get::<_, Option<i64>>(8));
    Ok(Some(ReturnRec {
        buyer: BuyerId(r.get::<_, i64>(0) as u64),
        order: OrderId(r.get::<_, i64>(1) as u64),
        merchant: MerchantId(r.get::<_, i64>(14) as u64),
        amount: money(r.get(2))?,
        requested_at: ts(r.get(10))?,
        star: Star::try_from(r.get::<_, i16>(4) as u8).map_err(unavailable)?,
        refund_only_offered: r.get(11),
        state: ReturnState::from_rows(
            r.get::<_, Option<Decimal>>(12)
                .map(money)
                .transpose()?
                .zip(r.get::<_, Option<i64>>(13)),
            r.get(3),
            advance,
            outcome,
            outcome_of(9)?,
        )?,
    }))
}

/// The recorded decision of `rid`, if any, with the request it was made for.
async fn recorded(tx: &Tx<'_>, rid: u64) -> Result<Option<(ReturnRequest, Decided)>, TxError> {
    let Some(r) = tx
        .query_opt(&st(tx, RECORDED).await?, &[&(rid as i64)])
        .await?
    else {
        return Ok(None);
    };
    let req = ReturnRequest {
        return_id: ReturnId(rid),
        buyer_id: BuyerId(r.get::<_, i64>(0) as u64),
        order_id: OrderId(r.get::<_, i64>(1) as u64),
        merchant_id: MerchantId(r.get::<_, i64>(2) as u64),
        category: Category::parse(r.get(3)).map_err(unavailable)?,
        amount: money(r.get(4))?,
        reason: r
            .get::<_, &str>(5)
            .parse::<ReturnReason>()
            .map_err(unavailable)?,
        delivered_at: ts(r.get(6))?,
        requested_at: ts(r.get(7))?,
        tracking_number: r.get(8),
    };
    let decision: Decision = serde_json::from_str(r.get(10)).map_err(unavailable)?;
    Ok(Some((
        req,
        Decided {
            decision_id: r.get::<_, i64>(9) as u64,
            decision,
            policy_version: r.get(11),
            model_version: r.get(12),
            repeated: true,
            shadow_agrees: None,
        },
    )))
}

/// What a move's rows need beyond its effects.
pub(crate) struct Writing {
    pub day: NaiveDate,
    pub now: DateTime<Utc>,
    /// The case whose decision made the move (a reviewer's release, a correction).
    pub case_id: Option<u64>,
}

/// Writes a move's effects on return `rid` (`rec`): the money into `book` (a copy of
/// the buyer's row, whose invariants are checked as it applies them), then each
/// effect's row and, when money moved, the buyer's exposure row, in one round trip
/// and in that order (prepared first): the insert a unique index refuses (another
/// replica advanced that order first) must reach `run` before the "transaction is
/// aborted" of the statements behind it.
pub(crate) async fn write(
    tx: &Tx<'_>,
    rid: u64,
    rec: &ReturnRec,
    effects: &[Effect],
    w: &Writing,
    book: &mut Book,
) -> Result<(), TxError> {
    for e in effects {
        book.apply(e, w.day)?;
    }
    let moves_money = effects
        .iter()
        .any(|e| matches!(e, Effect::Advance { .. } | Effect::Settle { .. }));
    let sqls: Vec<&str> = effects.iter().flat_map(effect_sql).copied().collect();
    warm(tx, &sqls).await?;
    if moves_money {
        warm(tx, &[STORE_EXPOSURE]).await?;
    }
    let rows = async {
        for e in effects {
            write_effect(tx, rid, rec, e, w).await?;
        }
        Ok::<(), TxError>(())
    };
    let exposure = async {
        match moves_money {
            true => store_book(tx, book, rec.buyer.0).await,
            false => Ok(()),
        }
    };
    tokio::try_join!(biased; rows, exposure)?;
    Ok(())
}

const INSERT_REFUSAL: &str =
    "INSERT INTO tracking_refusals (return_id, tracking_number, reasons, at)
     VALUES ($1, $2, $3, $4)";
const INSERT_KEPT: &str = "INSERT INTO kept (return_id, buyer_id, order_id, amount, kept_at,
        local_date, slice_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The buyer's refund-only total over (since, until], and the day's reserved total of
/// the refund-only budget (read without a lock: see [`Tx::spent_as_seen`]).
const READ_KEPT: &str = "SELECT
        (SELECT COALESCE(SUM(amount), 0) FROM kept
          WHERE buyer_id = $1 AND kept_at > $2 AND kept_at <= $3),
        COALESCE((SELECT reserved FROM refund_only_days WHERE day = $4), 0)";
/// Whether a tracking number was given for the return (advanced or refused, or in
/// its request): its parcel is on its way.
const TRACKING_GIVEN: &str = "SELECT EXISTS (SELECT 1 FROM advances WHERE return_id = $1)
        OR EXISTS (SELECT 1 FROM tracking_refusals WHERE return_id = $1)
        OR EXISTS (SELECT 1 FROM decisions WHERE return_id = $1 AND tracking_number IS NOT NULL)";
const INSERT_OUTCOME: &str = "INSERT INTO outcomes (return_id, outcome, outcome_at, recorded_at)
     VALUES ($1, $2, $3, $4)";
const INSERT_RELEASE: &str = "INSERT INTO reviewer_releases (return_id, case_id, reviewer, at)
     VALUES ($1, $2, $3, $4)";
const INSERT_CORRECTION: &str = "INSERT INTO outcome_corrections (return_id, case_id,
        from_outcome, to_outcome, at)
     VALUES ($1, $2, $3, $4, $5)";
/// The buyer's latest loss, from their outcomes as corrected.
const RESTORE_LAST_LOSS: &str = "UPDATE exposure SET last_loss = (
        SELECT MAX(o.outcome_at)
        FROM outcomes o JOIN decisions d ON d.return_id = o.return_id
        LEFT JOIN outcome_corrections c ON c.return_id = o.return_id
        WHERE d.buyer_id = $1
          AND COALESCE(c.to_outcome, o.outcome) IN ('received_mismatch', 'not_shipped'))
     WHERE buyer_id = $1";

/// The statements an effect's row takes.
fn effect_sql(e: &Effect) -> &'static [&'static str] {
    match e {
        Effect::Advance { .. } => &[INSERT_ADVANCE],
        Effect::TrackingRefused { .. } => &[INSERT_REFUSAL],
        Effect::Settle { .. } => &[INSERT_OUTCOME],
        Effect::ReleasedByReviewer { .. } => &[INSERT_RELEASE],
        Effect::OutcomeCorrected { .. } => &[INSERT_CORRECTION, RESTORE_LAST_LOSS],
        Effect::Kept { .. } => &[INSERT_KEPT],
    }
}

/// Writes one effect's row(s).
async fn write_effect(
    tx: &Tx<'_>,
    rid: u64,
    rec: &ReturnRec,
    e: &Effect,
    w: &Writing,
) -> Result<(), TxError> {
    let (rid, now) = (rid as i64, w.now.timestamp_micros());
    let case_id = w.case_id.map(|c| c as i64);
    match e {
        Effect::Advance {
            buyer,
            amount,
            tracking,
            shipped_at,
        } => {
            tx.execute(
                &st(tx, INSERT_ADVANCE).await?,
                &[
                    &rid,
                    &(buyer.0 as i64),
                    &(rec.order.0 as i64),
                    &amount.value(),
                    tracking,
                    &shipped_at.timestamp_micros(),
                    &now,
                    &w.day,
                    &tx.claims.slice_id(),
                ],
            )
            .await?;
        }
        Effect::TrackingRefused { tracking, reasons } => {
            let codes =
                serde_json::to_string(reasons).map_err(|e| TxError::Ledger(unavailable(e)))?;
            tx.execute(
                &st(tx, INSERT_REFUSAL).await?,
                &[&rid, tracking, &codes, &now],
            )
            .await?;
        }
        Effect::Settle { outcome, at, .. } => {
            tx.execute(
                &st(tx, INSERT_OUTCOME).await?,
                &[&rid, &outcome.as_str(), &at.timestamp_micros(), &now],
            )
            .await?;
        }
        Effect::Kept { buyer, amount, at } => {
            tx.execute(
                &st(tx, INSERT_KEPT).await?,
                &[
                    &rid,
                    &(buyer.0 as i64),
                    &(rec.order.0 as i64),
                    &amount.value(),
                    &at.timestamp_micros(),
                    &w.day,
                    &tx.refund_claims.slice_id(),
                ],
            )
            .await?;
        }
        Effect::ReleasedByReviewer { reviewer } => {
            tx.execute(
                &st(tx, INSERT_RELEASE).await?,
                &[&rid, &case_id, reviewer, &now],
            )
            .await?;
        }
        Effect::OutcomeCorrected {
            buyer,
            from,
            to,
            loss_changed,
        } => {
            tx.execute(
                &st(tx, INSERT_CORRECTION).await?,
                &[&rid, &case_id, &from.as_str(), &to.as_str(), &now],
            )
            .await?;
            if *loss_changed {
                tx.execute(&st(tx, RESTORE_LAST_LOSS).await?, &[&(buyer.0 as i64)])
                    .await?;
            }
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn decide_tx(
    tx: &Tx<'_>,
    req: &ReturnRequest,
    star: Option<Star>,
    rated_as_of: Option<DateTime<Utc>>,
    shadow: Option<Option<Star>>,
    policy: &Policy,
    model_version: &str,
    now: DateTime<Utc>,
) -> Result<Decided, TxError> {
    let rid = req.return_id.0;
    let buyer = req.buyer_id.0;
    let day = policy::local_date(now, policy);
    // The buyer's lock and every read in one round trip (with the BEGIN, see
    // `PgLedger::run`): PostgreSQL runs them in order, so the reads see what the lock
    // protects. The statements are prepared first, so that each goes out when polled.
    // A tracking number in the request may advance at once: its parcel's lock goes
    // before the read of who it backs.
    let tracking = req.tracking_number.as_deref();
    warm(
        tx,
        &[
            LOCK_BUYER,
            LOCK_TRACKING,
            RECORDED,
            READ_BUYER,
            READ_RESERVED,
            INDEXED_FACTS,
        ],
    )
    .await?;
    let ((), (), prior, exposure, reserved, (refunded, reused)) = tokio::try_join!(
        biased;
        lock_buyer(tx, buyer),
        lock_tracking(tx, tracking),
        recorded(tx, rid),
        read_buyer(tx, buyer),
        // Only a request with a tracking number can advance, so only it asks the budget
        // (a statement less on every eligibility call).
        async {
            match tracking {
                Some(_) => read_reserved(tx, day).await,
                None => Ok(Money::ZERO),
            }
        },
        indexed_facts(tx, rid, req.order_id.0, req.tracking_number.as_deref()),
    )?;
    let mut book = Book::default();
    restore(&mut book, buyer, exposure)?;
    book.restore_day(
        day,
        tx.spent_as_seen(Budget::Advances, day, policy, reserved),
    );
    // The refund-only totals the offer's caps need are read only when the decision
    // made without them offers a refund without return (see `decide_step`; a keep
    // checks them again and claims the budget).
    let mut kept = (Money::ZERO, Money::ZERO);
    let view = |book: &Book, kept: (Money, Money)| LedgerView {
        refund_only_30_days: kept.0,
        refund_only_today: kept.1,
        ..book.view(buyer, day, rated_as_of, refunded, reused)
    };
    let first = prior.as_ref().map(|(first, _)| first);
    // A new decision again, when the rules must see more than the first view showed.
    let redecide = |book: &Book, kept| {
        decided::<TxError>(
            req,
            policy::decide(req, star, &view(book, kept), policy, now),
            now,
        )
    };
    // (The refund-only totals need a round trip: read below, when an offer is made.)
    let step = decide_step::<TxError>(first, req, star, policy, now, || Ok(view(&book, kept)), Ok)?;
    let mut new = match step {
        DecideStep::New(new) => new,
        DecideStep::Recorded => {
            return prior
                .map(|(_, d)| d)
                .ok_or_else(|| TxError::Ledger(unavailable("no recorded decision to repeat")));
        }
    };
    if new.decision.refund_without_return {
        let (buyer_30_days, reserved) = read_kept(tx, buyer, day, now).await?;
        kept = (
            buyer_30_days,
            tx.spent_as_seen(Budget::RefundOnly, day, policy, reserved),
        );
        new = redecide(&book, kept)?;
    }
    if new.decision.advanced_refund
        && !tx
            .claim(Budget::Advances, day, req.amount, policy, now)
            .await?
    {
        // The day's budget has no room left for it: decide again as the rules see that.
        book.restore_day(day, policy.daily_budget);
        new = redecide(&book, kept)?;
    }
    let NewDecision {
        decision,
        rec,
        effects,
    } = new;
    let shadow = shadow.map(|s| shadow_record(req, s, &view(&book, kept), policy, now, &decision));
    let shadow_json = shadow.as_ref().map(|(json, _)| json.as_str());
    let decision_json =
        serde_json::to_string(&decision).map_err(|e| TxError::Ledger(unavailable(e)))?;
    let insert = st(tx, INSERT_DECISION).await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 17] = [
        &(rid as i64),
        &(buyer as i64),
        &(req.order_id.0 as i64),
        &(req.merchant_id.0 as i64),
        &req.category.as_str(),
        &req.amount.value(),
        &req.reason.as_str(),
        &req.delivered_at.timestamp_micros(),
        &req.requested_at.timestamp_micros(),
        &req.tracking_number,
        &now.timestamp_micros(),
        &i16::from(decision.star.get()),
        &decision.instant_address_release,
        &decision_json,
        &policy.version,
        &model_version,
        &shadow_json,
    ];
    let decision_id: i64 = if effects.is_empty() {
        // Nothing else to write: the insert and the COMMIT in one round trip.
        commit_with(tx, tx.query_one(&insert, &params))
            .await?
            .get(0)
    } else {
        let id: i64 = tx.query_one(&insert, &params).await?.get(0);
        let w = Writing {
            day,
            now,
            case_id: None,
        };
        write(tx, rid, &rec, &effects, &w, &mut book).await?;
        id
    };
    Ok(Decided {
        decision_id: decision_id as u64,
        decision,
        policy_version: policy.version.clone(),
        model_version: model_version.to_string(),
        repeated: false,
        shadow_agrees: shadow.map(|(_, agrees)| agrees),
    })
}

#[allow(clippy::too_many_arguments)]
async fn track_tx(
    tx: &Tx<'_>,
    rid: u64,
    tracking: &str,
    shipped_at: DateTime<Utc>,
    stars: Option<&dyn StarLookup>,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Tracked, TxError> {
    // The return's buyer locked in the same statement that finds them (a decision's
    // buyer never changes), then everything read under that lock, in one round trip.
    let buyer = lock_buyer_of(tx, rid).await?;
    let day = policy::local_date(now, policy);
    let star_now = stars.and_then(|s| s.star(BuyerId(buyer)));
    let rated_as_of = stars.and_then(|s| s.rated_as_of());
    // The parcel's lock before the read of who it backs (both prepared first, so that
    // they go out in this order).
    warm(tx, &[LOCK_TRACKING, READ_RESERVED, INDEXED_FACTS_OF]).await?;
    let ((), rec, exposure, reserved, facts) = tokio::try_join!(
        biased;
        lock_tracking(tx, Some(tracking)),
        find_return(tx, rid),
        read_buyer(tx, buyer),
        read_reserved(tx, day),
        indexed_facts_of(tx, rid, tracking),
    )?;
    // Decisions are never deleted: the row that gave the buyer is there.
    let rec = rec.ok_or(Refusal::UnknownReturn(rid))?;
    let mut book = Book::default();
    restore(&mut book, buyer, exposure)?;
    book.restore_day(
        day,
        tx.spent_as_seen(Budget::Advances, day, policy, reserved),
    );
    // The index look-ups count only when the step will ask for the view (read with
    // the rest, since the step's closure cannot await them).
    let facts = (rec.state == ReturnState::Released).then_some(facts);
    let step_on = |book: &Book| {
        track_step::<LedgerError>(
            ReturnId(rid),
            &rec,
            tracking,
            shipped_at,
            star_now,
            policy,
            |r| {
                let (refunded, reused) = facts.unwrap_or_default();
                Ok::<LedgerView, LedgerError>(book.view(
                    r.buyer.0,
                    day,
                    rated_as_of,
                    refunded,
                    reused,
                ))
            },
        )
    };
    let mut moved = step_on(&book)?;
    if let TrackStep::Advance { amount, .. } = moved.answer
        && !tx.claim(Budget::Advances, day, amount, policy, now).await?
    {
        // The day's budget has no room left for it: step again as the rules see that.
        book.restore_day(day, policy.daily_budget);
        moved = step_on(&book)?;
    }
    let w = Writing {
        day,
        now,
        case_id: None,
    };
    write(tx, rid, &rec, &moved.effects, &w, &mut book).await?;
    Ok(Tracked::from_step(rid, &rec, moved.answer))
}

/// `buyer`'s refund-only total over the 30 days before `now`, and the refund-only
/// budget's reserved total for `day` (read without a lock).
async fn read_kept(
    tx: &Tx<'_>,
    buyer: u64,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> Result<(Money, Money), TxError> {
    let since = (now - chrono::Duration::days(30)).timestamp_micros();
    let r = tx
        .query_one(
            &st(tx, READ_KEPT).await?,
            &[&(buyer as i64), &since, &now.timestamp_micros(), &day],
        )
        .await?;
    Ok((money(r.get(0))?, money(r.get(1))?))
}

/// Takes the refund-without-return offer of return `rid`: under the buyer's lock,
/// checks the caps again and charges them with the return's `kept` row (the day's
/// refund-only budget claimed from this replica's slice), in one transaction.
async fn keep_tx(
    tx: &Tx<'_>,
    rid: u64,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Kept, TxError> {
    let buyer = lock_buyer_of(tx, rid).await?;
    let day = policy::local_date(now, policy);
    let rec = find_return(tx, rid)
        .await?
        .ok_or(Refusal::UnknownReturn(rid))?;
    let given: bool = tx
        .query_one(&st(tx, TRACKING_GIVEN).await?, &[&(rid as i64)])
        .await?
        .get(0);
    // The step reads the view only when the caps decide: the buyer's 30 days under
    // their lock, the day's budget as this replica's room; a keep then claims its
    // amount from the replica's slice (no shared row), and one the day's budget has
    // no room for is stepped again as the rules see that.
    let needs_view = matches!(rec.state, ReturnState::Held | ReturnState::Released)
        && rec.refund_only_offered
        && !given;
    let (buyer_30_days, reserved) = if needs_view {
        read_kept(tx, buyer, day, now).await?
    } else {
        (Money::ZERO, Money::ZERO)
    };
    let step_on = |today: Money| {
        keep_step::<TxError>(ReturnId(rid), &rec, given, policy, now, |_| {
            Ok(LedgerView {
                refund_only_30_days: buyer_30_days,
                refund_only_today: today,
                ..LedgerView::default()
            })
        })
    };
    let mut moved = step_on(tx.spent_as_seen(Budget::RefundOnly, day, policy, reserved))?;
    if let KeepStep::Keep { amount } = moved.answer
        && !tx
            .claim(Budget::RefundOnly, day, amount, policy, now)
            .await?
    {
        moved = step_on(policy.refund_only.daily_budget)?;
    }
    let mut book = Book::default();
    let w = Writing {
        day,
        now,
        case_id: None,
    };
    write(tx, rid, &rec, &moved.effects, &w, &mut book).await?;
    Ok(Kept::from_step(rid, moved.answer))
}

async fn settle_tx(
    tx: &Tx<'_>,
    rid: u64,
    outcome: Outcome,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Settled, TxError> {
    if outcome == Outcome::Pending {
        return Err(Refusal::PendingOutcome.into());
    }
    let buyer = lock_buyer_of(tx, rid).await?;
    let (rec, exposure) = tokio::try_join!(biased; find_return(tx, rid), read_buyer(tx, buyer))?;
    let moved = settle_step(ReturnId(rid), rec.as_ref(), outcome, at)?;
    let rec = rec.ok_or(Refusal::UnknownReturn(rid))?;
    let mut book = Book::default();
    restore(&mut book, buyer, exposure)?;
    let w = Writing {
        // (A settlement counts on no day.)
        day: now.date_naive(),
        now,
        case_id: None,
    };
    write(tx, rid, &rec, &moved.effects, &w, &mut book).await?;
    Ok(Settled::from_step(
        rid,
        outcome,
        moved.answer,
        book.exposure(buyer).0,
    ))
}

impl LedgerStore for PgLedger {
    fn decide(
        &self,
        req: ReturnRequest,
        star: Option<Star>,
        rated_as_of: Option<DateTime<Utc>>,
        shadow: Option<Option<Star>>,
        policy: Arc<Policy>,
        model_version: String,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Decided> {
        let this = self.clone();
        // The ledger keeps times in microseconds: answer with what a retry will read.
        let now = now.trunc_subsecs(6);
        Box::pin(async move {
            this.run(move |tx| {
                let (req, policy, model_version) =
                    (req.clone(), policy.clone(), model_version.clone());
                Box::pin(async move {
                    decide_tx(
                        tx,
                        &req,
                        star,
                        rated_as_of,
                        shadow,
                        &policy,
                        &model_version,
                        now,
                    )
                    .await
                })
            })
            .await
        })
    }

    fn track(
        &self,
        return_id: ReturnId,
        tracking_number: String,
        shipped_at: DateTime<Utc>,
        stars: Option<Arc<dyn StarLookup>>,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Tracked> {
        let this = self.clone();
        Box::pin(async move {
            this.run(move |tx| {
                let (tracking, stars, policy) =
                    (tracking_number.clone(), stars.clone(), policy.clone());
                Box::pin(async move {
                    track_tx(
                        tx,
                        return_id.0,
                        &tracking,
                        shipped_at,
                        stars.as_deref(),
                        &policy,
                        now,
                    )
                    .await
                })
            })
            .await
        })
    }

    fn settle(
        &self,
        return_id: ReturnId,
        outcome: Outcome,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Settled> {
        let this = self.clone();
        Box::pin(async move {
            this.run(|tx| Box::pin(settle_tx(tx, return_id.0, outcome, at, now)))
                .await
        })
    }

    fn keep(
        &self,
        return_id: ReturnId,
        policy: Arc<Policy>,
        now: DateTime<Utc>,
    ) -> LedgerFuture<Kept> {
        let this = self.clone();
        // The ledger keeps times in microseconds: answer with what a retry will read.
        let now = now.trunc_subsecs(6);
        Box::pin(async move {
            this.run(move |tx| {
                let policy = policy.clone();
                Box::pin(async move { keep_tx(tx, return_id.0, &policy, now).await })
            })
            .await
        })
    }

    fn exposure(&self, buyer: BuyerId) -> LedgerFuture<BuyerExposure> {
        let this = self.clone();
        Box::pin(async move {
            let client = this.pool.get().await.map_err(unavailable)?;
            let row = client
                .query_opt(
                    "SELECT outstanding, open_advances FROM exposure WHERE buyer_id = $1",
                    &[&(buyer.0 as i64)],
                )
                .await
                .map_err(unavailable)?;
            Ok(match row {
                Some(r) => BuyerExposure {
                    outstanding: money(r.get(0))?,
                    open_advances: r.get::<_, i32>(1) as u32,
                },
                None => BuyerExposure {
                    outstanding: Money::ZERO,
                    open_advances: 0,
                },
            })
        })
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>> {
        let this = self.clone();
        Box::pin(async move {
            if let Some(why) = this.broken.get() {
                return Err(why.clone());
            }
            let client = this
                .pool
                .get()
                .await
                .map_err(|e| format!("no connection to PostgreSQL: {}", with_causes(&e)))?;
            client
                .simple_query("SELECT 1")
                .await
                .map(drop)
                .map_err(|e| format!("PostgreSQL does not answer: {e}"))
        })
    }

    fn describe(&self) -> String {
        self.described.to_string()
    }

    fn replay_decision(&self, req: ReturnRequest) -> LedgerFuture<Option<Decided>> {
        let this = self.clone();
        Box::pin(async move {
            this.run(move |tx| {
                let req = req.clone();
                Box::pin(async move {
                    match recorded(tx, req.return_id.0).await? {
                        Some((first, d)) => {
                            same_request(&first, &req)?;
                            Ok(Some(d))
                        }
                        None => Ok(None),
                    }
                })
            })
            .await
        })
    }

    fn replay_tracking(
        &self,
        return_id: ReturnId,
        tracking_number: String,
    ) -> LedgerFuture<Option<Tracked>> {
        let this = self.clone();
        Box::pin(async move {
            this.run(move |tx| {
                let tracking = tracking_number.clone();
                Box::pin(async move {
                    let rec = find_return(tx, return_id.0)
                        .await?
                        .ok_or(Refusal::UnknownReturn(return_id.0))?;
                    let replayed =
                        fastrefund_core::ledger::replay_track(return_id, &rec, &tracking)?;
                    Ok(replayed.map(|amount| Tracked::repeat(return_id.0, amount)))
                })
            })
            .await
        })
    }

    fn cases(
        &self,
        call: CaseCall,
        deadlines: CaseDeadlines,
        now: DateTime<Utc>,
    ) -> LedgerFuture<CaseAnswer> {
        let this = self.clone();
        let now = now.trunc_subsecs(6);
        Box::pin(async move {
            this.run(move |tx| {
                let call = call.clone();
                Box::pin(async move { cases::apply(tx, &call, &deadlines, now).await })
            })
            .await
        })
    }

    fn close(&self) -> LedgerFuture<()> {
        let this = self.clone();
        Box::pin(async move { PgLedger::close(&this).await.map(drop) })
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn urls_are_logged_without_their_password() {
        assert_eq!(
            redact("postgres://app:s3cret@db.internal:5432/ledger"),
            "postgres://app@db.internal:5432/ledger"
        );
        assert_eq!(
            redact("postgres://app@127.0.0.1:5432/ledger"),
            "postgres://app@127.0.0.1:5432/ledger"
        );
        assert_eq!(
            redact(
                "postgres://app@db:5432/ledger?sslmode=require&password=s3cret&application_name=x"
            ),
            "postgres://app@db:5432/ledger?sslmode=require&application_name=x"
        );
        assert_eq!(
            redact("postgres://app:p@ss@db/ledger?password=s3cret"),
            "postgres://app@db/ledger"
        );
    }
}
