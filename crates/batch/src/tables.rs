//! Reading the input data contract (spec §2) from Parquet or CSV, one file or a folder
//! of files per table, and checking every table before any work is done.
//!
//! Each table is read into memory once, column by column into a normalised shape
//! (ids `u64`, money `f64` model input checked to be non-negative with at most 2
//! places, times `i64` microseconds since the epoch in UTC, enums as checked strings,
//! flags `bool`). Every problem is a [`DataError`] that names the file, the column and,
//! where it applies, the row (1-based, counting data rows; in a CSV the line is one
//! more, for the header).

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use fastrefund_core::cols;
use fastrefund_core::domain::{DisputeDecision, OrderStatus, Outcome, ReturnReason};
use polars::prelude::*;
use rayon::slice::ParallelSliceMut;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A problem with the input data; the message names the file, column and row.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "{dir}: no {table} table: expected {table}.parquet, {table}.csv or a folder {table}/ of .parquet or .csv files"
    )]
    MissingTable { dir: String, table: &'static str },
    #[error("{file}: missing column `{column}` (the {table} table needs: {expected})")]
    MissingColumn {
        file: String,
        table: &'static str,
        column: &'static str,
        expected: String,
    },
    #[error("{file}: column `{column}` has type {found}; expected {expected}")]
    WrongType {
        file: String,
        column: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{file}, row {row}: column `{column}`: {problem}")]
    BadValue {
        file: String,
        row: u64,
        column: &'static str,
        problem: String,
    },
    #[error(
        "{file}, row {row}: duplicate {column} {value} (already in {first_file}, row {first_row})"
    )]
    Duplicate {
        file: String,
        row: u64,
        column: &'static str,
        value: u64,
        first_file: String,
        first_row: u64,
    },
    #[error(
        "{file}, row {row}: {what} {id} is for order {order_id}, which is not in the orders table"
    )]
    UnknownOrder {
        file: String,
        row: u64,
        what: &'static str,
        id: u64,
        order_id: u64,
    },
    #[error(
        "{file}, row {row}: {what} {id} names buyer {buyer_id}, but order {order_id} belongs to buyer {order_buyer}"
    )]
    BuyerMismatch {
        file: String,
        row: u64,
        what: &'static str,
        id: u64,
        buyer_id: u64,
        order_id: u64,
        order_buyer: u64,
    },
    #[error("{file}: cannot read: {message}")]
    Read { file: String, message: String },
}

/// Which table of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Orders,
    Returns,
    Disputes,
    Buyers,
}

/// What a contract column holds; every reader of the contract reads a kind the same way
/// (docs/input-types.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Id,
    Money,
    Time,
    Text,
    Flag,
    Enum(&'static [&'static str]),
}

/// One column of the contract.
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) nullable: bool,
}

const fn c(name: &'static str, kind: Kind) -> Spec {
    Spec {
        name,
        kind,
        nullable: false,
    }
}

const fn n(name: &'static str, kind: Kind) -> Spec {
    Spec {
        name,
        kind,
        nullable: true,
    }
}

use Kind::*;

const ORDERS_SPECS: &[Spec] = &[
    c(cols::ORDER_ID, Id),
    c(cols::BUYER_ID, Id),
    c(cols::MERCHANT_ID, Id),
    c(cols::CATEGORY, Text),
    c(cols::AMOUNT, Money),
    c(cols::ORDERED_AT, Time),
    n(cols::DELIVERED_AT, Time),
    c(cols::STATUS, Enum(OrderStatus::NAMES)),
];

const RETURNS_SPECS: &[Spec] = &[
    c(cols::RETURN_ID, Id),
    c(cols::ORDER_ID, Id),
    c(cols::BUYER_ID, Id),
    c(cols::REQUESTED_AT, Time),
    c(cols::REASON, Enum(ReturnReason::NAMES)),
    c(cols::AMOUNT, Money),
    c(cols::INSTANT, Flag),
    c(cols::ADVANCED, Flag),
    n(cols::SHIPPED_AT, Time),
    c(cols::OUTCOME, Enum(Outcome::NAMES)),
    n(cols::OUTCOME_AT, Time),
];

const DISPUTES_SPECS: &[Spec] = &[
    c(cols::DISPUTE_ID, Id),
    c(cols::ORDER_ID, Id),
    c(cols::BUYER_ID, Id),
    c(cols::OPENED_AT, Time),
    n(cols::DECIDED_AT, Time),
    c(cols::DECISION, Enum(DisputeDecision::NAMES)),
    c(cols::FRAUD_FLAG, Flag),
];

const BUYERS_SPECS: &[Spec] = &[c(cols::BUYER_ID, Id), c(cols::REGISTERED_AT, Time)];

impl Table {
    /// The file or folder stem.
    pub fn name(self) -> &'static str {
        match self {
            Table::Orders => "orders",
            Table::Returns => "returns",
            Table::Disputes => "disputes",
            Table::Buyers => "buyers",
        }
    }

    /// The id column that must be unique.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Table::Orders => cols::ORDER_ID,
            Table::Returns => cols::RETURN_ID,
            Table::Disputes => cols::DISPUTE_ID,
            Table::Buyers => cols::BUYER_ID,
        }
    }

    /// The contract's columns of this table, in the spec's order.
    pub(crate) fn specs(self) -> &'static [Spec] {
        match self {
            Table::Orders => ORDERS_SPECS,
            Table::Returns => RETURNS_SPECS,
            Table::Disputes => DISPUTES_SPECS,
            Table::Buyers => BUYERS_SPECS,
        }
    }

    /// The contract's column names of this table, in the spec's order.
    pub fn column_names(self) -> impl Iterator<Item = &'static str> {
        self.specs().iter().map(|s| s.name)
    }

    fn column_list(self) -> String {
        self.specs()
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A checked table: the normalised frame, and where its rows came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub df: DataFrame,
    /// (file, rows) in the order the rows were stacked.
    pub files: Vec<(String, u64)>,
}

impl Loaded {
    /// The file and 1-based row of a stacked row index.
    pub fn locate(&self, mut i: u64) -> (String, u64) {
        for (f, rows) in &self.files {
            if i < *rows {
                return (f.clone(), i + 1);
            }
            i -= rows;
        }
        ("?".into(), i + 1)
    }
}

/// The four tables of a history, checked, with a fingerprint of the input bytes.
#[derive(Debug, Clone)]
pub struct History {
    pub orders: DataFrame,
    pub returns: DataFrame,
    pub disputes: DataFrame,
    /// `None` when the optional buyers table is absent.
    pub buyers: Option<DataFrame>,
    /// SHA-256 over the input files' names and bytes.
    pub fingerprint: String,
}

impl History {
    /// The history as it stood at `at` (µs) for returns and disputes: those asked or
    /// opened before `at` are kept, later ones dropped; orders and buyers are kept whole.
    pub fn returns_before(&self, at: i64) -> PolarsResult<History> {
        Ok(History {
            orders: self.orders.clone(),
            returns: self
                .returns
                .clone()
                .lazy()
                .filter(col(cols::REQUESTED_AT).lt(lit(at)))
                .collect()?,
            disputes: self
                .disputes
                .clone()
                .lazy()
                .filter(col(cols::OPENED_AT).lt(lit(at)))
                .collect()?,
            buyers: self.buyers.clone(),
            fingerprint: format!("{}-before-{at}", self.fingerprint),
        })
    }
}

/// The precision of money in the Parquet files we write: Decimal(18,2) holds every
/// amount the API accepts (below 1e12) with room to spare, where Decimal(12,2) stopped
/// at 9,999,999,999.99 and one larger amount broke the whole file.
pub const MONEY_PRECISION: usize = 18;

/// Writes a history's tables as Parquet in the contract's types (times UTC
/// timestamps, money Decimal(18,2)) into `dir`.
pub fn write_history(h: &History, dir: &Path) -> PolarsResult<()> {
    std::fs::create_dir_all(dir)?;
    let mut tables = vec![
        ("orders", &h.orders),
        ("returns", &h.returns),
        ("disputes", &h.disputes),
    ];
    if let Some(b) = &h.buyers {
        tables.push(("buyers", b));
    }
    for (name, df) in tables {
        let mut out = Vec::with_capacity(df.width());
        for c in df.columns() {
            let s = c.as_materialized_series();
            let n = c.name().as_str();
            let is_time = [
                cols::ORDERED_AT,
                cols::DELIVERED_AT,
                cols::REQUESTED_AT,
                cols::SHIPPED_AT,
                cols::OUTCOME_AT,
                cols::OPENED_AT,
                cols::DECIDED_AT,
                cols::REGISTERED_AT,
            ]
            .contains(&n);
            out.push(if is_time {
                s.clone()
                    .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                    .into_column()
            } else if n == cols::AMOUNT {
                let cents: Vec<Option<i128>> = s
                    .f64()?
                    .iter()
                    .map(|v| v.map(|x| (x * 100.0).round() as i128))
                    .collect();
                Series::new(n.into(), cents)
                    .into_decimal(MONEY_PRECISION, 2)?
                    .into_column()
            } else {
                c.clone()
            });
        }
        let mut frame = DataFrame::new(df.height(), out)?;
        let f = std::fs::File::create(dir.join(format!("{name}.parquet")))?;
        ParquetWriter::new(f).finish(&mut frame)?;
    }
    Ok(())
}

/// Finds the files of a table in `dir`: `name.parquet`, `name.csv`, or `name/*`. A
/// folder `name/` that exists but cannot be listed, or an entry of it that cannot be
/// read, is an error naming it: a table is never read with some of its files left out.
pub(crate) fn table_files(dir: &Path, table: Table) -> Result<Vec<PathBuf>, DataError> {
    let name = table.name();
    let mut files = Vec::new();
    for ext in ["parquet", "csv"] {
        let p = dir.join(format!("{name}.{ext}"));
        if p.is_file() {
            files.push(p);
        }
    }
    let folder = dir.join(name);
    let label = || folder.display().to_string();
    let rd = match std::fs::read_dir(&folder) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
        // A file named like the folder (or another non-folder) is no folder of files.
        Err(_) if !folder.is_dir() => return Ok(files),
        Err(e) => return Err(read_err(&label(), e)),
    };
    let mut inner = Vec::new();
    for entry in rd {
        let p = entry.map_err(|e| read_err(&label(), e))?.path();
        if p.is_file()
            && matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("parquet" | "csv")
            )
        {
            inner.push(p);
        }
    }
    inner.sort();
    files.extend(inner);
    Ok(files)
}

impl DataError {
    /// The same error, its row counted `offset` rows further into the file.
    pub(crate) fn rows_after(self, offset: u64) -> DataError {
        match self {
            DataError::BadValue {
                file,
                row,
                column,
                problem,
            } => DataError::BadValue {
                file,
                row: row + offset,
                column,
                problem,
            },
            other => other,
        }
    }
}

/// Reads and checks one table from `dir`. `Ok(None)` if an optional table is absent.
pub fn load_table(
    dir: &Path,
    table: Table,
    hasher: &mut Sha256,
) -> Result<Option<Loaded>, DataError> {
    let files = table_files(dir, table)?;
    if files.is_empty() {
        return if table == Table::Buyers {
            Ok(None)
        } else {
            Err(DataError::MissingTable {
                dir: dir.display().to_string(),
                table: table.name(),
            })
        };
    }
    let mut frames = Vec::with_capacity(files.len());
    let mut sources = Vec::with_capacity(files.len());
    for f in &files {
        let label = f.display().to_string();
        hash_file(f, hasher)?;
        let df = read_file(f, table)?;
        sources.push((label, df.height() as u64));
        frames.push(df);
    }
    let mut df = frames.remove(0);
    for other in frames {
        df.vstack_mut_owned(other)
            .map_err(|e| read_err(&sources[0].0, e))?;
    }
    df.rechunk_mut_par();
    let loaded = Loaded { df, files: sources };
    check_unique(&loaded, table.key())?;
    Ok(Some(loaded))
}

pub(crate) fn hash_file(path: &Path, hasher: &mut Sha256) -> Result<(), DataError> {
    let err = |e: std::io::Error| read_err(&path.display().to_string(), e);
    let mut f = std::fs::File::open(path).map_err(err)?;
    hasher.update(
        path.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default(),
    );
    std::io::copy(&mut f, hasher).map_err(err)?;
    Ok(())
}

pub(crate) fn read_err(file: &str, e: impl std::fmt::Display) -> DataError {
    DataError::Read {
        file: file.to_string(),
        message: e.to_string(),
    }
}

/// Reads one file and normalises every contract column (extra columns are ignored).
fn read_file(path: &Path, table: Table) -> Result<DataFrame, DataError> {
    read_part(path, table, None)
}

/// Whether `path` is read as CSV (by its extension).
pub(crate) fn is_csv(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some("csv")
}

/// A lazy scan of one input file as stored. Every CSV column is read as text and
/// parsed by the normalisers, so that a bad value gets an error naming its row rather
/// than a guessed type.
pub(crate) fn scan_file(path: &Path) -> Result<LazyFrame, DataError> {
    let label = path.display().to_string();
    let pl_path = PlRefPath::new(path.to_string_lossy().into_owned());
    if is_csv(path) {
        LazyCsvReader::new(pl_path)
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .finish()
            .map_err(|e| read_err(&label, e))
    } else {
        LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default())
            .map_err(|e| read_err(&label, e))
    }
}

/// The rows of a Parquet file, from its metadata.
pub(crate) fn parquet_rows(path: &Path) -> Result<u64, DataError> {
    let label = path.display().to_string();
    let pl_path = PlRefPath::new(path.to_string_lossy().into_owned());
    let df = LazyFrame::scan_parquet(pl_path, ScanArgsParquet::default())
        .and_then(|lf| {
            lf.select([len().cast(DataType::UInt64).alias("n")])
                .collect()
        })
        .map_err(|e| read_err(&label, e))?;
    df.column("n")
        .ok()
        .and_then(|c| c.u64().ok().and_then(|c| c.get(0)))
        .ok_or_else(|| read_err(&label, "its row count cannot be read"))
}

/// Reads rows `[offset, offset + len)` of one file (all of it with `None`; a CSV is
/// always read whole) and normalises every contract column. Rows in errors count from
/// the start of the file.
pub(crate) fn read_part(
    path: &Path,
    table: Table,
    part: Option<(u64, u64)>,
) -> Result<DataFrame, DataError> {
    let label = path.display().to_string();
    let mut lf = scan_table(path, table)?;
    let offset = match part {
        Some((offset, n)) if !is_csv(path) => {
            lf = lf.slice(offset as i64, n as IdxSize);
            offset
        }
        _ => 0,
    };
    let raw = lf.collect().map_err(|e| read_err(&label, e))?;
    normalised(&raw, table, &label, offset)
}

/// A table file's columns of the contract, lazily; a missing column is refused.
pub(crate) fn scan_table(path: &Path, table: Table) -> Result<LazyFrame, DataError> {
    let label = path.display().to_string();
    let mut lf = scan_file(path)?;
    let schema = lf.collect_schema().map_err(|e| read_err(&label, e))?;
    for s in table.specs() {
        if schema.get(s.name).is_none() {
            return Err(DataError::MissingColumn {
                file: label,
                table: table.name(),
                column: s.name,
                expected: table.column_list(),
            });
        }
    }
    let names: Vec<Expr> = table.specs().iter().map(|s| col(s.name)).collect();
    Ok(lf.select(names))
}

/// Rows of a table file as read ([`scan_table`]), checked and normalised; `offset` is
/// the index of their first row in the file, for the row numbers of errors.
pub(crate) fn normalised(
    raw: &DataFrame,
    table: Table,
    label: &str,
    offset: u64,
) -> Result<DataFrame, DataError> {
    let mut out = Vec::with_capacity(table.specs().len());
    for s in table.specs() {
        let column = raw.column(s.name).map_err(|e| read_err(label, e))?;
        let series = column.as_materialized_series();
        out.push(
            normalise(series, s, label)
                .map_err(|e| e.rows_after(offset))?
                .into_column(),
        );
    }
    DataFrame::new(raw.height(), out).map_err(|e| read_err(label, e))
}

/// A column outside the contract's tables read as a nullable column of `kind` (e.g. the
/// extra columns of a decided-cases file), with the same checks and errors.
pub(crate) fn normalise_as(
    s: &Series,
    name: &'static str,
    kind: Kind,
    file: &str,
) -> Result<Series, DataError> {
    normalise(
        s,
        &Spec {
            name,
            kind,
            nullable: true,
        },
        file,
    )
}

fn bad(file: &str, row: usize, column: &'static str, problem: impl Into<String>) -> DataError {
    DataError::BadValue {
        file: file.to_string(),
        row: row as u64 + 1,
        column,
        problem: problem.into(),
    }
}

fn wrong_type(file: &str, s: &Series, spec: &Spec, expected: &'static str) -> DataError {
    DataError::WrongType {
        file: file.to_string(),
        column: spec.name,
        found: s.dtype().to_string(),
        expected,
    }
}

/// First row where a column that must have a value has none.
fn check_nulls(s: &Series, spec: &Spec, file: &str) -> Result<(), DataError> {
    if spec.nullable || s.null_count() == 0 {
        return Ok(());
    }
    let row = s
        .is_null()
        .iter()
        .position(|v| v == Some(true))
        .unwrap_or(0);
    Err(bad(file, row, spec.name, "missing value"))
}

fn normalise(s: &Series, spec: &Spec, file: &str) -> Result<Series, DataError> {
    check_nulls(s, spec, file)?;
    // A column with no values at all has the null type in Parquet (what pandas writes
    // for an empty DataFrame, or for a column left all None): there is no value whose
    // type could be wrong, so it is read as text with no values, which every kind of
    // column accepts. (A required column with rows was refused just above: its values
    // are missing.)
    let text;
    let s = if s.dtype() == &DataType::Null {
        text = s.cast(&DataType::String).map_err(|e| read_err(file, e))?;
        &text
    } else {
        s
    };
    let name = PlSmallStr::from_static(spec.name);
    let out = match spec.kind {
        Kind::Id => normalise_id(s, spec, file)?,
        Kind::Money => normalise_money(s, spec, file)?,
        Kind::Time => normalise_time(s, spec, file)?,
        Kind::Flag => normalise_flag(s, spec, file)?,
        Kind::Text | Kind::Enum(_) => {
            if !matches!(
                s.dtype(),
                DataType::String | DataType::Categorical(_, _) | DataType::Enum(_, _)
            ) {
                return Err(wrong_type(file, s, spec, "a string"));
            }
            let t = s.cast(&DataType::String).map_err(|e| read_err(file, e))?;
            let ca = t.str().map_err(|e| read_err(file, e))?;
            if let Kind::Enum(allowed) = spec.kind {
                for (row, v) in ca.iter().enumerate() {
                    if let Some(v) = v
                        && !allowed.contains(&v)
                    {
                        return Err(bad(
                            file,
                            row,
                            spec.name,
                            format!(
                                "unknown value {v:?}; expected one of {}",
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
            } else if let Some((row, v)) = ca.iter().enumerate().find_map(|(i, v)| {
                v.filter(|v| fastrefund_core::domain::Category::parse(v).is_err())
                    .map(|v| (i, v))
            }) {
                return Err(bad(
                    file,
                    row,
                    spec.name,
                    format!("{v:?} is not a category code (lowercase a-z, 0-9 and _)"),
                ));
            }
            t
        }
    };
    Ok(out.with_name(name))
}

fn normalise_id(s: &Series, spec: &Spec, file: &str) -> Result<Series, DataError> {
    let dt = s.dtype();
    if dt.is_integer() {
        if dt.is_signed_integer() {
            let i = s.cast(&DataType::Int64).map_err(|e| read_err(file, e))?;
            let ca = i.i64().map_err(|e| read_err(file, e))?;
            if let Some(row) = ca.iter().position(|v| v.is_some_and(|v| v < 0)) {
                return Err(bad(
                    file,
                    row,
                    spec.name,
                    "negative id; ids are unsigned integers",
                ));
            }
        }
        return s.cast(&DataType::UInt64).map_err(|e| read_err(file, e));
    }
    if let DataType::Decimal(_, 0) = dt {
        // A whole decimal: how Spark reads (and writes back) Parquet's unsigned 64-bit
        // ids, DECIMAL(20,0). The cast leaves NULL where a value is no u64.
        let u = s.cast(&DataType::UInt64).map_err(|e| read_err(file, e))?;
        let lost = u.is_null() & s.is_not_null();
        if let Some(row) = lost.iter().position(|v| v == Some(true)) {
            let v = s.get(row).map_err(|e| read_err(file, e))?;
            return Err(bad(
                file,
                row,
                spec.name,
                format!("{v} is not an unsigned 64-bit integer id"),
            ));
        }
        return Ok(u);
    }
    if *dt == DataType::String {
        let ca = s.str().map_err(|e| read_err(file, e))?;
        let mut out = Vec::with_capacity(ca.len());
        for (row, v) in ca.iter().enumerate() {
            out.push(match v {
                None => None,
                Some(t) => Some(t.trim().parse::<u64>().map_err(|_| {
                    bad(
                        file,
                        row,
                        spec.name,
                        format!("{t:?} is not an unsigned integer id"),
                    )
                })?),
            });
        }
        return Ok(Series::new(spec.name.into(), out));
    }
    Err(wrong_type(
        file,
        s,
        spec,
        "an unsigned integer (an integer, a decimal with no places or a text of digits)",
    ))
}

fn normalise_money(s: &Series, spec: &Spec, file: &str) -> Result<Series, DataError> {
    let dt = s.dtype();
    let values: Vec<Option<f64>> = if dt.is_integer() || matches!(dt, DataType::Decimal(_, _)) {
        let f = s.cast(&DataType::Float64).map_err(|e| read_err(file, e))?;
        let ca = f.f64().map_err(|e| read_err(file, e))?;
        ca.iter().collect()
    } else if *dt == DataType::String {
        let ca = s.str().map_err(|e| read_err(file, e))?;
        let mut out = Vec::with_capacity(ca.len());
        for (row, v) in ca.iter().enumerate() {
            out.push(match v {
                None => None,
                Some(t) => {
                    let m: fastrefund_core::domain::Money =
                        t.parse()
                            .map_err(|e: fastrefund_core::domain::MoneyError| {
                                bad(file, row, spec.name, e.to_string())
                            })?;
                    Some(m.to_f64_lossy())
                }
            });
        }
        out
    } else {
        return Err(wrong_type(
            file,
            s,
            spec,
            "a decimal with 2 places, or a string such as \"129.90\" (money is never a float)",
        ));
    };
    for (row, v) in values.iter().enumerate() {
        if let Some(x) = v {
            if *x < 0.0 {
                return Err(bad(
                    file,
                    row,
                    spec.name,
                    format!("amount {x:.2} is negative"),
                ));
            }
            // As `Money` refuses a text amount of 1e12 or more, whatever the type.
            if *x >= 1e12 {
                return Err(bad(
                    file,
                    row,
                    spec.name,
                    format!("amount {x:.2} is too large"),
                ));
            }
            let cents = x * 100.0;
            if (cents - cents.round()).abs() > 1e-6 {
                return Err(bad(
                    file,
                    row,
                    spec.name,
                    format!("amount {x} has more than 2 decimal places"),
                ));
            }
        }
    }
    Ok(Series::new(spec.name.into(), values))
}

/// Microseconds since the epoch (UTC) from an RFC 3339 text, a naive date-time (read
/// as UTC) or a date.
pub fn parse_time_micros(t: &str) -> Option<i64> {
    let t = t.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.timestamp_micros());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(t, f) {
            return Some(d.and_utc().timestamp_micros());
        }
    }
    // An offset without a colon (`+0000`), as polars' and pandas' CSV writers put it.
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(d) = DateTime::parse_from_str(t, f) {
            return Some(d.timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_micros())
}

fn normalise_time(s: &Series, spec: &Spec, file: &str) -> Result<Series, DataError> {
    let name: PlSmallStr = spec.name.into();
    match s.dtype() {
        DataType::Datetime(unit, _) => {
            let i = s.cast(&DataType::Int64).map_err(|e| read_err(file, e))?;
            let ca = i.i64().map_err(|e| read_err(file, e))?;
            let scaled: Int64Chunked = match unit {
                TimeUnit::Nanoseconds => ca.apply_values(|v| v.div_euclid(1000)),
                TimeUnit::Microseconds => ca.clone(),
                TimeUnit::Milliseconds => ca.apply_values(|v| v * 1000),
            };
            Ok(scaled.into_series().with_name(name))
        }
        DataType::Date => {
            let i = s.cast(&DataType::Int32).map_err(|e| read_err(file, e))?;
            let ca = i.i32().map_err(|e| read_err(file, e))?;
            let v: Vec<Option<i64>> = ca
                .iter()
                .map(|d| d.map(|d| i64::from(d) * 86_400_000_000))
                .collect();
            Ok(Series::new(name, v))
        }
        DataType::String => {
            let ca = s.str().map_err(|e| read_err(file, e))?;
            let mut out = Vec::with_capacity(ca.len());
            for (row, v) in ca.iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(t) if t.is_empty() && spec.nullable => None,
                    Some(t) => Some(parse_time_micros(t).ok_or_else(|| {
                        bad(
                            file,
                            row,
                            spec.name,
                            format!(
                                "{t:?} is not a timestamp (RFC 3339, e.g. 2026-06-30T02:00:00Z)"
                            ),
                        )
                    })?),
                });
            }
            Ok(Series::new(name, out))
        }
        _ => Err(wrong_type(file, s, spec, "a UTC timestamp")),
    }
}

fn normalise_flag(s: &Series, spec: &Spec, file: &str) -> Result<Series, DataError> {
    match s.dtype() {
        DataType::Boolean => Ok(s.clone()),
        DataType::String => {
            let ca = s.str().map_err(|e| read_err(file, e))?;
            let mut out = Vec::with_capacity(ca.len());
            for (row, v) in ca.iter().enumerate() {
                out.push(match v.map(str::trim) {
                    None => None,
                    Some("true" | "True" | "TRUE" | "1") => Some(true),
                    Some("false" | "False" | "FALSE" | "0") => Some(false),
                    Some(t) => {
                        return Err(bad(
                            file,
                            row,
                            spec.name,
                            format!("{t:?} is not true or false"),
                        ));
                    }
                });
            }
            Ok(Series::new(spec.name.into(), out))
        }
        dt if dt.is_integer() => {
            let i = s.cast(&DataType::Int64).map_err(|e| read_err(file, e))?;
            let ca = i.i64().map_err(|e| read_err(file, e))?;
            if let Some(row) = ca.iter().position(|v| v.is_some_and(|v| v != 0 && v != 1)) {
                return Err(bad(file, row, spec.name, "a flag must be 0 or 1"));
            }
            s.cast(&DataType::Boolean).map_err(|e| read_err(file, e))
        }
        _ => Err(wrong_type(file, s, spec, "a boolean")),
    }
}

/// Refuses a repeated id, naming both rows. Ids in strictly increasing order (as
/// exports usually are) are proven unique in one pass; otherwise the (id, row) pairs
/// are sorted and neighbours compared — no hash table of every id.
fn check_unique(t: &Loaded, key: &'static str) -> Result<(), DataError> {
    let s =
        t.df.column(key)
            .map_err(|e| read_err("?", e))?
            .as_materialized_series()
            .clone();
    let ca = s.u64().map_err(|e| read_err("?", e))?;
    let mut last: Option<u64> = None;
    let mut increasing = true;
    for v in ca.iter().flatten() {
        if last.is_some_and(|l| l >= v) {
            increasing = false;
            break;
        }
        last = Some(v);
    }
    if increasing {
        return Ok(());
    }
    let mut pairs: Vec<(u64, u64)> = ca
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (v, i as u64)))
        .collect();
    pairs.par_sort_unstable();
    // The repeat that comes first in the file (smallest second row) is reported.
    let dup = pairs
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .min_by_key(|w| w[1].1);
    if let Some(w) = dup {
        let (first_file, first_row) = t.locate(w[0].1);
        let (file, row) = t.locate(w[1].1);
        return Err(DataError::Duplicate {
            file,
            row,
            column: key,
            value: w[0].0,
            first_file,
            first_row,
        });
    }
    Ok(())
}

/// Every order's buyer, sorted by order id, for the lookups of returns and disputes.
struct OrderOwners {
    ids: Vec<u64>,
    buyers: Vec<u64>,
}

impl OrderOwners {
    fn new(orders: &DataFrame) -> Result<OrderOwners, DataError> {
        let e = |e: PolarsError| read_err("orders", e);
        let oid = orders.column(cols::ORDER_ID).map_err(e)?.u64().map_err(e)?;
        let obuyer = orders.column(cols::BUYER_ID).map_err(e)?.u64().map_err(e)?;
        let mut pairs: Vec<(u64, u64)> = oid
            .iter()
            .zip(obuyer.iter())
            .filter_map(|(o, b)| o.zip(b))
            .collect();
        if !pairs.windows(2).all(|w| w[0].0 < w[1].0) {
            pairs.par_sort_unstable();
        }
        Ok(OrderOwners {
            ids: pairs.iter().map(|p| p.0).collect(),
            buyers: pairs.iter().map(|p| p.1).collect(),
        })
    }

    fn owner(&self, order: u64) -> Option<u64> {
        self.ids.binary_search(&order).ok().map(|i| self.buyers[i])
    }
}

/// Refuses a return or dispute whose order is not in `orders`, or belongs to another buyer.
fn check_orders_exist(
    owners: &OrderOwners,
    t: &Loaded,
    what: &'static str,
    key: &'static str,
) -> Result<(), DataError> {
    let e = |e: PolarsError| read_err("orders", e);
    let ids = t.df.column(key).map_err(e)?.u64().map_err(e)?;
    let ord = t.df.column(cols::ORDER_ID).map_err(e)?.u64().map_err(e)?;
    let buy = t.df.column(cols::BUYER_ID).map_err(e)?.u64().map_err(e)?;
    for (i, ((id, o), b)) in ids.iter().zip(ord.iter()).zip(buy.iter()).enumerate() {
        let (Some(id), Some(o), Some(b)) = (id, o, b) else {
            continue;
        };
        match owners.owner(o) {
            None => {
                let (file, row) = t.locate(i as u64);
                return Err(DataError::UnknownOrder {
                    file,
                    row,
                    what,
                    id,
                    order_id: o,
                });
            }
            Some(ob) if ob != b => {
                let (file, row) = t.locate(i as u64);
                return Err(DataError::BuyerMismatch {
                    file,
                    row,
                    what,
                    id,
                    buyer_id: b,
                    order_id: o,
                    order_buyer: ob,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Reads and checks every table of a history in `dir`.
pub fn load_history(dir: &Path) -> Result<History, DataError> {
    let _s = tracing::info_span!("load_history", data = %dir.display()).entered();
    let mut hasher = Sha256::new();
    let missing = |t: Table| DataError::MissingTable {
        dir: dir.display().to_string(),
        table: t.name(),
    };
    let orders =
        load_table(dir, Table::Orders, &mut hasher)?.ok_or_else(|| missing(Table::Orders))?;
    let returns =
        load_table(dir, Table::Returns, &mut hasher)?.ok_or_else(|| missing(Table::Returns))?;
    let disputes =
        load_table(dir, Table::Disputes, &mut hasher)?.ok_or_else(|| missing(Table::Disputes))?;
    let buyers = load_table(dir, Table::Buyers, &mut hasher)?;
    let owners = OrderOwners::new(&orders.df)?;
    check_orders_exist(&owners, &returns, "return", cols::RETURN_ID)?;
    check_orders_exist(&owners, &disputes, "dispute", cols::DISPUTE_ID)?;
    drop(owners);
    Ok(History {
        orders: orders.df,
        returns: returns.df,
        disputes: disputes.df,
        buyers: buyers.map(|b| b.df),
        fingerprint: hex::encode(hasher.finalize()),
    })
}

#[cfg(test)]
mod tests;
