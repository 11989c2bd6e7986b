//! Cases (spec §10): a buyer or a merchant contests a decision, a reviewer decides it.
//!
//! The lifecycle is the core's ([`fastrefund_core::cases`]); the ledger stores it and
//! applies a decision's correction to the money in the same transaction. Here: the
//! HTTP surface and who may call it.
//! - `/v1/cases…` and `/v1/buyers/{id}/cases`: the API token (the refund service, the
//!   merchant's system), or the buyer's signed link (`?exp=&sig=`, as for the buyer's
//!   page) for that buyer's own cases.
//! - `/review…`: the reviewer token only; the API and admin tokens get 403, and the
//!   reviewer token gets 403 everywhere else.

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorCode};
use super::extract::{ApiJson, IdPath};
use super::link::{link_ok, link_params};
use axum::Json;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use fastrefund_core::cases::{
    Case, CaseEvent, CaseKind, CaseState, Command, Contested, Opening, Party, Verdict,
};
use fastrefund_core::domain::{BuyerId, OrderId, Outcome, ReturnId};
use fastrefund_store::{CaseAnswer, CaseCall, CaseView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body limit of the routes that take a statement: the largest valid body (4,000
/// characters of up to 12 bytes each as JSON escapes, and 10 links of 2,000 bytes) with
/// room to spare; past it, 413.
pub const MAX_BODY_BYTES: usize = 128 * 1024;

/// Who is calling a `/v1/cases` route.
pub enum Caller {
    /// The API (or admin) token: any buyer's cases.
    Service,
    /// A buyer through their signed link: their own cases only.
    Buyer(u64),
}

impl Caller {
    fn may_see(&self, buyer: BuyerId) -> bool {
        match self {
            Caller::Service => true,
            Caller::Buyer(b) => *b == buyer.0,
        }
    }
}

/// A caller of the case routes: a bearer token, or a signed link naming `buyer` in
/// the query (`?buyer=…&exp=…&sig=…`), checked against the case's buyer by the handler.
pub struct CaseCaller {
    bearer: Option<Result<(), ApiError>>,
    query: Option<String>,
}

impl FromRequestParts<AppState> for CaseCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = super::extract::bearer_of(parts).map(|t| {
            if state.tokens().is_api(t) || state.tokens().is_admin(t) {
                Ok(())
            } else if state.tokens().is_reviewer(t) {
                Err(ApiError::forbidden())
            } else {
                Err(ApiError::unauthorized())
            }
        });
        Ok(CaseCaller {
            bearer,
            query: parts.uri.query().map(str::to_string),
        })
    }
}

impl CaseCaller {
    /// Who the caller is, for a call about `buyer`'s cases.
    fn check(&self, state: &AppState, buyer: BuyerId) -> Result<Caller, ApiError> {
        // A malformed link is refused whoever calls (as on the buyer's page).
        let link = link_params(self.query.as_deref())?;
        match &self.bearer {
            Some(Ok(())) => Ok(Caller::Service),
            Some(Err(e)) => Err(e.clone()),
            None => {
                if link.is_some() && link_ok(state, buyer.0, link) {
                    Ok(Caller::Buyer(buyer.0))
                } else {
                    Err(ApiError::unauthorized())
                }
            }
        }
    }
}

/// A caller with the reviewer token.
pub struct ReviewerCaller;

impl FromRequestParts<AppState> for ReviewerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match super::extract::bearer_of(parts) {
            Some(t) if state.tokens().is_reviewer(t) => Ok(ReviewerCaller),
            Some(t) if state.tokens().is_api(t) || state.tokens().is_admin(t) => {
                Err(ApiError::forbidden())
            }
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// A case opened by a buyer or a merchant.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenCaseRequest {
    pub kind: CaseKindDto,
    #[schema(minimum = 0, example = 100042)]
    #[serde(deserialize_with = "super::dto::de_id")]
    pub buyer_id: u64,
    /// The return contested (required for `outcome` and `decision`).
    #[schema(minimum = 0, example = 1001)]
    #[serde(default, deserialize_with = "super::dto::de_opt_id")]
    pub return_id: Option<u64>,
    /// The order a `rating` case is about, if any.
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "super::dto::de_opt_id")]
    pub order_id: Option<u64>,
    pub opened_by: PartyDto,
    /// What the party says, at most 4,000 characters.
    #[schema(
        max_length = 4000,
        example = "The parcel left sealed; the courier's photo shows it."
    )]
    pub statement: String,
    /// At most 10 `https://` links.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub evidence: Vec<String>,
    /// For a `rating` case: the reason contested, one of the `code`s the buyer's rating
    /// shows now. Won by the buyer, the case strikes it from the star at once.
    #[serde(default)]
    #[schema(example = "days_since_last_bad")]
    pub reason_code: Option<String>,
}

/// What a case contests.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseKindDto {
    Outcome,
    Rating,
    Decision,
}

/// Who speaks.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartyDto {
    Buyer,
    Merchant,
}

impl From<PartyDto> for Party {
    fn from(p: PartyDto) -> Party {
        match p {
            PartyDto::Buyer => Party::Buyer,
            PartyDto::Merchant => Party::Merchant,
        }
    }
}

/// The other party's answer.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseResponseRequest {
    pub party: PartyDto,
    #[schema(max_length = 4000)]
    pub statement: String,
    #[serde(default)]
    #[schema(max_items = 10)]
    pub evidence: Vec<String>,
}

/// A reviewer's claim (or release) of a case.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    #[schema(example = "li.wei", max_length = 100)]
    pub reviewer: String,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    #[schema(example = "li.wei", max_length = 100)]
    pub reviewer: String,
    pub decision: VerdictDto,
    /// Why, for both parties, at most 4,000 characters.
    #[schema(max_length = 4000)]
    pub note: String,
    /// For an `outcome` case the buyer won: what the outcome becomes (`received_ok`,
    /// the default, or `merchant_fault` where the merchant was at fault).
    #[serde(default)]
    pub outcome: Option<CorrectedOutcomeDto>,
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictDto {
    BuyerWon,
    MerchantWon,
    Split,
}

/// What a contested outcome becomes.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CorrectedOutcomeDto {
    ReceivedOk,
    MerchantFault,
}

/// A case: where it is, its deadlines and its audit trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CaseDto {
    pub case_id: u64,
    #[schema(example = "outcome")]
    pub kind: String,
    pub buyer_id: u64,
    pub return_id: Option<u64>,
    pub order_id: Option<u64>,
    #[schema(example = "buyer")]
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    /// `awaiting_response`, `open`, `claimed` or `decided`.
    #[schema(example = "awaiting_response")]
    pub state: String,
    /// The other party's deadline (an outcome case).
    pub respond_by: Option<DateTime<Utc>>,
    pub decide_by: DateTime<Utc>,
    /// `respond_by` and `decide_by` in the platform's time zone, as shown to people.
    pub respond_by_local: Option<String>,
    pub decide_by_local: String,
    /// Past `decide_by` before a decision.
    pub breached: bool,
    /// The reviewer holding or having decided it.
    pub reviewer: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    /// `buyer_won`, `merchant_won` or `split`, once decided.
    pub decision: Option<String>,
    pub note: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The outcome the return now has, when the decision corrected it.
    pub corrected_outcome: Option<String>,
    /// The reason a `rating` case contests.
    pub reason_code: Option<String>,
    /// The points that reason earned the buyer when the case was opened.
    pub reason_points: Option<i32>,
    /// Whether the case strikes that reason from the buyer's star (a `rating` case the
    /// buyer won on a reason).
    pub strikes_reason: bool,
    /// Who did what, when, and what they said; oldest first.
    pub events: Vec<CaseEventDto>,
}

/// One entry of a case's trail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CaseEventDto {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub what: String,
    pub statement: Option<String>,
    pub evidence: Vec<String>,
}

/// Cases, queue order or newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CaseList {
    pub cases: Vec<CaseDto>,
}

fn local(state: &AppState, t: DateTime<Utc>) -> String {
    t.with_timezone(&state.policy().time_zone)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

pub(crate) fn dto(state: &AppState, case: &Case, events: &[CaseEvent]) -> CaseDto {
    let (reviewer, lease_until, decision, note, decided_at, corrected) = match &case.state {
        CaseState::Claimed {
            reviewer,
            lease_until,
        } => (
            Some(reviewer.clone()),
            Some(*lease_until),
            None,
            None,
            None,
            None,
        ),
        CaseState::Decided {
            verdict,
            reviewer,
            note,
            at,
            corrected_outcome,
        } => (
            Some(reviewer.clone()),
            None,
            Some(verdict.as_str().to_string()),
            Some(note.clone()),
            Some(*at),
            corrected_outcome.map(|o| o.as_str().to_string()),
        ),
        _ => (None, None, None, None, None, None),
    };
    CaseDto {
        case_id: case.case_id,
        kind: case.kind.as_str().to_string(),
        buyer_id: case.buyer_id.0,
        return_id: case.return_id.map(|r| r.0),
        order_id: case.order_id.map(|o| o.0),
        opened_by: case.opened_by.as_str().to_string(),
        opened_at: case.opened_at,
        state: case.state.name().to_string(),
        respond_by: case.respond_by,
        decide_by: case.decide_by,
        respond_by_local: case.respond_by.map(|t| local(state, t)),
        decide_by_local: local(state, case.decide_by),
        breached: case.breached,
        reviewer,
        lease_until,
        decision,
        note,
        decided_at,
        corrected_outcome: corrected,
        reason_code: case.contested.as_ref().map(|c| c.reason_code.clone()),
        reason_points: case.contested.as_ref().map(|c| c.points),
        strikes_reason: fastrefund_core::cases::Strike::of(case).is_some(),
        events: events
            .iter()
            .map(|e| CaseEventDto {
                at: e.at,
                actor: e.actor.clone(),
                what: e.what.clone(),
                statement: e.statement.clone(),
                evidence: e.evidence.clone(),
            })
            .collect(),
    }
}

pub(crate) async fn call(state: &AppState, call: CaseCall) -> Result<CaseAnswer, ApiError> {
    let deadlines = state.policy().cases;
    let answer = state.ledger().cases(call, deadlines, Utc::now()).await?;
    if let CaseAnswer::One(view) = &answer {
        // A decision recorded here corrects the star at once (other replicas: at
        // their next refresh).
        state.strikes().add(&view.case);
    }
    Ok(answer)
}

fn one(a: CaseAnswer) -> Result<CaseView, ApiError> {
    match a {
        CaseAnswer::One(v) => Ok(v),
        _ => Err(ApiError::internal("case call", "not one case")),
    }
}

fn many(a: CaseAnswer) -> Result<Vec<Case>, ApiError> {
    match a {
        CaseAnswer::Many(v) => Ok(v),
        CaseAnswer::One(v) => Ok(vec![v.case]),
        _ => Err(ApiError::internal("case call", "not a list of cases")),
    }
}

fn counted(what: &'static str, kind: CaseKind) {
    metrics::counter!("fastrefund_case_moves_total", "move" => what, "kind" => kind.as_str())
        .increment(1);
}

/// Open a case: a buyer or a merchant contests an outcome, a star or a refusal.
#[utoipa::path(
    post, path = "/v1/cases", tag = "cases",
    request_body = OpenCaseRequest,
    params(
        ("exp" = Option<i64>, Query, description = "The buyer's signed link: expiry, unix seconds"),
        ("sig" = Option<String>, Query, pattern = "^[0-9a-f]{64}$", description = "The buyer's signed link: signature, hex"),
    ),
    responses(
        (status = 201, description = "The case, with its deadlines", body = CaseDto),
        (status = 400, description = "Malformed JSON or signed link", body = ErrorBody),
        (status = 401, description = "No valid token or link", body = ErrorBody),
        (status = 403, description = "The reviewer token, or another buyer's return", body = ErrorBody),
        (status = 404, description = "The return was never decided (`unknown_return`)", body = ErrorBody),
        (status = 409, description = "A case on the same subject is open (`case_already_open`, with its `case_id`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A field is missing or wrong: a statement over 4,000 characters, more than 10 evidence links or one that is not https, nothing to contest", body = ErrorBody),
        (status = 503, description = "The ledger cannot record now", body = ErrorBody),
    ),
    security(("bearer" = []), ())
)]
pub async fn open_case(
    caller: CaseCaller,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OpenCaseRequest>,
) -> Result<Response, ApiError> {
    let buyer = BuyerId(super::dto::check_id("buyer_id", body.buyer_id)?);
    let who = caller.check(&state, buyer)?;
    let opened_by: Party = body.opened_by.into();
    if matches!(who, Caller::Buyer(_)) && opened_by != Party::Buyer {
        return Err(ApiError::forbidden());
    }
    let kind = match body.kind {
        CaseKindDto::Outcome => CaseKind::Outcome,
        CaseKindDto::Rating => CaseKind::Rating,
        CaseKindDto::Decision => CaseKind::Decision,
    };
    let opening = Opening {
        kind,
        buyer_id: buyer,
        return_id: body
            .return_id
            .map(|r| super::dto::check_id("return_id", r).map(ReturnId))
            .transpose()?,
        order_id: body
            .order_id
            .map(|o| super::dto::check_id("order_id", o).map(OrderId))
            .transpose()?,
        opened_by,
        statement: body.statement,
        evidence: body.evidence,
        contested: body
            .reason_code
            .map(|code| contested(&state, buyer, &code))
            .transpose()?,
    };
    let view = open_for(&state, opening).await?;
    Ok((
        StatusCode::CREATED,
        Json(dto(&state, &view.case, &view.events)),
    )
        .into_response())
}

/// The reason `code` of `buyer`'s star, as contested now: it must be one of the
/// reasons the buyer is shown, and the snapshot must keep the buyer's points (what the
/// case contests, and what a strike is measured against).
pub(crate) fn contested(
    state: &AppState,
    buyer: BuyerId,
    code: &str,
) -> Result<Contested, ApiError> {
    let refuse = |message: String| ApiError::field("reason_code", ErrorCode::InvalidField, message);
    let serving = state.serving().ok_or_else(ApiError::not_ready)?;
    let served = state.served(&serving, buyer).ok_or_else(|| {
        refuse(format!(
            "buyer {} is not in the ratings: no reason to contest",
            buyer.0
        ))
    })?;
    let card = serving.ratings.model();
    let shown = served
        .rating
        .reasons
        .iter()
        .flatten()
        .find(|r| r.code(card) == code)
        .ok_or_else(|| refuse(format!("`{code}` is not a reason of this buyer's star")))?;
    let points = serving.ratings.points(buyer).ok_or_else(|| {
        refuse(format!(
            "the snapshot in service (as of {}) keeps no points per reason, so a reason cannot be contested until the next rating; contest the star as a whole (no reason_code)",
            serving.ratings.manifest.as_of
        ))
    })?;
    Ok(Contested {
        reason_code: code.to_string(),
        points: points.points[usize::from(shown.feature)],
    })
}

/// Opens a case (for the API and the buyer's page alike).
pub(crate) async fn open_for(state: &AppState, opening: Opening) -> Result<CaseView, ApiError> {
    let kind = opening.kind;
    let view = one(call(state, CaseCall::Open(opening)).await?)?;
    counted("opened", kind);
    Ok(view)
}

/// A case, its state, deadlines and trail.
#[utoipa::path(
    get, path = "/v1/cases/{case_id}", tag = "cases",
    params(
        ("case_id" = u64, Path, description = "The case"),
        ("exp" = Option<i64>, Query, description = "The buyer's signed link: expiry"),
        ("sig" = Option<String>, Query, pattern = "^[0-9a-f]{64}$", description = "The buyer's signed link: signature"),
    ),
    responses(
        (status = 200, description = "The case", body = CaseDto),
        (status = 400, description = "The id is not a number, or a malformed link", body = ErrorBody),
        (status = 401, description = "No valid token or link", body = ErrorBody),
        (status = 403, description = "The reviewer token", body = ErrorBody),
        (status = 404, description = "No such case (`unknown_case`), or not this buyer's", body = ErrorBody),
    ),
    security(("bearer" = []), ())
)]
pub async fn get_case(
    caller: CaseCaller,
    State(state): State<AppState>,
    IdPath(case_id): IdPath,
) -> Result<Json<CaseDto>, ApiError> {
    // The caller's credentials first: a bad token or a malformed link learns nothing.
    link_params(caller.query.as_deref())?;
    if let Some(Err(e)) = &caller.bearer {
        return Err(e.clone());
    }
    let view = one(call(&state, CaseCall::Get { case_id }).await?)?;
    let who = caller.check(&state, view.case.buyer_id)?;
    if !who.may_see(view.case.buyer_id) {
        // Another buyer's case does not exist, as far as this link is concerned.
        return Err(ApiError::from(
            fastrefund_core::cases::CaseRefusal::UnknownCase(case_id),
        ));
    }
    Ok(Json(dto(&state, &view.case, &view.events)))
}

/// The other party's answer, before `respond_by`.
#[utoipa::path(
    post, path = "/v1/cases/{case_id}/response", tag = "cases",
    params(("case_id" = u64, Path, description = "The case")),
    request_body = CaseResponseRequest,
    responses(
        (status = 200, description = "The case, open for review", body = CaseDto),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The reviewer token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "The case does not wait for an answer (`case_wrong_state`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Not that party's turn, or a bad statement", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn respond(
    caller: CaseCaller,
    State(state): State<AppState>,
    IdPath(case_id): IdPath,
    ApiJson(body): ApiJson<CaseResponseRequest>,
) -> Result<Json<CaseDto>, ApiError> {
    match &caller.bearer {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(e.clone()),
        None => return Err(ApiError::unauthorized()),
    }
    let command = Command::Respond {
        party: body.party.into(),
        statement: body.statement,
        evidence: body.evidence,
    };
    let view = one(call(&state, CaseCall::Step { case_id, command }).await?)?;
    counted("responded", view.case.kind);
    Ok(Json(dto(&state, &view.case, &view.events)))
}

/// A buyer's cases, newest first.
#[utoipa::path(
    get, path = "/v1/buyers/{buyer_id}/cases", tag = "cases",
    params(
        ("buyer_id" = u64, Path, description = "The buyer"),
        ("exp" = Option<i64>, Query, description = "The buyer's signed link: expiry"),
        ("sig" = Option<String>, Query, pattern = "^[0-9a-f]{64}$", description = "The buyer's signed link: signature"),
    ),
    responses(
        (status = 200, description = "The buyer's cases", body = CaseList),
        (status = 400, description = "The id is not a number, or a malformed link", body = ErrorBody),
        (status = 401, description = "No valid token or link", body = ErrorBody),
        (status = 403, description = "The reviewer token", body = ErrorBody),
    ),
    security(("bearer" = []), ())
)]
pub async fn buyer_cases(
    caller: CaseCaller,
    State(state): State<AppState>,
    IdPath(buyer): IdPath,
) -> Result<Json<CaseList>, ApiError> {
    caller.check(&state, BuyerId(buyer))?;
    let cases = many(call(&state, CaseCall::OfBuyer(BuyerId(buyer))).await?)?;
    Ok(Json(CaseList {
        cases: cases.iter().map(|c| dto(&state, c, &[])).collect(),
    }))
}

/// Which cases the queue lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QueueQuery {
    /// `awaiting_response`, `open`, `claimed` or `decided`; all undecided by default.
    #[param(pattern = "^(awaiting_response|open|claimed|decided)$")]
    pub state: Option<String>,
}

/// The queue's `state` filter from the raw query: only `state`, only a state's name.
fn queue_state(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let bad = |name: &str, message: String| ApiError {
        field: Some(name.to_string()),
        ..ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidQueryParameter,
            message,
        )
    };
    let mut state = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match (k, v) {
            ("state", "awaiting_response" | "open" | "claimed" | "decided") => {
                state = Some(v.to_string());
            }
            ("state", other) => {
                return Err(bad(
                    "state",
                    format!(
                        "`state` must be awaiting_response, open, claimed or decided, got {other:?}"
                    ),
                ));
            }
            (other, _) => {
                return Err(bad(
                    "query",
                    format!("unknown query parameter {other:?}: the queue takes `state` only"),
                ));
            }
        }
    }
    Ok(state)
}

/// The reviewers' queue: breached cases first, then the soonest `decide_by`.
#[utoipa::path(
    get, path = "/review/cases", tag = "reviewers",
    params(QueueQuery),
    responses(
        (status = 200, description = "The queue", body = CaseList),
        (status = 400, description = "An unknown state", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the reviewer token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn queue(
    _: ReviewerCaller,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Json<CaseList>, ApiError> {
    let filter = queue_state(query.as_deref())?;
    let cases = many(call(&state, CaseCall::Queue { state: filter }).await?)?;
    Ok(Json(CaseList {
        cases: cases.iter().map(|c| dto(&state, c, &[])).collect(),
    }))
}

async fn review_step(
    state: &AppState,
    case_id: u64,
    command: Command,
    what: &'static str,
) -> Result<Json<CaseDto>, ApiError> {
    let view = one(call(state, CaseCall::Step { case_id, command }).await?)?;
    if !view.repeated {
        counted(what, view.case.kind);
        if let CaseState::Decided { at, .. } = &view.case.state {
            let hours = (*at - view.case.opened_at).num_seconds() as f64 / 3600.0;
            metrics::histogram!("fastrefund_case_hours_to_decision").record(hours);
        }
    }
    Ok(Json(dto(state, &view.case, &view.events)))
}

/// Claim a case (a lease; claiming again renews it).
#[utoipa::path(
    post, path = "/review/cases/{case_id}/claim", tag = "reviewers",
    params(("case_id" = u64, Path, description = "The case")),
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "The case, claimed", body = CaseDto),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the reviewer token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "Another reviewer holds it (`case_claimed`), or it is not open for review", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A bad reviewer name", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn claim(
    _: ReviewerCaller,
    State(state): State<AppState>,
    IdPath(case_id): IdPath,
    ApiJson(body): ApiJson<ClaimRequest>,
) -> Result<Json<CaseDto>, ApiError> {
    review_step(
        &state,
        case_id,
        Command::Claim {
            reviewer: body.reviewer,
        },
        "claimed",
    )
    .await
}

/// Let a claimed case go back to the queue.
#[utoipa::path(
    post, path = "/review/cases/{case_id}/release", tag = "reviewers",
    params(("case_id" = u64, Path, description = "The case")),
    request_body = ClaimRequest,
    responses(
        (status = 200, description = "The case, open for review again", body = CaseDto),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the reviewer token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "Not claimed by this reviewer", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "A bad reviewer name", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn release(
    _: ReviewerCaller,
    State(state): State<AppState>,
    IdPath(case_id): IdPath,
    ApiJson(body): ApiJson<ClaimRequest>,
) -> Result<Json<CaseDto>, ApiError> {
    review_step(
        &state,
        case_id,
        Command::Release {
            reviewer: body.reviewer,
        },
        "released",
    )
    .await
}

/// Decide a claimed case; the correction reaches the ledger in the same transaction.
#[utoipa::path(
    post, path = "/review/cases/{case_id}/decision", tag = "reviewers",
    params(("case_id" = u64, Path, description = "The case")),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "The decided case (the same answer for the same decision again)", body = CaseDto),
        (status = 400, description = "Malformed JSON or id", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the reviewer token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
        (status = 409, description = "Not claimed by this reviewer (`case_not_claimed_by_you`), or decided otherwise already (`case_already_decided`)", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "No note, or a correction that does not apply", body = ErrorBody),
        (status = 503, description = "The ledger cannot record now", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn decide(
    _: ReviewerCaller,
    State(state): State<AppState>,
    IdPath(case_id): IdPath,
    ApiJson(body): ApiJson<DecisionRequest>,
) -> Result<Json<CaseDto>, ApiError> {
    let verdict = match body.decision {
        VerdictDto::BuyerWon => Verdict::BuyerWon,
        VerdictDto::MerchantWon => Verdict::MerchantWon,
        VerdictDto::Split => Verdict::Split,
    };
    let command = Command::Decide {
        reviewer: body.reviewer,
        verdict,
        note: body.note,
        outcome: body.outcome.map(|o| match o {
            CorrectedOutcomeDto::ReceivedOk => Outcome::ReceivedOk,
            CorrectedOutcomeDto::MerchantFault => Outcome::MerchantFault,
        }),
    };
    review_step(&state, case_id, command, "decided").await
}

/// The reviewers' queue, as a page.
#[utoipa::path(
    get, path = "/review", tag = "reviewers",
    responses(
        (status = 200, description = "The queue page", body = String, content_type = "text/html"),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the reviewer token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn queue_page(
    _: ReviewerCaller,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let lang = super::words::Lang::of(&headers);
    let cases = many(call(&state, CaseCall::Queue { state: None }).await?)?;
    let rows: Vec<CaseDto> = cases.iter().map(|c| dto(&state, c, &[])).collect();
    Ok(html(super::review_page::queue(&rows, lang), lang))
}

/// One case, as a page: both statements, the return's record, claim and decide.
#[utoipa::path(
    get, path = "/review/cases/{case_id}/page", tag = "reviewers",
    params(("case_id" = u64, Path, description = "The case")),
    responses(
        (status = 200, description = "The case page", body = String, content_type = "text/html"),
        (status = 400, description = "The id is not a number", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the reviewer token", body = ErrorBody),
        (status = 404, description = "No such case", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn case_page(
    _: ReviewerCaller,
    State(state): State<AppState>,
    IdPath(case_id): IdPath,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let lang = super::words::Lang::of(&headers);
    let view = one(call(&state, CaseCall::Get { case_id }).await?)?;
    let case = dto(&state, &view.case, &view.events);
    let rec = match view.case.return_id {
        Some(rid) => match call(&state, CaseCall::Record(rid)).await? {
            CaseAnswer::Record(rec) => rec,
            _ => return Err(ApiError::internal("case call", "not a return's record")),
        },
        None => None,
    };
    let star_now = state.serving().and_then(|serving| {
        let served = state.served(&serving, view.case.buyer_id)?;
        let card = serving.ratings.model();
        let reasons = served
            .rating
            .reasons
            .iter()
            .flatten()
            .map(|r| r.code(card))
            .collect();
        Some((
            served.rating.star.get(),
            reasons,
            serving.ratings.manifest.as_of.to_string(),
        ))
    });
    let record = super::review_page::record(&case, rec.as_ref(), star_now, lang);
    Ok(html(super::review_page::case(&case, &record, lang), lang))
}

fn html(body: String, lang: super::words::Lang) -> Response {
    let mut r = Html(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
    h.insert(
        header::CONTENT_LANGUAGE,
        header::HeaderValue::from_static(lang.tag()),
    );
    super::page::guard(h, super::review_page::CSP.clone());
    r
}

/// A buyer's cases for their page, newest first; none when the ledger cannot say now.
pub(crate) async fn of_buyer(state: &AppState, buyer: BuyerId) -> Vec<CaseDto> {
    match call(state, CaseCall::OfBuyer(buyer)).await.and_then(many) {
        Ok(cases) => cases.iter().map(|c| dto(state, c, &[])).collect(),
        Err(e) => {
            tracing::warn!(error = ?e.code, buyer = buyer.0, "the buyer's cases are left off their page");
            Vec::new()
        }
    }
}

/// Keeps the case gauges of `/metrics` current: undecided cases by kind and state
/// (`fastrefund_cases_open`) and those past their deadline (`fastrefund_cases_breached`),
/// read from the ledger every `every`. (Moves and the time to decision are counted as
/// they happen: `fastrefund_case_moves_total`, `fastrefund_case_hours_to_decision`.)
pub fn spawn_gauges(state: AppState, every: std::time::Duration) {
    const STATES: [&str; 3] = ["awaiting_response", "open", "claimed"];
    tokio::spawn(async move {
        loop {
            if let Ok(CaseAnswer::Many(cases)) = call(&state, CaseCall::Queue { state: None })
                .await
                .map_err(drop)
            {
                for kind in CaseKind::ALL {
                    let k = kind.as_str();
                    let mine = || cases.iter().filter(move |c| c.kind == kind);
                    for st in STATES {
                        let n = mine().filter(|c| c.state.name() == st).count();
                        metrics::gauge!("fastrefund_cases_open", "kind" => k, "state" => st)
                            .set(n as f64);
                    }
                    let breached = mine().filter(|c| c.breached).count();
                    metrics::gauge!("fastrefund_cases_breached", "kind" => k).set(breached as f64);
                }
            }
            tokio::time::sleep(every).await;
        }
    });
}
