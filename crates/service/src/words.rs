//! What a buyer reads, in English and in simplified Chinese (zh-CN), chosen from the
//! request's `Accept-Language` (negotiated with fluent-langneg; English when neither is
//! asked for). The reasons' words come from the model (`model.json` carries both
//! languages); the page's own words, the benefits and what the rating does with
//! returns are here.
//!
//! [`about_returns`] is written from the model, not for it: it promises only what the
//! model's points table guarantees ([`fastrefund_core::scoring::safety`]), and a model
//! that keeps no promise gets no promise.

use axum::http::{HeaderMap, header};
use fastrefund_core::domain::{ReasonCode, Star};
use fastrefund_core::policy::Policy;
use fastrefund_core::scoring::{ReturnEffect, Scorecard, safety};
use fluent_langneg::{
    LanguageIdentifier, NegotiationStrategy, negotiate_languages, parse_accepted_languages,
};

/// A language the buyer's words exist in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    ZhCn,
}

impl Lang {
    /// The BCP 47 tag (`Content-Language`, the model's translation key).
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The language an `Accept-Language` header asks for, of those we have.
    pub fn negotiate(accept: Option<&str>) -> Lang {
        let Some(accept) = accept else {
            return Lang::En;
        };
        let requested = parse_accepted_languages(accept);
        let available: Vec<LanguageIdentifier> = ["en", "zh-CN"]
            .iter()
            .filter_map(|t| t.parse().ok())
            .collect();
        let chosen = negotiate_languages(
            &requested,
            &available,
            available.first(),
            NegotiationStrategy::Lookup,
        );
        match chosen.first() {
            Some(l) if l.language.as_str() == "zh" => Lang::ZhCn,
            _ => Lang::En,
        }
    }

    /// [`Lang::negotiate`] on a request's headers.
    pub fn of(headers: &HeaderMap) -> Lang {
        Lang::negotiate(
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }
}

/// The page's own words.
pub struct Chrome {
    pub title: &'static str,
    pub heading: &'static str,
    pub of_five: &'static str,
    pub score: &'static str,
    pub as_of: &'static str,
    pub model: &'static str,
    pub gives: &'static str,
    pub lowers: &'static str,
    pub raising: &'static str,
    pub what_helps: &'static str,
    pub nothing_holds: &'static str,
    pub highest: &'static str,
    /// "You are {points} points from {star} stars."
    pub points_from: fn(i32, u8) -> String,
    pub recomputed: &'static str,
    /// "Corrected by case {ids}: a reviewer struck a reason …"
    pub corrected_by: fn(&str) -> String,
}

pub fn chrome(lang: Lang) -> Chrome {
    match lang {
        Lang::En => Chrome {
            title: "Your shopping rating",
            heading: "Your shopping rating",
            of_five: "of 5 stars",
            score: "score",
            as_of: "As of",
            model: "model",
            gives: "What your rating gives you",
            lowers: "What lowers your rating",
            raising: "Raising your rating",
            what_helps: "What helps",
            nothing_holds: "Nothing is holding your rating back. Keep it up!",
            highest: "You have the highest rating.",
            points_from: |p, s| format!("You are <strong>{p} points</strong> from {s} stars."),
            recomputed: "Your rating is recomputed regularly from your orders, returns and disputes.",
            corrected_by: |ids| {
                format!(
                    "Corrected by case {ids}: a reviewer found a reason wrong, and it no longer counts against you."
                )
            },
        },
        Lang::ZhCn => Chrome {
            title: "您的购物评级",
            heading: "您的购物评级",
            of_five: "星（满分 5 星）",
            score: "分数",
            as_of: "截至",
            model: "模型",
            gives: "您的评级带来的服务",
            lowers: "拉低您评级的原因",
            raising: "如何提高评级",
            what_helps: "建议",
            nothing_holds: "没有任何因素拉低您的评级，请继续保持！",
            highest: "您已是最高评级。",
            points_from: |p, s| format!("距离 {s} 星还差 <strong>{p} 分</strong>。"),
            recomputed: "您的评级会根据您的订单、退货和纠纷定期重新计算。",
            corrected_by: |ids| {
                format!("已由申诉 {ids} 更正：审核员认定一项原因有误，它不再计入您的评级。")
            },
        },
    }
}

/// What a star gives under a policy.
pub fn benefits(star: Star, policy: &Policy, lang: Lang) -> Vec<String> {
    let (w, a, b, tz, limit, hours, min) = (
        policy.window_days,
        policy.pickup_start_hour,
        policy.pickup_end_hour,
        &policy.time_zone,
        policy.limit_for(star),
        policy.merchant_answer_hours,
        policy.min_star.get(),
    );
    let mut out = match (star >= policy.min_star, lang) {
        (true, Lang::En) => vec![
            format!(
                "Instant return address: no waiting for the merchant on no-reason returns asked within {w} days of delivery"
            ),
            format!("Courier pickup booked for you between {a:02}:00 and {b:02}:00 ({tz})"),
            format!(
                "Refund paid by the platform as soon as the tracking number is in, up to {limit} outstanding"
            ),
        ],
        (true, Lang::ZhCn) => vec![
            format!("即时获得退货地址：签收后 {w} 天内的无理由退货，无需等待商家"),
            format!("为您预约快递上门取件，时间 {a:02}:00 至 {b:02}:00（{tz}）"),
            format!("填写快递单号后，平台立即为您垫付退款，未结清额度最高 {limit}"),
        ],
        (false, Lang::En) => vec![
            format!("Returns are answered by the merchant within {hours} hours"),
            format!("Reach {min} stars for instant returns, courier pickup and refunds in seconds"),
        ],
        (false, Lang::ZhCn) => vec![
            format!("退货申请由商家在 {hours} 小时内答复"),
            format!("达到 {min} 星即可享受即时退货、上门取件和秒到退款"),
        ],
    };
    out.extend(refund_only_benefit(star, policy, lang));
    out
}

/// The refund-without-return benefit of a star, where the policy gives it: what it
/// is, up to which price, and the 30-day limit; or, below its star, what reaches it.
pub fn refund_only_benefit(star: Star, policy: &Policy, lang: Lang) -> Option<String> {
    let r = &policy.refund_only;
    if !r.enabled {
        return None;
    }
    let (max, cap, min) = (r.max_amount, r.per_buyer_30_days, r.min_star.get());
    Some(match (star >= r.min_star, lang) {
        (true, Lang::En) => format!(
            "Refund without return: for an item of up to {max}, you keep it and get your money back without sending it (up to {cap} in 30 days)"
        ),
        (true, Lang::ZhCn) => {
            format!("仅退款：{max} 以内的商品无需寄回即可退款（30 天内累计最高 {cap}）")
        }
        (false, Lang::En) => {
            format!("Reach {min} stars for refunds without sending cheap items back")
        }
        (false, Lang::ZhCn) => format!("达到 {min} 星即可享受低价商品仅退款，无需寄回"),
    })
}

/// Words for the buyer on a decision's refund without return: that no return is needed
/// and why (their star, the item's price and the most refunded so); `None` when the
/// decision made no offer.
pub fn refund_only_words(reasons: &[ReasonCode], lang: Lang) -> Option<String> {
    reasons.iter().find_map(|r| match r {
        ReasonCode::RefundWithoutReturn { amount, max, star } => Some(match lang {
            Lang::En => format!(
                "No need to send this item back: your {star}-star shopping rating lets you keep an item of {amount} (up to {max}) and get your money back without returning it."
            ),
            Lang::ZhCn => format!(
                "无需寄回商品：您的购物评级为 {star} 星，价格 {amount} 的商品（{max} 以内）可仅退款，无需退货。"
            ),
        }),
        _ => None,
    })
}

/// What the model does with returns, in words it keeps (module doc). The definition of
/// an honest return matches [`ReturnEffect`]'s.
pub fn about_returns(card: &Scorecard, policy: &Policy, lang: Lang) -> String {
    let model = card.model();
    let keeps = safety::applies(model) && safety::violations(card).is_empty();
    if !keeps {
        return match lang {
            Lang::En => "Your rating is computed from your orders, returns and disputes.".into(),
            Lang::ZhCn => "您的评级根据您的订单、退货和纠纷计算。".into(),
        };
    }
    let volume = model
        .features
        .iter()
        .any(|f| f.on_return == Some(ReturnEffect::Volume));
    let floor = model.volume_floor_star.unwrap_or(5);
    let instant = floor >= policy.min_star.get();
    match (lang, volume) {
        (Lang::En, true) => format!(
            "Returning goods never raises your rating. How many returns you make can lower it a little, but on its own never below {floor} stars{}. One more return asked within 2 days of delivery, shipped within 2 days and received intact costs at most one star. What counts more is what happens to returns: parcels arriving empty or used, refunds for parcels never sent, returns asked at the very end of the window or shipped late. Returns caused by a merchant's fault never count, nor does an outcome later corrected in your favour.",
            if instant {
                ", so it never costs you instant returns"
            } else {
                ""
            }
        ),
        (Lang::En, false) => "Returning goods never raises your rating, and how many returns you make does not count: a return asked within 2 days of delivery, shipped within 2 days and received intact changes nothing. What counts is what happens to returns: parcels arriving empty or used, refunds for parcels never sent, returns asked at the very end of the window or shipped late. Returns caused by a merchant's fault never count, nor does an outcome later corrected in your favour.".into(),
        (Lang::ZhCn, true) => format!(
            "退货绝不会提高您的评级。退货的数量可能使评级略有下降，但仅凭数量绝不会低于 {floor} 星{}。签收后 2 天内申请、申请后 2 天内寄出并完好送达的退货，每多一笔最多影响一颗星。更重要的是退货的结果：包裹是空的或用过的、已退款的包裹从未寄出、在退货期限最后几天才申请或寄出太晚。因商家过错产生的退货从不计入，事后改判为对您有利的结果也不计入。",
            if instant {
                "，因此不会让您失去即时退货"
            } else {
                ""
            }
        ),
        (Lang::ZhCn, false) => "退货绝不会提高您的评级，退货的数量也不计入：签收后 2 天内申请、申请后 2 天内寄出并完好送达的退货不会改变任何结果。计入的是退货的结果：包裹是空的或用过的、已退款的包裹从未寄出、在退货期限最后几天才申请或寄出太晚。因商家过错产生的退货从不计入，事后改判为对您有利的结果也不计入。".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_chinese_or_falls_back_to_english() {
        assert_eq!(Lang::negotiate(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(Some("zh")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(Some("zh-Hans-CN")), Lang::ZhCn);
        assert_eq!(Lang::negotiate(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr-FR")), Lang::En);
        assert_eq!(Lang::negotiate(Some("")), Lang::En);
        assert_eq!(Lang::negotiate(Some(";;,,q=")), Lang::En);
        assert_eq!(Lang::negotiate(None), Lang::En);
        assert_eq!(
            Lang::negotiate(Some("en-US,zh-CN")),
            Lang::En,
            "order of preference"
        );
    }
}
