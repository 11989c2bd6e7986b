//! Cases in the SQLite ledger (the calls and answers every store shares are
//! `fastrefund_store`'s).
//!
//! A store reads a case, steps it with the core's pure machine
//! ([`fastrefund_core::cases`]), and writes in one transaction: the case's current
//! state (`cases.body`, JSON of the core's [`Case`]), the events the move appended to
//! its trail (`case_events`, never edited), one outbox row per event for the webhooks
//! (`case_outbox`), and the move's effects on the money (an outcome corrected in the
//! buyer's favour: `outcome_corrections`, and the buyer's latest loss recomputed).
//! One open case per subject is the schema's own rule (a unique index on the subject
//! of open cases). Reads tick a case by the clock without writing; the next write
//! records what time did.

use crate::{State, Writing, find_return, unavailable};
use chrono::{DateTime, Utc};
use fastrefund_core::cases::{
    self, Case, CaseDeadlines, CaseEvent, CaseRefusal, Command, Effect, Opening, SubjectFacts,
};
use fastrefund_core::ledger::{self, Refusal};
use fastrefund_store::{
    CaseAnswer, CaseCall, CaseView, LedgerError, OutboxEvent, event_id, webhook_payload,
};
use rusqlite::{Connection, OptionalExtension, params};

fn json<T: serde::Serialize>(v: &T) -> Result<String, LedgerError> {
    serde_json::to_string(v).map_err(unavailable)
}

fn case_from(body: &str) -> Result<Case, LedgerError> {
    serde_json::from_str(body).map_err(|e| unavailable(format!("corrupt case in the ledger: {e}")))
}

/// Runs `call` in the writer's transaction.
pub(crate) fn apply(
    tx: &Connection,
    st: &mut State,
    call: CaseCall,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<CaseAnswer, LedgerError> {
    match call {
        CaseCall::Open(o) => open(tx, &o, deadlines, now).map(CaseAnswer::One),
        CaseCall::Step { case_id, command } => {
            step(tx, st, case_id, &command, deadlines, now).map(CaseAnswer::One)
        }
        CaseCall::Get { case_id } => get(tx, case_id, now).map(CaseAnswer::One),
        CaseCall::Record(rid) => find_return(tx, rid.0).map(CaseAnswer::Record),
        CaseCall::OfBuyer(buyer) => list(
            tx,
            "SELECT body FROM cases WHERE buyer_id = ?1 ORDER BY case_id DESC",
            params![buyer.0 as i64],
            now,
        )
        .map(CaseAnswer::Many),
        CaseCall::Queue { state } => {
            let mut all = list(
                tx,
                "SELECT body FROM cases WHERE state <> 'decided' OR ?1 = 'decided'",
                params![state.as_deref().unwrap_or("")],
                now,
            )?;
            all.retain(|c| state.as_deref().is_none_or(|s| c.state.listed_under(s)));
            all.sort_by(cases::queue_order);
            Ok(CaseAnswer::Many(all))
        }
        CaseCall::Decided => list(
            tx,
            "SELECT body FROM cases WHERE state = 'decided' ORDER BY case_id",
            [],
            now,
        )
        .map(CaseAnswer::Many),
        CaseCall::DecidedRating => list(
            tx,
            "SELECT body FROM cases WHERE state = 'decided' AND kind = 'rating' ORDER BY case_id",
            [],
            now,
        )
        .map(CaseAnswer::Many),
        CaseCall::OutboxDue { limit, lease } => {
            // Claimed and leased in one statement, as in PostgreSQL.
            let mut due: Vec<(i64, i64, OutboxEvent)> = tx
                .prepare_cached(
                    "UPDATE case_outbox SET next_attempt_at = ?3
                     WHERE event_id IN (
                        SELECT event_id FROM case_outbox
                        WHERE delivered_at IS NULL AND next_attempt_at <= ?1
                        ORDER BY next_attempt_at, case_id, seq LIMIT ?2)
                     RETURNING event_id, body, attempts, case_id, seq",
                )
                .and_then(|mut q| {
                    q.query_map(
                        params![
                            now.timestamp_micros(),
                            limit as i64,
                            (now + lease).timestamp_micros()
                        ],
                        |r| {
                            Ok((
                                r.get(3)?,
                                r.get(4)?,
                                OutboxEvent {
                                    event_id: r.get(0)?,
                                    body: r.get(1)?,
                                    attempts: r.get::<_, i64>(2)? as u32,
                                },
                            ))
                        },
                    )?
                    .collect()
                })
                .map_err(unavailable)?;
            due.sort_by_key(|(case, seq, _)| (*case, *seq));
            let due: Vec<OutboxEvent> = due.into_iter().map(|(_, _, e)| e).collect();
            Ok(CaseAnswer::Outbox(due))
        }
        CaseCall::OutboxDone {
            event_id,
            delivered,
            retry_at,
        } => {
            let sql = if delivered {
                "UPDATE case_outbox SET delivered_at = ?2, attempts = attempts + 1 WHERE event_id = ?1"
            } else {
                "UPDATE case_outbox SET next_attempt_at = ?2, attempts = attempts + 1 WHERE event_id = ?1"
            };
            let at = if delivered { now } else { retry_at };
            tx.prepare_cached(sql)
                .and_then(|mut q| q.execute(params![event_id, at.timestamp_micros()]))
                .map_err(unavailable)?;
            Ok(CaseAnswer::Done)
        }
    }
}

fn list(
    tx: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    now: DateTime<Utc>,
) -> Result<Vec<Case>, LedgerError> {
    let mut q = tx.prepare_cached(sql).map_err(unavailable)?;
    let bodies = q
        .query_map(p, |r| r.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    bodies
        .iter()
        .map(|b| {
            let mut c = case_from(b)?;
            cases::tick(&mut c, now);
            Ok(c)
        })
        .collect()
}

/// What the ledger knows of the subject of `o`.
fn facts(tx: &Connection, o: &Opening) -> Result<SubjectFacts, LedgerError> {
    let mut f = SubjectFacts::default();
    if let Some(rid) = o.return_id
        && let Some(rec) = find_return(tx, rid.0)?
    {
        f.return_owner = Some((rec.buyer, rec.order));
        f.outcome = rec.state.outcome().map(|(o, _)| o);
        f.refused = rec.state.advance().is_none();
    }
    let subject = Case::subject_key(o.kind, o.buyer_id, o.return_id);
    f.open_case = tx
        .prepare_cached("SELECT case_id FROM cases WHERE subject = ?1 AND state <> 'decided'")
        .and_then(|mut s| s.query_row([&subject], |r| r.get::<_, i64>(0)).optional())
        .map_err(unavailable)?
        .map(|id| id as u64);
    Ok(f)
}

fn open(
    tx: &Connection,
    o: &Opening,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<CaseView, LedgerError> {
    let f = facts(tx, o)?;
    let next: i64 = tx
        .query_row("SELECT COALESCE(MAX(case_id), 0) + 1 FROM cases", [], |r| {
            r.get(0)
        })
        .map_err(unavailable)?;
    let (case, events) = cases::open(next as u64, o, &f, deadlines, now)?;
    let body = json(&case)?;
    tx.prepare_cached(
        "INSERT INTO cases (case_id, kind, buyer_id, return_id, subject, opened_at, decide_by,
           state, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            next,
            case.kind.as_str(),
            case.buyer_id.0 as i64,
            case.return_id.map(|r| r.0 as i64),
            Case::subject_key(case.kind, case.buyer_id, case.return_id),
            case.opened_at.timestamp_micros(),
            case.decide_by.timestamp_micros(),
            case.state.name(),
            body,
        ])
    })
    .map_err(unavailable)?;
    append(tx, &case, &events)?;
    // A new case's trail is the events just written.
    Ok(CaseView {
        case,
        events,
        repeated: false,
    })
}

/// The case `case_id` as recorded (not ticked).
fn load(tx: &Connection, case_id: u64) -> Result<Case, LedgerError> {
    let body: Option<String> = tx
        .prepare_cached("SELECT body FROM cases WHERE case_id = ?1")
        .and_then(|mut s| s.query_row([case_id as i64], |r| r.get(0)).optional())
        .map_err(unavailable)?;
    case_from(&body.ok_or(CaseRefusal::UnknownCase(case_id))?)
}

fn get(tx: &Connection, case_id: u64, now: DateTime<Utc>) -> Result<CaseView, LedgerError> {
    let mut case = load(tx, case_id)?;
    let mut events = trail(tx, case_id)?;
    events.extend(cases::tick(&mut case, now));
    Ok(CaseView {
        case,
        events,
        repeated: false,
    })
}

fn step(
    tx: &Connection,
    st: &mut State,
    case_id: u64,
    command: &Command,
    deadlines: &CaseDeadlines,
    now: DateTime<Utc>,
) -> Result<CaseView, LedgerError> {
    let case = load(tx, case_id)?;
    let s = cases::step(&case, command, deadlines, now)?;
    if !s.repeated {
        let body = json(&s.case)?;
        tx.prepare_cached("UPDATE cases SET state = ?2, body = ?3 WHERE case_id = ?1")
            .and_then(|mut q| q.execute(params![case_id as i64, s.case.state.name(), body]))
            .map_err(unavailable)?;
        append(tx, &s.case, &s.events)?;
        for effect in &s.effects {
            apply_effect(tx, st, &s.case, effect, now)?;
        }
    }
    Ok(CaseView {
        case: s.case,
        events: trail(tx, case_id)?,
        repeated: s.repeated,
    })
}

/// Appends `events` to the case's trail, and one outbox row each for the webhooks.
fn append(tx: &Connection, case: &Case, events: &[CaseEvent]) -> Result<(), LedgerError> {
    let first: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM case_events WHERE case_id = ?1")
        .and_then(|mut s| s.query_row([case.case_id as i64], |r| r.get(0)))
        .map_err(unavailable)?;
    for (k, e) in events.iter().enumerate() {
        let seq = first + k as i64;
        let body = json(e)?;
        tx.prepare_cached(
            "INSERT INTO case_events (case_id, seq, at, actor, what, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut s| {
            s.execute(params![
                case.case_id as i64,
                seq,
                e.at.timestamp_micros(),
                e.actor,
                e.what,
                body
            ])
        })
        .map_err(unavailable)?;
        let payload = webhook_payload(case, seq as u64, e)?;
        tx.prepare_cached(
            "INSERT INTO case_outbox (event_id, case_id, seq, body, created_at, attempts, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?5)",
        )
        .and_then(|mut s| {
            s.execute(params![
                event_id(case.case_id, seq as u64),
                case.case_id as i64,
                seq,
                payload,
                e.at.timestamp_micros().max(0),
            ])
        })
        .map_err(unavailable)?;
    }
    Ok(())
}

/// The case's trail, oldest first.
fn trail(tx: &Connection, case_id: u64) -> Result<Vec<CaseEvent>, LedgerError> {
    let mut q = tx
        .prepare_cached("SELECT body FROM case_events WHERE case_id = ?1 ORDER BY seq")
        .map_err(unavailable)?;
    let bodies = q
        .query_map([case_id as i64], |r| r.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    bodies
        .iter()
        .map(|b| {
            serde_json::from_str(b)
                .map_err(|e| unavailable(format!("corrupt case event in the ledger: {e}")))
        })
        .collect()
}

/// Applies a decision's effect on the return it is about, as a move of the return's
/// state machine (a reviewer's release, a corrected outcome), written as every move is.
fn apply_effect(
    tx: &Connection,
    st: &mut State,
    case: &Case,
    effect: &Effect,
    now: DateTime<Utc>,
) -> Result<(), LedgerError> {
    let rid = match effect {
        Effect::CorrectOutcome { return_id, .. } | Effect::ReleaseByReviewer { return_id, .. } => {
            *return_id
        }
    };
    let rec = find_return(tx, rid.0)?.ok_or(Refusal::UnknownReturn(rid.0))?;
    let moved = match effect {
        Effect::CorrectOutcome { to, .. } => ledger::correct_step(rid, &rec, *to)?,
        Effect::ReleaseByReviewer { reviewer, .. } => ledger::release_step(&rec, reviewer),
    };
    let w = Writing {
        day: now.date_naive(),
        now,
        case_id: Some(case.case_id),
    };
    st.write(tx, rid.0, &rec, &moved.effects, &w)
}

/// A buyer's latest loss, from their outcomes as corrected by cases.
pub(crate) const LATEST_LOSS: &str = "SELECT MAX(o.outcome_at)
     FROM outcomes o JOIN decisions d ON d.return_id = o.return_id
     LEFT JOIN outcome_corrections c ON c.return_id = o.return_id
     WHERE d.buyer_id = ?1
       AND COALESCE(c.to_outcome, o.outcome) IN ('received_mismatch', 'not_shipped')";
