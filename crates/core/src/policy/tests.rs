use super::*;
use crate::domain::{BuyerId, Category, MerchantId, Money, OrderId, ReturnId};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    star: Option<u8>,
    #[serde(default = "d_reason")]
    reason: String,
    #[serde(default = "d_category")]
    category: String,
    #[serde(default = "d_merchant")]
    merchant: u64,
    #[serde(default = "d_amount")]
    amount: String,
    #[serde(default = "d_delivered")]
    delivered_at: String,
    requested_at: String,
    tracking: Option<String>,
    #[serde(default = "d_zero")]
    outstanding: String,
    #[serde(default = "d_zero")]
    advanced_today: String,
    #[serde(default)]
    already_refunded: bool,
    #[serde(default)]
    tracking_reused: bool,
    #[serde(default)]
    loss_since_rating: bool,
    #[serde(default = "d_zero")]
    refund_only_30_days: String,
    #[serde(default = "d_zero")]
    refund_only_today: String,
    /// The refund-without-return offer; rows without it are checked on the other
    /// three answers and on every reason but the refund-only ones.
    refund_without_return: Option<bool>,
    policy: Option<String>,
    instant: bool,
    pickup: bool,
    advance: bool,
    reasons: Vec<String>,
    pickup_from: Option<String>,
    merchant_answer_by: Option<String>,
}

fn d_reason() -> String {
    "no_reason".into()
}
fn d_category() -> String {
    "womens_wear".into()
}
fn d_merchant() -> u64 {
    1
}
fn d_amount() -> String {
    "199.00".into()
}
fn d_delivered() -> String {
    "2026-06-30T02:00:00Z".into()
}
fn d_zero() -> String {
    "0.00".into()
}

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// The default policy with a TOML patch applied (`key.path = value` lines).
fn patched(patch: Option<&str>) -> Policy {
    let mut doc: toml::Table = toml::from_str(config::DEFAULT_POLICY_TOML).unwrap();
    if let Some(p) = patch {
        let p: toml::Table = toml::from_str(p).unwrap();
        merge(&mut doc, p);
    }
    Policy::from_toml(&toml::to_string(&doc).unwrap(), "patched").unwrap()
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

#[test]
fn every_policy_case_decides_as_written() {
    #[derive(Deserialize)]
    struct File {
        case: Vec<Case>,
    }
    let file: File = toml::from_str(include_str!("cases.toml")).unwrap();
    assert!(file.case.len() >= 25);
    let mut failures = Vec::new();
    for c in file.case {
        let policy = patched(c.policy.as_deref());
        let req = ReturnRequest {
            return_id: ReturnId(1),
            buyer_id: BuyerId(1),
            order_id: OrderId(1),
            merchant_id: MerchantId(c.merchant),
            category: Category::parse(&c.category).unwrap(),
            amount: c.amount.parse().unwrap(),
            reason: c.reason.parse().unwrap(),
            delivered_at: ts(&c.delivered_at),
            requested_at: ts(&c.requested_at),
            tracking_number: c.tracking.clone(),
        };
        let ledger = LedgerView {
            outstanding: c.outstanding.parse().unwrap(),
            advanced_today: c.advanced_today.parse().unwrap(),
            order_already_refunded: c.already_refunded,
            tracking_number_reused: c.tracking_reused,
            loss_since_rating: c.loss_since_rating,
            refund_only_30_days: c.refund_only_30_days.parse().unwrap(),
            refund_only_today: c.refund_only_today.parse().unwrap(),
        };
        let star = c.star.map(|s| Star::try_from(s).unwrap());
        let d = decide(&req, star, &ledger, &policy, req.requested_at);
        let mut wrong = Vec::new();
        let refund_only_code =
            |code: &str| code.starts_with("refund_only_") || code == "refund_without_return";
        let codes: Vec<&str> = d
            .reasons
            .iter()
            .map(|r| r.code())
            .filter(|code| c.refund_without_return.is_some() || !refund_only_code(code))
            .collect();
        if let Some(offer) = c.refund_without_return
            && d.refund_without_return != offer
        {
            wrong.push(format!("refund_without_return {}", d.refund_without_return));
        }
        if d.instant_address_release != c.instant {
            wrong.push(format!("instant {}", d.instant_address_release));
        }
        if d.courier_pickup != c.pickup {
            wrong.push(format!("pickup {}", d.courier_pickup));
        }
        if d.advanced_refund != c.advance {
            wrong.push(format!("advance {}", d.advanced_refund));
        }
        if codes != c.reasons {
            wrong.push(format!("reasons {codes:?}"));
        }
        if let Some(p) = &c.pickup_from
            && d.pickup_from != Some(ts(p))
        {
            wrong.push(format!("pickup_from {:?}", d.pickup_from));
        }
        if let Some(m) = &c.merchant_answer_by
            && d.merchant_answer_by != Some(ts(m))
        {
            wrong.push(format!("merchant_answer_by {:?}", d.merchant_answer_by));
        }
        if d.instant_address_release && d.merchant_answer_by.is_some() {
            wrong.push("instant release with a merchant deadline".into());
        }
        if !wrong.is_empty() {
            failures.push(format!("{}: {}", c.name, wrong.join(", ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn shipped_default_policy_is_valid_and_has_the_published_figures() {
    let p = Policy::default();
    assert_eq!(p.min_star.get(), 3);
    assert_eq!(p.window_days, 7);
    assert_eq!((p.pickup_start_hour, p.pickup_end_hour), (9, 20));
    assert_eq!(p.merchant_answer_hours, 72);
    assert_eq!(p.time_zone, chrono_tz::Asia::Shanghai);
    assert!(p.merchants.is_none());
    let cats = p.categories.as_ref().unwrap();
    for c in ["womens_wear", "mens_wear", "accessories", "shoes"] {
        assert!(cats.contains(c));
    }
}

fn error_of(patch: &str) -> String {
    let mut doc: toml::Table = toml::from_str(config::DEFAULT_POLICY_TOML).unwrap();
    merge(&mut doc, toml::from_str(patch).unwrap());
    Policy::from_toml(&toml::to_string(&doc).unwrap(), "policy.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn bad_policy_values_are_refused_naming_the_key() {
    let cases = [
        ("instant.min_star = 6", "instant.min_star"),
        ("instant.min_star = 0", "instant.min_star"),
        ("unknown_buyer_star = 9", "unknown_buyer_star"),
        ("pickup.start_hour = 24", "pickup.start_hour"),
        ("pickup.end_hour = -1", "pickup.end_hour"),
        ("pickup.start_hour = 21", "pickup.end_hour"),
        ("advance.limits.star_3 = \"-5.00\"", "advance.limits.star_3"),
        ("advance.daily_budget = \"lots\"", "advance.daily_budget"),
        ("time_zone = \"Mars/Olympus\"", "time_zone"),
        ("instant.window_days = 0", "instant.window_days"),
        ("instant.categories = [\"Shoes!\"]", "instant.categories"),
    ];
    for (patch, key) in cases {
        let e = error_of(patch);
        assert!(e.contains(key), "{patch}: {e}");
    }
}

#[test]
fn unknown_keys_in_the_policy_file_are_refused() {
    let e = error_of("[instant]\nmin_stars = 3");
    assert!(e.contains("min_stars"), "{e}");
    let e = error_of("surprise = 1");
    assert!(e.contains("surprise"), "{e}");
}

#[test]
fn decide_never_advances_without_instant_release() {
    let policy = Policy::default();
    let base = ReturnRequest {
        return_id: ReturnId(1),
        buyer_id: BuyerId(1),
        order_id: OrderId(1),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: "10.00".parse().unwrap(),
        reason: ReturnReason::Quality,
        delivered_at: ts("2026-06-30T02:00:00Z"),
        requested_at: ts("2026-07-01T02:00:00Z"),
        tracking_number: Some("SF".into()),
    };
    for s in Star::all() {
        let d = decide(
            &base,
            Some(s),
            &LedgerView::default(),
            &policy,
            base.requested_at,
        );
        assert!(!d.advanced_refund && !d.instant_address_release && !d.courier_pickup);
    }
}

#[test]
fn shipped_default_policy_offers_refund_without_return_with_the_issue_figures() {
    let p = Policy::default();
    let r = &p.refund_only;
    assert!(r.enabled);
    assert_eq!(r.min_star.get(), 4);
    for reason in ReturnReason::ALL {
        for c in ["phone_accessories", "shoes", "grocery"] {
            assert_eq!(
                r.max_for(c, *reason),
                "30.00".parse().unwrap(),
                "{c} {reason}"
            );
        }
    }
    assert_eq!(r.per_buyer_30_days, "200.00".parse().unwrap());
    assert!(r.daily_budget > Money::ZERO);
    assert!(p.merchant_rules.is_empty());
}

#[test]
fn the_refund_only_table_picks_the_most_specific_row() {
    let p = patched(Some(
        r#"
        [refund_without_return]
        max_amount = "30.00"
        by_reason = { not_received = "20.00" }
        [refund_without_return.by_category.electronics]
        default = "10.00"
        quality = "25.00"
        "#,
    ));
    let r = &p.refund_only;
    let m = |s: &str| s.parse::<Money>().unwrap();
    assert_eq!(r.max_for("electronics", ReturnReason::Quality), m("25.00"));
    assert_eq!(
        r.max_for("electronics", ReturnReason::NotReceived),
        m("10.00")
    );
    assert_eq!(r.max_for("shoes", ReturnReason::NotReceived), m("20.00"));
    assert_eq!(r.max_for("shoes", ReturnReason::NoReason), m("30.00"));
}

#[test]
fn bad_refund_only_and_merchant_rules_are_refused_naming_the_key() {
    let cases = [
        (
            "[refund_without_return]\nmax_amount = \"-1.00\"",
            "refund_without_return.max_amount",
        ),
        // Above the 4-star advance limit (3000.00), the lowest star offered it.
        (
            "[refund_without_return]\nmax_amount = \"3000.01\"",
            "refund_without_return.max_amount",
        ),
        (
            "[refund_without_return.by_reason]\nchanged_my_mind = \"10.00\"",
            "refund_without_return.by_reason.changed_my_mind",
        ),
        (
            "[refund_without_return.by_reason]\nquality = \"-0.01\"",
            "refund_without_return.by_reason.quality",
        ),
        (
            "[refund_without_return.by_category.spaceships]\ndefault = \"10.00\"",
            "refund_without_return.by_category.spaceships",
        ),
        (
            "[refund_without_return.by_category.shoes]\nbroken = \"10.00\"",
            "refund_without_return.by_category.shoes.broken",
        ),
        (
            "[refund_without_return]\nexcluded_categories = [\"spaceships\"]",
            "refund_without_return.excluded_categories",
        ),
        (
            "[refund_without_return]\nmin_star = 6",
            "refund_without_return.min_star",
        ),
        (
            "[merchants.17]\nadvance_limit = \"20000.00\"",
            "merchants.17.advance_limit",
        ),
        (
            "[merchants.17]\nrefund_without_return_max = \"31.00\"",
            "merchants.17.refund_without_return_max",
        ),
        (
            "[merchants.17]\nexcluded_categories = [\"spaceships\"]",
            "merchants.17.excluded_categories",
        ),
        ("[merchants.acme]\nadvances = false", "merchants.acme"),
        (
            "[instant]\nmerchants = [1, 2]\n[merchants.17]\ninstant_release = true",
            "merchants.17.instant_release",
        ),
        (
            "[refund_without_return]\nenabled = false\n[merchants.17]\nrefund_without_return = true",
            "merchants.17.refund_without_return",
        ),
        ("[merchants.17]\nopt_out = true", "opt_out"),
        (
            "instant.categories = [\"spaceships\"]",
            "instant.categories",
        ),
    ];
    for (patch, key) in cases {
        let e = error_of(patch);
        assert!(e.contains(key), "{patch}: {e}");
        if key.starts_with("merchants.17.") {
            assert!(e.contains("merchant 17"), "{patch}: {e}");
        }
    }
}

#[test]
fn a_merchant_may_narrow_the_platform_rules() {
    let p = patched(Some(
        r#"
        [merchants.17]
        instant_release = false
        advances = false
        refund_without_return = false
        advance_limit = "500.00"
        refund_without_return_max = "10.00"
        excluded_categories = ["electronics"]
        "#,
    ));
    let m = p.merchant(17).unwrap();
    assert!(!m.instant_release && !m.advances && !m.refund_without_return);
    assert_eq!(
        p.limit_for_merchant(Star::MAX, 17),
        ("500.00".parse().unwrap(), true)
    );
    assert_eq!(
        p.limit_for_merchant(Star::MAX, 18),
        ("10000.00".parse().unwrap(), false)
    );
}

mod refund_only_properties {
    use super::*;
    use proptest::prelude::*;

    fn request(cents: u64, reason: usize, category: usize, tracking: bool) -> ReturnRequest {
        ReturnRequest {
            return_id: ReturnId(1),
            buyer_id: BuyerId(1),
            order_id: OrderId(1),
            merchant_id: MerchantId(1),
            category: Category::parse(
                ["shoes", "phone_accessories", "fresh_food", "home"][category],
            )
            .unwrap(),
            amount: Money::from_cents(cents),
            reason: ReturnReason::ALL[reason],
            delivered_at: ts("2026-06-30T02:00:00Z"),
            requested_at: ts("2026-07-02T02:00:00Z"),
            tracking_number: tracking.then(|| "SF1".to_string()),
        }
    }

    proptest! {
        /// The offer changes none of the three answers, and is made only when every
        /// rule holds: star, price, caps, category, no parcel on its way.
        #[test]
        fn the_offer_changes_no_other_answer_and_only_when_every_rule_holds(
            cents in 1..10_000u64,
            reason in 0..ReturnReason::ALL.len(),
            category in 0..4usize,
            tracking: bool,
            star in 1..=5u8,
            kept_30 in 0..25_000u64,
            kept_today in 0..25_000u64,
            loss: bool,
            refunded: bool,
        ) {
            let on = Policy {
                refund_only: config::RefundOnly {
                    daily_budget: Money::from_cents(20_000),
                    ..Policy::default().refund_only
                },
                ..Policy::default()
            };
            let off = Policy {
                refund_only: config::RefundOnly::off(),
                ..on.clone()
            };
            let req = request(cents, reason, category, tracking);
            let view = LedgerView {
                refund_only_30_days: Money::from_cents(kept_30),
                refund_only_today: Money::from_cents(kept_today),
                loss_since_rating: loss,
                order_already_refunded: refunded,
                ..LedgerView::default()
            };
            let star = Star::try_from(star).unwrap();
            let a = decide(&req, Some(star), &view, &on, req.requested_at);
            let b = decide(&req, Some(star), &view, &off, req.requested_at);
            prop_assert_eq!(
                (a.instant_address_release, a.courier_pickup, a.advanced_refund, a.merchant_answer_by),
                (b.instant_address_release, b.courier_pickup, b.advanced_refund, b.merchant_answer_by)
            );
            prop_assert!(!b.refund_without_return);
            let r = &on.refund_only;
            let holds = star >= r.min_star
                && req.amount <= r.max_for(req.category.as_str(), req.reason)
                && view.refund_only_30_days + req.amount <= r.per_buyer_30_days
                && view.refund_only_today + req.amount <= r.daily_budget
                && !on.excluded_categories.contains(req.category.as_str())
                && !tracking
                && !loss
                && !refunded;
            prop_assert_eq!(a.refund_without_return, holds);
            let offered = a.reasons.iter().any(|x| x.code() == "refund_without_return");
            prop_assert_eq!(offered, holds, "the offer says so in its reasons");
        }
    }
}
