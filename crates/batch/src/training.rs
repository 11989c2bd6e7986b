//! The training and evaluation workflows behind `fastrefund train` and `evaluate`:
//! on a history (buyer features as of a date, out-of-time test) or on any table. What
//! they find comes back as [`Evaluation`] (plain data, in
//! [`fastrefund_train::evaluation`]), which the caller has the report crate draw.

pub use crate::error::{BrokenPromises, WorkflowError};
use crate::error::{encode, io};
use crate::features::{DAY, FEATURES, date_micros, labelled_with_norms, performance_rows};
use crate::frame as dataset;
use crate::sample::sample_key;
use crate::tables::{History, load_history};
use chrono::NaiveDate;
use fastrefund_core::cols::{BUYER_ID, LABEL};
use fastrefund_core::scoring::{Scorecard, SplitMetrics, TrainingInfo, safety};
use fastrefund_train::dataset::{Dataset, FeatureData};
use fastrefund_train::evaluation::{
    ChallengerEval, Evaluation, FairnessRow, IvRow, PromiseCheck, Promises,
};
use fastrefund_train::metrics;
use fastrefund_train::{
    FeatureMeta, TrainParams, fit_scorecard, generic_meta, model_columns, score_columns,
};
use polars::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use std::path::{Path, PathBuf};

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
    /// Fit on a seeded sample of this many buyers of the performance population (the
    /// out-of-time test still scores all of them).
    pub sample_buyers: Option<u64>,
    pub sample_seed: u64,
    /// Whether to hold the history whole or work through it in shards.
    pub plan: crate::shards::Plan,
    /// Buyers the promises to honest buyers are tried on ([`crate::promises`]).
    pub promise_sample: usize,
    /// Publish a model that breaks a promise to honest buyers anyway.
    pub force: bool,
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

impl Trained {
    /// Adds the `cases` section (overturn rates of decided cases, read beforehand with
    /// [`crate::cases::overturns`] so a bad file stops the run before training) to the
    /// evaluation, and writes `evaluation.json` in `dir` again with it.
    pub fn with_cases(
        &mut self,
        dir: &Path,
        cases: fastrefund_train::overturn::Overturns,
    ) -> Result<(), WorkflowError> {
        self.evaluation.cases = Some(cases);
        let path = dir.join("evaluation.json");
        std::fs::write(
            &path,
            serde_json::to_string_pretty(&self.evaluation)
                .map_err(|e| encode("evaluation.json", e))?,
        )
        .map_err(|e| io(&path, e))
    }
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
            on_return: Some(f.on_return),
            honest_step: f.honest_step,
            reads_category_norms: f.reads_category_norms,
            translations: crate::words_zh::zh_cn(f.name)
                .map(|t| (crate::words_zh::ZH_CN.to_string(), t))
                .into_iter()
                .collect(),
        })
        .collect()
}

/// The performance population of a labelled feature frame, as a dataset.
fn history_dataset(df: &DataFrame) -> Result<Dataset, WorkflowError> {
    performance_dataset(&performance_rows(df)?)
}

/// Rows of the performance population (already selected) as a dataset.
fn performance_dataset(df: &DataFrame) -> Result<Dataset, WorkflowError> {
    let (ds, _) =
        dataset::dataset_from_frame(df, LABEL, &[BUYER_ID.to_string()], "buyer features")?;
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

/// A test split's scores: the scorecard's, the challenger's if there is one, and the labels.
struct TestScores {
    card: Vec<i32>,
    challenger: Option<Vec<i32>>,
    labels: Vec<u8>,
}

impl TestScores {
    /// Scores a held test set.
    fn of(
        card: &Scorecard,
        ch: Option<&fastrefund_train::challenger::Challenger>,
        ds: &Dataset,
    ) -> Result<TestScores, WorkflowError> {
        let cols = model_columns(card, ds)?;
        Ok(TestScores {
            card: score_columns(card, &cols, ds.rows())?,
            challenger: ch
                .map(|c| fastrefund_train::challenger::scores(c, ds))
                .transpose()?,
            labels: ds.labels.clone(),
        })
    }

    fn append(&mut self, more: TestScores) {
        self.card.extend(more.card);
        self.labels.extend(more.labels);
        if let (Some(a), Some(b)) = (&mut self.challenger, more.challenger) {
            a.extend(b);
        }
    }
}

/// How the test split is scored once the models are fitted: a held dataset, or
/// part by part over a history too big to hold.
type TestPass<'a> = dyn Fn(
        &Scorecard,
        Option<&fastrefund_train::challenger::Challenger>,
    ) -> Result<TestScores, WorkflowError>
    + 'a;

/// The promise check on a fitted challenger (buyer models only).
type ChallengerPromises<'a> =
    dyn Fn(&fastrefund_train::challenger::Challenger) -> Result<PromiseCheck, WorkflowError> + 'a;

/// The challenger to fit beside the scorecard, and how its promises are tried.
struct ChallengerPlan<'a> {
    params: &'a fastrefund_train::challenger::ChallengerParams,
    promises: Option<&'a ChallengerPromises<'a>>,
}

fn finish(
    fitted: fastrefund_train::Fitted,
    train: &Dataset,
    test: &TestPass<'_>,
    out: &Path,
    challenger: Option<ChallengerPlan<'_>>,
    promises: Option<Promises>,
    fairness: Vec<FairnessRow>,
) -> Result<Trained, WorkflowError> {
    let card = fitted.card;
    let evaluate_span = tracing::info_span!("evaluate").entered();
    let train_scores = {
        let cols = model_columns(&card, train)?;
        score_columns(&card, &cols, train.rows())?
    };
    let train_m = metrics::split_metrics(&card, &train_scores, &train.labels);
    drop(evaluate_span);
    let challenger_promises = challenger.as_ref().and_then(|c| c.promises);
    let challenger = match challenger {
        Some(ChallengerPlan { params: p, .. }) => {
            let _s = tracing::info_span!("challenger").entered();
            let shares: Vec<f64> = train_m.stars.iter().map(|s| s.share).collect();
            let shares = [shares[0], shares[1], shares[2], shares[3], shares[4]];
            let version = format!("{}-challenger", card.version());
            Some(fastrefund_train::challenger::fit(
                train, p, shares, version,
            )?)
        }
        None => None,
    };
    let evaluate_span = tracing::info_span!("evaluate_test").entered();
    let scored = test(&card, challenger.as_ref())?;
    let test_scores = &scored.card;
    let test_m = metrics::split_metrics(&card, test_scores, &scored.labels);
    let p: Vec<f64> = test_scores
        .iter()
        .map(|s| card.probability_bad(f64::from(*s)))
        .collect();
    let calibration = metrics::calibration(test_scores, &p, &scored.labels, 10);
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
    let challenger = match (challenger, &scored.challenger) {
        (Some(ch), Some(te)) => {
            let path = out.join("challenger.json");
            std::fs::write(
                &path,
                serde_json::to_string(&ch).map_err(|e| encode("challenger.json", e))?,
            )
            .map_err(|e| io(&path, e))?;
            let mut eval = ChallengerEval::of(&ch, train, te, &scored.labels)?;
            if let Some(check) = challenger_promises {
                let _s = tracing::info_span!("challenger_promises").entered();
                let found = check(&ch)?;
                if !found.violations.is_empty() {
                    tracing::warn!(
                        broken = found.violations.len(),
                        "the challenger breaks promises to honest buyers: it stays in shadow"
                    );
                }
                eval.promises = Some(found);
            }
            Some(eval)
        }
        _ => None,
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
        roc: metrics::roc_points(&risk, &scored.labels, 200),
        ks_curve: metrics::ks_curve(test_scores, &scored.labels, 200),
        score_distribution: metrics::score_distribution(test_scores, &scored.labels, 30),
        challenger,
        promises,
        fairness,
        cases: None,
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
///
/// A history too big to hold is worked through in shards ([`crate::shards`]): the
/// training rows are gathered part by part (with `sample_buyers`, only a seeded sample
/// of the performance population: the buyers with the smallest seeded hashes of their
/// id, so the sample does not depend on how the history is split), and the
/// out-of-time test scores every buyer of the test population, part by part, keeping
/// only scores and labels.
pub fn train_history(o: &HistoryTraining) -> Result<Trained, WorkflowError> {
    let params = o.params.clone().check()?;
    let opened = crate::shards::Opened::open(&o.data, &o.plan)?;
    let src = opened.source();
    let t = date_micros(o.as_of);
    // The category norms as of `t`: the training features' and, frozen, the model's.
    let norms = src.norms(t)?;
    let (full, end) = {
        let _s = tracing::info_span!("features", as_of = %o.as_of, parts = src.parts()).entered();
        let mut kept: Option<DataFrame> = None;
        let mut end = i64::MIN;
        for k in 0..src.parts() {
            let part = src.part(k)?;
            end = end.max(history_end(&part));
            let df = performance_rows(&labelled_with_norms(&part, t, norms.clone().lazy())?)?;
            kept = Some(match (kept, o.sample_buyers) {
                (None, None) => df,
                (Some(a), None) => a.vstack(&df)?,
                (k, Some(n)) => bottom_n(k, df, n, o.sample_seed)?,
            });
        }
        let mut df =
            kept.ok_or_else(|| WorkflowError::Invalid("the history has no parts".into()))?;
        if o.sample_buyers.is_some() {
            df = df.drop(SAMPLE_KEY)?;
        }
        df = df.sort([BUYER_ID], SortMultipleOptions::default())?;
        (performance_dataset(&df)?, end)
    };
    let frozen_norms = crate::features::norms_map(&norms)?;
    drop(norms);
    let test_as_of = o.test_as_of.unwrap_or(o.as_of + chrono::Duration::days(90));
    let t2 = date_micros(test_as_of);
    let out_of_time = t2 > t && end >= t2 + 89 * DAY;
    let (train, held, split, test_date) = if out_of_time {
        (full, None, "out_of_time", Some(test_as_of))
    } else {
        tracing::warn!(
            %test_as_of,
            "the history does not cover the out-of-time label window; testing on a seeded random 30% of buyers instead"
        );
        let (a, b) = random_split(full.rows(), 0.3, 1);
        (full.take(&a), Some(full.take(&b)), "random", None)
    };
    let mut described =
        serde_json::to_value(params.params()).map_err(|e| encode("the training parameters", e))?;
    if let (Some(n), Some(m)) = (o.sample_buyers, described.as_object_mut()) {
        m.insert("sample_buyers".into(), n.into());
        m.insert("sample_seed".into(), o.sample_seed.into());
    }
    let info = TrainingInfo {
        data_fingerprint: src.fingerprint().to_string(),
        split: split.into(),
        as_of: Some(o.as_of),
        test_as_of: test_date,
        seed: (split == "random").then_some(1),
        test_fraction: (split == "random").then_some(0.3),
        label: format!(
            "{LABEL}: 1 = a loss on an advanced refund or a lost fraud-flagged dispute in (T, T+90 days]; \
             population: buyers who asked for a return in that window{}",
            match o.sample_buyers {
                Some(n) => format!(
                    "; fitted on a seeded sample of {n} of them (seed {}), tested on all",
                    o.sample_seed
                ),
                None => String::new(),
            }
        ),
        params: described.clone(),
    };
    let prefix = format!("scorecard-{}", o.as_of);
    let version = match o.sample_buyers {
        None => version_tag(&prefix, src.fingerprint(), params.params())?,
        Some(_) => version_tag(&prefix, src.fingerprint(), &described)?,
    };
    let mut fitted = {
        let _s = tracing::info_span!("fit", rows = train.rows(), bads = train.bads()).entered();
        fit_scorecard(&train, &buyer_meta(), &params, info, version)?
    };
    // The category norms the training features were computed with, frozen in the model:
    // the test, `rate` and the exported SQL read these, so that a buyer's rating does
    // not move when other buyers return more.
    {
        let mut m = fitted.card.model().clone();
        m.category_norms = frozen_norms;
        fitted.card = m.check()?;
    }
    let promises = {
        let _s = tracing::info_span!("promises", buyers = o.promise_sample).entered();
        let card = &fitted.card;
        let check = crate::promises::check(
            &*src.part(0)?,
            t,
            card,
            crate::promises::Judge::Card,
            &src.norms_for(t, &fitted.card)?,
            o.promise_sample,
            o.sample_seed,
            params.params().volume_floor_star,
        )?;
        let model = card.model();
        let floor = model.volume_floor_star;
        let table_violations = safety::violations(card);
        let broken: Vec<String> = table_violations
            .iter()
            .chain(&check.violations)
            .cloned()
            .collect();
        if !broken.is_empty() {
            if !o.force {
                return Err(BrokenPromises(broken).into());
            }
            tracing::warn!(
                broken = broken.len(),
                "publishing a model that breaks its promises to honest buyers (--force)"
            );
        }
        Some(Promises {
            honest_cost_bound: safety::honest_cost_bound(model),
            narrowest_band: floor.and_then(|f| safety::narrowest_band_above(model, f).1),
            floor_star: floor,
            table_violations,
            check,
            forced: !broken.is_empty(),
        })
    };
    let fairness = {
        let at = if out_of_time { t2 } else { t };
        let _s = tracing::info_span!("fairness").entered();
        crate::fairness::fairness(&src, at, &fitted.card, params.params().volume_floor_star)?
    };
    let test_parts = |card: &Scorecard,
                      ch: Option<&fastrefund_train::challenger::Challenger>|
     -> Result<TestScores, WorkflowError> {
        let _s =
            tracing::info_span!("features", as_of = %test_as_of, parts = src.parts()).entered();
        let norms = src.norms_for(t2, card)?;
        let mut all = TestScores {
            card: Vec::new(),
            challenger: ch.map(|_| Vec::new()),
            labels: Vec::new(),
        };
        let mut ids: Vec<u64> = Vec::new();
        for k in 0..src.parts() {
            let part = src.part(k)?;
            let df = performance_rows(&labelled_with_norms(&part, t2, norms.clone().lazy())?)?;
            drop(part);
            ids.extend(crate::rate::buyer_ids(&df)?);
            all.append(TestScores::of(card, ch, &performance_dataset(&df)?)?);
        }
        // In buyer order, as a history held whole gives them: sums of floating-point
        // metrics (Brier) then do not depend on how the history was split.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_unstable_by_key(|i| ids[*i]);
        Ok(TestScores {
            card: order.iter().map(|i| all.card[*i]).collect(),
            challenger: all
                .challenger
                .map(|c| order.iter().map(|i| c[*i]).collect()),
            labels: order.iter().map(|i| all.labels[*i]).collect(),
        })
    };
    // The challenger is tried on the same buyers, as of the same date, with the same
    // norms as the champion.
    let features_card = fitted.card.clone();
    let challenger_promises = |ch: &fastrefund_train::challenger::Challenger| {
        Ok(crate::promises::check(
            &*src.part(0)?,
            t,
            &features_card,
            crate::promises::Judge::Challenger(ch),
            &src.norms_for(t, &features_card)?,
            o.promise_sample,
            o.sample_seed,
            params.params().volume_floor_star,
        )?)
    };
    match held {
        Some(test) => finish(
            fitted,
            &train,
            &|card, ch| TestScores::of(card, ch, &test),
            &o.out,
            o.challenger.as_ref().map(|params| ChallengerPlan {
                params,
                promises: Some(&challenger_promises),
            }),
            promises,
            fairness,
        ),
        None => finish(
            fitted,
            &train,
            &test_parts,
            &o.out,
            o.challenger.as_ref().map(|params| ChallengerPlan {
                params,
                promises: Some(&challenger_promises),
            }),
            promises,
            fairness,
        ),
    }
}

/// Column of the rows kept by [`bottom_n`]: the seeded hash of the buyer id.
const SAMPLE_KEY: &str = "__sample_key";

/// The `n` rows of `kept` and `more` with the smallest seeded hashes of their buyer id.
fn bottom_n(
    kept: Option<DataFrame>,
    mut more: DataFrame,
    n: u64,
    seed: u64,
) -> Result<DataFrame, WorkflowError> {
    let keys: Vec<u64> = more
        .column(BUYER_ID)?
        .u64()?
        .iter()
        .map(|b| sample_key(b.unwrap_or(0), seed))
        .collect();
    more.with_column(Column::new(SAMPLE_KEY.into(), keys))?;
    let all = match kept {
        Some(k) => k.vstack(&more)?,
        None => more,
    };
    Ok(all
        .sort([SAMPLE_KEY], SortMultipleOptions::default())?
        .head(Some(usize::try_from(n).unwrap_or(usize::MAX))))
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
    finish(
        fitted,
        &train,
        &|card, ch| TestScores::of(card, ch, &test),
        &o.out,
        challenger.map(|params| ChallengerPlan {
            params,
            promises: None,
        }),
        None,
        Vec::new(),
    )
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
    let scores = score_columns(&card, &cols, labels.len())?;
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
    let t = date_micros(as_of);
    let norms = crate::shards::Source::Whole(&h).norms_for(t, &card)?;
    let df = labelled_with_norms(&h, t, norms.lazy())?;
    let ds = history_dataset(&df)?;
    let cols = model_columns(&card, &ds)?;
    let scores = score_columns(&card, &cols, ds.rows())?;
    Ok(metrics::split_metrics(&card, &scores, &ds.labels))
}
