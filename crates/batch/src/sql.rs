//! `export-sql`: the whole of `rate` as one SQL query, for the engines where a data team
//! keeps its history (Spark, DuckDB; Trino and BigQuery with the same text and small
//! changes, see the README).
//!
//! The query reads the contract's tables by the names `orders`, `returns`, `disputes`
//! and `buyers` (the caller binds them to Parquet files or warehouse tables; a history
//! without buyers binds an empty `buyers` table) and returns the columns of
//! `ratings.parquet`: `buyer_id, star, score, reason_1 … reason_4, as_of,
//! model_version`, then `points_<feature>` for each model feature (null: missing). It
//! applies no overrides (`rate --overrides`, [`crate::overrides`]): it has no table of
//! strikes, so its ratings are those of `rate` without them.
//!
//! Its first step reads each table in whatever types the contract
//! accepts, as data teams write them (docs/input-types.md: money as a decimal of any
//! precision, an integer, a double or a text such as "129.90"; times of any timestamp
//! unit, with or without a zone, read as UTC; enums from dictionaries or categoricals),
//! into one set of types: integer cents, integer microseconds, text. A value the
//! contract refuses stops the query with a message naming its table and column, never
//! a NULL. The branch for each type is picked by `typeof`; every branch is written so
//! that it resolves whatever the column's type (the engines check them all), and only
//! the branch of the column's type runs. The session's time zone plays no part.
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
use crate::tables::{Kind, Spec, Table};
use chrono::NaiveDate;
use fastrefund_core::scoring::{FeatureKind, MAX_REASONS, MISSING_SUFFIX, Scorecard, Value};
use fastrefund_snapshot::ratings;
use std::fmt::Write;

/// The SQL engine a script is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Spark SQL 3.4 or later (`spark-sql`, `spark.sql(…)`); Parquet nanosecond
    /// timestamps need `spark.sql.legacy.parquet.nanosAsLong=true`.
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
    /// Integer division, rounded down (both sides are non-negative here).
    fn int_div(self, a: &str, b: &str) -> String {
        match self {
            Dialect::Spark => format!("({a}) div ({b})"),
            Dialect::Duckdb => format!("({a}) // ({b})"),
        }
    }

    /// The text type, to which every type casts.
    fn text(self) -> &'static str {
        match self {
            Dialect::Spark => "STRING",
            Dialect::Duckdb => "VARCHAR",
        }
    }

    /// The unsigned 64-bit id (Spark has none: DECIMAL(20,0), as it reads UINT64 Parquet).
    fn id_type(self) -> &'static str {
        match self {
            Dialect::Spark => "DECIMAL(20,0)",
            Dialect::Duckdb => "UBIGINT",
        }
    }

    /// `x` as text, trimmed.
    fn trimmed(self, x: &str) -> String {
        format!("TRIM(CAST({x} AS {}))", self.text())
    }

    /// Stops the query with the message `msg` (an SQL text expression).
    fn fail(self, msg: &str) -> String {
        match self {
            Dialect::Spark => format!("raise_error({msg})"),
            Dialect::Duckdb => format!("error({msg})"),
        }
    }

    /// Whether the text `s` matches the regular expression `re` (no backslashes, so
    /// that it reads the same in both engines' string literals).
    fn matches(self, s: &str, re: &str) -> String {
        debug_assert!(!re.contains('\\'));
        match self {
            Dialect::Spark => format!("({s} RLIKE {})", text(re)),
            Dialect::Duckdb => format!("regexp_matches({s}, {})", text(re)),
        }
    }

    /// Whether the column `x` has one of the engine's types of `group`: its `typeof`
    /// is one of the names, or matches one of the `LIKE` patterns (those with a `%`).
    fn is_type(self, x: &str, group: TypeGroup) -> String {
        let names: &[&str] = match (self, group) {
            (Dialect::Duckdb, TypeGroup::Integer) => &[
                "TINYINT",
                "SMALLINT",
                "INTEGER",
                "BIGINT",
                "HUGEINT",
                "UTINYINT",
                "USMALLINT",
                "UINTEGER",
                "UBIGINT",
                "UHUGEINT",
            ],
            (Dialect::Spark, TypeGroup::Integer) => &["tinyint", "smallint", "int", "bigint"],
            (Dialect::Duckdb, TypeGroup::Text) => &["VARCHAR", "ENUM(%"],
            (Dialect::Spark, TypeGroup::Text) => &["string", "varchar(%", "char(%"],
            (Dialect::Duckdb, TypeGroup::Decimal) => &["DECIMAL(%"],
            (Dialect::Spark, TypeGroup::Decimal) => &["decimal(%"],
            // Spark reads Parquet UINT64 ids as DECIMAL(20,0).
            (Dialect::Duckdb, TypeGroup::WholeDecimal) => &["DECIMAL(%,0)"],
            (Dialect::Spark, TypeGroup::WholeDecimal) => &["decimal(%,0)"],
            (Dialect::Duckdb, TypeGroup::CentsDecimal) => {
                &["DECIMAL(%,0)", "DECIMAL(%,1)", "DECIMAL(%,2)"]
            }
            (Dialect::Spark, TypeGroup::CentsDecimal) => {
                &["decimal(%,0)", "decimal(%,1)", "decimal(%,2)"]
            }
            (Dialect::Duckdb, TypeGroup::Double) => &["DOUBLE"],
            (Dialect::Spark, TypeGroup::Double) => &["double"],
            (Dialect::Duckdb, TypeGroup::Boolean) => &["BOOLEAN"],
            (Dialect::Spark, TypeGroup::Boolean) => &["boolean"],
        };
        let exact: Vec<String> = names
            .iter()
            .filter(|n| !n.contains('%'))
            .map(|n| text(n))
            .collect();
        let mut any = Vec::new();
        if !exact.is_empty() {
            any.push(format!("typeof({x}) IN ({})", exact.join(", ")));
        }
        for n in names.iter().filter(|n| n.contains('%')) {
            any.push(format!("typeof({x}) LIKE {}", text(n)));
        }
        format!("({})", any.join(" OR "))
    }

    /// `ns` (an integer expression) in whole microseconds, rounded down.
    fn ns_to_us(self, ns: &str) -> String {
        match self {
            Dialect::Spark => format!("((({ns}) - pmod({ns}, 1000)) div 1000)"),
            Dialect::Duckdb => format!("((({ns}) - ((({ns}) % 1000) + 1000) % 1000) // 1000)"),
        }
    }

    /// Microseconds since the epoch of a text timestamp `s` (trimmed, not empty): with a
    /// zone or offset, that instant; without one (a date, or a date and time), read as
    /// UTC. NULL if it is no timestamp.
    fn text_micros(self, s: &str) -> String {
        let zoned = self.matches(
            s,
            "[0-9]:[0-9]{2}([.][0-9]*)?[ ]*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$",
        );
        match self {
            Dialect::Spark => format!(
                "CASE WHEN {zoned} THEN unix_micros(try_cast({s} AS TIMESTAMP)) \
                 ELSE timestampdiff(MICROSECOND, TIMESTAMP_NTZ '1970-01-01 00:00:00', try_cast({s} AS TIMESTAMP_NTZ)) END"
            ),
            // Text to TIMESTAMPTZ drops the digits past the microsecond (rounds down) and
            // applies the offset; TIMESTAMP_NS keeps the nanoseconds of a naive text.
            Dialect::Duckdb => format!(
                "CASE WHEN {zoned} THEN epoch_us(TRY_CAST({s} AS TIMESTAMPTZ)) ELSE {} END",
                self.ns_to_us(&format!("epoch_ns(TRY_CAST({s} AS TIMESTAMP_NS))")),
            ),
        }
    }

    /// Microseconds since the epoch of a time column `x` of any timestamp type the
    /// engine reads from Parquet or CSV (a type without a zone is read as UTC). NULL
    /// for a value that is no timestamp; the query stops on a column of another type.
    /// Every branch resolves whatever the column's type, and only the branch of its
    /// type runs.
    fn micros(self, x: &str, label: &str) -> String {
        let s = self.trimmed(x);
        let wrong = self.fail(&format!(
            "{} || typeof({x}) || ' (expected a UTC timestamp)'",
            text(&format!("{label} has type "))
        ));
        match self {
            Dialect::Spark => format!(
                "CASE typeof({x}) \
                 WHEN 'timestamp' THEN unix_micros(try_cast({x} AS TIMESTAMP)) \
                 WHEN 'bigint' THEN CASE WHEN {v} >= 100000000000000000 THEN {ns} ELSE {not_ns} END \
                 WHEN 'timestamp_ntz' THEN {txt} WHEN 'date' THEN {txt} WHEN 'string' THEN {txt} \
                 ELSE {wrong} END",
                // Parquet nanosecond timestamps, read as nanoseconds since the epoch by
                // spark.sql.legacy.parquet.nanosAsLong (the contract has no integer times).
                // Seconds, milliseconds or microseconds since the epoch would be read as
                // nanoseconds of 1970: a value before 1973-03-03 (1e17 ns) is refused.
                // (The cast through text resolves whatever the column's type.)
                v = "try_cast(CAST({x} AS STRING) AS BIGINT)".replace("{x}", x),
                ns = self.ns_to_us(&format!("try_cast(CAST({x} AS STRING) AS BIGINT)")),
                not_ns = self.fail(&format!(
                    "{} || CAST({x} AS STRING) || {}",
                    text(&format!("{label}: the integer ")),
                    text(
                        " is not the nanoseconds since 1970 of a timestamp after 1973 (an integer time column is read as a Parquet nanosecond timestamp, spark.sql.legacy.parquet.nanosAsLong)"
                    )
                )),
                txt = self.text_micros(&s),
            ),
            // DuckDB casts nanoseconds to microseconds by rounding, where `rate` rounds
            // down: nanosecond types go through epoch_ns. DuckDB 1.x has no type
            // TIMESTAMPTZ_NS to name, so that one goes through its text (with the
            // session's offset and every digit), which TIMESTAMPTZ reads rounding down.
            Dialect::Duckdb => format!(
                "CASE typeof({x}) \
                 WHEN 'TIMESTAMP WITH TIME ZONE' THEN epoch_us(TRY_CAST({x} AS TIMESTAMPTZ)) \
                 WHEN 'TIMESTAMP' THEN epoch_us(TRY_CAST({x} AS TIMESTAMP)) \
                 WHEN 'TIMESTAMP_MS' THEN epoch_us(TRY_CAST({x} AS TIMESTAMP)) \
                 WHEN 'TIMESTAMP_S' THEN epoch_us(TRY_CAST({x} AS TIMESTAMP)) \
                 WHEN 'DATE' THEN epoch_us(TRY_CAST({x} AS TIMESTAMP)) \
                 WHEN 'TIMESTAMPTZ_NS' THEN epoch_us(TRY_CAST(CAST({x} AS VARCHAR) AS TIMESTAMPTZ)) \
                 WHEN 'TIMESTAMP_NS' THEN {ns} \
                 WHEN 'VARCHAR' THEN {txt} \
                 ELSE {wrong} END",
                ns = self.ns_to_us(&format!("epoch_ns(TRY_CAST({x} AS TIMESTAMP_NS))")),
                txt = self.text_micros(&s),
            ),
        }
    }
}

/// Families of engine types, for [`Dialect::is_type`].
#[derive(Debug, Clone, Copy)]
enum TypeGroup {
    Integer,
    Text,
    Decimal,
    WholeDecimal,
    /// Decimals of at most 2 places: every value is whole cents.
    CentsDecimal,
    Double,
    Boolean,
}

/// The name a contract column has after the normalising step: times become `…_us`
/// (microseconds), the amount `cents`; the others keep their names.
fn normalised_name(spec: &Spec) -> String {
    match spec.kind {
        Kind::Time => format!("{}_us", spec.name.trim_end_matches("_at")),
        Kind::Money => "cents".to_string(),
        _ => spec.name.to_string(),
    }
}

/// The normalised value of one contract column of `table`, from whatever type the data
/// team wrote it in; a value the contract refuses stops the query with a message that
/// names the table and column (and the value).
fn normalised_sql(d: Dialect, table: Table, spec: &Spec) -> String {
    let x = spec.name;
    let label = format!("{}.{}", table.name(), spec.name);
    let s = d.trimmed(x);
    // `label: "value" problem`
    let says = |problem: &str| {
        d.fail(&format!(
            "{} || {s} || {}",
            text(&format!("{label}: \"")),
            text(&format!("\" {problem}"))
        ))
    };
    let wrong_type = |expected: &str| {
        d.fail(&format!(
            "{} || typeof({x}) || {}",
            text(&format!("{label} has type ")),
            text(&format!(" (expected {expected})"))
        ))
    };
    let missing = if spec.nullable {
        "NULL".to_string()
    } else {
        d.fail(&text(&format!("{label}: missing value")))
    };
    let int = d.is_type(x, TypeGroup::Integer);
    let txt = d.is_type(x, TypeGroup::Text);
    match spec.kind {
        Kind::Id => {
            let v = format!("TRY_CAST({x} AS {})", d.id_type());
            let in_range = match d {
                Dialect::Spark => format!("{v} >= 0 AND {v} <= 18446744073709551615"),
                Dialect::Duckdb => format!("{v} IS NOT NULL"),
            };
            format!(
                "CASE WHEN {x} IS NULL THEN {missing} \
                 WHEN NOT ({int} OR {whole} OR {txt}) THEN {wrong} \
                 WHEN {txt} AND NOT {plain} THEN {not_id} \
                 WHEN {in_range} THEN {v} \
                 ELSE {not_id} END",
                whole = d.is_type(x, TypeGroup::WholeDecimal),
                wrong = wrong_type("an unsigned integer"),
                plain = d.matches(&s, "^[+]?[0-9]+$"),
                not_id = says("is not an unsigned 64-bit integer id"),
            )
        }
        Kind::Money => {
            // Integers and decimals of at most 2 places are whole cents: DECIMAL(15,2)
            // holds every amount below 1e13, and its cents fit in 64 bits.
            let whole = format!("TRY_CAST({x} AS DECIMAL(15,2))");
            // The others exact in DECIMAL(38,8): a value that rounds to whole cents
            // differently is refused (a double that is whole cents to 1e-8 passes).
            let fine = format!("TRY_CAST({x} AS DECIMAL(38,8))");
            let cents = format!("TRY_CAST({x} AS DECIMAL(38,2))");
            format!(
                "CASE WHEN {x} IS NULL THEN {missing} \
                 WHEN NOT ({int} OR {txt} OR {dec} OR {dbl}) THEN {wrong} \
                 WHEN {int} OR {dec2} THEN \
                   CASE WHEN {whole} < 0 THEN {negative} \
                   WHEN {whole} IS NULL OR {whole} >= 1000000000000 THEN {large} \
                   ELSE CAST({whole} * 100 AS BIGINT) END \
                 WHEN {txt} AND NOT {plain} THEN {nan} \
                 WHEN {fine} IS NULL THEN {nan} \
                 WHEN {fine} < 0 THEN {negative} \
                 WHEN {fine} <> {cents} THEN {places} \
                 WHEN {cents} >= 1000000000000 THEN {large} \
                 ELSE CAST({cents} * 100 AS BIGINT) END",
                dec = d.is_type(x, TypeGroup::Decimal),
                dbl = d.is_type(x, TypeGroup::Double),
                dec2 = d.is_type(x, TypeGroup::CentsDecimal),
                wrong = wrong_type(
                    "a decimal, an integer, a double or a text with at most 2 decimal places"
                ),
                plain = d.matches(&s, "^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)$"),
                nan = says("is not a decimal amount such as \"129.90\""),
                negative = says("is negative"),
                places = says("has more than 2 decimal places"),
                large = says("is too large (1e12 or more)"),
            )
        }
        Kind::Time => {
            let empty = format!("({txt} AND {s} = '')");
            format!(
                "CASE WHEN {x} IS NULL OR {empty} THEN {missing} \
                 ELSE COALESCE({us}, {bad}) END",
                us = d.micros(x, &label),
                bad = says("is not a timestamp (RFC 3339, e.g. 2026-06-30T02:00:00Z)"),
            )
        }
        Kind::Flag => {
            let b = d.is_type(x, TypeGroup::Boolean);
            format!(
                "CASE WHEN {x} IS NULL THEN {missing} \
                 WHEN {b} THEN TRY_CAST({x} AS BOOLEAN) \
                 WHEN NOT ({int} OR {txt}) THEN {wrong} \
                 WHEN {s} IN ('true', 'True', 'TRUE', '1') THEN TRUE \
                 WHEN {s} IN ('false', 'False', 'FALSE', '0') THEN FALSE \
                 ELSE {bad} END",
                wrong = wrong_type("a boolean"),
                bad = says("is not true or false"),
            )
        }
        Kind::Text => format!(
            "CASE WHEN {x} IS NULL THEN {missing} \
             WHEN NOT {txt} THEN {wrong} \
             WHEN {code} THEN CAST({x} AS {t}) \
             ELSE {bad} END",
            code = d.matches(&format!("CAST({x} AS {})", d.text()), "^[a-z0-9_]{1,64}$"),
            t = d.text(),
            wrong = wrong_type("a string"),
            bad = says("is not a category code (lowercase a-z, 0-9 and _)"),
        ),
        Kind::Enum(values) => format!(
            "CASE WHEN {x} IS NULL THEN {missing} \
             WHEN NOT {txt} THEN {wrong} \
             WHEN CAST({x} AS {t}) IN ({list}) THEN CAST({x} AS {t}) \
             ELSE {bad} END",
            t = d.text(),
            list = values
                .iter()
                .map(|v| text(v))
                .collect::<Vec<_>>()
                .join(", "),
            wrong = wrong_type("a string"),
            bad = says(&format!("is not one of {}", values.join(", "))),
        ),
    }
}

/// The CTE name of a contract table after the normalising step.
fn normalised_table(table: Table) -> String {
    format!("{}_in", table.name())
}

/// The normalising step: one CTE per contract table (`orders_in` …) with every column
/// of the contract in one set of types, whatever types the data team wrote: ids the
/// unsigned 64-bit integer, money exact integer cents (`cents`), times integer
/// microseconds since the epoch in UTC (`…_us`), enums and categories text (from a
/// dictionary or categorical column too), flags booleans. The rest of the query reads
/// only these.
fn inputs_sql(d: Dialect) -> String {
    let mut parts = Vec::new();
    for table in [
        Table::Orders,
        Table::Returns,
        Table::Disputes,
        Table::Buyers,
    ] {
        let cols: Vec<String> = table
            .specs()
            .iter()
            .map(|spec| {
                format!(
                    "    {} AS {}",
                    normalised_sql(d, table, spec),
                    normalised_name(spec)
                )
            })
            .collect();
        parts.push(format!(
            "{} AS (\n  SELECT\n{}\n  FROM {}\n)",
            normalised_table(table),
            cols.join(",\n"),
            table.name()
        ));
    }
    format!(
        "-- The contract's tables as written (any type the contract accepts), in one set of\n\
         -- types: ids unsigned integers, money integer cents, times integer microseconds\n\
         -- (UTC), enums text. A value the contract refuses stops the query, naming its column.\n{}",
        parts.join(",\n")
    )
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
  SELECT order_id, buyer_id, category, status, cents, ordered_us, delivered_us
  FROM orders_in
),
-- returns asked before T, with the outcome as known at T (merchant-fault ones never count)
rk AS (
  SELECT r.buyer_id, r.order_id, r.reason, r.advanced, r.cents, r.requested_us,
         r.shipped_us, r.outcome_us, r.known, o.delivered_us
  FROM (
    SELECT buyer_id, order_id, reason, advanced, cents, requested_us, shipped_us, outcome_us,
           CASE WHEN outcome_us < {t} THEN outcome ELSE 'pending' END AS known
    FROM returns_in
    WHERE requested_us < {t}
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
  FROM disputes_in
  WHERE opened_us < {t}{part}
  GROUP BY buyer_id
),
-- buyers known at T: registered before T, or with an order before T
population AS (
  SELECT buyer_id FROM buyers_in WHERE registered_us < {t}{part}
  UNION
  SELECT buyer_id FROM o WHERE ordered_us < {t}{part}
),
base AS (
  SELECT p.buyer_id, b.registered_us, ob.first_order_us,
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
  LEFT JOIN buyers_in b ON p.buyer_id = b.buyer_id
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
        // A case a reviewer decided for the buyer, exported as a dispute, never counts.
        opened = count_if(&format!(
            "{} AND NOT (dispute_id >= {} AND COALESCE(decision = 'buyer_won', FALSE))",
            w("opened_us", 365),
            fastrefund_core::cases::CASE_DISPUTE_ID_BASE
        )),
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

/// The whole rating as one SQL query, for `dialect`. With `overrides`, the query also
/// reads a table `overrides` (the file `export-cases --overrides` writes: `buyer_id`,
/// `reason_code`, `points_at_open`, …) and strikes those reasons as `rate --overrides`
/// does ([`fastrefund_core::scoring::Scorecard::strike`]): a struck feature earns its
/// best points, not missing, while its points are at least `points_at_open`. The
/// `points_<feature>` columns stay the unstruck points.
pub fn rating_sql(
    card: &Scorecard,
    as_of: NaiveDate,
    dialect: Dialect,
    shard: Option<BuyerShard>,
    overrides: bool,
) -> Result<String, SqlError> {
    let t = date_micros(as_of);
    let model = card.model();
    let n = model.features.len();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "-- fastrefund rating, model {version}, as of {as_of}, for {dialect:?}
-- Written by `fastrefund export-sql`. Bind orders, returns, disputes and buyers to the
-- contract's tables (an empty buyers table when there is none), in any of the types the
-- contract accepts (docs/input-types.md): money as a decimal, an integer, a double or a
-- text such as '129.90', times as timestamps of any unit, with or without a zone (read
-- as UTC), or as text, enums as text, dictionaries or categoricals. A value the contract
-- refuses stops the query with a message naming its column. The result has the
-- columns of ratings.parquet. Features are exact (integer cents and microseconds,
-- category norms in integer billionths), so every engine gives the same stars.{settings}",
        version = card.version(),
        settings = match dialect {
            Dialect::Spark =>
                "
-- Spark 3.4 or later. Parquet nanosecond timestamps (pandas' default) need
-- spark.sql.legacy.parquet.nanosAsLong=true, which reads them as nanoseconds since the
-- epoch (Spark refuses such files without it). No other setting is needed (the session
-- time zone does not matter).",
            Dialect::Duckdb =>
                "
-- DuckDB 1.1 or later. No setting is needed (the session time zone does not matter).",
        }
    );
    s.push_str("WITH\n");
    if let Some(BuyerShard { k, n }) = shard {
        let _ = writeln!(
            s,
            "-- Buyer shard {k}/{n}: the buyers with buyer_id % {n} = {k} only (the category norms\n-- still come from every buyer), and the {n} shards together rate every buyer once."
        );
    }
    s.push_str(&inputs_sql(dialect));
    s.push_str(",\n");
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
    s.push_str("\n  FROM features\n),\n");
    // The points scored: with overrides, each struck feature at its best (`sp`, `sm`);
    // `p` and `m` stay the points as rated, for the points columns.
    let (sp, sm) = if overrides {
        s.push_str(
            "-- The reasons struck by rating cases the buyers won (export-cases --overrides),\n\
             -- one row a case: a feature's code, or its code with ':missing'.\n\
             strikes AS (\n  SELECT CAST(buyer_id AS DECIMAL(20, 0)) AS buyer_id",
        );
        // Per buyer and feature, the fewest points at opening among its strikes: a
        // strike holds when the points are at least that.
        for j in 0..n {
            let code = &card.reason(j).code;
            let _ = write!(
                s,
                ",\n         MIN(CASE WHEN CAST(reason_code AS STRING) IN ({}, {}) THEN CAST(points_at_open AS BIGINT) END) AS a{j}",
                text(code),
                text(&format!("{code}{MISSING_SUFFIX}"))
            );
        }
        s.push_str("\n  FROM overrides\n  GROUP BY CAST(buyer_id AS DECIMAL(20, 0))\n),\nstruck AS (\n  SELECT p.*");
        for j in 0..n {
            let _ = write!(s, ",\n         COALESCE(p.p{j} >= o.a{j}, FALSE) AS k{j}");
        }
        s.push_str(
            "\n  FROM points p\n  LEFT JOIN strikes o ON CAST(p.buyer_id AS DECIMAL(20, 0)) = o.buyer_id\n),\nscored AS (\n  SELECT buyer_id",
        );
        for j in 0..n {
            let _ = write!(
                s,
                ",\n         m{j}, p{j}, CASE WHEN k{j} THEN {} ELSE p{j} END AS sp{j}, m{j} AND NOT k{j} AS sm{j}",
                card.best_points(j)
            );
        }
        s.push_str("\n  FROM struck\n),\n");
        ("sp", "sm")
    } else {
        ("p", "m")
    };
    let scored_from = if overrides { "scored" } else { "points" };
    s.push_str("losses AS (\n  SELECT buyer_id");
    let score = (0..n)
        .map(|j| format!("{sp}{j}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let volume: Vec<String> = (0..n)
        .filter(|j| card.is_volume(*j))
        .map(|j| format!("{} - {sp}{j}", card.best_points(j)))
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
            ",\n         m{j}, p{j}, {sm}{j} AS n{j}, {} - {sp}{j} AS l{j}",
            card.best_points(j)
        );
    }
    let _ = write!(s, "\n  FROM {scored_from}\n),\nranked AS (\n  SELECT *");
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
    // The columns of ratings.parquet, by the names the snapshot's reader knows them
    // (`score` is already the score's name in `ranked`).
    let _ = write!(
        s,
        "SELECT {},\n       1 + {star} AS {},\n       {}",
        ratings::BUYER_ID,
        ratings::STAR,
        ratings::SCORE
    );
    for k in 0..MAX_REASONS {
        let mut case = String::from("CASE");
        for j in 0..n {
            let code = &card.reason(j).code;
            let _ = write!(
                case,
                " WHEN r{j} = {k} AND l{j} > 0 THEN CASE WHEN n{j} THEN {} ELSE {} END",
                text(&format!("{code}{MISSING_SUFFIX}")),
                text(code)
            );
        }
        case.push_str(" END");
        let _ = write!(s, ",\n       {case} AS {}", ratings::reason_column(k + 1));
    }
    let _ = write!(
        s,
        ",\n       DATE {} AS {},\n       {} AS {}",
        text(&as_of.to_string()),
        ratings::AS_OF,
        text(card.version()),
        ratings::MODEL_VERSION,
    );
    // Each feature's points, null when its value is missing, as `rate` writes them.
    for (j, f) in model.features.iter().enumerate() {
        let _ = write!(
            s,
            ",\n       CASE WHEN m{j} THEN NULL ELSE p{j} END AS {}",
            ratings::points_column(&f.name)
        );
    }
    let _ = write!(s, "\nFROM ranked\nORDER BY {};\n", ratings::BUYER_ID);
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

    fn champion_sql(d: Dialect) -> String {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/scorecard-2026-01-01-464fcb9d/model.json"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let card = fastrefund_core::scoring::Model::from_json(&text, path)
            .unwrap()
            .check()
            .unwrap();
        rating_sql(
            &card,
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
            d,
            None,
            false,
        )
        .unwrap()
    }

    #[test]
    fn the_query_reads_each_contract_table_once_through_its_normalising_cte() {
        for d in [Dialect::Spark, Dialect::Duckdb] {
            let sql = champion_sql(d);
            for t in [
                Table::Orders,
                Table::Returns,
                Table::Disputes,
                Table::Buyers,
            ] {
                let from = format!("FROM {}\n", t.name());
                assert_eq!(sql.matches(&from).count(), 1, "{d:?} {from}");
                for spec in t.specs() {
                    // Each column is normalised, and a bad value names it.
                    let label = format!("{}.{}", t.name(), spec.name);
                    assert!(sql.contains(&label), "{d:?}: {label} not named");
                }
            }
            assert!(!sql.contains("epoch_us(ordered_at)") && !sql.contains("amount * 100"));
        }
    }

    #[test]
    fn a_bad_value_stops_the_query_rather_than_becoming_null() {
        let spec = Table::Returns
            .specs()
            .iter()
            .find(|s| s.name == "amount")
            .unwrap();
        for (d, stop) in [
            (Dialect::Duckdb, "error("),
            (Dialect::Spark, "raise_error("),
        ] {
            let sql = normalised_sql(d, Table::Returns, spec);
            assert!(
                sql.contains(&format!("{stop}'returns.amount: \"' || ")),
                "{d:?}: {sql}"
            );
            assert!(sql.contains("is not a decimal amount"), "{sql}");
            assert!(sql.contains("has more than 2 decimal places"), "{sql}");
        }
    }

    #[test]
    fn the_spark_header_names_the_setting_for_nanosecond_timestamps() {
        let header = |d| {
            champion_sql(d)
                .lines()
                .take_while(|l| l.starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(header(Dialect::Spark).contains("spark.sql.legacy.parquet.nanosAsLong=true"));
        assert!(header(Dialect::Duckdb).contains("No setting is needed"));
    }

    #[test]
    fn regular_expressions_have_no_backslash_so_both_engines_read_them_alike() {
        for d in [Dialect::Spark, Dialect::Duckdb] {
            assert!(!inputs_sql(d).contains('\\'), "{d:?}");
        }
    }

    #[test]
    fn the_result_ends_with_each_features_points_in_model_order() {
        let names = [
            "account_age_days",
            "returns_365",
            "relative_return_rate_365",
            "return_value_share_365",
            "days_to_ship_mean_365",
            "days_since_last_bad",
            "days_to_request_mean_365",
        ];
        for d in [Dialect::Spark, Dialect::Duckdb] {
            let sql = champion_sql(d);
            let mut at = sql.find("AS model_version").unwrap();
            for (j, name) in names.iter().enumerate() {
                let col = format!("CASE WHEN m{j} THEN NULL ELSE p{j} END AS points_{name}");
                let here = sql.find(&col).unwrap_or_else(|| panic!("{d:?}: no {col}"));
                assert!(here > at, "{d:?}: {name} out of order");
                at = here;
            }
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
        for (d, overrides) in [Dialect::Spark, Dialect::Duckdb]
            .into_iter()
            .flat_map(|d| [(d, false), (d, true)])
        {
            let sql = rating_sql(
                &card,
                NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
                d,
                None,
                overrides,
            )
            .unwrap();
            assert_eq!(sql.matches(';').count(), 1, "{d:?}");
            assert_eq!(sql.contains("FROM overrides"), overrides);
            assert!(sql.trim_end().ends_with(';'));
        }
    }
}
