//! The HTTP error type: every failure maps to a status and a JSON body with a stable
//! `code`, a `message` for people and, where it applies, the `field` at fault.
//! Internal details are logged, never sent.

use crate::ledger::LedgerError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `malformed_json`, `invalid_field`, `unauthorized`, ...
    pub code: String,
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
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A field of the request is missing, mistyped or out of range (422).
    pub fn field(
        field: impl Into<String>,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid token as `Authorization: Bearer <token>`",
        )
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this token may not make this call",
        )
    }

    pub fn not_ready() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "no valid ratings snapshot is loaded yet",
        )
    }

    /// Too many requests in flight: shed at once, with `Retry-After` (503).
    pub fn overloaded() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight; retry after the given seconds",
        )
    }

    /// An internal failure: logged in full, answered without details.
    pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> ApiError {
        let msg = e.to_string();
        match e {
            LedgerError::UnknownReturn(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_return", msg)
            }
            LedgerError::NotAdvanced(_) => ApiError::new(StatusCode::CONFLICT, "not_advanced", msg),
            LedgerError::OutcomeConflict { .. } => {
                ApiError::new(StatusCode::CONFLICT, "outcome_conflict", msg)
            }
            LedgerError::ReturnIdReused { field, .. } => ApiError {
                field: Some(field.to_string()),
                ..ApiError::new(StatusCode::CONFLICT, "return_id_reused", msg)
            },
            LedgerError::TrackingConflict { .. } => ApiError {
                field: Some("tracking_number".into()),
                ..ApiError::new(StatusCode::CONFLICT, "tracking_number_conflict", msg)
            },
            LedgerError::OutcomeAtConflict { .. } => ApiError {
                field: Some("at".into()),
                ..ApiError::new(StatusCode::CONFLICT, "outcome_conflict", msg)
            },
            LedgerError::PendingOutcome => ApiError::field("outcome", "invalid_outcome", msg),
            LedgerError::Unavailable(_) | LedgerError::Open { .. } => {
                tracing::error!(error = %msg, "ledger unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ledger_unavailable",
                    "the ledger cannot record this now; nothing was recorded, retry later",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
            },
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
