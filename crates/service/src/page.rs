//! The buyer's own page (`/buyers/{id}`): star, what it gives, what lowers it and what
//! would raise it, rendered as self-contained HTML.
//!
//! Who may open it: a caller with the API token (a front end's server), or the buyer
//! with a signed link `?exp=<unix time>&sig=<hex>` where `sig` is
//! HMAC-SHA256(API token, "buyer:{id}:{exp}") and `exp` is in the future. Links are
//! minted by `POST /v1/buyers/{id}/link`, so only the marketplace, after logging the
//! buyer in, can hand one out, and a link opens one buyer's page only.

use super::AppState;
use super::api::{rating_view, unknown_buyer, with_language};
use super::error::{ApiError, ErrorBody};
use super::extract::{IdPath, has_api_token};
use super::link::{link_ok, link_params};
use super::words::{Lang, chrome};
use crate::dto::RatingResponse;
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::response::{Html, IntoResponse, Response};
use fastrefund_core::domain::BuyerId;
/// A buyer's own page.
#[utoipa::path(
    get, path = "/buyers/{buyer_id}", tag = "buyers",
    params(
        ("buyer_id" = u64, Path, description = "The buyer"),
        ("exp" = Option<i64>, Query, description = "Signed link: expiry, unix seconds"),
        ("sig" = Option<String>, Query, pattern = "^[0-9a-f]{64}$", description = "Signed link: HMAC-SHA256 signature, hex"),
    ),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        (status = 400, description = "The buyer id is not a number, or `exp`/`sig` are malformed", body = ErrorBody),
        (status = 401, description = "Neither the API token nor a valid signed link", body = ErrorBody),
        (status = 404, description = "The snapshot does not know the buyer", body = ErrorBody),
        (status = 503, description = "Not ready", body = ErrorBody),
    ),
    security(("bearer" = []), ())
)]
pub async fn buyer_page(
    State(state): State<AppState>,
    IdPath(buyer): IdPath,
    RawQuery(query): RawQuery,
    parts: PageParts,
) -> Result<Response, ApiError> {
    let link = link_params(query.as_deref())?;
    if !(parts.api_token || link_ok(&state, buyer, link)) {
        return Err(ApiError::unauthorized());
    }
    let serving = state.serving().ok_or_else(ApiError::not_ready)?;
    let policy = state.policy();
    let lang = parts.lang;
    let view = rating_view(&state, &serving, &policy, BuyerId(buyer), lang)
        .ok_or_else(|| unknown_buyer(&serving, &policy, buyer))?;
    // The buyer's cases, if any (a ledger that cannot answer now leaves them out).
    let cases = super::cases::of_buyer(&state, BuyerId(buyer)).await;
    let html = render(&view, lang).replacen(
        "</main>",
        &format!(
            "{}{}</main>",
            super::review_page::buyer_cases(&cases, lang),
            super::contest::form(&view, buyer, query.as_deref(), lang)
        ),
        1,
    );
    let mut r = with_language(Html(html).into_response(), lang);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
    *r.status_mut() = StatusCode::OK;
    Ok(r)
}

/// Whether the page request carries the API token, and the language it asks for.
pub struct PageParts {
    api_token: bool,
    lang: Lang,
}

impl PageParts {
    pub(crate) fn api_token(&self) -> bool {
        self.api_token
    }

    pub(crate) fn lang(&self) -> Lang {
        self.lang
    }
}

impl FromRequestParts<AppState> for PageParts {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(PageParts {
            api_token: has_api_token(parts, state),
            lang: Lang::of(&parts.headers),
        })
    }
}

/// The page's one stylesheet, inline (the page is self-contained). It is the only
/// inline content: no script, no `style` attribute, so the CSP allows exactly this
/// text by its hash and nothing else.
pub(crate) const STYLE: &str = "
  body { font-family: system-ui, -apple-system, \"Segoe UI\", sans-serif; margin: 0; background: #f6f7fb; color: #1d2330; }
  main { max-width: 640px; margin: 0 auto; padding: 24px 16px 48px; }
  .card { background: #fff; border-radius: 16px; padding: 20px 24px; margin: 16px 0; box-shadow: 0 1px 4px rgba(0,0,0,.08); }
  h1 { font-size: 1.3rem; margin: 0 0 8px; }
  h2 { font-size: 1.05rem; margin: 0 0 12px; }
  .stars { font-size: 2.6rem; letter-spacing: 4px; }
  .on { color: #f5a623; } .off { color: #d8dbe3; }
  .meta { color: #69708a; font-size: .85rem; }
  .good { color: #1e8e3e; }
  .advice { color: #4a5170; }
  li { margin: 6px 0; }
  progress { appearance: none; -webkit-appearance: none; display: block; width: 100%; height: 12px; border: 0; border-radius: 8px; overflow: hidden; background: #e8eaf2; }
  progress::-webkit-progress-bar { background: #e8eaf2; }
  progress::-webkit-progress-value { background: linear-gradient(90deg, #f5a623, #1e8e3e); }
  progress::-moz-progress-bar { background: linear-gradient(90deg, #f5a623, #1e8e3e); }
  select, input, textarea { font: inherit; width: 100%; box-sizing: border-box; margin-top: 4px; }
  button { font: inherit; padding: 8px 16px; border-radius: 8px; border: 0; background: #1d2330; color: #fff; }
";

/// `Content-Security-Policy` of the page: nothing may load or run but [`STYLE`], named
/// by its SHA-256; no frame may embed the page (the signed link in its URL would be
/// clicked through), no `<base>` may send it elsewhere, and its one form (contesting,
/// [`super::contest`]) may post only to this origin.
static PAGE_CSP: std::sync::LazyLock<header::HeaderValue> =
    std::sync::LazyLock::new(|| csp(STYLE, "'self'"));

/// A CSP under which a page may have `style` (its one inline stylesheet, named by its
/// SHA-256) and nothing else: no script, no other source, no frame, no form.
pub(crate) fn style_csp(style: &str) -> header::HeaderValue {
    csp(style, "'none'")
}

/// [`style_csp`] with forms allowed to post to `form_action`.
fn csp(style: &str, form_action: &str) -> header::HeaderValue {
    use sha2::Digest;
    let hash = base64(&sha2::Sha256::digest(style.as_bytes()));
    let csp = format!(
        "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    );
    header::HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        header::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'")
    })
}

/// Standard base64 with padding (RFC 4648), for the CSP hash.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The headers of every answer of the page's route (the page and its errors alike):
/// the CSP above (a JSON error gets `default-src 'none'`), no MIME sniffing, no
/// framing, and no `Referer` carrying the signed link to wherever a click leads.
pub async fn security_headers(mut r: Response) -> Response {
    let html = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let csp = if html {
        PAGE_CSP.clone()
    } else {
        header::HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'")
    };
    guard(r.headers_mut(), csp);
    r
}

/// The headers of a page a browser cannot be turned against: `csp`, no MIME sniffing,
/// no framing, no `Referer` (a signed link or a case must not leak through a click).
pub(crate) fn guard(h: &mut header::HeaderMap, csp: header::HeaderValue) {
    h.insert(header::CONTENT_SECURITY_POLICY, csp);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Renders the page in `lang` (the view's words are in it already).
pub fn render(v: &RatingResponse, lang: Lang) -> String {
    let c = chrome(lang);
    let stars: String = (1..=5)
        .map(|k| {
            if k <= v.star {
                "<span class=\"on\">★</span>"
            } else {
                "<span class=\"off\">★</span>"
            }
        })
        .collect();
    let benefits: String = v
        .benefits
        .iter()
        .map(|b| format!("<li>{}</li>", esc(b)))
        .collect();
    let reasons = if v.reasons.is_empty() {
        format!("<p class=\"good\">{}</p>", c.nothing_holds)
    } else {
        let items: String = v
            .reasons
            .iter()
            .map(|r| {
                format!(
                    "<li><strong>{}</strong><br><span class=\"advice\">{}: {}</span></li>",
                    esc(&capitalise(&r.message)),
                    c.what_helps,
                    esc(&r.advice)
                )
            })
            .collect();
        format!("<ol class=\"reasons\">{items}</ol>")
    };
    let next = match &v.next_star {
        None => format!("<p class=\"good\">{}</p>", c.highest),
        Some(n) => {
            let lo = v.score_band[0].unwrap_or(v.score - 50);
            let hi = v.score_band[1].map(|h| h + 1).unwrap_or(v.score + 50);
            let pct = if hi > lo {
                (100 * (v.score - lo) / (hi - lo)).clamp(3, 100)
            } else {
                50
            };
            let how: String = n
                .how
                .iter()
                .map(|h| format!("<li>{}</li>", esc(h)))
                .collect();
            format!(
                "<p>{}</p>\
                 <progress value=\"{pct}\" max=\"100\">{pct}%</progress>\
                 <ul>{how}</ul>",
                (c.points_from)(n.points_needed.max(1), n.star)
            )
        }
    };
    format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: {star} ★</title>
<style>{style}</style>
</head>
<body>
<main>
  <section class="card">
    <h1>{heading}</h1>
    <div class="stars" aria-label="{star} / 5">{stars}</div>
    <p><strong>{star} {of_five}</strong> · {score_word} {score}</p>
    <p class="meta">{as_of_word} {as_of} · {model_word} {model}</p>{corrected}
  </section>
  <section class="card">
    <h2>{gives}</h2>
    <ul>{benefits}</ul>
  </section>
  <section class="card">
    <h2>{lowers}</h2>
    {reasons}
  </section>
  <section class="card">
    <h2>{raising}</h2>
    {next}
    <p class="meta" id="about-returns">{recomputed} {about_returns}</p>
  </section>
</main>
</body>
</html>
"#,
        lang = lang.tag(),
        title = c.title,
        heading = c.heading,
        of_five = c.of_five,
        score_word = c.score,
        as_of_word = c.as_of,
        model_word = c.model,
        gives = c.gives,
        lowers = c.lowers,
        raising = c.raising,
        recomputed = c.recomputed,
        about_returns = esc(&v.about_returns),
        star = v.star,
        stars = stars,
        score = v.score,
        as_of = esc(&v.as_of),
        model = esc(&v.model_version),
        corrected = if v.corrected_by_cases.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = v
                .corrected_by_cases
                .iter()
                .map(|c| format!("#{c}"))
                .collect();
            format!(
                "\n    <p class=\"good\" id=\"corrected\">{}</p>",
                esc(&(c.corrected_by)(&ids.join(", ")))
            )
        },
        benefits = benefits,
        reasons = reasons,
        next = next,
        style = STYLE,
    )
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_is_rfc_4648() {
        for (raw, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(raw.as_bytes()), b64);
        }
    }
}
