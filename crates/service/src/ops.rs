//! Operations endpoints (health, readiness, metrics, OpenAPI, reload) and the metrics
//! middleware.

use super::AppState;
use super::dto::*;
use super::error::ErrorCode;
use super::error::{ApiError, ErrorBody, ErrorDetail};
use super::extract::{AdminCaller, parse_json};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The OpenAPI document, generated from the handlers and DTOs.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fastrefund",
        description = "Buyer star ratings and fast-refund eligibility: instant address release, courier pickup and platform-advanced refunds, decided in microseconds and recorded durably."
    ),
    paths(
        super::api::eligibility,
        super::api::tracking,
        super::api::outcome,
        super::api::keep,
        super::api::exposure,
        super::api::rating,
        super::api::buyer_link,
        super::page::buyer_page,
        super::contest::contest,
        reload,
        healthz,
        readyz,
        metrics,
        super::cases::open_case,
        super::cases::get_case,
        super::cases::respond,
        super::cases::buyer_cases,
        super::cases::queue,
        super::cases::claim,
        super::cases::release,
        super::cases::decide,
        super::cases::queue_page,
        super::cases::case_page,
    ),
    components(schemas(
        EligibilityRequest, EligibilityResponse, ReasonDto, OutcomeDto, ReasonDtoOut,
        TrackingRequest, TrackingResponse, OutcomeRequest, OutcomeResponse, ExposureResponse,
        KeepRequest, KeepResponse,
        RatingResponse, ReasonExplained, NextStar, BuyerLink, ReloadRequest, ServingInfo,
        ErrorBody, ErrorDetail, super::error::ErrorCode, Health,
        super::cases::OpenCaseRequest, super::cases::CaseKindDto, super::cases::PartyDto,
        super::cases::CaseResponseRequest, super::cases::ClaimRequest,
        super::cases::DecisionRequest, super::cases::VerdictDto,
        super::cases::CorrectedOutcomeDto, super::cases::CaseDto, super::cases::CaseEventDto,
        super::cases::CaseList, super::contest::ContestForm
    )),
    modifiers(&BearerAuth, &EdgeResponses, &Links),
    tags(
        (name = "refund services", description = "Called on every return request"),
        (name = "buyers", description = "A buyer's own star and why"),
        (name = "operations", description = "Health, readiness, metrics, reload"),
        (name = "cases", description = "A buyer or a merchant contests a decision (spec §10)"),
        (name = "reviewers", description = "The reviewers' queue and decisions (the reviewer token)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

/// What any route can answer because of the edge limits (see `server`): 503 when too
/// many requests are in flight or a handler took too long (with `Retry-After`), and 408
/// for a body that stalls. Added to every operation that does not document it itself.
struct EdgeResponses;

impl Modify for EdgeResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let error = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                let has_body = op.request_body.is_some();
                let responses = &mut op.responses.responses;
                responses.entry("503".into()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description("Too many requests in flight (`overloaded`), or the request took too long (`handler_timeout`); retry after `Retry-After` seconds")
                        .content("application/json", error())
                        .build()
                        .into()
                });
                if has_body {
                    responses.entry("408".into()).or_insert_with(|| {
                        ResponseBuilder::new()
                            .description("The body did not arrive in time (`body_timeout`)")
                            .content("application/json", error())
                            .build()
                            .into()
                    });
                }
            }
        }
    }
}

/// OpenAPI links, so that a client (and a stateful fuzzer) can follow a return through
/// its life: a decision's `return_id` to its tracking number, and on to its outcome.
struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::link::LinkBuilder;
        let link = |op: &str, what: &str| {
            LinkBuilder::new()
                .operation_id(op)
                .parameter("return_id", "$response.body#/return_id")
                .description(what)
                .build()
        };
        let mut add = |path: &str, name: &str, op: &str, what: &str| {
            let response = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|o| o.responses.responses.get_mut("200"));
            if let Some(RefOr::T(r)) = response {
                r.links.insert(name.into(), RefOr::T(link(op, what)));
            }
        };
        add(
            "/v1/eligibility",
            "Tracking",
            "tracking",
            "enter the return parcel's tracking number",
        );
        add(
            "/v1/eligibility",
            "Outcome",
            "outcome",
            "settle the return with its outcome",
        );
        add(
            "/v1/returns/{return_id}/tracking",
            "Outcome",
            "outcome",
            "settle the advanced return with its outcome",
        );
        add(
            "/v1/eligibility",
            "Keep",
            "keep",
            "take the refund-without-return offer: the buyer keeps the goods",
        );
        // A case from its opening on: read it, answer it, claim and decide it.
        let case_link = |op: &str, what: &str| {
            LinkBuilder::new()
                .operation_id(op)
                .parameter("case_id", "$response.body#/case_id")
                .description(what)
                .build()
        };
        for (path, method_post, links) in [
            (
                "/v1/cases",
                true,
                &[
                    ("Case", "get_case", "read the case and its trail"),
                    ("Response", "respond", "the other party answers"),
                    ("Claim", "claim", "a reviewer claims the case"),
                ][..],
            ),
            (
                "/review/cases/{case_id}/claim",
                true,
                &[
                    ("Decision", "decide", "decide the claimed case"),
                    ("Release", "release", "let the case go back to the queue"),
                ][..],
            ),
        ] {
            let item = openapi.paths.paths.get_mut(path);
            let op = item.and_then(|i| {
                if method_post {
                    i.post.as_mut()
                } else {
                    i.get.as_mut()
                }
            });
            let Some(op) = op else { continue };
            for status in ["200", "201"] {
                if let Some(RefOr::T(r)) = op.responses.responses.get_mut(status) {
                    for (name, target, what) in links {
                        r.links
                            .insert((*name).into(), RefOr::T(case_link(target, what)));
                    }
                }
            }
        }
    }
}

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 1.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("seconds".into()), &buckets)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("fastrefund_ledger_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
                    )
                })
                .map(|b| b.build_recorder());
            match recorder {
                Ok(r) => {
                    let h = r.handle();
                    // Another recorder may already be installed (tests): then this
                    // handle renders an empty registry, which is harmless.
                    let _ = metrics::set_global_recorder(r);
                    h
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot build the Prometheus recorder");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// Statuses whose request counters are cached per route (others take the registry's
/// lookup).
const CACHED_STATUSES: [u16; 12] = [200, 400, 401, 403, 404, 405, 409, 413, 415, 422, 500, 503];

/// Metric handles of one (route, method): made on first use, then reused. Looking a
/// labelled metric up in the registry (hashing its labels) on every request cost
/// about 3% of the server's CPU under load.
struct RouteMetrics {
    duration: OnceLock<metrics::Histogram>,
    count: [OnceLock<metrics::Counter>; CACHED_STATUSES.len()],
}

static ROUTE_METRICS: std::sync::LazyLock<Vec<RouteMetrics>> = std::sync::LazyLock::new(|| {
    (0..super::ROUTES.len() * 2)
        .map(|_| RouteMetrics {
            duration: OnceLock::new(),
            count: std::array::from_fn(|_| OnceLock::new()),
        })
        .collect()
});

/// The `status` label: one of the statuses the service answers, or `other`.
fn status_label(status: u16) -> metrics::SharedString {
    match CACHED_STATUSES.iter().position(|s| *s == status) {
        Some(i) => STATUS_LABELS[i].into(),
        None => "other".into(),
    }
}

const STATUS_LABELS: [&str; CACHED_STATUSES.len()] = [
    "200", "400", "401", "403", "404", "405", "409", "413", "415", "422", "500", "503",
];

/// Methods that get a label of their own; any other method is counted as `other`.
const METHODS: [axum::http::Method; 2] = [axum::http::Method::GET, axum::http::Method::POST];

/// Counts requests and their latency per route. Every label comes from a closed set
/// (the router's routes or `other`, GET/POST or `other`, the statuses the service
/// answers or `other`), so no client can make the series, and the memory behind them,
/// grow: a made-up method or path lands in `other`.
pub async fn track_metrics(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route_no = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| super::ROUTES.iter().position(|r| *r == p.as_str()));
    let method_no = METHODS.iter().position(|m| m == req.method());
    // Labels are static strings: no allocation, and nothing a client chose.
    let route: metrics::SharedString = route_no.map_or("other", |r| super::ROUTES[r]).into();
    let method: metrics::SharedString = method_no.map_or("other", |m| ["GET", "POST"][m]).into();
    // The cached handles of a known route and method.
    let slots = route_no
        .zip(method_no)
        .map(|(r, m)| &ROUTE_METRICS[r * 2 + m]);
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let counter = || metrics::counter!("fastrefund_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status_label(status));
    match slots.zip(CACHED_STATUSES.iter().position(|s| *s == status)) {
        Some((slots, i)) => slots.count[i].get_or_init(counter).increment(1),
        None => counter().increment(1),
    }
    let histogram = || metrics::histogram!("fastrefund_http_request_duration_seconds", "method" => method.clone(), "route" => route.clone());
    let seconds = started.elapsed().as_secs_f64();
    match slots {
        Some(slots) => slots.duration.get_or_init(histogram).record(seconds),
        None => histogram().record(seconds),
    }
    response
}

/// Process health.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Health {
    pub status: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

fn serving_info(state: &AppState) -> Option<ServingInfo> {
    let s = state.serving()?;
    Some(ServingInfo {
        model_version: s.ratings.manifest.model_version.clone(),
        as_of: s.ratings.manifest.as_of.to_string(),
        buyers: s.ratings.len() as u64,
        policy_version: state.policy().version.clone(),
        snapshot_source: s.source.clone(),
    })
}

/// How often `/readyz` asks the ledger at most; between two asks every call gets the
/// last answer.
pub const READINESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The ledger's readiness, asked at most once per interval and shared: after a failed
/// commit the ledger's check is a probe write on a blocking thread, and a load
/// balancer (or an attacker) calling `/readyz` in a loop must not turn one fault into
/// a probe, a connection and a warning per call. One caller probes while the others
/// wait for its answer; the answer serves every call for the interval; a change of
/// state (ready to not ready, and back) is logged once.
pub struct Readiness {
    interval: std::time::Duration,
    last: std::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    probing: tokio::sync::Mutex<()>,
    healthy: std::sync::atomic::AtomicBool,
    changes: std::sync::atomic::AtomicU64,
}

impl Readiness {
    pub fn new(interval: std::time::Duration) -> Readiness {
        Readiness {
            interval,
            last: std::sync::Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
            healthy: std::sync::atomic::AtomicBool::new(true),
            changes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The last answer, if younger than the interval.
    fn fresh(&self) -> Option<Result<(), String>> {
        let last = self.last.lock().ok()?;
        let (at, answer) = last.as_ref()?;
        (at.elapsed() < self.interval).then(|| answer.clone())
    }

    /// The shared answer: the last one while fresh, else `probe`'s (run by one caller
    /// at a time; those waiting take its answer).
    pub async fn check<F, Fut>(&self, probe: F) -> Result<(), String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        if let Some(answer) = self.fresh() {
            return answer;
        }
        let _one_at_a_time = self.probing.lock().await;
        if let Some(answer) = self.fresh() {
            return answer;
        }
        let answer = probe().await;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((std::time::Instant::now(), answer.clone()));
        }
        let ok = answer.is_ok();
        metrics::gauge!("fastrefund_ledger_healthy").set(if ok { 1.0 } else { 0.0 });
        if self.healthy.swap(ok, std::sync::atomic::Ordering::Relaxed) != ok {
            self.changes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match &answer {
                Ok(()) => tracing::info!("ready again: the ledger can record"),
                Err(why) => tracing::warn!(error = %why, "not ready: the ledger cannot record"),
            }
        }
        answer
    }

    /// How many times the state changed (each logged once).
    #[cfg(test)]
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Ready only with a valid snapshot loaded and a ledger that can record. After a failed
/// commit (disk full, a read-only file) the ledger is probed with a small write, at most
/// once per [`READINESS_INTERVAL`] whoever calls, so readiness comes back by itself once
/// the fault is gone; after a failed fdatasync it never does (the service must be
/// restarted; see the ledger's `Health`).
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Serving", body = ServingInfo),
    (status = 503, description = "No valid snapshot yet, or the ledger cannot record (the message says why)", body = ErrorBody),
))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<ServingInfo>, ApiError> {
    let info = serving_info(&state).ok_or_else(ApiError::not_ready)?;
    let ledger = state.0.ledger.clone();
    if state.0.readiness.check(|| ledger.ready()).await.is_err() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::LedgerUnavailable,
            "the ledger cannot record now; see the service's log",
        ));
    }
    Ok(Json(info))
}

/// Prometheus metrics: requests and latency per route, decisions by outcome, ledger
/// batches, snapshot age.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    if let Some(s) = state.serving() {
        let now = chrono::Utc::now();
        metrics::gauge!("fastrefund_snapshot_age_seconds")
            .set((now - s.ratings.manifest.created_at).num_milliseconds() as f64 / 1000.0);
        metrics::gauge!("fastrefund_snapshot_loaded_seconds_ago")
            .set((now - s.loaded_at).num_milliseconds() as f64 / 1000.0);
        metrics::gauge!("fastrefund_snapshot_buyers").set(s.ratings.len() as f64);
    }
    metrics::gauge!("fastrefund_ready").set(if state.serving().is_some() { 1.0 } else { 0.0 });
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.0.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI document.
pub async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(j) => ([(header::CONTENT_TYPE, "application/json")], j).into_response(),
        Err(e) => ApiError::internal("cannot serialise the OpenAPI document", e).into_response(),
    }
}

/// Reload the snapshot and/or policy (admin). The new ones are checked first; if either
/// is invalid nothing changes and the old ones keep serving.
#[utoipa::path(
    post, path = "/admin/reload", tag = "operations",
    request_body(content = ReloadRequest, description = "Optional: new paths; empty = reload the current ones from disk"),
    responses(
        (status = 200, description = "Now serving", body = ServingInfo),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "Not the admin token", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "The new snapshot or policy is invalid (named); nothing changed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn reload(
    _: AdminCaller,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<ServingInfo>, ApiError> {
    let req: ReloadRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReloadRequest::default()
    } else {
        parse_json(&body)?
    };
    let snapshot = req.snapshot.map(|p| Some(p.into()));
    let policy = req.policy.map(Into::into);
    if let Err(e) = state.reload(snapshot, policy).await {
        tracing::error!(error = %e, "reload refused; the previous snapshot and policy keep serving");
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::ReloadRefused,
            e.to_string(),
        ));
    }
    serving_info(&state)
        .map(Json)
        .ok_or_else(ApiError::not_ready)
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such endpoint; see /openapi.json",
    )
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method",
    )
}

#[cfg(test)]
mod tests {
    use super::Readiness;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// Issue 26, item 5: each `/readyz` of an unhealthy ledger used to probe it (a
    /// connection and a 1 MiB write on a blocking thread) and log a warning.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unhealthy_ledger_is_probed_once_per_interval_whoever_asks() {
        let readiness = Arc::new(Readiness::new(Duration::from_millis(300)));
        let probes = Arc::new(AtomicU32::new(0));
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ask = || {
            let (readiness, probes, healthy) = (readiness.clone(), probes.clone(), healthy.clone());
            tokio::spawn(async move {
                readiness
                    .check(|| async move {
                        probes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await; // a slow probe
                        if healthy.load(Ordering::SeqCst) {
                            Ok(())
                        } else {
                            Err("disk full".to_string())
                        }
                    })
                    .await
            })
        };
        // 200 calls at once: one probe, its answer shared.
        let calls: Vec<_> = (0..200).map(|_| ask()).collect();
        for c in calls {
            assert_eq!(c.await.unwrap(), Err("disk full".to_string()));
        }
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        assert_eq!(readiness.changes(), 1, "the fault is logged once");
        // More calls within the interval: still the one probe.
        for _ in 0..50 {
            assert!(ask().await.unwrap().is_err());
        }
        assert_eq!(probes.load(Ordering::SeqCst), 1);
        // After the interval, one probe more; still unhealthy: nothing new is logged.
        tokio::time::sleep(Duration::from_millis(350)).await;
        let calls: Vec<_> = (0..50).map(|_| ask()).collect();
        for c in calls {
            assert!(c.await.unwrap().is_err());
        }
        assert_eq!(probes.load(Ordering::SeqCst), 2);
        assert_eq!(readiness.changes(), 1);
        // The fault goes: ready again at the next probe, logged once.
        healthy.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(350)).await;
        for _ in 0..20 {
            assert_eq!(ask().await.unwrap(), Ok(()));
        }
        assert_eq!(probes.load(Ordering::SeqCst), 3);
        assert_eq!(readiness.changes(), 2);
    }
}
