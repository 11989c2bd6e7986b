//! Refund without return (spec §11) through the HTTP API: the offer beside the three
//! answers, its words, the keep call (repeat, no offer, the caps, a tracking number
//! after it, a parcel already on its way), the buyer's page, and a policy reload that
//! a bad refund-only table cannot break.

use fastrefund_testkit::*;
use serde_json::{Value, json};

fn cheap(return_id: u64, buyer: u64, amount: &str) -> Value {
    let mut r = request(return_id, buyer);
    r["category"] = json!("phone_accessories");
    r["amount"] = json!(amount);
    r
}

async fn keep(app: &TestApp, rid: u64) -> (u16, Value) {
    json_of(
        app.post(&format!("/v1/returns/{rid}/keep"), &json!({}))
            .await,
    )
    .await
}

#[tokio::test]
async fn a_cheap_item_of_a_four_star_buyer_is_offered_and_kept_once() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(4);
    let (s, d) = json_of(app.post("/v1/eligibility", &cheap(1, b, "19.90")).await).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["refund_without_return"], true, "{d}");
    // The offer changes none of the other answers.
    assert_eq!(d["instant_address_release"], true);
    assert_eq!(d["courier_pickup"], true);
    assert_eq!(d["advanced_refund"], false);
    let words = d["refund_without_return_words"].as_str().unwrap();
    assert!(words.contains("No need to send this item back"), "{words}");
    let codes: Vec<&str> = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"refund_without_return"), "{codes:?}");

    let (s, k) = keep(&app, 1).await;
    assert_eq!(s, 200, "{k}");
    assert_eq!(
        k,
        json!({"return_id": 1, "refunded": "19.90", "outcome": "refunded_without_return"})
    );
    // Again: the same answer, nothing paid twice.
    assert_eq!(keep(&app, 1).await, (200, k));
    // An empty body is a keep call too.
    let r = app
        .client
        .post(format!("{}/v1/returns/1/keep", app.base))
        .bearer_auth(API)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // The refund is paid: no parcel follows.
    let (s, e) = json_of(
        app.post(
            "/v1/returns/1/tracking",
            &json!({"tracking_number": "SFKEEP1"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("refunded_without_return")),
        "{e}"
    );
    // Nor an outcome.
    let (s, e) = json_of(
        app.post(
            "/v1/returns/1/outcome",
            &json!({"outcome": "received_ok", "at": "2026-07-05T02:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("refunded_without_return")),
        "{e}"
    );
}

#[tokio::test]
async fn the_offer_speaks_chinese_when_asked() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(5);
    let r = app
        .client
        .post(format!("{}/v1/eligibility", app.base))
        .bearer_auth(API)
        .header("accept-language", "zh-CN")
        .json(&cheap(1, b, "9.90"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-language"].to_str().unwrap(), "zh-CN");
    let d: Value = r.json().await.unwrap();
    let words = d["refund_without_return_words"].as_str().unwrap();
    assert!(words.contains("无需寄回"), "{words}");
}

#[tokio::test]
async fn no_offer_no_keep_dear_items_low_stars_and_parcels_on_their_way() {
    let app = spawn_app().await;
    let hi = app.buyer_with_star(5);
    let (_, d) = json_of(app.post("/v1/eligibility", &cheap(1, hi, "300.00")).await).await;
    assert_eq!(d["refund_without_return"], false);
    assert!(d["refund_without_return_words"].is_null());
    let (s, e) = keep(&app, 1).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("no_refund_without_return_offer")),
        "{e}"
    );
    let lo = app.buyer_with_star(3);
    let (_, d) = json_of(app.post("/v1/eligibility", &cheap(2, lo, "19.90")).await).await;
    assert_eq!(d["refund_without_return"], false);
    assert!(
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "refund_only_star_below_minimum"),
        "{d}"
    );
    // Offered, then a tracking number: the parcel is on its way, the offer lapses.
    let (_, d) = json_of(app.post("/v1/eligibility", &cheap(3, hi, "19.90")).await).await;
    assert_eq!(d["refund_without_return"], true);
    let (s, _) = json_of(
        app.post("/v1/returns/3/tracking", &json!({"tracking_number": "SF3"}))
            .await,
    )
    .await;
    assert_eq!(s, 200);
    let (s, e) = keep(&app, 3).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("parcel_on_its_way")),
        "{e}"
    );
    // A return never decided, and a body with fields.
    assert_eq!(keep(&app, 99).await.0, 404);
    let (s, e) = json_of(
        app.post("/v1/returns/1/keep", &json!({"amount": "1.00"}))
            .await,
    )
    .await;
    assert_eq!(s, 422, "{e}");
}

#[tokio::test]
async fn the_thirty_day_cap_stops_a_buyer_at_two_hundred() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(5);
    let mut kept = 0;
    let mut refused = Vec::new();
    for rid in 1..=12u64 {
        let (_, d) = json_of(app.post("/v1/eligibility", &cheap(rid, b, "29.00")).await).await;
        if d["refund_without_return"] == true {
            let (s, e) = keep(&app, rid).await;
            if s == 200 {
                kept += 1;
            } else {
                refused.push(e["code"].clone());
            }
        }
    }
    // 6 × 29.00 = 174.00; a seventh would pass 200.00.
    assert_eq!(kept, 6, "{refused:?}");
}

#[tokio::test]
async fn keep_checks_the_cap_again_when_two_offers_are_taken() {
    let mut policy = fastrefund_core::policy::Policy::default();
    policy.refund_only.per_buyer_30_days = "30.00".parse().unwrap();
    let app = spawn_app_with(policy, Some(sample_snapshot())).await;
    let b = app.buyer_with_star(5);
    for rid in [1, 2] {
        let (_, d) = json_of(app.post("/v1/eligibility", &cheap(rid, b, "20.00")).await).await;
        assert_eq!(
            d["refund_without_return"], true,
            "both offered: nothing kept yet"
        );
    }
    assert_eq!(keep(&app, 1).await.0, 200);
    let (s, e) = keep(&app, 2).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("refund_only_buyer_cap")),
        "{e}"
    );
}

#[tokio::test]
async fn the_buyer_page_lists_refund_only_as_a_benefit_of_four_stars() {
    let app = spawn_app().await;
    let hi = app.buyer_with_star(4);
    let (_, r) = json_of(app.get(&format!("/v1/buyers/{hi}/rating"), Some(API)).await).await;
    let benefits: Vec<&str> = r["benefits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap())
        .collect();
    assert!(
        benefits
            .iter()
            .any(|b| b.starts_with("Refund without return")),
        "{benefits:?}"
    );
    let lo = app.buyer_with_star(3);
    let (_, r) = json_of(app.get(&format!("/v1/buyers/{lo}/rating"), Some(API)).await).await;
    assert!(
        r["benefits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b.as_str().unwrap().starts_with("Reach 4 stars for refunds")),
        "{r}"
    );
}

#[tokio::test]
async fn a_policy_with_a_bad_refund_only_table_is_refused_and_the_last_good_one_serves() {
    let app = spawn_app().await;
    let path = app.dir.path().join("policy.toml");
    let text = fastrefund_core::policy::DEFAULT_POLICY_TOML.replace(
        "max_amount = \"30.00\"",
        "max_amount = \"30.00\"\nby_reason = { broken_zip = \"5.00\" }",
    );
    let text = text.replacen("by_reason = {}\n", "", 1);
    std::fs::write(&path, text).unwrap();
    let body = format!("{{\"policy\": {:?}}}", path.display().to_string()).leak();
    let (s, e) = json_of(app.post_raw("/admin/reload", body, Some(ADMIN)).await).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("reload_refused")),
        "{e}"
    );
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("refund_without_return.by_reason.broken_zip"),
        "{msg}"
    );
    // The last good policy still offers.
    let b = app.buyer_with_star(5);
    let (_, d) = json_of(app.post("/v1/eligibility", &cheap(1, b, "19.90")).await).await;
    assert_eq!(d["refund_without_return"], true);
}

/// The keep call over HTTP on the PostgreSQL store (issue 27): offered, kept once, a
/// repeat answered the same, a tracking number after it refused, a keep without an
/// offer refused, and the kept return exported with its own outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_over_http_on_postgres() {
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    let url = server.fresh_database().await;
    let pg = fastrefund_pg::PgLedger::connect(&url, fastrefund_pg::PgOptions::default())
        .await
        .unwrap();
    let app = spawn_app_on(
        pg,
        fastrefund_core::policy::Policy::default(),
        Some(sample_snapshot()),
        tempfile::tempdir().unwrap(),
    )
    .await;
    let b = app.buyer_with_star(4);
    let (s, d) = json_of(app.post("/v1/eligibility", &cheap(1, b, "19.90")).await).await;
    assert_eq!((s, &d["refund_without_return"]), (200, &json!(true)), "{d}");
    let (s, k) = keep(&app, 1).await;
    assert_eq!(s, 200, "{k}");
    assert_eq!(k["refunded"], "19.90");
    assert_eq!(keep(&app, 1).await, (200, k));
    let (s, e) = json_of(
        app.post(
            "/v1/returns/1/tracking",
            &json!({"tracking_number": "SFKEEP1"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("refunded_without_return")),
        "{e}"
    );
    let (_, d) = json_of(app.post("/v1/eligibility", &cheap(2, b, "300.00")).await).await;
    assert_eq!(d["refund_without_return"], false, "{d}");
    let (s, e) = keep(&app, 2).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("no_refund_without_return_offer")),
        "{e}"
    );
    let rows = fastrefund_pg::PgLedger::connect(&url, fastrefund_pg::PgOptions::default())
        .await
        .unwrap()
        .export_returns()
        .await
        .unwrap();
    let kept: Vec<_> = rows.iter().filter(|r| r.return_id.0 == 1).collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].outcome.as_str(), "refunded_without_return");
}
