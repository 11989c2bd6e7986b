//! The `features` command's table: every buyer's features and label as of a date,
//! written to one Parquet file a part at a time when the history is in shards. Apart
//! from [`crate::features`] (the definitions) and [`crate::shards`] (the parts, which
//! need the category norms the definitions compute), so neither of those needs the
//! other's callers.

use crate::features::labelled_with_norms;
use crate::shards::Source;
use crate::tables::{DataError, read_err};
use fastrefund_core::scoring::Scorecard;
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::*;
use std::path::Path;

/// `features`: every buyer's features and label as of `t`, written to `out` (Parquet),
/// a part at a time when the history is in shards (rows sorted by buyer within a part).
/// Returns how many buyers were written.
pub fn write_labelled_features(
    src: Source<'_>,
    t: i64,
    out: &Path,
    card: Option<&Scorecard>,
) -> Result<usize, DataError> {
    let label = out.display().to_string();
    let e = |e: PolarsError| read_err(&label, e);
    let norms = match card {
        Some(c) => src.norms_for(t, c)?,
        None => src.norms(t)?,
    };
    let mut writer: Option<BatchedWriter<std::fs::File>> = None;
    let mut rows = 0;
    for k in 0..src.parts() {
        let h = src.part(k)?;
        let df = labelled_with_norms(&h, t, norms.clone().lazy()).map_err(e)?;
        rows += df.height();
        let w = match &mut writer {
            Some(w) => w,
            slot => {
                let f = std::fs::File::create(out).map_err(|x| read_err(&label, x))?;
                slot.insert(ParquetWriter::new(f).batched(df.schema()).map_err(e)?)
            }
        };
        w.write_batch(&df).map_err(e)?;
    }
    if let Some(w) = writer {
        w.finish().map_err(e)?;
    }
    Ok(rows)
}
