//! Request and response bodies of the JSON API, with their OpenAPI schemas, and the
//! conversion of raw requests into domain types with errors that name the field.

use super::error::ApiError;
use super::error::ErrorCode;
use chrono::{DateTime, Utc};
use fastrefund_core::domain::{
    BuyerId, Category, Decision, MerchantId, Money, OrderId, Outcome, ReasonCode, ReturnId,
    ReturnReason, ReturnRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `returns.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = ReturnReason)]
pub enum ReasonDto {
    NoReason,
    Quality,
    NotAsDescribed,
    WrongItem,
    NotReceived,
    Other,
}

impl From<ReasonDto> for ReturnReason {
    fn from(r: ReasonDto) -> ReturnReason {
        match r {
            ReasonDto::NoReason => ReturnReason::NoReason,
            ReasonDto::Quality => ReturnReason::Quality,
            ReasonDto::NotAsDescribed => ReturnReason::NotAsDescribed,
            ReasonDto::WrongItem => ReturnReason::WrongItem,
            ReasonDto::NotReceived => ReturnReason::NotReceived,
            ReasonDto::Other => ReturnReason::Other,
        }
    }
}

/// The outcome of an advanced return, as a merchant or carrier reports it (every
/// `returns.outcome` value but `pending`, which settles nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = Outcome)]
pub enum OutcomeDto {
    ReceivedOk,
    ReceivedMismatch,
    NotShipped,
    MerchantFault,
}

impl From<OutcomeDto> for Outcome {
    fn from(o: OutcomeDto) -> Outcome {
        match o {
            OutcomeDto::ReceivedOk => Outcome::ReceivedOk,
            OutcomeDto::ReceivedMismatch => Outcome::ReceivedMismatch,
            OutcomeDto::NotShipped => Outcome::NotShipped,
            OutcomeDto::MerchantFault => Outcome::MerchantFault,
        }
    }
}

/// Largest id the API takes: ids are stored as SQL `INTEGER` (signed 64-bit), so the
/// API takes 0 to 2^63 − 1, which its OpenAPI document states as `int64` ≥ 0.
pub const MAX_ID: u64 = i64::MAX as u64;

/// Checks an id field.
pub fn check_id(field: &'static str, v: u64) -> Result<u64, ApiError> {
    if v > MAX_ID {
        return Err(ApiError::field(
            field,
            ErrorCode::InvalidId,
            format!("`{field}` must be at most {MAX_ID}"),
        ));
    }
    Ok(v)
}

/// An id: a JSON integer, written as one. A number with a fraction or an exponent
/// (`5.0`, `5e0`, `9007199254740993.0`) is refused even when its value is whole: it was
/// read as a binary float, so past 2^53 it is not the id the client meant (…993.0 reads
/// as …992), and an id recorded as another is a worse answer than a 422.
pub(crate) fn de_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = u64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a non-negative integer id")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v)
                .map_err(|_| E::custom(format!("{v} is negative; ids are non-negative")))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<u64, E> {
            Err(E::custom(format!(
                "an id is an integer from 0 to {MAX_ID} written without a fraction or an \
                 exponent, got the number {v}"
            )))
        }
    }
    d.deserialize_any(V)
}

/// An optional id ([`de_id`] when present; `null` or absent is `None`).
pub(crate) fn de_opt_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Id(#[serde(deserialize_with = "de_id")] u64);
    Ok(Option::<Id>::deserialize(d)?.map(|Id(v)| v))
}

/// A return request from a refund service.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EligibilityRequest {
    /// The refund service's id of this return; asking again with the same id returns
    /// the first decision.
    #[schema(minimum = 0, example = 1001)]
    #[serde(deserialize_with = "de_id")]
    pub return_id: u64,
    #[schema(minimum = 0, example = 100042)]
    #[serde(deserialize_with = "de_id")]
    pub buyer_id: u64,
    #[schema(minimum = 0, example = 5550001)]
    #[serde(deserialize_with = "de_id")]
    pub order_id: u64,
    #[schema(minimum = 0, example = 17)]
    #[serde(deserialize_with = "de_id")]
    pub merchant_id: u64,
    /// Category code, e.g. `womens_wear`.
    #[schema(example = "womens_wear", pattern = "^[a-z0-9_]{1,64}$")]
    pub category: String,
    /// Amount to refund, a decimal string with at most 2 places.
    #[schema(
        example = "199.00",
        pattern = "^(?:[1-9][0-9]{0,11}(?:\\.[0-9]{1,2})?|0\\.(?:0[1-9]|[1-9][0-9]?))$"
    )]
    pub amount: String,
    pub reason: ReasonDto,
    /// When the goods were delivered (RFC 3339).
    #[schema(format = DateTime, example = "2026-06-30T02:00:00Z")]
    pub delivered_at: String,
    /// When the buyer asked to return them (RFC 3339).
    #[schema(format = DateTime, example = "2026-07-02T02:00:00Z")]
    pub requested_at: String,
    /// The return parcel's tracking number, if already known.
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub tracking_number: Option<String>,
}

/// Years a request's time may fall in: anything else is a client's mistake, and a
/// year past 9999 could not even be answered in RFC 3339.
pub const PLAUSIBLE_YEARS: std::ops::RangeInclusive<i32> = 2000..=2999;

fn parse_time(field: &'static str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    use chrono::Datelike;
    let t = DateTime::parse_from_rfc3339(v)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::field(
                field,
                ErrorCode::InvalidTimestamp,
                format!("`{field}` must be an RFC 3339 timestamp such as 2026-06-30T02:00:00Z, got {v:?}"),
            )
        })?;
    if !PLAUSIBLE_YEARS.contains(&t.year()) {
        return Err(ApiError::field(
            field,
            ErrorCode::ImplausibleTimestamp,
            format!(
                "`{field}` is in the year {}; only {} to {} are accepted",
                t.year(),
                PLAUSIBLE_YEARS.start(),
                PLAUSIBLE_YEARS.end()
            ),
        ));
    }
    Ok(t)
}

/// How far a client's clock may run ahead of ours, by default (the `clock_skew_ms`
/// setting).
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Refuses a time in the future beyond `skew` of `now`, naming `field`. A time the
/// loss hold compares with the rating date must be one that has happened: a future
/// outcome `at` would hold a buyer back for ever.
pub fn check_not_future(
    field: &'static str,
    t: DateTime<Utc>,
    now: DateTime<Utc>,
    skew: chrono::TimeDelta,
) -> Result<(), ApiError> {
    if t > now + skew {
        return Err(ApiError::field(
            field,
            ErrorCode::ImplausibleTimestamp,
            format!(
                "`{field}` {} is in the future (now {}; clocks may differ by {} s at most)",
                t.to_rfc3339(),
                now.to_rfc3339(),
                skew.num_seconds()
            ),
        ));
    }
    Ok(())
}

/// Refuses a request whose times cannot be true: asked in the future (beyond
/// `skew`), or delivered after it was asked to be returned.
pub fn check_times(
    r: &ReturnRequest,
    now: DateTime<Utc>,
    skew: chrono::TimeDelta,
) -> Result<(), ApiError> {
    check_not_future("requested_at", r.requested_at, now, skew)?;
    if r.delivered_at > r.requested_at {
        return Err(ApiError::field(
            "delivered_at",
            ErrorCode::ImplausibleTimestamp,
            "`delivered_at` is after `requested_at`: goods are returned after they arrive",
        ));
    }
    Ok(())
}

/// A tracking number: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn parse_tracking(field: &'static str, v: &str) -> Result<String, ApiError> {
    let ok = (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(ApiError::field(
            field,
            ErrorCode::InvalidTrackingNumber,
            format!("`{field}` must be 1 to 64 of A-Z, a-z, 0-9, '.', '_' and '-'"),
        ));
    }
    Ok(v.to_string())
}

/// Parses a money amount, naming the field.
pub fn parse_amount(field: &'static str, v: &str) -> Result<Money, ApiError> {
    Money::parse_refund(v)
        .map_err(|e| ApiError::field(field, ErrorCode::InvalidAmount, format!("`{field}`: {e}")))
}

impl TryFrom<EligibilityRequest> for ReturnRequest {
    type Error = ApiError;
    fn try_from(r: EligibilityRequest) -> Result<ReturnRequest, ApiError> {
        Ok(ReturnRequest {
            return_id: ReturnId(check_id("return_id", r.return_id)?),
            buyer_id: BuyerId(check_id("buyer_id", r.buyer_id)?),
            order_id: OrderId(check_id("order_id", r.order_id)?),
            merchant_id: MerchantId(check_id("merchant_id", r.merchant_id)?),
            category: Category::parse(&r.category).map_err(|e| {
                ApiError::field(
                    "category",
                    ErrorCode::InvalidValue,
                    format!("`category`: {e}"),
                )
            })?,
            amount: parse_amount("amount", &r.amount)?,
            reason: r.reason.into(),
            delivered_at: parse_time("delivered_at", &r.delivered_at)?,
            requested_at: parse_time("requested_at", &r.requested_at)?,
            tracking_number: r
                .tracking_number
                .as_deref()
                .map(|t| parse_tracking("tracking_number", t))
                .transpose()?,
        })
    }
}

/// A reason code with its message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[schema(as = Reason)]
pub struct ReasonDtoOut {
    /// Stable code, e.g. `star_below_minimum`.
    pub code: String,
    /// In words.
    pub message: String,
}

impl From<&ReasonCode> for ReasonDtoOut {
    fn from(r: &ReasonCode) -> ReasonDtoOut {
        ReasonDtoOut {
            code: r.code().to_string(),
            message: r.message(),
        }
    }
}

/// The decision on a return request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EligibilityResponse {
    pub return_id: u64,
    /// Unique id of this decision (the same on a repeated request).
    pub decision_id: u64,
    /// The return address is released at once.
    pub instant_address_release: bool,
    /// A courier pickup is dispatched now.
    pub courier_pickup: bool,
    /// When a pickup can be booked (RFC 3339), with instant release.
    #[schema(format = DateTime)]
    pub pickup_from: Option<String>,
    /// The platform advances the refund now (a tracking number was given and the
    /// limits allow it).
    pub advanced_refund: bool,
    /// An offer of a refund without return (仅退款): the buyer may keep the goods and
    /// the refund service takes it with `POST /v1/returns/{return_id}/keep`. It changes
    /// none of the three answers above: a buyer who prefers to send the parcel back
    /// still can.
    pub refund_without_return: bool,
    /// With the offer: words for the buyer saying that no return is needed and why, in
    /// the language `Accept-Language` asks for (`en` or `zh-CN`).
    pub refund_without_return_words: Option<String>,
    /// The buyer's star used for the decision, 1–5.
    #[schema(minimum = 1, maximum = 5)]
    pub star: u8,
    /// Whether the ratings snapshot knows the buyer.
    pub rated: bool,
    /// Every condition that failed, and facts worth knowing.
    pub reasons: Vec<ReasonDtoOut>,
    /// Without instant release: the merchant answers by this time (RFC 3339).
    #[schema(format = DateTime)]
    pub merchant_answer_by: Option<String>,
    pub policy_version: String,
    pub model_version: String,
}

impl EligibilityResponse {
    pub fn new(
        return_id: u64,
        decision_id: u64,
        d: &Decision,
        policy_version: &str,
        model_version: &str,
        lang: crate::words::Lang,
    ) -> Self {
        EligibilityResponse {
            return_id,
            decision_id,
            instant_address_release: d.instant_address_release,
            courier_pickup: d.courier_pickup,
            pickup_from: d.pickup_from.map(|t| t.to_rfc3339()),
            advanced_refund: d.advanced_refund,
            refund_without_return: d.refund_without_return,
            refund_without_return_words: d
                .refund_without_return
                .then(|| crate::words::refund_only_words(&d.reasons, lang))
                .flatten(),
            star: d.star.get(),
            rated: d.rated,
            reasons: d.reasons.iter().map(ReasonDtoOut::from).collect(),
            merchant_answer_by: d.merchant_answer_by.map(|t| t.to_rfc3339()),
            policy_version: policy_version.to_string(),
            model_version: model_version.to_string(),
        }
    }
}

/// A tracking number for a decided return.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackingRequest {
    #[schema(
        example = "SF1234567890",
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9._-]{1,64}$"
    )]
    pub tracking_number: String,
    /// When the parcel was handed to the courier (RFC 3339); default: now. Not in the
    /// future beyond the server's clock skew (5 minutes by default).
    #[schema(format = DateTime, example = "2026-07-02T05:00:00Z")]
    pub shipped_at: Option<String>,
}

impl TrackingRequest {
    /// The tracking number and the shipping time (default `now`; not in the future
    /// beyond `skew`).
    pub fn parse(
        &self,
        now: DateTime<Utc>,
        skew: chrono::TimeDelta,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let t = parse_tracking("tracking_number", &self.tracking_number)?;
        let at = match &self.shipped_at {
            Some(s) => parse_time("shipped_at", s)?,
            None => now,
        };
        check_not_future("shipped_at", at, now, skew)?;
        Ok((t, at))
    }
}

/// Whether the refund was advanced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TrackingResponse {
    pub return_id: u64,
    /// The platform advanced the refund (now, or on an earlier identical call).
    pub advanced: bool,
    /// The amount of the return, a decimal string.
    #[schema(example = "199.00")]
    pub amount: String,
    /// Why not, when not advanced.
    pub reasons: Vec<ReasonDtoOut>,
}

/// The body of a keep call: none, or an empty object.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepRequest {}

impl KeepRequest {
    /// Checks a keep call's body: empty, or `{}`.
    pub fn parse(body: &[u8]) -> Result<(), ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match serde_json::from_slice::<KeepRequest>(body) {
            Ok(_) => Ok(()),
            Err(e) if e.is_data() => Err(ApiError::field(
                "body",
                ErrorCode::InvalidField,
                format!("a keep call takes no fields: {e}"),
            )),
            Err(e) => Err(ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("the body is not JSON: {e}"),
            )),
        }
    }
}

/// A refund without return, taken.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct KeepResponse {
    pub return_id: u64,
    /// The amount refunded, a decimal string.
    #[schema(example = "19.90")]
    pub refunded: String,
    /// Always `refunded_without_return`: the return is settled, the goods stay with
    /// the buyer.
    #[schema(example = "refunded_without_return")]
    pub outcome: String,
}

/// The outcome of an advanced return.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRequest {
    pub outcome: OutcomeDto,
    /// When it happened (RFC 3339); not in the future beyond the server's clock skew
    /// (5 minutes by default).
    #[schema(format = DateTime, example = "2026-07-05T02:00:00Z")]
    pub at: String,
}

impl OutcomeRequest {
    /// The outcome and when it happened (not in the future beyond `skew`).
    pub fn parse(
        &self,
        now: DateTime<Utc>,
        skew: chrono::TimeDelta,
    ) -> Result<(Outcome, DateTime<Utc>), ApiError> {
        let at = parse_time("at", &self.at)?;
        check_not_future("at", at, now, skew)?;
        Ok((self.outcome.into(), at))
    }
}

/// The settlement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OutcomeResponse {
    pub return_id: u64,
    pub outcome: OutcomeDto,
    /// The advance settled, a decimal string.
    pub amount: String,
    /// The advance was lost (the outcome counts against the buyer).
    pub loss: bool,
    /// The buyer's advances still outstanding after this, a decimal string.
    pub outstanding: String,
}

/// A buyer's exposure.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ExposureResponse {
    pub buyer_id: u64,
    #[schema(minimum = 1, maximum = 5)]
    pub star: u8,
    /// Advanced and not yet settled, a decimal string.
    #[schema(example = "199.00")]
    pub outstanding: String,
    /// Most that may be outstanding for the buyer's star, a decimal string.
    #[schema(example = "3000.00")]
    pub limit: String,
    /// `limit - outstanding`, never below zero.
    pub available: String,
    /// Advances not yet settled.
    pub open_advances: u32,
}

/// What a star gives.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ReasonExplained {
    pub code: String,
    /// What lowers the rating.
    pub message: String,
    /// What would raise it.
    pub advice: String,
}

/// The next star up and what it takes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct NextStar {
    #[schema(minimum = 2, maximum = 5)]
    pub star: u8,
    /// Points still needed.
    pub points_needed: i32,
    /// What would raise the rating, most effective first.
    pub how: Vec<String>,
}

/// A buyer's rating, as of the snapshot.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RatingResponse {
    pub buyer_id: u64,
    #[schema(minimum = 1, maximum = 5)]
    pub star: u8,
    pub score: i32,
    /// The scores of this star: `[min, max]` (open ends are null).
    pub score_band: [Option<i32>; 2],
    /// What this star gives.
    pub benefits: Vec<String>,
    /// What costs the buyer the most points, worst first (up to four).
    pub reasons: Vec<ReasonExplained>,
    /// The language of the words (`en` or `zh-CN`), chosen by `Accept-Language`.
    pub language: String,
    /// What the rating does with returns: only what the model guarantees.
    pub about_returns: String,
    /// Null at 5★.
    pub next_star: Option<NextStar>,
    /// The snapshot's date (YYYY-MM-DD).
    #[schema(format = Date)]
    pub as_of: String,
    pub model_version: String,
    /// The cases a reviewer decided in the buyer's favour that struck a reason from
    /// this star (the star and reasons above are the corrected ones); empty when the
    /// snapshot's rating stands as rated.
    #[serde(default)]
    pub corrected_by_cases: Vec<u64>,
}

/// A signed link a buyer-facing front end can hand to a logged-in buyer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct BuyerLink {
    /// Path and query of the buyer's page, valid until `expires_at`.
    pub url: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Reload request (admin): new snapshot and/or policy paths; omitted = reload the
/// current ones from disk.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReloadRequest {
    pub snapshot: Option<String>,
    pub policy: Option<String>,
}

/// What is serving after a reload.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ServingInfo {
    pub model_version: String,
    #[schema(format = Date)]
    pub as_of: String,
    pub buyers: u64,
    pub policy_version: String,
    /// Where the snapshot came from (`embedded` for the built-in sample).
    pub snapshot_source: String,
}
