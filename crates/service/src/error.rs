//! The HTTP error type: every failure maps to a status and a JSON body with a stable
//! `code`, a `message` for people and, where it applies, the `field` at fault.
//! Internal details are logged, never sent.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fastrefund_core::ledger::Refusal;
use fastrefund_store::LedgerError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every error code the API answers with: one closed, stable catalogue. The OpenAPI
/// document lists them (`ErrorCode`), so a client can match on them.
macro_rules! error_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// A stable, machine-readable error code (see the catalogue in the OpenAPI document).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            /// Every code, in the catalogue's order.
            pub const ALL: &[ErrorCode] = &[$(ErrorCode::$variant,)*];
            /// The code as it is sent.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }
        }
    };
}

error_codes! {
    BodyTimeout => "body_timeout",
    CaseAlreadyDecided => "case_already_decided",
    CaseAlreadyOpen => "case_already_open",
    CaseClaimed => "case_claimed",
    CaseNotClaimedByYou => "case_not_claimed_by_you",
    CaseWrongState => "case_wrong_state",
    InvalidCase => "invalid_case",
    NothingToContest => "nothing_to_contest",
    NotTheBuyersReturn => "not_the_buyers_return",
    UnknownCase => "unknown_case",
    BodyTooLarge => "body_too_large",
    Forbidden => "forbidden",
    HandlerTimeout => "handler_timeout",
    ImplausibleTimestamp => "implausible_timestamp",
    Internal => "internal",
    InvalidAmount => "invalid_amount",
    InvalidField => "invalid_field",
    InvalidId => "invalid_id",
    InvalidOutcome => "invalid_outcome",
    InvalidPathParameter => "invalid_path_parameter",
    InvalidQueryParameter => "invalid_query_parameter",
    InvalidTimestamp => "invalid_timestamp",
    InvalidTrackingNumber => "invalid_tracking_number",
    InvalidValue => "invalid_value",
    LedgerUnavailable => "ledger_unavailable",
    MalformedJson => "malformed_json",
    MethodNotAllowed => "method_not_allowed",
    NotAdvanced => "not_advanced",
    NoRefundWithoutReturnOffer => "no_refund_without_return_offer",
    ParcelOnItsWay => "parcel_on_its_way",
    RefundOnlyBudgetExhausted => "refund_only_budget_exhausted",
    RefundOnlyBuyerCap => "refund_only_buyer_cap",
    RefundedWithoutReturn => "refunded_without_return",
    NotFound => "not_found",
    NotReady => "not_ready",
    OutcomeConflict => "outcome_conflict",
    Overloaded => "overloaded",
    ReloadRefused => "reload_refused",
    ReturnIdReused => "return_id_reused",
    TrackingNumberConflict => "tracking_number_conflict",
    Unauthorized => "unauthorized",
    UnknownBuyer => "unknown_buyer",
    UnknownReturn => "unknown_return",
    UnreadableBody => "unreadable_body",
    UnsupportedMediaType => "unsupported_media_type",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response. `code` stands at the top too, beside `error`,
/// and `case_id` names the case a case error is about (the open case, for
/// `case_already_open`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub code: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_id: Option<u64>,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: one of the catalogue.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
    /// The request field or path parameter at fault, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An API error.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
    /// The case a case error is about.
    pub case_id: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            case_id: None,
        }
    }

    /// A field of the request is missing, mistyped or out of range (422).
    pub fn field(
        field: impl Into<String>,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
            field: Some(field.into()),
            case_id: None,
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send a valid token as `Authorization: Bearer <token>`",
        )
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "this token may not make this call",
        )
    }

    pub fn not_ready() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotReady,
            "no valid ratings snapshot is loaded yet",
        )
    }

    /// Too many requests in flight: shed at once, with `Retry-After` (503).
    pub fn overloaded() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Overloaded,
            "too many requests in flight; retry after the given seconds",
        )
    }

    /// An internal failure: logged in full, answered without details.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; it has been logged",
        )
    }
}

impl ApiError {
    /// A command the ledger's state machine refused, as the API answers it.
    fn refused(r: Refusal, msg: String) -> ApiError {
        match r {
            Refusal::UnknownReturn(_) => {
                ApiError::new(StatusCode::NOT_FOUND, ErrorCode::UnknownReturn, msg)
            }
            Refusal::NotAdvanced(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::NotAdvanced, msg)
            }
            Refusal::OutcomeConflict { .. }
            | Refusal::NotSettled(_)
            | Refusal::CorrectionConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::OutcomeConflict, msg)
            }
            Refusal::ReturnIdReused { field, .. } => ApiError {
                field: Some(field.to_string()),
                ..ApiError::new(StatusCode::CONFLICT, ErrorCode::ReturnIdReused, msg)
            },
            Refusal::TrackingConflict { .. } => ApiError {
                field: Some("tracking_number".into()),
                ..ApiError::new(StatusCode::CONFLICT, ErrorCode::TrackingNumberConflict, msg)
            },
            Refusal::OutcomeAtConflict { .. } => ApiError {
                field: Some("at".into()),
                ..ApiError::new(StatusCode::CONFLICT, ErrorCode::OutcomeConflict, msg)
            },
            Refusal::PendingOutcome => ApiError::field("outcome", ErrorCode::InvalidOutcome, msg),
            Refusal::BeforeRequest { field, .. } => {
                ApiError::field(field, ErrorCode::InvalidTimestamp, msg)
            }
            Refusal::NoRefundWithoutReturnOffer(_) => ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NoRefundWithoutReturnOffer,
                msg,
            ),
            Refusal::ParcelOnItsWay(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::ParcelOnItsWay, msg)
            }
            Refusal::RefundOnlyCaps { reasons, .. } => {
                // The first cap that refused names the code (the buyer's, then the day's).
                let code = match reasons.first() {
                    Some(fastrefund_core::domain::ReasonCode::RefundOnlyBudgetExhausted) => {
                        ErrorCode::RefundOnlyBudgetExhausted
                    }
                    _ => ErrorCode::RefundOnlyBuyerCap,
                };
                ApiError::new(StatusCode::CONFLICT, code, msg)
            }
            Refusal::RefundedWithoutReturn(_) => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::RefundedWithoutReturn, msg)
            }
        }
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> ApiError {
        let msg = e.to_string();
        match e {
            LedgerError::Refused(r) => ApiError::refused(r, msg),
            LedgerError::Case(r) => ApiError::from(r),
            LedgerError::Unavailable(_) | LedgerError::Open { .. } | LedgerError::Broken(_) => {
                tracing::error!(error = %msg, "ledger unavailable");
                // Never "nothing was recorded": an answer lost after a commit (the
                // database's, or an fdatasync that failed after it) may have recorded
                // the call. A retry with the same ids is answered from the record.
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::LedgerUnavailable,
                    "the ledger could not confirm this call: it may or may not have been recorded; retry it with the same return_id (a retry is answered from the record, never applied twice)",
                )
            }
        }
    }
}

impl From<fastrefund_core::cases::CaseRefusal> for ApiError {
    fn from(r: fastrefund_core::cases::CaseRefusal) -> ApiError {
        use fastrefund_core::cases::CaseRefusal as R;
        let msg = r.to_string();
        let (status, code, case_id) = match r {
            R::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidCase,
                None,
            ),
            R::UnknownReturn(_) => (StatusCode::NOT_FOUND, ErrorCode::UnknownReturn, None),
            R::NotTheBuyers { .. } => (StatusCode::FORBIDDEN, ErrorCode::NotTheBuyersReturn, None),
            R::NothingToContest(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::NothingToContest,
                None,
            ),
            R::AlreadyOpen(id) => (StatusCode::CONFLICT, ErrorCode::CaseAlreadyOpen, Some(id)),
            R::UnknownCase(id) => (StatusCode::NOT_FOUND, ErrorCode::UnknownCase, Some(id)),
            R::Claimed { case_id, .. } => {
                (StatusCode::CONFLICT, ErrorCode::CaseClaimed, Some(case_id))
            }
            R::NotYourClaim { case_id, .. } => (
                StatusCode::CONFLICT,
                ErrorCode::CaseNotClaimedByYou,
                Some(case_id),
            ),
            R::AlreadyDecided { case_id, .. } => (
                StatusCode::CONFLICT,
                ErrorCode::CaseAlreadyDecided,
                Some(case_id),
            ),
            R::WrongState { case_id, .. } => (
                StatusCode::CONFLICT,
                ErrorCode::CaseWrongState,
                Some(case_id),
            ),
        };
        ApiError {
            case_id,
            ..ApiError::new(status, code, msg)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
            },
            code: self.code,
            case_id: self.case_id,
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}
