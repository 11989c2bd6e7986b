//! Extractors that turn bad input into [`ApiError`]s naming what was wrong: JSON
//! bodies (malformed, mistyped or missing fields, too large, wrong content type),
//! numeric path parameters, and bearer tokens.

use super::AppState;
use super::error::ApiError;
use super::error::ErrorCode;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header, request::Parts};
use serde::de::DeserializeOwned;

/// A JSON body, deserialised with the path of any failing field.
pub struct ApiJson<T>(pub T);

/// The name between the first pair of backticks of a serde message (`missing field
/// `x``, `unknown field `x``).
fn backticked(msg: &str) -> Option<String> {
    let a = msg.find('`')?;
    let b = msg[a + 1..].find('`')?;
    Some(msg[a + 1..a + 1 + b].to_string())
}

/// Deserialises JSON bytes into `T`, mapping errors to API errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // The happy path without path tracking; on failure, again with it, for the field.
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let msg = inner.to_string();
                let field = if path == "." || path.is_empty() {
                    backticked(&msg).unwrap_or_else(|| "body".into())
                } else {
                    path
                };
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                ApiError::field(
                    field.clone(),
                    ErrorCode::InvalidField,
                    format!("`{field}`: {msg}"),
                )
            }
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {inner}"),
            ),
        }
    })
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            let timed_out = {
                let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&rej);
                std::iter::from_fn(|| {
                    let e = source?;
                    source = e.source();
                    Some(e)
                })
                .any(|e| e.is::<tower_http::timeout::TimeoutError>())
            };
            if timed_out {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::BodyTimeout,
                    "the body did not arrive in time",
                )
            } else if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::BodyTooLarge,
                    "the body is larger than the service accepts",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::UnreadableBody,
                    rej.body_text(),
                )
            }
        })?;
        Ok(ApiJson(parse_json(&bytes)?))
    }
}

/// A numeric id from the path (`/v1/buyers/{buyer_id}/...`).
pub struct IdPath(pub u64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(params): Path<Vec<(String, String)>> =
            Path::from_request_parts(parts, state).await.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::InvalidPathParameter,
                    e.body_text(),
                )
            })?;
        let (name, value) = params.into_iter().next().unwrap_or_default();
        // Digits only: `5.0` or `5e0` is refused, as in a JSON body (see `dto::de_id`).
        value
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= super::dto::MAX_ID && value.bytes().all(|b| b.is_ascii_digit()))
            .map(IdPath)
            .ok_or_else(|| ApiError {
                status: StatusCode::BAD_REQUEST,
                code: ErrorCode::InvalidPathParameter,
                message: format!(
                    "`{name}` must be an integer id from 0 to {}, got {value:?}",
                    super::dto::MAX_ID
                ),
                field: Some(name),
                case_id: None,
            })
    }
}

pub(crate) fn bearer_of(parts: &Parts) -> Option<&str> {
    bearer(parts)
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// A caller with the refund-service token (or the admin token).
pub struct ApiCaller;

/// A caller with the admin token.
pub struct AdminCaller;

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(t) if state.tokens().is_api(t) || state.tokens().is_admin(t) => Ok(ApiCaller),
            // Reviewers reach `/review…` only.
            Some(t) if state.tokens().is_reviewer(t) => Err(ApiError::forbidden()),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts) {
            Some(t) if state.tokens().is_admin(t) => Ok(AdminCaller),
            Some(t) if state.tokens().is_api(t) || state.tokens().is_reviewer(t) => {
                Err(ApiError::forbidden())
            }
            _ => Err(ApiError::unauthorized()),
        }
    }
}

/// Whether the request carries the refund-service or admin token.
pub fn has_api_token(parts: &Parts, state: &AppState) -> bool {
    bearer(parts).is_some_and(|t| state.tokens().is_api(t) || state.tokens().is_admin(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::EligibilityRequest;

    #[test]
    fn errors_name_the_field() {
        let e = parse_json::<EligibilityRequest>(b"{\"return_id\": 1}").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.field.as_deref(), Some("buyer_id"), "{e:?}");
        let e = parse_json::<EligibilityRequest>(
            br#"{"return_id":1,"buyer_id":"abc","order_id":1,"merchant_id":1,"category":"shoes","amount":"1","reason":"no_reason","delivered_at":"x","requested_at":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("buyer_id"), "{e:?}");
        let e = parse_json::<EligibilityRequest>(b"{not json").unwrap_err();
        assert_eq!(
            (e.status, e.code),
            (StatusCode::BAD_REQUEST, ErrorCode::MalformedJson)
        );
        let e = parse_json::<EligibilityRequest>(
            br#"{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"1","reason":"lost","delivered_at":"x","requested_at":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("reason"), "{e:?}");
        let e = parse_json::<EligibilityRequest>(
            br#"{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"1","reason":"other","delivered_at":"x","requested_at":"x","trackin":"x"}"#,
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("trackin"), "{e:?}");
    }

    #[test]
    fn an_id_written_as_a_float_is_refused_even_when_whole() {
        for number in ["9007199254740993.0", "5.0", "5e0", "0.0", "-0"] {
            let body = format!(
                r#"{{"return_id":{number},"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"1","reason":"other","delivered_at":"x","requested_at":"x"}}"#
            );
            let e = parse_json::<EligibilityRequest>(body.as_bytes()).unwrap_err();
            assert_eq!(
                (e.status, e.field.as_deref()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("return_id")),
                "{number}: {e:?}"
            );
        }
        let ok = parse_json::<EligibilityRequest>(
            br#"{"return_id":9007199254740993,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"1","reason":"other","delivered_at":"x","requested_at":"x"}"#,
        )
        .unwrap();
        assert_eq!(ok.return_id, 9007199254740993);
    }
}
