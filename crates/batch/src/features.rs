//! Per-buyer features as of a date T, and the training label (spec §3).
//!
//! Every feature is a named function returning a polars [`Expr`]; column names are
//! constants; the whole computation is one lazy plan collected once. Only events
//! strictly before T are read (no leakage): an order placed before T, a return asked
//! before T, an outcome or dispute decision known before T (`outcome_at < T`,
//! `decided_at < T`). An outcome learnt after T is still `pending` as of T.
//!
//! Returns whose outcome (known as of T) was `merchant_fault` are dropped before any
//! return is counted: they never count against the buyer, nor for them.
//!
//! The return rate is measured **relative to the categories the buyer buys**: each
//! category's normal rate is the population's returns / orders over the 365 days
//! before T, a buyer's expected returns are the sum of those rates over their orders,
//! and the feature is `(returns + 1) / (expected + 1)`, which is 1 for a buyer who
//! returns exactly as often as is normal for what they buy (shoes often, phones
//! rarely), and shrinks towards 1 for buyers with little history.
//!
//! **Exact definitions.** The same features are computed by the SQL of
//! [`crate::sql`] on other engines, and a value on the other side of a bin edge changes a
//! star, so no feature depends on the order in which an engine adds things up: money is
//! summed in integer cents, durations in integer microseconds, the category norms in
//! integer billionths ([`NORM_SCALE`], rounded down), and each feature is then at most
//! one IEEE division of two exactly represented numbers (`Σµs / (n · DAY)`,
//! `cents / cents`, `((returns + 1) · 10⁹) / (expected + 10⁹)`), which every engine
//! rounds the same way.
//!
//! The label: a buyer is bad (1) if in (T, T+90 days] they cause a loss on an advanced
//! refund (`received_mismatch` or `not_shipped`, by `outcome_at`) or lose a dispute
//! with a fraud flag (by `decided_at`).

use super::tables::History;
use fastrefund_core::cases::CASE_DISPUTE_ID_BASE;
use fastrefund_core::cols::*;
use fastrefund_core::scoring::{ReturnEffect, Trend};
use polars::prelude::*;

/// One day in microseconds.
pub const DAY: i64 = 86_400_000_000;

/// A feature: its column name, and the words a buyer reads when it costs points.
#[derive(Debug, Clone, Copy)]
pub struct FeatureDef {
    pub name: &'static str,
    pub description: &'static str,
    /// Shown to the buyer when the feature costs points.
    pub message: &'static str,
    /// What would raise the rating.
    pub advice: &'static str,
    /// The direction the bad rate must follow as the value rises.
    pub trend: Option<Trend>,
    /// Message and advice when the buyer has no value (a share or mean of nothing):
    /// "you take long to ship your returns" is wrong for one who never shipped one.
    pub when_missing: Option<(&'static str, &'static str)>,
    /// How one more return can move it ([`ReturnEffect`]).
    pub on_return: ReturnEffect,
    /// [`ReturnEffect::Volume`]: the most one honest return raises it.
    pub honest_step: Option<f64>,
    /// Relative to the category norms (frozen in the model by training).
    pub reads_category_norms: bool,
}

impl FeatureDef {
    const fn reads_norms(mut self) -> FeatureDef {
        self.reads_category_norms = true;
        self
    }
    const fn volume(mut self, step: Option<f64>) -> FeatureDef {
        self.on_return = ReturnEffect::Volume;
        self.honest_step = step;
        self
    }

    const fn missing(mut self, message: &'static str, advice: &'static str) -> FeatureDef {
        self.when_missing = Some((message, advice));
        self
    }
}

const fn f(
    name: &'static str,
    description: &'static str,
    message: &'static str,
    advice: &'static str,
    trend: Option<Trend>,
    on_return: ReturnEffect,
) -> FeatureDef {
    FeatureDef {
        name,
        description,
        message,
        advice,
        trend,
        when_missing: None,
        on_return,
        honest_step: None,
        reads_category_norms: false,
    }
}

use ReturnEffect::{Falls, Mixed, Rises, Unmoved};
use Trend::{Decreasing as Down, Increasing as Up};

/// The buyer features, in the order of the feature table.
pub const FEATURES: &[FeatureDef] = &[
    f(
        "account_age_days",
        "days since the account was registered (or its first order)",
        "your account is still new",
        "keep shopping: your rating grows with your history",
        Some(Down),
        Unmoved,
    ),
    f(
        "orders_90",
        "orders placed in the last 90 days, cancelled ones excluded",
        "few recent orders to judge from",
        "recent completed orders build up your history",
        Some(Down),
        Unmoved,
    ),
    f(
        "orders_365",
        "orders placed in the last 365 days, cancelled ones excluded",
        "little buying history in the past year",
        "orders you keep build up your history",
        Some(Down),
        Unmoved,
    ),
    f(
        "spend_365",
        "amount spent on orders in the last 365 days",
        "little buying history in the past year",
        "orders you keep build up your history",
        Some(Down),
        Unmoved,
    ),
    f(
        "returns_90",
        "returns asked in the last 90 days (merchant-fault returns excluded)",
        "many returns in the last 90 days",
        "keeping more of what you order raises your rating; the number of your returns alone never costs you instant release",
        Some(Up),
        Unmoved,
    )
    .volume(Some(1.0)),
    f(
        "returns_365",
        "returns asked in the last 365 days (merchant-fault returns excluded)",
        "many returns in the past year",
        "keeping more of what you order raises your rating; the number of your returns alone never costs you instant release",
        Some(Up),
        Unmoved,
    )
    .volume(Some(1.0)),
    f(
        "relative_return_rate_365",
        "returns in the last 365 days relative to what is normal for the categories bought (1 = normal)",
        "you return more than is usual for what you buy",
        "keeping more of what you order raises your rating",
        Some(Up),
        Unmoved,
    )
    .volume(Some(1.0))
    .reads_norms()
    .missing(
        "no orders in the past year to compare your returns with",
        "orders you keep build up your history",
    ),
    f(
        "return_value_share_365",
        "value returned / value bought, last 365 days",
        "a large share of what you spend comes back as returns",
        "keeping more of what you order raises your rating",
        Some(Up),
        Unmoved,
    )
    .volume(None)
    .missing(
        "no spending in the past year to compare your returns with",
        "orders you keep build up your history",
    ),
    f(
        "no_reason_share_365",
        "share of returns in the last 365 days asked without a reason",
        "most of your returns give no reason",
        "telling the merchant what was wrong helps",
        None,
        Mixed,
    )
    .missing(
        "no returns in the past year to judge from",
        "orders you keep build up your history",
    ),
    f(
        "advanced_365",
        "returns whose refund the platform advanced, last 365 days",
        "many refunds advanced to you",
        "the number of your returns alone never costs you instant release",
        None,
        Unmoved,
    )
    .volume(Some(1.0)),
    f(
        "mismatch_365",
        "returns that arrived empty, worn or with other goods, last 365 days",
        "returned parcels arrived empty, used or with other goods",
        "send back exactly what you received, unused",
        Some(Up),
        Rises,
    ),
    f(
        "not_shipped_365",
        "returns never shipped after the refund was advanced, last 365 days",
        "refunds were advanced for parcels never sent",
        "ship every return you have been refunded for",
        Some(Up),
        Rises,
    ),
    f(
        "bad_outcomes_90",
        "mismatched or never-shipped returns in the last 90 days",
        "a return went wrong in the last 90 days",
        "a clean record over the next months raises your rating",
        Some(Up),
        Rises,
    ),
    f(
        "advanced_loss_share_365",
        "share of settled advanced refunds that ended in a loss, last 365 days",
        "advanced refunds ended in losses",
        "send back exactly what you received, on time",
        Some(Up),
        Mixed,
    )
    .missing(
        "no settled advanced refunds in the past year to judge from",
        "orders you keep build up your history",
    ),
    f(
        "non_receipt_claims_365",
        "returns claiming the goods never arrived, last 365 days",
        "you often report parcels as not received",
        "check with the courier and neighbours before reporting a parcel lost",
        Some(Up),
        Rises,
    ),
    f(
        "disputes_opened_365",
        "disputes opened on the buyer's orders, last 365 days",
        "many disputes on your orders",
        "settling problems with the merchant directly helps",
        Some(Up),
        Unmoved,
    ),
    f(
        "disputes_lost_365",
        "disputes the platform decided against the buyer, last 365 days",
        "disputes were decided against you",
        "open disputes only with clear evidence",
        Some(Up),
        Unmoved,
    ),
    f(
        "fraud_flags_365",
        "lost disputes the platform flagged as fraud, last 365 days",
        "a dispute found dishonest behaviour",
        "a clean record over the next months raises your rating",
        Some(Up),
        Unmoved,
    ),
    f(
        "days_to_ship_mean_365",
        "mean days from return request to shipping, last 365 days",
        "you take long to ship your returns",
        "once you have asked for a return, ship it within a day or two",
        Some(Up),
        Mixed,
    )
    .missing(
        "no returns shipped in the past year to judge your shipping from",
        "orders you keep build up your history",
    ),
    f(
        "days_since_last_bad",
        "days since the last mismatched or never-shipped return or fraud-flagged dispute (missing = never)",
        "a recent return or dispute went wrong",
        "every month without problems raises your rating",
        Some(Down),
        Falls,
    )
    .missing(
        "your record is still short",
        "every month without problems raises your rating",
    ),
    f(
        "days_to_request_mean_365",
        "mean days from delivery to the return request, last 365 days",
        "you often ask to return goods late in the return window",
        "decide on a return soon after the goods arrive",
        Some(Up),
        Mixed,
    )
    .missing(
        "no returns in the past year to judge from",
        "orders you keep build up your history",
    ),
    f(
        "late_return_share_365",
        "share of no-reason returns asked 5 or more days after delivery, last 365 days",
        "you often return goods at the very end of the return window",
        "decide on a return soon after the goods arrive",
        Some(Up),
        Mixed,
    )
    .missing(
        "no returns without a reason in the past year to judge from",
        "orders you keep build up your history",
    ),
    f(
        "bad_outcomes_ever",
        "mismatched or never-shipped returns and fraud-flagged lost disputes, whole history",
        "returns or disputes went wrong in the past",
        "a long clean record outweighs old problems",
        Some(Up),
        Rises,
    ),
    f(
        "intact_share_365",
        "share of settled returns that came back intact, last 365 days",
        "not every returned parcel came back intact",
        "send back exactly what you received, unused",
        Some(Down),
        Mixed,
    )
    .missing(
        "no settled returns in the past year to show they come back intact",
        "orders you keep build up your history",
    ),
    f(
        "late_no_reason_365",
        "no-reason returns asked 5 or more days after delivery, last 365 days",
        "you often return goods at the very end of the return window",
        "decide on a return soon after the goods arrive",
        Some(Up),
        Rises,
    ),
    f(
        "slow_ship_365",
        "returns shipped 3 or more days after they were asked, last 365 days",
        "some of your returns were shipped late",
        "once you have asked for a return, ship it within a day or two",
        Some(Up),
        Rises,
    ),
    f(
        "new_account_spend",
        "amount spent in the last 365 days by an account younger than 180 days (0 for older accounts)",
        "a new account that spends a lot in a short time",
        "your rating rises as your account ages",
        Some(Up),
        Unmoved,
    ),
    f(
        "late_return_rate_365",
        "no-reason returns asked 5 or more days after delivery per order (orders + 1), last 365 days",
        "for the orders you place, you often return goods at the very end of the return window",
        "decide on a return soon after the goods arrive",
        Some(Up),
        Rises,
    ),
    f(
        "slow_ship_rate_365",
        "returns shipped 3 or more days after they were asked per order (orders + 1), last 365 days",
        "for the orders you place, many returns were shipped late",
        "once you have asked for a return, ship it within a day or two",
        Some(Up),
        Rises,
    ),
];

/// Feature names in table order.
pub fn feature_names() -> Vec<&'static str> {
    FEATURES.iter().map(|f| f.name).collect()
}

fn t_lit(t: i64) -> Expr {
    lit(t)
}

/// `ts` falls in `[T − days, T)`.
fn within(ts: &str, t: i64, days: i64) -> Expr {
    col(ts)
        .gt_eq(t_lit(t - days * DAY))
        .and(col(ts).lt(t_lit(t)))
}

fn count_if(cond: Expr) -> Expr {
    cond.cast(DataType::Float64).sum()
}

// ---- orders (placed before T, not cancelled; with the category's normal rate) ----

pub fn orders_90(t: i64) -> Expr {
    count_if(within(ORDERED_AT, t, 90)).alias("orders_90")
}
pub fn orders_365(t: i64) -> Expr {
    count_if(within(ORDERED_AT, t, 365)).alias("orders_365")
}
fn spend_cents_365(t: i64) -> Expr {
    col(CENTS)
        .filter(within(ORDERED_AT, t, 365))
        .sum()
        .alias(SPEND_CENTS)
}
fn expected_returns_365(t: i64) -> Expr {
    col(NORM)
        .filter(within(ORDERED_AT, t, 365))
        .sum()
        .alias(EXPECTED)
}
fn first_order_at() -> Expr {
    col(ORDERED_AT).min().alias(FIRST_ORDER)
}

// ---- returns (asked before T; merchant-fault ones dropped; outcome as known at T) ----

/// A category's normal return rate in billionths: `floor(returns · 10⁹ / orders)`, an
/// integer, so that summing it over a buyer's orders is exact in any engine.
const NORM: &str = "__norm_e9";
/// The scale of [`NORM`].
pub const NORM_SCALE: i64 = 1_000_000_000;
/// An amount in cents (an integer: sums of money are exact).
const CENTS: &str = "__cents";
const SPEND_CENTS: &str = "__spend_cents_365";
const EXPECTED: &str = "__expected_returns_365";
const FIRST_ORDER: &str = "__first_order_at";
const KNOWN: &str = "__outcome_known";
const RETURN_VALUE: &str = "__return_cents_365";
const NO_REASON: &str = "__no_reason_365";
const LOSSES: &str = "__advanced_losses_365";
const SETTLED: &str = "__advanced_settled_365";
const SHIP_DAYS: &str = "__ship_micros_365";
const SHIPPED: &str = "__shipped_365";
const LAST_BAD_RETURN: &str = "__last_bad_return";
const LAST_BAD_DISPUTE: &str = "__last_bad_dispute";
const BAD_RETURNS_EVER: &str = "__bad_returns_ever";
const BAD_DISPUTES_EVER: &str = "__bad_disputes_ever";
const REQUEST_DAYS: &str = "__request_micros_365";
const REQUESTED_AFTER_DELIVERY: &str = "__requested_after_delivery_365";
const INTACT: &str = "__intact_365";
const LATE_NO_REASON: &str = "late_no_reason_365";
const SLOW_SHIP: &str = "slow_ship_365";
/// A return shipped this long after it was asked is slow (an honest one ships within two days).
pub const SLOW_SHIP_DAYS: i64 = 3;
/// A no-reason return asked this long after delivery is late in the window.
pub const LATE_REQUEST_DAYS: i64 = 5;
const RETURNS_SETTLED: &str = "__returns_settled_365";

fn cents() -> Expr {
    (col(AMOUNT) * lit(100.0))
        .round(0, RoundMode::HalfAwayFromZero)
        .cast(DataType::Int64)
        .alias(CENTS)
}

fn known_is(v: &str) -> Expr {
    col(KNOWN).eq(lit(v))
}
fn bad_outcome() -> Expr {
    known_is("received_mismatch").or(known_is("not_shipped"))
}

pub fn returns_90(t: i64) -> Expr {
    count_if(within(REQUESTED_AT, t, 90)).alias("returns_90")
}
pub fn returns_365(t: i64) -> Expr {
    count_if(within(REQUESTED_AT, t, 365)).alias("returns_365")
}
fn return_value_365(t: i64) -> Expr {
    col(CENTS)
        .filter(within(REQUESTED_AT, t, 365))
        .sum()
        .alias(RETURN_VALUE)
}
fn no_reason_365(t: i64) -> Expr {
    count_if(within(REQUESTED_AT, t, 365).and(col(REASON).eq(lit("no_reason")))).alias(NO_REASON)
}
pub fn advanced_365(t: i64) -> Expr {
    count_if(within(REQUESTED_AT, t, 365).and(col(ADVANCED))).alias("advanced_365")
}
pub fn mismatch_365(t: i64) -> Expr {
    count_if(within(OUTCOME_AT, t, 365).and(known_is("received_mismatch"))).alias("mismatch_365")
}
pub fn not_shipped_365(t: i64) -> Expr {
    count_if(within(OUTCOME_AT, t, 365).and(known_is("not_shipped"))).alias("not_shipped_365")
}
pub fn bad_outcomes_90(t: i64) -> Expr {
    count_if(within(OUTCOME_AT, t, 90).and(bad_outcome())).alias("bad_outcomes_90")
}
fn advanced_losses_365(t: i64) -> Expr {
    count_if(
        within(OUTCOME_AT, t, 365)
            .and(col(ADVANCED))
            .and(bad_outcome()),
    )
    .alias(LOSSES)
}
fn advanced_settled_365(t: i64) -> Expr {
    count_if(
        within(OUTCOME_AT, t, 365)
            .and(col(ADVANCED))
            .and(known_is("pending").not()),
    )
    .alias(SETTLED)
}
pub fn non_receipt_claims_365(t: i64) -> Expr {
    count_if(within(REQUESTED_AT, t, 365).and(col(REASON).eq(lit("not_received"))))
        .alias("non_receipt_claims_365")
}
fn shipped_in_window(t: i64) -> Expr {
    within(REQUESTED_AT, t, 365).and(col(SHIPPED_AT).lt(t_lit(t)))
}
fn ship_micros_365(t: i64) -> Expr {
    (col(SHIPPED_AT) - col(REQUESTED_AT))
        .filter(shipped_in_window(t))
        .sum()
        .alias(SHIP_DAYS)
}
fn shipped_365(t: i64) -> Expr {
    count_if(shipped_in_window(t)).alias(SHIPPED)
}
fn after_delivery(t: i64) -> Expr {
    within(REQUESTED_AT, t, 365).and(col(DELIVERED_AT).lt_eq(col(REQUESTED_AT)))
}
fn request_micros_365(t: i64) -> Expr {
    (col(REQUESTED_AT) - col(DELIVERED_AT))
        .filter(after_delivery(t))
        .sum()
        .alias(REQUEST_DAYS)
}
fn requested_after_delivery_365(t: i64) -> Expr {
    count_if(after_delivery(t)).alias(REQUESTED_AFTER_DELIVERY)
}
fn late_no_reason_365(t: i64) -> Expr {
    count_if(
        after_delivery(t)
            .and(col(REASON).eq(lit("no_reason")))
            .and((col(REQUESTED_AT) - col(DELIVERED_AT)).gt_eq(lit(LATE_REQUEST_DAYS * DAY))),
    )
    .alias(LATE_NO_REASON)
}
fn slow_ship_365(t: i64) -> Expr {
    count_if(
        shipped_in_window(t)
            .and((col(SHIPPED_AT) - col(REQUESTED_AT)).gt_eq(lit(SLOW_SHIP_DAYS * DAY))),
    )
    .alias(SLOW_SHIP)
}
fn intact_365(t: i64) -> Expr {
    count_if(within(OUTCOME_AT, t, 365).and(known_is("received_ok"))).alias(INTACT)
}
fn returns_settled_365(t: i64) -> Expr {
    count_if(within(OUTCOME_AT, t, 365).and(known_is("received_ok").or(bad_outcome())))
        .alias(RETURNS_SETTLED)
}
fn bad_returns_ever() -> Expr {
    count_if(bad_outcome()).alias(BAD_RETURNS_EVER)
}
fn last_bad_return() -> Expr {
    col(OUTCOME_AT)
        .filter(bad_outcome())
        .max()
        .alias(LAST_BAD_RETURN)
}

// ---- disputes (opened before T; decisions as known at T) ----

fn lost_known(t: i64) -> Expr {
    col(DECISION)
        .eq(lit("merchant_won"))
        .and(col(DECIDED_AT).lt(t_lit(t)))
}
/// A case a reviewer decided for the buyer, exported as a dispute (`export-cases`: ids
/// from [`CASE_DISPUTE_ID_BASE`]): a correction in the buyer's favour, which no feature
/// counts (docs/promises.md).
fn case_won_by_buyer() -> Expr {
    col(DISPUTE_ID)
        .gt_eq(lit(CASE_DISPUTE_ID_BASE))
        .and(col(DECISION).eq(lit("buyer_won")).fill_null(lit(false)))
}
pub fn disputes_opened_365(t: i64) -> Expr {
    count_if(within(OPENED_AT, t, 365).and(case_won_by_buyer().not())).alias("disputes_opened_365")
}
pub fn disputes_lost_365(t: i64) -> Expr {
    count_if(within(DECIDED_AT, t, 365).and(lost_known(t))).alias("disputes_lost_365")
}
pub fn fraud_flags_365(t: i64) -> Expr {
    count_if(
        within(DECIDED_AT, t, 365)
            .and(lost_known(t))
            .and(col(FRAUD_FLAG)),
    )
    .alias("fraud_flags_365")
}
fn bad_disputes_ever(t: i64) -> Expr {
    count_if(lost_known(t).and(col(FRAUD_FLAG))).alias(BAD_DISPUTES_EVER)
}
fn last_bad_dispute(t: i64) -> Expr {
    col(DECIDED_AT)
        .filter(lost_known(t).and(col(FRAUD_FLAG)))
        .max()
        .alias(LAST_BAD_DISPUTE)
}

// ---- derived, on the joined per-buyer table ----

/// The amount spent in the last 365 days, from its exact sum in cents.
pub fn spend_365() -> Expr {
    (col(SPEND_CENTS) / lit(100.0)).alias("spend_365")
}

/// A mean in days of durations summed exactly in µs: `Σµs / (n · DAY)`, one division.
fn mean_days(micros: &str, n: &str) -> Expr {
    when(col(n).gt(lit(0.0)))
        .then(col(micros) / (col(n) * lit(DAY as f64)))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

fn ratio(num: &str, den: &str) -> Expr {
    when(col(den).gt(lit(0.0)))
        .then(col(num) / col(den))
        .otherwise(lit(NULL).cast(DataType::Float64))
}

pub fn account_age_days(t: i64) -> Expr {
    ((t_lit(t) - coalesce(&[col(REGISTERED_AT), col(FIRST_ORDER)])).cast(DataType::Float64)
        / lit(DAY as f64))
    .fill_null(lit(0.0))
    .alias("account_age_days")
}
pub fn relative_return_rate_365() -> Expr {
    let scale = NORM_SCALE as f64;
    (((col("returns_365") + lit(1.0)) * lit(scale)) / (col(EXPECTED) + lit(scale)))
        .alias("relative_return_rate_365")
}
pub fn return_value_share_365() -> Expr {
    ratio(RETURN_VALUE, SPEND_CENTS).alias("return_value_share_365")
}
pub fn no_reason_share_365() -> Expr {
    ratio(NO_REASON, "returns_365").alias("no_reason_share_365")
}
pub fn advanced_loss_share_365() -> Expr {
    ratio(LOSSES, SETTLED).alias("advanced_loss_share_365")
}
pub fn days_to_ship_mean_365() -> Expr {
    mean_days(SHIP_DAYS, SHIPPED).alias("days_to_ship_mean_365")
}
pub fn late_return_share_365() -> Expr {
    ratio(LATE_NO_REASON, NO_REASON).alias("late_return_share_365")
}
pub fn bad_outcomes_ever() -> Expr {
    (col(BAD_RETURNS_EVER) + col(BAD_DISPUTES_EVER)).alias("bad_outcomes_ever")
}
pub fn days_to_request_mean_365() -> Expr {
    mean_days(REQUEST_DAYS, REQUESTED_AFTER_DELIVERY).alias("days_to_request_mean_365")
}
/// Accounts younger than this many days are new.
pub const NEW_ACCOUNT_DAYS: i64 = 180;

/// `spend_365` for an account younger than [`NEW_ACCOUNT_DAYS`] (or of unknown age), else 0.
pub fn new_account_spend(t: i64) -> Expr {
    let age = t_lit(t) - coalesce(&[col(REGISTERED_AT), col(FIRST_ORDER)]);
    when(
        age.clone()
            .lt(lit(NEW_ACCOUNT_DAYS * DAY))
            .or(age.is_null()),
    )
    .then(col(SPEND_CENTS) / lit(100.0))
    .otherwise(lit(0.0))
    .alias("new_account_spend")
}

/// A count of returns per order of the last 365 days, `count / (orders + 1)`: one
/// division of two exact integers. The orders do not move when a return is added, so
/// neither does the rate fall.
fn per_order(count: &str, name: &str) -> Expr {
    (col(count) / (col("orders_365") + lit(1.0))).alias(name)
}
pub fn intact_share_365() -> Expr {
    ratio(INTACT, RETURNS_SETTLED).alias("intact_share_365")
}
pub fn days_since_last_bad(t: i64) -> Expr {
    ((t_lit(t)
        - polars::lazy::dsl::max_horizontal([col(LAST_BAD_RETURN), col(LAST_BAD_DISPUTE)])
            .unwrap_or(lit(NULL)))
    .cast(DataType::Float64)
        / lit(DAY as f64))
    .alias("days_since_last_bad")
}

/// Each category's orders and returns over the 365 days before T (`category`,
/// `__n_orders`, `__n_returns`): a global statistic. Counts of parts of a history add up
/// to the counts of the whole, so a history rated in parts sums its parts' counts
/// ([`add_category_counts`]) and derives the norms once ([`category_norms`]).
pub fn category_counts(h: &History, t: i64) -> LazyFrame {
    let per_cat_orders = h
        .orders
        .clone()
        .lazy()
        .filter(within(ORDERED_AT, t, 365).and(col(STATUS).neq(lit("cancelled"))))
        .group_by([col(CATEGORY)])
        .agg([len().cast(DataType::Int64).alias(N_ORDERS)]);
    let per_cat_returns = returns_known(h, t)
        .filter(within(REQUESTED_AT, t, 365))
        .join(
            h.orders
                .clone()
                .lazy()
                .select([col(ORDER_ID), col(CATEGORY)]),
            [col(ORDER_ID)],
            [col(ORDER_ID)],
            JoinArgs::new(JoinType::Inner),
        )
        .group_by([col(CATEGORY)])
        .agg([len().cast(DataType::Int64).alias(N_RETURNS)]);
    // A full join: a part may hold a category's returns and another part its orders.
    per_cat_orders.join(
        per_cat_returns,
        [col(CATEGORY)],
        [col(CATEGORY)],
        JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
    )
}

const N_ORDERS: &str = "__n_orders";
const N_RETURNS: &str = "__n_returns";

/// The sum of two parts' [`category_counts`].
pub fn add_category_counts(a: LazyFrame, b: LazyFrame) -> PolarsResult<LazyFrame> {
    Ok(concat([a, b], UnionArgs::default())?
        .group_by([col(CATEGORY)])
        .agg([
            col(N_ORDERS).fill_null(lit(0i64)).sum(),
            col(N_RETURNS).fill_null(lit(0i64)).sum(),
        ]))
}

/// The category norms frozen in a model, as [`category_norms`] gives them.
pub fn frozen_norms(norms: &std::collections::BTreeMap<String, i64>) -> PolarsResult<DataFrame> {
    DataFrame::new(
        norms.len(),
        vec![
            Column::new(CATEGORY.into(), norms.keys().cloned().collect::<Vec<_>>()),
            Column::new(NORM.into(), norms.values().copied().collect::<Vec<_>>()),
        ],
    )
}

/// [`category_norms`] as a map, to freeze in a model.
pub fn norms_map(norms: &DataFrame) -> PolarsResult<std::collections::BTreeMap<String, i64>> {
    let c = norms.column(CATEGORY)?.cast(&DataType::String)?;
    let v = norms.column(NORM)?.cast(&DataType::Int64)?;
    Ok(c.str()?
        .iter()
        .zip(v.i64()?.iter())
        .filter_map(|(c, v)| Some((c?.to_string(), v?)))
        .collect())
}

/// Each category's normal return rate from its counts, in integer billionths.
pub fn category_norms(counts: LazyFrame) -> LazyFrame {
    counts.filter(col(N_ORDERS).gt(lit(0i64))).select([
        col(CATEGORY),
        (col(N_RETURNS).fill_null(lit(0i64)) * lit(NORM_SCALE))
            .floor_div(col(N_ORDERS))
            .alias(NORM),
    ])
}

/// Returns asked before T, with the outcome as known at T, merchant-fault ones dropped.
fn returns_known(h: &History, t: i64) -> LazyFrame {
    h.returns
        .clone()
        .lazy()
        .filter(col(REQUESTED_AT).lt(t_lit(t)))
        .with_column(
            when(col(OUTCOME_AT).lt(t_lit(t)))
                .then(col(OUTCOME))
                .otherwise(lit("pending"))
                .alias(KNOWN),
        )
        .filter(known_is("merchant_fault").not())
        .with_column(cents())
        .join(
            h.orders
                .clone()
                .lazy()
                .select([col(ORDER_ID), col(DELIVERED_AT)]),
            [col(ORDER_ID)],
            [col(ORDER_ID)],
            JoinArgs::new(JoinType::Left),
        )
}

/// Buyers known at T: registered before T, or with an order before T. The two tables'
/// buyer ids that cannot be put together are an error, not an empty population.
fn population(h: &History, t: i64) -> PolarsResult<LazyFrame> {
    let from_orders = h
        .orders
        .clone()
        .lazy()
        .filter(col(ORDERED_AT).lt(t_lit(t)))
        .select([col(BUYER_ID)]);
    let all = match &h.buyers {
        Some(b) => {
            let reg = b
                .clone()
                .lazy()
                .filter(col(REGISTERED_AT).lt(t_lit(t)))
                .select([col(BUYER_ID)]);
            concat([reg, from_orders], UnionArgs::default()).map_err(|e| {
                e.context("the buyers known at T: the buyers' and the orders' buyer ids".into())
            })?
        }
        None => from_orders,
    };
    Ok(all.unique(None, UniqueKeepStrategy::Any))
}

fn join_left(a: LazyFrame, b: LazyFrame) -> LazyFrame {
    a.join(
        b,
        [col(BUYER_ID)],
        [col(BUYER_ID)],
        JoinArgs::new(JoinType::Left),
    )
}

/// The features of every buyer known at `t` (µs since the epoch): `buyer_id` then
/// [`FEATURES`] as `f64` (null = missing), sorted by `buyer_id`.
pub fn features_as_of(h: &History, t: i64) -> PolarsResult<LazyFrame> {
    features_with_norms(h, t, category_norms(category_counts(h, t)))
}

/// [`features_as_of`] with the category norms given: those of the whole history when
/// `h` is one part of it.
pub fn features_with_norms(h: &History, t: i64, norms: LazyFrame) -> PolarsResult<LazyFrame> {
    let orders = h
        .orders
        .clone()
        .lazy()
        .filter(
            col(ORDERED_AT)
                .lt(t_lit(t))
                .and(col(STATUS).neq(lit("cancelled"))),
        )
        .join(
            norms,
            [col(CATEGORY)],
            [col(CATEGORY)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([col(NORM).fill_null(lit(0i64)), cents()])
        .group_by([col(BUYER_ID)])
        .agg([
            orders_90(t),
            orders_365(t),
            spend_cents_365(t),
            expected_returns_365(t),
            first_order_at(),
        ]);
    let returns = returns_known(h, t).group_by([col(BUYER_ID)]).agg([
        returns_90(t),
        returns_365(t),
        return_value_365(t),
        no_reason_365(t),
        advanced_365(t),
        mismatch_365(t),
        not_shipped_365(t),
        bad_outcomes_90(t),
        advanced_losses_365(t),
        advanced_settled_365(t),
        non_receipt_claims_365(t),
        ship_micros_365(t),
        shipped_365(t),
        request_micros_365(t),
        requested_after_delivery_365(t),
        intact_365(t),
        late_no_reason_365(t),
        slow_ship_365(t),
        returns_settled_365(t),
        bad_returns_ever(),
        last_bad_return(),
    ]);
    let disputes = h
        .disputes
        .clone()
        .lazy()
        .filter(col(OPENED_AT).lt(t_lit(t)))
        .group_by([col(BUYER_ID)])
        .agg([
            disputes_opened_365(t),
            disputes_lost_365(t),
            fraud_flags_365(t),
            bad_disputes_ever(t),
            last_bad_dispute(t),
        ]);
    let mut base = join_left(
        join_left(join_left(population(h, t)?, orders), returns),
        disputes,
    );
    base = match &h.buyers {
        Some(b) => join_left(
            base,
            b.clone().lazy().select([col(BUYER_ID), col(REGISTERED_AT)]),
        ),
        None => base.with_column(lit(NULL).cast(DataType::Int64).alias(REGISTERED_AT)),
    };
    let counts = [
        "orders_90",
        "orders_365",
        SPEND_CENTS,
        EXPECTED,
        "returns_90",
        "returns_365",
        RETURN_VALUE,
        NO_REASON,
        "advanced_365",
        "mismatch_365",
        "not_shipped_365",
        "bad_outcomes_90",
        LOSSES,
        SETTLED,
        "non_receipt_claims_365",
        SHIP_DAYS,
        SHIPPED,
        REQUEST_DAYS,
        REQUESTED_AFTER_DELIVERY,
        INTACT,
        LATE_NO_REASON,
        SLOW_SHIP,
        RETURNS_SETTLED,
        BAD_RETURNS_EVER,
        BAD_DISPUTES_EVER,
        "disputes_opened_365",
        "disputes_lost_365",
        "fraud_flags_365",
    ];
    let filled: Vec<Expr> = counts
        .iter()
        .map(|c| col(*c).cast(DataType::Float64).fill_null(lit(0.0)))
        .collect();
    let derived = vec![
        account_age_days(t),
        spend_365(),
        relative_return_rate_365(),
        return_value_share_365(),
        no_reason_share_365(),
        advanced_loss_share_365(),
        days_to_ship_mean_365(),
        days_since_last_bad(t),
        days_to_request_mean_365(),
        late_return_share_365(),
        bad_outcomes_ever(),
        intact_share_365(),
        new_account_spend(t),
        per_order(LATE_NO_REASON, "late_return_rate_365"),
        per_order(SLOW_SHIP, "slow_ship_rate_365"),
    ];
    let mut select = vec![col(BUYER_ID)];
    select.extend(FEATURES.iter().map(|f| col(f.name).cast(DataType::Float64)));
    Ok(base
        .with_columns(filled)
        .with_columns(derived)
        .select(select)
        .sort([BUYER_ID], SortMultipleOptions::default()))
}

/// The label of every buyer as of `t`: 1.0 if bad in (T, T+90 days], else 0.0.
pub fn labels_as_of(h: &History, t: i64) -> LazyFrame {
    let end = t + 90 * DAY;
    let in_window = |c: &str| col(c).gt(t_lit(t)).and(col(c).lt_eq(t_lit(end)));
    let losses = h
        .returns
        .clone()
        .lazy()
        .filter(
            col(ADVANCED)
                .and(
                    col(OUTCOME)
                        .eq(lit("received_mismatch"))
                        .or(col(OUTCOME).eq(lit("not_shipped"))),
                )
                .and(in_window(OUTCOME_AT)),
        )
        .select([col(BUYER_ID)]);
    let frauds = h
        .disputes
        .clone()
        .lazy()
        .filter(
            col(DECISION)
                .eq(lit("merchant_won"))
                .and(col(FRAUD_FLAG))
                .and(in_window(DECIDED_AT)),
        )
        .select([col(BUYER_ID)]);
    concat([losses, frauds], UnionArgs::default())
        .unwrap_or_else(|_| h.orders.clone().lazy().select([col(BUYER_ID)]).limit(0))
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit(1.0).alias(LABEL))
}

/// Buyers who asked for at least one return in (T, T+90 days]: the **performance
/// population**. A buyer who returns nothing in the window has no outcome to learn
/// from (an inactive account is not "good", it is unobserved), and the rating only
/// matters when a return is asked for; so training and evaluation use these buyers,
/// as credit scorecards leave out accounts without performance.
pub fn active_as_of(h: &History, t: i64) -> LazyFrame {
    let end = t + 90 * DAY;
    h.returns
        .clone()
        .lazy()
        .filter(
            col(REQUESTED_AT)
                .gt(t_lit(t))
                .and(col(REQUESTED_AT).lt_eq(t_lit(end))),
        )
        .select([col(BUYER_ID)])
        .unique(None, UniqueKeepStrategy::Any)
        .with_column(lit(true).alias(ACTIVE))
}

/// Column of [`labelled_features_as_of`]: the buyer is in the performance population.
pub const ACTIVE: &str = "active_90d";

/// Features as of `t` with the label and the performance flag attached.
pub fn labelled_features_as_of(h: &History, t: i64) -> PolarsResult<DataFrame> {
    labelled_with_norms(h, t, category_norms(category_counts(h, t)))
}

/// [`labelled_features_as_of`] with the whole history's category norms.
pub fn labelled_with_norms(h: &History, t: i64, norms: LazyFrame) -> PolarsResult<DataFrame> {
    features_with_norms(h, t, norms)?
        .join(
            labels_as_of(h, t),
            [col(BUYER_ID)],
            [col(BUYER_ID)],
            JoinArgs::new(JoinType::Left),
        )
        .join(
            active_as_of(h, t),
            [col(BUYER_ID)],
            [col(BUYER_ID)],
            JoinArgs::new(JoinType::Left),
        )
        .with_columns([
            col(LABEL).fill_null(lit(0.0)),
            col(ACTIVE).fill_null(lit(false)),
        ])
        .sort([BUYER_ID], SortMultipleOptions::default())
        .collect()
}

/// The performance population of a labelled feature frame.
pub fn performance_rows(df: &DataFrame) -> PolarsResult<DataFrame> {
    df.clone()
        .lazy()
        .filter(col(ACTIVE))
        .drop(cols([ACTIVE]))
        .collect()
}

/// Microseconds since the epoch of midnight UTC starting `d`.
pub fn date_micros(d: chrono::NaiveDate) -> i64 {
    d.and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp_micros()
}

#[cfg(test)]
pub(crate) mod tests;
