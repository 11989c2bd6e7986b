//! Signed links to a buyer's own page: `?exp=<unix time>&sig=<hex>` where `sig` is
//! HMAC-SHA256(link key, "buyer:{id}:{exp}"), the link key derived from the API token.
//! `POST /v1/buyers/{id}/link` mints them ([`sign`]); the page checks them
//! ([`link_params`], [`link_ok`]).

use super::AppState;
use super::error::ApiError;
use axum::http::StatusCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(state: &AppState, buyer: u64, exp: i64) -> HmacSha256 {
    // HMAC takes keys of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(state.tokens().link_key())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(format!("buyer:{buyer}:{exp}").as_bytes());
    m
}

/// The signature of a link to `buyer`'s page expiring at `exp` (unix seconds).
pub fn sign(state: &AppState, buyer: u64, exp: i64) -> String {
    hex::encode(mac(state, buyer, exp).finalize().into_bytes())
}

/// The signed-link parameters, if any; malformed ones are an error.
pub(crate) fn link_params(query: Option<&str>) -> Result<Option<(i64, Vec<u8>)>, ApiError> {
    let bad = |name: &str, what: &str| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: super::error::ErrorCode::InvalidQueryParameter,
        message: format!("`{name}` must be {what}"),
        field: Some(name.to_string()),
        case_id: None,
    };
    let (mut exp, mut sig) = (None, None);
    for kv in query
        .unwrap_or_default()
        .split('&')
        .filter(|kv| !kv.is_empty())
    {
        match kv.split_once('=').unwrap_or((kv, "")) {
            ("exp", v) => exp = Some(v.parse::<i64>().map_err(|_| bad("exp", "unix seconds"))?),
            ("sig", v) => {
                let ok = v.len() == 64
                    && v.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                let bytes = hex::decode(v).ok().filter(|_| ok);
                sig = Some(bytes.ok_or_else(|| bad("sig", "64 lowercase hex digits"))?);
            }
            _ => {}
        }
    }
    Ok(exp.zip(sig))
}

pub(crate) fn link_ok(state: &AppState, buyer: u64, link: Option<(i64, Vec<u8>)>) -> bool {
    match link {
        Some((exp, sig)) if exp > chrono::Utc::now().timestamp() => {
            mac(state, buyer, exp).verify_slice(&sig).is_ok()
        }
        _ => false,
    }
}
