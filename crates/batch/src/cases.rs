//! The decided-cases file: decided cases in the contract's `disputes` shape (its seven
//! columns first, so the next `rate` reads the file as it reads disputes), followed by
//! what the overturn rates need (docs/input-types.md, "Decided cases"):
//!
//! | column | type | what |
//! | --- | --- | --- |
//! | `case_kind` | text, nullable | `outcome`, `rating` or `decision` |
//! | `return_id` | id, nullable | the return the case is about |
//! | `star_at_open` | 1–5, nullable | the buyer's star when the case was opened |
//! | `reason_code` | text, nullable | the reason a `rating` case contested; for any other case, the first reason of that star (`reason_1`) |
//! | `merchant_at_fault` | bool, nullable | the known truth, in a simulated file only |
//!
//! `export-cases` and `simulate --contested-out` write it ([`write_cases`]); `train`,
//! `evaluate` and `rate` read it with `--cases` ([`read_decided_cases`]) for the overturn
//! rates (`fastrefund_train::overturn`). A file without `star_at_open` or `reason_code`
//! (a bare `disputes` file) is refused naming the file and the column.

use crate::tables::{self, DataError, Table};
use fastrefund_core::cases::{Case, DisputeRow, Verdict};
use fastrefund_core::cols::*;
use fastrefund_core::domain::Star;
use fastrefund_snapshot::Ratings;
use fastrefund_train::overturn::{DecidedCase, Overturns};
use polars::prelude::*;
use std::io::Write;
use std::path::Path;

/// `case_kind`: what the case contested.
pub const CASE_KIND: &str = "case_kind";
/// `star_at_open`: the buyer's star (1–5) when the case was opened.
pub const STAR_AT_OPEN: &str = "star_at_open";
/// `reason_code`: the reason a rating case contested, or the first reason code of that
/// star.
pub const REASON_CODE: &str = "reason_code";
/// `merchant_at_fault`: the known truth of a simulated case (was the contested loss
/// really the merchant's fault?); empty in an export from a ledger.
pub const MERCHANT_AT_FAULT: &str = "merchant_at_fault";

/// The columns after the `disputes` ones, in order.
pub const EXTRA_COLUMNS: [&str; 5] = [
    CASE_KIND,
    RETURN_ID,
    STAR_AT_OPEN,
    REASON_CODE,
    MERCHANT_AT_FAULT,
];

/// One decided case, as the file has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRow {
    /// The case in the `disputes` shape.
    pub dispute: DisputeRow,
    /// `outcome`, `rating` or `decision`.
    pub case_kind: &'static str,
    pub return_id: Option<u64>,
    pub star_at_open: Option<Star>,
    pub reason_code: Option<String>,
    pub merchant_at_fault: Option<bool>,
}

impl CaseRow {
    /// A decided case as a row, with the buyer's star and first reason code in
    /// `at_open` (the snapshot in service when it was opened, if known); `None` while
    /// undecided, or for a case about no order (not a dispute: [`DisputeRow::of`]).
    pub fn of(case: &Case, at_open: Option<&Ratings>) -> Option<CaseRow> {
        let dispute = DisputeRow::of(case)?;
        let rating = at_open.and_then(|r| r.get(case.buyer_id).map(|b| (r, b)));
        Some(CaseRow {
            dispute,
            case_kind: case.kind.as_str(),
            return_id: case.return_id.map(|r| r.0),
            star_at_open: rating.map(|(_, b)| b.star),
            // The reason a rating case contested; otherwise the star's first reason.
            reason_code: case
                .contested
                .as_ref()
                .map(|c| c.reason_code.clone())
                .or_else(|| rating.and_then(|(r, b)| b.reasons[0].map(|x| x.code(r.model())))),
            merchant_at_fault: None,
        })
    }
}

/// Why a decided-cases file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}: the decided cases must go to a .parquet or .csv file")]
    Extension { path: String },
}

/// The rows as a frame: the `disputes` columns, then [`EXTRA_COLUMNS`].
pub fn cases_frame(rows: &[CaseRow]) -> PolarsResult<DataFrame> {
    let disputes: Vec<DisputeRow> = rows.iter().map(|r| r.dispute.clone()).collect();
    let mut df = crate::export::disputes_frame(&disputes)?;
    let extra = [
        Column::new(
            CASE_KIND.into(),
            rows.iter().map(|r| r.case_kind).collect::<Vec<&str>>(),
        ),
        Column::new(
            RETURN_ID.into(),
            rows.iter()
                .map(|r| r.return_id)
                .collect::<Vec<Option<u64>>>(),
        ),
        Column::new(
            STAR_AT_OPEN.into(),
            rows.iter()
                .map(|r| r.star_at_open.map(Star::get))
                .collect::<Vec<Option<u8>>>(),
        ),
        Column::new(
            REASON_CODE.into(),
            rows.iter()
                .map(|r| r.reason_code.as_deref())
                .collect::<Vec<Option<&str>>>(),
        ),
        Column::new(
            MERCHANT_AT_FAULT.into(),
            rows.iter()
                .map(|r| r.merchant_at_fault)
                .collect::<Vec<Option<bool>>>(),
        ),
    ];
    for c in extra {
        df.with_column(c)?;
    }
    Ok(df)
}

fn io(path: &Path, e: impl std::fmt::Display) -> WriteError {
    WriteError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes the rows to `out` (`.parquet`, or `.csv` with RFC 3339 times and empty
/// fields for nulls), atomically: a temporary file, synced, renamed into place.
pub fn write_cases(rows: &[CaseRow], out: &Path) -> Result<(), WriteError> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("parquet") => {
            let df = cases_frame(rows).map_err(|e| io(out, e))?;
            crate::export::write_atomically(df, out).map_err(|e| io(out, e))
        }
        Some("csv") => write_csv(rows, out).map_err(|e| io(out, e)),
        _ => Err(WriteError::Extension {
            path: out.display().to_string(),
        }),
    }
}

fn write_csv(rows: &[CaseRow], out: &Path) -> std::io::Result<()> {
    let tmp = out.with_extension("csv.tmp");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        let header: Vec<&str> = Table::Disputes
            .column_names()
            .chain(EXTRA_COLUMNS)
            .collect();
        writeln!(w, "{}", header.join(","))?;
        let opt = |x: Option<String>| x.unwrap_or_default();
        for r in rows {
            let d = &r.dispute;
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                d.dispute_id,
                d.order_id.0,
                d.buyer_id.0,
                d.opened_at.to_rfc3339(),
                opt(d.decided_at.map(|t| t.to_rfc3339())),
                d.decision,
                d.fraud_flag,
                r.case_kind,
                opt(r.return_id.map(|x| x.to_string())),
                opt(r.star_at_open.map(|s| s.get().to_string())),
                // Reason codes are plain words (a-z, 0-9, _ and `:`): nothing to quote.
                r.reason_code.as_deref().unwrap_or_default(),
                opt(r.merchant_at_fault.map(|b| b.to_string())),
            )?;
        }
        w.flush()?;
        w.get_ref().sync_all()?;
    }
    std::fs::rename(tmp, out)
}

/// Reads a decided-cases file (Parquet or CSV): the `disputes` columns, checked as the
/// `disputes` table is (a missing column or a bad value names the file, column and
/// row), and `star_at_open` and `reason_code`. Rows still `open` are not decided and
/// are left out.
pub fn read_decided_cases(path: &Path) -> Result<Vec<DecidedCase>, DataError> {
    let label = path.display().to_string();
    let disputes = tables::read_part(path, Table::Disputes, None)?;
    let mut lf = tables::scan_file(path)?;
    let schema = lf
        .collect_schema()
        .map_err(|e| tables::read_err(&label, e))?;
    for column in [STAR_AT_OPEN, REASON_CODE] {
        if schema.get(column).is_none() {
            return Err(DataError::MissingColumn {
                file: label,
                table: "decided cases",
                column,
                expected: format!(
                    "the disputes columns, then {} (written by export-cases or simulate --contested-out)",
                    EXTRA_COLUMNS.join(", ")
                ),
            });
        }
    }
    let extra = lf
        .select([col(STAR_AT_OPEN), col(REASON_CODE)])
        .collect()
        .map_err(|e| tables::read_err(&label, e))?;
    let stars = tables::normalise_as(
        extra
            .column(STAR_AT_OPEN)
            .map_err(|e| tables::read_err(&label, e))?
            .as_materialized_series(),
        STAR_AT_OPEN,
        tables::Kind::Id,
        &label,
    )?;
    let reasons = reason_codes(
        extra
            .column(REASON_CODE)
            .map_err(|e| tables::read_err(&label, e))?
            .as_materialized_series(),
        &label,
    )?;
    let decisions = disputes
        .column(DECISION)
        .and_then(|c| c.str().cloned())
        .map_err(|e| tables::read_err(&label, e))?;
    let stars = stars.u64().map_err(|e| tables::read_err(&label, e))?;
    let mut out = Vec::with_capacity(disputes.height());
    for (row, (d, (s, r))) in decisions.iter().zip(stars.iter().zip(reasons)).enumerate() {
        let bad = |problem: String| DataError::BadValue {
            file: label.clone(),
            row: row as u64 + 1,
            column: STAR_AT_OPEN,
            problem,
        };
        let verdict = match d {
            Some("buyer_won") => Verdict::BuyerWon,
            Some("merchant_won") => Verdict::MerchantWon,
            Some("split") => Verdict::Split,
            // `open` (the disputes table's value for undecided): not decided yet.
            _ => continue,
        };
        let star = s
            .map(|s| {
                u8::try_from(s)
                    .ok()
                    .and_then(|s| Star::try_from(s).ok())
                    .ok_or_else(|| bad(format!("{s} is not a star from 1 to 5")))
            })
            .transpose()?;
        out.push(DecidedCase {
            verdict,
            star,
            reason: r,
        });
    }
    Ok(out)
}

/// `reason_code` as text (a column with no value at all may have the null type).
pub(crate) fn reason_codes(s: &Series, label: &str) -> Result<Vec<Option<String>>, DataError> {
    let t = match s.dtype() {
        DataType::String | DataType::Null | DataType::Categorical(_, _) | DataType::Enum(_, _) => s
            .cast(&DataType::String)
            .map_err(|e| tables::read_err(label, e))?,
        other => {
            return Err(DataError::WrongType {
                file: label.to_string(),
                column: REASON_CODE,
                found: other.to_string(),
                expected: "a string",
            });
        }
    };
    let ca = t.str().map_err(|e| tables::read_err(label, e))?;
    Ok(ca
        .iter()
        .map(|v| {
            v.map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        })
        .collect())
}

/// The overturn rates of the decided cases in `path` (`--cases`).
pub fn overturns(path: &Path) -> Result<Overturns, DataError> {
    let cases = read_decided_cases(path)?;
    Ok(Overturns::of(&path.display().to_string(), &cases))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use fastrefund_core::domain::{BuyerId, OrderId};

    fn row(id: u64, decision: &'static str, star: Option<u8>, reason: Option<&str>) -> CaseRow {
        CaseRow {
            dispute: DisputeRow {
                dispute_id: fastrefund_core::cases::CASE_DISPUTE_ID_BASE + id,
                order_id: OrderId(100 + id),
                buyer_id: BuyerId(7),
                opened_at: Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap(),
                decided_at: Some(Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap()),
                decision,
                fraud_flag: false,
            },
            case_kind: "outcome",
            return_id: Some(id),
            star_at_open: star.map(|s| Star::try_from(s).unwrap()),
            reason_code: reason.map(str::to_string),
            merchant_at_fault: None,
        }
    }

    fn rows() -> Vec<CaseRow> {
        vec![
            row(1, "buyer_won", Some(2), Some("days_since_last_bad")),
            row(2, "merchant_won", Some(2), Some("slow_ship_365:missing")),
            row(3, "split", None, None),
        ]
    }

    #[test]
    fn a_written_cases_file_reads_back_the_same_in_parquet_and_csv() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["parquet", "csv"] {
            let p = dir.path().join(format!("cases.{ext}"));
            write_cases(&rows(), &p).unwrap();
            let back = read_decided_cases(&p).unwrap();
            let want: Vec<DecidedCase> = rows()
                .into_iter()
                .map(|r| DecidedCase {
                    verdict: match r.dispute.decision {
                        "buyer_won" => Verdict::BuyerWon,
                        "split" => Verdict::Split,
                        _ => Verdict::MerchantWon,
                    },
                    star: r.star_at_open,
                    reason: r.reason_code,
                })
                .collect();
            assert_eq!(back, want, "{ext}");
            // The disputes columns come first, so the file is a disputes table too.
            let df = tables::read_part(&p, Table::Disputes, None).unwrap();
            assert_eq!(df.height(), 3, "{ext}");
        }
    }

    #[test]
    fn the_disputes_columns_come_first_then_the_extra_ones() {
        let df = cases_frame(&rows()).unwrap();
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        let want: Vec<&str> = Table::Disputes
            .column_names()
            .chain(EXTRA_COLUMNS)
            .collect();
        assert_eq!(names, want);
    }

    #[test]
    fn a_bare_disputes_file_is_refused_naming_the_file_and_the_missing_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disputes.csv");
        std::fs::write(
            &p,
            "dispute_id,order_id,buyer_id,opened_at,decided_at,decision,fraud_flag\n\
             1,4,2,2025-12-01T00:00:00Z,2025-12-10T00:00:00Z,merchant_won,true\n",
        )
        .unwrap();
        let e = read_decided_cases(&p).unwrap_err().to_string();
        assert!(
            e.contains("disputes.csv") && e.contains("`star_at_open`"),
            "{e}"
        );
        // Not the disputes shape at all: the first missing disputes column is named.
        std::fs::write(&p, "case_id,verdict\n1,buyer_won\n").unwrap();
        let e = read_decided_cases(&p).unwrap_err().to_string();
        assert!(
            e.contains("disputes.csv") && e.contains("`dispute_id`"),
            "{e}"
        );
    }

    #[test]
    fn a_star_out_of_range_or_an_unknown_decision_names_the_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cases.csv");
        write_cases(&rows(), &p).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replacen(",outcome,1,2,", ",outcome,1,6,", 1)).unwrap();
        let e = read_decided_cases(&p).unwrap_err().to_string();
        assert!(
            e.contains("cases.csv, row 1: column `star_at_open`: 6 is not a star"),
            "{e}"
        );
        std::fs::write(&p, text.replacen("buyer_won", "reversed", 1)).unwrap();
        let e = read_decided_cases(&p).unwrap_err().to_string();
        assert!(
            e.contains("cases.csv, row 1: column `decision`: unknown value \"reversed\""),
            "{e}"
        );
    }

    #[test]
    fn open_rows_are_not_decided_and_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cases.csv");
        let mut r = rows();
        r[0].dispute.decision = "open";
        r[0].dispute.decided_at = None;
        write_cases(&r, &p).unwrap();
        assert_eq!(read_decided_cases(&p).unwrap().len(), 2);
    }
}
