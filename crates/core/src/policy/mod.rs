//! The eligibility rules of the fast-return programme (spec §5):
//! [`decide`]`(request, rating, ledger view, policy, now) -> Decision`.
//!
//! Pure: no I/O, no clock (the caller passes `now`), no allocation beyond the reasons
//! list. The service calls it on every request and simulations call it on history.
//!
//! - **Instant address release** iff star ≥ `min_star`, reason `no_reason`, asked within
//!   `window_days` calendar days of delivery (days counted in the platform's time zone:
//!   delivered on the 1st, day 7 is the 8th), category and merchant in the programme,
//!   goods not of an excluded kind, delivered, and the order not already refunded.
//! - **Courier pickup** iff instant release and the request falls in
//!   `[pickup.start_hour, pickup.end_hour)` local time; otherwise `pickup_from` says
//!   when the next window opens.
//! - **Advanced refund** iff instant release, a tracking number, the buyer's
//!   outstanding advances plus this amount within the limit for their star, the
//!   platform's advances today plus this amount within the daily budget, and (with
//!   `advance.refuse_reused_tracking`, the default) a tracking number that backs no
//!   other return's advance: one parcel backs one refund.
//! - **Feedback before the next rating** (`instant.hold_after_loss`, default on): a
//!   buyer an advance to whom was settled as a loss since their star was rated gets no
//!   instant release (so no advance) until the next rating has seen it. A fraud burst
//!   on a new account then costs one advance, not a day of them.
//! - **Refund without return** (仅退款, [`refund_only`]): an offer beside the three
//!   answers, changing none of them, for a buyer of at least its minimum star with no
//!   loss since the rating, an item at most the threshold of its category and reason,
//!   not excluded, its parcel not on its way, within the buyer's 30-day cap and the
//!   day's refund-only budget. A merchant's rules (`[merchants.<id>]`) narrow every
//!   answer, and say so (`merchant_rule`).
//! - Otherwise the merchant answers (within `merchant_answer_hours`), and the decision
//!   carries a reason code for every condition that failed.
//!
//! The count of past returns is never a rule: only the rating is.

mod config;
pub mod refund_only;

pub use config::{DEFAULT_POLICY_TOML, MerchantRules, Policy, PolicyError, PolicyFile, RefundOnly};

use crate::domain::{Decision, MerchantId, Money, ReasonCode, ReturnReason, ReturnRequest, Star};
use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};

/// What the ledger knows that a decision depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerView {
    /// The buyer's advanced and not yet settled amount.
    pub outstanding: Money,
    /// What the platform has advanced today (platform time zone), all buyers.
    pub advanced_today: Money,
    /// An earlier return of the same order was already refunded.
    pub order_already_refunded: bool,
    /// The tracking number given already backs an advance for another return.
    pub tracking_number_reused: bool,
    /// An advance to this buyer was settled as a loss after their star was rated (the
    /// rating has not seen it yet).
    pub loss_since_rating: bool,
    /// What the buyer was refunded without return over the 30 days before now.
    pub refund_only_30_days: Money,
    /// What the platform refunded without return today (platform time zone), all
    /// buyers.
    pub refund_only_today: Money,
}

/// Decides a return request. `rating` is the buyer's star from the snapshot, `None`
/// when the snapshot does not know the buyer (the policy's default star is used).
pub fn decide(
    req: &ReturnRequest,
    rating: Option<Star>,
    ledger: &LedgerView,
    policy: &Policy,
    _now: DateTime<Utc>,
) -> Decision {
    let mut reasons = Vec::new();
    let star = match rating {
        Some(s) => s,
        None => {
            reasons.push(ReasonCode::UnknownBuyer {
                default_star: policy.unknown_buyer_star.get(),
            });
            policy.unknown_buyer_star
        }
    };
    let instant = instant_release_failures(req, star, ledger, policy, &mut reasons);

    let (courier_pickup, pickup_from) = if instant {
        match next_pickup(req.requested_at, policy) {
            None => (true, Some(req.requested_at)),
            Some(next_window) => {
                reasons.push(ReasonCode::OutsidePickupHours { next_window });
                (false, Some(next_window))
            }
        }
    } else {
        (false, None)
    };

    let advanced_refund = instant
        && match &req.tracking_number {
            None => {
                reasons.push(ReasonCode::NoTrackingNumber);
                false
            }
            Some(_) => {
                let refusals =
                    merchant_advance_refusals(req.merchant_id, star, req.amount, ledger, policy);
                let ok = refusals.is_empty();
                reasons.extend(refusals);
                if ok {
                    reasons.extend(advance_flags(ledger, policy));
                }
                ok
            }
        };

    let refund_without_return = refund_only::offer(req, star, ledger, policy, &mut reasons);

    Decision {
        instant_address_release: instant,
        courier_pickup,
        pickup_from,
        advanced_refund,
        refund_without_return,
        star,
        rated: rating.is_some(),
        reasons,
        merchant_answer_by: (!instant)
            .then(|| req.requested_at + Duration::hours(i64::from(policy.merchant_answer_hours))),
    }
}

/// Checks every instant-release condition, pushing a reason for each that fails;
/// true when none failed.
fn instant_release_failures(
    req: &ReturnRequest,
    star: Star,
    ledger: &LedgerView,
    policy: &Policy,
    reasons: &mut Vec<ReasonCode>,
) -> bool {
    let before = reasons.len();
    if star < policy.min_star {
        reasons.push(ReasonCode::StarBelowMinimum {
            star: star.get(),
            min: policy.min_star.get(),
        });
    }
    if req.reason != ReturnReason::NoReason {
        reasons.push(ReasonCode::NotNoReasonReturn { reason: req.reason });
    }
    if req.requested_at < req.delivered_at {
        reasons.push(ReasonCode::NotDelivered);
    } else {
        let days = local_days_between(req.delivered_at, req.requested_at, policy);
        if days > i64::from(policy.window_days) {
            reasons.push(ReasonCode::OutsideReturnWindow {
                days,
                window_days: policy.window_days,
            });
        }
    }
    let category = req.category.as_str();
    if policy.excluded_categories.contains(category) {
        reasons.push(ReasonCode::ExcludedGoods {
            category: category.to_string(),
        });
    } else if !policy
        .categories
        .as_ref()
        .is_none_or(|c| c.contains(category))
    {
        reasons.push(ReasonCode::CategoryNotInProgramme {
            category: category.to_string(),
        });
    }
    if !policy
        .merchants
        .as_ref()
        .is_none_or(|m| m.contains(&req.merchant_id.0))
    {
        reasons.push(ReasonCode::MerchantNotInProgramme {
            merchant_id: req.merchant_id.0,
        });
    }
    if let Some(m) = policy.merchant(req.merchant_id.0) {
        let by_merchant = |rule: &str| ReasonCode::MerchantRule {
            merchant_id: req.merchant_id.0,
            rule: rule.to_string(),
        };
        if !m.instant_release {
            reasons.push(by_merchant("instant_release"));
        }
        if m.excluded_categories.contains(category)
            && !policy.excluded_categories.contains(category)
        {
            reasons.push(ReasonCode::ExcludedGoods {
                category: category.to_string(),
            });
            reasons.push(by_merchant("excluded_categories"));
        }
    }
    if ledger.order_already_refunded {
        reasons.push(ReasonCode::AlreadyRefunded);
    }
    if ledger.loss_since_rating && policy.hold_after_loss {
        reasons.push(ReasonCode::LossSinceRating);
    }
    reasons.len() == before
}

/// Why an advance of `amount` to a buyer of `star` is refused by the platform's rules;
/// empty when it is allowed.
pub fn advance_refusals(
    star: Star,
    amount: Money,
    ledger: &LedgerView,
    policy: &Policy,
) -> Vec<ReasonCode> {
    refusals(None, star, amount, ledger, policy)
}

/// Why an advance of `amount` to a buyer of `star` on an order of `merchant` is
/// refused, by the platform's rules and the merchant's own (`merchant_rule` says when
/// the merchant's decided it); empty when it is allowed.
pub fn merchant_advance_refusals(
    merchant: MerchantId,
    star: Star,
    amount: Money,
    ledger: &LedgerView,
    policy: &Policy,
) -> Vec<ReasonCode> {
    refusals(Some(merchant), star, amount, ledger, policy)
}

fn refusals(
    merchant: Option<MerchantId>,
    star: Star,
    amount: Money,
    ledger: &LedgerView,
    policy: &Policy,
) -> Vec<ReasonCode> {
    let mut out = Vec::new();
    let rules = merchant.and_then(|m| policy.merchant(m.0).map(|r| (m.0, r)));
    let by_merchant = |rule: &str| {
        rules.map(|(merchant_id, _)| ReasonCode::MerchantRule {
            merchant_id,
            rule: rule.to_string(),
        })
    };
    if rules.is_some_and(|(_, r)| !r.advances) {
        out.extend(by_merchant("advances"));
    }
    let (limit, merchant_limit) = match merchant {
        Some(m) => policy.limit_for_merchant(star, m.0),
        None => (policy.limit_for(star), false),
    };
    if ledger.outstanding + amount > limit {
        out.push(ReasonCode::ExposureLimit {
            outstanding: ledger.outstanding,
            amount,
            limit,
        });
        if merchant_limit && ledger.outstanding + amount <= policy.limit_for(star) {
            out.extend(by_merchant("advance_limit"));
        }
    }
    if ledger.advanced_today + amount > policy.daily_budget {
        out.push(ReasonCode::DailyBudgetExhausted);
    }
    if ledger.tracking_number_reused && policy.refuse_reused_tracking {
        out.push(ReasonCode::TrackingNumberReused);
    }
    out
}

/// Facts worth flagging on an advance that the policy lets through: a reused tracking
/// number when the policy does not refuse it.
pub fn advance_flags(ledger: &LedgerView, policy: &Policy) -> Vec<ReasonCode> {
    if ledger.tracking_number_reused && !policy.refuse_reused_tracking {
        vec![ReasonCode::TrackingNumberReused]
    } else {
        vec![]
    }
}

/// Calendar days from `from` to `to`, both taken as dates in the platform's time zone.
pub fn local_days_between(from: DateTime<Utc>, to: DateTime<Utc>, policy: &Policy) -> i64 {
    let a = from.with_timezone(&policy.time_zone).date_naive();
    let b = to.with_timezone(&policy.time_zone).date_naive();
    (b - a).num_days()
}

/// `None` if `at` is inside pickup hours, else when the next pickup window opens.
pub fn next_pickup(at: DateTime<Utc>, policy: &Policy) -> Option<DateTime<Utc>> {
    let local = at.with_timezone(&policy.time_zone);
    let hour = local.hour();
    if (policy.pickup_start_hour..policy.pickup_end_hour).contains(&hour) {
        return None;
    }
    let day = if hour < policy.pickup_start_hour {
        local.date_naive()
    } else {
        local.date_naive().succ_opt().unwrap_or(local.date_naive())
    };
    let start = NaiveTime::from_hms_opt(policy.pickup_start_hour, 0, 0).unwrap_or(NaiveTime::MIN);
    let naive = day.and_time(start);
    // A start hour inside a DST gap has no local time; take the first instant after it.
    let utc = policy
        .time_zone
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| naive.and_utc() + Duration::hours(1));
    Some(utc)
}

/// The platform-local calendar date of an instant (for the daily advance budget).
pub fn local_date(at: DateTime<Utc>, policy: &Policy) -> chrono::NaiveDate {
    at.with_timezone(&policy.time_zone).date_naive()
}

#[cfg(test)]
mod tests;
