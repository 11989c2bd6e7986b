//! The buyer features' words in simplified Chinese (zh-CN): the programme's buyers read
//! Chinese. The trainer writes them into the model beside the English of
//! [`crate::features::FEATURES`], so the service needs nothing but `model.json` to
//! explain a rating in either language; a test holds every feature to having both.
//!
//! Entries: (feature, message, advice, words when the value is missing).

use fastrefund_core::scoring::Translation;

/// The zh-CN tag, as `Accept-Language` and the model name it.
pub const ZH_CN: &str = "zh-CN";

type Entry = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
);

const KEEP: &str = "您保留的订单会积累您的记录";
const ZH: &[Entry] = &[
    (
        "account_age_days",
        "您的账户还很新",
        "继续购物：您的评级会随着购物记录的积累而提高",
        None,
    ),
    (
        "orders_90",
        "近期订单较少，可供参考的记录不多",
        "近期完成的订单会积累您的记录",
        None,
    ),
    ("orders_365", "过去一年的购物记录较少", KEEP, None),
    ("spend_365", "过去一年的购物记录较少", KEEP, None),
    (
        "returns_90",
        "最近 90 天退货较多",
        "多保留您订购的商品会提高评级；仅凭退货的数量，绝不会让您失去即时退货资格",
        None,
    ),
    (
        "returns_365",
        "过去一年退货较多",
        "多保留您订购的商品会提高评级；仅凭退货的数量，绝不会让您失去即时退货资格",
        None,
    ),
    (
        "relative_return_rate_365",
        "与您所购品类的常见水平相比，您的退货偏多",
        "多保留您订购的商品会提高评级",
        Some(("过去一年没有订单，无法比较您的退货", KEEP)),
    ),
    (
        "return_value_share_365",
        "您的消费金额中有较大比例被退回",
        "多保留您订购的商品会提高评级",
        Some(("过去一年没有消费，无法比较您的退货", KEEP)),
    ),
    (
        "no_reason_share_365",
        "您的大部分退货没有说明原因",
        "告诉商家商品有什么问题会有帮助",
        Some(("过去一年没有退货可供评估", KEEP)),
    ),
    (
        "advanced_365",
        "平台为您垫付了较多退款",
        "仅凭退货的数量，绝不会让您失去即时退货资格",
        None,
    ),
    (
        "mismatch_365",
        "退回的包裹是空的、用过的或装着别的商品",
        "请原样寄回您收到的商品，不要使用",
        None,
    ),
    (
        "not_shipped_365",
        "已垫付退款的包裹从未寄出",
        "凡已收到退款的退货，请务必寄回",
        None,
    ),
    (
        "bad_outcomes_90",
        "最近 90 天有一笔退货出了问题",
        "接下来几个月保持良好记录会提高您的评级",
        None,
    ),
    (
        "advanced_loss_share_365",
        "垫付的退款以损失告终",
        "请按时原样寄回您收到的商品",
        Some(("过去一年没有已结清的垫付退款可供评估", KEEP)),
    ),
    (
        "non_receipt_claims_365",
        "您经常报告包裹未收到",
        "报告包裹丢失之前，请先向快递员和邻居确认",
        None,
    ),
    (
        "disputes_opened_365",
        "您的订单纠纷较多",
        "直接与商家协商解决问题会有帮助",
        None,
    ),
    (
        "disputes_lost_365",
        "有纠纷被判定对您不利",
        "请只在证据充分时发起纠纷",
        None,
    ),
    (
        "fraud_flags_365",
        "有纠纷被认定存在不诚实行为",
        "接下来几个月保持良好记录会提高您的评级",
        None,
    ),
    (
        "days_to_ship_mean_365",
        "您寄回退货用时较长",
        "申请退货后，请在一两天内寄出",
        Some(("过去一年没有寄出的退货，无法评估寄回速度", KEEP)),
    ),
    (
        "days_since_last_bad",
        "最近有退货或纠纷出了问题",
        "每一个没有问题的月份都会提高您的评级",
        Some(("您的记录还比较短", "每一个没有问题的月份都会提高您的评级")),
    ),
    (
        "days_to_request_mean_365",
        "您经常在退货期限快结束时才申请退货",
        "收到商品后请尽早决定是否退货",
        Some(("过去一年没有退货可供评估", KEEP)),
    ),
    (
        "late_return_share_365",
        "您经常在退货期限的最后几天退货",
        "收到商品后请尽早决定是否退货",
        Some(("过去一年没有无理由退货可供评估", KEEP)),
    ),
    (
        "bad_outcomes_ever",
        "过去曾有退货或纠纷出了问题",
        "长期的良好记录会抵消过去的问题",
        None,
    ),
    (
        "intact_share_365",
        "并非每个退回的包裹都完好无损",
        "请原样寄回您收到的商品，不要使用",
        Some(("过去一年没有已结清的退货可以证明完好寄回", KEEP)),
    ),
    (
        "late_no_reason_365",
        "您经常在退货期限的最后几天退货",
        "收到商品后请尽早决定是否退货",
        None,
    ),
    (
        "slow_ship_365",
        "您有部分退货寄出较晚",
        "申请退货后，请在一两天内寄出",
        None,
    ),
    (
        "new_account_spend",
        "新账户在短时间内消费较多",
        "您的评级会随着账户时间的增长而提高",
        None,
    ),
    (
        "late_return_rate_365",
        "相对于您的订单数，您经常在退货期限的最后几天退货",
        "收到商品后请尽早决定是否退货",
        None,
    ),
    (
        "slow_ship_rate_365",
        "相对于您的订单数，较多退货寄出较晚",
        "申请退货后，请在一两天内寄出",
        None,
    ),
];

/// A buyer feature's words in zh-CN.
pub fn zh_cn(feature: &str) -> Option<Translation> {
    ZH.iter()
        .find(|e| e.0 == feature)
        .map(|(_, message, advice, missing)| Translation {
            message: (*message).into(),
            advice: (*advice).into(),
            missing_message: missing.map(|m| m.0.into()),
            missing_advice: missing.map(|m| m.1.into()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FEATURES;

    #[test]
    fn every_feature_has_its_words_in_both_languages() {
        for f in FEATURES {
            let zh = zh_cn(f.name).unwrap_or_else(|| panic!("no zh-CN words for {}", f.name));
            assert_eq!(
                zh.missing_message.is_some(),
                f.when_missing.is_some(),
                "{}: missing-value words in one language only",
                f.name
            );
        }
        assert_eq!(
            ZH.len(),
            FEATURES.len(),
            "zh-CN words for a feature that is gone"
        );
    }

    /// Phrases of advice that speak of returns without telling the buyer to make any.
    /// Every other mention of returns in advice fails the test below, so that new advice
    /// is read against "no advice tells a buyer to return goods to raise their star".
    const ABOUT_RETURNS_EN: &[&str] = &[
        "decide on a return soon after the goods arrive",
        "once you have asked for a return, ship it within a day or two",
        "ship every return you have been refunded for",
        "the number of your returns alone never costs you instant release",
    ];
    const ABOUT_RETURNS_ZH: &[&str] = &[
        "收到商品后请尽早决定是否退货",
        "申请退货后，请在一两天内寄出",
        "凡已收到退款的退货，请务必寄回",
        "仅凭退货的数量，绝不会让您失去即时退货资格",
    ];

    #[test]
    fn no_advice_tells_a_buyer_to_return_goods() {
        for f in FEATURES {
            let zh = zh_cn(f.name).unwrap();
            let en = [Some(f.advice), f.when_missing.map(|m| m.1)];
            for a in en.into_iter().flatten() {
                let mut rest = a.to_lowercase();
                for ok in ABOUT_RETURNS_EN {
                    rest = rest.replace(ok, "");
                }
                assert!(
                    !rest.contains("return"),
                    "{}: advice {a:?} speaks of returns in a way not reviewed",
                    f.name
                );
            }
            for a in [Some(zh.advice), zh.missing_advice].into_iter().flatten() {
                let mut rest = a.clone();
                for ok in ABOUT_RETURNS_ZH {
                    rest = rest.replace(ok, "");
                }
                assert!(
                    !rest.contains('退'),
                    "{}: advice {a:?} speaks of returns in a way not reviewed",
                    f.name
                );
            }
        }
    }
}
