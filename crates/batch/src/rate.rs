//! Batch scoring: every buyer's features as of a date, scored with the same
//! [`Scorecard`] the service loads, published as an atomic ratings snapshot.
//!
//! `rate` takes the model once, as a [`LoadedModel`] (the checked scorecard and the
//! text of its `model.json`, which the snapshot carries byte for byte), so the card
//! that scores and the file that is published cannot disagree. `ratings.parquet`'s
//! columns are named by [`fastrefund_snapshot::ratings`], which the service's reader
//! uses too: the rating (after any strikes, [`crate::overrides`]) and each buyer's
//! points per feature (before them), so the service can strike a reason again.

use super::features::{FEATURES, date_micros, features_with_norms};
use super::overrides::{Applied, Overrides};
use super::scores::PointsTable;
pub use super::shards::Source;
use super::tables::{DataError, History};
use chrono::NaiveDate;
use fastrefund_core::cols::BUYER_ID;
use fastrefund_core::scoring::{MAX_REASONS, Scorecard, Scored};
use fastrefund_snapshot::drift::{DriftReport, Tally};
use fastrefund_snapshot::ratings;
use fastrefund_snapshot::{
    Baseline, Distribution, LoadedModel, MANIFEST_FILE, MODEL_FILE, Manifest, RATINGS_FILE,
    SnapshotError,
};
use fastrefund_train::challenger::Challenger;
use fastrefund_train::overturn::Overturns;
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
    Data(#[from] DataError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("{0}")]
    Refused(String),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("cannot draw the drift figure: {0}")]
    Figure(String),
    #[error("cannot draw the cases figure: {0}")]
    CasesFigure(String),
}

/// Draws the drift figure (SVG) from a drift report; the report crate has one.
pub type DriftFigure = fn(&DriftReport) -> Result<String, String>;

/// Draws the cases figure (SVG) from the overturn rates; the report crate has one.
pub type CasesFigure = fn(&Overturns) -> Result<String, String>;

pub use crate::scores::Scores;

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

/// The `buyer_id` column of a feature table; a buyer without one is an error (it would
/// be rated as buyer 0), never read as 0.
pub(crate) fn buyer_ids(features: &DataFrame) -> PolarsResult<Vec<u64>> {
    let ids = features.column(BUYER_ID)?.u64()?;
    if ids.null_count() > 0 {
        polars_bail!(ComputeError: "{} buyers of the feature table have no {BUYER_ID}", ids.null_count());
    }
    Ok(ids.into_no_null_iter().collect())
}

/// Scores every buyer known at `t` (µs).
pub fn score_history(h: &History, card: &Scorecard, t: i64) -> Result<Scores, RateError> {
    let norms = Source::Whole(h).norms_for(t, card)?;
    score_part(h, card, t, &norms)
}

/// Scores every buyer of `h` (a whole history or one part of it) known at `t`, with the
/// whole history's category norms.
pub fn score_part(
    h: &History,
    card: &Scorecard,
    t: i64,
    norms: &DataFrame,
) -> Result<Scores, RateError> {
    let features = {
        let _s = tracing::info_span!("features").entered();
        features_with_norms(h, t, norms.clone().lazy())?.collect()?
    };
    let _s = tracing::info_span!("score", buyers = features.height()).entered();
    let ids = buyer_ids(&features)?;
    let cols = model_inputs(card, &features)?;
    // Each buyer's points first (the snapshot keeps them), then the rating from them:
    // the same as scoring the values ([`Scorecard::score_points`]).
    let mut points = PointsTable::zeroed(ids.len(), cols.len());
    let scored: Vec<Scored> = points
        .rows_mut()
        .enumerate()
        .map_init(
            || vec![0.0; cols.len()],
            |row, (i, (p, m))| {
                for (v, c) in row.iter_mut().zip(&cols) {
                    *v = c[i];
                }
                let pm = card.points_numeric(row)?;
                p.copy_from_slice(&pm.points);
                m.copy_from_slice(&pm.missing);
                card.score_points(&pm)
            },
        )
        .collect::<Result<_, _>>()
        .map_err(SnapshotError::from)?;
    drop(cols);
    Ok(Scores {
        buyer_ids: ids,
        scored,
        points,
        features,
    })
}

/// Challenger stars of every scored buyer (from the feature frame the scores came from).
pub fn challenger_stars(ch: &Challenger, s: &Scores) -> Result<Vec<u8>, RateError> {
    Ok(challenger_scores(ch, s)?.into_iter().map(|x| x.1).collect())
}

/// Challenger score and star of every scored buyer.
pub fn challenger_scores(ch: &Challenger, s: &Scores) -> Result<Vec<(i32, u8)>, RateError> {
    let cols: Vec<Vec<f64>> = ch
        .features
        .iter()
        .map(|name| {
            let c = s
                .features
                .column(name)
                .map_err(|_| RateError::UnknownFeature(name.clone()))?
                .f64()?
                .clone();
            Ok(c.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
        })
        .collect::<Result<_, RateError>>()?;
    Ok((0..s.buyer_ids.len())
        .into_par_iter()
        .map(|i| {
            let row: Vec<f64> = cols.iter().map(|c| c[i]).collect();
            let score = ch.score(&row);
            (score, ch.star_of(score).get())
        })
        .collect())
}

/// The `ratings.parquet` frame (with `challenger_star` when a challenger is given):
/// `star`, `score` and the reasons as `s.scored` has them (struck, once overrides were
/// applied), and one `points_<feature>` column per model feature, in model order, from
/// `s.points` (never struck).
pub fn ratings_frame(
    card: &Scorecard,
    s: &Scores,
    as_of: NaiveDate,
    challenger: Option<&[u8]>,
) -> PolarsResult<DataFrame> {
    let n = s.buyer_ids.len();
    let mut cols = vec![
        Column::new(ratings::BUYER_ID.into(), s.buyer_ids.clone()),
        Column::new(
            ratings::STAR.into(),
            s.scored.iter().map(|x| x.star.get()).collect::<Vec<u8>>(),
        ),
        Column::new(
            ratings::SCORE.into(),
            s.scored.iter().map(|x| x.score).collect::<Vec<i32>>(),
        ),
    ];
    for k in 0..MAX_REASONS {
        let v: Vec<Option<String>> = s
            .scored
            .iter()
            .map(|x| x.reasons[k].map(|r| r.code(card)))
            .collect();
        cols.push(Column::new(ratings::reason_column(k + 1).into(), v));
    }
    // Days since 1970-01-01 (`NaiveDate::default()`), as Parquet stores a date.
    let days = (as_of - NaiveDate::default()).num_days() as i32;
    cols.push(
        Series::new(ratings::AS_OF.into(), vec![days; n])
            .into_date()
            .into_column(),
    );
    cols.push(Column::new(
        ratings::MODEL_VERSION.into(),
        vec![card.version(); n],
    ));
    if let Some(c) = challenger {
        cols.push(Column::new(ratings::CHALLENGER_STAR.into(), c.to_vec()));
    }
    // The points each buyer's values earned, before any strike (null: missing), within
    // what the snapshot's reader keeps (16 bits, its lowest value marking a missing one).
    for (j, name) in card.feature_names().enumerate() {
        let c = s.points.column(j);
        let keeps = i32::from(i16::MIN) + 1..=i32::from(i16::MAX);
        if let Some(v) = [c.min(), c.max()]
            .into_iter()
            .flatten()
            .find(|v| !keeps.contains(v))
        {
            polars_bail!(ComputeError: "the model gives {v} points for `{name}`, outside the ±32,767 a snapshot keeps");
        }
        cols.push(
            c.with_name(ratings::points_column(name).into())
                .into_column(),
        );
    }
    DataFrame::new(n, cols)
}

/// `v` as indented JSON; a value that cannot be encoded is an error, never an empty file.
fn pretty<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String, RateError> {
    serde_json::to_string_pretty(v).map_err(|source| RateError::Encode { what, source })
}

/// What a snapshot records beside its ratings.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub drift: Option<DriftReport>,
    pub distribution: Option<Distribution>,
    pub challenger_version: Option<String>,
    /// Draws `drift.svg` beside `drift.json`.
    pub drift_figure: Option<DriftFigure>,
    /// The overturn rates of decided cases (`cases.json`).
    pub cases: Option<Overturns>,
    /// Draws `cases.svg` beside `cases.json`.
    pub cases_figure: Option<CasesFigure>,
}

/// Writes a snapshot's files into `dir` and returns its manifest: `ratings.parquet`,
/// `model.json`, `manifest.json`, with drift `drift.json` and `drift.svg`, and with
/// cases `cases.json` and `cases.svg`.
pub fn write_snapshot(
    dir: &Path,
    model: &LoadedModel,
    table: &mut DataFrame,
    as_of: NaiveDate,
    data_fingerprint: &str,
    extras: Extras,
) -> Result<Manifest, RateError> {
    let mut w = RatingsWriter::new(dir);
    w.write(table)?;
    let mut star_counts = [0u64; 5];
    for s in table.column(ratings::STAR)?.u8()?.iter().flatten() {
        star_counts[usize::from(s.clamp(1, 5) - 1)] += 1;
    }
    w.finish()?;
    finish_snapshot(
        dir,
        model,
        (table.height() as u64, star_counts),
        as_of,
        data_fingerprint,
        extras,
    )
}

/// `ratings.parquet`, written a part at a time.
struct RatingsWriter {
    path: std::path::PathBuf,
    writer: Option<polars::io::parquet::write::BatchedWriter<std::fs::File>>,
}

fn io_error(p: &Path, e: &dyn std::fmt::Display) -> SnapshotError {
    SnapshotError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    }
}

impl RatingsWriter {
    fn new(dir: &Path) -> RatingsWriter {
        RatingsWriter {
            path: dir.join(RATINGS_FILE),
            writer: None,
        }
    }

    fn write(&mut self, part: &DataFrame) -> Result<(), RateError> {
        let w = match &mut self.writer {
            Some(w) => w,
            slot => {
                let f = std::fs::File::create(&self.path).map_err(|e| io_error(&self.path, &e))?;
                slot.insert(
                    ParquetWriter::new(f)
                        .with_compression(ParquetCompression::Zstd(None))
                        .batched(part.schema())?,
                )
            }
        };
        w.write_batch(part)?;
        Ok(())
    }

    fn finish(self) -> Result<(), RateError> {
        match self.writer {
            Some(w) => {
                w.finish()?;
                Ok(())
            }
            None => Err(RateError::Refused("no ratings were written".into())),
        }
    }
}

/// SHA-256 of a file, read a block at a time.
fn sha256_file(path: &Path) -> Result<String, SnapshotError> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| io_error(path, &e))?;
    Ok(hex::encode(h.finalize()))
}

/// Writes the snapshot's files beside a finished `ratings.parquet` of `rows` buyers
/// with `star_counts`, and returns its manifest.
fn finish_snapshot(
    dir: &Path,
    model: &LoadedModel,
    (rows, star_counts): (u64, [u64; 5]),
    as_of: NaiveDate,
    data_fingerprint: &str,
    extras: Extras,
) -> Result<Manifest, RateError> {
    let ratings_sha256 = sha256_file(&dir.join(RATINGS_FILE))?;
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| io_error(&p, &e))
    };
    if let Some(d) = &extras.drift {
        write("drift.json", &pretty("drift.json", d)?)?;
        if let Some(draw) = extras.drift_figure {
            write("drift.svg", &draw(d).map_err(RateError::Figure)?)?;
        }
    }
    if let Some(o) = &extras.cases {
        write("cases.json", &pretty("cases.json", o)?)?;
        if let Some(draw) = extras.cases_figure {
            write("cases.svg", &draw(o).map_err(RateError::CasesFigure)?)?;
        }
    }
    let manifest = Manifest {
        manifest_version: fastrefund_snapshot::MANIFEST_VERSION,
        rows,
        star_counts,
        as_of,
        model_version: model.card().version().to_string(),
        ratings_sha256,
        model_sha256: fastrefund_snapshot::sha256_hex(model.json().as_bytes()),
        data_fingerprint: data_fingerprint.to_string(),
        created_at: chrono::Utc::now(),
        drift: extras
            .drift
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|source| RateError::Encode {
                what: "the manifest's drift",
                source,
            })?,
        distribution: extras.distribution,
        challenger_version: extras.challenger_version,
    };
    write(MODEL_FILE, model.json())?;
    write(MANIFEST_FILE, &pretty(MANIFEST_FILE, &manifest)?)?;
    Ok(manifest)
}

/// How `rate` publishes.
#[derive(Debug, Clone, Copy)]
pub struct RateOptions<'a> {
    /// Also rate every buyer with this challenger (`challenger_star`).
    pub challenger: Option<&'a Challenger>,
    /// The snapshot in service, to measure drift against.
    pub baseline: Option<&'a Baseline>,
    /// Refuse to publish when the score PSI against the baseline passes this
    /// (default 0.25)...
    pub max_psi: f64,
    /// ... unless forced.
    pub force: bool,
    /// Draws `drift.svg` (the caller's renderer; none: the drift is written as JSON only).
    pub drift_figure: Option<DriftFigure>,
    /// The overturn rates of the cases decided since the snapshot in service
    /// (`rate --cases`), published as `cases.json` (and `cases.svg`) in the snapshot.
    pub cases: Option<&'a Overturns>,
    /// Draws `cases.svg` (the caller's renderer; none: JSON only).
    pub cases_figure: Option<CasesFigure>,
    /// Reasons struck by rating cases the buyers won (`rate --overrides`): each buyer
    /// with strikes is published with the corrected rating
    /// ([`crate::overrides::Overrides::apply`]).
    pub overrides: Option<&'a Overrides>,
}

impl Default for RateOptions<'_> {
    fn default() -> Self {
        RateOptions {
            challenger: None,
            baseline: None,
            max_psi: 0.25,
            force: false,
            drift_figure: None,
            cases: None,
            cases_figure: None,
            overrides: None,
        }
    }
}

/// The snapshot to measure drift against: `explicit` (`--baseline`) if given, which must
/// load; otherwise the snapshot already at `out` (the one this run replaces, so the one
/// in service), if there is one. One at `out` that cannot be read is not a baseline:
/// the run goes on without a drift check and says so in the log.
pub fn drift_baseline(explicit: Option<&Path>, out: &Path) -> Result<Option<Baseline>, RateError> {
    if let Some(dir) = explicit {
        return Ok(Some(Baseline::load(dir)?));
    }
    if !out.join(MANIFEST_FILE).is_file() {
        return Ok(None);
    }
    match Baseline::load(out) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            tracing::warn!(error = %e, "the snapshot at --out cannot be read; no drift check");
            Ok(None)
        }
    }
}

/// Rates every buyer as of `as_of` and publishes the snapshot atomically at `out`.
/// With a baseline, the drift is measured and a snapshot whose scores moved more than
/// `max_psi` is refused (nothing is published) unless `force`.
///
/// The history is held whole or split into shards ([`Source`]): the category norms
/// come from a first pass over every part, then each part's buyers are scored, given
/// their strikes (`opts.overrides`), and appended to `ratings.parquet`, keeping only
/// what the distributions and drift need ([`Tally`]).
pub fn rate(
    src: Source<'_>,
    model: &LoadedModel,
    as_of: NaiveDate,
    out: &Path,
    opts: &RateOptions<'_>,
) -> Result<Manifest, RateError> {
    if !(opts.max_psi.is_finite() && opts.max_psi >= 0.0) {
        // A NaN would let every drift through (no PSI is greater than NaN).
        return Err(RateError::Refused(format!(
            "max_psi must be a number ≥ 0, not {}",
            opts.max_psi
        )));
    }
    let card = model.card();
    let t = date_micros(as_of);
    let norms = src.norms_for(t, card)?;
    let mut manifest = None;
    fastrefund_snapshot::publish_dir::<RateError>(out, |dir| {
        let mut tally = Tally::default();
        let mut applied = Applied::default();
        let mut ratings = RatingsWriter::new(dir);
        for k in 0..src.parts() {
            let _s = tracing::info_span!("part", k, of = src.parts()).entered();
            let part = src.part(k)?;
            let mut scores = score_part(&part, card, t, &norms)?;
            drop(part);
            if let Some(o) = opts.overrides {
                let _s = tracing::info_span!("overrides").entered();
                o.apply(card, &mut scores, &mut applied)
                    .map_err(SnapshotError::from)?;
            }
            tally.add(
                card,
                opts.baseline.map(|b| b.model()),
                &scores.scored,
                &|n| scores.feature_values(n),
            );
            let challenger = opts
                .challenger
                .map(|c| {
                    let _s = tracing::info_span!("challenger_stars").entered();
                    challenger_stars(c, &scores)
                })
                .transpose()?;
            ratings.write(&ratings_frame(card, &scores, as_of, challenger.as_deref())?)?;
        }
        ratings.finish()?;
        if let Some(o) = opts.overrides {
            o.log(&applied);
        }
        let drift = opts
            .baseline
            .and_then(|b| fastrefund_snapshot::drift::drift(b, &tally));
        if let Some(d) = &drift {
            tracing::info!(score_psi = d.score_psi, star_psi = d.star_psi, baseline = %d.baseline_model_version, "drift against the snapshot in service");
            if d.score_psi > opts.max_psi && !opts.force {
                let moved = d.moved(0.1);
                return Err(RateError::Refused(format!(
                    "the score distribution moved too far from the snapshot in service ({} as of {}): score PSI {:.3} > {:.2} (star PSI {:.3}); features that moved: {}. Nothing was published; check the data, or pass --force to publish anyway",
                    d.baseline_model_version,
                    d.baseline_as_of,
                    d.score_psi,
                    opts.max_psi,
                    d.star_psi,
                    if moved.is_empty() {
                        "none above 0.1".into()
                    } else {
                        moved.join(", ")
                    }
                )));
            }
        }
        let _s = tracing::info_span!("publish").entered();
        let extras = Extras {
            drift,
            distribution: Some(fastrefund_snapshot::drift::distribution(&tally)),
            challenger_version: opts.challenger.map(|c| c.model_version.clone()),
            drift_figure: opts.drift_figure,
            cases: opts.cases.cloned(),
            cases_figure: opts.cases_figure,
        };
        manifest = Some(finish_snapshot(
            dir,
            model,
            (tally.rows(), tally.star_counts()),
            as_of,
            src.fingerprint(),
            extras,
        )?);
        Ok(())
    })?;
    manifest.ok_or_else(|| RateError::Refused("nothing was written".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::tests::write_history;
    use crate::tables::load_history;

    /// A drift gate that could never close (NaN: no PSI is greater) is refused before
    /// anything is rated or published.
    #[test]
    fn a_max_psi_that_is_not_a_number_is_refused_and_nothing_is_published() {
        let dir = tempfile::tempdir().unwrap();
        write_history(dir.path(), ["", "", "", ""]);
        let h = load_history(dir.path()).unwrap();
        let model = fastrefund_snapshot::load_checked_model(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/snapshot/model.json"),
        )
        .unwrap();
        let out = dir.path().join("snapshot");
        for max_psi in [f64::NAN, -0.1] {
            let opts = RateOptions {
                max_psi,
                ..Default::default()
            };
            let as_of = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
            let e = rate(Source::Whole(&h), &model, as_of, &out, &opts).unwrap_err();
            assert!(e.to_string().contains("max_psi must be a number"), "{e}");
            assert!(!out.exists());
        }
    }
}
