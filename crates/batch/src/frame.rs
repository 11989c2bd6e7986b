//! Polars frames to and from training data: reading a Parquet/CSV table a data team
//! brings, its label column, and its feature columns as [`Dataset`]s.

use fastrefund_train::dataset::{Dataset, DatasetError, FeatureData};
use polars::prelude::*;
use std::path::Path;

fn read_err(file: &str, e: impl std::fmt::Display) -> DatasetError {
    DatasetError::Read {
        file: file.to_string(),
        message: e.to_string(),
    }
}

/// Reads a Parquet or CSV file whole (CSV types are inferred from the data).
pub fn read_table(path: &Path) -> Result<DataFrame, DatasetError> {
    let file = path.display().to_string();
    let pl = PlRefPath::new(path.to_string_lossy().into_owned());
    let lf = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => LazyCsvReader::new(pl)
            .with_has_header(true)
            .with_infer_schema_length(Some(100_000))
            .finish(),
        Some("parquet") => LazyFrame::scan_parquet(pl, ScanArgsParquet::default()),
        _ => {
            return Err(DatasetError::Read {
                file,
                message: "expected a .parquet or .csv file".into(),
            });
        }
    };
    lf.and_then(|lf| lf.collect())
        .map_err(|e| read_err(&file, e))
}

/// The label column as 0/1; anything else is an error naming the row.
pub fn labels_of(df: &DataFrame, column: &str, file: &str) -> Result<Vec<u8>, DatasetError> {
    let c = df.column(column).map_err(|_| DatasetError::NoLabel {
        file: file.to_string(),
        column: column.to_string(),
        available: df
            .get_column_names()
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let s = c.as_materialized_series();
    let bad = |row: usize, value: String| DatasetError::BadLabel {
        file: file.to_string(),
        row: row as u64 + 1,
        column: column.to_string(),
        value,
    };
    let mut out = Vec::with_capacity(s.len());
    if s.dtype() == &DataType::String {
        let ca = s.str().map_err(|e| read_err(file, e))?;
        for (i, v) in ca.iter().enumerate() {
            out.push(match v.map(str::trim) {
                Some("0") => 0,
                Some("1") => 1,
                Some(o) => return Err(bad(i, format!("{o:?}"))),
                None => return Err(bad(i, "missing".into())),
            });
        }
    } else {
        let f = s.cast(&DataType::Float64).map_err(|e| read_err(file, e))?;
        let ca = f.f64().map_err(|e| read_err(file, e))?;
        for (i, v) in ca.iter().enumerate() {
            out.push(match v {
                Some(x) if (x - 0.0).abs() < f64::EPSILON => 0,
                Some(x) if (x - 1.0).abs() < f64::EPSILON => 1,
                Some(x) => return Err(bad(i, x.to_string())),
                None => return Err(bad(i, "missing".into())),
            });
        }
    }
    let bads = out.iter().filter(|l| **l == 1).count();
    if bads == 0 || bads == out.len() {
        return Err(DatasetError::OneClass {
            file: file.to_string(),
            column: column.to_string(),
            what: if bads == 0 { "zeros" } else { "ones" },
        });
    }
    Ok(out)
}

/// A column as feature data: numbers and booleans are numeric, text is categorical.
/// `None` for a type that is neither (dates, lists, ...).
pub fn feature_of(s: &Series) -> Option<FeatureData> {
    match s.dtype() {
        DataType::String | DataType::Categorical(_, _) | DataType::Enum(_, _) => {
            let t = s.cast(&DataType::String).ok()?;
            let ca = t.str().ok()?;
            Some(FeatureData::Cat(
                ca.iter().map(|v| v.map(str::to_string)).collect(),
            ))
        }
        dt if dt.is_primitive_numeric()
            || dt.is_bool()
            || matches!(dt, DataType::Decimal(_, _)) =>
        {
            let f = s.cast(&DataType::Float64).ok()?;
            let ca = f.f64().ok()?;
            Some(FeatureData::Num(
                ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect(),
            ))
        }
        _ => None,
    }
}

/// A dataset from a frame: every column but the label and `exclude` becomes a
/// feature; columns of other types are skipped and returned by name.
pub fn dataset_from_frame(
    df: &DataFrame,
    label: &str,
    exclude: &[String],
    file: &str,
) -> Result<(Dataset, Vec<String>), DatasetError> {
    let labels = labels_of(df, label, file)?;
    let mut names = Vec::new();
    let mut columns = Vec::new();
    let mut skipped = Vec::new();
    for c in df.columns() {
        let name = c.name().as_str();
        if name == label || exclude.iter().any(|e| e == name) {
            continue;
        }
        match feature_of(c.as_materialized_series()) {
            Some(f) => {
                names.push(name.to_string());
                columns.push(f);
            }
            None => skipped.push(name.to_string()),
        }
    }
    if names.is_empty() {
        return Err(DatasetError::NoFeatures {
            file: file.to_string(),
        });
    }
    Ok((
        Dataset {
            names,
            columns,
            labels,
        },
        skipped,
    ))
}

/// The columns a model needs, in its feature order, from a frame.
pub fn columns_for_model(
    df: &DataFrame,
    names: &[&str],
    file: &str,
) -> Result<Vec<FeatureData>, DatasetError> {
    names
        .iter()
        .map(|n| {
            let c = df.column(n).map_err(|_| DatasetError::MissingFeature {
                file: file.to_string(),
                column: n.to_string(),
            })?;
            feature_of(c.as_materialized_series()).ok_or_else(|| DatasetError::Read {
                file: file.to_string(),
                message: format!("column `{n}` is neither numeric nor text"),
            })
        })
        .collect()
}
