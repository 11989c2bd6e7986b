//! The scorecard trainer, on plain data (no polars; the batch crate builds the
//! [`dataset::Dataset`]s): binning, weight of evidence, logistic regression (our own
//! IRLS solver, [`logistic`]), points scaling, star cut-offs, metrics, and the bagged-trees
//! challenger (linfa-trees).
//!
//! [`TrainParams`] follows the checked-parameters habit: set what you need (every
//! setter's default is documented on the field), call [`TrainParams::check`], and only
//! the checked [`ValidTrainParams`] can fit.
//!
//! Fitting (`fit_scorecard`):
//! 1. bin every feature on the training rows ([`binning`]) and compute its WOE and IV;
//! 2. keep the features with IV ≥ `min_iv`;
//! 3. fit an L2-penalised logistic regression of the label on the WOE columns with
//!    [`logistic`] (Newton/IRLS; linfa-logistic's L-BFGS was 95% of a 1M-row fit, see
//!    the README; a test checks both reach the same optimum);
//!    a feature whose coefficient has the wrong sign (collinearity) is dropped and the
//!    model refitted, so every feature's points rise with its WOE (unless
//!    [`TrainParams::wrong_signs`] keeps it, as optbinning does);
//! 4. turn coefficients into integer points per bin (see [`fastrefund_core::scoring`]);
//! 5. place the star cut-offs at the configured population shares of the training
//!    scores, and check that the bad rate falls strictly from 1★ to 5★ (trying a few
//!    coarser share schedules if the configured one does not).

/// `FromStr` for option enums by their serialised (snake_case) names: `train --FLAG
/// VALUE` and the parameters' JSON spell a choice the same way, and the names are
/// written once, in each enum's serde attributes. An unknown name is refused with
/// `unknown WHAT "VALUE": CHOICES`.
macro_rules! from_str_by_name {
    ($($t:ty => $what:literal, $choices:literal;)*) => {$(
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                use serde::de::{IntoDeserializer, value::Error};
                <$t as serde::Deserialize>::deserialize(IntoDeserializer::<Error>::into_deserializer(s))
                    .map_err(|_| format!("unknown {} {s:?}: {}", $what, $choices))
            }
        }

        /// The serialised name, as `FromStr` reads it (a command line shows the default
        /// so).
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(name)) => f.write_str(&name),
                    _ => Err(std::fmt::Error),
                }
            }
        }
    )*};
}

pub mod binning;
pub mod challenger;
pub mod dataset;
pub mod evaluation;
pub mod logistic;
pub mod metrics;
pub mod options;
pub mod overturn;

use binning::{BinningParams, NumericSpec, Tally, TrendChoice};
pub use binning::{BinningSearch, Prebinning};
use dataset::{Dataset, FeatureData};
use fastrefund_core::scoring::{
    Bin, Feature, FeatureKind, Metrics, Model, ReasonText, ReturnEffect, SCHEMA_VERSION, Scaling,
    Scorecard, StarCutoffs, TrainingInfo, Trend, safety,
};
use ndarray::Array2;
use serde::Serialize;
use std::collections::BTreeMap;

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training parameter `{param}`: {message}")]
    Param {
        param: &'static str,
        message: String,
    },
    #[error("training data: {0}")]
    Data(String),
    #[error("logistic regression failed: {0}")]
    Fit(String),
    #[error("the trained model is invalid: {0}")]
    Model(#[from] fastrefund_core::scoring::ModelError),
}

/// Words and trend for a feature (the buyer features have their own; a generic table's
/// columns get generic ones).
#[derive(Debug, Clone)]
pub struct FeatureMeta {
    pub description: String,
    pub message: String,
    pub advice: String,
    /// Message and advice when the value is missing, if they differ.
    pub missing_message: Option<String>,
    pub missing_advice: Option<String>,
    pub trend: Option<Trend>,
    /// How one more return moves it (buyer features); `None` for a generic column.
    pub on_return: Option<ReturnEffect>,
    /// [`ReturnEffect::Volume`]: the most one honest return raises it.
    pub honest_step: Option<f64>,
    /// Reads the category norms (see [`fastrefund_core::scoring::Feature`]).
    pub reads_category_norms: bool,
    /// The words in other languages, by BCP 47 tag.
    pub translations: std::collections::BTreeMap<String, fastrefund_core::scoring::Translation>,
}

impl FeatureMeta {
    /// The trend "returning never pays" demands of a feature returns move one way, if
    /// the promises are kept.
    fn promised_trend(&self, return_safe: bool) -> Option<Trend> {
        match (return_safe, self.on_return) {
            (true, Some(ReturnEffect::Rises | ReturnEffect::Volume)) => Some(Trend::Increasing),
            (true, Some(ReturnEffect::Falls)) => Some(Trend::Decreasing),
            _ => None,
        }
    }
}

/// Whether a parameter is at its default (left out of the serialised parameters).
fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

from_str_by_name! {
    TrendChoice => "trend", "one of auto_asc_desc, auto, ascending, descending, peak, valley, none";
    Prebinning => "pre-binning", "quantile or cart";
    BinningSearch => "binning", "greedy or optimal";
    UnseenCategory => "choice", "one of other, missing, worst";
    WrongSigns => "wrong-signs choice", "drop or keep";
    Selection => "selection", "iv or quality";
}

/// Trainer parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainParams {
    /// Pre-bins per numeric feature before merging (default 20).
    pub max_prebins: usize,
    /// Most bins per feature, missing bin apart (default 6).
    pub max_bins: usize,
    /// Least share of the training rows in a bin (default 0.01).
    pub min_bin_share: f64,
    /// Least training rows in a bin (default 50).
    pub min_bin_rows: usize,
    /// Features with a lower information value are dropped (default 0.02).
    pub min_iv: f64,
    /// Of two features whose WOE columns correlate more than this, only the one with
    /// the higher information value is kept (default 0.9: on the 200k history of
    /// `docs/model-quality.md`, 0.7 dropped the per-order late-return rate as a twin of the
    /// late-return count and cost 0.006 of AUC and 10 points of wardrobers at ≤ 2★).
    pub max_correlation: f64,
    /// L2 penalty of the logistic regression (default 1.0; linfa sums the loss over
    /// rows, so this matters only for small tables).
    pub l2: f64,
    /// Most Newton iterations of the logistic regression (default 100; it converges
    /// in about 10).
    pub max_iterations: u64,
    /// Score at `base_odds` (default 600).
    pub base_score: f64,
    /// Good:bad odds at `base_score` (default 50).
    pub base_odds: f64,
    /// Points to double the odds (default 20).
    pub pdo: f64,
    /// Population shares of 1★, 2★, 3★ and 4★ on the training rows; 5★ gets the rest
    /// (default 0.04, 0.08, 0.18, 0.30).
    pub star_shares: [f64; 4],
    /// Hold buyer models to the promises of [`fastrefund_core::scoring::safety`]
    /// (default true): shares and means of returns are left out, features returns move
    /// get the trend and missing-bin points the promises need, return volume gets a
    /// floor star, and its points shrink until one honest return cannot cost two stars.
    pub return_safe: bool,
    /// The star return volume alone never takes a buyer below (default 3, the
    /// policy's instant-release star).
    pub volume_floor_star: u8,
    /// Per feature, the trend its bad rate is held to (optbinning's
    /// `monotonic_trend`); unnamed features get their own (buyer features) or
    /// `auto_asc_desc`. The promises to honest buyers override it for features returns
    /// move.
    pub monotonic_trend: BTreeMap<String, TrendChoice>,
    /// Per numeric feature (`*`: every one), values that get a bin of their own.
    pub special_codes: BTreeMap<String, Vec<f64>>,
    /// Per numeric feature, split points the bins are cut at (increasing).
    pub user_splits: BTreeMap<String, Vec<f64>>,
    /// Which bin takes a category never seen in training (default: the pool of rare
    /// categories).
    pub unseen_category: UnseenCategory,
    /// Adjacent bins whose bad rates differ by less are merged (default 0: none).
    pub min_bad_rate_diff: f64,
    /// How a monotone trend's bins are chosen (default greedy; `optimal`: the most
    /// information value under the same constraints, see [`binning::BinningSearch`]).
    /// Left out of the serialised parameters when greedy, so that a model's version
    /// (a hash of them) is what it was before this choice existed.
    #[serde(skip_serializing_if = "is_default")]
    pub binning: BinningSearch,
    /// How numeric values are cut into pre-bins (default quantile; `cart`:
    /// optbinning's tree, see [`binning::Prebinning`]). Left out of the serialised
    /// parameters when quantile, as above.
    #[serde(skip_serializing_if = "is_default")]
    pub prebinning: Prebinning,
    /// What becomes of a feature whose coefficient has the wrong sign (default drop:
    /// it is dropped and the model refitted, so every feature's points rise with its
    /// evidence and every band reads the way its words do; `keep`: optbinning's
    /// scorecard, whose points then fall as that feature's evidence improves). Left out
    /// of the serialised parameters when drop, as above.
    #[serde(skip_serializing_if = "is_default")]
    pub wrong_signs: WrongSigns,
    /// What ranks the features for the correlation filter and `max_features`.
    pub selection: Selection,
    /// Keep at most this many features, the best by `selection` (default: no limit).
    pub max_features: Option<usize>,
}

/// Where an unseen category goes ([`TrainParams::unseen_category`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnseenCategory {
    /// The pool of categories too rare for a bin of their own.
    #[default]
    Other,
    /// The missing bin.
    Missing,
    /// The bin with the highest bad rate: the cautious choice.
    Worst,
}

/// What becomes of a wrong-signed coefficient ([`TrainParams::wrong_signs`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WrongSigns {
    /// Drop the worst such feature and refit, until none is left.
    #[default]
    Drop,
    /// Keep them, as optbinning's scorecard does.
    Keep,
}

/// How features are ranked ([`TrainParams::selection`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Information value.
    #[default]
    Iv,
    /// optbinning's quality score ([`binning::quality_score`]).
    Quality,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            max_prebins: 20,
            max_bins: 6,
            min_bin_share: 0.01,
            min_bin_rows: 50,
            min_iv: 0.02,
            max_correlation: 0.9,
            l2: 1.0,
            max_iterations: 100,
            base_score: 600.0,
            base_odds: 50.0,
            pdo: 20.0,
            star_shares: [0.04, 0.08, 0.18, 0.30],
            return_safe: true,
            volume_floor_star: 3,
            monotonic_trend: BTreeMap::new(),
            special_codes: BTreeMap::new(),
            user_splits: BTreeMap::new(),
            unseen_category: UnseenCategory::Other,
            min_bad_rate_diff: 0.0,
            binning: BinningSearch::Greedy,
            prebinning: Prebinning::Quantile,
            wrong_signs: WrongSigns::Drop,
            selection: Selection::Iv,
            max_features: None,
        }
    }
}

/// Checked parameters: only these can fit.
#[derive(Debug, Clone)]
pub struct ValidTrainParams(TrainParams);

impl TrainParams {
    /// Validates every parameter, naming the first that is wrong.
    pub fn check(self) -> Result<ValidTrainParams, TrainError> {
        let bad = |param, message: String| Err(TrainError::Param { param, message });
        if self.max_prebins < 2 {
            return bad(
                "max_prebins",
                format!("must be at least 2, got {}", self.max_prebins),
            );
        }
        if !(2..=20).contains(&self.max_bins) {
            return bad("max_bins", format!("must be 2..=20, got {}", self.max_bins));
        }
        if !(0.0..0.5).contains(&self.min_bin_share) {
            return bad(
                "min_bin_share",
                format!("must be in [0, 0.5), got {}", self.min_bin_share),
            );
        }
        if self.min_iv.is_nan() || self.min_iv < 0.0 {
            return bad("min_iv", format!("must be >= 0, got {}", self.min_iv));
        }
        if !(self.max_correlation > 0.0 && self.max_correlation <= 1.0) {
            return bad(
                "max_correlation",
                format!("must be in (0, 1], got {}", self.max_correlation),
            );
        }
        if !(self.l2 >= 0.0 && self.l2.is_finite()) {
            return bad("l2", format!("must be >= 0, got {}", self.l2));
        }
        if self.pdo.is_nan()
            || self.pdo <= 0.0
            || self.base_odds.is_nan()
            || self.base_odds <= 0.0
            || !self.base_score.is_finite()
        {
            return bad(
                "pdo",
                "pdo and base_odds must be > 0 and base_score finite".into(),
            );
        }
        let total: f64 = self.star_shares.iter().sum();
        if self.star_shares.iter().any(|s| s.is_nan() || *s <= 0.0) || total >= 1.0 {
            return bad(
                "star_shares",
                format!(
                    "each must be > 0 and together < 1, got {:?}",
                    self.star_shares
                ),
            );
        }
        if !(0.0..1.0).contains(&self.min_bad_rate_diff) {
            return bad(
                "min_bad_rate_diff",
                format!("must be in [0, 1), got {}", self.min_bad_rate_diff),
            );
        }
        if self.max_features == Some(0) {
            return bad("max_features", "must be at least 1".into());
        }
        for (f, v) in &self.user_splits {
            if v.is_empty()
                || v.iter().any(|x| !x.is_finite())
                || !v.windows(2).all(|w| w[0] < w[1])
            {
                return bad(
                    "user_splits",
                    format!("{f}: split points must be finite and increasing, got {v:?}"),
                );
            }
        }
        for (f, v) in &self.special_codes {
            if v.iter().any(|x| !x.is_finite()) {
                return bad(
                    "special_codes",
                    format!("{f}: special values must be finite numbers, got {v:?}"),
                );
            }
        }
        if !(2..=5).contains(&self.volume_floor_star) {
            return bad(
                "volume_floor_star",
                format!("must be 2..=5, got {}", self.volume_floor_star),
            );
        }
        Ok(ValidTrainParams(self))
    }
}

impl ValidTrainParams {
    pub fn params(&self) -> &TrainParams {
        &self.0
    }

    fn binning(&self) -> BinningParams {
        BinningParams {
            max_prebins: self.0.max_prebins,
            max_bins: self.0.max_bins,
            min_bin_share: self.0.min_bin_share,
            min_bin_rows: self.0.min_bin_rows,
            min_bad_rate_diff: self.0.min_bad_rate_diff,
            search: self.0.binning,
            prebinning: self.0.prebinning,
        }
    }

    /// How feature `name` is binned if numeric: the trend the promises demand, else the
    /// user's, else the feature's own, else `auto_asc_desc`; its special values; its
    /// split points.
    fn numeric_spec(&self, name: &str, meta: &FeatureMeta) -> NumericSpec {
        let p = &self.0;
        let trend = match (
            meta.promised_trend(p.return_safe),
            p.monotonic_trend.get(name),
            meta.trend,
        ) {
            (Some(t), _, _) => t.into(),
            (None, Some(c), _) => *c,
            (None, None, Some(t)) => t.into(),
            (None, None, None) => TrendChoice::AutoAscDesc,
        };
        let mut special: Vec<f64> = p.special_codes.get("*").cloned().unwrap_or_default();
        special.extend(p.special_codes.get(name).into_iter().flatten());
        special.sort_by(f64::total_cmp);
        special.dedup();
        NumericSpec {
            trend,
            special,
            splits: p.user_splits.get(name).cloned(),
        }
    }
}

/// A feature binned on the training rows.
#[derive(Debug, Clone)]
struct Binned {
    index: usize,
    bins: Vec<Bin>,
    iv: f64,
    trend: Option<Trend>,
    kind: FeatureKind,
    /// The bin of every training row.
    row_bin: Vec<u16>,
    /// optbinning's quality score ([`binning::quality_score`]).
    quality: f64,
}

fn label_of_range(lo: Option<f64>, hi: Option<f64>) -> String {
    let f = |x: f64| {
        if x.fract() == 0.0 && x.abs() < 1e15 {
            format!("{}", x as i64)
        } else {
            format!("{x}")
        }
    };
    match (lo, hi) {
        (None, None) => "all".into(),
        (None, Some(h)) => format!("< {}", f(h)),
        (Some(l), None) => format!(">= {}", f(l)),
        (Some(l), Some(h)) => format!("[{}, {})", f(l), f(h)),
    }
}

fn bin_feature(
    j: usize,
    col: &FeatureData,
    labels: &[u8],
    spec: &NumericSpec,
    unseen: UnseenCategory,
    p: &BinningParams,
    total: Tally,
) -> Binned {
    let mk = |label: String, lower, upper, categories, missing, other, t: Tally| Bin {
        label,
        lower,
        upper,
        categories,
        missing,
        special: vec![],
        other,
        woe: binning::woe(t, total),
        points: 0,
        count: t.count,
        bads: t.bads,
    };
    match col {
        FeatureData::Num(v) => {
            let nb = binning::bin_numeric(v, labels, spec, p);
            let k = nb.tallies.len();
            let mut bins: Vec<Bin> = (0..k)
                .map(|i| {
                    let lo = (i > 0).then(|| nb.cuts[i - 1]);
                    let hi = (i + 1 < k).then(|| nb.cuts[i]);
                    mk(
                        label_of_range(lo, hi),
                        lo,
                        hi,
                        vec![],
                        false,
                        false,
                        nb.tallies[i],
                    )
                })
                .collect();
            bins.push(mk(
                "missing".into(),
                None,
                None,
                vec![],
                true,
                false,
                nb.missing,
            ));
            let row_bin = v
                .iter()
                .map(|x| {
                    if x.is_nan() {
                        k as u16
                    } else if spec.special.contains(x) {
                        (k + 1) as u16
                    } else {
                        nb.bin_of(*x) as u16
                    }
                })
                .collect();
            if !spec.special.is_empty() {
                let mut b = mk(
                    format!(
                        "special ({})",
                        spec.special
                            .iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                    None,
                    vec![],
                    false,
                    false,
                    nb.special,
                );
                b.special = spec.special.clone();
                bins.push(b);
            }
            let mut tallies = nb.tallies.clone();
            tallies.push(nb.missing);
            tallies.push(nb.special);
            let iv = binning::information_value(&tallies, total);
            Binned {
                index: j,
                iv,
                quality: binning::quality_score(iv, &nb.tallies, &tallies),
                bins,
                trend: nb.trend,
                kind: FeatureKind::Numeric,
                row_bin,
            }
        }
        FeatureData::Cat(v) => {
            let cb = binning::bin_categorical(v, labels, p);
            let k = cb.groups.len();
            // The bin that takes categories never seen in training (`k`: missing).
            let unseen_bin = match unseen {
                UnseenCategory::Other => cb.other,
                UnseenCategory::Missing => k,
                UnseenCategory::Worst => (0..k)
                    .filter(|i| cb.tallies[*i].count > 0)
                    .max_by(|a, b| cb.tallies[*a].rate().total_cmp(&cb.tallies[*b].rate()))
                    .unwrap_or(cb.other),
            };
            let mut bins: Vec<Bin> = (0..k)
                .map(|i| {
                    let mut label = cb.groups[i].join(", ");
                    if i == unseen_bin {
                        label = if label.is_empty() {
                            "other".into()
                        } else {
                            format!("{label}, other")
                        };
                    }
                    mk(
                        label,
                        None,
                        None,
                        cb.groups[i].clone(),
                        false,
                        i == unseen_bin,
                        cb.tallies[i],
                    )
                })
                .collect();
            bins.push(mk(
                if unseen_bin == k {
                    "missing, other".into()
                } else {
                    "missing".into()
                },
                None,
                None,
                vec![],
                true,
                unseen_bin == k,
                cb.missing,
            ));
            let mut of = std::collections::HashMap::new();
            for (i, g) in cb.groups.iter().enumerate() {
                for c in g {
                    of.insert(c.as_str(), i as u16);
                }
            }
            let row_bin = v
                .iter()
                .map(|x| match x {
                    None => k as u16,
                    Some(s) => of.get(s.as_str()).copied().unwrap_or(cb.other as u16),
                })
                .collect();
            let mut tallies = cb.tallies.clone();
            tallies.push(cb.missing);
            let iv = binning::information_value(&tallies, total);
            Binned {
                index: j,
                iv,
                quality: binning::quality_score(iv, &cb.tallies, &tallies),
                bins,
                trend: None,
                kind: FeatureKind::Categorical,
                row_bin,
            }
        }
    }
}

/// Logistic regression of the label on the WOE columns; returns (intercept, coefficients)
/// of logit P(bad).
fn logistic(x: Array2<f64>, labels: &[u8], p: &TrainParams) -> Result<(f64, Vec<f64>), TrainError> {
    let max = usize::try_from(p.max_iterations).unwrap_or(usize::MAX);
    let f =
        logistic::fit(x.view(), labels, p.l2, max).map_err(|e| TrainError::Fit(e.to_string()))?;
    Ok((f.intercept, f.coefs))
}

/// A trained scorecard and what happened on the way.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub card: Scorecard,
    /// Information value of every candidate feature, and whether it was kept.
    pub candidates: Vec<(String, f64, bool)>,
    /// Notes for the report (dropped features, cut-off adjustments).
    pub notes: Vec<String>,
}

/// Fits a scorecard on `train`. `meta` gives each feature's words and trend.
pub fn fit_scorecard(
    train: &Dataset,
    meta: &[FeatureMeta],
    params: &ValidTrainParams,
    info: TrainingInfo,
    model_version: String,
) -> Result<Fitted, TrainError> {
    let p = params.params();
    let n = train.rows();
    let total = Tally {
        count: n as u64,
        bads: train.bads() as u64,
    };
    if total.bads == 0 || total.bads == total.count {
        return Err(TrainError::Data(
            "the training rows need both goods and bads".into(),
        ));
    }
    let bp = params.binning();
    let safe = p.return_safe;
    let binned: Vec<Binned> = train
        .columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let spec = params.numeric_spec(&train.names[j], &meta[j]);
            let mut b = bin_feature(j, c, &train.labels, &spec, p.unseen_category, &bp, total);
            if safe
                && meta[j]
                    .on_return
                    .is_some_and(|e| e != ReturnEffect::Unmoved)
            {
                lift_missing_bin(&mut b);
            }
            b
        })
        .collect();
    let mut notes = Vec::new();
    let mixed = |j: usize| safe && meta[j].on_return == Some(ReturnEffect::Mixed);
    let left_out: Vec<&str> = (0..binned.len())
        .filter(|j| mixed(*j))
        .map(|j| train.names[j].as_str())
        .collect();
    if !left_out.is_empty() {
        notes.push(format!(
            "left out {}: shares and means of returns, which one more return can move either way (returning must never pay)",
            left_out.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut keep: Vec<usize> = binned
        .iter()
        .filter(|b| b.iv >= p.min_iv && !mixed(b.index))
        .map(|b| b.index)
        .collect();
    let rank = |b: &Binned| match p.selection {
        Selection::Iv => b.iv,
        Selection::Quality => b.quality,
    };
    keep = decorrelate(
        &binned,
        keep,
        p.max_correlation,
        &mut notes,
        &train.names,
        &rank,
    );
    if let Some(top) = p.max_features
        && keep.len() > top
    {
        keep.sort_by(|a, b| rank(&binned[*b]).total_cmp(&rank(&binned[*a])));
        let dropped: Vec<String> = keep[top..]
            .iter()
            .map(|j| format!("`{}`", train.names[*j]))
            .collect();
        notes.push(format!(
            "kept the {top} best features by {:?}; dropped {}",
            p.selection,
            dropped.join(", ")
        ));
        keep.truncate(top);
        keep.sort_unstable();
    }
    if keep.is_empty() {
        return Err(TrainError::Data(format!(
            "no feature has an information value of at least {} (best: {:.4})",
            p.min_iv,
            binned.iter().map(|b| b.iv).fold(0.0, f64::max)
        )));
    }
    let (intercept, coefs) = loop {
        let mut x = Array2::<f64>::zeros((n, keep.len()));
        for (c, j) in keep.iter().enumerate() {
            let b = &binned[*j];
            for (r, bin) in b.row_bin.iter().enumerate() {
                x[[r, c]] = b.bins[usize::from(*bin)].woe;
            }
        }
        let (a, coefs) = logistic(x, &train.labels, p)?;
        // With WOE = ln(good/bad), a useful feature has a negative coefficient on
        // logit P(bad). Drop the worst offender and refit.
        let worst = coefs
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1));
        match worst {
            Some((c, v)) if keep.len() > 1 && p.wrong_signs == WrongSigns::Drop => {
                notes.push(format!(
                    "dropped `{}`: coefficient {v:+.3} has the wrong sign (collinear with other features)",
                    train.names[keep[c]]
                ));
                keep.remove(c);
            }
            _ => break (a, coefs),
        }
    };

    let scaling = Scaling {
        base_score: p.base_score,
        base_odds: p.base_odds,
        pdo: p.pdo,
    };
    let factor = scaling.factor();
    let offset = scaling.offset();
    let k = keep.len() as f64;
    let volume: Vec<bool> = keep
        .iter()
        .map(|j| safe && meta[*j].on_return == Some(ReturnEffect::Volume))
        .collect();
    // Volume points are shrunk by `shrink` (1 = as fitted) until one honest return
    // cannot cost two stars (see below).
    let build = |shrink: f64| -> Vec<Feature> {
        keep.iter()
            .zip(&coefs)
            .zip(&volume)
            .map(|((j, b), vol)| {
                let bf = &binned[*j];
                let m = &meta[*j];
                let b = if *vol { b * shrink } else { *b };
                let bins = bf
                    .bins
                    .iter()
                    .map(|bin| {
                        let pts = -factor * (b * bin.woe + intercept / k) + offset / k;
                        Bin {
                            points: pts.round() as i32,
                            ..bin.clone()
                        }
                    })
                    .collect();
                Feature {
                    name: train.names[*j].clone(),
                    kind: bf.kind,
                    description: m.description.clone(),
                    reason: ReasonText {
                        code: train.names[*j].clone(),
                        message: m.message.clone(),
                        advice: m.advice.clone(),
                        missing_message: m.missing_message.clone(),
                        missing_advice: m.missing_advice.clone(),
                        translations: m.translations.clone(),
                    },
                    coefficient: b,
                    information_value: bf.iv,
                    monotone: bf.trend,
                    on_return: m.on_return,
                    honest_step: m.honest_step,
                    reads_category_norms: m.reads_category_norms,
                    bins,
                }
            })
            .collect()
    };
    let candidates = binned
        .iter()
        .map(|b| (train.names[b.index].clone(), b.iv, keep.contains(&b.index)))
        .collect();

    let floor = volume.contains(&true).then_some(p.volume_floor_star);
    let mut shrink = 1.0;
    let card = loop {
        let features = build(shrink);
        // Raw scores of the training rows, from the points table: the cut-offs are
        // placed on them (the volume floor needs the cut-offs first).
        let scores: Vec<i32> = (0..n)
            .map(|r| {
                keep.iter()
                    .zip(&features)
                    .map(|(j, f)| f.bins[usize::from(binned[*j].row_bin[r])].points)
                    .sum()
            })
            .collect();
        let (cuts, note) = choose_cutoffs(&scores, &train.labels, &p.star_shares);
        let model = Model {
            schema_version: SCHEMA_VERSION,
            model_version: model_version.clone(),
            kind: "scorecard".into(),
            created_at: chrono::Utc::now(),
            training: info.clone(),
            scaling,
            intercept,
            features,
            stars: StarCutoffs { min_score: cuts },
            volume_floor_star: floor,
            category_norms: BTreeMap::new(),
            metrics: Metrics::default(),
        };
        let cost = safety::honest_cost_bound(&model);
        let width = floor.and_then(|f| safety::narrowest_band_above(&model, f).1);
        match width {
            Some(w) if cost > w && shrink > 0.01 => {
                // Shrink towards the bound with a margin for rounding, and try again.
                shrink *= (f64::from(w) / f64::from(cost) * 0.95).min(0.9);
            }
            _ => {
                if let Some(note) = note {
                    notes.push(note);
                }
                if shrink < 1.0 {
                    notes.push(format!(
                        "return-volume points shrunk to {:.0}% of the fitted ones, so that one honest return costs at most {cost} points, within one star band ({} points)",
                        shrink * 100.0,
                        width.unwrap_or(0)
                    ));
                }
                break model.check()?;
            }
        }
    };
    Ok(Fitted {
        card,
        candidates,
        notes,
    })
}

/// The WOE value of every training row for a binned feature.
fn woe_column(b: &Binned) -> Vec<f64> {
    b.row_bin
        .iter()
        .map(|k| b.bins[usize::from(*k)].woe)
        .collect()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Keeps, in order of information value, each feature whose WOE column correlates at
/// most `max` with every feature already kept.
fn decorrelate(
    binned: &[Binned],
    mut cand: Vec<usize>,
    max: f64,
    notes: &mut Vec<String>,
    names: &[String],
    rank: &dyn Fn(&Binned) -> f64,
) -> Vec<usize> {
    cand.sort_by(|a, b| rank(&binned[*b]).total_cmp(&rank(&binned[*a])));
    let mut kept: Vec<(usize, Vec<f64>)> = Vec::new();
    for j in cand {
        let w = woe_column(&binned[j]);
        match kept.iter().find(|(_, k)| correlation(&w, k).abs() > max) {
            Some((k, _)) => notes.push(format!(
                "dropped `{}`: its WOE correlates more than {max} with `{}`, which ranks higher",
                names[j], names[*k]
            )),
            None => kept.push((j, w)),
        }
    }
    let mut out: Vec<usize> = kept.into_iter().map(|(j, _)| j).collect();
    out.sort_unstable();
    out
}

/// Star cut-offs: the four scores closest (in cumulative population share) to the
/// target shares such that the bad rate falls strictly from 1★ to 5★ on the training
/// rows, every star populated. Found exactly over up to 199 candidate cut scores (the
/// distinct scores at each half-percentile) by dynamic programming over consecutive
/// pairs of cuts. When no placement can make the bad rate fall strictly (tiny data),
/// the target shares are used and a note says so.
#[allow(clippy::needless_range_loop)] // index-based dynamic programming reads best
fn choose_cutoffs(scores: &[i32], labels: &[u8], shares: &[f64; 4]) -> ([i32; 4], Option<String>) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by_key(|i| scores[*i]);
    let sorted: Vec<i32> = order.iter().map(|i| scores[*i]).collect();
    let n = sorted.len();
    let mut bads_prefix = vec![0u64; n + 1];
    for (k, i) in order.iter().enumerate() {
        bads_prefix[k + 1] = bads_prefix[k] + u64::from(labels[*i]);
    }
    let targets: Vec<f64> = shares
        .iter()
        .scan(0.0, |acc, s| {
            *acc += s;
            Some(*acc)
        })
        .collect();
    // Candidate cut scores (a cut c puts scores >= c in the higher star).
    let mut cands: Vec<i32> = (1..200)
        .map(|q| sorted[(q * n / 200).min(n.saturating_sub(1))])
        .filter(|c| *c > sorted[0])
        .collect();
    cands.dedup();
    // Node 0 = -inf, 1..=m = candidates, m+1 = +inf; `below[v]` = rows under node v.
    let m = cands.len();
    let mut below = Vec::with_capacity(m + 2);
    below.push(0usize);
    below.extend(cands.iter().map(|c| sorted.partition_point(|x| x < c)));
    below.push(n);
    let rate = |a: usize, b: usize| -> Option<f64> {
        let (lo, hi) = (below[a], below[b]);
        (hi > lo).then(|| (bads_prefix[hi] - bads_prefix[lo]) as f64 / (hi - lo) as f64)
    };
    let cost = |v: usize, k: usize| (below[v] as f64 / n.max(1) as f64 - targets[k]).abs();
    let fallback = |note: &str| {
        let at = |t: f64| sorted[((t * n as f64) as usize).min(n.saturating_sub(1))];
        let mut c = [
            at(targets[0]),
            at(targets[1]),
            at(targets[2]),
            at(targets[3]),
        ];
        for k in 1..4 {
            if c[k] <= c[k - 1] {
                c[k] = c[k - 1] + 1;
            }
        }
        (c, Some(note.to_string()))
    };
    if m < 4 {
        return fallback(
            "too few distinct scores to place four star cut-offs; used the target shares",
        );
    }
    const INF: f64 = f64::INFINITY;
    let end = m + 1;
    // f[i][j]: best cost with consecutive cuts at nodes i < j, every band so far valid.
    let mut f = vec![vec![INF; m + 2]; m + 2];
    let mut back: Vec<Vec<Vec<usize>>> = vec![vec![vec![0; m + 2]; m + 2]; 4];
    for i in 1..=m {
        for j in i + 1..=m {
            if let (Some(r0), Some(r1)) = (rate(0, i), rate(i, j))
                && r0 > r1
            {
                f[i][j] = cost(i, 0) + cost(j, 1);
            }
        }
    }
    for k in 2..4 {
        let mut g = vec![vec![INF; m + 2]; m + 2];
        for j in 1..=m {
            for l in j + 1..=m {
                let Some(r_next) = rate(j, l) else { continue };
                let mut best = (INF, 0);
                for i in 1..j {
                    if f[i][j] < best.0 && rate(i, j).is_some_and(|r| r > r_next) {
                        best = (f[i][j], i);
                    }
                }
                if best.0 < INF {
                    g[j][l] = best.0 + cost(l, k);
                    back[k][j][l] = best.1;
                }
            }
        }
        f = g;
    }
    let mut best = (INF, 0, 0);
    for l in 1..=m {
        for r in l + 1..=m {
            if f[l][r] < best.0
                && let (Some(a), Some(b)) = (rate(l, r), rate(r, end))
                && a > b
            {
                best = (f[l][r], l, r);
            }
        }
    }
    if best.0 == INF {
        return fallback(
            "no cut-offs give a strictly falling bad rate on the training rows; used the target shares",
        );
    }
    let (_, c3, c4) = best;
    let c2 = back[3][c3][c4];
    let c1 = back[2][c2][c3];
    let cut = |v: usize| cands[v - 1];
    let c = [cut(c1), cut(c2), cut(c3), cut(c4)];
    let got: Vec<f64> = [c1, c2, c3, c4]
        .iter()
        .map(|v| below[*v] as f64 / n as f64)
        .collect();
    let off = got.iter().zip(&targets).any(|(g, t)| (g - t).abs() > 0.02);
    let note = off.then(|| {
        format!(
            "star cut-offs moved from the target cumulative shares {targets:.3?} to {got:.3?} so that the bad rate falls strictly"
        )
    });
    (c, note)
}

/// Scores every row of a dataset whose columns are in the model's feature order. A row
/// the model cannot score is an error naming the row and why, never a score of 0 (which
/// would move the metrics published with the model).
pub fn score_columns(
    card: &Scorecard,
    columns: &[FeatureData],
    rows: usize,
) -> Result<Vec<i32>, TrainError> {
    use rayon::prelude::*;
    (0..rows)
        .into_par_iter()
        .map_init(
            || Vec::with_capacity(columns.len()),
            |vals, r| {
                vals.clear();
                vals.extend(columns.iter().map(|c| c.value(r)));
                card.score(vals)
                    .map(|s| s.score)
                    .map_err(|e| TrainError::Data(format!("scoring row {r}: {e}")))
            },
        )
        .collect()
}

/// The dataset's columns in the model's feature order (for scoring).
pub fn model_columns(card: &Scorecard, ds: &Dataset) -> Result<Vec<FeatureData>, TrainError> {
    card.feature_names()
        .map(|n| {
            ds.names
                .iter()
                .position(|m| m == n)
                .map(|j| ds.columns[j].clone())
                .ok_or_else(|| {
                    TrainError::Data(format!("the data has no feature `{n}` the model needs"))
                })
        })
        .collect()
}

/// Generic words for a column of an arbitrary table.
pub fn generic_meta(name: &str) -> FeatureMeta {
    FeatureMeta {
        description: format!("column `{name}` of the training table"),
        message: format!("your `{name}` is in a band that costs points"),
        advice: format!("values of `{name}` like those of the best band score higher"),
        missing_message: Some(format!("your `{name}` is missing, which costs points")),
        missing_advice: None,
        trend: None,
        on_return: None,
        honest_step: None,
        reads_category_norms: false,
        translations: Default::default(),
    }
}

/// Gives the missing bin of a feature returns move at least the WOE of its best bin:
/// for such a feature a missing value means "no returns yet" or "never", and may not
/// cost points against having returns.
fn lift_missing_bin(b: &mut Binned) {
    let best = b
        .bins
        .iter()
        .filter(|x| x.is_range())
        .map(|x| x.woe)
        .fold(f64::NEG_INFINITY, f64::max);
    for x in b.bins.iter_mut().filter(|x| x.missing) {
        if x.woe < best {
            x.woe = best;
        }
    }
}

#[cfg(test)]
mod tests;
