//! Reading a ledger file without taking it from a service that has it open: the
//! decided returns in the `returns` table's shape, the decided cases, and the
//! invariants checked on the records themselves.

use super::*;

/// A ledger file opened read-only (the service may be writing it meanwhile).
pub(crate) fn open_read_only(path: &Path) -> Result<Connection, LedgerError> {
    let open = |message: String| LedgerError::Open {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        return Err(open("no such file".into()));
    }
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| open(e.to_string()))
}

/// Reads every decided return from a ledger file (read-only; the service may be running).
pub fn export_returns(path: &Path) -> Result<Vec<ExportRow>, LedgerError> {
    let conn = open_read_only(path)?;
    let mut q = conn
        .prepare(
            "SELECT d.return_id, d.order_id, d.buyer_id, d.merchant_id, d.category, d.requested_at, d.reason,
                    d.amount, d.instant OR r.return_id IS NOT NULL, a.shipped_at,
                    CASE WHEN k.return_id IS NOT NULL THEN 'refunded_without_return'
                         ELSE COALESCE(c.to_outcome, o.outcome) END,
                    COALESCE(k.kept_at, o.outcome_at)
             FROM decisions d
             LEFT JOIN kept k ON k.return_id = d.return_id
             LEFT JOIN advances a ON a.return_id = d.return_id
             LEFT JOIN outcomes o ON o.return_id = d.return_id
             LEFT JOIN outcome_corrections c ON c.return_id = d.return_id
             LEFT JOIN reviewer_releases r ON r.return_id = d.return_id
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
                r.get::<_, i64>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, bool>(8)?,
                r.get::<_, Option<i64>>(9)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<i64>>(11)?,
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
            requested_at: ts(requested)?,
            reason: reason.parse().map_err(unavailable)?,
            amount: parse_money(&amount)?,
            instant,
            advanced: advanced_at.is_some(),
            // A parcel that never shipped has no shipping time, whatever was claimed.
            shipped_at: advanced_at
                .filter(|_| outcome.as_deref() != Some(Outcome::NotShipped.as_str()))
                .map(ts)
                .transpose()?,
            outcome: outcome
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(unavailable)?
                .unwrap_or(Outcome::Pending),
            outcome_at: outcome_at.map(ts).transpose()?,
        });
    }
    Ok(out)
}

/// Every decided case in a ledger file, oldest first (read-only; the service may be
/// running), for `export-cases`.
pub fn export_cases(path: &Path) -> Result<Vec<fastrefund_core::cases::Case>, LedgerError> {
    let conn = open_read_only(path)?;
    let mut q = conn
        .prepare("SELECT body FROM cases WHERE state = 'decided' ORDER BY case_id")
        .map_err(unavailable)?;
    let bodies = q
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).map_err(|e| unavailable(format!("corrupt case: {e}"))))
        .collect()
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
    // Each buyer's advances minus their settled advances, from two separate sums: it
    // must equal the outstanding amount the view is built with (open advances).
    let sums = |sql: &str| -> Result<HashMap<u64, Decimal>, String> {
        let mut q = conn.prepare(sql).map_err(|e| e.to_string())?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(|e| e.to_string())?;
        let mut out: HashMap<u64, Decimal> = HashMap::new();
        for row in rows {
            let (buyer, amount) = row.map_err(|e| e.to_string())?;
            let amount = parse_money(&amount).map_err(|e| e.to_string())?;
            *out.entry(buyer as u64).or_default() += amount.value();
        }
        Ok(out)
    };
    let advanced = sums("SELECT buyer_id, amount FROM advances")?;
    let settled = sums(
        "SELECT a.buyer_id, a.amount FROM advances a JOIN outcomes o ON o.return_id = a.return_id",
    )?;
    let mut expect: HashMap<u64, Money> = HashMap::new();
    for (buyer, total) in &advanced {
        let left = *total - settled.get(buyer).copied().unwrap_or_default();
        let left = Money::new(left).map_err(|e| format!("buyer {buyer}: {e}"))?;
        if left != Money::ZERO {
            expect.insert(*buyer, left);
        }
    }
    let view: HashMap<u64, Money> = st.book.open().collect();
    if view != expect {
        return Err(format!(
            "outstanding per buyer {view:?} differs from advances minus settlements {expect:?}"
        ));
    }
    Ok(expect)
}
