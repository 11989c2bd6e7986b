//! Test support shared by the crates' integration tests. `spawn_app()`: the real router
//! on a real socket, with a fixture snapshot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod pg;

use fastrefund_core::policy::Policy;
use fastrefund_ledger::Ledger;
use fastrefund_service::{AppState, Tokens, router};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub const API: &str = "test-api-token";
pub const ADMIN: &str = "test-admin-token";
pub const REVIEWER: &str = "test-reviewer-token";

/// The repository's root (the workspace), where `data/`, `config/` and `models/` are.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's shipped sample snapshot (the fixture).
pub fn sample_snapshot() -> PathBuf {
    repo_root().join("data/snapshot")
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub state: AppState,
    pub dir: tempfile::TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Policy::default(), Some(sample_snapshot())).await
}

pub async fn spawn_app_with(policy: Policy, snapshot: Option<PathBuf>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    spawn_app_on(ledger, policy, snapshot, dir).await
}

/// The real router on `ledger` (any store: a test of the PostgreSQL store passes
/// one), with the sample snapshot unless `snapshot` names another.
pub async fn spawn_app_on(
    ledger: impl fastrefund_store::LedgerStore,
    policy: Policy,
    snapshot: Option<PathBuf>,
    dir: tempfile::TempDir,
) -> TestApp {
    let state = AppState::new(ledger, policy, Tokens::with_reviewer(API, ADMIN, REVIEWER));
    state.reload(Some(snapshot), None).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(state.clone(), 16 * 1024);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestApp {
        base: format!("http://{addr}"),
        client: Client::new(),
        state,
        dir,
    }
}

/// The real router under the real server loop ([`fastrefund_service::server::run`])
/// with the given limits; the sender stops it (graceful shutdown), and the handle ends
/// when the server has drained.
pub async fn spawn_app_limited(
    limits: fastrefund_service::config::Limits,
) -> (
    TestApp,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    let state = AppState::new(ledger, Policy::default(), Tokens::new(API, ADMIN));
    state
        .reload(Some(Some(sample_snapshot())), None)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = fastrefund_service::router_with(state.clone(), 16 * 1024, &limits);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(fastrefund_service::server::run(
        listener,
        app,
        limits,
        async move {
            let _ = stopped.await;
        },
    ));
    let app = TestApp {
        base: format!("http://{addr}"),
        client: Client::new(),
        state,
        dir,
    };
    (app, stop, server)
}

impl TestApp {
    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(API)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_raw(&self, path: &str, body: &'static str, token: Option<&str>) -> Response {
        let mut r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    /// A buyer of the fixture snapshot with the given star.
    pub fn buyer_with_star(&self, star: u8) -> u64 {
        let serving = self.state.serving().unwrap();
        let r = &serving.ratings;
        *r.sample_ids(r.len())
            .iter()
            .find(|b| {
                r.get(fastrefund_core::domain::BuyerId(**b))
                    .unwrap()
                    .star
                    .get()
                    == star
            })
            .unwrap_or_else(|| panic!("no buyer with {star} stars in the fixture"))
    }
}

/// A return request body with sensible defaults.
pub fn request(return_id: u64, buyer: u64) -> Value {
    json!({
        "return_id": return_id,
        "buyer_id": buyer,
        "order_id": 900_000 + return_id,
        "merchant_id": 1,
        "category": "shoes",
        "amount": "199.00",
        "reason": "no_reason",
        "delivered_at": "2026-06-30T02:00:00Z",
        "requested_at": "2026-07-02T02:00:00Z"
    })
}

pub async fn json_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}
