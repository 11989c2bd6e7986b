//! The model artifact and the scoring function: feature values → points → score →
//! star, with reason codes. Pure: no I/O beyond (de)serialising the artifact, and no
//! polars, linfa or axum, so the batch `rate` and the online service call exactly the
//! same code and agree to the last point.
//!
//! A [`Model`] is the public, human-readable JSON artifact (spec §4): bins, weight of
//! evidence, coefficients, the points table, star cut-offs, the feature order, the
//! schema version, the training data's fingerprint and the metrics. [`Model::check`]
//! validates it and returns a [`Scorecard`], the only type that can score.
//!
//! Points follow the usual credit-scorecard scaling. With WOE = ln(%good / %bad) per
//! bin and a logistic regression `logit P(bad) = a + Σ b_j·woe_j`,
//! `factor = pdo / ln 2`, `offset = base_score − factor·ln(base_odds)`, each bin gets
//! `round(−factor·(b_j·woe + a/n) + offset/n)` points and the score is the sum of the
//! points of the buyer's bins, an integer. A higher score is a better buyer.
//!
//! **The volume floor.** A model may set `volume_floor_star` (3, the instant-release
//! star, by default for buyer models): return volume alone never takes a buyer below
//! it. With `raw` the sum of points and `clear` the sum with every
//! [`ReturnEffect::Volume`] feature at its best bin, the score is `max(raw, floor)`
//! when `clear ≥ floor` (floor = that star's cut-off), else `raw`. Both `raw` and
//! `clear` never rise when a return is added, so neither does the score; an honest
//! return moves only `raw`, so a buyer at or above the floor stays there
//! ([`safety`] checks the rest).

mod model;

pub mod safety;

pub use model::{
    Bin, Feature, FeatureKind, Metrics, Model, ModelError, ReasonText, ReturnEffect,
    SCHEMA_VERSION, Scaling, SplitMetrics, StarCutoffs, StarRow, TrainingInfo, Translation, Trend,
};

use crate::domain::Star;
use std::collections::HashMap;

/// One input value for a feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A number (a NaN counts as missing).
    Num(f64),
    /// A category label.
    Cat(&'a str),
    /// No value.
    Missing,
}

/// Up to this many reason codes are given per buyer.
pub const MAX_REASONS: usize = 4;

/// The result of scoring one buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scored {
    /// The sum of points; higher is better.
    pub score: i32,
    /// The star from the model's cut-offs.
    pub star: Star,
    /// The (up to four) features that cost the most points against their best bin,
    /// worst first; `None` past the last.
    pub reasons: [Option<ReasonRef>; MAX_REASONS],
}

/// One buyer's points per feature (in model order) and which values were missing: what
/// a snapshot keeps of each buyer so that the rating can be scored again without the
/// features, with a reason struck ([`Scorecard::strike`], [`crate::cases::Strike`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Points {
    pub points: Vec<i32>,
    pub missing: Vec<bool>,
}

/// Suffix of a stored reason code whose feature had no value (e.g. a buyer who never
/// shipped a return has no shipping time): `days_to_ship_mean_365:missing`.
pub const MISSING_SUFFIX: &str = ":missing";

/// One reason a buyer lost points: the feature, and whether it lost them for having no
/// value rather than a bad one. The two get different words: "you take long to ship
/// your returns" is wrong for a buyer who has never shipped one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReasonRef {
    /// Index into the model's features.
    pub feature: u16,
    /// The value was missing.
    pub missing: bool,
}

/// The words for one reason, chosen for missing or present values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonWords<'a> {
    pub message: &'a str,
    pub advice: &'a str,
}

impl ReasonRef {
    /// The stored code: the feature's code, with [`MISSING_SUFFIX`] when missing.
    pub fn code(self, card: &Scorecard) -> String {
        let base = &card.reason(usize::from(self.feature)).code;
        if self.missing {
            format!("{base}{MISSING_SUFFIX}")
        } else {
            base.clone()
        }
    }

    /// [`ReasonRef::words`] in the language tagged `lang` (e.g. `zh-CN`), when the
    /// model has it for this feature; English otherwise.
    pub fn words_in<'a>(self, card: &'a Scorecard, lang: &str) -> ReasonWords<'a> {
        let t = card.reason(usize::from(self.feature));
        match t.translations.get(lang) {
            Some(x) if self.missing => ReasonWords {
                message: x.missing_message.as_deref().unwrap_or(&x.message),
                advice: x.missing_advice.as_deref().unwrap_or(&x.advice),
            },
            Some(x) => ReasonWords {
                message: &x.message,
                advice: &x.advice,
            },
            None => self.words(card),
        }
    }

    /// The message and advice, using the feature's missing-value words when the value
    /// was missing and it has them.
    pub fn words(self, card: &Scorecard) -> ReasonWords<'_> {
        let t = card.reason(usize::from(self.feature));
        if self.missing {
            ReasonWords {
                message: t.missing_message.as_deref().unwrap_or(&t.message),
                advice: t.missing_advice.as_deref().unwrap_or(&t.advice),
            }
        } else {
            ReasonWords {
                message: &t.message,
                advice: &t.advice,
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Binner {
    Numeric {
        /// Upper bounds (exclusive) of every bin but the last; bins are `[lower, upper)`.
        uppers: Vec<f64>,
        points: Vec<i32>,
        /// Special values, their points and bin position (checked before the ranges).
        specials: Vec<(f64, i32, usize)>,
    },
    Categorical {
        points_of: HashMap<String, i32>,
        other: i32,
    },
}

#[derive(Debug, Clone)]
struct Prepared {
    binner: Binner,
    missing: i32,
    best: i32,
    /// Numeric: positions in `Feature::bins` of the range bins, in order.
    ranged: Vec<usize>,
    /// Position of the missing bin in `Feature::bins`, if it has one.
    missing_pos: Option<usize>,
    /// A [`ReturnEffect::Volume`] feature, under the volume floor.
    volume: bool,
}

/// A checked model, ready to score. Built only by [`Model::check`].
#[derive(Debug, Clone)]
pub struct Scorecard {
    model: Model,
    prepared: Vec<Prepared>,
    /// The volume floor's score, when the model has one.
    floor: Option<i32>,
}

impl Scorecard {
    /// The artifact this scorecard was built from.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model version string.
    pub fn version(&self) -> &str {
        &self.model.model_version
    }

    /// Feature names in the order [`Scorecard::score`] expects values.
    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.model.features.iter().map(|f| f.name.as_str())
    }

    /// How many features the model takes.
    pub fn n_features(&self) -> usize {
        self.prepared.len()
    }

    /// The points one value earns for feature `j`.
    pub fn points(&self, j: usize, v: Value<'_>) -> i32 {
        self.points_and_missing(j, v).0
    }

    /// The points one value earns for feature `j`, and whether it counted as missing.
    fn points_and_missing(&self, j: usize, v: Value<'_>) -> (i32, bool) {
        let p = &self.prepared[j];
        match (v, &p.binner) {
            (Value::Missing, _) => (p.missing, true),
            (Value::Num(x), _) if x.is_nan() => (p.missing, true),
            (
                Value::Num(x),
                Binner::Numeric {
                    uppers,
                    points,
                    specials,
                },
            ) => match specials.iter().find(|s| s.0 == x) {
                Some(s) => (s.1, false),
                None => (points[uppers.partition_point(|u| *u <= x)], false),
            },
            (Value::Cat(c), Binner::Categorical { points_of, other }) => {
                (points_of.get(c).copied().unwrap_or(*other), false)
            }
            // A number for a categorical feature is read as its text; text for a
            // numeric feature is parsed, and counts as missing if it is not a number.
            (Value::Num(x), Binner::Categorical { points_of, other }) => (
                points_of.get(&format_number(x)).copied().unwrap_or(*other),
                false,
            ),
            (Value::Cat(c), Binner::Numeric { .. }) => match c.trim().parse::<f64>() {
                Ok(x) => self.points_and_missing(j, Value::Num(x)),
                Err(_) => (p.missing, true),
            },
        }
    }

    /// The bin (a position in the feature's `bins`) a number falls in, for numeric
    /// feature `j`; a missing value goes to the missing bin, or to `bins.len()` when the
    /// feature has none. `None` for a categorical feature.
    pub fn numeric_bin(&self, j: usize, x: f64) -> Option<usize> {
        let p = &self.prepared[j];
        let Binner::Numeric {
            uppers, specials, ..
        } = &p.binner
        else {
            return None;
        };
        if x.is_nan() {
            return Some(p.missing_pos.unwrap_or(self.model.features[j].bins.len()));
        }
        if let Some(s) = specials.iter().find(|s| s.0 == x) {
            return Some(s.2);
        }
        p.ranged.get(uppers.partition_point(|u| *u <= x)).copied()
    }

    /// Scores one buyer; `values` are in [`Scorecard::feature_names`] order.
    pub fn score(&self, values: &[Value<'_>]) -> Result<Scored, ModelError> {
        if values.len() != self.prepared.len() {
            return Err(ModelError::Arity {
                expected: self.prepared.len(),
                got: values.len(),
            });
        }
        Ok(self.score_with(|j| self.points_and_missing(j, values[j])))
    }

    /// Scores one buyer whose features are all numeric (NaN = missing).
    pub fn score_numeric(&self, values: &[f64]) -> Result<Scored, ModelError> {
        if values.len() != self.prepared.len() {
            return Err(ModelError::Arity {
                expected: self.prepared.len(),
                got: values.len(),
            });
        }
        Ok(self.score_with(|j| self.points_and_missing(j, Value::Num(values[j]))))
    }

    /// The points and missing flags one buyer's numeric values earn (NaN = missing).
    pub fn points_numeric(&self, values: &[f64]) -> Result<Points, ModelError> {
        if values.len() != self.prepared.len() {
            return Err(ModelError::Arity {
                expected: self.prepared.len(),
                got: values.len(),
            });
        }
        let (points, missing) = (0..values.len())
            .map(|j| self.points_and_missing(j, Value::Num(values[j])))
            .unzip();
        Ok(Points { points, missing })
    }

    /// Scores one buyer from their points: the same [`Scored`] as scoring the values
    /// that earned them.
    pub fn score_points(&self, p: &Points) -> Result<Scored, ModelError> {
        let n = self.prepared.len();
        if p.points.len() != n || p.missing.len() != n {
            return Err(ModelError::Arity {
                expected: n,
                got: p.points.len().min(p.missing.len()),
            });
        }
        Ok(self.score_with(|j| (p.points[j], p.missing[j])))
    }

    /// Strikes the reason `code` from `p` (a rating case the buyer won on it): its
    /// feature earns its best points, not missing, if its points now are no fewer than
    /// `points_at_open`, the evidence the case contested. Worse evidence since (fewer
    /// points) counts: nothing is struck. Returns whether it struck; a code the model
    /// does not have strikes nothing.
    pub fn strike(&self, p: &mut Points, code: &str, points_at_open: i32) -> bool {
        let Some(r) = self.reason_by_code(code) else {
            return false;
        };
        let j = usize::from(r.feature);
        match p.points.get(j) {
            Some(now) if *now >= points_at_open => {
                p.points[j] = self.prepared[j].best;
                p.missing[j] = false;
                true
            }
            _ => false,
        }
    }

    fn score_with(&self, points_of: impl Fn(usize) -> (i32, bool)) -> Scored {
        let mut score = 0i32;
        let mut volume_cost = 0i32;
        // (loss, reason) of the worst MAX_REASONS, kept sorted worst first.
        let none = ReasonRef {
            feature: 0,
            missing: false,
        };
        let mut worst: [(i32, ReasonRef); MAX_REASONS] = [(0, none); MAX_REASONS];
        for (j, p) in self.prepared.iter().enumerate() {
            let (pts, missing) = points_of(j);
            score += pts;
            let loss = p.best - pts;
            if p.volume {
                volume_cost += loss;
            }
            if loss > worst[MAX_REASONS - 1].0 {
                let mut k = MAX_REASONS - 1;
                while k > 0 && loss > worst[k - 1].0 {
                    worst[k] = worst[k - 1];
                    k -= 1;
                }
                worst[k] = (
                    loss,
                    ReasonRef {
                        feature: u16::try_from(j).unwrap_or(u16::MAX),
                        missing,
                    },
                );
            }
        }
        let mut reasons = [None; MAX_REASONS];
        for (r, (loss, j)) in reasons.iter_mut().zip(worst) {
            if loss > 0 {
                *r = Some(j);
            }
        }
        let score = self.floored(score, volume_cost);
        Scored {
            score,
            star: self.model.stars.star_of(score),
            reasons,
        }
    }

    /// The score from the sum of points `raw` and the points the volume features lose
    /// against their best bins (module doc).
    pub fn floored(&self, raw: i32, volume_cost: i32) -> i32 {
        match self.floor {
            Some(f) if raw.saturating_add(volume_cost) >= f => raw.max(f),
            _ => raw,
        }
    }

    /// The volume floor's score (the cut-off of `volume_floor_star`), if any.
    pub fn floor_score(&self) -> Option<i32> {
        self.floor
    }

    /// Feature `j` is a [`ReturnEffect::Volume`] feature.
    pub fn is_volume(&self, j: usize) -> bool {
        self.prepared[j].volume
    }

    /// The points a missing value of feature `j` earns.
    pub fn missing_points(&self, j: usize) -> i32 {
        self.prepared[j].missing
    }

    /// The most points feature `j` can give (its best bin).
    pub fn best_points(&self, j: usize) -> i32 {
        self.prepared[j].best
    }

    /// The reason text of feature `j`.
    pub fn reason(&self, j: usize) -> &ReasonText {
        &self.model.features[j].reason
    }

    /// The reason a stored code stands for: a feature's code, with [`MISSING_SUFFIX`]
    /// when the value was missing.
    pub fn reason_by_code(&self, code: &str) -> Option<ReasonRef> {
        let (base, missing) = match code.strip_suffix(MISSING_SUFFIX) {
            Some(b) => (b, true),
            None => (code, false),
        };
        let j = self
            .model
            .features
            .iter()
            .position(|f| f.reason.code == base)?;
        Some(ReasonRef {
            feature: u16::try_from(j).ok()?,
            missing,
        })
    }

    /// The probability that a buyer with this score turns bad, from the scaling.
    pub fn probability_bad(&self, score: f64) -> f64 {
        self.model.scaling.probability_bad(score)
    }
}

fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

impl Model {
    /// Validates the artifact (schema version, bins, cut-offs) and prepares it for
    /// scoring. Fails loudly, naming what is wrong.
    pub fn check(self) -> Result<Scorecard, ModelError> {
        model::validate(&self)?;
        let prepared = self
            .features
            .iter()
            .map(|f| {
                let missing = f
                    .bins
                    .iter()
                    .find(|b| b.missing)
                    .map(|b| b.points)
                    .unwrap_or(0);
                let best = f.bins.iter().map(|b| b.points).max().unwrap_or(0);
                let binner = match f.kind {
                    FeatureKind::Numeric => {
                        let ranged: Vec<&Bin> = f.bins.iter().filter(|b| b.is_range()).collect();
                        Binner::Numeric {
                            specials: f
                                .bins
                                .iter()
                                .enumerate()
                                .flat_map(|(i, b)| b.special.iter().map(move |v| (*v, b.points, i)))
                                .collect(),
                            uppers: ranged
                                .iter()
                                .take(ranged.len().saturating_sub(1))
                                .map(|b| b.upper.unwrap_or(f64::INFINITY))
                                .collect(),
                            points: ranged.iter().map(|b| b.points).collect(),
                        }
                    }
                    FeatureKind::Categorical => {
                        let mut points_of = HashMap::new();
                        let mut other = missing;
                        for b in &f.bins {
                            for c in &b.categories {
                                points_of.insert(c.clone(), b.points);
                            }
                            if b.other {
                                other = b.points;
                            }
                        }
                        Binner::Categorical { points_of, other }
                    }
                };
                Prepared {
                    binner,
                    missing,
                    best,
                    ranged: f
                        .bins
                        .iter()
                        .enumerate()
                        .filter(|(_, b)| b.is_range())
                        .map(|(i, _)| i)
                        .collect(),
                    missing_pos: f.bins.iter().position(|b| b.missing),
                    volume: f.on_return == Some(ReturnEffect::Volume),
                }
            })
            .collect();
        let floor = self.volume_floor_star.map(|s| self.stars.min_score_of(s));
        Ok(Scorecard {
            model: self,
            prepared,
            floor,
        })
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::tiny_model;
