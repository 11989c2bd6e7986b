//! Clients that behave badly, against the real `fastrefund serve` over raw sockets.

use crate::kill::start;
use crate::support::sample_snapshot;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const API: &str = "kill-test-api-token";

fn eligibility(i: u64) -> Vec<u8> {
    let body = serde_json::json!({
        "return_id": 5_000_000 + i, "buyer_id": 100001, "order_id": 9_000_000 + i,
        "merchant_id": 1, "category": "shoes", "amount": "59.90", "reason": "no_reason",
        "delivered_at": "2026-06-30T02:00:00Z", "requested_at": "2026-07-01T02:00:00Z"
    })
    .to_string();
    format!(
        "POST /v1/eligibility HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Issue 9: a refund service that gives up (its timeout, a crash) closes the connection
/// right after sending; hyper then drops the request's future. Hundreds of those must
/// not leave the ledger without a writer: exposure, tracking and eligibility calls made
/// afterwards are answered within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_reset_mid_request_never_stall_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite");
    let server = start(&ledger, &sample_snapshot()).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    for i in 0..600u64 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.set_zero_linger().unwrap(); // close with RST, as a killed caller does
        s.write_all(&eligibility(i)).await.unwrap();
        // Give up somewhere in the first 0.4 ms, while the request is in flight.
        let until = std::time::Instant::now() + Duration::from_micros(i % 400);
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
        drop(s);
        if i % 100 == 99 {
            let r = client
                .get(format!("{}/v1/buyers/100001/exposure", server.base))
                .bearer_auth(API)
                .send()
                .await;
            assert!(
                r.as_ref().is_ok_and(|r| r.status() == 200),
                "exposure not answered within 1 s after {} given-up requests: {r:?}",
                i + 1
            );
        }
    }
    // Every money call still answers: a new decision, its tracking number, its outcome.
    let post = |path: String, body: serde_json::Value| {
        client
            .post(format!("{}{path}", server.base))
            .bearer_auth(API)
            .json(&body)
            .send()
    };
    let mut req = crate::support::request(1, 100001);
    req["requested_at"] = "2026-07-01T02:00:00Z".into();
    let r = post("/v1/eligibility".into(), req).await.unwrap();
    assert_eq!(r.status(), 200, "eligibility after the resets");
    let r = post(
        "/v1/returns/1/tracking".into(),
        serde_json::json!({"tracking_number": "SF1234567890"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "tracking after the resets");
    let r = post(
        "/v1/returns/1/outcome".into(),
        serde_json::json!({"outcome": "received_ok", "at": "2026-07-04T02:00:00Z"}),
    )
    .await
    .unwrap();
    // 200 when the return was advanced; 409 (not advanced) when the policy refused it:
    // either way an answer, not a hang.
    assert!(
        [200, 409].contains(&r.status().as_u16()),
        "outcome after the resets: {}",
        r.status()
    );
}
