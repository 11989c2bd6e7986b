//! The overrides file: the reasons reviewers struck from buyers' stars, for the next
//! `rate` (issue 23). A `rating` case the buyer won on a contested reason is a strike
//! ([`Strike::of`]); the service applies it at once to the snapshot in service, and
//! `rate --overrides` to the snapshot it publishes, by the same rule
//! ([`fastrefund_core::cases::corrected`]), so the star a buyer is served does not
//! change back when the next snapshot is published (docs/input-types.md, "Overrides").
//!
//! | column | type | what |
//! | --- | --- | --- |
//! | `case_id` | id | the case that struck the reason |
//! | `buyer_id` | id | whose star |
//! | `reason_code` | text | the reason struck, as the rating shows it (`…:missing` for a missing value) |
//! | `points_at_open` | integer (32-bit, signed) | the points the buyer's value of that feature earned when the case was opened |
//! | `decided_at` | time | when the reviewer decided |
//!
//! `export-cases --overrides` writes it ([`write_overrides`], from every decided case
//! of the ledger); `rate --overrides` reads it ([`read_overrides`]): every column must
//! be there and every row must have a value in each, and a bad value or a case id
//! given twice is refused naming the file, the row and the column, as the
//! decided-cases file is ([`crate::cases`]).
//!
//! **What sees the struck ratings.** After each part of the history is scored, each
//! buyer with strikes gets the corrected rating ([`Overrides::apply`]); what `rate`
//! publishes is then the struck rating: `ratings.parquet`'s `star`, `score` and
//! reasons, the manifest's star counts and score distribution, and the drift against
//! the snapshot in service (whose own `star` and `score` are the ratings after the
//! strikes it was given, so the two are alike). The `points_<feature>` columns stay
//! the points the buyer's values earned, never struck: the service strikes from them,
//! and a strike holds only while the evidence is no worse than when it was contested,
//! which it must be able to check again. The feature drift reads the feature values,
//! which a strike does not change. The challenger's shadow star is its own model's,
//! which has no reasons to strike. Training's checks (the promises to honest buyers,
//! fairness, the evaluation and `evaluate`) judge the model, so they score unstruck:
//! a strike corrects one buyer's evidence, and counting it there would credit the
//! model with a reviewer's work.

use crate::scores::Scores;
use crate::tables::{self, DataError, Kind};
use chrono::{DateTime, Utc};
use fastrefund_core::cases::{Case, Strike, corrected};
use fastrefund_core::cols::{BUYER_ID, DECIDED_AT};
use fastrefund_core::domain::BuyerId;
use fastrefund_core::scoring::{ModelError, Scorecard};
use polars::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

/// `case_id`: the case that struck the reason.
pub const CASE_ID: &str = "case_id";
/// `reason_code`: the reason struck.
pub const REASON_CODE: &str = "reason_code";
/// `points_at_open`: the points the contested value earned when the case was opened.
pub const POINTS_AT_OPEN: &str = "points_at_open";

/// The file's columns, in order.
pub const COLUMNS: [&str; 5] = [CASE_ID, BUYER_ID, REASON_CODE, POINTS_AT_OPEN, DECIDED_AT];

/// The table's name in messages.
const TABLE: &str = "overrides";

/// Every strike the `cases` make ([`Strike::of`]: the decided `rating` cases the buyer
/// won on a contested reason), by case id.
pub fn strikes_of(cases: &[Case]) -> Vec<Strike> {
    let mut s: Vec<Strike> = cases.iter().filter_map(Strike::of).collect();
    s.sort_by_key(|s| s.case_id);
    s
}

/// Why an overrides file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: the overrides must go to a .parquet or .csv file")]
    Extension { path: String },
}

fn io(path: &Path, e: impl std::fmt::Display) -> WriteError {
    WriteError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The strikes as a frame of [`COLUMNS`] (ids `u64`, points `i32`, times UTC µs).
pub fn overrides_frame(strikes: &[Strike]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(
            CASE_ID.into(),
            strikes.iter().map(|s| s.case_id).collect::<Vec<u64>>(),
        ),
        Column::new(
            BUYER_ID.into(),
            strikes.iter().map(|s| s.buyer_id.0).collect::<Vec<u64>>(),
        ),
        Column::new(
            REASON_CODE.into(),
            strikes
                .iter()
                .map(|s| s.reason_code.as_str())
                .collect::<Vec<&str>>(),
        ),
        Column::new(
            POINTS_AT_OPEN.into(),
            strikes
                .iter()
                .map(|s| s.points_at_open)
                .collect::<Vec<i32>>(),
        ),
        Series::new(
            DECIDED_AT.into(),
            strikes
                .iter()
                .map(|s| s.decided_at.timestamp_micros())
                .collect::<Vec<i64>>(),
        )
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column(),
    ])
}

/// Writes the strikes to `out` (`.parquet`, or `.csv` with RFC 3339 times),
/// atomically: a temporary file, synced, renamed into place.
pub fn write_overrides(strikes: &[Strike], out: &Path) -> Result<(), WriteError> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let df = overrides_frame(strikes).map_err(|e| io(out, e))?;
            crate::export::write_atomically(df, out).map_err(|e| io(out, e))
        }
        Some("csv") => write_csv(strikes, out).map_err(|e| io(out, e)),
        _ => Err(WriteError::Extension {
            path: out.display().to_string(),
        }),
    }
}

/// A CSV field: quoted (RFC 4180) when it holds a comma, a quote or a line break. A
/// contested reason code is any text a case accepted, not only a model's codes.
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) || s.trim() != s {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn write_csv(strikes: &[Strike], out: &Path) -> std::io::Result<()> {
    let tmp = out.with_extension("csv.tmp");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        writeln!(w, "{}", COLUMNS.join(","))?;
        for s in strikes {
            writeln!(
                w,
                "{},{},{},{},{}",
                s.case_id,
                s.buyer_id.0,
                csv_field(&s.reason_code),
                s.points_at_open,
                s.decided_at.to_rfc3339(),
            )?;
        }
        w.flush()?;
        w.get_ref().sync_all()?;
    }
    std::fs::rename(tmp, out)
}

/// The strikes of an overrides file, by buyer: what `rate --overrides` applies.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The file they were read from, for the log.
    pub source: String,
    by_buyer: HashMap<u64, Vec<Strike>>,
    strikes: usize,
}

/// What applying the overrides did over every part of a history, for the log.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// Buyers rated who had strikes.
    pub buyers_with_strikes: HashSet<u64>,
    /// Buyers whose rating a strike changed (at least one of theirs held).
    pub buyers_struck: u64,
    /// Strikes that held.
    pub strikes_held: u64,
}

impl Overrides {
    /// The strikes, grouped by buyer, each buyer's in the order they were decided.
    pub fn new(source: impl Into<String>, strikes: Vec<Strike>) -> Overrides {
        let n = strikes.len();
        let mut by_buyer: HashMap<u64, Vec<Strike>> = HashMap::new();
        for s in strikes {
            by_buyer.entry(s.buyer_id.0).or_default().push(s);
        }
        for v in by_buyer.values_mut() {
            v.sort_by_key(|s| (s.decided_at, s.case_id));
        }
        Overrides {
            source: source.into(),
            by_buyer,
            strikes: n,
        }
    }

    /// Strikes in the file.
    pub fn len(&self) -> usize {
        self.strikes
    }

    pub fn is_empty(&self) -> bool {
        self.strikes == 0
    }

    /// Buyers with strikes.
    pub fn buyers(&self) -> usize {
        self.by_buyer.len()
    }

    /// `buyer`'s strikes (none: empty).
    pub fn of(&self, buyer: BuyerId) -> &[Strike] {
        self.by_buyer.get(&buyer.0).map_or(&[], Vec::as_slice)
    }

    /// Gives every buyer of `s` who has strikes the rating
    /// [`corrected`] makes of their points (`s.points`, which stay as they are), when
    /// one holds; adds what it did to `applied`.
    pub fn apply(
        &self,
        card: &Scorecard,
        s: &mut Scores,
        applied: &mut Applied,
    ) -> Result<(), ModelError> {
        if self.by_buyer.is_empty() {
            return Ok(());
        }
        for (i, id) in s.buyer_ids.iter().enumerate() {
            let Some(strikes) = self.by_buyer.get(id) else {
                continue;
            };
            applied.buyers_with_strikes.insert(*id);
            if let Some((scored, by)) = corrected(card, &s.points.row(i), strikes)? {
                s.scored[i] = scored;
                applied.buyers_struck += 1;
                applied.strikes_held += by.len() as u64;
            }
        }
        Ok(())
    }

    /// Says in the log what the overrides did once every part is rated: strikes whose
    /// buyer was not rated, or whose evidence got worse (or whose reason the model no
    /// longer has), struck nothing.
    pub fn log(&self, applied: &Applied) {
        let not_rated = self.by_buyer.len() - applied.buyers_with_strikes.len();
        tracing::info!(
            file = %self.source,
            strikes = self.strikes,
            buyers = self.by_buyer.len(),
            buyers_struck = applied.buyers_struck,
            strikes_held = applied.strikes_held,
            "overrides applied"
        );
        if not_rated > 0 {
            tracing::warn!(
                file = %self.source,
                buyers = not_rated,
                "buyers with strikes are not in the history rated; their strikes are not applied"
            );
        }
    }
}

/// Reads an overrides file (Parquet or CSV, by extension: [`COLUMNS`]). A missing
/// column, a missing or bad value, or a case id given twice is refused naming the
/// file, the column and the row (1-based, counting data rows).
pub fn read_overrides(path: &Path) -> Result<Overrides, DataError> {
    let label = path.display().to_string();
    let mut lf = tables::scan_file(path)?;
    let schema = lf
        .collect_schema()
        .map_err(|e| tables::read_err(&label, e))?;
    for column in COLUMNS {
        if schema.get(column).is_none() {
            return Err(DataError::MissingColumn {
                file: label,
                table: TABLE,
                column,
                expected: format!(
                    "{} (written by export-cases --overrides)",
                    COLUMNS.join(", ")
                ),
            });
        }
    }
    let df = lf
        .select(COLUMNS.map(col))
        .collect()
        .map_err(|e| tables::read_err(&label, e))?;
    let series = |name: &str| {
        df.column(name)
            .map(|c| c.as_materialized_series().clone())
            .map_err(|e| tables::read_err(&label, e))
    };
    let ids = |name: &'static str| -> Result<Vec<Option<u64>>, DataError> {
        let s = tables::normalise_as(&series(name)?, name, Kind::Id, &label)?;
        Ok(s.u64()
            .map_err(|e| tables::read_err(&label, e))?
            .iter()
            .collect())
    };
    let case_ids = ids(CASE_ID)?;
    let buyer_ids = ids(BUYER_ID)?;
    let reasons = crate::cases::reason_codes(&series(REASON_CODE)?, &label)?;
    let points = points_at_open(&series(POINTS_AT_OPEN)?, &label)?;
    let decided = tables::normalise_as(&series(DECIDED_AT)?, DECIDED_AT, Kind::Time, &label)?;
    let decided: Vec<Option<i64>> = decided
        .i64()
        .map_err(|e| tables::read_err(&label, e))?
        .iter()
        .collect();

    let mut first_row: HashMap<u64, u64> = HashMap::with_capacity(df.height());
    let mut strikes = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        let bad = |column: &'static str, problem: String| DataError::BadValue {
            file: label.clone(),
            row: row as u64 + 1,
            column,
            problem,
        };
        let missing = |column| bad(column, "missing value".into());
        let case_id = case_ids[row].ok_or_else(|| missing(CASE_ID))?;
        let buyer_id = buyer_ids[row].ok_or_else(|| missing(BUYER_ID))?;
        let reason_code = reasons[row].clone().ok_or_else(|| missing(REASON_CODE))?;
        if reason_code.chars().any(char::is_control) {
            return Err(bad(
                REASON_CODE,
                format!("{reason_code:?} has a control character; a reason code is one line"),
            ));
        }
        let points_at_open = points[row].ok_or_else(|| missing(POINTS_AT_OPEN))?;
        let at = decided[row].ok_or_else(|| missing(DECIDED_AT))?;
        let decided_at = DateTime::<Utc>::from_timestamp_micros(at)
            .ok_or_else(|| bad(DECIDED_AT, format!("{at} µs is not a time chrono can hold")))?;
        if let Some(first) = first_row.insert(case_id, row as u64 + 1) {
            return Err(DataError::Duplicate {
                file: label.clone(),
                row: row as u64 + 1,
                column: CASE_ID,
                value: case_id,
                first_file: label.clone(),
                first_row: first,
            });
        }
        strikes.push(Strike {
            case_id,
            buyer_id: BuyerId(buyer_id),
            reason_code,
            points_at_open,
            decided_at,
        });
    }
    Ok(Overrides::new(label, strikes))
}

/// `points_at_open` as 32-bit integers: any integer type, or (CSV) a text of one,
/// within ±2,147,483,647; a float, even a whole one, is refused as a wrong type.
fn points_at_open(s: &Series, file: &str) -> Result<Vec<Option<i32>>, DataError> {
    let bad = |row: usize, problem: String| DataError::BadValue {
        file: file.to_string(),
        row: row as u64 + 1,
        column: POINTS_AT_OPEN,
        problem,
    };
    let dt = s.dtype();
    if dt.is_integer() {
        let fit = |row: usize, v: Option<Result<i32, String>>| {
            v.transpose()
                .map_err(|v| bad(row, format!("{v} is outside a 32-bit integer")))
        };
        let cast = |to: &DataType| s.cast(to).map_err(|e| tables::read_err(file, e));
        return if dt.is_signed_integer() {
            let wide = cast(&DataType::Int64)?;
            let ca = wide.i64().map_err(|e| tables::read_err(file, e))?;
            ca.iter()
                .enumerate()
                .map(|(row, v)| fit(row, v.map(|v| i32::try_from(v).map_err(|_| v.to_string()))))
                .collect()
        } else {
            let wide = cast(&DataType::UInt64)?;
            let ca = wide.u64().map_err(|e| tables::read_err(file, e))?;
            ca.iter()
                .enumerate()
                .map(|(row, v)| fit(row, v.map(|v| i32::try_from(v).map_err(|_| v.to_string()))))
                .collect()
        };
    }
    match dt {
        DataType::Null => Ok(vec![None; s.len()]),
        DataType::String => {
            let ca = s.str().map_err(|e| tables::read_err(file, e))?;
            ca.iter()
                .enumerate()
                .map(|(row, v)| match v.map(str::trim) {
                    None | Some("") => Ok(None),
                    Some(t) => t.parse::<i32>().map(Some).map_err(|_| {
                        bad(row, format!("{t:?} is not an integer of points (32-bit)"))
                    }),
                })
                .collect()
        }
        other => Err(DataError::WrongType {
            file: file.to_string(),
            column: POINTS_AT_OPEN,
            found: other.to_string(),
            expected: "an integer (or a text of one)",
        }),
    }
}

#[cfg(test)]
mod tests;
