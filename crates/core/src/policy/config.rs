//! The policy file (TOML) and the checked [`Policy`] built from it. Unknown keys, a
//! star outside 1..=5, an hour outside 0..=23, a negative limit or an unknown time zone
//! are refused with an error that names the key.

use crate::domain::{Category, Money, Star};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The policy shipped with the project (`config/policy.toml`).
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../../../config/policy.toml");

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("policy file {origin}: `{key}` {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

/// `"all"` or an explicit list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Scope<T> {
    All,
    List(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Scope<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw<T> {
            Word(String),
            List(Vec<T>),
        }
        match Raw::<T>::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected \"all\" or a list"))?
        {
            Raw::Word(w) if w == "all" => Ok(Scope::All),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "expected \"all\" or a list, found {w:?}"
            ))),
            Raw::List(v) => Ok(Scope::List(v)),
        }
    }
}

/// `[instant]` of the policy file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstantFile {
    pub min_star: i64,
    pub window_days: i64,
    pub categories: Scope<String>,
    pub merchants: Scope<u64>,
    pub excluded_categories: Vec<String>,
    /// No instant release for a buyer with a loss since their rating (default true).
    #[serde(default = "yes")]
    pub hold_after_loss: bool,
}

fn yes() -> bool {
    true
}

/// `[pickup]` of the policy file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PickupFile {
    pub start_hour: i64,
    pub end_hour: i64,
}

/// `[advance.limits]`: per-star limits as decimal strings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    pub star_1: String,
    pub star_2: String,
    pub star_3: String,
    pub star_4: String,
    pub star_5: String,
}

/// `[advance]` of the policy file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceFile {
    pub limits: LimitsFile,
    pub daily_budget: String,
    /// Refuse an advance on a tracking number that backs another return's advance
    /// (default true; false only flags it).
    #[serde(default = "yes")]
    pub refuse_reused_tracking: bool,
}

/// `[cases]` of the policy file (optional; every key has a default): the deadlines of
/// a contested decision.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CasesFile {
    /// The other party's turn to answer an outcome case (default 48).
    #[serde(default = "respond_hours")]
    pub respond_hours: i64,
    /// A decision on an `outcome` case (default 72).
    #[serde(default = "decide_hours")]
    pub decide_hours_outcome: i64,
    /// A decision on a `decision` case (default 72).
    #[serde(default = "decide_hours")]
    pub decide_hours_decision: i64,
    /// A decision on a `rating` case (default 15; at most 30, the FCRA's bound).
    #[serde(default = "decide_days_rating")]
    pub decide_days_rating: i64,
    /// A reviewer's lease on a claimed case (default 60).
    #[serde(default = "lease_minutes")]
    pub lease_minutes: i64,
}

fn respond_hours() -> i64 {
    48
}
fn decide_hours() -> i64 {
    72
}
fn decide_days_rating() -> i64 {
    15
}
fn lease_minutes() -> i64 {
    60
}

impl Default for CasesFile {
    fn default() -> Self {
        CasesFile {
            respond_hours: respond_hours(),
            decide_hours_outcome: decide_hours(),
            decide_hours_decision: decide_hours(),
            decide_days_rating: decide_days_rating(),
            lease_minutes: lease_minutes(),
        }
    }
}

/// The policy file as written; [`PolicyFile::check`] turns it into a [`Policy`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub version: String,
    pub time_zone: String,
    pub merchant_answer_hours: i64,
    pub unknown_buyer_star: i64,
    pub instant: InstantFile,
    pub pickup: PickupFile,
    pub advance: AdvanceFile,
    #[serde(default)]
    pub cases: CasesFile,
}

/// A checked policy: only this type can decide.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Recorded with every decision.
    pub version: String,
    pub time_zone: Tz,
    pub merchant_answer_hours: u32,
    pub unknown_buyer_star: Star,
    pub min_star: Star,
    pub window_days: u32,
    /// `None` = every category.
    pub categories: Option<HashSet<String>>,
    /// `None` = every merchant.
    pub merchants: Option<HashSet<u64>>,
    pub excluded_categories: HashSet<String>,
    /// Pickup hours `[start, end)`, 0..=23.
    pub pickup_start_hour: u32,
    pub pickup_end_hour: u32,
    /// Advance limit per star (index 0 = 1★).
    pub limits: [Money; 5],
    pub daily_budget: Money,
    /// No instant release for a buyer with a loss since their rating.
    pub hold_after_loss: bool,
    /// Refuse (not only flag) an advance on a tracking number used by another return.
    pub refuse_reused_tracking: bool,
    /// Deadlines of contested decisions.
    pub cases: crate::cases::CaseDeadlines,
}

impl Default for Policy {
    fn default() -> Self {
        // The shipped file is checked by a unit test; it cannot fail here.
        Policy::from_toml(DEFAULT_POLICY_TOML, "default policy").unwrap_or_else(|e| {
            panic!("the shipped default policy is invalid: {e}");
        })
    }
}

impl Policy {
    /// This policy with another minimum star for instant release; its version says so,
    /// so that what is compared is named. No other rule depends on the minimum star, so
    /// the result is as checked as `self` (a [`Star`] is 1–5 by construction).
    pub fn with_min_star(&self, min_star: Star) -> Policy {
        Policy {
            min_star,
            version: format!("{} (min_star {min_star})", self.version),
            ..self.clone()
        }
    }

    /// Parses and checks policy TOML; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Policy, PolicyError> {
        // The parser's message and where, never the offending text itself: a reload
        // pointed at the wrong file must not echo that file's contents to the caller.
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let at = e.span().map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!(" (line {line}, column {column})")
            });
            PolicyError::Parse {
                origin: origin.to_string(),
                message: format!(
                    "not a policy: {}{}",
                    e.message().trim_end(),
                    at.unwrap_or_default()
                ),
            }
        })?;
        file.check(origin)
    }

    /// The advance limit for a star.
    pub fn limit_for(&self, star: Star) -> Money {
        self.limits[star.index()]
    }
}

impl PolicyFile {
    /// Checks every value, naming the key of the first that is wrong.
    pub fn check(self, origin: &str) -> Result<Policy, PolicyError> {
        let invalid = |key: &str, message: String| PolicyError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            message,
        };
        let star = |key: &str, v: i64| {
            Star::try_from(v)
                .map_err(|_| invalid(key, format!("must be a star from 1 to 5, found {v}")))
        };
        let hour = |key: &str, v: i64| {
            u32::try_from(v)
                .ok()
                .filter(|h| *h <= 23)
                .ok_or_else(|| invalid(key, format!("must be an hour from 0 to 23, found {v}")))
        };
        let money = |key: &str, v: &str| {
            v.parse::<Money>()
                .map_err(|e| invalid(key, format!("must be a non-negative decimal amount: {e}")))
        };
        let category = |key: &str, v: &String| {
            Category::parse(v)
                .map(|c| c.as_str().to_string())
                .map_err(|e| invalid(key, e.to_string()))
        };
        if self.version.trim().is_empty() {
            return Err(invalid("version", "must not be empty".into()));
        }
        let time_zone: Tz = self.time_zone.parse().map_err(|_| {
            invalid(
                "time_zone",
                format!(
                    "{:?} is not an IANA time zone such as \"Asia/Shanghai\"",
                    self.time_zone
                ),
            )
        })?;
        let merchant_answer_hours = u32::try_from(self.merchant_answer_hours)
            .ok()
            .filter(|h| (1..=24 * 30).contains(h))
            .ok_or_else(|| {
                invalid(
                    "merchant_answer_hours",
                    format!(
                        "must be from 1 to 720, found {}",
                        self.merchant_answer_hours
                    ),
                )
            })?;
        let window_days = u32::try_from(self.instant.window_days)
            .ok()
            .filter(|d| (1..=90).contains(d))
            .ok_or_else(|| {
                invalid(
                    "instant.window_days",
                    format!("must be from 1 to 90, found {}", self.instant.window_days),
                )
            })?;
        let pickup_start_hour = hour("pickup.start_hour", self.pickup.start_hour)?;
        let pickup_end_hour = hour("pickup.end_hour", self.pickup.end_hour)?;
        if pickup_start_hour >= pickup_end_hour {
            return Err(invalid(
                "pickup.end_hour",
                format!(
                    "must be after pickup.start_hour ({pickup_start_hour}), found {pickup_end_hour}"
                ),
            ));
        }
        let l = &self.advance.limits;
        let limits = [
            money("advance.limits.star_1", &l.star_1)?,
            money("advance.limits.star_2", &l.star_2)?,
            money("advance.limits.star_3", &l.star_3)?,
            money("advance.limits.star_4", &l.star_4)?,
            money("advance.limits.star_5", &l.star_5)?,
        ];
        let categories = match &self.instant.categories {
            Scope::All => None,
            Scope::List(v) => Some(
                v.iter()
                    .map(|c| category("instant.categories", c))
                    .collect::<Result<HashSet<_>, _>>()?,
            ),
        };
        let excluded_categories = self
            .instant
            .excluded_categories
            .iter()
            .map(|c| category("instant.excluded_categories", c))
            .collect::<Result<HashSet<_>, _>>()?;
        let within = |key: &str, v: i64, max: i64| {
            (1..=max)
                .contains(&v)
                .then_some(v)
                .ok_or_else(|| invalid(key, format!("must be from 1 to {max}, found {v}")))
        };
        let c = &self.cases;
        // Every decision deadline within 30 days: the FCRA's outer bound.
        let cases = crate::cases::CaseDeadlines {
            respond: chrono::Duration::hours(within(
                "cases.respond_hours",
                c.respond_hours,
                24 * 30,
            )?),
            decide_outcome: chrono::Duration::hours(within(
                "cases.decide_hours_outcome",
                c.decide_hours_outcome,
                24 * 30,
            )?),
            decide_decision: chrono::Duration::hours(within(
                "cases.decide_hours_decision",
                c.decide_hours_decision,
                24 * 30,
            )?),
            decide_rating: chrono::Duration::days(within(
                "cases.decide_days_rating",
                c.decide_days_rating,
                30,
            )?),
            lease: chrono::Duration::minutes(within(
                "cases.lease_minutes",
                c.lease_minutes,
                24 * 60,
            )?),
        };
        Ok(Policy {
            cases,
            version: self.version,
            time_zone,
            merchant_answer_hours,
            unknown_buyer_star: star("unknown_buyer_star", self.unknown_buyer_star)?,
            min_star: star("instant.min_star", self.instant.min_star)?,
            window_days,
            categories,
            merchants: match &self.instant.merchants {
                Scope::All => None,
                Scope::List(v) => Some(v.iter().copied().collect()),
            },
            excluded_categories,
            pickup_start_hour,
            pickup_end_hour,
            limits,
            daily_budget: money("advance.daily_budget", &self.advance.daily_budget)?,
            hold_after_loss: self.instant.hold_after_loss,
            refuse_reused_tracking: self.advance.refuse_reused_tracking,
        })
    }
}
