//! The ledger's SQLite schema, versioned by `PRAGMA user_version`. Each migration
//! runs once, in order, inside a transaction; a database newer than this build is
//! refused.

use rusqlite::Connection;

/// Migrations; migration `k` (0-based) takes the schema from version `k` to `k + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: decisions, advances, outcomes, refused tracking attempts.
    "
    CREATE TABLE decisions (
        return_id      INTEGER PRIMARY KEY,
        decision_id    INTEGER NOT NULL UNIQUE,
        buyer_id       INTEGER NOT NULL,
        order_id       INTEGER NOT NULL,
        merchant_id    INTEGER NOT NULL,
        category       TEXT    NOT NULL,
        amount         TEXT    NOT NULL,
        reason         TEXT    NOT NULL,
        delivered_at   TEXT    NOT NULL,
        requested_at   TEXT    NOT NULL,
        star           INTEGER NOT NULL,
        instant        INTEGER NOT NULL,
        pickup         INTEGER NOT NULL,
        advanced       INTEGER NOT NULL,
        policy_version TEXT    NOT NULL,
        model_version  TEXT    NOT NULL,
        decided_at     TEXT    NOT NULL,
        decision       TEXT    NOT NULL,
        shadow         TEXT
    );
    CREATE INDEX decisions_buyer ON decisions(buyer_id);
    CREATE TABLE advances (
        return_id       INTEGER PRIMARY KEY REFERENCES decisions(return_id),
        buyer_id        INTEGER NOT NULL,
        order_id        INTEGER NOT NULL,
        amount          TEXT    NOT NULL,
        tracking_number TEXT    NOT NULL,
        shipped_at      TEXT    NOT NULL,
        advanced_at     TEXT    NOT NULL,
        local_date      TEXT    NOT NULL
    );
    CREATE INDEX advances_buyer ON advances(buyer_id);
    CREATE TABLE outcomes (
        return_id   INTEGER PRIMARY KEY REFERENCES advances(return_id),
        outcome     TEXT NOT NULL,
        outcome_at  TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    );
    CREATE TABLE tracking_refusals (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        return_id       INTEGER NOT NULL REFERENCES decisions(return_id),
        tracking_number TEXT    NOT NULL,
        reasons         TEXT    NOT NULL,
        at              TEXT    NOT NULL
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
