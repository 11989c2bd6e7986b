//! The buyer contests from their own page: a reason of their star (a `rating` case) or
//! a loss counted against them (an `outcome` case on that return), with a statement.
//!
//! A plain HTML form (no script: the page's CSP allows none), posted to
//! `POST /buyers/{id}/cases` with the page's own signed link in the query, so the
//! same capability that opens the page opens the buyer's cases, and only theirs. The
//! case opens exactly as through `POST /v1/cases` (one function, [`open_for`]); the
//! answer is a `303 See Other` back to the page, where the new case is listed with its
//! deadline. A refusal (a statement too long, a return that is not theirs, a case
//! already open) comes back as a page that says what was wrong, in the buyer's
//! language, with a link back.

use super::AppState;
use super::cases::open_for;
use super::error::ApiError;
use super::extract::IdPath;
use super::link::{link_ok, link_params};
use super::page::{PageParts, esc};
use super::words::Lang;
use crate::dto::RatingResponse;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use fastrefund_core::cases::{CaseKind, Opening, Party};
use fastrefund_core::domain::{BuyerId, ReturnId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the form posts.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ContestForm {
    /// `reason:<code>`, a reason of the buyer's star, or `loss`, the outcome of a
    /// return counted against them.
    #[schema(example = "loss")]
    pub contest: String,
    /// The return it is about (required for a loss; digits, or empty).
    #[serde(default)]
    #[schema(example = "1001")]
    pub return_id: String,
    /// What happened, at most 4,000 characters.
    #[schema(max_length = 4000)]
    pub statement: String,
}

/// The words of the form and its answers.
struct Words {
    title: &'static str,
    intro: &'static str,
    a_reason: &'static str,
    a_loss: &'static str,
    return_label: &'static str,
    statement_label: &'static str,
    send: &'static str,
    refused: &'static str,
    back: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::En => Words {
            title: "Contest your rating",
            intro: "If a reason below is wrong, or a loss was counted against you that was not yours, say why: a person decides, before the deadline shown.",
            a_reason: "This reason is wrong",
            a_loss: "A return was counted as my loss, wrongly",
            return_label: "Return number (for a loss, or the return the reason is about)",
            statement_label: "What happened (at most 4,000 characters)",
            send: "Send to a person",
            refused: "Your case could not be opened",
            back: "Back to your rating",
        },
        Lang::ZhCn => Words {
            title: "对评级提出申诉",
            intro: "如果下列原因有误，或某次退货被错误地算作您的损失，请说明理由：将由人工在显示的期限前裁决。",
            a_reason: "此原因有误",
            a_loss: "某次退货被错误地算作我的损失",
            return_label: "退货单号（申诉损失时必填，或原因所涉及的退货）",
            statement_label: "事情经过（最多 4000 字）",
            send: "提交人工处理",
            refused: "未能提交申诉",
            back: "返回我的评级",
        },
    }
}

/// The form, for the page of `buyer` opened with `query` (its signed link, which the
/// form posts back with).
pub fn form(v: &RatingResponse, buyer: u64, query: Option<&str>, lang: Lang) -> String {
    let w = words(lang);
    let action = match query {
        Some(q) => format!("/buyers/{buyer}/cases?{}", esc(q)),
        None => format!("/buyers/{buyer}/cases"),
    };
    let options: String = v
        .reasons
        .iter()
        .map(|r| {
            format!(
                "<option value=\"reason:{}\">{}: {}</option>",
                esc(&r.code),
                w.a_reason,
                esc(&r.message)
            )
        })
        .chain(std::iter::once(format!(
            "<option value=\"loss\">{}</option>",
            w.a_loss
        )))
        .collect();
    format!(
        "  <section class=\"card\" id=\"contest\">\n    <h2>{title}</h2>\n    <p class=\"meta\">{intro}</p>\n    \
         <form method=\"post\" action=\"{action}\">\n      \
         <p><select name=\"contest\" required>{options}</select></p>\n      \
         <p><label>{return_label}<br><input name=\"return_id\" inputmode=\"numeric\" pattern=\"[0-9]*\" maxlength=\"20\"></label></p>\n      \
         <p><label>{statement_label}<br><textarea name=\"statement\" required maxlength=\"4000\" rows=\"4\"></textarea></label></p>\n      \
         <p><button type=\"submit\">{send}</button></p>\n    </form>\n  </section>\n",
        title = w.title,
        intro = w.intro,
        return_label = w.return_label,
        statement_label = w.statement_label,
        send = w.send,
    )
}

/// Open a case from the buyer's page (an HTML form).
#[utoipa::path(
    post, path = "/buyers/{buyer_id}/cases", tag = "buyers",
    params(
        ("buyer_id" = u64, Path, description = "The buyer"),
        ("exp" = Option<i64>, Query, description = "Signed link: expiry, unix seconds"),
        ("sig" = Option<String>, Query, pattern = "^[0-9a-f]{64}$", description = "Signed link: HMAC-SHA256 signature, hex"),
    ),
    request_body(content = ContestForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "Opened: back to the buyer's page (`Location`, and a link to it)", body = String, content_type = "text/html"),
        (status = 400, description = "A malformed form or link (a page that says so)", body = String, content_type = "text/html"),
        (status = 401, description = "Neither the API token nor a valid signed link", body = String, content_type = "text/html"),
        (status = 404, description = "Unknown buyer or return", body = String, content_type = "text/html"),
        (status = 408, description = "The form was not sent in time", body = String, content_type = "text/html"),
        (status = 409, description = "A case on the same subject is open", body = String, content_type = "text/html"),
        (status = 422, description = "A field is wrong (named on the page)", body = String, content_type = "text/html"),
        (status = 503, description = "Not ready, or the ledger cannot record now", body = String, content_type = "text/html"),
    ),
    security(("bearer" = []), ())
)]
pub async fn contest(
    State(state): State<AppState>,
    IdPath(buyer): IdPath,
    RawQuery(query): RawQuery,
    parts: PageParts,
    form: Result<Form<ContestForm>, FormRejection>,
) -> Response {
    let lang = parts.lang();
    let back = match &query {
        Some(q) => format!("/buyers/{buyer}?{q}"),
        None => format!("/buyers/{buyer}"),
    };
    match open(&state, buyer, query.as_deref(), &parts, form).await {
        Ok(()) => {
            let to = format!("{back}#cases");
            let mut r = (
                StatusCode::SEE_OTHER,
                Html(format!(
                    "<!doctype html>\n<a href=\"{}\">{}</a>\n",
                    esc(&to),
                    words(lang).back
                )),
            )
                .into_response();
            if let Ok(to) = header::HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, to);
            }
            r
        }
        Err(e) => refused(&e, &back, lang),
    }
}

async fn open(
    state: &AppState,
    buyer: u64,
    query: Option<&str>,
    parts: &PageParts,
    form: Result<Form<ContestForm>, FormRejection>,
) -> Result<(), ApiError> {
    let link = link_params(query)?;
    if !(parts.api_token() || link_ok(state, buyer, link)) {
        return Err(ApiError::unauthorized());
    }
    let Form(f) = form.map_err(|e| {
        ApiError::field("form", super::error::ErrorCode::InvalidField, e.body_text())
    })?;
    let return_id = match f.return_id.trim() {
        "" => None,
        r => Some(ReturnId(r.parse::<u64>().map_err(|_| {
            ApiError::field(
                "return_id",
                super::error::ErrorCode::InvalidId,
                format!("`return_id` must be a whole number, not {r:?}"),
            )
        })?)),
    };
    let (kind, statement, contested) = match f.contest.split_once(':') {
        Some(("reason", code)) => {
            // Only a reason the buyer is shown can be contested from the page.
            let c = super::cases::contested(state, BuyerId(buyer), code).map_err(|e| ApiError {
                field: Some("contest".into()),
                ..e
            })?;
            (
                CaseKind::Rating,
                format!("[{code}] {}", f.statement),
                Some(c),
            )
        }
        None if f.contest == "loss" => {
            if return_id.is_none() {
                return Err(ApiError::field(
                    "return_id",
                    super::error::ErrorCode::InvalidField,
                    "`return_id` names the return whose loss is contested",
                ));
            }
            (CaseKind::Outcome, f.statement, None)
        }
        _ => {
            return Err(ApiError::field(
                "contest",
                super::error::ErrorCode::InvalidField,
                format!(
                    "`contest` must be `reason:<code>` or `loss`, not {:?}",
                    f.contest
                ),
            ));
        }
    };
    let opening = Opening {
        kind,
        buyer_id: BuyerId(buyer),
        return_id,
        order_id: None,
        opened_by: Party::Buyer,
        statement,
        evidence: Vec::new(),
        contested,
    };
    open_for(state, opening).await.map(drop)
}

/// A refusal as a page: what was wrong, and the way back.
fn refused(e: &ApiError, back: &str, lang: Lang) -> Response {
    let w = words(lang);
    let field = e
        .field
        .as_deref()
        .map(|f| format!(" (<code>{}</code>)", esc(f)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{style}</style>\n</head>\n<body>\n<main>\n  \
         <section class=\"card\">\n    <h1>{title}</h1>\n    <p>{message}{field}</p>\n    \
         <p><a href=\"{back}\">{back_word}</a></p>\n  </section>\n</main>\n</body>\n</html>\n",
        lang = lang.tag(),
        title = w.refused,
        style = super::page::STYLE,
        message = esc(&e.message),
        back = esc(back),
        back_word = w.back,
    );
    (e.status, Html(html)).into_response()
}
