#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `/metrics`, in a test binary of its own: the Prometheus recorder is global to a
//! process, so these tests must not share it with the rest of the API tests, whose
//! requests (404s, bad methods) would add series while these count them. Neither test
//! here makes a series the other counts.

use fastrefund_testkit::*;
use rand::{Rng, SeedableRng};

#[tokio::test]
async fn metrics_labels_come_from_closed_sets_whatever_clients_send() {
    let app = spawn_app().await;
    let series = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("fastrefund_http_"))
            .map(|l| l.split(' ').next().unwrap_or_default().to_string())
            .collect()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let routes = ["/healthz", "/v1/eligibility", "/metrics", "/nowhere"];
    let mut sent = Vec::new();
    for i in 0..1000 {
        let method: String = (0..rng.random_range(1..12))
            .map(|_| rng.random_range(b'A'..=b'Z') as char)
            .collect();
        let path = if i % 2 == 0 {
            routes[i % routes.len()].to_string()
        } else {
            format!("/x{}/{}", rng.random::<u32>(), method.to_lowercase())
        };
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let _ = app
            .client
            .request(m, format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        sent.push((method, path));
    }
    let text = app.get("/metrics", None).await.text().await.unwrap();
    let all = series(&text);
    for (method, path) in &sent {
        assert!(
            !text.contains(&format!("\"{method}\""))
                && (!path.starts_with("/x") || !text.contains(path.as_str())),
            "a label carries what a client sent: {method} {path}"
        );
    }
    // Every label value is one of the closed sets.
    let label = |s: &str, k: &str| -> Option<String> {
        let at = s.find(&format!("{k}=\""))? + k.len() + 2;
        Some(s[at..at + s[at..].find('"')?].to_string())
    };
    let routes: Vec<&str> = fastrefund_service::ROUTES.to_vec();
    for s in &all {
        if let Some(r) = label(s, "route") {
            assert!(r == "other" || routes.contains(&r.as_str()), "{s}");
        }
        if let Some(m) = label(s, "method") {
            assert!(["GET", "POST", "other"].contains(&m.as_str()), "{s}");
        }
        if let Some(st) = label(s, "status") {
            assert!(st == "other" || st.parse::<u16>().is_ok(), "{s}");
        }
    }
    // And 1,000 more made-up requests add no series. (Only the series of made-up
    // requests are counted, route or method `other`, all of which the first 1,000 made;
    // the other test of this binary makes none.)
    let other = |text: &str| {
        series(text)
            .into_iter()
            .filter(|s| s.contains("\"other\""))
            .count()
    };
    let before = other(&app.get("/metrics", None).await.text().await.unwrap());
    for (method, path) in sent.iter().rev() {
        let m = reqwest::Method::from_bytes(format!("{method}Q").as_bytes()).unwrap();
        let _ = app
            .client
            .request(m, format!("{}{path}q", app.base))
            .send()
            .await
            .unwrap();
    }
    let after = other(&app.get("/metrics", None).await.text().await.unwrap());
    assert_eq!(
        before, after,
        "series before and after 1,000 made-up requests"
    );
}

#[tokio::test]
async fn metrics_count_requests_and_decisions() {
    let app = spawn_app().await;
    let b = app.buyer_with_star(4);
    app.post("/v1/eligibility", &request(1, b)).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    for m in [
        "fastrefund_http_requests_total",
        "fastrefund_http_request_duration_seconds_bucket",
        "fastrefund_decisions_total",
        "fastrefund_snapshot_age_seconds",
    ] {
        assert!(text.contains(m), "{m} missing");
    }
}

#[tokio::test]
async fn undecided_cases_are_gauged_by_kind_and_state() {
    let app = spawn_app().await;
    let buyer = app.buyer_with_star(4);
    let r = app
        .post(
            "/v1/cases",
            &serde_json::json!({"kind": "rating", "buyer_id": buyer, "opened_by": "buyer",
                                "statement": "a return counted against me was the merchant's fault"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    fastrefund_service::cases::spawn_gauges(
        app.state.clone(),
        std::time::Duration::from_millis(20),
    );
    let want = "fastrefund_cases_open{kind=\"rating\",state=\"open\"} 1";
    let mut text = String::new();
    for _ in 0..100 {
        text = app.get("/metrics", None).await.text().await.unwrap();
        if text.contains(want) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(text.contains(want), "{want} not in /metrics");
    assert!(text.contains("fastrefund_cases_breached{kind=\"rating\"} 0"));
    assert!(
        text.contains("fastrefund_case_moves_total{"),
        "moves are counted"
    );
}
