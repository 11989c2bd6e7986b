//! The training and evaluation workflows behind `fastrefund train` and `evaluate`:
//! on a history (buyer features as of a date, out-of-time test) or on any table.

use crate::features::{DAY, FEATURES, date_micros, labelled_features_as_of, performance_rows};
use crate::frame as dataset;
use crate::tables::{DataError, History, load_history};
use chrono::NaiveDate;
use fastrefund_core::cols::{BUYER_ID, LABEL};
use fastrefund_core::scoring::{ModelError, Scorecard, SplitMetrics, TrainingInfo};
use fastrefund_train::dataset::{Dataset, DatasetError, FeatureData};
use fastrefund_train::metrics::{self, CalibrationRow};
use fastrefund_train::{
    FeatureMeta, TrainError, TrainParams, fit_scorecard, generic_meta, model_columns, score_columns,
};
use polars::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Why a workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("computing features: {0}")]
    Polars(#[from] PolarsError),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot encode {what}: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error(transparent)]
    ModelFile(#[from] fastrefund_snapshot::ModelFileError),
}

fn encode(what: &'static str, e: serde_json::Error) -> WorkflowError {
    WorkflowError::Encode { what, source: e }
}

fn io(path: &Path, e: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Everything an evaluation found, written as `evaluation.json` next to the model.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub model_version: String,
    pub train: Option<SplitMetrics>,
    pub test: SplitMetrics,
    /// Calibration of the test split by score decile.
    pub calibration: Vec<CalibrationRow>,
    /// Information value of every candidate feature, and whether the model kept it.
    pub information_value: Vec<IvRow>,
    /// ROC curve on the test split: `[false positive rate, true positive rate]`.
    pub roc: Vec<[f64; 2]>,
    /// Cumulative shares of bads and goods by score on the test split.
    pub ks_curve: Vec<[f64; 3]>,
    /// Score distribution of goods and bads on the test split.
    pub score_distribution: metrics::ScoreDistribution,
    /// The challenger on the same splits, when one was trained.
    pub challenger: Option<ChallengerEval>,
    pub notes: Vec<String>,
}

/// The challenger's figures on the same splits as the champion's.
#[derive(Debug, Clone, Serialize)]
pub struct ChallengerEval {
    pub model_version: String,
    pub kind: String,
    pub train_auc: f64,
    pub auc: f64,
    pub ks: f64,
    pub gini: f64,
    pub brier: f64,
    pub roc: Vec<[f64; 2]>,
    /// Population and bad rate by the challenger's star, test split.
    pub stars: Vec<fastrefund_core::scoring::StarRow>,
}

fn challenger_eval(
    ch: &fastrefund_train::challenger::Challenger,
    train: &Dataset,
    test: &Dataset,
) -> Result<ChallengerEval, WorkflowError> {
    let tr = fastrefund_train::challenger::scores(ch, train)?;
    let te = fastrefund_train::challenger::scores(ch, test)?;
    let risk = |s: &[i32]| s.iter().map(|v| -f64::from(*v)).collect::<Vec<_>>();
    let risk_te = risk(&te);
    let auc = metrics::auc(&risk_te, &test.labels);
    let p: Vec<f64> = te.iter().map(|s| 1.0 - f64::from(*s) / 1000.0).collect();
    Ok(ChallengerEval {
        model_version: ch.model_version.clone(),
        kind: ch.kind.clone(),
        train_auc: metrics::auc(&risk(&tr), &train.labels),
        auc,
        ks: metrics::ks(&risk_te, &test.labels),
        gini: 2.0 * auc - 1.0,
        brier: metrics::brier(&p, &test.labels),
        roc: metrics::roc_points(&risk_te, &test.labels, 200),
        stars: metrics::star_table(&ch.cutoffs(), &te, &test.labels),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct IvRow {
    pub feature: String,
    pub iv: f64,
    pub kept: bool,
}

/// The figures `evaluate --json` prints.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub auc: f64,
    pub ks: f64,
    pub gini: f64,
    pub brier: f64,
    pub rows: u64,
    pub bads: u64,
}

impl From<&SplitMetrics> for Summary {
    fn from(m: &SplitMetrics) -> Summary {
        Summary {
            auc: m.auc,
            ks: m.ks,
            gini: m.gini,
            brier: m.brier,
            rows: m.rows,
            bads: m.bads,
        }
    }
}

/// Options of `train --data`.
#[derive(Debug, Clone)]
pub struct HistoryTraining {
    pub data: PathBuf,
    pub as_of: NaiveDate,
    /// Default: `as_of` + 90 days, when the history covers its label window.
    pub test_as_of: Option<NaiveDate>,
    pub out: PathBuf,
    pub params: TrainParams,
    /// Also train the challenger (bagged trees) and compare it in the report.
    pub challenger: Option<fastrefund_train::challenger::ChallengerParams>,
}

/// Options of `train --table`.
#[derive(Debug, Clone)]
pub struct TableTraining {
    pub table: PathBuf,
    pub label: String,
    pub out: PathBuf,
    pub test_fraction: f64,
    pub seed: u64,
    /// Columns that are not features (ids, dates).
    pub exclude: Vec<String>,
    /// Out-of-time split: rows whose `column` is ≥ `at` are the test split.
    pub split_column: Option<(String, String)>,
    pub params: TrainParams,
    /// Also train the challenger when every feature is numeric.
    pub challenger: Option<fastrefund_train::challenger::ChallengerParams>,
}

/// What a training run produced.
#[derive(Debug, Clone)]
pub struct Trained {
    pub card: Scorecard,
    pub evaluation: Evaluation,
    pub model_path: PathBuf,
}

fn buyer_meta() -> Vec<FeatureMeta> {
    FEATURES
        .iter()
        .map(|f| FeatureMeta {
            description: f.description.into(),
            message: f.message.into(),
            advice: f.advice.into(),
            missing_message: f.when_missing.map(|(m, _)| m.into()),
            missing_advice: f.when_missing.map(|(_, a)| a.into()),
            trend: f.trend,
        })
        .collect()
}

/// The performance population of a labelled feature frame, as a dataset.
fn history_dataset(df: &DataFrame) -> Result<Dataset, WorkflowError> {
    let df = performance_rows(df)?;
    let (ds, _) =
        dataset::dataset_from_frame(&df, LABEL, &[BUYER_ID.to_string()], "buyer features")?;
    Ok(ds)
}

/// The latest timestamp in a history (µs).
fn history_end(h: &History) -> i64 {
    use fastrefund_core::cols::*;
    let max_of = |df: &DataFrame, c: &str| {
        df.column(c)
            .ok()
            .and_then(|c| c.i64().ok().and_then(|x| x.max()))
            .unwrap_or(i64::MIN)
    };
    max_of(&h.orders, ORDERED_AT)
        .max(max_of(&h.returns, REQUESTED_AT))
        .max(max_of(&h.returns, OUTCOME_AT))
        .max(max_of(&h.disputes, DECIDED_AT))
}

/// A model version from the data's fingerprint and the training parameters: the same
/// data and parameters give the same version; parameters that cannot be encoded are an
/// error (an empty encoding would make different models share a version).
fn version_tag(
    prefix: &str,
    fingerprint: &str,
    params: &impl Serialize,
) -> Result<String, WorkflowError> {
    let p = serde_json::to_string(params).map_err(|e| encode("the training parameters", e))?;
    let h = fastrefund_snapshot::sha256_hex(format!("{fingerprint}{p}").as_bytes());
    Ok(format!("{prefix}-{}", &h[..8]))
}

fn random_split(n: usize, fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    idx.shuffle(&mut rng);
    let k = ((n as f64) * fraction).round() as usize;
    let (test, train) = idx.split_at(k.min(n));
    let mut train = train.to_vec();
    let mut test = test.to_vec();
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

fn finish(
    fitted: fastrefund_train::Fitted,
    train: &Dataset,
    test: &Dataset,
    out: &Path,
    challenger: Option<&fastrefund_train::challenger::ChallengerParams>,
) -> Result<Trained, WorkflowError> {
    let card = fitted.card;
    let evaluate_span = tracing::info_span!("evaluate").entered();
    let score = |ds: &Dataset| -> Result<Vec<i32>, WorkflowError> {
        let cols = model_columns(&card, ds)?;
        Ok(score_columns(&card, &cols, ds.rows()))
    };
    let train_scores = score(train)?;
    let test_scores = score(test)?;
    let train_m = metrics::split_metrics(&card, &train_scores, &train.labels);
    let test_m = metrics::split_metrics(&card, &test_scores, &test.labels);
    let p: Vec<f64> = test_scores
        .iter()
        .map(|s| card.probability_bad(f64::from(*s)))
        .collect();
    let calibration = metrics::calibration(&test_scores, &p, &test.labels, 10);
    let mut notes = fitted.notes;
    if !metrics::strictly_falling(&test_m.stars) {
        notes.push("on the test split the bad rate does not fall strictly from 1★ to 5★".into());
    }
    let mut model = card.model().clone();
    model.metrics.train = Some(train_m.clone());
    model.metrics.test = Some(test_m.clone());
    let card = model.check()?;
    drop(evaluate_span);
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let challenger = match challenger {
        Some(p) => {
            let _s = tracing::info_span!("challenger").entered();
            let shares: Vec<f64> = train_m.stars.iter().map(|s| s.share).collect();
            let shares = [shares[0], shares[1], shares[2], shares[3], shares[4]];
            let version = format!("{}-challenger", card.version());
            let ch = fastrefund_train::challenger::fit(train, p, shares, version)?;
            let path = out.join("challenger.json");
            std::fs::write(
                &path,
                serde_json::to_string(&ch).map_err(|e| encode("challenger.json", e))?,
            )
            .map_err(|e| io(&path, e))?;
            Some(challenger_eval(&ch, train, test)?)
        }
        None => None,
    };
    let _s = tracing::info_span!("report").entered();
    let risk: Vec<f64> = test_scores.iter().map(|s| -f64::from(*s)).collect();
    let evaluation = Evaluation {
        model_version: card.version().to_string(),
        train: Some(train_m),
        test: test_m,
        calibration,
        information_value: fitted
            .candidates
            .into_iter()
            .map(|(feature, iv, kept)| IvRow { feature, iv, kept })
            .collect(),
        roc: metrics::roc_points(&risk, &test.labels, 200),
        ks_curve: metrics::ks_curve(&test_scores, &test.labels, 200),
        score_distribution: metrics::score_distribution(&test_scores, &test.labels, 30),
        challenger,
        notes,
    };
    let model_path = out.join("model.json");
    std::fs::write(&model_path, card.model().to_json()?).map_err(|e| io(&model_path, e))?;
    let eval_path = out.join("evaluation.json");
    std::fs::write(
        &eval_path,
        serde_json::to_string_pretty(&evaluation).map_err(|e| encode("evaluation.json", e))?,
    )
    .map_err(|e| io(&eval_path, e))?;
    Ok(Trained {
        card,
        evaluation,
        model_path,
    })
}

/// `train --data`: buyer features as of `as_of`, tested out of time as of `test_as_of`.
pub fn train_history(o: &HistoryTraining) -> Result<Trained, WorkflowError> {
    let params = o.params.clone().check()?;
    let h = load_history(&o.data)?;
    let t = date_micros(o.as_of);
    let train_df = {
        let _s = tracing::info_span!("features", as_of = %o.as_of).entered();
        labelled_features_as_of(&h, t)?
    };
    let full = history_dataset(&train_df)?;
    let test_as_of = o.test_as_of.unwrap_or(o.as_of + chrono::Duration::days(90));
    let t2 = date_micros(test_as_of);
    let end = history_end(&h);
    let (train, test, split, test_date) = if t2 > t && end >= t2 + 89 * DAY {
        let _s = tracing::info_span!("features", as_of = %test_as_of).entered();
        let test_df = labelled_features_as_of(&h, t2)?;
        (
            full,
            history_dataset(&test_df)?,
            "out_of_time",
            Some(test_as_of),
        )
    } else {
        tracing::warn!(
            %test_as_of,
            "the history does not cover the out-of-time label window; testing on a seeded random 30% of buyers instead"
        );
        let (a, b) = random_split(full.rows(), 0.3, 1);
        (full.take(&a), full.take(&b), "random", None)
    };
    let info = TrainingInfo {
        data_fingerprint: h.fingerprint.clone(),
        split: split.into(),
        as_of: Some(o.as_of),
        test_as_of: test_date,
        seed: (split == "random").then_some(1),
        test_fraction: (split == "random").then_some(0.3),
        label: format!(
            "{LABEL}: 1 = a loss on an advanced refund or a lost fraud-flagged dispute in (T, T+90 days]; \
             population: buyers who asked for a return in that window"
        ),
        params: serde_json::to_value(params.params())
            .map_err(|e| encode("the training parameters", e))?,
    };
    let version = version_tag(
        &format!("scorecard-{}", o.as_of),
        &h.fingerprint,
        params.params(),
    )?;
    let fitted = {
        let _s = tracing::info_span!("fit", rows = train.rows(), bads = train.bads()).entered();
        fit_scorecard(&train, &buyer_meta(), &params, info, version)?
    };
    finish(fitted, &train, &test, &o.out, o.challenger.as_ref())
}

/// Rows of `df` whose `column` is at or after `at` (compared as numbers when the
/// column is numeric, else as text, which orders ISO dates).
fn oot_mask(
    df: &DataFrame,
    column: &str,
    at: &str,
    file: &str,
) -> Result<Vec<bool>, WorkflowError> {
    let c = df
        .column(column)
        .map_err(|_| WorkflowError::Invalid(format!("{file}: no split column `{column}`")))?
        .as_materialized_series()
        .clone();
    if c.dtype().is_primitive_numeric() {
        let x: f64 = at.parse().map_err(|_| {
            WorkflowError::Invalid(format!(
                "split value {at:?} is not a number, but `{column}` is numeric"
            ))
        })?;
        let f = c.cast(&DataType::Float64)?;
        Ok(f.f64()?.iter().map(|v| v.is_some_and(|v| v >= x)).collect())
    } else {
        let s = c.cast(&DataType::String)?;
        Ok(s.str()?
            .iter()
            .map(|v| v.is_some_and(|v| v >= at))
            .collect())
    }
}

/// `train --table`: a scorecard on any table with a 0/1 label.
pub fn train_table(o: &TableTraining) -> Result<Trained, WorkflowError> {
    let params = o.params.clone().check()?;
    if !(0.0 < o.test_fraction && o.test_fraction < 1.0) {
        return Err(WorkflowError::Invalid(format!(
            "--test-fraction must be between 0 and 1, got {}",
            o.test_fraction
        )));
    }
    let file = o.table.display().to_string();
    let df = dataset::read_table(&o.table)?;
    let bytes = std::fs::read(&o.table).map_err(|e| io(&o.table, e))?;
    let fingerprint = fastrefund_snapshot::sha256_hex(&bytes);
    let mut exclude = o.exclude.clone();
    if let Some((c, _)) = &o.split_column {
        exclude.push(c.clone());
    }
    let (full, skipped) = dataset::dataset_from_frame(&df, &o.label, &exclude, &file)?;
    if !skipped.is_empty() {
        tracing::warn!(
            ?skipped,
            "columns that are neither numeric nor text are not used"
        );
    }
    let (train_idx, test_idx, split) = match &o.split_column {
        Some((c, at)) => {
            let mask = oot_mask(&df, c, at, &file)?;
            let (a, b): (Vec<usize>, Vec<usize>) = (0..full.rows()).partition(|i| !mask[*i]);
            (a, b, "out_of_time")
        }
        None => {
            let (a, b) = random_split(full.rows(), o.test_fraction, o.seed);
            (a, b, "random")
        }
    };
    if train_idx.is_empty() || test_idx.is_empty() {
        return Err(WorkflowError::Invalid(format!(
            "the split leaves {} training and {} test rows; both need some",
            train_idx.len(),
            test_idx.len()
        )));
    }
    let train = full.take(&train_idx);
    let test = full.take(&test_idx);
    let meta: Vec<FeatureMeta> = train.names.iter().map(|n| generic_meta(n)).collect();
    let info = TrainingInfo {
        data_fingerprint: fingerprint.clone(),
        split: split.into(),
        as_of: None,
        test_as_of: None,
        seed: (split == "random").then_some(o.seed),
        test_fraction: (split == "random").then_some(o.test_fraction),
        label: format!("{}: 1 = bad", o.label),
        params: serde_json::json!({
            "trainer": params.params(),
            "table": file,
            "excluded": exclude,
            "skipped": skipped,
            "split_column": o.split_column,
        }),
    };
    let stem = o
        .table
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table".into());
    let version = version_tag(&format!("scorecard-{stem}"), &fingerprint, params.params())?;
    let fitted = {
        let _s = tracing::info_span!("fit", rows = train.rows(), bads = train.bads()).entered();
        fit_scorecard(&train, &meta, &params, info, version)?
    };
    let numeric = train
        .columns
        .iter()
        .all(|c| matches!(c, FeatureData::Num(_)));
    let challenger = o.challenger.as_ref().filter(|_| numeric);
    finish(fitted, &train, &test, &o.out, challenger)
}

/// Scores a labelled table with a model and measures it.
pub fn evaluate_table(
    model: &Path,
    table: &Path,
    label: &str,
) -> Result<SplitMetrics, WorkflowError> {
    let card = fastrefund_snapshot::load_model(model)?.check()?;
    let file = table.display().to_string();
    let df = dataset::read_table(table)?;
    let labels = dataset::labels_of(&df, label, &file)?;
    let names: Vec<&str> = card.feature_names().collect();
    let cols: Vec<FeatureData> = dataset::columns_for_model(&df, &names, &file)?;
    let scores = score_columns(&card, &cols, labels.len());
    Ok(metrics::split_metrics(&card, &scores, &labels))
}

/// Scores a history's buyers as of a date against their label and measures it.
pub fn evaluate_history(
    model: &Path,
    data: &Path,
    as_of: NaiveDate,
) -> Result<SplitMetrics, WorkflowError> {
    let card = fastrefund_snapshot::load_model(model)?.check()?;
    let h = load_history(data)?;
    let df = labelled_features_as_of(&h, date_micros(as_of))?;
    let ds = history_dataset(&df)?;
    let cols = model_columns(&card, &ds)?;
    let scores = score_columns(&card, &cols, ds.rows());
    Ok(metrics::split_metrics(&card, &scores, &ds.labels))
}
