//! The HTTP API against the real server: rules, bad input, idempotency, tokens,
//! reload under load, OpenAPI and the buyer's page.

use fastrefund_core::policy::Policy;
use fastrefund_testkit::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_four_star_buyer_gets_instant_release_and_pickup_in_hours() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(4);
    let (s, d) = json_of(app.post("/v1/eligibility", &request(1, b)).await).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["instant_address_release"], true);
    assert_eq!(d["courier_pickup"], true);
    assert_eq!(d["advanced_refund"], false);
    assert_eq!(d["star"], 4);
    assert_eq!(d["reasons"][0]["code"], "no_tracking_number");
    // 21:30 local: instant, but the pickup waits for 09:00 the next day.
    let mut r = request(2, b);
    r["requested_at"] = json!("2026-07-02T13:30:00Z");
    let (_, d) = json_of(app.post("/v1/eligibility", &r).await).await;
    assert_eq!(
        (
            d["instant_address_release"].clone(),
            d["courier_pickup"].clone()
        ),
        (json!(true), json!(false))
    );
    assert_eq!(d["pickup_from"], "2026-07-03T01:00:00+00:00");
}

#[tokio::test]
async fn low_stars_late_requests_and_excluded_goods_go_to_the_merchant_with_reasons() {
    let app = spawn_app().await;
    let lo = app.buyer_with_star(1);
    let (_, d) = json_of(app.post("/v1/eligibility", &request(1, lo)).await).await;
    assert_eq!(d["instant_address_release"], false);
    assert_eq!(d["reasons"][0]["code"], "star_below_minimum");
    assert!(d["merchant_answer_by"].is_string());
    let hi = app.buyer_with_star(5);
    let mut late = request(2, hi);
    late["delivered_at"] = json!("2026-06-24T01:00:00Z");
    let (_, d) = json_of(app.post("/v1/eligibility", &late).await).await;
    assert_eq!(d["reasons"][0]["code"], "outside_return_window");
    let mut food = request(3, hi);
    food["category"] = json!("fresh_food");
    let (_, d) = json_of(app.post("/v1/eligibility", &food).await).await;
    assert_eq!(d["reasons"][0]["code"], "excluded_goods");
}

#[tokio::test]
async fn an_unknown_buyer_is_decided_with_the_default_star() {
    let app = spawn_app().await;
    let (s, d) = json_of(app.post("/v1/eligibility", &request(1, 42)).await).await;
    assert_eq!(s, 200);
    assert_eq!(
        (d["rated"].clone(), d["star"].clone()),
        (json!(false), json!(2))
    );
    assert_eq!(d["reasons"][0]["code"], "unknown_buyer");
    let (s, e) = json_of(app.get("/v1/buyers/42/rating", Some(API)).await).await;
    assert_eq!(
        (s, e["error"]["code"].clone()),
        (404, json!("unknown_buyer"))
    );
}

#[tokio::test]
async fn the_same_return_id_gets_the_same_decision_byte_for_byte() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(5);
    let mut req = request(7, b);
    req["tracking_number"] = json!("SF7");
    let first = app.post("/v1/eligibility", &req).await;
    let (s1, a) = (first.status(), first.text().await.unwrap());
    let again = app.post("/v1/eligibility", &req).await;
    let (s2, b2) = (again.status(), again.text().await.unwrap());
    assert_eq!((s1.as_u16(), s2.as_u16()), (200, 200));
    assert_eq!(a, b2, "a retry gets the recorded answer, byte for byte");
    // The same amount written otherwise is the same request.
    req["amount"] = json!("199.0");
    let third = app.post("/v1/eligibility", &req).await;
    let (s3, c) = (third.status().as_u16(), third.text().await.unwrap());
    assert_eq!(
        (s3, c),
        (200, a),
        "the same amount spelt otherwise is the same request"
    );
}

#[tokio::test]
async fn a_return_id_reused_for_another_request_is_refused_naming_the_field() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(5);
    let mut req = request(8, b);
    req["tracking_number"] = json!("SF8");
    let (s, first) = json_of(app.post("/v1/eligibility", &req).await).await;
    assert_eq!(s, 200);
    let changes = [
        ("buyer_id", json!(b + 1)),
        ("order_id", json!(1)),
        ("merchant_id", json!(2)),
        ("category", json!("accessories")),
        ("amount", json!("1.00")),
        ("reason", json!("quality")),
        ("delivered_at", json!("2026-06-30T02:00:01Z")),
        ("requested_at", json!("2026-07-02T02:00:01Z")),
        ("tracking_number", json!("SF9")),
    ];
    for (field, value) in changes {
        let mut other = req.clone();
        other[field] = value;
        let (s, e) = json_of(app.post("/v1/eligibility", &other).await).await;
        assert_eq!(
            (s, e["error"]["code"].as_str(), e["error"]["field"].as_str()),
            (409, Some("return_id_reused"), Some(field)),
            "{field}: {e}"
        );
    }
    let mut none = req.clone();
    none.as_object_mut().unwrap().remove("tracking_number");
    let (s, _) = json_of(app.post("/v1/eligibility", &none).await).await;
    assert_eq!(s, 409, "dropping the tracking number is another request");
    // Nothing of the refused requests was recorded: the first answer stands.
    let (s, again) = json_of(app.post("/v1/eligibility", &req).await).await;
    assert_eq!((s, &again), (200, &first));
}

#[tokio::test]
async fn amounts_and_times_that_cannot_be_true_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(5);
    let future = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("amount", json!("0"), "invalid_amount", "below the smallest"),
        (
            "amount",
            json!("0.00"),
            "invalid_amount",
            "below the smallest",
        ),
        ("amount", json!("-0"), "invalid_amount", "sign"),
        ("amount", json!("+5"), "invalid_amount", "sign"),
        ("amount", json!("5.001"), "invalid_amount", "2 decimal"),
        (
            "requested_at",
            json!(future),
            "implausible_timestamp",
            "future",
        ),
        (
            "delivered_at",
            json!("2026-07-03T02:00:00Z"),
            "implausible_timestamp",
            "after",
        ),
        (
            "delivered_at",
            json!("0001-01-01T00:00:00Z"),
            "implausible_timestamp",
            "year 1",
        ),
        (
            "requested_at",
            json!("9999-12-31T00:00:00Z"),
            "implausible_timestamp",
            "year 9999",
        ),
    ];
    for (i, (field, value, code, words)) in cases.into_iter().enumerate() {
        let mut r = request(100 + i as u64, b);
        r[field] = value.clone();
        let (s, e) = json_of(app.post("/v1/eligibility", &r).await).await;
        assert_eq!(
            (s, e["error"]["code"].as_str(), e["error"]["field"].as_str()),
            (422, Some(code), Some(field)),
            "{field} = {value}: {e}"
        );
        let msg = e["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(words), "{field} = {value}: {msg}");
    }
    // A zero amount never reached the ledger: the order's real return is decided normally.
    let (s, d) = json_of(app.post("/v1/eligibility", &request(100, b)).await).await;
    assert_eq!(s, 200, "{d}");
    let codes: Vec<&str> = d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["code"].as_str())
        .collect();
    assert!(!codes.contains(&"already_refunded"), "{codes:?}");
}

#[tokio::test]
async fn bad_input_gets_a_json_error_naming_the_field() {
    let app = spawn_app().await;
    let cases: Vec<(&'static str, u16, &str, Option<&str>)> = vec![
        ("{not json", 400, "malformed_json", None),
        ("{\"return_id\": 1}", 422, "invalid_field", Some("buyer_id")),
        (
            r#"{"return_id":1,"buyer_id":"x","order_id":1,"merchant_id":1,"category":"shoes","amount":"1.00","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}"#,
            422,
            "invalid_field",
            Some("buyer_id"),
        ),
        (
            r#"{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"-5.00","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}"#,
            422,
            "invalid_amount",
            Some("amount"),
        ),
        (
            r#"{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"lots","reason":"no_reason","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}"#,
            422,
            "invalid_amount",
            Some("amount"),
        ),
        (
            r#"{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"1.00","reason":"no_reason","delivered_at":"yesterday","requested_at":"2026-07-01T02:00:00Z"}"#,
            422,
            "invalid_timestamp",
            Some("delivered_at"),
        ),
        (
            r#"{"return_id":1,"buyer_id":1,"order_id":1,"merchant_id":1,"category":"shoes","amount":"1.00","reason":"because","delivered_at":"2026-06-30T02:00:00Z","requested_at":"2026-07-01T02:00:00Z"}"#,
            422,
            "invalid_field",
            Some("reason"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (s, e) = json_of(app.post_raw("/v1/eligibility", body, Some(API)).await).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
        assert_eq!(e["error"]["field"].as_str(), field, "{body}: {e}");
    }
    let (s, e) = json_of(app.get("/v1/buyers/abc/rating", Some(API)).await).await;
    assert_eq!(
        (s, e["error"]["field"].as_str()),
        (400, Some("buyer_id")),
        "{e}"
    );
    // Nothing malformed was recorded.
    let (s, _) = json_of(
        app.post("/v1/returns/1/tracking", &json!({"tracking_number": "SF"}))
            .await,
    )
    .await;
    assert_eq!(s, 404);
}

/// Issue 26, item 4: `9007199254740993.0` reads as the float …992; taking it would
/// record the return under an id the client never sent.
#[tokio::test]
async fn ids_with_a_fraction_or_an_exponent_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(5);
    for (field, number) in [
        ("return_id", "9007199254740993.0"),
        ("return_id", "7.0"),
        ("buyer_id", "1e5"),
        ("order_id", "18446744073709551616"),
        ("merchant_id", "1.5"),
    ] {
        let mut r = request(1, b);
        r[field] = json!(0);
        let text = serde_json::to_string(&r)
            .unwrap()
            .replace(&format!("\"{field}\":0"), &format!("\"{field}\":{number}"));
        assert!(text.contains(number), "{text}");
        let (s, e) = json_of(
            app.post_raw("/v1/eligibility", text.leak(), Some(API))
                .await,
        )
        .await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (422, Some(field)),
            "{field} = {number}: {e}"
        );
    }
    // Nothing was recorded under the neighbouring ids.
    for id in [7u64, 9007199254740992] {
        let r = app
            .post(
                &format!("/v1/returns/{id}/tracking"),
                &json!({"tracking_number": "SF1"}),
            )
            .await;
        assert_eq!(r.status(), 404, "return {id}");
    }
    // In the path too.
    for path in [
        "/v1/buyers/5.0/rating",
        "/v1/buyers/5e0/rating",
        "/v1/buyers/+5/rating",
    ] {
        let (s, e) = json_of(app.get(path, Some(API)).await).await;
        assert_eq!(
            (s, e["error"]["field"].as_str()),
            (400, Some("buyer_id")),
            "{path}: {e}"
        );
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_with_413() {
    let app = spawn_app().await;
    let big = format!(
        "{{\"return_id\": 1, \"pad\": \"{}\"}}",
        "x".repeat(64 * 1024)
    );
    let r = app
        .client
        .post(format!("{}/v1/eligibility", app.base))
        .bearer_auth(API)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (s, e) = json_of(r).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
}

#[tokio::test]
async fn tokens_are_required_and_scoped() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(4);
    let body = serde_json::to_string(&request(1, b)).unwrap().leak();
    assert_eq!(
        app.post_raw("/v1/eligibility", body, None).await.status(),
        401
    );
    assert_eq!(
        app.post_raw("/v1/eligibility", body, Some("wrong-token"))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.get(&format!("/v1/buyers/{b}/rating"), None)
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post_raw("/admin/reload", "{}", None).await.status(),
        401
    );
    assert_eq!(
        app.post_raw("/admin/reload", "{}", Some(API))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post_raw("/admin/reload", "{}", Some(ADMIN))
            .await
            .status(),
        200
    );
    // Operations endpoints are open.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    assert_eq!(app.get("/openapi.json", None).await.status(), 200);
}

#[tokio::test]
async fn openapi_documents_every_route_its_statuses_and_the_error_catalogue() {
    let app = spawn_app().await;
    let (_, doc) = json_of(app.get("/openapi.json", None).await).await;
    // Every route of the router (the document itself aside) is in the document, with
    // 503 (load shedding, handler timeout) among its answers, each with its schema.
    for p in fastrefund_service::ROUTES {
        if p == "/openapi.json" {
            continue;
        }
        let item = doc["paths"]
            .get(p)
            .unwrap_or_else(|| panic!("{p} missing from the OpenAPI document"));
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("503"), "{method} {p}: no 503");
            if op.get("requestBody").is_some() {
                assert!(responses.contains_key("408"), "{method} {p}: no 408");
            }
            for (status, r) in responses {
                assert!(
                    r["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{method} {p} {status}: no description"
                );
                if status != "200" || p.starts_with("/v1") {
                    assert!(
                        r.get("content").is_some(),
                        "{method} {p} {status}: no schema"
                    );
                }
            }
        }
    }
    // The error codes are one closed catalogue, listed in the document.
    let listed: Vec<&str> = doc["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode is an enum in the document")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let all: Vec<&str> = fastrefund_service::error::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(listed, all);
    // Schemas carry the domain's names, not the code's.
    for name in ["ReturnReason", "Outcome", "Reason", "ErrorCode"] {
        assert!(doc["components"]["schemas"].get(name).is_some(), "{name}");
    }
    for name in ["ReasonDto", "OutcomeDto", "ReasonDtoOut"] {
        assert!(doc["components"]["schemas"].get(name).is_none(), "{name}");
    }
    // Links lead a decided return on to its tracking number and its outcome.
    let links = &doc["paths"]["/v1/eligibility"]["post"]["responses"]["200"]["links"];
    assert_eq!(links["Tracking"]["operationId"], "tracking");
    assert_eq!(links["Outcome"]["operationId"], "outcome");
}

#[tokio::test]
async fn the_buyer_page_opens_with_a_signed_link_for_that_buyer_only() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(3);
    let other = app.buyer_with_star(5);
    assert_eq!(app.get(&format!("/buyers/{b}"), None).await.status(), 401);
    let (_, link) = json_of(app.post(&format!("/v1/buyers/{b}/link"), &json!({})).await).await;
    let url = link["url"].as_str().unwrap();
    let r = app.get(url, None).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("3 of 5 stars"), "{html}");
    assert!(html.contains("What lowers your rating"));
    // The same signature does not open another buyer's page.
    let forged = url.replace(&format!("/buyers/{b}?"), &format!("/buyers/{other}?"));
    assert_eq!(app.get(&forged, None).await.status(), 401);
    // An expired link does not open it either.
    let expired = format!("/buyers/{b}?exp=1&sig={}", "00".repeat(32));
    assert_eq!(app.get(&expired, None).await.status(), 401);
}

/// Standard base64 (RFC 4648), written again here so that the test does not trust the
/// page's own.
fn base64(bytes: &[u8]) -> String {
    let abc = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - c.len()));
        for i in 0..4 {
            out.push(if i <= c.len() {
                char::from(abc[(n >> (18 - 6 * i) & 63) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// Issue 26, item 8: the page's URL carries the signed link; no header kept a browser
/// from sniffing it, framing it or sending the link on in a `Referer`.
#[tokio::test]
async fn the_buyer_page_allows_only_its_own_hashed_style_and_is_never_framed() {
    use sha2::Digest;
    let app = spawn_app().await;
    for star in [2, 5] {
        let b = app.buyer_with_star(star);
        let (_, link) = json_of(app.post(&format!("/v1/buyers/{b}/link"), &json!({})).await).await;
        let r = app.get(link["url"].as_str().unwrap(), None).await;
        assert_eq!(r.status(), 200);
        let h = r.headers().clone();
        let html = r.text().await.unwrap();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["x-frame-options"], "DENY");
        let csp = h["content-security-policy"].to_str().unwrap();
        for want in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(want), "{csp}");
        }
        assert!(!csp.contains("unsafe"), "{csp}");
        // No script at all, no inline style attribute or event handler; the one
        // <style> element is allowed by its hash, and only it.
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "{html}");
        assert!(!lower.contains(" style="), "{html}");
        assert!(
            !lower
                .split_whitespace()
                .any(|w| w.starts_with("on") && w.contains('=')),
            "{html}"
        );
        assert_eq!(lower.matches("<style").count(), 1, "{html}");
        let style = html.split("<style>").nth(1).unwrap();
        let style = style.split("</style>").next().unwrap();
        let hash = format!(
            "'sha256-{}'",
            base64(&sha2::Sha256::digest(style.as_bytes()))
        );
        let style_src = csp
            .split(';')
            .map(str::trim)
            .find_map(|d| d.strip_prefix("style-src "))
            .unwrap_or_else(|| panic!("no style-src: {csp}"));
        assert_eq!(style_src, hash, "{csp}");
    }
    // The route's errors say the same.
    let r = app.get("/buyers/1", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
}

#[tokio::test]
async fn the_rating_explains_itself() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(2);
    let (s, r) = json_of(app.get(&format!("/v1/buyers/{b}/rating"), Some(API)).await).await;
    assert_eq!(s, 200);
    assert_eq!(r["star"], 2);
    assert!(
        !r["reasons"].as_array().unwrap().is_empty(),
        "a buyer below 5 stars has a reason: {r}"
    );
    assert_eq!(r["next_star"]["star"], 3);
    assert!(r["next_star"]["points_needed"].as_i64().unwrap() > 0);
    assert!(
        r["benefits"][0].as_str().unwrap().contains("merchant"),
        "{r}"
    );
    assert_eq!(r["as_of"], "2026-06-30");
}

#[tokio::test]
async fn a_buyer_who_never_shipped_a_return_is_not_told_they_ship_slowly() {
    // The previous champion scores the shipping time of returns; a buyer who shipped
    // none has no value, and gets the words for that, not "you ship slowly".
    let old = repo_root().join("models/scorecard-2026-01-01-464fcb9d/model.json");
    let card = fastrefund_snapshot::load_model(&old)
        .unwrap()
        .check()
        .unwrap();
    let j = card
        .feature_names()
        .position(|n| n == "days_to_ship_mean_365")
        .expect("a feature of the old champion");
    let mut values = vec![0.0; card.n_features()];
    values[j] = f64::NAN;
    let scored = card.score_numeric(&values).unwrap();
    let reason = scored
        .reasons
        .iter()
        .flatten()
        .find(|r| usize::from(r.feature) == j)
        .expect("a missing shipping time costs points in that model");
    assert!(reason.missing);
    assert_eq!(reason.code(&card), "days_to_ship_mean_365:missing");
    let text = card.reason(j);
    assert_eq!(
        reason.words(&card).message,
        text.missing_message.as_deref().unwrap()
    );
    assert_ne!(reason.words(&card).message, text.message);
}

/// GET with an `Accept-Language`.
async fn get_in(app: &TestApp, path: &str, lang: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.base))
        .bearer_auth(API)
        .header("accept-language", lang)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_rating_and_the_page_speak_chinese_when_asked() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(2);
    let path = format!("/v1/buyers/{b}/rating");
    let r = get_in(&app, &path, "zh-CN,zh;q=0.9,en;q=0.8").await;
    assert_eq!(r.headers()["content-language"], "zh-CN");
    assert_eq!(r.headers()["vary"], "Accept-Language");
    let zh: Value = r.json().await.unwrap();
    let en: Value = get_in(&app, &path, "en-GB").await.json().await.unwrap();
    assert_eq!(
        (&zh["language"], &en["language"]),
        (&json!("zh-CN"), &json!("en"))
    );
    assert_eq!(zh["star"], en["star"]);
    let serving = app.state.serving().unwrap();
    let card = serving.ratings.model();
    let reasons = zh["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty(), "{zh}");
    for (z, e) in reasons.iter().zip(en["reasons"].as_array().unwrap()) {
        assert_eq!(z["code"], e["code"], "the same reasons in both languages");
        let r = card.reason_by_code(z["code"].as_str().unwrap()).unwrap();
        let words = r.words_in(card, "zh-CN");
        assert_eq!(z["message"], words.message);
        assert_eq!(z["advice"], words.advice);
        assert_ne!(z["message"], e["message"], "{z} is not translated");
    }
    assert!(zh["benefits"][0].as_str().unwrap().contains("商家"), "{zh}");
    assert!(
        zh["about_returns"].as_str().unwrap().contains("退货"),
        "{zh}"
    );
    let html = get_in(&app, &format!("/buyers/{b}"), "zh-CN")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">"), "{html}");
    assert!(html.contains("拉低您评级的原因"), "{html}");
    assert!(html.contains(zh["about_returns"].as_str().unwrap()));
    let html = get_in(&app, &format!("/buyers/{b}"), "fr")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("What lowers your rating"),
        "English for other languages"
    );
}

#[tokio::test]
async fn what_the_service_says_about_returns_is_what_the_model_guarantees() {
    use fastrefund_core::scoring::{ReturnEffect, safety};
    let app = spawn_app().await;
    let serving = app.state.serving().unwrap();
    let card = serving.ratings.model();
    let model = card.model();
    // The shipped champion keeps the promises its words make.
    assert!(safety::applies(model));
    assert_eq!(safety::violations(card), Vec::<String>::new());
    let floor = model
        .volume_floor_star
        .expect("the champion reads return volume");
    assert!(
        model
            .features
            .iter()
            .any(|f| f.on_return == Some(ReturnEffect::Volume)),
        "the words below speak of volume"
    );
    let policy = app.state.policy();
    assert!(
        floor >= policy.min_star.get(),
        "volume alone never costs instant release"
    );
    let (band, width) = safety::narrowest_band_above(model, floor);
    assert!(
        safety::honest_cost_bound(model) <= width.unwrap_or(i32::MAX),
        "one honest return costs at most one star (the {band}★ band)"
    );
    let b = app.buyer_with_star(4);
    let (_, r) = json_of(app.get(&format!("/v1/buyers/{b}/rating"), Some(API)).await).await;
    let about = r["about_returns"].as_str().unwrap();
    assert!(
        about.contains(&format!("never below {floor} stars")),
        "{about}"
    );
    assert!(about.contains("never costs you instant returns"), "{about}");
    assert!(about.contains("costs at most one star"), "{about}");
    assert!(about.contains("merchant's fault never count"), "{about}");
    // Every reason the model can give exists in both languages.
    for f in &model.features {
        let zh = f.reason.translations.get("zh-CN");
        assert!(zh.is_some(), "{} has no zh-CN words", f.name);
        assert_eq!(
            zh.unwrap().missing_message.is_some(),
            f.reason.missing_message.is_some(),
            "{}",
            f.name
        );
    }
    // A model that keeps no promise is not made to promise anything.
    let old = repo_root().join("models/scorecard-2026-01-01-464fcb9d/model.json");
    let old = fastrefund_snapshot::load_model(&old)
        .unwrap()
        .check()
        .unwrap();
    let said = fastrefund_service::words::about_returns(
        &old,
        &policy,
        fastrefund_service::words::Lang::En,
    );
    assert!(!said.contains("never"), "{said}");
}

#[tokio::test]
async fn a_bad_snapshot_is_refused_and_the_old_one_keeps_serving() {
    let app = spawn_app().await;
    let bad = app.dir.path().join("bad");
    std::fs::create_dir(&bad).unwrap();
    for f in ["manifest.json", "model.json", "ratings.parquet"] {
        std::fs::copy(sample_snapshot().join(f), bad.join(f)).unwrap();
    }
    // Corrupt one byte of the ratings: the checksum no longer matches.
    let mut bytes = std::fs::read(bad.join("ratings.parquet")).unwrap();
    let n = bytes.len() / 2;
    bytes[n] ^= 0xff;
    std::fs::write(bad.join("ratings.parquet"), bytes).unwrap();
    let body = format!("{{\"snapshot\": {:?}}}", bad.display().to_string()).leak();
    let (s, e) = json_of(app.post_raw("/admin/reload", body, Some(ADMIN)).await).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("reload_refused")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().unwrap().contains("checksum"),
        "{e}"
    );
    let (s, r) = json_of(app.get("/readyz", None).await).await;
    assert_eq!(
        (s, r["snapshot_source"].as_str()),
        (200, Some(sample_snapshot().to_str().unwrap()))
    );
}

#[tokio::test]
async fn an_empty_or_miscounted_snapshot_is_never_served() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::writer::SerializedFileWriter;
    let app = spawn_app().await;
    let reload = |dir: &std::path::Path| {
        let body = json!({ "snapshot": dir.to_str().unwrap() });
        let app = &app;
        async move {
            json_of(
                app.client
                    .post(format!("{}/admin/reload", app.base))
                    .bearer_auth(ADMIN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let copy = |name: &str| {
        let d = app.dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        for f in ["manifest.json", "model.json", "ratings.parquet"] {
            std::fs::copy(sample_snapshot().join(f), d.join(f)).unwrap();
        }
        d
    };
    let manifest = |d: &std::path::Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("manifest.json")).unwrap()).unwrap()
    };
    // No rows, with a manifest that agrees (0 rows, checksum right).
    let empty = copy("empty");
    // The same schema, no rows.
    let file = std::fs::File::open(empty.join("ratings.parquet")).unwrap();
    let schema = SerializedFileReader::new(file)
        .unwrap()
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema_ptr();
    let out = std::fs::File::create(empty.join("ratings.parquet")).unwrap();
    SerializedFileWriter::new(out, schema, Default::default())
        .unwrap()
        .close()
        .unwrap();
    let mut m = manifest(&empty);
    m["rows"] = json!(0);
    m["star_counts"] = json!([0, 0, 0, 0, 0]);
    m["ratings_sha256"] = json!(fastrefund_snapshot::sha256_hex(
        &std::fs::read(empty.join("ratings.parquet")).unwrap()
    ));
    std::fs::write(empty.join("manifest.json"), m.to_string()).unwrap();
    let (s, e) = reload(&empty).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (422, Some("reload_refused"))
    );
    assert!(e.to_string().contains("rates no buyer"), "{e}");
    // Star counts that disagree with the ratings.
    let miscounted = copy("miscounted");
    let mut m = manifest(&miscounted);
    let c = m["star_counts"].as_array().unwrap().clone();
    m["star_counts"] = json!([c[1], c[0], c[2], c[3], c[4]]);
    std::fs::write(miscounted.join("manifest.json"), m.to_string()).unwrap();
    let (s, e) = reload(&miscounted).await;
    assert_eq!(s, 422);
    assert!(e.to_string().contains("star counts"), "{e}");
    // The sample keeps serving.
    let (s, r) = json_of(app.get("/readyz", None).await).await;
    assert_eq!((s, r["buyers"].as_u64()), (200, Some(2000)));
}

#[tokio::test]
async fn a_reload_error_names_the_file_but_never_echoes_it() {
    let app = spawn_app().await;
    let secret = app.dir.path().join("secret.txt");
    std::fs::write(&secret, "root:x:0:0:top-secret-line:/root:/bin/bash\n").unwrap();
    let body = json!({ "policy": secret.to_str().unwrap() });
    let r = app
        .client
        .post(format!("{}/admin/reload", app.base))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (s, text) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(s, 422, "{text}");
    assert!(text.contains("secret.txt"), "the file is named: {text}");
    assert!(text.contains("line 1"), "the place is named: {text}");
    assert!(
        !text.contains("top-secret"),
        "the contents are echoed: {text}"
    );
}

#[tokio::test]
async fn reloading_while_requests_are_in_flight_fails_none() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(4);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let (mut ok, mut failed, mut i) = (0, 0, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let r = client
                    .post(format!("{base}/v1/eligibility"))
                    .bearer_auth(API)
                    .json(&request(w * 1_000_000 + i, b))
                    .send()
                    .await
                    .unwrap();
                if r.status() == 200 {
                    ok += 1
                } else {
                    failed += 1
                }
            }
            (ok, failed)
        }));
    }
    for _ in 0..10 {
        let (s, _) = json_of(app.post_raw("/admin/reload", "", Some(ADMIN)).await).await;
        assert_eq!(s, 200);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed += f;
    }
    assert!(ok > 0);
    assert_eq!(failed, 0, "{failed} requests failed during reloads");
}

#[tokio::test]
async fn a_reloaded_policy_applies_to_new_decisions_but_not_to_recorded_ones() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(3);
    let (_, before) = json_of(app.post("/v1/eligibility", &request(1, b)).await).await;
    assert_eq!(before["instant_address_release"], true);
    let text = fastrefund_core::policy::DEFAULT_POLICY_TOML
        .replace("min_star = 3", "min_star = 4")
        .replace("version = \"default-2026-11\"", "version = \"stricter\"");
    let path = app.dir.path().join("stricter.toml");
    std::fs::write(&path, text).unwrap();
    let body = format!("{{\"policy\": {:?}}}", path.display().to_string()).leak();
    let (s, info) = json_of(app.post_raw("/admin/reload", body, Some(ADMIN)).await).await;
    assert_eq!(
        (s, info["policy_version"].as_str()),
        (200, Some("stricter")),
        "{info}"
    );
    let (_, after) = json_of(app.post("/v1/eligibility", &request(2, b)).await).await;
    assert_eq!(after["instant_address_release"], false);
    assert_eq!(after["policy_version"], "stricter");
    let (_, again) = json_of(app.post("/v1/eligibility", &request(1, b)).await).await;
    assert_eq!(again, before, "a recorded decision is answered as recorded");
    let _ = Policy::default();
}

/// Issue 26, item 3: an outcome dated 2999 was settled (200), and the loss hold then
/// compared that date with the rating date for ever.
#[tokio::test]
async fn outcome_and_shipping_times_in_the_future_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(5);
    let (s, d) = json_of(app.post("/v1/eligibility", &request(1, b)).await).await;
    assert_eq!(s, 200, "{d}");
    let now = chrono::Utc::now();
    let in_an_hour = (now + chrono::TimeDelta::hours(1)).to_rfc3339();
    let in_a_minute = (now + chrono::TimeDelta::minutes(1)).to_rfc3339();
    for (path, body, field) in [
        (
            "/v1/returns/1/tracking",
            json!({"tracking_number": "SF1", "shipped_at": in_an_hour}),
            "shipped_at",
        ),
        (
            "/v1/returns/1/outcome",
            json!({"outcome": "not_shipped", "at": in_an_hour}),
            "at",
        ),
        (
            "/v1/returns/1/outcome",
            json!({"outcome": "not_shipped", "at": "2999-01-01T00:00:00Z"}),
            "at",
        ),
    ] {
        let (s, e) = json_of(app.post(path, &body).await).await;
        assert_eq!(
            (s, e["error"]["code"].as_str(), e["error"]["field"].as_str()),
            (422, Some("implausible_timestamp"), Some(field)),
            "{path} {body}: {e}"
        );
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("future"),
            "{e}"
        );
    }
    // Within the clock skew (5 minutes by default) a time ahead of ours is taken...
    let (s, t) = json_of(
        app.post(
            "/v1/returns/1/tracking",
            &json!({"tracking_number": "SF1", "shipped_at": in_a_minute}),
        )
        .await,
    )
    .await;
    assert_eq!((s, t["advanced"].as_bool()), (200, Some(true)), "{t}");
    let (s, o) = json_of(
        app.post(
            "/v1/returns/1/outcome",
            &json!({"outcome": "received_ok", "at": in_a_minute}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{o}");
    // ...and the skew is a setting: with none, a minute ahead is the future.
    app.state.set_clock_skew(std::time::Duration::ZERO);
    let (s, e) = json_of(
        app.post(
            "/v1/returns/1/outcome",
            &json!({"outcome": "received_ok", "at": in_a_minute}),
        )
        .await,
    )
    .await;
    assert_eq!((s, e["error"]["field"].as_str()), (422, Some("at")), "{e}");
}

#[tokio::test]
async fn advances_respect_the_limit_and_outcomes_settle() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(3); // limit 1000.00
    let mut advanced = 0;
    for i in 1..=6u64 {
        let mut r = request(i, b);
        r["order_id"] = json!(i);
        r["amount"] = json!("300.00");
        app.post("/v1/eligibility", &r).await;
        let (s, t) = json_of(
            app.post(
                &format!("/v1/returns/{i}/tracking"),
                &json!({"tracking_number": format!("SF{i}")}),
            )
            .await,
        )
        .await;
        assert_eq!(s, 200, "{t}");
        if t["advanced"] == true {
            advanced += 1;
        } else {
            assert_eq!(t["reasons"][0]["code"], "exposure_limit", "{t}");
        }
    }
    assert_eq!(advanced, 3);
    let (_, e) = json_of(
        app.get(&format!("/v1/buyers/{b}/exposure"), Some(API))
            .await,
    )
    .await;
    assert_eq!(
        (e["outstanding"].as_str(), e["limit"].as_str()),
        (Some("900.00"), Some("1000.00"))
    );
    let (s, o) = json_of(
        app.post(
            "/v1/returns/1/outcome",
            &json!({"outcome": "received_ok", "at": "2026-07-05T02:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, o["outstanding"].as_str(), o["loss"].as_bool()),
        (200, Some("600.00"), Some(false)),
        "{o}"
    );
    let (s, o) = json_of(
        app.post(
            "/v1/returns/1/outcome",
            &json!({"outcome": "not_shipped", "at": "2026-07-05T02:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, o["error"]["code"].as_str()),
        (409, Some("outcome_conflict"))
    );
    // The same outcome at another time is another request too; the same one is a retry.
    let outcome_at = |at: &str| json!({"outcome": "received_ok", "at": at});
    let (s, o) = json_of(
        app.post("/v1/returns/1/outcome", &outcome_at("2026-07-06T02:00:00Z"))
            .await,
    )
    .await;
    assert_eq!(
        (s, o["error"]["code"].as_str(), o["error"]["field"].as_str()),
        (409, Some("outcome_conflict"), Some("at"))
    );
    let (s, o) = json_of(
        app.post("/v1/returns/1/outcome", &outcome_at("2026-07-05T02:00:00Z"))
            .await,
    )
    .await;
    assert_eq!((s, o["outstanding"].as_str()), (200, Some("600.00")));
    // An advanced return's tracking number, repeated: the same answer; another: 409.
    let track = |n: &str| json!({"tracking_number": n});
    let (s, t) = json_of(app.post("/v1/returns/2/tracking", &track("SF2")).await).await;
    assert_eq!((s, t["advanced"].as_bool()), (200, Some(true)));
    let (s, t) = json_of(app.post("/v1/returns/2/tracking", &track("SF99")).await).await;
    assert_eq!(
        (s, t["error"]["code"].as_str()),
        (409, Some("tracking_number_conflict"))
    );
    let (s, o) = json_of(
        app.post(
            "/v1/returns/4/outcome",
            &json!({"outcome": "received_ok", "at": "2026-07-05T02:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(
        (s, o["error"]["code"].as_str()),
        (409, Some("not_advanced"))
    );
    let (s, o) = json_of(
        app.post(
            "/v1/returns/2/outcome",
            &json!({"outcome": "pending", "at": "2026-07-05T02:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!((s, o["error"]["field"].as_str()), (422, Some("outcome")));
    let _: Value = json!(null);
}

/// Issue 26, item 5, end to end: after the ledger's fdatasync fails, `/readyz` says so
/// to every caller at once (one probe per interval shared by all, see
/// `ops::Readiness`), and a burst of calls is answered quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_a_ledger_fault_for_every_caller() {
    use fastrefund_service::{AppState, Tokens, router};
    let dir = tempfile::tempdir().unwrap();
    let ledger = fastrefund_ledger::Ledger::open(&dir.path().join("l.sqlite")).unwrap();
    let state = AppState::new(ledger.clone(), Policy::default(), Tokens::new(API, ADMIN));
    state
        .reload(Some(Some(sample_snapshot())), None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state, 16 * 1024)).await });
    let client = reqwest::Client::new();
    let readyz = || client.get(format!("{base}/readyz")).send();
    assert_eq!(readyz().await.unwrap().status(), 200);
    ledger.inject_sync_failure();
    let mut req = request(1, 100001);
    req["tracking_number"] = json!("SF1");
    let r = client
        .post(format!("{base}/v1/eligibility"))
        .bearer_auth(API)
        .json(&req)
        .send()
        .await
        .unwrap();
    let _ = r.text().await;
    // The ledger is not healthy any more; within the interval a cached "ready" may
    // still be served, then every caller sees the fault.
    tokio::time::sleep(fastrefund_service::READINESS_INTERVAL).await;
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..100).map(|_| readyz()).collect();
    for c in calls {
        let (s, e) = json_of(c.await.unwrap()).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (503, Some("ledger_unavailable")),
            "{e}"
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

/// While no ratings snapshot is loaded, a retry of a recorded decision or advance gets
/// its recorded answer from the ledger; a new request is not decided (503 not ready),
/// and another request under a recorded id is still refused.
#[tokio::test]
async fn retries_are_answered_from_the_ledger_while_no_snapshot_is_loaded() {
    use fastrefund_ledger::Ledger;
    use fastrefund_service::{AppState, Tokens, router};
    use fastrefund_store::LedgerStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    // A decision with its advance, recorded while a snapshot was in service.
    let ledger = Ledger::open(&path).unwrap();
    let body = |rid: u64| {
        let mut r = request(rid, 4242);
        r["tracking_number"] = json!("SFREPLAY1");
        r
    };
    let req: fastrefund_service::dto::EligibilityRequest = serde_json::from_value(body(1)).unwrap();
    let req = fastrefund_core::domain::ReturnRequest::try_from(req).unwrap();
    let d = LedgerStore::decide(
        &ledger,
        req,
        Some(fastrefund_core::domain::Star::try_from(5u8).unwrap()),
        None,
        None,
        std::sync::Arc::new(Policy::default()),
        "m".into(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(d.decision.advanced_refund);
    // The service on that ledger, with no snapshot loaded.
    let state = AppState::new(ledger, Policy::default(), Tokens::new(API, ADMIN));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router(state, 16 * 1024))
            .await
            .unwrap()
    });
    let client = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let client = client.clone();
        async move {
            json_of(
                client
                    .post(path)
                    .bearer_auth(API)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let (s, again) = post(format!("{base}/v1/eligibility"), body(1)).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["decision_id"], d.decision_id);
    assert_eq!(again["advanced_refund"], true);
    let (s, t) = post(
        format!("{base}/v1/returns/1/tracking"),
        json!({"tracking_number": "SFREPLAY1"}),
    )
    .await;
    assert_eq!((s, &t["advanced"]), (200, &json!(true)), "{t}");
    // New work waits for a snapshot; another request under a recorded id is refused.
    let (s, e) = post(format!("{base}/v1/eligibility"), body(2)).await;
    assert_eq!((s, e["code"].as_str()), (503, Some("not_ready")), "{e}");
    let mut other = body(1);
    other["amount"] = json!("1.00");
    let (s, e) = post(format!("{base}/v1/eligibility"), other).await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("return_id_reused")),
        "{e}"
    );
    let (s, e) = post(
        format!("{base}/v1/returns/1/tracking"),
        json!({"tracking_number": "SFOTHER"}),
    )
    .await;
    assert_eq!(s, 409, "{e}");
}
