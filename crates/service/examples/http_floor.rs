//! The HTTP+JSON floor of the eligibility benchmark (`scripts/bench-floor.sh`, issue 9):
//! a minimal axum handler that does what any JSON API must do for this request and
//! nothing else — checks the bearer token, parses the same body into the same typed
//! struct as `POST /v1/eligibility` (`service::dto::EligibilityRequest`), and answers a
//! JSON body of the same shape and about the same size. Eligibility's throughput over
//! this floor, measured in the same run on the same pinned cores, is what our own work
//! (policy, ledger, metrics) costs.
//!
//! Usage: `http_floor ADDR` with `FASTREFUND_API_TOKEN` set; one runtime thread.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fastrefund_service::dto::EligibilityRequest;
use std::sync::OnceLock;

static TOKEN: OnceLock<String> = OnceLock::new();

async fn eligibility(headers: HeaderMap, body: Bytes) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer != TOKEN.get().map(String::as_str) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let req: EligibilityRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(_) => return StatusCode::UNPROCESSABLE_ENTITY.into_response(),
    };
    // The shape and size of a real answer (an unrated buyer at the default star,
    // instant release, no tracking number yet).
    let answer = format!(
        concat!(
            r#"{{"return_id":{},"decision_id":{},"instant_address_release":true,"courier_pickup":true,"#,
            r#""pickup_from":"2026-07-01T02:00:00+00:00","advanced_refund":false,"star":3,"rated":false,"#,
            r#""reasons":[{{"code":"unknown_buyer","message":"no rating yet for this buyer; treated as 3 stars"}},"#,
            r#"{{"code":"no_tracking_number","message":"the refund is advanced once the parcel's tracking number is entered"}}],"#,
            r#""merchant_answer_by":null,"policy_version":"bench","model_version":"{}"}}"#
        ),
        req.return_id,
        1_780_000_000_000_000u64 + req.return_id,
        req.category,
    );
    ([(header::CONTENT_TYPE, "application/json")], answer).into_response()
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let token = std::env::var("FASTREFUND_API_TOKEN").unwrap_or_default();
    TOKEN.get_or_init(|| token);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            let app = axum::Router::new().route("/v1/eligibility", post(eligibility));
            axum::serve(listener, app).await
        })
}
