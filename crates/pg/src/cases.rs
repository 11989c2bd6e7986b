//! Cases in PostgreSQL: the same tables and the same core machine as the SQLite store
//! ([`fastrefund_store::cases`]), shared by every replica.
//!
//! A move locks its case's row (`FOR UPDATE`) before reading it, so two reviewers
//! claiming one case on two replicas are served one after the other: one gets it, the
//! other is refused `case_claimed`. One open case per subject is the unique index's
//! rule: two openings at once, one commits, the other's retry finds it open. A
//! decision's effect on the money (an outcome corrected) takes the buyer's lock, as
//! every money command does, after the case's row: no command takes them the other
//! way round.

use crate::{
    Tx, TxError, Writing, find_return, lock_buyer_of, read_buyer, restore, unavailable, write,
};
use chrono::{DateTime, Utc};
use fastrefund_core::cases::{
    self, Case, CaseDeadlines, CaseEvent, CaseRefusal, Command, Effect, Opening, SubjectFacts,
};
use fastrefund_core::ledger::{self, Book, Refusal};
use fastrefund_store::{CaseAnswer, CaseCall, CaseView, LedgerError, OutboxEvent};
use fastrefund_store::{event_id, webhook_payload};

/// The schema of cases (migration 4), as in SQLite's migration 3.
pub(crate) const MIGRATION: &str = "CREATE TABLE cases (
        case_id BIGSERIAL PRIMARY KEY,
        kind TEXT NOT NULL,
        buyer_id BIGINT NOT NULL,
        return_id BIGINT,
        subject TEXT NOT NULL,
        opened_at BIGINT NOT NULL,
        decide_by BIGINT NOT NULL,
        state TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE UNIQUE INDEX cases_one_open_per_subject ON cases (subject) WHERE state <> 'decided';
    CREATE INDEX cases_buyer ON cases (buyer_id);
    CREATE TABLE case_events (
        case_id BIGINT NOT NULL REFERENCES cases (case_id),
        seq BIGINT NOT NULL,
        at BIGINT NOT NULL,
        actor TEXT NOT NULL,
        what TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (case_id, seq)
    );
    CREATE TABLE outcome_corrections (
        return_id BIGINT PRIMARY KEY REFERENCES outcomes (return_id),
        case_id BIGINT NOT NULL REFERENCES cases (case_id),
        from_outcome TEXT NOT NULL,
        to_outcome TEXT NOT NULL,
        at BIGINT NOT NULL
    );
    CREATE TABLE case_outbox (
        event_id TEXT PRIMARY KEY,
        case_id BIGINT NOT NULL,
        seq BIGINT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        attempts INT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        delivered_at BIGINT
    );
    CREATE INDEX case_outbox_due ON case_outbox (next_attempt_at) WHERE delivered_at IS NULL;";

fn json<T: serde::Serialize>(v: &T) -> Result<String, TxError> {
    serde_json::to_string(v).map_err(|e| TxError::Ledger(unavailable(e)))
}

fn case_from(body: &str) -> Result<Case, TxError> {
    serde_json::from_str(body)
        .map_err(|e| TxError::Ledger(unavailable(format!("corrupt case in the ledger: {e}"))))
}

fn refused(r: CaseRefusal) -> TxError {
    TxError::Ledger(LedgerError::Case(r))
}

/// Runs `call` in a command's transaction.
pub(crate) async fn apply(
    tx: &Tx<'_>,
    call: &CaseCall,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<CaseAnswer, TxError> {
    match call {
        CaseCall::Open(o) => open(tx, o, deadlines, now).await.map(CaseAnswer::One),
        CaseCall::Step { case_id, command } => step(tx, *case_id, command, deadlines, now)
            .await
            .map(CaseAnswer::One),
        CaseCall::Get { case_id } => {
            let mut case = load(tx, *case_id, false).await?;
            let mut events = trail(tx, *case_id).await?;
            events.extend(cases::tick(&mut case, now));
            Ok(CaseAnswer::One(CaseView {
                case,
                events,
                repeated: false,
            }))
        }
        CaseCall::Record(rid) => crate::find_return(tx, rid.0).await.map(CaseAnswer::Record),
        CaseCall::OfBuyer(buyer) => list(
            tx,
            "SELECT body FROM cases WHERE buyer_id = $1 ORDER BY case_id DESC",
            Some(buyer.0 as i64),
            now,
        )
        .await
        .map(CaseAnswer::Many),
        CaseCall::Queue { state } => {
            let sql = if state.as_deref() == Some("decided") {
                "SELECT body FROM cases WHERE state = 'decided'"
            } else {
                "SELECT body FROM cases WHERE state <> 'decided'"
            };
            let mut all = list(tx, sql, None, now).await?;
            all.retain(|c| state.as_deref().is_none_or(|s| c.state.listed_under(s)));
            all.sort_by(cases::queue_order);
            Ok(CaseAnswer::Many(all))
        }
        CaseCall::Decided => list(
            tx,
            "SELECT body FROM cases WHERE state = 'decided' ORDER BY case_id",
            None,
            now,
        )
        .await
        .map(CaseAnswer::Many),
        CaseCall::DecidedRating => list(
            tx,
            "SELECT body FROM cases WHERE state = 'decided' AND kind = 'rating' ORDER BY case_id",
            None,
            now,
        )
        .await
        .map(CaseAnswer::Many),
        CaseCall::OutboxDue { limit, lease } => {
            // Claimed with a lease; a replica claiming at the same moment skips the
            // rows this one locked.
            let rows = tx
                .query(
                    "UPDATE case_outbox SET next_attempt_at = $3
                     WHERE event_id IN (
                        SELECT event_id FROM case_outbox
                        WHERE delivered_at IS NULL AND next_attempt_at <= $1
                        ORDER BY next_attempt_at, case_id, seq LIMIT $2
                        FOR UPDATE SKIP LOCKED)
                     RETURNING event_id, body, attempts, case_id, seq",
                    &[
                        &now.timestamp_micros(),
                        &(*limit as i64),
                        &(now + *lease).timestamp_micros(),
                    ],
                )
                .await?;
            let mut due: Vec<(i64, i64, OutboxEvent)> = rows
                .iter()
                .map(|r| {
                    (
                        r.get::<_, i64>(3),
                        r.get::<_, i64>(4),
                        OutboxEvent {
                            event_id: r.get(0),
                            body: r.get(1),
                            attempts: r.get::<_, i32>(2) as u32,
                        },
                    )
                })
                .collect();
            due.sort_by_key(|(case, seq, _)| (*case, *seq));
            Ok(CaseAnswer::Outbox(
                due.into_iter().map(|(_, _, e)| e).collect(),
            ))
        }
        CaseCall::OutboxDone {
            event_id,
            delivered,
            retry_at,
        } => {
            let sql = if *delivered {
                "UPDATE case_outbox SET delivered_at = $2, attempts = attempts + 1 WHERE event_id = $1"
            } else {
                "UPDATE case_outbox SET next_attempt_at = $2, attempts = attempts + 1 WHERE event_id = $1"
            };
            let at = if *delivered { now } else { *retry_at };
            tx.execute(sql, &[event_id, &at.timestamp_micros()]).await?;
            Ok(CaseAnswer::Done)
        }
    }
}

async fn list(
    tx: &Tx<'_>,
    sql: &str,
    buyer: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Vec<Case>, TxError> {
    let rows = match buyer {
        Some(b) => tx.query(sql, &[&b]).await?,
        None => tx.query(sql, &[]).await?,
    };
    rows.iter()
        .map(|r| {
            let mut c = case_from(r.get(0))?;
            cases::tick(&mut c, now);
            Ok(c)
        })
        .collect()
}

async fn facts(tx: &Tx<'_>, o: &Opening) -> Result<SubjectFacts, TxError> {
    let mut f = SubjectFacts::default();
    if let Some(rid) = o.return_id
        && let Some(rec) = find_return(tx, rid.0).await?
    {
        f.return_owner = Some((rec.buyer, rec.order));
        f.outcome = rec.state.outcome().map(|(o, _)| o);
        f.refused = rec.state.advance().is_none();
    }
    let subject = Case::subject_key(o.kind, o.buyer_id, o.return_id);
    f.open_case = tx
        .query_opt(
            "SELECT case_id FROM cases WHERE subject = $1 AND state <> 'decided'",
            &[&subject],
        )
        .await?
        .map(|r| r.get::<_, i64>(0) as u64);
    Ok(f)
}

async fn open(
    tx: &Tx<'_>,
    o: &Opening,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<CaseView, TxError> {
    let f = facts(tx, o).await?;
    // The id first (a sequence: unique across replicas), the case from the machine.
    let id: i64 = tx
        .query_one("SELECT nextval('cases_case_id_seq')", &[])
        .await?
        .get(0);
    let (case, events) = cases::open(id as u64, o, &f, deadlines, now).map_err(refused)?;
    tx.execute(
        "INSERT INTO cases (case_id, kind, buyer_id, return_id, subject, opened_at, decide_by,
           state, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &id,
            &case.kind.as_str(),
            &(case.buyer_id.0 as i64),
            &case.return_id.map(|r| r.0 as i64),
            &Case::subject_key(case.kind, case.buyer_id, case.return_id),
            &case.opened_at.timestamp_micros(),
            &case.decide_by.timestamp_micros(),
            &case.state.name(),
            &json(&case)?,
        ],
    )
    .await?;
    append(tx, &case, &events).await?;
    // A new case's trail is the events just written.
    Ok(CaseView {
        case,
        events,
        repeated: false,
    })
}

async fn load(tx: &Tx<'_>, case_id: u64, lock: bool) -> Result<Case, TxError> {
    let sql = if lock {
        "SELECT body FROM cases WHERE case_id = $1 FOR UPDATE"
    } else {
        "SELECT body FROM cases WHERE case_id = $1"
    };
    let row = tx.query_opt(sql, &[&(case_id as i64)]).await?;
    let row = row.ok_or_else(|| refused(CaseRefusal::UnknownCase(case_id)))?;
    case_from(row.get(0))
}

async fn step(
    tx: &Tx<'_>,
    case_id: u64,
    command: &Command,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<CaseView, TxError> {
    let case = load(tx, case_id, true).await?;
    let s = cases::step(&case, command, deadlines, now).map_err(refused)?;
    if !s.repeated {
        tx.execute(
            "UPDATE cases SET state = $2, body = $3 WHERE case_id = $1",
            &[&(case_id as i64), &s.case.state.name(), &json(&s.case)?],
        )
        .await?;
        append(tx, &s.case, &s.events).await?;
        for effect in &s.effects {
            apply_effect(tx, &s.case, effect, now).await?;
        }
    }
    Ok(CaseView {
        events: trail(tx, case_id).await?,
        case: s.case,
        repeated: s.repeated,
    })
}

async fn append(tx: &Tx<'_>, case: &Case, events: &[CaseEvent]) -> Result<(), TxError> {
    let first: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM case_events WHERE case_id = $1",
            &[&(case.case_id as i64)],
        )
        .await?
        .get(0);
    for (k, e) in events.iter().enumerate() {
        let seq = first + k as i64;
        tx.execute(
            "INSERT INTO case_events (case_id, seq, at, actor, what, body)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &(case.case_id as i64),
                &seq,
                &e.at.timestamp_micros(),
                &e.actor,
                &e.what,
                &json(e)?,
            ],
        )
        .await?;
        let payload = webhook_payload(case, seq as u64, e).map_err(TxError::Ledger)?;
        tx.execute(
            "INSERT INTO case_outbox (event_id, case_id, seq, body, created_at, attempts,
               next_attempt_at)
             VALUES ($1, $2, $3, $4, $5, 0, $5)",
            &[
                &event_id(case.case_id, seq as u64),
                &(case.case_id as i64),
                &seq,
                &payload,
                &e.at.timestamp_micros().max(0),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn trail(tx: &Tx<'_>, case_id: u64) -> Result<Vec<CaseEvent>, TxError> {
    tx.query(
        "SELECT body FROM case_events WHERE case_id = $1 ORDER BY seq",
        &[&(case_id as i64)],
    )
    .await?
    .iter()
    .map(|r| {
        serde_json::from_str(r.get(0)).map_err(|e| {
            TxError::Ledger(unavailable(format!(
                "corrupt case event in the ledger: {e}"
            )))
        })
    })
    .collect()
}

/// Applies a decision's effect on the return it is about, as a move of the return's
/// state machine (a reviewer's release, a corrected outcome), written as every move is,
/// under the buyer's lock as every command that moves their money.
async fn apply_effect(
    tx: &Tx<'_>,
    case: &Case,
    effect: &Effect,
    now: DateTime<Utc>,
) -> Result<(), TxError> {
    let rid = match effect {
        Effect::CorrectOutcome { return_id, .. } | Effect::ReleaseByReviewer { return_id, .. } => {
            *return_id
        }
    };
    let buyer = lock_buyer_of(tx, rid.0).await?;
    let rec = find_return(tx, rid.0)
        .await?
        .ok_or(Refusal::UnknownReturn(rid.0))?;
    let moved = match effect {
        Effect::CorrectOutcome { to, .. } => ledger::correct_step(rid, &rec, *to)?,
        Effect::ReleaseByReviewer { reviewer, .. } => ledger::release_step(&rec, reviewer),
    };
    let mut book = Book::default();
    restore(&mut book, buyer, read_buyer(tx, buyer).await?)?;
    let w = Writing {
        day: now.date_naive(),
        now,
        case_id: Some(case.case_id),
    };
    write(tx, rid.0, &rec, &moved.effects, &w, &mut book).await
}
