//! The model artifact (`model.json`): a public interface, versioned by
//! [`SCHEMA_VERSION`]; loading refuses any other version, unknown fields, and bins or
//! cut-offs that do not make a valid scorecard.

use crate::domain::Star;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// The artifact schema this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// The most features a model may have (reason references pack a feature index and a
/// missing flag into 15 bits in the serving snapshot).
pub const MAX_FEATURES: usize = 4096;

/// Why a model artifact cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {path} is not a valid model: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("model schema version {found} is not supported (this build reads version {expected})")]
    SchemaVersion { found: u32, expected: u32 },
    #[error("model is invalid: {0}")]
    Invalid(String),
    #[error("cannot encode the model: {0}")]
    Encode(String),
    #[error("expected {expected} feature values, got {got}")]
    Arity { expected: usize, got: usize },
}

/// Direction a feature's bad rate is held to across its bins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Bad rate rises as the value rises (e.g. lost disputes).
    Increasing,
    /// Bad rate falls as the value rises (e.g. account age).
    Decreasing,
    /// Bad rate rises, then falls.
    Peak,
    /// Bad rate falls, then rises.
    Valley,
}

/// How adding one return to a buyer's history can move a feature: the ground of the
/// "returning never pays" checks ([`crate::scoring::safety`]).
///
/// An *honest* return is one the buyer had every right to make and carried out as
/// promised: asked within two days of delivery, shipped within two days of asking,
/// received intact (any reason, `no_reason` included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnEffect {
    /// No return changes it (orders, spend, account age, disputes).
    Unmoved,
    /// Adding any return never lowers it, and an honest return leaves it as it is
    /// (counts of bad outcomes, of late requests, of slow shipments).
    Rises,
    /// Adding any return never lowers it, and an honest return raises it: return
    /// volume. Volume alone never takes a buyer below the model's floor star.
    Volume,
    /// Adding any return never raises it, and an honest return leaves it; missing
    /// means "never" (days since the last bad outcome).
    Falls,
    /// A share or mean of returns, which one more return can move either way: a
    /// return-safe model does not use it. (A rate against the category norms is
    /// `Volume` only with the norms frozen in the model; see `reads_category_norms`.)
    Mixed,
}

/// Numeric (binned by ranges) or categorical (binned by groups of labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Categorical,
}

/// Words for a feature when it costs a buyer points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonText {
    /// Stable code, stored in `ratings.parquet` (`reason_1` … `reason_4`).
    pub code: String,
    /// What lowers the rating, in words a buyer understands.
    pub message: String,
    /// What would raise it.
    pub advice: String,
    /// The message when the feature has no value for the buyer (e.g. no return shipped
    /// yet, so no shipping time); `message` is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_message: Option<String>,
    /// The advice when the feature has no value; `advice` is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_advice: Option<String>,
    /// The same words in other languages, by BCP 47 tag (`zh-CN`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub translations: std::collections::BTreeMap<String, Translation>,
}

/// [`ReasonText`]'s words in one more language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Translation {
    pub message: String,
    pub advice: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_advice: Option<String>,
}

/// One bin of a feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bin {
    /// Human-readable range or group, e.g. `[0, 2)` or `shoes, bags`.
    pub label: String,
    /// Numeric: inclusive lower bound (`None` = −∞).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lower: Option<f64>,
    /// Numeric: exclusive upper bound (`None` = +∞).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// Categorical: the labels in this bin.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// This bin takes missing values.
    #[serde(default)]
    pub missing: bool,
    /// Numeric: this bin takes exactly these special values (e.g. `-999` = "not
    /// asked"), whatever the ranges say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub special: Vec<f64>,
    /// Categorical: this bin takes labels not seen in training.
    #[serde(default)]
    pub other: bool,
    /// Weight of evidence, ln(%good / %bad).
    pub woe: f64,
    /// Points the bin gives.
    pub points: i32,
    /// Training rows in the bin.
    pub count: u64,
    /// Bad training rows in the bin.
    pub bads: u64,
}

impl Bin {
    /// A range bin of a numeric feature (neither the missing nor a special bin).
    pub fn is_range(&self) -> bool {
        !self.missing && self.special.is_empty()
    }
}

/// One feature of the scorecard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Feature {
    /// Column name in the feature table.
    pub name: String,
    pub kind: FeatureKind,
    /// What the feature measures.
    pub description: String,
    pub reason: ReasonText,
    /// Logistic-regression coefficient on the WOE (negative for a useful feature).
    pub coefficient: f64,
    /// Information value of the binned feature on the training rows.
    pub information_value: f64,
    /// The trend the binning enforced, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monotone: Option<Trend>,
    /// How one more return can move the feature (buyer features only; a generic
    /// table's columns have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_return: Option<ReturnEffect>,
    /// [`ReturnEffect::Volume`]: the most one honest return can raise the value (1 for
    /// a count; `None` = without bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honest_step: Option<f64>,
    /// Reads the category norms (a rate relative to what is normal for the categories
    /// bought): its [`ReturnEffect`] holds only with norms frozen in the model.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reads_category_norms: bool,
    /// Bins: for a numeric feature, ranges in increasing order, then optionally the
    /// missing bin; for a categorical one, groups of labels.
    pub bins: Vec<Bin>,
}

/// The points scaling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    /// Score at `base_odds`.
    pub base_score: f64,
    /// Good:bad odds at `base_score`.
    pub base_odds: f64,
    /// Points to double the odds.
    pub pdo: f64,
}

impl Scaling {
    /// Points per unit of ln(odds).
    pub fn factor(&self) -> f64 {
        self.pdo / std::f64::consts::LN_2
    }

    /// Score at ln(odds) = 0.
    pub fn offset(&self) -> f64 {
        self.base_score - self.factor() * self.base_odds.ln()
    }

    /// P(bad) for a score.
    pub fn probability_bad(&self, score: f64) -> f64 {
        let ln_odds_good = (score - self.offset()) / self.factor();
        1.0 / (1.0 + ln_odds_good.exp())
    }
}

/// Score cut-offs: a score of at least `min_score[k]` earns star `k + 2`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StarCutoffs {
    /// Minimum scores for 2★, 3★, 4★ and 5★, strictly increasing.
    pub min_score: [i32; 4],
}

impl StarCutoffs {
    /// The star a score earns.
    /// The least score that earns `star` (1★: `i32::MIN`).
    pub fn min_score_of(&self, star: u8) -> i32 {
        match star {
            0 | 1 => i32::MIN,
            s => self.min_score[usize::from(s.min(5)) - 2],
        }
    }

    pub fn star_of(&self, score: i32) -> Star {
        let n = self.min_score.iter().filter(|c| score >= **c).count();
        // n is 0..=4, so 1 + n is a valid star.
        Star::try_from(u8::try_from(1 + n).unwrap_or(1)).unwrap_or(Star::MIN)
    }
}

/// Population and bad rate of one star on one data split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StarRow {
    pub star: u8,
    pub count: u64,
    pub bads: u64,
    pub bad_rate: f64,
    pub share: f64,
    pub min_score: Option<i32>,
}

/// Discrimination and calibration on one data split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMetrics {
    pub rows: u64,
    pub bads: u64,
    pub auc: f64,
    pub ks: f64,
    pub gini: f64,
    pub brier: f64,
    pub stars: Vec<StarRow>,
}

/// Metrics stored in the artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<SplitMetrics>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<SplitMetrics>,
}

/// Where the model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingInfo {
    /// SHA-256 of the training inputs (the input files' bytes, or the table).
    pub data_fingerprint: String,
    /// `out_of_time` or `random`.
    pub split: String,
    /// Features as of this date (history training only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<NaiveDate>,
    /// The out-of-time test's as-of date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_as_of: Option<NaiveDate>,
    /// Random split: seed and test fraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// The label column and what 1 means.
    pub label: String,
    /// Trainer parameters, as given.
    pub params: serde_json::Value,
}

/// The model artifact, as stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub schema_version: u32,
    /// Unique version, e.g. `scorecard-2026-01-01-1a2b3c4d`.
    pub model_version: String,
    /// Always `scorecard` for the champion.
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub training: TrainingInfo,
    pub scaling: Scaling,
    pub intercept: f64,
    /// Features, in the order scoring takes them.
    pub features: Vec<Feature>,
    pub stars: StarCutoffs,
    /// Return volume alone ([`ReturnEffect::Volume`] features) never takes a buyer
    /// below this star: a buyer whose score would reach it with every volume feature at
    /// its best scores at least its cut-off (see [`crate::scoring`]). `None`: no floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_floor_star: Option<u8>,
    /// Each category's normal return rate in billionths, frozen at training: buyer
    /// features relative to the category norms read these instead of the rated
    /// population's, so a buyer's rating does not move when other buyers return more.
    /// Empty: the norms of the history being rated (models before issue 14).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub category_norms: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    pub metrics: Metrics,
}

impl Model {
    /// Parses and validates a model from JSON text; `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Model, ModelError> {
        // Look at the schema version first, so that a newer file says so plainly
        // instead of failing on a field this build does not know.
        #[derive(Deserialize)]
        struct Head {
            schema_version: u32,
        }
        let head: Head = serde_json::from_str(text).map_err(|source| ModelError::Parse {
            path: origin.to_string(),
            source,
        })?;
        if head.schema_version != SCHEMA_VERSION {
            return Err(ModelError::SchemaVersion {
                found: head.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        let model: Model = serde_json::from_str(text).map_err(|source| ModelError::Parse {
            path: origin.to_string(),
            source,
        })?;
        validate(&model)?;
        Ok(model)
    }

    /// Pretty JSON, as saved. An error, never an empty text, if it cannot be encoded.
    pub fn to_json(&self) -> Result<String, ModelError> {
        serde_json::to_string_pretty(self).map_err(|e| ModelError::Encode(e.to_string()))
    }
}

pub(super) fn validate(m: &Model) -> Result<(), ModelError> {
    let bad = |s: String| Err(ModelError::Invalid(s));
    if m.schema_version != SCHEMA_VERSION {
        return Err(ModelError::SchemaVersion {
            found: m.schema_version,
            expected: SCHEMA_VERSION,
        });
    }
    if m.model_version.trim().is_empty() {
        return bad("model_version is empty".into());
    }
    if m.features.is_empty() {
        return bad("the model has no features".into());
    }
    if m.features.len() > MAX_FEATURES {
        return bad(format!(
            "{} features; a model takes at most {MAX_FEATURES}",
            m.features.len()
        ));
    }
    let s = &m.scaling;
    if !(s.pdo > 0.0 && s.base_odds > 0.0 && s.base_score.is_finite()) {
        return bad("scaling needs pdo > 0, base_odds > 0 and a finite base_score".into());
    }
    let mut names = std::collections::HashSet::new();
    let mut codes = std::collections::HashSet::new();
    for f in &m.features {
        if !names.insert(f.name.as_str()) {
            return bad(format!("feature {:?} appears twice", f.name));
        }
        let code = &f.reason.code;
        if code.is_empty()
            || !code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        {
            return bad(format!(
                "reason code {code:?} of feature {:?} must be letters, digits, '_', '-' or '.'",
                f.name
            ));
        }
        if !codes.insert(f.reason.code.as_str()) {
            return bad(format!("reason code {:?} appears twice", f.reason.code));
        }
        if f.bins.is_empty() {
            return bad(format!("feature {:?} has no bins", f.name));
        }
        if f.bins.iter().filter(|b| b.missing).count() > 1 {
            return bad(format!(
                "feature {:?} has more than one missing bin",
                f.name
            ));
        }
        match f.kind {
            FeatureKind::Numeric => {
                let mut specials = std::collections::HashSet::new();
                for b in &f.bins {
                    for v in &b.special {
                        if !v.is_finite() || !specials.insert(v.to_bits()) {
                            return bad(format!(
                                "feature {:?}: special value {v} is not a finite number or appears twice",
                                f.name
                            ));
                        }
                    }
                }
                let ranged: Vec<&Bin> = f.bins.iter().filter(|b| b.is_range()).collect();
                if ranged.is_empty() {
                    return bad(format!("numeric feature {:?} has no range bins", f.name));
                }
                if ranged[0].lower.is_some() {
                    return bad(format!(
                        "feature {:?}: the first bin must start at -inf",
                        f.name
                    ));
                }
                if ranged[ranged.len() - 1].upper.is_some() {
                    return bad(format!(
                        "feature {:?}: the last bin must end at +inf",
                        f.name
                    ));
                }
                for w in ranged.windows(2) {
                    match (w[0].upper, w[1].lower) {
                        (Some(u), Some(l)) if u == l && u.is_finite() => {}
                        _ => {
                            return bad(format!(
                                "feature {:?}: bins {:?} and {:?} do not meet",
                                f.name, w[0].label, w[1].label
                            ));
                        }
                    }
                    if let (Some(l0), Some(u0)) = (w[0].lower, w[0].upper)
                        && l0 >= u0
                    {
                        return bad(format!(
                            "feature {:?}: bin {:?} is empty",
                            f.name, w[0].label
                        ));
                    }
                }
            }
            FeatureKind::Categorical if f.bins.iter().any(|b| !b.special.is_empty()) => {
                return bad(format!(
                    "feature {:?}: special values are for numeric features",
                    f.name
                ));
            }
            FeatureKind::Categorical => {
                let mut seen = std::collections::HashSet::new();
                for b in &f.bins {
                    for c in &b.categories {
                        if !seen.insert(c.as_str()) {
                            return bad(format!(
                                "feature {:?}: category {c:?} is in two bins",
                                f.name
                            ));
                        }
                    }
                }
            }
        }
    }
    let c = &m.stars.min_score;
    if !c.windows(2).all(|w| w[0] < w[1]) {
        return bad(format!("star cut-offs {c:?} are not strictly increasing"));
    }
    if let Some((c, v)) = m.category_norms.iter().find(|(_, v)| **v < 0) {
        return bad(format!("category norm of {c:?} is negative ({v})"));
    }
    if let Some(s) = m.volume_floor_star
        && !(2..=5).contains(&s)
    {
        return bad(format!("volume_floor_star must be 2..=5, got {s}"));
    }
    Ok(())
}
