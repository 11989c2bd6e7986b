//! Refund without return (仅退款): the fourth answer of [`super::decide`], an offer beside
//! the other three that changes none of them. A buyer of at least
//! `refund_without_return.min_star` with no loss since their rating, asking to return
//! an item that costs at most the threshold of its category and reason, in a category
//! not excluded (by the statute, the programme or the merchant), whose parcel is not
//! already on its way, is offered their money back without sending the goods, as long
//! as their refund-only total over the last 30 days and the platform's for the day stay
//! within their caps. Each rule that refuses it adds its own reason; a merchant's rule
//! that decided anything adds `merchant_rule`.

use super::{LedgerView, Policy};
use crate::domain::{ReasonCode, ReturnRequest, Star};

/// Whether `req` of a buyer of `star` is offered a refund without return; pushes a
/// reason for every rule that refused it, or the offer's own reason when made.
pub fn offer(
    req: &ReturnRequest,
    star: Star,
    ledger: &LedgerView,
    policy: &Policy,
    reasons: &mut Vec<ReasonCode>,
) -> bool {
    let rules = &policy.refund_only;
    if !rules.enabled {
        return false;
    }
    let merchant_id = req.merchant_id.0;
    let merchant = policy.merchant(merchant_id);
    let mut refused: Vec<ReasonCode> = Vec::new();
    let by_merchant = |rule: &str, refused: &mut Vec<ReasonCode>| {
        let r = ReasonCode::MerchantRule {
            merchant_id,
            rule: rule.to_string(),
        };
        if !refused.contains(&r) {
            refused.push(r);
        }
    };
    if star < rules.min_star {
        refused.push(ReasonCode::RefundOnlyStarBelowMinimum {
            star: star.get(),
            min: rules.min_star.get(),
        });
    }
    if ledger.loss_since_rating && policy.hold_after_loss {
        refused.push(ReasonCode::RefundOnlyLossSinceRating);
    }
    if merchant.is_some_and(|m| !m.refund_without_return) {
        by_merchant("refund_without_return", &mut refused);
    }
    let category = req.category.as_str();
    let platform_excluded = policy.excluded_categories.contains(category)
        || rules.excluded_categories.contains(category);
    let merchant_excluded = merchant.is_some_and(|m| m.excluded_categories.contains(category));
    if platform_excluded || merchant_excluded {
        refused.push(ReasonCode::RefundOnlyExcludedGoods {
            category: category.to_string(),
        });
        if !platform_excluded {
            by_merchant("excluded_categories", &mut refused);
        }
    }
    let platform_max = rules.max_for(category, req.reason);
    let (max, merchant_max) = match merchant.and_then(|m| m.refund_without_return_max) {
        Some(m) if m < platform_max => (m, true),
        _ => (platform_max, false),
    };
    if req.amount > max {
        refused.push(ReasonCode::RefundOnlyAboveThreshold {
            amount: req.amount,
            max,
        });
        if merchant_max && req.amount <= platform_max {
            by_merchant("refund_without_return_max", &mut refused);
        }
    }
    // The caps speak only for an item the table would refund: a dear item is refused
    // by its price, not by a cap it would pass on its own.
    if req.amount <= max {
        refused.extend(cap_refusals(req.amount, ledger, policy));
    }
    if req.tracking_number.is_some() {
        refused.push(ReasonCode::RefundOnlyParcelShipped);
    }
    // An order refunded already is refused whether or not instant release said so
    // first (its reason is given once).
    if ledger.order_already_refunded {
        refused.push(ReasonCode::AlreadyRefunded);
    }
    if refused.is_empty() {
        reasons.push(ReasonCode::RefundWithoutReturn {
            amount: req.amount,
            max,
            star: star.get(),
        });
        true
    } else {
        // One `merchant_rule` per rule and one `already_refunded`, however many
        // answers they decided.
        for r in refused {
            let shared = matches!(
                r,
                ReasonCode::MerchantRule { .. } | ReasonCode::AlreadyRefunded
            );
            if !(shared && reasons.contains(&r)) {
                reasons.push(r);
            }
        }
        false
    }
}

/// Why the caps no longer allow keeping an offered refund of `amount` (checked again
/// when the refund service takes the offer): empty when they do.
pub fn cap_refusals(
    amount: crate::domain::Money,
    ledger: &LedgerView,
    policy: &Policy,
) -> Vec<ReasonCode> {
    let rules = &policy.refund_only;
    let mut out = Vec::new();
    if ledger.refund_only_30_days + amount > rules.per_buyer_30_days {
        out.push(ReasonCode::RefundOnlyBuyerCap {
            refunded: ledger.refund_only_30_days,
            amount,
            cap: rules.per_buyer_30_days,
        });
    }
    if ledger.refund_only_today + amount > rules.daily_budget {
        out.push(ReasonCode::RefundOnlyBudgetExhausted);
    }
    out
}
