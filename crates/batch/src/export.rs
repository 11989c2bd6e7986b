//! Writing exported returns as Parquet in the `returns` table shape, so the next batch
//! run reads them like any other returns file.

use fastrefund_core::cols::*;
use fastrefund_core::ledger::ExportRow;
use polars::prelude::*;
use std::path::Path;

fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

/// A column of UTC microsecond times.
fn time(name: &str, v: Vec<Option<i64>>) -> Column {
    Series::new(name.into(), v)
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

/// Writes `df` as Parquet atomically: a temporary file, synced, renamed into place.
pub(crate) fn write_atomically(mut df: DataFrame, out: &Path) -> PolarsResult<()> {
    let tmp = out.with_extension("parquet.tmp");
    let f = std::fs::File::create(&tmp)?;
    ParquetWriter::new(f).finish(&mut df)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// The rows as a `returns` frame (amounts Decimal(18,2), times UTC microseconds).
pub fn returns_frame(rows: &[ExportRow]) -> PolarsResult<DataFrame> {
    let cents: Vec<i128> = rows
        .iter()
        .map(|r| {
            let mut d = r.amount.value();
            d.rescale(2);
            d.mantissa()
        })
        .collect();
    DataFrame::new_infer_height(vec![
        Column::new(
            RETURN_ID.into(),
            rows.iter().map(|r| r.return_id.0).collect::<Vec<u64>>(),
        ),
        Column::new(
            ORDER_ID.into(),
            rows.iter().map(|r| r.order_id.0).collect::<Vec<u64>>(),
        ),
        Column::new(
            BUYER_ID.into(),
            rows.iter().map(|r| r.buyer_id.0).collect::<Vec<u64>>(),
        ),
        time(
            REQUESTED_AT,
            rows.iter().map(|r| Some(micros(r.requested_at))).collect(),
        ),
        Column::new(
            REASON.into(),
            rows.iter()
                .map(|r| r.reason.as_str())
                .collect::<Vec<&str>>(),
        ),
        Series::new(AMOUNT.into(), cents)
            .into_decimal(crate::tables::MONEY_PRECISION, 2)?
            .into_column(),
        Column::new(
            INSTANT.into(),
            rows.iter().map(|r| r.instant).collect::<Vec<bool>>(),
        ),
        Column::new(
            ADVANCED.into(),
            rows.iter().map(|r| r.advanced).collect::<Vec<bool>>(),
        ),
        time(
            SHIPPED_AT,
            rows.iter().map(|r| r.shipped_at.map(micros)).collect(),
        ),
        Column::new(
            OUTCOME.into(),
            rows.iter()
                .map(|r| r.outcome.as_str())
                .collect::<Vec<&str>>(),
        ),
        time(
            OUTCOME_AT,
            rows.iter().map(|r| r.outcome_at.map(micros)).collect(),
        ),
    ])
}

/// Writes the rows as Parquet (atomically: a temporary file renamed into place).
pub fn write_parquet(rows: &[ExportRow], out: &Path) -> PolarsResult<()> {
    write_atomically(returns_frame(rows)?, out)
}

/// Decided cases as a `disputes` frame (times UTC microseconds).
pub fn disputes_frame(rows: &[fastrefund_core::cases::DisputeRow]) -> PolarsResult<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new(
            DISPUTE_ID.into(),
            rows.iter().map(|r| r.dispute_id).collect::<Vec<u64>>(),
        ),
        Column::new(
            ORDER_ID.into(),
            rows.iter().map(|r| r.order_id.0).collect::<Vec<u64>>(),
        ),
        Column::new(
            BUYER_ID.into(),
            rows.iter().map(|r| r.buyer_id.0).collect::<Vec<u64>>(),
        ),
        time(
            OPENED_AT,
            rows.iter().map(|r| Some(micros(r.opened_at))).collect(),
        ),
        time(
            DECIDED_AT,
            rows.iter().map(|r| r.decided_at.map(micros)).collect(),
        ),
        Column::new(
            DECISION.into(),
            rows.iter().map(|r| r.decision).collect::<Vec<&str>>(),
        ),
        Column::new(
            FRAUD_FLAG.into(),
            rows.iter().map(|r| r.fraud_flag).collect::<Vec<bool>>(),
        ),
    ])
}
