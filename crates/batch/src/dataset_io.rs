//! Small polars I/O helpers shared by the batch modules.

use polars::prelude::*;
use std::path::Path;

/// Reads a whole Parquet file.
pub fn read_parquet(path: &Path) -> PolarsResult<DataFrame> {
    LazyFrame::scan_parquet(
        PlRefPath::new(path.to_string_lossy().into_owned()),
        ScanArgsParquet::default(),
    )?
    .collect()
}
