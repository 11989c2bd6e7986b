//! `export-sql`: the whole of `rate` as one SQL query, for the engines where a data team
//! keeps its history (Spark, DuckDB; Trino and BigQuery with the same text and small
//! changes, see the README).
//!
//! The query reads the contract's tables by the names `orders`, `returns`, `disputes`
//! and `buyers` (the caller binds them to Parquet files or warehouse tables; a history
//! without buyers binds an empty `buyers` table) and returns the columns of
//! `ratings.parquet`: `buyer_id, star, score, reason_1 … reason_4, as_of,
//! model_version`.
//!
//! It computes the features of [`crate::features`] by the same definitions, which are
//! exact (integer cents, integer microseconds, category norms in integer billionths,
//! then one IEEE division per feature), so an engine that adds in another order still
//! lands every value on the same side of every bin edge. The scorecard is then a
//! `CASE` per feature (bins are `[lower, upper)`, a missing value takes the missing
//! bin's points), the score their integer sum, the star the model's cut-offs, and the
//! reasons the four features that cost the most points against their best bin (ties
//! go to the feature that comes first in the model), as [`Scorecard::score`] does.
//!
//! The script is one statement and holds no `;` but its last character, so a runner
//! that splits on `;` finds it whole.

use crate::features::{
    DAY, LATE_REQUEST_DAYS, NEW_ACCOUNT_DAYS, NORM_SCALE, SLOW_SHIP_DAYS, date_micros,
};
use chrono::NaiveDate;
use fastrefund_core::scoring::{FeatureKind, MAX_REASONS, MISSING_SUFFIX, Scorecard, Value};
use std::fmt::Write;

/// The SQL engine a script is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Spark SQL 3.1 or later (`spark-sql`, `spark.sql(…)`).
    Spark,
    /// DuckDB 1.0 or later.
    Duckdb,
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Dialect, String> {
        match s.to_ascii_lowercase().as_str() {
            "spark" => Ok(Dialect::Spark),
            "duckdb" => Ok(Dialect::Duckdb),
            _ => Err(format!(
                "unknown SQL dialect {s:?}: expected spark or duckdb"
            )),
        }
    }
}

impl Dialect {
    /// Microseconds since the epoch of a timestamp column.
    fn micros(self, column: &str) -> String {
        match self {
            Dialect::Spark => format!("unix_micros({column})"),
            Dialect::Duckdb => format!("epoch_us({column})"),
        }
    }

    /// Integer division, rounded down (both sides are non-negative here).
    fn int_div(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Spark => format!("({a}) div ({b})"),
            Dialect::Duckdb => format!("({a}) // ({b})"),
        }
    }
}

/// Why a model cannot be written as SQL.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(
        "the model uses feature `{0}`, which is not a buyer feature of `rate` (export-sql writes the buyer features' scorecard only; a model trained with --table scores that table's columns)"
    )]
    UnknownFeature(String),
    #[error("feature `{0}` is categorical; the buyer features are all numeric")]
    Categorical(String),
}

/// A double literal both engines read as a double (`1.5e0`, never a decimal), with
/// every digit needed to give back the same f64.
fn double(x: f64) -> String {
    format!("{x:e}")
}

/// A string literal.
fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `ts` in `[T − days, T)`, on a µs column.
fn within(us: &str, t: i64, days: i64) -> String {
    format!("({us} >= {} AND {us} < {t})", t - days * DAY)
}

fn count_if(cond: &str) -> String {
    format!("SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)")
}

fn sum_if(cond: &str, v: &str) -> String {
    format!("SUM(CASE WHEN {cond} THEN {v} ELSE 0 END)")
}

fn ratio(num: &str, den: &str) -> String {
    format!("CASE WHEN {den} > 0 THEN CAST({num} AS DOUBLE) / CAST({den} AS DOUBLE) END")
}

/// `Σµs / (n · DAY)`: both sides exact integers, one division (as [`crate::features`]).
fn mean_days(micros: &str, n: &str) -> String {
    format!("CASE WHEN {n} > 0 THEN CAST({micros} AS DOUBLE) / CAST({n} * {DAY} AS DOUBLE) END")
}

/// The SQL of each buyer feature over the per-buyer columns of the `base` CTE.
fn feature_sql(name: &str, t: i64) -> Option<String> {
    let n = |c: &str| format!("CAST({c} AS DOUBLE)");
    Some(match name {
        "account_age_days" => format!(
            "COALESCE(CAST({t} - COALESCE(registered_us, first_order_us) AS DOUBLE) / {}, {})",
            double(DAY as f64),
            double(0.0)
        ),
        "orders_90"
        | "orders_365"
        | "returns_90"
        | "returns_365"
        | "advanced_365"
        | "mismatch_365"
        | "not_shipped_365"
        | "bad_outcomes_90"
        | "non_receipt_claims_365"
        | "disputes_opened_365"
        | "disputes_lost_365"
        | "fraud_flags_365"
        | "late_no_reason_365"
        | "slow_ship_365" => n(name),
        "spend_365" => format!("{} / {}", n("spend_cents_365"), double(100.0)),
        "relative_return_rate_365" => format!(
            "CAST((returns_365 + 1) * {NORM_SCALE} AS DOUBLE) / CAST(expected_e9_365 + {NORM_SCALE} AS DOUBLE)"
        ),
        "return_value_share_365" => ratio("return_cents_365", "spend_cents_365"),
        "no_reason_share_365" => ratio("no_reason_365", "returns_365"),
        "advanced_loss_share_365" => ratio("advanced_losses_365", "advanced_settled_365"),
        "days_to_ship_mean_365" => mean_days("ship_us_365", "shipped_365"),
        "days_since_last_bad" => format!(
            "CAST({t} - GREATEST(COALESCE(last_bad_return_us, last_bad_dispute_us), COALESCE(last_bad_dispute_us, last_bad_return_us)) AS DOUBLE) / {}",
            double(DAY as f64)
        ),
        "days_to_request_mean_365" => mean_days("request_us_365", "requested_after_delivery_365"),
        "late_return_share_365" => ratio("late_no_reason_365", "no_reason_365"),
        "bad_outcomes_ever" => n("bad_returns_ever + bad_disputes_ever"),
        "intact_share_365" => ratio("intact_365", "returns_settled_365"),
        "new_account_spend" => format!(
            "CASE WHEN COALESCE({t} - COALESCE(registered_us, first_order_us) < {}, TRUE) THEN {} / {} ELSE {} END",
            NEW_ACCOUNT_DAYS * DAY,
            n("spend_cents_365"),
            double(100.0),
            double(0.0)
        ),
        "late_return_rate_365" => format!("{} / {}", n("late_no_reason_365"), n("orders_365 + 1")),
        "slow_ship_rate_365" => format!("{} / {}", n("slow_ship_365"), n("orders_365 + 1")),
        _ => return None,
    })
}

/// One of `n` disjoint parts of the buyers, by `buyer_id % n = k` (`k/n` on the command
/// line): an engine that cannot hold every buyer's aggregates at once rates the parts one
/// after the other. The category norms are still computed over every buyer, so each
/// part rates its buyers exactly as the whole query does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerShard {
    pub k: u64,
    pub n: u64,
}

impl std::str::FromStr for BuyerShard {
    type Err = String;
    fn from_str(s: &str) -> Result<BuyerShard, String> {
        let bad = || format!("buyer shard {s:?}: expected K/N with 0 <= K < N, e.g. 0/8");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if n == 0 || k >= n {
            return Err(bad());
        }
        Ok(BuyerShard { k, n })
    }
}

/// The per-buyer aggregates every feature is made from, with the feature table's joins.
fn base_sql(
    d: Dialect,
    t: i64,
    shard: Option<BuyerShard>,
    frozen: &std::collections::BTreeMap<String, i64>,
) -> String {
    // ` AND <buyer_id> % n = k` for a shard, nothing for the whole.
    let part = |c: &str| {
        shard
            .map(|BuyerShard { k, n }| format!(" AND {c} % {n} = {k}"))
            .unwrap_or_default()
    };
    let w = |c: &str, days| within(c, t, days);
    let bad = "known IN ('received_mismatch', 'not_shipped')";
    let lost = format!("decision = 'merchant_won' AND decided_us < {t}");
    let after_delivery = format!(
        "{} AND delivered_us <= requested_us",
        w("requested_us", 365)
    );
    let shipped = format!("{} AND shipped_us < {t}", w("requested_us", 365));
    let norm = d.int_div(&format!("COALESCE(cr.n, 0) * {NORM_SCALE}"), "co.n");
    let mut s = String::new();
    let _ = write!(
        s,
        "o AS (
  SELECT order_id, buyer_id, category, status,
         CAST(ROUND(amount * 100) AS BIGINT) AS cents,
         {ordered} AS ordered_us, {delivered} AS delivered_us
  FROM orders
),
-- returns asked before T, with the outcome as known at T (merchant-fault ones never count)
rk AS (
  SELECT r.buyer_id, r.order_id, r.reason, r.advanced, r.cents, r.requested_us,
         r.shipped_us, r.outcome_us, r.known, o.delivered_us
  FROM (
    SELECT buyer_id, order_id, reason, advanced,
           CAST(ROUND(amount * 100) AS BIGINT) AS cents,
           {requested} AS requested_us, {shipped_at} AS shipped_us, {outcome_at} AS outcome_us,
           CASE WHEN {outcome_at} < {t} THEN outcome ELSE 'pending' END AS known
    FROM returns
    WHERE {requested} < {t}
  ) r
  LEFT JOIN o ON r.order_id = o.order_id
  WHERE r.known <> 'merchant_fault'
),
{norms_ctes}
ob AS (
  SELECT o.buyer_id,
         {orders_90} AS orders_90,
         {orders_365} AS orders_365,
         {spend} AS spend_cents_365,
         {expected} AS expected_e9_365,
         MIN(o.ordered_us) AS first_order_us
  FROM o LEFT JOIN norms nm ON o.category = nm.category
  WHERE o.ordered_us < {t} AND o.status <> 'cancelled'{part_o}
  GROUP BY o.buyer_id
),
rb AS (
  SELECT buyer_id,
         {returns_90} AS returns_90,
         {returns_365} AS returns_365,
         {return_cents} AS return_cents_365,
         {no_reason} AS no_reason_365,
         {advanced} AS advanced_365,
         {mismatch} AS mismatch_365,
         {not_shipped} AS not_shipped_365,
         {bad_90} AS bad_outcomes_90,
         {losses} AS advanced_losses_365,
         {settled} AS advanced_settled_365,
         {non_receipt} AS non_receipt_claims_365,
         {ship_us} AS ship_us_365,
         {shipped_n} AS shipped_365,
         {request_us} AS request_us_365,
         {after_n} AS requested_after_delivery_365,
         {intact} AS intact_365,
         {late} AS late_no_reason_365,
         {slow} AS slow_ship_365,
         {returns_settled} AS returns_settled_365,
         {bad_ever} AS bad_returns_ever,
         MAX(CASE WHEN {bad} THEN outcome_us END) AS last_bad_return_us
  FROM rk
  WHERE TRUE{part}
  GROUP BY buyer_id
),
db AS (
  SELECT buyer_id,
         {opened} AS disputes_opened_365,
         {lost_365} AS disputes_lost_365,
         {fraud_365} AS fraud_flags_365,
         {fraud_ever} AS bad_disputes_ever,
         MAX(CASE WHEN {lost} AND fraud_flag THEN decided_us END) AS last_bad_dispute_us
  FROM (
    SELECT buyer_id, decision, fraud_flag, {opened_at} AS opened_us, {decided_at} AS decided_us
    FROM disputes
  ) dd
  WHERE opened_us < {t}{part}
  GROUP BY buyer_id
),
-- buyers known at T: registered before T, or with an order before T
population AS (
  SELECT buyer_id FROM buyers WHERE {registered} < {t}{part}
  UNION
  SELECT buyer_id FROM o WHERE ordered_us < {t}{part}
),
base AS (
  SELECT p.buyer_id, {registered} AS registered_us, ob.first_order_us,
         COALESCE(ob.orders_90, 0) AS orders_90,
         COALESCE(ob.orders_365, 0) AS orders_365,
         COALESCE(ob.spend_cents_365, 0) AS spend_cents_365,
         COALESCE(ob.expected_e9_365, 0) AS expected_e9_365,
{rb_cols},
{db_cols},
         rb.last_bad_return_us, db.last_bad_dispute_us
  FROM population p
  LEFT JOIN ob ON p.buyer_id = ob.buyer_id
  LEFT JOIN rb ON p.buyer_id = rb.buyer_id
  LEFT JOIN db ON p.buyer_id = db.buyer_id
  LEFT JOIN buyers b ON p.buyer_id = b.buyer_id
)",
        part = part("buyer_id"),
        part_o = part("o.buyer_id"),
        norms_ctes = if frozen.is_empty() {
            format!(
                "-- each category's normal return rate over the 365 days before T, in billionths
cat_orders AS (
  SELECT category, COUNT(*) AS n FROM o
  WHERE {o365} AND status <> 'cancelled'
  GROUP BY category
),
cat_returns AS (
  SELECT o.category, COUNT(*) AS n
  FROM rk JOIN o ON rk.order_id = o.order_id
  WHERE {r365}
  GROUP BY o.category
),
norms AS (
  SELECT co.category, {norm} AS norm_e9
  FROM cat_orders co LEFT JOIN cat_returns cr ON co.category = cr.category
),",
                o365 = w("ordered_us", 365),
                r365 = w("rk.requested_us", 365),
            )
        } else {
            // The norms frozen in the model at training (a category it never saw: 0).
            let rows: Vec<String> = frozen
                .iter()
                .map(|(c, v)| format!("({}, CAST({v} AS BIGINT))", text(c)))
                .collect();
            format!(
                "-- each category's normal return rate, in billionths, frozen in the model at training
norms AS (
  SELECT category, norm_e9 FROM (VALUES {}) AS frozen(category, norm_e9)
),",
                rows.join(", ")
            )
        },
        ordered = d.micros("ordered_at"),
        delivered = d.micros("delivered_at"),
        requested = d.micros("requested_at"),
        shipped_at = d.micros("shipped_at"),
        outcome_at = d.micros("outcome_at"),
        opened_at = d.micros("opened_at"),
        decided_at = d.micros("decided_at"),
        registered = d.micros("registered_at"),
        orders_90 = count_if(&w("o.ordered_us", 90)),
        orders_365 = count_if(&w("o.ordered_us", 365)),
        spend = sum_if(&w("o.ordered_us", 365), "o.cents"),
        expected = sum_if(&w("o.ordered_us", 365), "COALESCE(nm.norm_e9, 0)"),
        returns_90 = count_if(&w("requested_us", 90)),
        returns_365 = count_if(&w("requested_us", 365)),
        return_cents = sum_if(&w("requested_us", 365), "cents"),
        no_reason = count_if(&format!(
            "{} AND reason = 'no_reason'",
            w("requested_us", 365)
        )),
        advanced = count_if(&format!("{} AND advanced", w("requested_us", 365))),
        mismatch = count_if(&format!(
            "{} AND known = 'received_mismatch'",
            w("outcome_us", 365)
        )),
        not_shipped = count_if(&format!(
            "{} AND known = 'not_shipped'",
            w("outcome_us", 365)
        )),
        bad_90 = count_if(&format!("{} AND {bad}", w("outcome_us", 90))),
        losses = count_if(&format!("{} AND advanced AND {bad}", w("outcome_us", 365))),
        settled = count_if(&format!(
            "{} AND advanced AND known <> 'pending'",
            w("outcome_us", 365)
        )),
        non_receipt = count_if(&format!(
            "{} AND reason = 'not_received'",
            w("requested_us", 365)
        )),
        ship_us = sum_if(&shipped, "shipped_us - requested_us"),
        shipped_n = count_if(&shipped),
        request_us = sum_if(&after_delivery, "requested_us - delivered_us"),
        after_n = count_if(&after_delivery),
        intact = count_if(&format!(
            "{} AND known = 'received_ok'",
            w("outcome_us", 365)
        )),
        late = count_if(&format!(
            "{after_delivery} AND reason = 'no_reason' AND requested_us - delivered_us >= {}",
            LATE_REQUEST_DAYS * DAY
        )),
        slow = count_if(&format!(
            "{shipped} AND shipped_us - requested_us >= {}",
            SLOW_SHIP_DAYS * DAY
        )),
        returns_settled = count_if(&format!(
            "{} AND (known = 'received_ok' OR {bad})",
            w("outcome_us", 365)
        )),
        bad_ever = count_if(bad),
        opened = count_if(&w("opened_us", 365)),
        lost_365 = count_if(&format!("{} AND {lost}", w("decided_us", 365))),
        fraud_365 = count_if(&format!(
            "{} AND {lost} AND fraud_flag",
            w("decided_us", 365)
        )),
        fraud_ever = count_if(&format!("{lost} AND fraud_flag")),
        rb_cols = RB_COLS
            .iter()
            .map(|c| format!("         COALESCE(rb.{c}, 0) AS {c}"))
            .collect::<Vec<_>>()
            .join(",\n"),
        db_cols = DB_COLS
            .iter()
            .map(|c| format!("         COALESCE(db.{c}, 0) AS {c}"))
            .collect::<Vec<_>>()
            .join(",\n"),
    );
    s
}

const RB_COLS: &[&str] = &[
    "returns_90",
    "returns_365",
    "return_cents_365",
    "no_reason_365",
    "advanced_365",
    "mismatch_365",
    "not_shipped_365",
    "bad_outcomes_90",
    "advanced_losses_365",
    "advanced_settled_365",
    "non_receipt_claims_365",
    "ship_us_365",
    "shipped_365",
    "request_us_365",
    "requested_after_delivery_365",
    "intact_365",
    "late_no_reason_365",
    "slow_ship_365",
    "returns_settled_365",
    "bad_returns_ever",
];

const DB_COLS: &[&str] = &[
    "disputes_opened_365",
    "disputes_lost_365",
    "fraud_flags_365",
    "bad_disputes_ever",
];

/// The points of feature `j` for the value column `x`: a `CASE` over the model's bins.
fn points_sql(card: &Scorecard, j: usize, x: &str) -> Result<String, SqlError> {
    let f = &card.model().features[j];
    if f.kind == FeatureKind::Categorical {
        return Err(SqlError::Categorical(f.name.clone()));
    }
    let missing = card.points(j, Value::Missing);
    let ranged: Vec<_> = f.bins.iter().filter(|b| b.is_range()).collect();
    let mut s = format!("CASE WHEN {x} IS NULL THEN {missing}");
    for b in f.bins.iter().filter(|b| !b.special.is_empty()) {
        let values: Vec<String> = b.special.iter().map(|v| double(*v)).collect();
        let _ = write!(s, " WHEN {x} IN ({}) THEN {}", values.join(", "), b.points);
    }
    for b in &ranged[..ranged.len().saturating_sub(1)] {
        let upper = b.upper.unwrap_or(f64::INFINITY);
        let _ = write!(s, " WHEN {x} < {} THEN {}", double(upper), b.points);
    }
    let last = ranged.last().map(|b| b.points).unwrap_or(missing);
    let _ = write!(s, " ELSE {last} END");
    Ok(s)
}

/// The whole rating as one SQL query, for `dialect`.
pub fn rating_sql(
    card: &Scorecard,
    as_of: NaiveDate,
    dialect: Dialect,
    shard: Option<BuyerShard>,
) -> Result<String, SqlError> {
    let t = date_micros(as_of);
    let model = card.model();
    let n = model.features.len();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "-- fastrefund rating, model {version}, as of {as_of}, for {dialect:?}
-- Written by `fastrefund export-sql`. Bind orders, returns, disputes and buyers to the
-- contract's tables (an empty buyers table when there is none). The result has the
-- columns of ratings.parquet. Features are exact (integer cents and microseconds,
-- category norms in integer billionths), so every engine gives the same stars.",
        version = card.version()
    );
    s.push_str("WITH\n");
    if let Some(BuyerShard { k, n }) = shard {
        let _ = writeln!(
            s,
            "-- Buyer shard {k}/{n}: the buyers with buyer_id % {n} = {k} only (the category norms\n-- still come from every buyer), and the {n} shards together rate every buyer once."
        );
    }
    s.push_str(&base_sql(dialect, t, shard, &model.category_norms));
    s.push_str(",\nfeatures AS (\n  SELECT buyer_id");
    for (j, f) in model.features.iter().enumerate() {
        let def =
            feature_sql(&f.name, t).ok_or_else(|| SqlError::UnknownFeature(f.name.clone()))?;
        let _ = write!(s, ",\n         {def} AS x{j}");
    }
    s.push_str("\n  FROM base\n),\npoints AS (\n  SELECT buyer_id");
    for j in 0..n {
        let _ = write!(s, ",\n         x{j} IS NULL AS m{j}");
        let _ = write!(
            s,
            ",\n         {} AS p{j}",
            points_sql(card, j, &format!("x{j}"))?
        );
    }
    s.push_str("\n  FROM features\n),\nlosses AS (\n  SELECT buyer_id");
    let score = (0..n)
        .map(|j| format!("p{j}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let volume: Vec<String> = (0..n)
        .filter(|j| card.is_volume(*j))
        .map(|j| format!("{} - p{j}", card.best_points(j)))
        .collect();
    let score = match card.floor_score() {
        // The volume floor (see `fastrefund_core::scoring`).
        Some(f) if !volume.is_empty() => format!(
            "CASE WHEN {score} + {} >= {f} THEN GREATEST({score}, {f}) ELSE {score} END",
            volume.join(" + ")
        ),
        _ => score,
    };
    let _ = write!(s, ",\n         {score} AS score");
    for j in 0..n {
        let _ = write!(
            s,
            ",\n         m{j}, {} - p{j} AS l{j}",
            card.best_points(j)
        );
    }
    s.push_str("\n  FROM points\n),\nranked AS (\n  SELECT *");
    // Feature j's place among the reasons: the features that cost more, or as much and
    // come first in the model, go before it.
    for j in 0..n {
        let before: Vec<String> = (0..n)
            .filter(|k| *k != j)
            .map(|k| {
                let cond = if k < j {
                    format!("l{k} >= l{j}")
                } else {
                    format!("l{k} > l{j}")
                };
                format!("CASE WHEN {cond} THEN 1 ELSE 0 END")
            })
            .collect();
        let rank = if before.is_empty() {
            "0".to_string()
        } else {
            before.join(" + ")
        };
        let _ = write!(s, ",\n         {rank} AS r{j}");
    }
    s.push_str("\n  FROM losses\n)\n");
    let cut = &model.stars.min_score;
    let star = cut
        .iter()
        .map(|c| format!("CASE WHEN score >= {c} THEN 1 ELSE 0 END"))
        .collect::<Vec<_>>()
        .join(" + ");
    let _ = write!(
        s,
        "SELECT buyer_id,\n       1 + {star} AS star,\n       score"
    );
    for k in 0..MAX_REASONS {
        let mut case = String::from("CASE");
        for j in 0..n {
            let code = &card.reason(j).code;
            let _ = write!(
                case,
                " WHEN r{j} = {k} AND l{j} > 0 THEN CASE WHEN m{j} THEN {} ELSE {} END",
                text(&format!("{code}{MISSING_SUFFIX}")),
                text(code)
            );
        }
        case.push_str(" END");
        let _ = write!(s, ",\n       {case} AS reason_{}", k + 1);
    }
    let _ = write!(
        s,
        ",\n       DATE {} AS as_of,\n       {} AS model_version\nFROM ranked\nORDER BY buyer_id;\n",
        text(&as_of.to_string()),
        text(card.version())
    );
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FEATURES;

    #[test]
    fn every_buyer_feature_has_a_sql_definition() {
        for f in FEATURES {
            assert!(feature_sql(f.name, 0).is_some(), "{} has no SQL", f.name);
        }
    }

    #[test]
    fn special_values_are_matched_before_the_ranges() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/scorecard-2026-01-01-2693c63a/model.json"
        );
        let mut m = fastrefund_core::scoring::Model::from_json(
            &std::fs::read_to_string(path).unwrap(),
            path,
        )
        .unwrap();
        let mut special = m.features[0].bins[0].clone();
        special.special = vec![-999.0, -1.0];
        special.points = 7;
        m.features[0].bins.push(special);
        let card = m.check().unwrap();
        let sql = points_sql(&card, 0, "x0").unwrap();
        let at = |p: &str| sql.find(p).unwrap_or_else(|| panic!("{p} not in {sql}"));
        assert!(at("IN (") < at(" < "), "{sql}");
        assert!(sql.contains("THEN 7"), "{sql}");
        assert_eq!(card.points(0, Value::Num(-999.0)), 7);
    }

    #[test]
    fn doubles_are_written_as_exact_double_literals() {
        for x in [0.1, 1.0 / 3.0, 86_400_000_000.0, 1e-300, 2.5] {
            let s = double(x);
            assert!(s.contains('e'), "{s} would be a decimal literal");
            assert_eq!(s.parse::<f64>().unwrap(), x);
        }
    }

    #[test]
    fn the_script_is_one_statement() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/scorecard-2026-01-01-464fcb9d/model.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let card = fastrefund_core::scoring::Model::from_json(&text, path)
            .unwrap()
            .check()
            .unwrap();
        for d in [Dialect::Spark, Dialect::Duckdb] {
            let sql = rating_sql(
                &card,
                NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
                d,
                None,
            )
            .unwrap();
            assert_eq!(sql.matches(';').count(), 1, "{d:?}");
            assert!(sql.trim_end().ends_with(';'));
        }
    }
}
