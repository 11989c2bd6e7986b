//! The rows a command reads and writes: the writer's in-memory view ([`State`]) and
//! how it is rebuilt, a decided return and its recorded request and decision read
//! through the schema's indexes, and each move of the core's state machine written as
//! its effects' rows ([`State::write`]).

use super::*;

/// What the writer holds in memory. It does not grow with the number of returns ever
/// decided (a marketplace decides millions a day): only what the hot path needs and
/// cannot cheaply read, each bounded by something other than history. A decided
/// return, an order already refunded or a tracking number already used is read
/// through an index when a command needs it.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Ids of the policy and model version strings in `versions`, both ways (a few).
    pub(crate) versions: HashMap<String, i64>,
    pub(crate) version_text: HashMap<i64, String>,
    /// The money: open exposure per buyer, advances per day, each buyer's latest loss
    /// (the core's [`Book`], whose rules every store shares).
    pub(crate) book: Book,
    /// Version ids first recorded by the command being applied (forgotten if its rows
    /// are rolled back).
    pub(crate) new_versions: Vec<i64>,
    pub(crate) next_decision_id: u64,
}

pub(crate) fn parse_money(s: &str) -> Result<Money, LedgerError> {
    s.parse()
        .map_err(|e| unavailable(format!("corrupt amount {s:?} in the ledger: {e}")))
}

/// Rebuilds the in-memory view from the database: versions, open exposure per buyer,
/// advances per day, each buyer's latest loss and the next decision id. Memory is set
/// by open advances, days and buyers with losses, not by history; the time is one
/// pass over the advances.
pub(crate) fn load_state(conn: &Connection) -> Result<State, LedgerError> {
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
pub(crate) fn kept_on(tx: &Connection, day: NaiveDate) -> Result<Money, LedgerError> {
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
pub(crate) fn refund_only_view(
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
pub(crate) fn tracking_given(tx: &Connection, rid: u64) -> Result<bool, LedgerError> {
    tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM advances WHERE return_id = ?1)
             OR EXISTS (SELECT 1 FROM tracking_refusals WHERE return_id = ?1)
             OR EXISTS (SELECT 1 FROM decisions WHERE return_id = ?1 AND tracking_number IS NOT NULL)",
    )
    .and_then(|mut s| s.query_row([rid as i64], |r| r.get::<_, bool>(0)))
    .map_err(unavailable)
}

/// The row of return `rid`'s decision, if it was decided.
pub(crate) fn decision_seq(tx: &Connection, rid: u64) -> Result<Option<i64>, LedgerError> {
    use rusqlite::OptionalExtension;
    tx.prepare_cached("SELECT seq FROM decisions WHERE return_id = ?1")
        .and_then(|mut s| s.query_row([rid as i64], |r| r.get(0)).optional())
        .map_err(unavailable)
}

/// The request first decided under `return_id`, recorded at row `seq` (what a repeat is
/// checked against: see `decide_step`).
pub(crate) fn recorded_request(
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
pub(crate) fn recorded_decision(
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
    pub(crate) fn version_id(&mut self, tx: &Connection, text: &str) -> Result<i64, LedgerError> {
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
    pub(crate) fn forget_new_versions(&mut self) {
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
    pub(crate) fn view(
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

/// What a move's rows need beyond its effects.
pub(crate) struct Writing {
    pub day: NaiveDate,
    pub now: DateTime<Utc>,
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
                    shipped_at,
                } => exec(
                    "INSERT INTO advances (return_id, buyer_id, order_id, amount, tracking_number, shipped_at, advanced_at, local_date)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        rid_,
                        buyer.0 as i64,
                        rec.order.0 as i64,
                        amount.to_string(),
                        tracking,
                        shipped_at.timestamp_micros(),
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
    pub(crate) fn decide(
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
        // The view the decision was taken on (with the refund-only totals, when read).
        let view = std::cell::Cell::new(None);
        let step = decide_step::<LedgerError>(
            recorded.as_ref(),
            &req,
            star,
            policy,
            now,
            || {
                let v = self.view(
                    tx,
                    rid,
                    req.buyer_id.0,
                    req.order_id.0,
                    day,
                    rated_as_of,
                    req.tracking_number.as_deref(),
                )?;
                view.set(Some(v));
                Ok(v)
            },
            |v| {
                let v = refund_only_view(tx, v, req.buyer_id.0, day, now, policy)?;
                view.set(Some(v));
                Ok(v)
            },
        )?;
        let view = view.get();
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
    pub(crate) fn track(
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
            case_id: None,
        };
        self.write(tx, rid, &rec, &moved.effects, &w)?;
        Ok(Tracked::from_step(rid, &rec, moved.answer))
    }

    pub(crate) fn keep(
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
            case_id: None,
        };
        self.write(tx, rid, &rec, &moved.effects, &w)?;
        Ok(Kept::from_step(rid, moved.answer))
    }

    pub(crate) fn settle(
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
    pub(crate) fn replay(
        &self,
        tx: &Connection,
        req: Replayed,
    ) -> Result<Option<Replay>, LedgerError> {
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

pub(crate) fn ts(micros: i64) -> Result<DateTime<Utc>, LedgerError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| unavailable(format!("corrupt time {micros} in the ledger")))
}
