//! Each kind of bad input gets its own clear error naming the file, column and row.

use super::*;
use crate::features::tests::write_history;

fn err_with(table: &str, edit: impl Fn(&str) -> String) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    let p = dir.path().join(format!("{table}.csv"));
    let body = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, edit(&body)).unwrap();
    match load_history(dir.path()) {
        Ok(_) => panic!("bad {table} was accepted"),
        Err(e) => e.to_string(),
    }
}

fn contains_all(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "{msg:?} does not mention {p:?}");
    }
}

#[test]
fn the_golden_history_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    let h = load_history(dir.path()).unwrap();
    assert_eq!(h.orders.height(), 6);
    assert_eq!(h.returns.height(), 4);
    assert_eq!(h.fingerprint.len(), 64);
}

#[test]
fn a_missing_table_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    std::fs::remove_file(dir.path().join("returns.csv")).unwrap();
    let e = load_history(dir.path()).unwrap_err().to_string();
    contains_all(&e, &["no returns table", "returns.parquet"]);
}

#[test]
fn a_missing_column_is_named_with_the_file() {
    let e = err_with("orders", |b| {
        b.replace("merchant_id,", "")
            .replace(",10,", ",")
            .replace(",11,", ",")
            .replace(",12,", ",")
    });
    contains_all(&e, &["orders.csv", "missing column `merchant_id`"]);
}

#[test]
fn a_negative_amount_names_file_row_and_column() {
    let e = err_with("orders", |b| b.replace("200.00", "-200.00"));
    contains_all(&e, &["orders.csv", "row 2", "`amount`", "negative"]);
}

#[test]
fn an_amount_with_three_decimals_is_refused() {
    let e = err_with("returns", |b| b.replacen("100.00", "100.005", 1));
    contains_all(
        &e,
        &[
            "returns.csv",
            "row 1",
            "`amount`",
            "more than 2 decimal places",
        ],
    );
}

#[test]
fn an_unknown_enum_value_is_named() {
    let e = err_with("returns", |b| b.replace("received_ok", "lost_in_space"));
    contains_all(
        &e,
        &[
            "returns.csv",
            "row 1",
            "`outcome`",
            "\"lost_in_space\"",
            "received_mismatch",
        ],
    );
    let e = err_with("orders", |b| b.replace("cancelled", "vanished"));
    contains_all(&e, &["orders.csv", "row 3", "`status`"]);
}

#[test]
fn a_wrong_type_is_named() {
    let e = err_with("orders", |b| b.replacen(",10,", ",ten,", 1));
    contains_all(
        &e,
        &[
            "orders.csv",
            "row 1",
            "`merchant_id`",
            "not an unsigned integer",
        ],
    );
    let e = err_with("returns", |b| b.replacen(",true,true,", ",yes,true,", 1));
    contains_all(
        &e,
        &["returns.csv", "row 1", "`instant`", "not true or false"],
    );
    let e = err_with("disputes", |b| {
        b.replace("2025-12-01T00:00:00Z", "first of december")
    });
    contains_all(
        &e,
        &["disputes.csv", "row 1", "`opened_at`", "not a timestamp"],
    );
}

#[test]
fn a_missing_required_value_is_named() {
    let e = err_with("orders", |b| b.replacen("2025-12-01T00:00:00Z", "", 1));
    contains_all(
        &e,
        &["orders.csv", "row 1", "`ordered_at`", "missing value"],
    );
}

#[test]
fn a_return_for_an_order_that_does_not_exist_is_named() {
    let e = err_with("returns", |b| b.replacen("\n2,4,2,", "\n2,404,2,", 1));
    contains_all(
        &e,
        &[
            "returns.csv",
            "row 2",
            "return 2",
            "order 404",
            "not in the orders table",
        ],
    );
}

#[test]
fn a_return_naming_another_buyers_order_is_refused() {
    let e = err_with("returns", |b| b.replacen("\n2,4,2,", "\n2,4,1,", 1));
    contains_all(&e, &["returns.csv", "row 2", "belongs to buyer 2"]);
}

#[test]
fn duplicate_ids_name_both_rows() {
    let e = err_with("orders", |b| b.replacen("\n6,3,", "\n4,3,", 1));
    contains_all(
        &e,
        &["orders.csv", "row 6", "duplicate order_id 4", "row 4"],
    );
}

#[test]
fn a_folder_of_files_is_one_table_and_duplicates_across_files_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    let orders = std::fs::read_to_string(dir.path().join("orders.csv")).unwrap();
    std::fs::remove_file(dir.path().join("orders.csv")).unwrap();
    std::fs::create_dir(dir.path().join("orders")).unwrap();
    let mut lines: Vec<&str> = orders.lines().collect();
    let header = lines.remove(0);
    let (a, b) = lines.split_at(3);
    std::fs::write(
        dir.path().join("orders/a.csv"),
        format!("{header}\n{}\n", a.join("\n")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("orders/b.csv"),
        format!("{header}\n{}\n", b.join("\n")),
    )
    .unwrap();
    let h = load_history(dir.path()).unwrap();
    assert_eq!(h.orders.height(), 6);
    std::fs::write(
        dir.path().join("orders/c.csv"),
        format!("{header}\n{}\n", a[0]),
    )
    .unwrap();
    let e = load_history(dir.path()).unwrap_err().to_string();
    contains_all(&e, &["c.csv", "row 1", "duplicate order_id 1", "a.csv"]);
}

#[test]
fn parquet_with_a_float_amount_is_refused_as_a_wrong_type() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    let mut df = LazyCsvReader::new(PlRefPath::new(
        dir.path().join("orders.csv").to_string_lossy().into_owned(),
    ))
    .with_has_header(true)
    .finish()
    .unwrap()
    .collect()
    .unwrap();
    std::fs::remove_file(dir.path().join("orders.csv")).unwrap();
    let f = std::fs::File::create(dir.path().join("orders.parquet")).unwrap();
    ParquetWriter::new(f).finish(&mut df).unwrap();
    let e = load_history(dir.path()).unwrap_err().to_string();
    contains_all(&e, &["orders.parquet", "`amount`", "f64", "never a float"]);
}

/// The golden history with orders in Parquet (types as polars infers them from the CSV,
/// money as a decimal), `edit` applied to their frame, and what loading it says.
fn load_with_parquet_orders(edit: impl Fn(DataFrame) -> DataFrame) -> Result<History, String> {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    let df = LazyCsvReader::new(PlRefPath::new(
        dir.path().join("orders.csv").to_string_lossy().into_owned(),
    ))
    .with_has_header(true)
    .finish()
    .unwrap()
    .collect()
    .unwrap();
    std::fs::remove_file(dir.path().join("orders.csv")).unwrap();
    // Money as a decimal (a float is refused), then the edit.
    let cents: Vec<i128> = df
        .column("amount")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .map(|x| (x * 100.0).round() as i128)
        .collect();
    let mut df = edit(with_decimal(df, "amount", cents, 2));
    write_parquet_file(&dir.path().join("orders.parquet"), &mut df);
    load_history(dir.path()).map_err(|e| e.to_string())
}

/// `df` with column `name` replaced by `values` as a decimal of `scale` places.
fn with_decimal(df: DataFrame, name: &str, values: Vec<i128>, scale: usize) -> DataFrame {
    let mut df = df;
    let s = Series::new(name.into(), values)
        .into_decimal(20, scale)
        .unwrap();
    df.replace(name, s.into_column()).unwrap();
    df
}

#[test]
fn whole_decimal_ids_as_spark_writes_unsigned_ids_are_read_and_a_negative_one_is_named() {
    let ids = |first: i128| {
        move |df: DataFrame| {
            let n = df.height() as i128;
            let order_ids: Vec<i128> = (first..first + n).collect();
            with_decimal(df, "order_id", order_ids, 0)
        }
    };
    // The golden history's order ids are 1..=6, as its returns and disputes name them.
    let h = load_with_parquet_orders(ids(1)).unwrap();
    assert_eq!(
        h.orders.column("order_id").unwrap().dtype(),
        &DataType::UInt64
    );
    let e = load_with_parquet_orders(ids(-1)).unwrap_err();
    contains_all(
        &e,
        &[
            "orders.parquet",
            "row 1",
            "`order_id`",
            "-1 is not an unsigned 64-bit",
        ],
    );
}

#[test]
fn an_amount_of_a_trillion_or_more_is_refused_in_a_decimal_as_in_a_text() {
    let big = |df: DataFrame| {
        let mut cents = vec![12_990_i128; df.height()];
        cents[2] = 100_000_000_000_000; // 1e12.00
        with_decimal(df, "amount", cents, 2)
    };
    let e = load_with_parquet_orders(big).unwrap_err();
    contains_all(&e, &["orders.parquet", "row 3", "`amount`", "too large"]);
    let e = err_with("orders", |b| b.replacen("100.00", "1000000000000.00", 1));
    contains_all(&e, &["`amount`", "too large"]);
}

/// The returns table of the golden history, read back as a frame of its CSV text.
fn returns_frame_of(dir: &Path) -> DataFrame {
    LazyCsvReader::new(PlRefPath::new(
        dir.join("returns.csv").to_string_lossy().into_owned(),
    ))
    .with_has_header(true)
    .with_infer_schema_length(Some(0))
    .finish()
    .unwrap()
    .collect()
    .unwrap()
}

fn write_parquet_file(path: &Path, df: &mut DataFrame) {
    let f = std::fs::File::create(path).unwrap();
    ParquetWriter::new(f).finish(df).unwrap();
}

#[test]
fn an_empty_table_whose_columns_have_the_null_type_is_an_empty_table() {
    // What pandas writes for an empty DataFrame: every column of the null type.
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    let names: Vec<String> = returns_frame_of(dir.path())
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    std::fs::remove_file(dir.path().join("returns.csv")).unwrap();
    let mut empty = DataFrame::new(
        0,
        names
            .iter()
            .map(|n| Column::full_null(n.as_str().into(), 0, &DataType::Null))
            .collect(),
    )
    .unwrap();
    write_parquet_file(&dir.path().join("returns.parquet"), &mut empty);
    let h = load_history(dir.path()).unwrap();
    assert_eq!(h.returns.height(), 0);
    assert_eq!(h.orders.height(), 6);
}

#[test]
fn a_nullable_column_of_nulls_reads_as_missing_values_and_a_required_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_history(dir.path(), ["", "", "", ""]);
    let df = returns_frame_of(dir.path());
    std::fs::remove_file(dir.path().join("returns.csv")).unwrap();
    let with_nulls = |column: &str| {
        let mut d = df.clone();
        d.with_column(Column::full_null(
            column.into(),
            d.height(),
            &DataType::Null,
        ))
        .unwrap();
        d
    };
    // shipped_at and outcome_at may be missing: all of them missing is fine.
    let mut ok = with_nulls(cols::SHIPPED_AT);
    ok.with_column(Column::full_null(
        cols::OUTCOME_AT.into(),
        ok.height(),
        &DataType::Null,
    ))
    .unwrap();
    write_parquet_file(&dir.path().join("returns.parquet"), &mut ok);
    let h = load_history(dir.path()).unwrap();
    assert_eq!(h.returns.height(), 4);
    assert_eq!(h.returns.column(cols::SHIPPED_AT).unwrap().null_count(), 4);
    // A required column with no values is named, row and all: not a type error.
    let mut bad = with_nulls(cols::REQUESTED_AT);
    write_parquet_file(&dir.path().join("returns.parquet"), &mut bad);
    let e = load_history(dir.path()).unwrap_err().to_string();
    contains_all(
        &e,
        &["returns.parquet", "row 1", "requested_at", "missing value"],
    );
}

#[test]
fn timestamps_are_read_in_the_forms_csv_writers_use() {
    let at = parse_time_micros("2026-06-30T02:00:00Z").unwrap();
    for t in [
        "2026-06-30T02:00:00+00:00",
        "2026-06-30T02:00:00.000000+0000",
        "2026-06-30 02:00:00+0000",
        "2026-06-30T04:00:00.000+0200",
        "2026-06-30 02:00:00",
        "2026-06-30T02:00:00.000000",
    ] {
        assert_eq!(parse_time_micros(t), Some(at), "{t}");
    }
    assert_eq!(parse_time_micros("2026-06-30T02:00:00+99"), None);
}
