//! Writing exported returns as CSV (the data contract's text form; no polars needed).

use fastrefund_store::ExportRow;
use std::io::Write;
use std::path::Path;

/// The `returns` table columns, in contract order.
pub const COLUMNS: &str = "return_id,order_id,buyer_id,requested_at,reason,amount,instant,advanced,shipped_at,outcome,outcome_at";

/// Writes rows as a `returns` CSV (atomically: a temporary file renamed into place).
pub fn write_csv(rows: &[ExportRow], out: &Path) -> std::io::Result<()> {
    let tmp = out.with_extension("csv.tmp");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        writeln!(w, "{COLUMNS}")?;
        let t = |x: &Option<chrono::DateTime<chrono::Utc>>| {
            x.map(|t| t.to_rfc3339()).unwrap_or_default()
        };
        for r in rows {
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{}",
                r.return_id,
                r.order_id,
                r.buyer_id,
                r.requested_at.to_rfc3339(),
                r.reason,
                r.amount,
                r.instant,
                r.advanced,
                t(&r.shipped_at),
                r.outcome,
                t(&r.outcome_at)
            )?;
        }
        w.flush()?;
        w.get_ref().sync_all()?;
    }
    std::fs::rename(tmp, out)
}
