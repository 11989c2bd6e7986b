//! A return request as the policy sees it, and the decision it gets.

use super::{BuyerId, Category, MerchantId, Money, OrderId, ReturnId, ReturnReason, Star};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A buyer's request to return an order's goods, already parsed and checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnRequest {
    /// The refund service's id for this return: the idempotency key.
    pub return_id: ReturnId,
    pub buyer_id: BuyerId,
    pub order_id: OrderId,
    pub merchant_id: MerchantId,
    pub category: Category,
    /// The amount to refund.
    pub amount: Money,
    pub reason: ReturnReason,
    /// When the buyer received the goods (UTC).
    pub delivered_at: DateTime<Utc>,
    /// When the buyer asked to return them (UTC).
    pub requested_at: DateTime<Utc>,
    /// The return parcel's tracking number, when already known.
    pub tracking_number: Option<String>,
}

impl ReturnRequest {
    /// The first field (by its API name) in which `other` is another request than this
    /// one; `None` for the same request. A `return_id` is the key of one request only,
    /// so a store refuses a second request under it that differs here. Times compare to
    /// the microsecond, as stored.
    pub fn first_difference(&self, other: &ReturnRequest) -> Option<&'static str> {
        let micros = |t: &DateTime<Utc>| t.timestamp_micros();
        [
            ("buyer_id", self.buyer_id != other.buyer_id),
            ("order_id", self.order_id != other.order_id),
            ("merchant_id", self.merchant_id != other.merchant_id),
            ("category", self.category != other.category),
            ("amount", self.amount != other.amount),
            ("reason", self.reason != other.reason),
            (
                "delivered_at",
                micros(&self.delivered_at) != micros(&other.delivered_at),
            ),
            (
                "requested_at",
                micros(&self.requested_at) != micros(&other.requested_at),
            ),
            (
                "tracking_number",
                self.tracking_number != other.tracking_number,
            ),
        ]
        .into_iter()
        .find_map(|(field, differs)| differs.then_some(field))
    }
}

/// Why a benefit was not given, or a fact the caller should know. Each has a stable
/// `code` for programs and a `message` in words for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum ReasonCode {
    /// The buyer's star is below the programme's minimum.
    StarBelowMinimum { star: u8, min: u8 },
    /// The snapshot does not know the buyer; the policy's default star was used.
    UnknownBuyer { default_star: u8 },
    /// Only 7-day no-reason returns are answered instantly.
    NotNoReasonReturn { reason: ReturnReason },
    /// Asked too long after delivery (days counted in the platform's time zone).
    OutsideReturnWindow { days: i64, window_days: u32 },
    /// Asked before the goods were delivered.
    NotDelivered,
    /// The category is not in the programme.
    CategoryNotInProgramme { category: String },
    /// The merchant is not in the programme.
    MerchantNotInProgramme { merchant_id: u64 },
    /// Goods excluded from no-reason returns (made to order, perishable, ...).
    ExcludedGoods { category: String },
    /// The order was already refunded through an earlier return.
    AlreadyRefunded,
    /// Pickups are dispatched only within the platform's pickup hours.
    OutsidePickupHours { next_window: DateTime<Utc> },
    /// An advance needs the return parcel's tracking number.
    NoTrackingNumber,
    /// The advance would take the buyer above the limit for their star.
    ExposureLimit {
        outstanding: Money,
        amount: Money,
        limit: Money,
    },
    /// The platform's advance budget for the day is used up.
    DailyBudgetExhausted,
    /// No instant release was granted for this return, so nothing is advanced.
    NotInstant,
    /// The parcel's tracking number already backs an advance for another return.
    TrackingNumberReused,
    /// An advance to this buyer ended in a loss (goods not as sent, or never shipped)
    /// since their star was rated: no instant release until the next rating.
    LossSinceRating,
    /// A refund without return is offered: the buyer's star and the item's price let
    /// them keep the goods (a fact, not a refusal).
    RefundWithoutReturn { amount: Money, max: Money, star: u8 },
    /// No refund without return below the policy's minimum star for it.
    RefundOnlyStarBelowMinimum { star: u8, min: u8 },
    /// No refund without return above the threshold of the category and reason.
    RefundOnlyAboveThreshold { amount: Money, max: Money },
    /// The buyer's refund-only total over the last 30 days would pass its cap.
    RefundOnlyBuyerCap {
        refunded: Money,
        amount: Money,
        cap: Money,
    },
    /// The platform's refund-only budget for the day is used up.
    RefundOnlyBudgetExhausted,
    /// Goods of this category are never refunded without return.
    RefundOnlyExcludedGoods { category: String },
    /// A loss since the rating holds refund-only as it holds instant release.
    RefundOnlyLossSinceRating,
    /// The parcel is already on its way (a tracking number was given).
    RefundOnlyParcelShipped,
    /// The merchant's own rules for its orders decided this (`rule`: the key of
    /// `[merchants.<id>]` that did).
    MerchantRule { merchant_id: u64, rule: String },
}

impl ReasonCode {
    /// The stable code, as serialised in `code`.
    pub fn code(&self) -> &'static str {
        match self {
            ReasonCode::StarBelowMinimum { .. } => "star_below_minimum",
            ReasonCode::UnknownBuyer { .. } => "unknown_buyer",
            ReasonCode::NotNoReasonReturn { .. } => "not_no_reason_return",
            ReasonCode::OutsideReturnWindow { .. } => "outside_return_window",
            ReasonCode::NotDelivered => "not_delivered",
            ReasonCode::CategoryNotInProgramme { .. } => "category_not_in_programme",
            ReasonCode::MerchantNotInProgramme { .. } => "merchant_not_in_programme",
            ReasonCode::ExcludedGoods { .. } => "excluded_goods",
            ReasonCode::AlreadyRefunded => "already_refunded",
            ReasonCode::OutsidePickupHours { .. } => "outside_pickup_hours",
            ReasonCode::NoTrackingNumber => "no_tracking_number",
            ReasonCode::ExposureLimit { .. } => "exposure_limit",
            ReasonCode::DailyBudgetExhausted => "daily_budget_exhausted",
            ReasonCode::NotInstant => "not_instant",
            ReasonCode::TrackingNumberReused => "tracking_number_reused",
            ReasonCode::LossSinceRating => "loss_since_rating",
            ReasonCode::RefundWithoutReturn { .. } => "refund_without_return",
            ReasonCode::RefundOnlyStarBelowMinimum { .. } => "refund_only_star_below_minimum",
            ReasonCode::RefundOnlyAboveThreshold { .. } => "refund_only_above_threshold",
            ReasonCode::RefundOnlyBuyerCap { .. } => "refund_only_buyer_cap",
            ReasonCode::RefundOnlyBudgetExhausted => "refund_only_budget_exhausted",
            ReasonCode::RefundOnlyExcludedGoods { .. } => "refund_only_excluded_goods",
            ReasonCode::RefundOnlyLossSinceRating => "refund_only_loss_since_rating",
            ReasonCode::RefundOnlyParcelShipped => "refund_only_parcel_shipped",
            ReasonCode::MerchantRule { .. } => "merchant_rule",
        }
    }

    /// What the code means, in words a buyer or an agent understands.
    pub fn message(&self) -> String {
        match self {
            ReasonCode::StarBelowMinimum { star, min } => format!(
                "your shopping rating is {star} stars; instant return needs {min} stars or more"
            ),
            ReasonCode::UnknownBuyer { default_star } => {
                format!("no rating yet for this buyer; treated as {default_star} stars")
            }
            ReasonCode::NotNoReasonReturn { reason } => format!(
                "only no-reason returns are answered instantly; this one is '{reason}' and goes to the merchant"
            ),
            ReasonCode::OutsideReturnWindow { days, window_days } => format!(
                "asked on day {days} after delivery; instant return is open for {window_days} days"
            ),
            ReasonCode::NotDelivered => "the goods are not delivered yet".to_string(),
            ReasonCode::CategoryNotInProgramme { category } => {
                format!("category '{category}' is not in the fast-return programme")
            }
            ReasonCode::MerchantNotInProgramme { merchant_id } => {
                format!("merchant {merchant_id} is not in the fast-return programme")
            }
            ReasonCode::ExcludedGoods { category } => {
                format!("'{category}' goods cannot be returned without a reason")
            }
            ReasonCode::AlreadyRefunded => "this order was already refunded".to_string(),
            ReasonCode::OutsidePickupHours { next_window } => format!(
                "couriers are booked in pickup hours only; the next window opens at {}",
                next_window.to_rfc3339()
            ),
            ReasonCode::NoTrackingNumber => {
                "the refund is advanced once the parcel's tracking number is entered".to_string()
            }
            ReasonCode::ExposureLimit {
                outstanding,
                amount,
                limit,
            } => format!(
                "advancing {amount} on top of {outstanding} still outstanding would pass the limit of {limit}"
            ),
            ReasonCode::DailyBudgetExhausted => {
                "the platform's advance budget for today is used up".to_string()
            }
            ReasonCode::NotInstant => {
                "this return did not get instant release, so no refund is advanced".to_string()
            }
            ReasonCode::TrackingNumberReused => {
                "this tracking number was already given for another return; one parcel backs one refund"
                    .to_string()
            }
            ReasonCode::LossSinceRating => {
                "a refund advanced to you recently was not covered by the parcel that came back; returns go to the merchant until your rating is next updated"
                    .to_string()
            }
            ReasonCode::RefundWithoutReturn { amount, max, star } => format!(
                "no need to send this item back: with your {star}-star rating, an item of {amount} (at most {max}) is refunded without a return"
            ),
            ReasonCode::RefundOnlyStarBelowMinimum { star, min } => format!(
                "a refund without sending the item back needs {min} stars or more; your rating is {star} stars"
            ),
            ReasonCode::RefundOnlyAboveThreshold { amount, max } => format!(
                "an item of {amount} must be sent back; refunds without return are for items of at most {max}"
            ),
            ReasonCode::RefundOnlyBuyerCap {
                refunded,
                amount,
                cap,
            } => format!(
                "refunding {amount} without return on top of {refunded} in the last 30 days would pass the limit of {cap}"
            ),
            ReasonCode::RefundOnlyBudgetExhausted => {
                "the platform's budget for refunds without return is used up for today".to_string()
            }
            ReasonCode::RefundOnlyExcludedGoods { category } => {
                format!("'{category}' goods are never refunded without being sent back")
            }
            ReasonCode::RefundOnlyLossSinceRating => {
                "a recent refund was not covered by the parcel that came back; items must be sent back until your rating is next updated"
                    .to_string()
            }
            ReasonCode::RefundOnlyParcelShipped => {
                "the parcel is already on its way back, so the refund follows it".to_string()
            }
            ReasonCode::MerchantRule { merchant_id, rule } => format!(
                "merchant {merchant_id}'s own rules for its orders decided this ({})",
                match rule.as_str() {
                    "instant_release" => "no instant return address",
                    "advances" => "no refund advanced before the goods are back",
                    "advance_limit" => "a lower limit on refunds advanced",
                    "refund_without_return" => "no refund without return",
                    "refund_without_return_max" => "a lower price for refunds without return",
                    "excluded_categories" => "this category is excluded",
                    other => other,
                }
            ),
        }
    }
}

/// What the policy decided for a return request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The return address is given at once, without waiting for the merchant.
    pub instant_address_release: bool,
    /// A courier pickup is dispatched now.
    pub courier_pickup: bool,
    /// When a pickup can be booked: the request time if within pickup hours, else the
    /// start of the next window. `None` without instant release.
    pub pickup_from: Option<DateTime<Utc>>,
    /// The platform advances the refund now.
    pub advanced_refund: bool,
    /// An offer of a refund without return (仅退款), beside the other answers and
    /// changing none of them; taken with the keep call.
    #[serde(default)]
    pub refund_without_return: bool,
    /// The star the decision used (the policy's default for an unknown buyer).
    pub star: Star,
    /// Whether the buyer was found in the ratings snapshot.
    pub rated: bool,
    /// Every condition that failed, and facts worth knowing.
    pub reasons: Vec<ReasonCode>,
    /// Without instant release: the merchant must answer by this time.
    pub merchant_answer_by: Option<DateTime<Utc>>,
}
