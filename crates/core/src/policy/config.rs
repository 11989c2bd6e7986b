//! The policy file (TOML) and the checked [`Policy`] built from it. Unknown keys, a
//! star outside 1..=5, an hour outside 0..=23, a negative limit or an unknown time zone
//! are refused with an error that names the key; so are a refund-only threshold that is
//! negative or above the advance limit, a category or reason the policy does not know
//! in its tables, and a merchant's rule that would widen the platform's (naming the
//! merchant).

use crate::domain::{Category, Money, ReturnReason, Star};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

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

/// `[refund_without_return]` of the policy file (optional: absent means off): the offer
/// of a refund without sending the goods back (仅退款) for cheap items.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RefundOnlyFile {
    /// Whether the offer is made at all (default false).
    #[serde(default)]
    pub enabled: bool,
    /// The lowest star offered it (default 4).
    #[serde(default = "four")]
    pub min_star: i64,
    /// The most an item may cost, for every category and reason not named below
    /// (default "30.00").
    #[serde(default = "thirty")]
    pub max_amount: String,
    /// Reason → most an item may cost, in every category not named below.
    #[serde(default)]
    pub by_reason: BTreeMap<String, String>,
    /// Category → (`default` or a reason) → most an item may cost.
    #[serde(default)]
    pub by_category: BTreeMap<String, BTreeMap<String, String>>,
    /// Most one buyer is refunded without return over a rolling 30 days (default
    /// "200.00").
    #[serde(default = "two_hundred")]
    pub per_buyer_30_days: String,
    /// Most the platform refunds without return in one day (platform time zone), all
    /// buyers; apart from the advance budget.
    pub daily_budget: String,
    /// Categories never refunded without return, beside `instant.excluded_categories`.
    #[serde(default)]
    pub excluded_categories: Vec<String>,
}

fn four() -> i64 {
    4
}
fn thirty() -> String {
    "30.00".into()
}
fn two_hundred() -> String {
    "200.00".into()
}

/// `[merchants.<id>]`: one merchant's rules for its own orders. Every key narrows the
/// platform's rules; one that would widen them is refused at load.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantFile {
    /// `false`: no instant address release on this merchant's orders.
    pub instant_release: Option<bool>,
    /// `false`: the platform advances no refund on this merchant's orders.
    pub advances: Option<bool>,
    /// `false`: no refund without return on this merchant's orders.
    pub refund_without_return: Option<bool>,
    /// A lower advance limit on this merchant's orders (the buyer's outstanding
    /// advances plus this one), at most the platform's highest.
    pub advance_limit: Option<String>,
    /// A lower refund-only threshold on this merchant's orders, for every category and
    /// reason, at most the platform's highest.
    pub refund_without_return_max: Option<String>,
    /// Categories this merchant excludes from instant release and refund-only.
    #[serde(default)]
    pub excluded_categories: Vec<String>,
}

/// The policy file as written; [`PolicyFile::check`] turns it into a [`Policy`].
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub version: String,
    pub time_zone: String,
    pub merchant_answer_hours: i64,
    pub unknown_buyer_star: i64,
    /// The marketplace's category codes: the only ones the policy's lists and tables
    /// may name (a misspelt category would otherwise never match and say nothing).
    /// Absent: the categories `[instant]` names, or any code when it says "all".
    pub known_categories: Option<Vec<String>>,
    pub instant: InstantFile,
    pub pickup: PickupFile,
    pub advance: AdvanceFile,
    #[serde(default)]
    pub cases: CasesFile,
    pub refund_without_return: Option<RefundOnlyFile>,
    /// Merchant id → its rules.
    #[serde(default)]
    pub merchants: BTreeMap<String, MerchantFile>,
}

/// The checked refund-without-return rules.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundOnly {
    pub enabled: bool,
    pub min_star: Star,
    /// For every category and reason not named in the tables.
    pub max_amount: Money,
    pub by_reason: HashMap<ReturnReason, Money>,
    /// Category → (its default, its reasons).
    pub by_category: HashMap<String, (Option<Money>, HashMap<ReturnReason, Money>)>,
    pub per_buyer_30_days: Money,
    pub daily_budget: Money,
    /// Beside the instant programme's exclusions.
    pub excluded_categories: HashSet<String>,
}

impl RefundOnly {
    /// Off: no offer is ever made.
    pub fn off() -> RefundOnly {
        RefundOnly {
            enabled: false,
            min_star: Star::MAX,
            max_amount: Money::ZERO,
            by_reason: HashMap::new(),
            by_category: HashMap::new(),
            per_buyer_30_days: Money::ZERO,
            daily_budget: Money::ZERO,
            excluded_categories: HashSet::new(),
        }
    }

    /// The most an item of `category` returned for `reason` may cost to be refunded
    /// without return: the category's row for the reason, else the category's default,
    /// else the reason's row, else `max_amount`.
    pub fn max_for(&self, category: &str, reason: ReturnReason) -> Money {
        let cat = self.by_category.get(category);
        cat.and_then(|(_, r)| r.get(&reason).copied())
            .or_else(|| cat.and_then(|(d, _)| *d))
            .or_else(|| self.by_reason.get(&reason).copied())
            .unwrap_or(self.max_amount)
    }

    /// Every threshold of the table, the default first.
    fn thresholds(&self) -> impl Iterator<Item = Money> + '_ {
        std::iter::once(self.max_amount)
            .chain(self.by_reason.values().copied())
            .chain(self.by_category.values().flat_map(|(d, r)| {
                d.iter()
                    .copied()
                    .chain(r.values().copied())
                    .collect::<Vec<_>>()
            }))
    }
}

/// One merchant's checked rules: each narrows the platform's.
#[derive(Debug, Clone, PartialEq)]
pub struct MerchantRules {
    pub instant_release: bool,
    pub advances: bool,
    pub refund_without_return: bool,
    pub advance_limit: Option<Money>,
    pub refund_without_return_max: Option<Money>,
    pub excluded_categories: HashSet<String>,
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
    /// Refund without return (仅退款).
    pub refund_only: RefundOnly,
    /// Merchant id → its rules (merchants without a row follow the platform's).
    pub merchant_rules: HashMap<u64, MerchantRules>,
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

    /// The rules of `merchant`, if it has any.
    pub fn merchant(&self, merchant: u64) -> Option<&MerchantRules> {
        self.merchant_rules.get(&merchant)
    }

    /// The advance limit for a star on `merchant`'s orders, and whether the merchant's
    /// own limit is the one that binds.
    pub fn limit_for_merchant(&self, star: Star, merchant: u64) -> (Money, bool) {
        let platform = self.limit_for(star);
        match self.merchant(merchant).and_then(|m| m.advance_limit) {
            Some(m) if m < platform => (m, true),
            _ => (platform, false),
        }
    }
}

fn sorted(s: &HashSet<String>) -> Vec<&str> {
    let mut v: Vec<&str> = s.iter().map(String::as_str).collect();
    v.sort_unstable();
    v
}

/// Checks `[refund_without_return]`: every threshold a non-negative amount at most the
/// advance limit of the lowest star offered it; reasons and categories known.
fn check_refund_only(
    r: &RefundOnlyFile,
    limits: &[Money; 5],
    known_category: &dyn Fn(&str, &String) -> Result<String, PolicyError>,
    money: &dyn Fn(&str, &str) -> Result<Money, PolicyError>,
    star: &dyn Fn(&str, i64) -> Result<Star, PolicyError>,
    invalid: &dyn Fn(&str, String) -> PolicyError,
) -> Result<RefundOnly, PolicyError> {
    const SECTION: &str = "refund_without_return";
    let min_star = star(&format!("{SECTION}.min_star"), r.min_star)?;
    // The lowest advance limit of a star offered the refund: no buyer is refunded
    // without return more than the platform would advance them with the goods coming.
    let (cap_star, cap) = Star::all()
        .filter(|s| *s >= min_star)
        .map(|s| (s, limits[s.index()]))
        .min_by_key(|(_, l)| *l)
        .unwrap_or((Star::MAX, limits[4]));
    let threshold = |key: String, v: &str| -> Result<Money, PolicyError> {
        let m = money(&key, v)?;
        if m > cap {
            return Err(invalid(
                &key,
                format!(
                    "{m} is above the advance limit of {cap_star} ({cap}), the lowest limit of a star offered a refund without return"
                ),
            ));
        }
        Ok(m)
    };
    let reason = |key: String, v: &str| -> Result<ReturnReason, PolicyError> {
        v.parse::<ReturnReason>()
            .map_err(|e| invalid(&key, e.to_string()))
    };
    let max_amount = threshold(format!("{SECTION}.max_amount"), &r.max_amount)?;
    let mut by_reason = HashMap::new();
    for (k, v) in &r.by_reason {
        let key = format!("{SECTION}.by_reason.{k}");
        by_reason.insert(reason(key.clone(), k)?, threshold(key, v)?);
    }
    let mut by_category = HashMap::new();
    for (c, row) in &r.by_category {
        let c = known_category(&format!("{SECTION}.by_category.{c}"), c)?;
        let mut default = None;
        let mut reasons = HashMap::new();
        for (k, v) in row {
            let key = format!("{SECTION}.by_category.{c}.{k}");
            if k == "default" {
                default = Some(threshold(key, v)?);
            } else {
                reasons.insert(reason(key.clone(), k)?, threshold(key, v)?);
            }
        }
        by_category.insert(c, (default, reasons));
    }
    Ok(RefundOnly {
        enabled: r.enabled,
        min_star,
        max_amount,
        by_reason,
        by_category,
        per_buyer_30_days: money(
            &format!("{SECTION}.per_buyer_30_days"),
            &r.per_buyer_30_days,
        )?,
        daily_budget: money(&format!("{SECTION}.daily_budget"), &r.daily_budget)?,
        excluded_categories: r
            .excluded_categories
            .iter()
            .map(|c| known_category(&format!("{SECTION}.excluded_categories"), c))
            .collect::<Result<HashSet<_>, _>>()?,
    })
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
        let min_star = star("instant.min_star", self.instant.min_star)?;
        let known: Option<HashSet<String>> = match (&self.known_categories, &categories) {
            (Some(v), _) => Some(
                v.iter()
                    .map(|c| category("known_categories", c))
                    .collect::<Result<HashSet<_>, _>>()?,
            ),
            (None, Some(listed)) => Some(listed.union(&excluded_categories).cloned().collect()),
            (None, None) => None,
        };
        let known_category = |key: &str, c: &String| {
            let c = category(key, c)?;
            match &known {
                Some(k) if !k.contains(&c) => Err(invalid(
                    key,
                    format!(
                        "names the category {c:?}, which the policy does not know (known_categories: {})",
                        sorted(k).join(", ")
                    ),
                )),
                _ => Ok(c),
            }
        };
        if let (Some(_), Some(listed)) = (&self.known_categories, &categories) {
            for c in listed.iter().chain(&excluded_categories) {
                known_category("instant.categories", c)?;
            }
        }
        let refund_only = match &self.refund_without_return {
            None => RefundOnly::off(),
            Some(r) => check_refund_only(r, &limits, &known_category, &money, &star, &invalid)?,
        };
        let mut merchant_rules = HashMap::new();
        for (id, m) in &self.merchants {
            let at = |k: &str| format!("merchants.{id}.{k}");
            let merchant: u64 = id.parse().map_err(|_| {
                invalid(
                    &format!("merchants.{id}"),
                    "is not a merchant id (a non-negative integer)".into(),
                )
            })?;
            let widen = |k: &str, why: String| {
                Err(invalid(
                    &at(k),
                    format!("merchant {merchant}: would widen the platform's rules: {why}"),
                ))
            };
            let in_programme = match &self.instant.merchants {
                Scope::All => true,
                Scope::List(v) => v.contains(&merchant),
            };
            if m.instant_release == Some(true) && !in_programme {
                return widen(
                    "instant_release",
                    "the merchant is not in instant.merchants".into(),
                );
            }
            if m.refund_without_return == Some(true) && !refund_only.enabled {
                return widen(
                    "refund_without_return",
                    "refund_without_return is off for the platform".into(),
                );
            }
            let highest = limits.iter().copied().max().unwrap_or(Money::ZERO);
            let advance_limit = m
                .advance_limit
                .as_deref()
                .map(|v| money(&at("advance_limit"), v))
                .transpose()?;
            if let Some(l) = advance_limit
                && l > highest
            {
                return widen(
                    "advance_limit",
                    format!("{l} is above the platform's highest advance limit, {highest}"),
                );
            }
            let rwr_max = m
                .refund_without_return_max
                .as_deref()
                .map(|v| money(&at("refund_without_return_max"), v))
                .transpose()?;
            if let Some(l) = rwr_max {
                let top = refund_only.thresholds().max().unwrap_or(Money::ZERO);
                if !refund_only.enabled || l > top {
                    return widen(
                        "refund_without_return_max",
                        format!("{l} is above the platform's highest refund-only threshold, {top}"),
                    );
                }
            }
            let excluded = m
                .excluded_categories
                .iter()
                .map(|c| known_category(&at("excluded_categories"), c))
                .collect::<Result<HashSet<_>, _>>()
                .map_err(|e| match e {
                    PolicyError::Invalid {
                        origin,
                        key,
                        message,
                    } => PolicyError::Invalid {
                        origin,
                        key,
                        message: format!("merchant {merchant}: {message}"),
                    },
                    other => other,
                })?;
            merchant_rules.insert(
                merchant,
                MerchantRules {
                    instant_release: m.instant_release.unwrap_or(true),
                    advances: m.advances.unwrap_or(true),
                    refund_without_return: m.refund_without_return.unwrap_or(true),
                    advance_limit,
                    refund_without_return_max: rwr_max,
                    excluded_categories: excluded,
                },
            );
        }
        Ok(Policy {
            refund_only,
            merchant_rules,
            cases,
            version: self.version,
            time_zone,
            merchant_answer_hours,
            unknown_buyer_star: star("unknown_buyer_star", self.unknown_buyer_star)?,
            min_star,
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
