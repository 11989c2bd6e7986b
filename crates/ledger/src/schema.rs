//! The ledger's SQLite schema, versioned by `PRAGMA user_version`. Each migration
//! runs once, in order, inside a transaction; a database newer than this build is
//! refused.
//!
//! Every table is append-only in the order things happened (`seq`, the rowid), and
//! rows are small (times as integer microseconds since the
//! epoch in UTC): a group commit then writes one or two pages at the end of the file
//! whatever the return ids look like, and the fsync of those pages is what a caller
//! waits for. The service keeps its working view (and the `seq` of each return's
//! decision) in memory. The single writer checks that a `return_id` is new before
//! every insert, and since version 2 the schema enforces it too: a `UNIQUE` index on
//! `return_id` in `decisions`, `advances` and `outcomes`, and on `decision_id`; those
//! indexes also answer the look-ups a retried call needs.

use rusqlite::Connection;

/// Migrations; migration `k` (0-based) takes the schema from version `k` to `k + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: decisions, advances, outcomes, refused tracking attempts.
    "
    CREATE TABLE versions (
        id   INTEGER PRIMARY KEY,
        text TEXT NOT NULL UNIQUE
    );
    CREATE TABLE decisions (
        seq            INTEGER PRIMARY KEY,
        return_id      INTEGER NOT NULL,
        decision_id    INTEGER NOT NULL,
        buyer_id       INTEGER NOT NULL,
        order_id       INTEGER NOT NULL,
        merchant_id    INTEGER NOT NULL,
        category       TEXT    NOT NULL,
        amount         TEXT    NOT NULL,
        reason         TEXT    NOT NULL,
        delivered_at   INTEGER NOT NULL,
        requested_at   INTEGER NOT NULL,
        decided_at     INTEGER NOT NULL,
        star           INTEGER NOT NULL,
        rated          INTEGER NOT NULL,
        instant        INTEGER NOT NULL,
        pickup         INTEGER NOT NULL,
        advanced       INTEGER NOT NULL,
        pickup_from    INTEGER,
        merchant_answer_by INTEGER,
        policy_version INTEGER NOT NULL,
        model_version  INTEGER NOT NULL,
        reasons        TEXT    NOT NULL,
        shadow         TEXT
    );
    CREATE TABLE advances (
        seq             INTEGER PRIMARY KEY,
        return_id       INTEGER NOT NULL,
        buyer_id        INTEGER NOT NULL,
        order_id        INTEGER NOT NULL,
        amount          TEXT    NOT NULL,
        tracking_number TEXT    NOT NULL,
        shipped_at      INTEGER NOT NULL,
        advanced_at     INTEGER NOT NULL,
        local_date      TEXT    NOT NULL
    );
    CREATE TABLE outcomes (
        seq         INTEGER PRIMARY KEY,
        return_id   INTEGER NOT NULL,
        outcome     TEXT NOT NULL,
        outcome_at  INTEGER NOT NULL,
        recorded_at INTEGER NOT NULL
    );
    CREATE TABLE tracking_refusals (
        seq             INTEGER PRIMARY KEY,
        return_id       INTEGER NOT NULL,
        tracking_number TEXT    NOT NULL,
        reasons         TEXT    NOT NULL,
        at              INTEGER NOT NULL
    );
    ",
    // 2: the schema enforces what the writer promises (a return decided, advanced and
    // settled at most once); a decision keeps the tracking number its request carried,
    // so that a retry with another one is told apart (idempotency); advances are found
    // by tracking number (one parcel backs one advance) and by order (refunded once); `probe` takes the small write
    // that tells whether the ledger can still record (readiness).
    "
    ALTER TABLE decisions ADD COLUMN tracking_number TEXT;
    CREATE UNIQUE INDEX decisions_return_id ON decisions (return_id);
    CREATE UNIQUE INDEX decisions_decision_id ON decisions (decision_id);
    CREATE UNIQUE INDEX advances_return_id ON advances (return_id);
    CREATE UNIQUE INDEX outcomes_return_id ON outcomes (return_id);
    CREATE INDEX advances_tracking_number ON advances (tracking_number);
    CREATE INDEX advances_order_id ON advances (order_id);
    CREATE TABLE probe (
        id  INTEGER PRIMARY KEY,
        at  INTEGER NOT NULL,
        pad BLOB
    );
    ",
    // 3: cases (spec §10). A case's current state is `body` (JSON of the core's
    // `Case`); its trail is `case_events`, never edited; one open case per subject is
    // the unique index's rule. `outcome_corrections` holds what a decided case changed
    // (the outcome as recorded stays in `outcomes`, so a retry of the original call is
    // still answered the same); `case_outbox` holds each event for the webhooks until
    // delivered, written in the same transaction as the move.
    "
    CREATE TABLE cases (
        case_id   INTEGER PRIMARY KEY,
        kind      TEXT    NOT NULL,
        buyer_id  INTEGER NOT NULL,
        return_id INTEGER,
        subject   TEXT    NOT NULL,
        opened_at INTEGER NOT NULL,
        decide_by INTEGER NOT NULL,
        state     TEXT    NOT NULL,
        body      TEXT    NOT NULL
    );
    CREATE UNIQUE INDEX cases_one_open_per_subject ON cases (subject) WHERE state <> 'decided';
    CREATE INDEX cases_buyer ON cases (buyer_id);
    CREATE TABLE case_events (
        case_id INTEGER NOT NULL REFERENCES cases (case_id),
        seq     INTEGER NOT NULL,
        at      INTEGER NOT NULL,
        actor   TEXT    NOT NULL,
        what    TEXT    NOT NULL,
        body    TEXT    NOT NULL,
        PRIMARY KEY (case_id, seq)
    );
    CREATE TABLE outcome_corrections (
        return_id    INTEGER PRIMARY KEY,
        case_id      INTEGER NOT NULL REFERENCES cases (case_id),
        from_outcome TEXT    NOT NULL,
        to_outcome   TEXT    NOT NULL,
        at           INTEGER NOT NULL
    );
    CREATE TABLE case_outbox (
        event_id        TEXT    PRIMARY KEY,
        case_id         INTEGER NOT NULL,
        seq             INTEGER NOT NULL,
        body            TEXT    NOT NULL,
        created_at      INTEGER NOT NULL,
        attempts        INTEGER NOT NULL,
        next_attempt_at INTEGER NOT NULL,
        delivered_at    INTEGER
    );
    CREATE INDEX case_outbox_due ON case_outbox (next_attempt_at) WHERE delivered_at IS NULL;
    ",
    // 4: a `decision` case won by the buyer: a person released the return the rules
    // refused (who, and by which case). The decision as the rules made it stays as it
    // was recorded; a return counts as released when either says so.
    "
    CREATE TABLE reviewer_releases (
        return_id INTEGER PRIMARY KEY,
        case_id   INTEGER NOT NULL REFERENCES cases (case_id),
        reviewer  TEXT    NOT NULL,
        at        INTEGER NOT NULL
    );
    ",
    // 5: refund without return (仅退款, issue 27). A decision records whether it made
    // the offer; `kept` holds each offer taken (one per return: the unique key), found
    // by buyer and time (the rolling 30-day cap) and by order (refunded once);
    // `kept_days` the day's running total (the daily refund-only budget), written in
    // the same transaction.
    "
    ALTER TABLE decisions ADD COLUMN refund_without_return INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE kept (
        return_id  INTEGER PRIMARY KEY,
        buyer_id   INTEGER NOT NULL,
        order_id   INTEGER NOT NULL,
        amount     TEXT    NOT NULL,
        kept_at    INTEGER NOT NULL,
        local_date TEXT    NOT NULL
    );
    CREATE INDEX kept_buyer_at ON kept (buyer_id, kept_at);
    CREATE INDEX kept_order_id ON kept (order_id);
    CREATE TABLE kept_days (
        local_date TEXT PRIMARY KEY,
        total      TEXT NOT NULL
    );
    ",
];

/// Brings the database to the newest schema.
pub fn migrate(conn: &mut Connection) -> Result<u32, String> {
    let current: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let target = MIGRATIONS.len() as u32;
    if current > target {
        return Err(format!(
            "the ledger's schema version is {current}, newer than this build's {target}; refusing to touch it"
        ));
    }
    for (k, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {}: {e}", k + 1))?;
        tx.pragma_update(None, "user_version", k as u32 + 1)
            .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
    Ok(target)
}
