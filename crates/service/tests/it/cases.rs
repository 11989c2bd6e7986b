//! Cases through the HTTP surface (spec §10): a buyer contests a loss, a reviewer
//! claims and decides it, the loss stops holding the buyer back at once; roles stay
//! apart; bad input is refused naming what is wrong and writes nothing.

use fastrefund_testkit::{ADMIN, API, REVIEWER, json_of, request, spawn_app};
use serde_json::{Value, json};

async fn post_as(
    app: &fastrefund_testkit::TestApp,
    token: &str,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    json_of(
        app.client
            .post(format!("{}{path}", app.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_buyer_contests_a_loss_a_reviewer_decides_and_the_hold_lifts_at_once() {
    let app = spawn_app().await;
    let buyer = app.buyer_with_star(5);
    let elig = |rid: u64, tracking: Option<&str>| {
        let mut r = request(rid, buyer);
        r["amount"] = json!("80.00");
        if let Some(t) = tracking {
            r["tracking_number"] = json!(t);
        }
        r
    };
    let (s, d) = json_of(
        app.post("/v1/eligibility", &elig(41, Some("SFCASE41")))
            .await,
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["advanced_refund"], true, "{d}");
    let (s, d) = json_of(
        app.post(
            "/v1/returns/41/outcome",
            &json!({"outcome": "received_mismatch", "at": "2026-07-05T00:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 200, "{d}");
    let (_, d) = json_of(app.post("/v1/eligibility", &elig(42, None)).await).await;
    assert_eq!(d["instant_address_release"], false, "the loss holds: {d}");

    // Bad openings write nothing.
    let open = |statement: Value, evidence: Value, rid: u64| {
        json!({"kind": "outcome", "buyer_id": buyer, "return_id": rid, "opened_by": "buyer",
               "statement": statement, "evidence": evidence})
    };
    let (s, d) = json_of(
        app.post("/v1/cases", &open(json!("x".repeat(4001)), json!([]), 41))
            .await,
    )
    .await;
    assert_eq!((s, d["code"].as_str()), (422, Some("invalid_case")), "{d}");
    let (s, d) = json_of(
        app.post(
            "/v1/cases",
            &open(json!("sealed"), json!(["http://x.example/a"]), 41),
        )
        .await,
    )
    .await;
    assert_eq!(s, 422, "{d}");
    assert!(
        d["error"]["message"]
            .as_str()
            .unwrap()
            .contains("evidence[0]"),
        "{d}"
    );
    let (s, d) = json_of(
        app.post("/v1/cases", &open(json!("sealed"), json!([]), 999_999))
            .await,
    )
    .await;
    assert_eq!(
        (s, d["code"].as_str()),
        (404, Some("unknown_return")),
        "{d}"
    );
    let (s, d) = json_of(app.post("/v1/cases", &json!({"kind": "outcome", "buyer_id": buyer + 1, "return_id": 41, "opened_by": "buyer", "statement": "mine"})).await).await;
    assert_eq!(
        (s, d["code"].as_str()),
        (403, Some("not_the_buyers_return")),
        "{d}"
    );
    let (s, _) = json_of(app.post("/v1/cases", &json!({"kind": "outcome", "buyer_id": 1.0, "return_id": 41, "opened_by": "buyer", "statement": "x"})).await).await;
    assert_eq!(s, 422);

    // The buyer contests the loss.
    let (s, case) = json_of(
        app.post(
            "/v1/cases",
            &open(
                json!("The parcel left sealed; the courier's photo shows it."),
                json!(["https://photos.example/41.jpg"]),
                41,
            ),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{case}");
    assert_eq!(case["state"], "awaiting_response");
    assert!(case["respond_by"].is_string() && case["decide_by"].is_string());
    assert!(
        case["decide_by_local"]
            .as_str()
            .unwrap()
            .ends_with("+08:00"),
        "{case}"
    );
    let id = case["case_id"].as_u64().unwrap();
    let (s, d) = json_of(
        app.post("/v1/cases", &open(json!("again"), json!([]), 41))
            .await,
    )
    .await;
    assert_eq!(
        (s, d["code"].as_str(), d["case_id"].as_u64()),
        (409, Some("case_already_open"), Some(id)),
        "{d}"
    );

    // Roles.
    let (s, _) = json_of(app.get("/review/cases", Some(API)).await).await;
    assert_eq!(s, 403, "the API token reads the review queue");
    let (s, _) = json_of(app.get("/review/cases", Some(ADMIN)).await).await;
    assert_eq!(s, 403, "the admin token reads the review queue");
    let (s, _) = post_as(&app, REVIEWER, "/v1/eligibility", &elig(43, None)).await;
    assert_eq!(s, 403, "the reviewer token decides eligibility");
    let (s, _) = post_as(&app, REVIEWER, "/admin/reload", &json!({})).await;
    assert_eq!(s, 403, "the reviewer token reloads");
    let (s, _) = json_of(app.get(&format!("/v1/cases/{id}"), Some(REVIEWER)).await).await;
    assert_eq!(s, 403);

    // The merchant answers; the case is open for review and in the queue and its page.
    let (s, d) = json_of(
        app.post(
            &format!("/v1/cases/{id}/response"),
            &json!({"party": "merchant", "statement": "It arrived empty."}),
        )
        .await,
    )
    .await;
    assert_eq!((s, d["state"].as_str()), (200, Some("open")), "{d}");
    let (s, q) = json_of(app.get("/review/cases?state=open", Some(REVIEWER)).await).await;
    assert_eq!(s, 200);
    assert!(
        q["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["case_id"] == id),
        "{q}"
    );
    let (s, _) = json_of(app.get("/review/cases?state=lost", Some(REVIEWER)).await).await;
    assert_eq!(s, 400);
    let page = app.get("/review", Some(REVIEWER)).await;
    assert_eq!(page.status(), 200);
    let h = page.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(page.text().await.unwrap().contains(&format!("#{id}")));
    let page = app
        .client
        .get(format!("{}/review/cases/{id}/page", app.base))
        .bearer_auth(REVIEWER)
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("It arrived empty.") && text.contains("courier") && text.contains("处理记录"),
        "{text}"
    );
    // The return's record from the ledger: the star it was decided with and its money.
    assert!(
        text.contains("已垫付 80.00（运单 SFCASE41）；结果 received_mismatch"),
        "{text}"
    );

    // Two reviewers: one holds it; only the holder decides.
    let claim = |who: &str| json!({"reviewer": who});
    let (s, d) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/claim"),
        &claim("li.wei"),
    )
    .await;
    assert_eq!((s, d["state"].as_str()), (200, Some("claimed")), "{d}");
    let (s, d) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/claim"),
        &claim("chen.jing"),
    )
    .await;
    assert_eq!((s, d["code"].as_str()), (409, Some("case_claimed")), "{d}");
    let decide = |who: &str, v: &str| json!({"reviewer": who, "decision": v, "note": "the courier's photo shows the sealed box"});
    let (s, d) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/decision"),
        &decide("chen.jing", "buyer_won"),
    )
    .await;
    assert_eq!(
        (s, d["code"].as_str()),
        (409, Some("case_not_claimed_by_you")),
        "{d}"
    );
    let (s, d) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/decision"),
        &decide("li.wei", "buyer_won"),
    )
    .await;
    assert_eq!(
        (s, d["decision"].as_str(), d["corrected_outcome"].as_str()),
        (200, Some("buyer_won"), Some("received_ok")),
        "{d}"
    );
    // The same decision again: the same answer; another: refused.
    let (s, again) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/decision"),
        &decide("li.wei", "buyer_won"),
    )
    .await;
    assert_eq!((s, &again["decided_at"]), (200, &d["decided_at"]));
    let (s, e) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/decision"),
        &decide("li.wei", "merchant_won"),
    )
    .await;
    assert_eq!(
        (s, e["code"].as_str()),
        (409, Some("case_already_decided")),
        "{e}"
    );

    // The very next eligibility call: the loss no longer holds the buyer back.
    let (_, d) = json_of(app.post("/v1/eligibility", &elig(45, None)).await).await;
    assert_eq!(
        d["instant_address_release"], true,
        "the corrected loss still holds: {d}"
    );
    let (s, d) = json_of(app.get(&format!("/v1/cases/{id}"), Some(API)).await).await;
    assert_eq!((s, d["decision"].as_str()), (200, Some("buyer_won")));
    let whats: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["opened", "responded", "claimed", "decided"]);

    // The buyer, through their signed link, sees their own cases and no one else's.
    let (_, link) = json_of(
        app.post(&format!("/v1/buyers/{buyer}/link"), &json!({}))
            .await,
    )
    .await;
    let query = link["url"]
        .as_str()
        .unwrap()
        .split_once('?')
        .unwrap()
        .1
        .to_string();
    let (s, mine) = json_of(
        app.get(&format!("/v1/buyers/{buyer}/cases?{query}"), None)
            .await,
    )
    .await;
    assert_eq!(s, 200, "{mine}");
    assert_eq!(mine["cases"][0]["case_id"], id);
    let (s, _) = json_of(
        app.get(&format!("/v1/buyers/{}/cases?{query}", buyer + 1), None)
            .await,
    )
    .await;
    assert_eq!(s, 401, "a link opens one buyer's cases");
    let (s, _) = json_of(app.get(&format!("/v1/cases/{id}?{query}"), None).await).await;
    assert_eq!(s, 200);
    // The buyer's page lists the case and its decision.
    let page = app.get(link["url"].as_str().unwrap(), None).await;
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("Your cases")
            && text.contains(&format!("#{id}"))
            && text.contains("buyer_won"),
        "{text}"
    );
}

/// The largest valid case (4,000 Chinese characters, 10 long links) fits the body
/// limit; a rating case has no other party and is open for review at once.
#[tokio::test]
async fn the_largest_valid_statement_is_accepted() {
    let app = spawn_app().await;
    let buyer = app.buyer_with_star(3);
    let links: Vec<String> = (0..10)
        .map(|k| format!("https://evidence.example/{k}/{}", "a".repeat(1900)))
        .collect();
    let (s, d) = json_of(
        app.post(
            "/v1/cases",
            &json!({"kind": "rating", "buyer_id": buyer, "opened_by": "buyer",
                    "statement": "中".repeat(4000), "evidence": links}),
        )
        .await,
    )
    .await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["state"], "open");
    assert!(d["respond_by"].is_null());
    let (s, d) = json_of(app.post("/v1/cases", &json!({"kind": "rating", "buyer_id": buyer, "opened_by": "merchant", "statement": "x"})).await).await;
    assert_eq!(s, 409, "a second rating case for the buyer: {d}");
}

/// Case events go to a webhook receiver, signed; a receiver that was down when they
/// happened gets every one of them once it is back, each with its stable id.
#[tokio::test]
async fn case_events_reach_a_receiver_that_was_down_once_it_is_back() {
    use fastrefund_service::webhooks::{WebhookSettings, signature};
    use std::sync::{Arc, Mutex};
    let app = spawn_app().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let secret = "whsec_0123456789abcdef";
    fastrefund_service::webhooks::spawn(
        app.state.clone(),
        WebhookSettings {
            urls: vec![format!("http://127.0.0.1:{port}/hook")],
            secret: secret.into(),
            poll: std::time::Duration::from_millis(50),
            retry_base: std::time::Duration::from_millis(100),
        },
    )
    .unwrap();
    // Three moves while the receiver is down: opened, claimed, decided.
    let buyer = app.buyer_with_star(4);
    let (s, case) = json_of(app.post("/v1/cases", &json!({"kind": "rating", "buyer_id": buyer, "opened_by": "buyer", "statement": "the order was not mine"})).await).await;
    assert_eq!(s, 201, "{case}");
    let id = case["case_id"].as_u64().unwrap();
    let (s, _) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/claim"),
        &json!({"reviewer": "li.wei"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/decision"),
        &json!({"reviewer": "li.wei", "decision": "split", "note": "half each"}),
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;

    // The receiver comes up, checking every signature.
    let got: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let seen = got.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let sig = headers["fastrefund-signature"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let t: i64 = sig
                    .trim_start_matches("t=")
                    .split(',')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let id = headers["fastrefund-event-id"].to_str().unwrap().to_string();
                let v: Value = serde_json::from_str(&body).unwrap();
                let valid = sig == signature(secret, t, &body) && v["event_id"] == id.as_str();
                seen.lock().unwrap().push((id, valid));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids = got.lock().unwrap().iter().map(|(i, _)| i.clone()).collect();
        ids.sort();
        ids.dedup();
        if ids.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        ids,
        [
            format!("case-{id}-1"),
            format!("case-{id}-2"),
            format!("case-{id}-3")
        ],
        "every event, once the receiver is back"
    );
    assert!(
        got.lock().unwrap().iter().all(|(_, valid)| *valid),
        "a bad signature"
    );
}

/// Issue 23, item 4: the buyer contests from their own page, through the signed link
/// that opens it: a loss (an outcome case on that return) or a reason of their star (a
/// rating case). The case is listed on the page at once; a refusal is a page that says
/// what was wrong, in the buyer's language; another buyer's link opens nothing.
#[tokio::test]
async fn a_buyer_contests_from_their_page_with_the_signed_link() {
    let app = spawn_app().await;
    let buyer = app.buyer_with_star(2);
    let other = app.buyer_with_star(5);
    let mut r = request(51, buyer);
    r["amount"] = json!("20.00");
    let (s, d) = json_of(app.post("/v1/eligibility", &r).await).await;
    assert_eq!(s, 200, "{d}");
    let (_, link) = json_of(
        app.post(&format!("/v1/buyers/{buyer}/link"), &json!({}))
            .await,
    )
    .await;
    let url = link["url"].as_str().unwrap().to_string();
    let page = app.get(&url, None).await.text().await.unwrap();
    assert!(page.contains("<form method=\"post\""), "{page}");
    let query = url.split_once('?').unwrap().1.to_string();
    let action = format!("/buyers/{buyer}/cases?{query}");
    assert!(page.contains(&action.replace('&', "&amp;")), "{page}");
    // A reason the page shows.
    let code = page
        .split("value=\"reason:")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a 2-star buyer's page lists a reason to contest")
        .to_string();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let client = client.clone();
        let base = app.base.clone();
        async move {
            client
                .post(format!("{base}{path}"))
                .header("accept-language", "zh-CN")
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(
        action.clone(),
        vec![
            ("contest", format!("reason:{code}")),
            ("return_id", String::new()),
            ("statement", "这个原因不对".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, format!("/buyers/{buyer}?{query}#cases"));
    let page = app.get(&url, None).await.text().await.unwrap();
    assert!(
        page.contains("id=\"cases\"") && page.contains("rating"),
        "{page}"
    );
    let (_, cases) = json_of(
        app.get(&format!("/v1/buyers/{buyer}/cases"), Some(API))
            .await,
    )
    .await;
    assert_eq!(cases["cases"][0]["kind"], "rating", "{cases}");
    let id = cases["cases"][0]["case_id"].as_u64().unwrap();
    let (_, case) = json_of(app.get(&format!("/v1/cases/{id}"), Some(API)).await).await;
    assert!(
        case["events"][0]["statement"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[{code}]")),
        "{case}"
    );
    // Refusals: a loss without its return, an unknown reason, the same subject again;
    // each is a page naming what was wrong, and writes nothing.
    for (form, status, says) in [
        (
            vec![("contest", "loss".to_string()), ("statement", "x".into())],
            422,
            "return_id",
        ),
        (
            vec![
                ("contest", "reason:no_such_reason".to_string()),
                ("statement", "x".into()),
            ],
            422,
            "no_such_reason",
        ),
        (
            vec![
                ("contest", format!("reason:{code}")),
                ("statement", "again".into()),
            ],
            409,
            "",
        ),
    ] {
        let r = post(action.clone(), form).await;
        assert_eq!(r.status(), status);
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("form-action")
        );
        let html = r.text().await.unwrap();
        assert!(
            html.contains("未能提交申诉") && html.contains(says),
            "{html}"
        );
    }
    let (_, cases) = json_of(
        app.get(&format!("/v1/buyers/{buyer}/cases"), Some(API))
            .await,
    )
    .await;
    assert_eq!(cases["cases"].as_array().unwrap().len(), 1, "{cases}");
    // Another buyer's link opens no case for this buyer.
    let (_, theirs) = json_of(
        app.post(&format!("/v1/buyers/{other}/link"), &json!({}))
            .await,
    )
    .await;
    let their_query = theirs["url"]
        .as_str()
        .unwrap()
        .split_once('?')
        .unwrap()
        .1
        .to_string();
    let r = post(
        format!("/buyers/{buyer}/cases?{their_query}"),
        vec![
            ("contest", "loss".to_string()),
            ("return_id", "51".into()),
            ("statement", "x".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 401);
}

/// A buyer of the fixture below 5★ whose first reason, struck, raises the star; with
/// that reason's code, its feature, and the corrected star and score, worked out here
/// from the snapshot's points and the model's best bin (not by the service's code).
fn buyer_whose_first_reason_matters(app: &fastrefund_testkit::TestApp) -> (u64, String, u8, i32) {
    use fastrefund_core::domain::BuyerId;
    let serving = app.state.serving().unwrap();
    let r = &serving.ratings;
    let card = r.model();
    for &b in r.sample_ids(r.len()) {
        let rating = r.get(BuyerId(b)).unwrap();
        let Some(first) = rating.reasons[0] else {
            continue;
        };
        let mut p = r.points(BuyerId(b)).expect("the fixture keeps points");
        let j = usize::from(first.feature);
        p.points[j] = card.best_points(j);
        p.missing[j] = false;
        let fixed = card.score_points(&p).unwrap();
        if fixed.star > rating.star {
            return (b, first.code(card), fixed.star.get(), fixed.score);
        }
    }
    panic!("no buyer of the fixture gains a star from their first reason struck");
}

#[tokio::test]
async fn a_rating_case_won_strikes_the_reason_and_every_answer_uses_the_corrected_star_at_once() {
    let app = spawn_app().await;
    let (buyer, code, star, score) = buyer_whose_first_reason_matters(&app);
    let path = format!("/v1/buyers/{buyer}/rating");
    let rating =
        async |app: &fastrefund_testkit::TestApp| json_of(app.get(&path, Some(API)).await).await.1;
    let before = rating(&app).await;
    assert!(
        before["star"].as_u64().unwrap() < u64::from(star),
        "{before}"
    );
    assert_eq!(before["corrected_by_cases"], json!([]));

    // A reason the buyer is not shown cannot be contested; nothing is opened.
    let open = |reason: &str| {
        json!({"kind": "rating", "buyer_id": buyer, "opened_by": "buyer",
               "statement": "Those returns were the merchant's mistakes.", "reason_code": reason})
    };
    let (s, d) = json_of(app.post("/v1/cases", &open("no_such_reason")).await).await;
    assert_eq!(s, 422, "{d}");
    assert_eq!(d["error"]["field"], "reason_code", "{d}");
    let (s, d) = json_of(app.post("/v1/cases", &open(&code)).await).await;
    assert_eq!(s, 201, "{d}");
    assert_eq!(d["reason_code"], json!(code));
    let id = d["case_id"].as_u64().unwrap();

    // The reviewer's page shows the reason contested, the points it earned then, and
    // the buyer's star now.
    let page = app
        .get(&format!("/review/cases/{id}/page"), Some(REVIEWER))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("<code>{code}</code>")), "{page}");
    assert!(page.contains(&format!("{}★", before["star"])), "{page}");
    let claim = json!({"reviewer": "li.wei"});
    let (s, d) = post_as(&app, REVIEWER, &format!("/review/cases/{id}/claim"), &claim).await;
    assert_eq!(s, 200, "{d}");
    let decision = json!({"reviewer": "li.wei", "decision": "buyer_won",
                          "note": "The returns behind this reason were the merchant's fault."});
    let (s, d) = post_as(
        &app,
        REVIEWER,
        &format!("/review/cases/{id}/decision"),
        &decision,
    )
    .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["strikes_reason"], true, "{d}");

    // At once: the rating API, the page, and the decisions.
    let after = rating(&app).await;
    assert_eq!(after["star"], json!(star), "{after}");
    assert_eq!(after["score"], json!(score), "{after}");
    assert_eq!(after["corrected_by_cases"], json!([id]), "{after}");
    assert!(
        after["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["code"] != json!(code)),
        "the struck reason is gone: {after}"
    );
    let (s, d) = json_of(app.post("/v1/eligibility", &request(7_001, buyer)).await).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(
        d["star"],
        json!(star),
        "the decision uses the corrected star: {d}"
    );
    let (_, e) = json_of(
        app.get(&format!("/v1/buyers/{buyer}/exposure"), Some(API))
            .await,
    )
    .await;
    assert_eq!(e["star"], json!(star), "{e}");
    let page = app
        .get(&format!("/buyers/{buyer}"), Some(API))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("#{id}")),
        "the page says which case corrected it"
    );

    // What a restart does: the strikes this process knew are gone, and loading the
    // snapshot reads them again from the ledger before serving it.
    app.state.strikes().replace(&[]);
    assert_eq!(rating(&app).await["star"], before["star"], "forgotten");
    app.state.reload(None, None).await.unwrap();
    let restarted = rating(&app).await;
    assert_eq!(restarted["star"], json!(star), "{restarted}");
    assert_eq!(restarted["corrected_by_cases"], json!([id]), "{restarted}");
}

/// Two replicas on one PostgreSQL ledger: a rating case decided on one corrects the
/// star the other serves within its refresh (and the deciding one at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strike_decided_on_one_replica_reaches_the_other() {
    let Some(server) = fastrefund_testkit::pg::server() else {
        return;
    };
    let url = server.fresh_database().await;
    let replica = async || {
        let pg = fastrefund_pg::PgLedger::connect(&url, fastrefund_pg::PgOptions::default())
            .await
            .unwrap();
        fastrefund_testkit::spawn_app_on(
            pg,
            fastrefund_core::policy::Policy::default(),
            Some(fastrefund_testkit::sample_snapshot()),
            tempfile::tempdir().unwrap(),
        )
        .await
    };
    let (a, b) = (replica().await, replica().await);
    fastrefund_service::strikes::spawn_refresh(
        b.state.clone(),
        std::time::Duration::from_millis(100),
    );
    let (buyer, code, star, _) = buyer_whose_first_reason_matters(&a);
    let open = json!({"kind": "rating", "buyer_id": buyer, "opened_by": "buyer",
                      "statement": "Not mine.", "reason_code": code});
    let (s, d) = json_of(a.post("/v1/cases", &open).await).await;
    assert_eq!(s, 201, "{d}");
    let id = d["case_id"].as_u64().unwrap();
    for (path, body) in [
        ("claim", json!({"reviewer": "li"})),
        (
            "decision",
            json!({"reviewer": "li", "decision": "buyer_won", "note": "checked"}),
        ),
    ] {
        let (s, d) = post_as(&a, REVIEWER, &format!("/review/cases/{id}/{path}"), &body).await;
        assert_eq!(s, 200, "{d}");
    }
    let star_on = async |app: &fastrefund_testkit::TestApp| {
        let path = format!("/v1/buyers/{buyer}/rating");
        json_of(app.get(&path, Some(API)).await).await.1["star"].clone()
    };
    assert_eq!(
        star_on(&a).await,
        json!(star),
        "at once on the deciding replica"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while star_on(&b).await != json!(star) {
        assert!(
            std::time::Instant::now() < deadline,
            "the other replica never served the corrected star"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
