//! The eligibility service (axum on tokio): answers refund services in microseconds,
//! records every decision and advance in the [`fastrefund_ledger`], and shows buyers their
//! own star.
//!
//! - [`router`] builds the whole HTTP surface from an [`AppState`], so handler tests
//!   call it without a socket; [`serve`] binds it and runs until SIGINT/SIGTERM.
//! - The ratings snapshot and the policy sit behind `ArcSwap`s: a reload (SIGHUP or
//!   `POST /admin/reload`) loads and checks the new one off the request path and swaps
//!   it in atomically; a request in flight keeps the version it started with, so no
//!   request fails, and a bad snapshot is refused while the old one keeps serving.
//! - Readiness: `/readyz` answers 200 only once a valid snapshot is loaded.
//! - Security: refund-service calls need `FASTREFUND_API_TOKEN`, admin calls
//!   `FASTREFUND_ADMIN_TOKEN` (401 without a valid token, 403 with the wrong one).
//!   Buyer pages open with the API token or with a signed, expiring link that the
//!   marketplace's own front end mints for a logged-in buyer
//!   (`POST /v1/buyers/{id}/link`), so a buyer can only ever open their own page.

mod api;
pub mod cases;
pub mod cli;
pub mod config;
mod contest;
pub mod dto;
mod embedded;
pub mod error;
mod extract;
pub mod files;
mod link;
mod ops;
mod page;
mod review_page;
pub mod server;
pub mod strikes;
pub mod webhooks;
pub mod words;

use crate::config::{Limits, Settings};
use arc_swap::{ArcSwap, ArcSwapOption};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use error::ErrorCode;
use fastrefund_core::domain::BuyerId;
use fastrefund_core::policy::Policy;
use fastrefund_snapshot::PolicyFileError;
use fastrefund_snapshot::{Manifest, Ratings, SnapshotError};
use fastrefund_store::{CaseAnswer, CaseCall, LedgerError, LedgerStore};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use ops::{ApiDoc, READINESS_INTERVAL};

/// Why the service could not start or reload.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Policy(#[from] PolicyFileError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
    #[error("{0}")]
    Other(String),
}

/// The bearer tokens, compared in constant time (the comparison's timing says nothing
/// about how much of a guess was right).
pub struct Tokens {
    api: String,
    admin: String,
    /// Reviewers' token: `/review…` only (spec §10).
    reviewer: String,
    /// The buyer-link signing key: HMAC-SHA256 of a fixed label under the API token,
    /// so that the bearer token itself never keys anything a buyer's browser holds.
    link_key: [u8; 32],
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Tokens {
    /// The API and admin tokens, with a reviewer token made at random (reviewers are
    /// then let in by none but whoever holds it: see [`Tokens::with_reviewer`]).
    pub fn new(api: &str, admin: &str) -> Tokens {
        Tokens::with_reviewer(api, admin, &config::random_token())
    }

    /// The three tokens.
    pub fn with_reviewer(api: &str, admin: &str, reviewer: &str) -> Tokens {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(api.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(b"fastrefund buyer-page link signing key v1");
        Tokens {
            api: api.to_string(),
            admin: admin.to_string(),
            reviewer: reviewer.to_string(),
            link_key: m.finalize().into_bytes().into(),
        }
    }
    pub fn is_api(&self, t: &str) -> bool {
        constant_time_eq(t.as_bytes(), self.api.as_bytes())
    }
    pub fn is_admin(&self, t: &str) -> bool {
        constant_time_eq(t.as_bytes(), self.admin.as_bytes())
    }
    pub fn is_reviewer(&self, t: &str) -> bool {
        constant_time_eq(t.as_bytes(), self.reviewer.as_bytes())
    }
    /// Key for signing buyer links (derived from, never equal to, the API token).
    fn link_key(&self) -> &[u8] {
        &self.link_key
    }
}

/// A loaded snapshot and where it came from.
pub struct Serving {
    pub ratings: Arc<Ratings>,
    /// A folder, or `embedded`.
    pub source: String,
    pub loaded_at: DateTime<Utc>,
}

struct Inner {
    serving: ArcSwapOption<Serving>,
    policy: ArcSwap<Policy>,
    snapshot_path: Mutex<Option<PathBuf>>,
    policy_path: Mutex<Option<PathBuf>>,
    reload: tokio::sync::Mutex<()>,
    ledger: Arc<dyn LedgerStore>,
    tokens: Tokens,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// How far a client's clock may run ahead of ours, in milliseconds.
    clock_skew_ms: std::sync::atomic::AtomicI64,
    /// The ledger's readiness, asked at most once per interval.
    readiness: ops::Readiness,
    /// Reasons struck by rating cases the buyers won.
    strikes: Arc<strikes::Strikes>,
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The sample snapshot built into the binary.
pub fn embedded_snapshot() -> Result<Ratings, SnapshotError> {
    let dir = Path::new("embedded:data/snapshot");
    let manifest = Manifest::from_json(
        embedded::MANIFEST,
        &dir.join(fastrefund_snapshot::MANIFEST_FILE),
    )?;
    Ratings::from_parts(
        manifest,
        embedded::MODEL,
        bytes::Bytes::from_static(embedded::RATINGS),
        dir,
    )
}

fn load_snapshot(path: Option<&Path>) -> Result<Serving, SnapshotError> {
    let started = std::time::Instant::now();
    let (ratings, source) = match path {
        Some(p) => (files::load_ratings(p)?, p.display().to_string()),
        None => (embedded_snapshot()?, "embedded".to_string()),
    };
    tracing::info!(
        source = %source,
        buyers = ratings.len(),
        model = %ratings.manifest.model_version,
        as_of = %ratings.manifest.as_of,
        seconds = started.elapsed().as_secs_f64(),
        "snapshot loaded"
    );
    Ok(Serving {
        ratings: Arc::new(ratings),
        source,
        loaded_at: Utc::now(),
    })
}

impl AppState {
    /// A state with no snapshot loaded yet (not ready).
    pub fn new(ledger: impl LedgerStore, policy: Policy, tokens: Tokens) -> AppState {
        AppState::with_store(Arc::new(ledger), policy, tokens)
    }

    /// A state on a ledger store chosen at run time (SQLite or PostgreSQL).
    pub fn with_store(ledger: Arc<dyn LedgerStore>, policy: Policy, tokens: Tokens) -> AppState {
        AppState(Arc::new(Inner {
            serving: ArcSwapOption::empty(),
            policy: ArcSwap::from_pointee(policy),
            snapshot_path: Mutex::new(None),
            policy_path: Mutex::new(None),
            reload: tokio::sync::Mutex::new(()),
            ledger,
            tokens,
            metrics: ops::metrics_handle(),
            clock_skew_ms: std::sync::atomic::AtomicI64::new(dto::CLOCK_SKEW.num_milliseconds()),
            readiness: ops::Readiness::new(ops::READINESS_INTERVAL),
            strikes: Arc::default(),
        }))
    }

    /// The reasons struck by rating cases the buyers won ([`strikes`]).
    pub fn strikes(&self) -> &Arc<strikes::Strikes> {
        &self.0.strikes
    }

    /// `buyer`'s rating as served: the snapshot's, corrected by their strikes.
    pub fn served(&self, serving: &Serving, buyer: BuyerId) -> Option<strikes::Served> {
        strikes::served(&serving.ratings, &self.0.strikes, buyer)
    }

    /// Reads the strikes again from the ledger's decided rating cases.
    pub async fn refresh_strikes(&self) -> Result<(), ServeError> {
        let decided = match cases::call(self, CaseCall::DecidedRating).await {
            Ok(CaseAnswer::Many(cases)) => cases,
            Ok(_) => return Err(ServeError::Other("the ledger answered no case list".into())),
            Err(e) => {
                return Err(ServeError::Other(format!(
                    "the decided rating cases could not be read: {}",
                    e.message
                )));
            }
        };
        self.0.strikes.replace(&decided);
        Ok(())
    }

    pub fn tokens(&self) -> &Tokens {
        &self.0.tokens
    }
    pub fn ledger(&self) -> &dyn LedgerStore {
        self.0.ledger.as_ref()
    }
    pub fn serving(&self) -> Option<Arc<Serving>> {
        self.0.serving.load_full()
    }
    pub fn policy(&self) -> Arc<Policy> {
        self.0.policy.load_full()
    }

    /// How far a client's clock may run ahead of ours: a request time later than now
    /// plus this is refused (default [`dto::CLOCK_SKEW`], 5 minutes).
    pub fn clock_skew(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::milliseconds(
            self.0
                .clock_skew_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Sets [`AppState::clock_skew`] (the `clock_skew_ms` setting).
    pub fn set_clock_skew(&self, skew: std::time::Duration) {
        let ms = i64::try_from(skew.as_millis()).unwrap_or(i64::MAX);
        self.0
            .clock_skew_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Loads and checks a snapshot (`None` = the embedded sample) and policy (`None` =
    /// keep the current one) off the async threads, then swaps them in. On any error
    /// nothing changes.
    pub async fn reload(
        &self,
        snapshot: Option<Option<PathBuf>>,
        policy: Option<PathBuf>,
    ) -> Result<(), ServeError> {
        let _one_at_a_time = self.0.reload.lock().await;
        let snap_path = match snapshot {
            Some(p) => p,
            None => self
                .0
                .snapshot_path
                .lock()
                .map(|g| g.clone())
                .unwrap_or(None),
        };
        let policy_path =
            policy.or_else(|| self.0.policy_path.lock().map(|g| g.clone()).unwrap_or(None));
        let (serving, new_policy) = tokio::task::spawn_blocking({
            let snap_path = snap_path.clone();
            let policy_path = policy_path.clone();
            move || -> Result<(Serving, Option<Policy>), ServeError> {
                let serving = load_snapshot(snap_path.as_deref())?;
                let policy = policy_path.as_deref().map(files::load_policy).transpose()?;
                Ok((serving, policy))
            }
        })
        .await
        .map_err(|e| ServeError::Other(format!("reload task failed: {e}")))??;
        // A snapshot is never served without the corrections recorded since.
        self.refresh_strikes().await?;
        self.0.serving.store(Some(Arc::new(serving)));
        if let Ok(mut g) = self.0.snapshot_path.lock() {
            *g = snap_path;
        }
        if let Some(p) = new_policy {
            tracing::info!(version = %p.version, "policy loaded");
            self.0.policy.store(Arc::new(p));
            if let Ok(mut g) = self.0.policy_path.lock() {
                *g = policy_path;
            }
        }
        Ok(())
    }
}

/// Every route, as written in the router (also the metrics' `route` label).
pub const ROUTES: [&str; 24] = [
    "/v1/eligibility",
    "/v1/returns/{return_id}/tracking",
    "/v1/returns/{return_id}/outcome",
    "/v1/buyers/{buyer_id}/exposure",
    "/v1/buyers/{buyer_id}/rating",
    "/v1/buyers/{buyer_id}/link",
    "/buyers/{buyer_id}",
    "/admin/reload",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/v1/cases",
    "/v1/cases/{case_id}",
    "/v1/cases/{case_id}/response",
    "/v1/buyers/{buyer_id}/cases",
    "/review",
    "/review/cases",
    "/review/cases/{case_id}/claim",
    "/review/cases/{case_id}/release",
    "/review/cases/{case_id}/decision",
    "/review/cases/{case_id}/page",
    "/v1/returns/{return_id}/keep",
    "/buyers/{buyer_id}/cases",
];

/// Answers 503 with `Retry-After` at once when `max_in_flight` requests are already
/// being handled, instead of queueing without end.
async fn shed_load(
    axum::extract::State(in_flight): axum::extract::State<Arc<tokio::sync::Semaphore>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match in_flight.try_acquire() {
        Ok(_slot) => next.run(req).await,
        Err(_) => {
            metrics::counter!("fastrefund_http_requests_shed_total").increment(1);
            error::ApiError::overloaded().into_response()
        }
    }
}

/// Answers 503 (with `Retry-After`) for a request not answered within `timeout`, and
/// frees its slot. Dropping the handler is safe: a ledger command it queued runs to its
/// end in the ledger's own task, and a retry gets the recorded answer.
async fn handler_timeout(
    axum::extract::State(timeout): axum::extract::State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("fastrefund_http_handler_timeouts_total").increment(1);
            error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::HandlerTimeout,
                "the request took too long and was given up; retry (a retry of a recorded request gets the recorded answer)",
            )
            .into_response()
        }
    }
}

/// The whole HTTP surface, with the default [`Limits`] but for the body size.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    router_with(state, max_body_bytes, &Limits::default())
}

/// The whole HTTP surface. Around the handlers, outermost first: metrics (so that
/// every answer below is counted), load shedding past `limits.max_in_flight`, the
/// handler timeout (503), the body timeout (408 from the JSON extractor) and the body
/// size limit (413).
pub fn router_with(state: AppState, max_body_bytes: usize, limits: &Limits) -> Router {
    router_for(state, max_body_bytes, limits, true)
}

/// [`router_with`], with `/metrics` among the routes only if `with_metrics` (without
/// it, `/metrics` is served apart by [`metrics_router`] and answers 404 here).
pub fn router_for(
    state: AppState,
    max_body_bytes: usize,
    limits: &Limits,
    with_metrics: bool,
) -> Router {
    let [
        eligibility,
        tracking,
        outcome,
        exposure,
        rating,
        link,
        page,
        reload,
        healthz,
        readyz,
        metrics,
        openapi,
        cases,
        case,
        case_response,
        buyer_cases,
        review,
        review_cases,
        claim,
        release,
        decision,
        case_page,
        keep,
        contest,
    ] = ROUTES;
    let routes = Router::new();
    let routes = if with_metrics {
        routes.route(metrics, get(ops::metrics))
    } else {
        routes
    };
    routes
        .route(eligibility, post(api::eligibility))
        .route(tracking, post(api::tracking))
        .route(outcome, post(api::outcome))
        .route(keep, post(api::keep))
        .route(exposure, get(api::exposure))
        .route(rating, get(api::rating))
        .route(link, post(api::buyer_link))
        .route(
            page,
            get(page::buyer_page).layer(axum::middleware::map_response(page::security_headers)),
        )
        // The buyer's page posts its contest form here (a statement of 4,000
        // characters, percent-encoded, fits the cases' limit).
        .route(
            contest,
            post(contest::contest)
                .layer(DefaultBodyLimit::max(cases::MAX_BODY_BYTES))
                .layer(axum::middleware::map_response(page::security_headers)),
        )
        .route(reload, post(ops::reload))
        .route(healthz, get(ops::healthz))
        .route(readyz, get(ops::readyz))
        .route(openapi, get(ops::openapi))
        // A case's body may carry a 4,000-character statement (up to 12 bytes each as
        // JSON escapes) and 10 links: room for the largest valid one.
        .route(
            cases,
            post(cases::open_case).layer(DefaultBodyLimit::max(cases::MAX_BODY_BYTES)),
        )
        .route(case, get(cases::get_case))
        .route(
            case_response,
            post(cases::respond).layer(DefaultBodyLimit::max(cases::MAX_BODY_BYTES)),
        )
        .route(buyer_cases, get(cases::buyer_cases))
        .route(review, get(cases::queue_page))
        .route(review_cases, get(cases::queue))
        .route(claim, post(cases::claim))
        .route(release, post(cases::release))
        .route(decision, post(cases::decide))
        .route(case_page, get(cases::case_page))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            limits.handler_timeout,
            handler_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(tokio::sync::Semaphore::new(limits.max_in_flight)),
            shed_load,
        ))
        .layer(axum::middleware::from_fn(ops::track_metrics))
        .with_state(state)
}

/// `/metrics` alone, for an admin address of its own (`--metrics-addr`).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .with_state(state)
}

/// The ledger store the settings name (`fastrefund_stores::open`: a PostgreSQL URL or
/// the path of the embedded SQLite ledger).
async fn open_ledger(settings: &Settings) -> Result<Arc<dyn LedgerStore>, ServeError> {
    let options = fastrefund_stores::OpenOptions {
        sqlite: fastrefund_stores::LedgerOptions {
            sync_every_decision: settings.durable_decisions,
        },
        ..Default::default()
    };
    Ok(fastrefund_stores::open(&settings.ledger, options).await?)
}

/// Opens the ledger, loads the policy and snapshot, and serves until SIGINT or SIGTERM.
/// SIGHUP reloads the snapshot and policy from their paths.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    let (Some(api), Some(admin)) = (&settings.api_token, &settings.admin_token) else {
        return Err(ServeError::Other(
            "both tokens are needed: set FASTREFUND_API_TOKEN and FASTREFUND_ADMIN_TOKEN \
             (or let `fastrefund serve` make them with `Settings::with_made_tokens`)"
                .into(),
        ));
    };
    let (api, admin) = (api.clone(), admin.clone());
    let ledger = open_ledger(&settings).await?;
    tracing::info!(ledger = %ledger.describe(), "ledger open");
    let policy = match &settings.policy {
        Some(p) => files::load_policy(p)?,
        None => Policy::default(),
    };
    let tokens = match &settings.reviewer_token {
        Some(reviewer) => Tokens::with_reviewer(&api, &admin, reviewer),
        None => Tokens::new(&api, &admin),
    };
    let state = AppState::with_store(ledger, policy, tokens);
    state.set_clock_skew(settings.clock_skew);
    cases::spawn_gauges(state.clone(), std::time::Duration::from_secs(15));
    // Another replica's decisions reach this one only through a shared ledger; a
    // SQLite ledger has one process writing it (its lock), this one, whose decisions
    // are added at once, and its reads run on the writer, which a refresh would load.
    if fastrefund_stores::is_url(&settings.ledger.to_string_lossy()) {
        strikes::spawn_refresh(state.clone(), strikes::REFRESH);
    }
    if let Some(secret) = settings
        .webhook_secret
        .clone()
        .filter(|_| !settings.webhook_urls.is_empty())
    {
        webhooks::spawn(
            state.clone(),
            webhooks::WebhookSettings {
                urls: settings.webhook_urls.clone(),
                secret,
                poll: std::time::Duration::from_secs(1),
                retry_base: std::time::Duration::from_secs(2),
            },
        )
        .map_err(ServeError::Other)?;
        tracing::info!(
            receivers = settings.webhook_urls.len(),
            "case events go to the webhooks"
        );
    }
    if let Ok(mut g) = state.0.policy_path.lock() {
        *g = settings.policy.clone();
    }
    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr: settings.addr.to_string(),
            message: e.to_string(),
        })?;
    let local = listener
        .local_addr()
        .map_err(|e| ServeError::Other(e.to_string()))?;
    tracing::info!(addr = %local, ledger = %state.ledger().describe(), "listening on http://{local}");

    // Load the snapshot after binding: /healthz answers at once, /readyz when loaded.
    {
        let state = state.clone();
        let snapshot = settings.snapshot.clone();
        tokio::spawn(async move {
            if let Err(e) = state.reload(Some(snapshot), None).await {
                tracing::error!(error = %e, "the snapshot could not be loaded; not ready until a reload succeeds");
            }
        });
    }
    #[cfg(unix)]
    {
        let state = state.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the snapshot and policy");
                if let Err(e) = state.reload(None, None).await {
                    tracing::error!(error = %e, "reload refused; the previous snapshot and policy keep serving");
                }
            }
        });
    }
    // `/metrics` on an admin address of its own, when one is given.
    let admin = match settings.metrics_addr {
        None => None,
        Some(addr) => {
            let listener =
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| ServeError::Bind {
                        addr: addr.to_string(),
                        message: e.to_string(),
                    })?;
            tracing::info!(addr = %addr, "metrics on http://{addr}/metrics");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let server = tokio::spawn(server::run(
                listener,
                metrics_router(state.clone()),
                settings.limits,
                async move {
                    let _ = stopped.await;
                },
            ));
            Some((stop, server))
        }
    };
    let app = router_for(
        state.clone(),
        settings.max_body_bytes,
        &settings.limits,
        admin.is_none(),
    );
    server::run(listener, app, settings.limits, shutdown()).await;
    // A clean stop: the ledger gives back what it holds (PostgreSQL: the unspent slices
    // of the day's budget; a crash instead loses them for the day, never spends them
    // twice).
    if let Err(e) = state.ledger().close().await {
        tracing::warn!(error = %e, "the ledger could not give back its budget slices");
    }
    if let Some((stop, server)) = admin {
        let _ = stop.send(());
        let _ = server.await;
    }
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
