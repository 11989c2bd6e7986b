//! The reviewers' pages (`GET /review`, `GET /review/cases/{id}/page`), server-rendered
//! HTML in zh-CN and en, no script: the queue (breached cases first, then the soonest
//! deadline) and one case with both parties' statements, its trail and what a
//! reviewer may do next (the API calls, with the exact body to send).

use super::cases::CaseDto;
use super::words::Lang;

use super::page::esc;

struct Words {
    queue: &'static str,
    empty: &'static str,
    case: &'static str,
    kind: &'static str,
    buyer: &'static str,
    ret: &'static str,
    state: &'static str,
    decide_by: &'static str,
    respond_by: &'static str,
    breached: &'static str,
    trail: &'static str,
    decision: &'static str,
    next: &'static str,
    claim_hint: &'static str,
    decide_hint: &'static str,
    back: &'static str,
    record: &'static str,
    never_decided: &'static str,
    decided_with: &'static str,
    amount: &'static str,
    requested: &'static str,
    money: &'static str,
    star_now: &'static str,
    contested: &'static str,
    points_at_open: &'static str,
}

fn words(lang: Lang) -> Words {
    match lang {
        Lang::En => Words {
            queue: "Cases to review",
            empty: "No case waits for a reviewer.",
            case: "Case",
            kind: "Kind",
            buyer: "Buyer",
            ret: "Return",
            state: "State",
            decide_by: "Decide by",
            respond_by: "Other party answers by",
            breached: "past its deadline",
            trail: "What happened",
            decision: "Decision",
            next: "Next step",
            claim_hint: "Claim the case (a 60-minute lease, renewed by claiming again):",
            decide_hint: "Then decide, with a note both parties will read:",
            back: "Back to the queue",
            record: "The record",
            never_decided: "The ledger has no decision for this return.",
            decided_with: "Decided with",
            amount: "amount",
            requested: "requested",
            money: "Money",
            star_now: "The buyer's star now",
            contested: "Reason contested",
            points_at_open: "points it earned when the case was opened",
        },
        Lang::ZhCn => Words {
            queue: "待审核的申诉",
            empty: "目前没有等待审核的申诉。",
            case: "申诉",
            kind: "类型",
            buyer: "买家",
            ret: "退货",
            state: "状态",
            decide_by: "裁决期限",
            respond_by: "对方答复期限",
            breached: "已超期",
            trail: "处理记录",
            decision: "裁决",
            next: "下一步",
            claim_hint: "认领此申诉（租约 60 分钟，再次认领即续期）：",
            decide_hint: "然后裁决，并写明双方都会看到的理由：",
            back: "返回列表",
            record: "记录",
            never_decided: "账本中没有此退货的决定。",
            decided_with: "决定时的星级",
            amount: "金额",
            requested: "申请时间",
            money: "资金",
            star_now: "买家当前星级",
            contested: "被申诉的原因",
            points_at_open: "申诉提交时该项得分",
        },
    }
}

/// The pages' one stylesheet, allowed by its hash in [`CSP`] (no other style, no
/// script, no frame).
const STYLE: &str = "
  body { font-family: system-ui, -apple-system, \"Segoe UI\", sans-serif; margin: 0; background: #f6f7fb; color: #1d2330; }
  main { max-width: 960px; margin: 0 auto; padding: 24px 16px 48px; }
  .card { background: #fff; border-radius: 12px; padding: 16px 20px; margin: 12px 0; box-shadow: 0 1px 4px rgba(0,0,0,.08); }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 8px; border-bottom: 1px solid #e8eaf2; vertical-align: top; }
  .breached { color: #c5221f; font-weight: 600; }
  .meta { color: #69708a; font-size: .85rem; }
  pre { background: #f1f3f8; padding: 8px; border-radius: 6px; overflow-x: auto; }
  blockquote { margin: 4px 0 8px; padding-left: 10px; border-left: 3px solid #d8dbe3; }
";

/// `Content-Security-Policy` of the reviewers' pages: [`STYLE`] by its SHA-256 and
/// nothing else; no frame may embed them; links leave no `Referer`.
pub static CSP: std::sync::LazyLock<axum::http::HeaderValue> =
    std::sync::LazyLock::new(|| super::page::style_csp(STYLE));

fn page(lang: Lang, title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body><main>
<h1>{title}</h1>
{body}
</main></body>
</html>
"#,
        lang = lang.tag(),
        title = esc(title),
    )
}

/// The queue page.
pub fn queue(cases: &[CaseDto], lang: Lang) -> String {
    let w = words(lang);
    let body = if cases.is_empty() {
        format!("<p class=\"card\">{}</p>", w.empty)
    } else {
        let rows: String = cases
            .iter()
            .map(|c| {
                let late = if c.breached {
                    format!(" <span class=\"breached\">{}</span>", w.breached)
                } else {
                    String::new()
                };
                format!(
                    "<tr><td><a href=\"/review/cases/{id}/page\">#{id}</a></td><td>{kind}</td><td>{buyer}</td><td>{ret}</td><td>{state}</td><td>{by}{late}</td></tr>",
                    id = c.case_id,
                    kind = esc(&c.kind),
                    buyer = c.buyer_id,
                    ret = c.return_id.map(|r| r.to_string()).unwrap_or_default(),
                    state = esc(&c.state),
                    by = esc(&c.decide_by_local),
                )
            })
            .collect();
        format!(
            "<div class=\"card\"><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{rows}</tbody></table></div>",
            w.case, w.kind, w.buyer, w.ret, w.state, w.decide_by
        )
    };
    page(lang, w.queue, &body)
}

/// One case's page.
pub fn case(c: &CaseDto, record: &str, lang: Lang) -> String {
    let w = words(lang);
    let late = if c.breached {
        format!(" <span class=\"breached\">{}</span>", w.breached)
    } else {
        String::new()
    };
    let respond = c
        .respond_by_local
        .as_ref()
        .map(|t| format!("<p>{}: {}</p>", w.respond_by, esc(t)))
        .unwrap_or_default();
    let events: String = c
        .events
        .iter()
        .map(|e| {
            let said = e
                .statement
                .as_ref()
                .map(|s| format!("<blockquote>{}</blockquote>", esc(s)))
                .unwrap_or_default();
            let links: String = e
                .evidence
                .iter()
                .map(|l| {
                    format!(
                        "<li><a href=\"{0}\" rel=\"noreferrer\">{0}</a></li>",
                        esc(l)
                    )
                })
                .collect();
            let links = if links.is_empty() {
                String::new()
            } else {
                format!("<ul>{links}</ul>")
            };
            format!(
                "<li><span class=\"meta\">{}</span> <strong>{}</strong> {}{said}{links}</li>",
                esc(&e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                esc(&e.actor),
                esc(&e.what)
            )
        })
        .collect();
    let next = match &c.decision {
        Some(d) => format!(
            "<div class=\"card\"><h2>{}</h2><p><strong>{}</strong> ({})</p><blockquote>{}</blockquote></div>",
            w.decision,
            esc(d),
            esc(c.reviewer.as_deref().unwrap_or_default()),
            esc(c.note.as_deref().unwrap_or_default())
        ),
        None => format!(
            "<div class=\"card\"><h2>{next}</h2><p>{claim}</p><pre>POST /review/cases/{id}/claim\n{{\"reviewer\": \"your.name\"}}</pre><p>{decide}</p><pre>POST /review/cases/{id}/decision\n{{\"reviewer\": \"your.name\", \"decision\": \"buyer_won\" | \"merchant_won\" | \"split\", \"note\": \"…\"}}</pre></div>",
            next = w.next,
            claim = w.claim_hint,
            decide = w.decide_hint,
            id = c.case_id
        ),
    };
    let body = format!(
        "<p><a href=\"/review\">{back}</a></p>\
         <div class=\"card\"><p>{kind_l}: <strong>{kind}</strong> · {buyer_l}: {buyer} · {ret_l}: {ret} · {state_l}: <strong>{state}</strong></p>\
         <p>{by_l}: {by}{late}</p>{respond}</div>{record}\
         <div class=\"card\"><h2>{trail}</h2><ol>{events}</ol></div>{next}",
        back = w.back,
        kind_l = w.kind,
        kind = esc(&c.kind),
        buyer_l = w.buyer,
        buyer = c.buyer_id,
        ret_l = w.ret,
        ret = c
            .return_id
            .map(|r| r.to_string())
            .unwrap_or_else(|| "—".into()),
        state_l = w.state,
        state = esc(&c.state),
        by_l = w.decide_by,
        by = esc(&c.decide_by_local),
        trail = w.trail,
    );
    page(lang, &format!("{} #{}", w.case, c.case_id), &body)
}

/// What a reviewer sees of the subject: the return's record from the ledger (the star
/// it was decided with, amount, request time, where its money is) and the buyer's
/// star and reasons now (corrected by any strike), with the reason a rating case
/// contests and the points it earned when the case was opened.
pub fn record(
    c: &CaseDto,
    rec: Option<&fastrefund_core::ledger::ReturnRec>,
    star_now: Option<(u8, Vec<String>, String)>,
    lang: Lang,
) -> String {
    use fastrefund_core::ledger::ReturnState;
    let w = words(lang);
    let mut rows = String::new();
    if c.return_id.is_some() {
        match rec {
            None => rows.push_str(&format!("<p>{}</p>", w.never_decided)),
            Some(r) => {
                let zh = matches!(lang, Lang::ZhCn);
                let advanced = |a: &fastrefund_core::ledger::Advance| {
                    if zh {
                        format!("已垫付 {}（运单 {}）", a.amount, a.tracking_number)
                    } else {
                        format!("advanced {} on {}", a.amount, a.tracking_number)
                    }
                };
                let money = match (&r.state, zh) {
                    (ReturnState::Held, false) => "held: no instant release".to_string(),
                    (ReturnState::Held, true) => "未即时放行".to_string(),
                    (ReturnState::Released, false) => "released, not advanced".to_string(),
                    (ReturnState::Released, true) => "已放行，未垫付".to_string(),
                    (ReturnState::Advanced(a), _) => advanced(a),
                    (
                        ReturnState::Settled {
                            advance,
                            outcome,
                            corrected,
                            ..
                        },
                        _,
                    ) => {
                        let (word, fixed) = if zh {
                            ("；结果", "，已更正为")
                        } else {
                            ("; outcome", ", corrected to")
                        };
                        format!(
                            "{}{word} {}{}",
                            advanced(advance),
                            outcome.as_str(),
                            corrected
                                .map(|o| format!("{fixed} {}", o.as_str()))
                                .unwrap_or_default()
                        )
                    }
                    (ReturnState::Kept { amount, .. }, false) => {
                        format!("refunded without return: {amount}")
                    }
                    (ReturnState::Kept { amount, .. }, true) => format!("仅退款：{amount}"),
                };
                rows.push_str(&format!(
                    "<p>{}: <strong>{}★</strong> · {}: {} · {}: {}</p><p>{}: {}</p>",
                    w.decided_with,
                    r.star.get(),
                    w.amount,
                    r.amount,
                    w.requested,
                    esc(&r
                        .requested_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                    w.money,
                    esc(&money)
                ));
            }
        }
    }
    if let Some((star, reasons, as_of)) = star_now {
        rows.push_str(&format!(
            "<p>{}: <strong>{star}★</strong> ({as_of}) · {}</p>",
            w.star_now,
            esc(&reasons.join(", "))
        ));
    }
    if let (Some(code), Some(points)) = (&c.reason_code, c.reason_points) {
        rows.push_str(&format!(
            "<p>{}: <code>{}</code> · {}: {points}</p>",
            w.contested,
            esc(code),
            w.points_at_open
        ));
    }
    format!("<div class=\"card\"><h2>{}</h2>{rows}</div>", w.record)
}

/// The "your cases" section of a buyer's page: each case's state, its deadline in the
/// platform's time zone, and the decision once there is one. Empty without cases.
pub fn buyer_cases(cases: &[CaseDto], lang: Lang) -> String {
    if cases.is_empty() {
        return String::new();
    }
    let (title, decided, waiting) = match lang {
        Lang::En => ("Your cases", "decided", "a person decides by"),
        Lang::ZhCn => ("您的申诉", "已裁决", "人工裁决期限"),
    };
    let rows: String = cases
        .iter()
        .map(|c| {
            let what = match &c.decision {
                Some(d) => format!("{decided}: <strong>{}</strong>", esc(d)),
                None => format!("{waiting} {}", esc(&c.decide_by_local)),
            };
            format!(
                "<li>#{} · {} · {} · {what}</li>",
                c.case_id,
                esc(&c.kind),
                esc(&c.state)
            )
        })
        .collect();
    format!(
        "  <section class=\"card\" id=\"cases\">\n    <h2>{title}</h2>\n    <ul>{rows}</ul>\n  </section>\n"
    )
}
