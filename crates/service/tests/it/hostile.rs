//! Clients that behave badly, against the real `fastrefund serve` over raw sockets.

use crate::kill::start;
use fastrefund_testkit::sample_snapshot;
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
    let server = start(ledger.to_str().unwrap(), &sample_snapshot()).await;
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
    let mut req = fastrefund_testkit::request(1, 100001);
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

use fastrefund_service::config::Limits;
use fastrefund_testkit::{ADMIN, spawn_app_limited};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn limits() -> Limits {
    let ms = Duration::from_millis;
    Limits {
        header_read_timeout: ms(400),
        body_timeout: ms(400),
        handler_timeout: ms(800),
        max_connections: 64,
        max_in_flight: 64,
        shutdown_grace: ms(500),
        write_timeout: ms(500),
        max_requests_per_connection: 1_000,
    }
}

/// Reads until the peer closes or `within` passes; returns what came and whether it
/// closed.
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into(), false),
        }
    }
}

/// A snapshot folder whose manifest is a named pipe: loading it blocks until someone
/// writes to the pipe. A reload of it is a handler that is stuck.
fn stuck_snapshot(dir: &std::path::Path) -> std::path::PathBuf {
    let snap = dir.join("stuck-snapshot");
    std::fs::create_dir_all(&snap).unwrap();
    let fifo = snap.join("manifest.json");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    snap
}

/// A handler that is stuck: a request whose body stalls, under limits whose body
/// timeout is longer than the handler's (which `Limits::check` refuses in a settings
/// file, and which a test sets directly for a handler that never finishes by itself).
fn stuck_limits(handler_timeout: Duration) -> Limits {
    Limits {
        handler_timeout,
        body_timeout: handler_timeout * 4,
        ..limits()
    }
}

#[tokio::test]
async fn half_sent_heads_and_idle_connections_are_closed() {
    let (app, _stop, _server) = spawn_app_limited(limits()).await;
    // Half a request line, then nothing: closed (408 or plain close) after the timeout.
    let mut half = TcpStream::connect(app.addr()).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // A keep-alive connection that asked once and then stays idle: closed as well.
    let mut idle = TcpStream::connect(app.addr()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // A connection that never sends a byte: closed too.
    let mut silent = TcpStream::connect(app.addr()).await.unwrap();
    let (text, closed) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(closed, "a half-sent head was still open after 5 s");
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    let (text, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        closed,
        "an idle keep-alive connection was still open after 5 s"
    );
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed, "a silent connection was still open after 5 s");
}

/// Sends a request head and the start of a body that never comes.
async fn stall_a_body(app: &fastrefund_testkit::TestApp) -> TcpStream {
    let mut s = TcpStream::connect(app.addr()).await.unwrap();
    s.write_all(
        format!(
            "POST /v1/eligibility HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: 300\r\n\r\n{{\"return_id\":",
            fastrefund_testkit::API
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    s
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408() {
    let (app, _stop, _server) = spawn_app_limited(limits()).await;
    let mut s = stall_a_body(&app).await;
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
}

/// Issue 26, item 2: with the shipped defaults the body timeout used to be 10 s and the
/// handler's 5 s, so a stalled body got 503 `handler_timeout`, never 408.
#[tokio::test]
async fn with_the_default_limits_a_stalled_body_gets_408_not_503() {
    let (app, _stop, _server) = spawn_app_limited(Limits::default()).await;
    let started = std::time::Instant::now();
    let mut s = stall_a_body(&app).await;
    let (text, _) = read_until_closed(&mut s, Duration::from_secs(12)).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    assert!(
        started.elapsed() < Limits::default().handler_timeout,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stuck_handler_answers_503_and_frees_its_slot() {
    let mut l = stuck_limits(Duration::from_millis(800));
    l.max_in_flight = 1;
    let (app, _stop, _server) = spawn_app_limited(l).await;
    let mut stuck = stall_a_body(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The one slot is taken: shed at once, with Retry-After.
    let r = app.get("/healthz", None).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(r.text().await.unwrap().contains("overloaded"));
    // The stuck handler is given up after its timeout...
    let (text, _) = read_until_closed(&mut stuck, Duration::from_secs(2)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    assert!(text.contains("handler_timeout"), "{text}");
    // ...and its slot is free again.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn connections_past_the_cap_get_503_and_retry_after() {
    let mut l = limits();
    l.max_connections = 2;
    l.header_read_timeout = Duration::from_secs(10);
    let (app, _stop, _server) = spawn_app_limited(l).await;
    let _a = TcpStream::connect(app.addr()).await.unwrap();
    let _b = TcpStream::connect(app.addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = TcpStream::connect(app.addr()).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    assert!(closed);
    // Once one closes, a new connection is served.
    drop(_a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn graceful_shutdown_ends_within_its_grace() {
    let (app, stop, server) = spawn_app_limited(stuck_limits(Duration::from_secs(30))).await;
    let mut stuck = stall_a_body(&app).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server drained within its grace (0.5 s), well under 5 s")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    // The stuck request's connection was closed unanswered, and nobody is listening
    // any more.
    let (text, closed) = read_until_closed(&mut stuck, Duration::from_secs(1)).await;
    assert!(closed && text.is_empty(), "{text}");
    assert!(TcpStream::connect(app.addr()).await.is_err());
}

/// Issue 26, item 6: `{"policy": "/dev/zero"}` was read without end until memory ran
/// out, and a FIFO pinned a blocking thread until the handler timeout. A reload now
/// reads regular files only, under a size cap, and refuses anything else at once,
/// naming the path; what was serving keeps serving.
#[tokio::test]
async fn reload_reads_regular_files_only_and_refuses_anything_else_naming_the_path() {
    let (app, _stop, _server) = spawn_app_limited(limits()).await;
    let dir = app.dir.path();
    let fifo = dir.join("policy.fifo");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success());
    let big = dir.join("big-policy.toml");
    std::fs::write(
        &big,
        format!(
            "# {}\n",
            "x".repeat(fastrefund_service::files::MAX_POLICY_BYTES as usize)
        ),
    )
    .unwrap();
    let snapshot = stuck_snapshot(dir); // its manifest.json is a FIFO
    let cases = [
        ("policy", fifo.clone(), "FIFO"),
        ("snapshot", snapshot.clone(), "FIFO"),
        ("policy", dir.to_path_buf(), "directory"),
        ("policy", big.clone(), "more than"),
        ("policy", "/dev/zero".into(), "device"),
    ];
    for (key, path, why) in cases {
        let body = serde_json::json!({ key: path.to_str().unwrap() });
        let started = std::time::Instant::now();
        let r = app
            .client
            .post(format!("{}/admin/reload", app.base))
            .bearer_auth(ADMIN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (422, Some("reload_refused")),
            "{key} = {}: {v}",
            path.display()
        );
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains(path.to_str().unwrap()) && msg.contains(why),
            "{key} = {}: {msg}",
            path.display()
        );
        assert!(started.elapsed() < Duration::from_millis(500), "{msg}");
    }
    // The sample snapshot and default policy keep serving.
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

/// Issue 26, item 8: `/metrics` counts the business; `--metrics-addr` serves it on an
/// admin address of its own, and then not on the API's.
#[tokio::test]
async fn metrics_addr_serves_metrics_apart_from_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger.sqlite");
    let admin = format!("127.0.0.1:{}", crate::kill::free_port());
    let server = crate::kill::start_with(
        ledger.to_str().unwrap(),
        &sample_snapshot(),
        &["--metrics-addr", &admin],
    )
    .await;
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "/metrics is not on the API's address");
    let r = client
        .get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("fastrefund_http_requests_total"), "{text}");
    let r = client
        .get(format!("http://{admin}/v1/buyers/1/rating"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the admin address serves /metrics only");
}

/// A connection with a tiny receive buffer that pipelines `GET /healthz` for as long
/// as the server takes them, and never reads an answer.
async fn pipeline_and_never_read(addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut s = socket.connect(addr.parse().unwrap()).await.unwrap();
    let burst = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1_000);
    // Until the server stops taking them (its answers are stuck behind ours).
    while let Ok(Ok(())) =
        tokio::time::timeout(Duration::from_millis(300), s.write_all(&burst)).await
    {}
    s
}

/// Issue 26, item 1: only the header-read timeout existed, and it does not run while
/// hyper waits to write; a client that pipelined requests and never read its answers
/// kept its connection for ever, and `max_connections` of them locked everyone out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_their_answers_cannot_hold_the_connections() {
    let mut l = limits();
    l.max_connections = 4;
    l.header_read_timeout = Duration::from_secs(30);
    // Only the write timeout can end these connections.
    l.max_requests_per_connection = 100_000_000;
    let (app, _stop, _server) = spawn_app_limited(l).await;
    let mut stuck = Vec::new();
    for _ in 0..4 {
        stuck.push(pipeline_and_never_read(app.addr()).await);
    }
    // Every connection is taken, by clients that do not read, until the write timeout
    // (0.5 s after the server's writes stall) closes theirs. When that is depends on
    // how much the kernel lets the server buffer first (its send buffer grows up to
    // net.ipv4.tcp_wmem's maximum, 4 MiB here, about 20,000 answers), so the test
    // waits for it, up to a bound; without the write timeout nothing ever closes them.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // A stuck client's connection is closed by the server: a write to it fails (the
    // server reset it), while an open one takes nothing more (its buffers are full).
    // Reading instead would take the answers and make the client a reading one.
    let again = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for mut s in stuck {
        let closed = loop {
            match tokio::time::timeout(Duration::from_millis(200), s.write_all(again)).await {
                Ok(Err(_)) => break true,
                _ if tokio::time::Instant::now() > deadline => break false,
                _ => {}
            }
        };
        assert!(
            closed,
            "a client that never read still holds its connection"
        );
    }
    // Then a normal client is served at once.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_connection_ends_after_its_most_requests() {
    let mut l = limits();
    l.max_requests_per_connection = 3;
    let (app, _stop, _server) = spawn_app_limited(l).await;
    let mut s = TcpStream::connect(app.addr()).await.unwrap();
    s.write_all(&b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5))
        .await
        .unwrap();
    let (text, closed) = read_until_closed(&mut s, Duration::from_secs(5)).await;
    assert!(closed, "{text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 3, "{text}");
    let last = text.rsplit("HTTP/1.1 ").next().unwrap();
    assert!(last.contains("connection: close"), "{text}");
    // A new connection is served as usual.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}
