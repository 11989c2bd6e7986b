//! Handlers of the refund-service API (`/v1/...`).

use super::dto::*;
use super::error::ErrorCode;
use super::error::{ApiError, ErrorBody};
use super::extract::{ApiCaller, ApiJson, IdPath};
use super::words::{self, Lang};
use super::{AppState, Serving};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use fastrefund_core::domain::{BuyerId, Money, ReturnId, ReturnRequest, Star};
use fastrefund_core::policy::Policy;
use fastrefund_store::StarLookup;
use std::sync::Arc;

fn ready(state: &AppState) -> Result<Arc<Serving>, ApiError> {
    state.serving().ok_or_else(ApiError::not_ready)
}

/// Decide a return request: instant address release, courier pickup, advanced refund.
#[utoipa::path(
    post, path = "/v1/eligibility", tag = "refund services",
    request_body = EligibilityRequest,
    responses(
        (status = 200, description = "The decision (the recorded one if this return_id was decided before)", body = EligibilityResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time (`body_timeout`)", body = ErrorBody),
        (status = 409, description = "This return_id was decided for another request (`return_id_reused`, naming the field that differs)", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing, mistyped, out of range or implausible", body = ErrorBody),
        (status = 503, description = "Not ready, the ledger cannot record now, too many requests in flight or the request took too long (with Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn eligibility(
    _: ApiCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EligibilityRequest>,
) -> Result<Response, ApiError> {
    let lang = Lang::of(&headers);
    let answer = |r: EligibilityResponse| with_language(Json(r).into_response(), lang);
    let req = ReturnRequest::try_from(body)?;
    let now = Utc::now();
    check_times(&req, now, state.clock_skew())?;
    let serving = match ready(&state) {
        Ok(serving) => serving,
        // No snapshot to decide a new request by; a retry of a recorded one still gets
        // its recorded answer (the ledger has it), and decides nothing.
        Err(not_ready) => {
            let return_id = req.return_id.0;
            return match state.ledger().replay_decision(req).await? {
                Some(d) => Ok(answer(EligibilityResponse::new(
                    return_id,
                    d.decision_id,
                    &d.decision,
                    &d.policy_version,
                    &d.model_version,
                    lang,
                ))),
                None => Err(not_ready),
            };
        }
    };
    let rating = state.served(&serving, req.buyer_id).map(|s| s.rating);
    let star = rating.map(|r| r.star);
    // Shadow mode: the snapshot carries a challenger's stars.
    let shadow = serving
        .ratings
        .manifest
        .challenger_version
        .as_ref()
        .map(|_| rating.and_then(|r| r.challenger_star));
    let return_id = req.return_id.0;
    let d = state
        .ledger()
        .decide(
            req,
            star,
            serving.ratings.rated_as_of(),
            shadow,
            state.policy(),
            serving.ratings.manifest.model_version.clone(),
            now,
        )
        .await?;
    if let Some(agrees) = d.shadow_agrees {
        metrics::counter!("fastrefund_shadow_decisions_total", "agree" => bool_label(agrees))
            .increment(1);
    }
    if !d.repeated {
        decisions_counter(
            d.decision.instant_address_release,
            d.decision.courier_pickup,
            d.decision.advanced_refund,
        )
        .increment(1);
    }
    if !d.repeated && d.decision.refund_without_return {
        metrics::counter!("fastrefund_refund_without_return_offers_total").increment(1);
    }
    Ok(answer(EligibilityResponse::new(
        return_id,
        d.decision_id,
        &d.decision,
        &d.policy_version,
        &d.model_version,
        lang,
    )))
}

fn bool_label(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The decision counter for one outcome, made once (no label hashing per request).
fn decisions_counter(instant: bool, pickup: bool, advanced: bool) -> &'static metrics::Counter {
    static COUNTERS: [std::sync::OnceLock<metrics::Counter>; 8] =
        [const { std::sync::OnceLock::new() }; 8];
    let i = usize::from(instant) * 4 + usize::from(pickup) * 2 + usize::from(advanced);
    COUNTERS[i].get_or_init(|| {
        metrics::counter!(
            "fastrefund_decisions_total",
            "instant" => bool_label(instant),
            "pickup" => bool_label(pickup),
            "advanced" => bool_label(advanced)
        )
    })
}

/// The return parcel's tracking number is in: advance the refund if the limits allow.
#[utoipa::path(
    post, path = "/v1/returns/{return_id}/tracking", tag = "refund services",
    params(("return_id" = u64, Path, description = "The return, as decided by /v1/eligibility")),
    request_body = TrackingRequest,
    responses(
        (status = 200, description = "Advanced or not, with reasons; a repeat answers the same and advances nothing twice", body = TrackingResponse),
        (status = 400, description = "Malformed JSON or return id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "The return was never decided", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time (`body_timeout`)", body = ErrorBody),
        (status = 409, description = "The return was advanced on another tracking number (`tracking_number_conflict`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
        (status = 503, description = "Not ready, the ledger cannot record now, too many requests in flight or the request took too long (with Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn tracking(
    _: ApiCaller,
    State(state): State<AppState>,
    IdPath(return_id): IdPath,
    ApiJson(body): ApiJson<TrackingRequest>,
) -> Result<Json<TrackingResponse>, ApiError> {
    let now = Utc::now();
    let (tracking, shipped_at) = body.parse(now, state.clock_skew())?;
    let serving = match ready(&state) {
        Ok(serving) => serving,
        // A retry of a recorded advance gets its recorded answer; nothing new is
        // advanced without a rating.
        Err(not_ready) => {
            return match state
                .ledger()
                .replay_tracking(ReturnId(return_id), tracking)
                .await?
            {
                Some(t) => Ok(Json(TrackingResponse {
                    return_id,
                    advanced: t.advanced,
                    amount: t.amount.to_string(),
                    reasons: t.reasons.iter().map(ReasonDtoOut::from).collect(),
                })),
                None => Err(not_ready),
            };
        }
    };
    let stars: Arc<dyn StarLookup> = Arc::new(crate::strikes::ServedStars {
        ratings: serving.ratings.clone(),
        strikes: state.strikes().clone(),
    });
    let t = state
        .ledger()
        .track(
            ReturnId(return_id),
            tracking,
            shipped_at,
            Some(stars),
            state.policy(),
            now,
        )
        .await?;
    if !t.repeated && t.advanced {
        metrics::counter!("fastrefund_advances_total").increment(1);
    }
    Ok(Json(TrackingResponse {
        return_id,
        advanced: t.advanced,
        amount: t.amount.to_string(),
        reasons: t.reasons.iter().map(ReasonDtoOut::from).collect(),
    }))
}

/// Takes the refund-without-return offer of a decided return (spec §11): the buyer keeps
/// the goods and is refunded now. The ledger settles the return with the outcome
/// `refunded_without_return`, checking the buyer's 30-day cap and the day's refund-only
/// budget again and charging both in the same command.
#[utoipa::path(
    post, path = "/v1/returns/{return_id}/keep", tag = "refund services",
    params(("return_id" = u64, Path, description = "A return whose decision offered a refund without return")),
    request_body(content = Object, description = "No body, or `{}`", content_type = "application/json"),
    responses(
        (status = 200, description = "Refunded without return (a repeat answers the same and pays nothing twice)", body = KeepResponse),
        (status = 400, description = "Malformed JSON or return id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "The return was never decided", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time (`body_timeout`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 409, description = "No offer was made (`no_refund_without_return_offer`), the buyer's 30-day cap or the day's budget no longer allow it (`refund_only_buyer_cap`, `refund_only_budget_exhausted`), or the parcel is already on its way (`parcel_on_its_way`: an advance or a tracking number)", body = ErrorBody),
        (status = 422, description = "A body with fields", body = ErrorBody),
        (status = 503, description = "Not ready, or the ledger cannot record now (retry: a repeat is answered from the record)", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn keep(
    _: ApiCaller,
    State(state): State<AppState>,
    IdPath(return_id): IdPath,
    body: axum::body::Bytes,
) -> Result<Json<KeepResponse>, ApiError> {
    KeepRequest::parse(&body)?;
    let now = Utc::now();
    let k = state
        .ledger()
        .keep(ReturnId(return_id), state.policy(), now)
        .await?;
    if !k.repeated {
        metrics::counter!("fastrefund_refunds_without_return_total").increment(1);
    }
    Ok(Json(KeepResponse {
        return_id,
        refunded: k.amount.to_string(),
        outcome: fastrefund_core::domain::Outcome::RefundedWithoutReturn
            .as_str()
            .to_string(),
    }))
}

/// The merchant's or carrier's outcome of an advanced return: settles the exposure.
#[utoipa::path(
    post, path = "/v1/returns/{return_id}/outcome", tag = "refund services",
    params(("return_id" = u64, Path, description = "An advanced return")),
    request_body = OutcomeRequest,
    responses(
        (status = 200, description = "Settled (a repeat of the same outcome answers the same)", body = OutcomeResponse),
        (status = 400, description = "Malformed JSON or return id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "The return was never decided", body = ErrorBody),
        (status = 408, description = "The body did not arrive in time (`body_timeout`)", body = ErrorBody),
        (status = 409, description = "Not advanced, or already settled with another outcome or at another time", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid (`pending` settles nothing)", body = ErrorBody),
        (status = 503, description = "The ledger cannot record now", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn outcome(
    _: ApiCaller,
    State(state): State<AppState>,
    IdPath(return_id): IdPath,
    ApiJson(body): ApiJson<OutcomeRequest>,
) -> Result<Json<OutcomeResponse>, ApiError> {
    let now = Utc::now();
    let (outcome, at) = body.parse(now, state.clock_skew())?;
    let s = state
        .ledger()
        .settle(ReturnId(return_id), outcome, at, now)
        .await?;
    if !s.repeated {
        metrics::counter!("fastrefund_outcomes_total", "outcome" => s.outcome.as_str())
            .increment(1);
    }
    Ok(Json(OutcomeResponse {
        return_id,
        outcome: body.outcome,
        amount: s.amount.to_string(),
        loss: s.loss,
        outstanding: s.outstanding.to_string(),
    }))
}

fn star_of(state: &AppState, serving: &Serving, policy: &Policy, buyer: BuyerId) -> Star {
    state
        .served(serving, buyer)
        .map(|s| s.rating.star)
        .unwrap_or(policy.unknown_buyer_star)
}

/// A buyer's outstanding advances and the limit for their star.
#[utoipa::path(
    get, path = "/v1/buyers/{buyer_id}/exposure", tag = "refund services",
    params(("buyer_id" = u64, Path, description = "A buyer")),
    responses(
        (status = 200, description = "Outstanding and limit, decimal strings", body = ExposureResponse),
        (status = 400, description = "The buyer id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 503, description = "Not ready, or the ledger cannot answer now", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn exposure(
    _: ApiCaller,
    State(state): State<AppState>,
    IdPath(buyer): IdPath,
) -> Result<Json<ExposureResponse>, ApiError> {
    let serving = ready(&state)?;
    let policy = state.policy();
    let star = star_of(&state, &serving, &policy, BuyerId(buyer));
    let e = state.ledger().exposure(BuyerId(buyer)).await?;
    let limit = policy.limit_for(star);
    Ok(Json(ExposureResponse {
        buyer_id: buyer,
        star: star.get(),
        outstanding: e.outstanding.to_string(),
        limit: limit.to_string(),
        available: limit
            .checked_sub(e.outstanding)
            .unwrap_or(Money::ZERO)
            .to_string(),
        open_advances: e.open_advances,
    }))
}

/// The rating view of a buyer, shared by the JSON endpoint and the buyer's page.
pub fn rating_view(
    state: &AppState,
    serving: &Serving,
    policy: &Policy,
    buyer: BuyerId,
    lang: Lang,
) -> Option<RatingResponse> {
    let served = state.served(serving, buyer)?;
    let r = served.rating;
    let card = serving.ratings.model();
    let cuts = card.model().stars.min_score;
    let k = usize::from(r.star.get());
    let reasons: Vec<ReasonExplained> = r
        .reasons
        .iter()
        .flatten()
        .map(|r| {
            let w = r.words_in(card, lang.tag());
            ReasonExplained {
                code: r.code(card),
                message: w.message.to_string(),
                advice: w.advice.to_string(),
            }
        })
        .collect();
    let next_star = (k < 5).then(|| {
        let mut how: Vec<String> = Vec::new();
        for r in &reasons {
            if !how.contains(&r.advice) {
                how.push(r.advice.clone());
            }
        }
        NextStar {
            star: (k + 1) as u8,
            points_needed: cuts[k - 1] - r.score,
            how,
        }
    });
    Some(RatingResponse {
        buyer_id: buyer.0,
        star: r.star.get(),
        score: r.score,
        score_band: [
            (k >= 2).then(|| cuts[k - 2]),
            (k <= 4).then(|| cuts[k - 1] - 1),
        ],
        benefits: words::benefits(r.star, policy, lang),
        language: lang.tag().to_string(),
        about_returns: words::about_returns(card, policy, lang),
        reasons,
        next_star,
        as_of: serving.ratings.manifest.as_of.to_string(),
        model_version: serving.ratings.manifest.model_version.clone(),
        corrected_by_cases: served.corrected_by,
    })
}

pub fn unknown_buyer(serving: &Serving, policy: &Policy, buyer: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::UnknownBuyer,
        format!(
            "buyer {buyer} is not in the ratings of {}; until rated, a buyer is treated as {} stars",
            serving.ratings.manifest.as_of,
            policy.unknown_buyer_star.get()
        ),
    )
}

/// A buyer's star, score band, benefits, reason codes and what would raise the star.
#[utoipa::path(
    get, path = "/v1/buyers/{buyer_id}/rating", tag = "buyers",
    params(("buyer_id" = u64, Path, description = "A buyer")),
    responses(
        (status = 200, description = "The rating as of the snapshot", body = RatingResponse),
        (status = 400, description = "The buyer id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 404, description = "The snapshot does not know the buyer", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rating(
    _: ApiCaller,
    State(state): State<AppState>,
    IdPath(buyer): IdPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let serving = ready(&state)?;
    let policy = state.policy();
    let lang = Lang::of(&headers);
    let view = rating_view(&state, &serving, &policy, BuyerId(buyer), lang)
        .ok_or_else(|| unknown_buyer(&serving, &policy, buyer))?;
    Ok(with_language(Json(view).into_response(), lang))
}

/// Marks a response as being in `lang`, and as depending on `Accept-Language`.
pub fn with_language(mut r: Response, lang: Lang) -> Response {
    let h = r.headers_mut();
    h.insert(
        axum::http::header::CONTENT_LANGUAGE,
        axum::http::HeaderValue::from_static(lang.tag()),
    );
    h.insert(
        axum::http::header::VARY,
        axum::http::HeaderValue::from_static("Accept-Language"),
    );
    r
}

/// A signed link to the buyer's own page, valid for 15 minutes, for a buyer-facing
/// front end to hand to the logged-in buyer.
#[utoipa::path(
    post, path = "/v1/buyers/{buyer_id}/link", tag = "buyers",
    params(("buyer_id" = u64, Path, description = "The logged-in buyer")),
    responses(
        (status = 200, description = "The link", body = BuyerLink),
        (status = 400, description = "The buyer id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn buyer_link(
    _: ApiCaller,
    State(state): State<AppState>,
    IdPath(buyer): IdPath,
) -> Json<BuyerLink> {
    let exp = Utc::now() + chrono::Duration::minutes(15);
    let sig = super::link::sign(&state, buyer, exp.timestamp());
    Json(BuyerLink {
        url: format!("/buyers/{buyer}?exp={}&sig={sig}", exp.timestamp()),
        expires_at: exp.to_rfc3339(),
    })
}
