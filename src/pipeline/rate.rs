//! Batch scoring: every buyer's features as of a date, scored with the same
//! [`Scorecard`] the service loads, published as an atomic ratings snapshot.

use super::cols::BUYER_ID;
use super::features::{FEATURES, date_micros, features_as_of};
use super::tables::History;
use crate::scoring::{MAX_REASONS, Scorecard, Scored};
use crate::snapshot::{self, MANIFEST_FILE, MODEL_FILE, Manifest, RATINGS_FILE, SnapshotError};
use chrono::NaiveDate;
use polars::prelude::*;
use rayon::prelude::*;
use std::path::Path;

/// Why rating failed; nothing was published.
#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("the model uses feature `{0}`, which the buyer feature table does not have")]
    UnknownFeature(String),
    #[error("computing features: {0}")]
    Polars(#[from] PolarsError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{0}")]
    Refused(String),
}

/// Every buyer's id and score result.
pub struct Scores {
    pub buyer_ids: Vec<u64>,
    pub scored: Vec<Scored>,
    /// The feature table the scores came from.
    pub features: DataFrame,
}

/// The model's feature columns of a feature frame, in model order (NaN = missing).
pub fn model_inputs(card: &Scorecard, features: &DataFrame) -> Result<Vec<Vec<f64>>, RateError> {
    card.feature_names()
        .map(|name| {
            if !FEATURES.iter().any(|f| f.name == name) {
                return Err(RateError::UnknownFeature(name.to_string()));
            }
            let c = features.column(name)?.f64()?.clone();
            Ok(c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        })
        .collect()
}

/// Scores every buyer known at `t` (µs).
pub fn score_history(h: &History, card: &Scorecard, t: i64) -> Result<Scores, RateError> {
    let features = features_as_of(h, t)?.collect()?;
    let ids: Vec<u64> = features
        .column(BUYER_ID)?
        .u64()?
        .iter()
        .map(|v| v.unwrap_or(0))
        .collect();
    let cols = model_inputs(card, &features)?;
    let scored: Vec<Scored> = (0..ids.len())
        .into_par_iter()
        .map_init(
            || vec![0.0; cols.len()],
            |row, i| {
                for (v, c) in row.iter_mut().zip(&cols) {
                    *v = c[i];
                }
                card.score_numeric(row)
            },
        )
        .collect::<Result<_, _>>()
        .map_err(SnapshotError::from)?;
    Ok(Scores {
        buyer_ids: ids,
        scored,
        features,
    })
}

/// The `ratings.parquet` frame.
pub fn ratings_frame(card: &Scorecard, s: &Scores, as_of: NaiveDate) -> PolarsResult<DataFrame> {
    let n = s.buyer_ids.len();
    let mut cols = vec![
        Column::new(BUYER_ID.into(), s.buyer_ids.clone()),
        Column::new(
            "star".into(),
            s.scored.iter().map(|x| x.star.get()).collect::<Vec<u8>>(),
        ),
        Column::new(
            "score".into(),
            s.scored.iter().map(|x| x.score).collect::<Vec<i32>>(),
        ),
    ];
    for k in 0..MAX_REASONS {
        let v: Vec<Option<&str>> = s
            .scored
            .iter()
            .map(|x| x.reasons[k].map(|j| card.reason(usize::from(j)).code.as_str()))
            .collect();
        cols.push(Column::new(format!("reason_{}", k + 1).into(), v));
    }
    let days = (as_of - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32;
    cols.push(
        Series::new("as_of".into(), vec![days; n])
            .into_date()
            .into_column(),
    );
    cols.push(Column::new("model_version".into(), vec![card.version(); n]));
    DataFrame::new(n, cols)
}

/// Writes a snapshot's three files into `dir` and returns its manifest.
pub fn write_snapshot(
    dir: &Path,
    card: &Scorecard,
    model_json: &str,
    ratings: &mut DataFrame,
    as_of: NaiveDate,
    data_fingerprint: &str,
    drift: Option<serde_json::Value>,
) -> Result<Manifest, RateError> {
    let path = dir.join(RATINGS_FILE);
    let f = std::fs::File::create(&path).map_err(|e| SnapshotError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    ParquetWriter::new(f)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(ratings)?;
    let bytes = std::fs::read(&path).map_err(|e| SnapshotError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let mut star_counts = [0u64; 5];
    for s in ratings.column("star")?.u8()?.iter().flatten() {
        star_counts[usize::from(s.clamp(1, 5) - 1)] += 1;
    }
    let manifest = Manifest {
        manifest_version: snapshot::MANIFEST_VERSION,
        rows: ratings.height() as u64,
        star_counts,
        as_of,
        model_version: card.version().to_string(),
        ratings_sha256: snapshot::sha256_hex(&bytes),
        model_sha256: snapshot::sha256_hex(model_json.as_bytes()),
        data_fingerprint: data_fingerprint.to_string(),
        created_at: chrono::Utc::now(),
        drift,
    };
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| SnapshotError::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    };
    write(MODEL_FILE, model_json)?;
    write(
        MANIFEST_FILE,
        &serde_json::to_string_pretty(&manifest).unwrap_or_default(),
    )?;
    Ok(manifest)
}

/// Rates every buyer as of `as_of` and publishes the snapshot atomically at `out`.
/// `gate` sees the new ratings before anything is published and may refuse them
/// (the drift check), or return a drift report to record in the manifest.
pub fn rate(
    h: &History,
    card: &Scorecard,
    model_json: &str,
    as_of: NaiveDate,
    out: &Path,
    gate: impl FnOnce(&Scores) -> Result<Option<serde_json::Value>, RateError>,
) -> Result<(Manifest, Scores), RateError> {
    let t = date_micros(as_of);
    let scores = score_history(h, card, t)?;
    let drift = gate(&scores)?;
    let mut frame = ratings_frame(card, &scores, as_of)?;
    let mut manifest = None;
    snapshot::publish_dir::<RateError>(out, |dir| {
        manifest = Some(write_snapshot(
            dir,
            card,
            model_json,
            &mut frame,
            as_of,
            &h.fingerprint,
            drift,
        )?);
        Ok(())
    })?;
    let manifest = manifest.ok_or_else(|| RateError::Refused("nothing was written".into()))?;
    Ok((manifest, scores))
}
