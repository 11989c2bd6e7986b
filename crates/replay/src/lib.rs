//! Replaying the return requests of a history against a running service, as the
//! refund services would send them: eligibility, then the tracking number (with the
//! history's shipping time), then the outcome (with the history's outcome time). A
//! group of buyers can be made to keep not shipping after their refunds are advanced,
//! to show the loop close: their losses are recorded, exported and lower their next
//! rating. It doubles as a load generator.
//!
//! An HTTP client with no polars: the batch side reads the history's returns
//! (`fastrefund_batch::history_returns`) and hands them here as plain
//! [`HistoryReturn`]s. A time the service could not be sent (out of range) fails that
//! return, named and counted in [`ReplayReport::errors`], never sent as the epoch or
//! an empty text.

use fastrefund_core::domain::{HistoryReturn, Money, Outcome};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why the replay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("concurrency must be at least 1 request in flight")]
    NoConcurrency,
}

/// A time of the history as RFC 3339, or an error naming the return and the time.
fn rfc3339(r: &HistoryReturn, what: &str, micros: i64) -> Result<String, String> {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339())
        .ok_or_else(|| {
            format!(
                "return {}: {what} ({micros} µs since the epoch) is out of range",
                r.return_id
            )
        })
}

/// Where to send the traffic and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// e.g. `http://127.0.0.1:8080`
    pub base: String,
    pub token: String,
    /// Requests in flight.
    pub concurrency: usize,
    /// Buyers who never ship after an advance (their outcome becomes `not_shipped`).
    pub not_shipping: HashSet<u64>,
    /// Send outcomes too.
    pub outcomes: bool,
}

/// What the replay saw.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ReplayReport {
    pub returns: u64,
    pub instant: u64,
    pub pickups: u64,
    pub advanced: u64,
    pub advanced_value: String,
    pub losses: u64,
    pub loss_value: String,
    pub refused_advances: u64,
    pub errors: u64,
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    /// Latency of eligibility calls, microseconds.
    pub eligibility_p50_us: u64,
    pub eligibility_p99_us: u64,
}

#[derive(Default)]
struct Tally {
    report: ReplayReport,
    advanced_cents: u64,
    loss_cents: u64,
    latencies: Vec<u64>,
}

async fn post(
    client: &reqwest::Client,
    o: &ReplayOptions,
    path: &str,
    body: Value,
) -> Result<(u16, Value), String> {
    let r = client
        .post(format!("{}{path}", o.base))
        .bearer_auth(&o.token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let s = r.status().as_u16();
    Ok((s, r.json().await.map_err(|e| e.to_string())?))
}

async fn one(
    client: &reqwest::Client,
    o: &ReplayOptions,
    r: &HistoryReturn,
    t: &Mutex<Tally>,
) -> Result<(), String> {
    let amount = Money::from_cents(r.amount_cents).to_string();
    let delivered_at = rfc3339(r, "delivered_at", r.delivered_at)?;
    let requested_at = rfc3339(r, "requested_at", r.requested_at)?;
    let started = Instant::now();
    let (s, d) = post(
        client,
        o,
        "/v1/eligibility",
        json!({
            "return_id": r.return_id, "buyer_id": r.buyer_id, "order_id": r.order_id,
            "merchant_id": r.merchant_id, "category": r.category, "amount": amount,
            "reason": r.reason, "delivered_at": delivered_at, "requested_at": requested_at
        }),
    )
    .await?;
    let micros = started.elapsed().as_micros() as u64;
    if s != 200 {
        return Err(format!("eligibility {}: {s} {d}", r.return_id));
    }
    let instant = d["instant_address_release"] == true;
    {
        let mut t = t.lock().map_err(|e| e.to_string())?;
        t.latencies.push(micros);
        t.report.requests += 1;
        t.report.instant += u64::from(instant);
        t.report.pickups += u64::from(d["courier_pickup"] == true);
    }
    let bad = o.not_shipping.contains(&r.buyer_id);
    if !(instant && (r.tracking || bad)) {
        return Ok(());
    }
    let shipped = r.shipped_at.unwrap_or(r.requested_at + 3_600_000_000);
    let shipped = rfc3339(r, "shipped_at", shipped)?;
    let (s, tr) = post(
        client,
        o,
        &format!("/v1/returns/{}/tracking", r.return_id),
        json!({"tracking_number": format!("R{}", r.return_id), "shipped_at": shipped}),
    )
    .await?;
    if s != 200 {
        return Err(format!("tracking {}: {s} {tr}", r.return_id));
    }
    let advanced = tr["advanced"] == true;
    {
        let mut t = t.lock().map_err(|e| e.to_string())?;
        t.report.requests += 1;
        if advanced {
            t.report.advanced += 1;
            t.advanced_cents += r.amount_cents;
        } else {
            t.report.refused_advances += 1;
        }
    }
    if !(advanced && o.outcomes) {
        return Ok(());
    }
    let outcome = if bad {
        Some((Outcome::NotShipped, r.requested_at + 10 * 86_400_000_000))
    } else {
        r.outcome
    };
    let Some((outcome, at)) = outcome else {
        return Ok(());
    };
    let at = rfc3339(r, "outcome_at", at)?;
    let (s, out) = post(
        client,
        o,
        &format!("/v1/returns/{}/outcome", r.return_id),
        json!({"outcome": outcome.as_str(), "at": at}),
    )
    .await?;
    if s != 200 {
        return Err(format!("outcome {}: {s} {out}", r.return_id));
    }
    let mut t = t.lock().map_err(|e| e.to_string())?;
    t.report.requests += 1;
    if out["loss"] == true {
        t.report.losses += 1;
        t.loss_cents += r.amount_cents;
    }
    Ok(())
}

/// Locks a mutex of the replay; a worker that panicked holding it left counts and a
/// queue that are still whole (each is changed in one step), so they are read on.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends every return through the service with `concurrency` requests in flight. A
/// return that fails (a refused call, a time out of range, a worker that panicked) is
/// logged and counted in [`ReplayReport::errors`]; the others go on.
pub async fn replay(
    returns: Vec<HistoryReturn>,
    o: ReplayOptions,
) -> Result<ReplayReport, ReplayError> {
    if o.concurrency == 0 {
        return Err(ReplayError::NoConcurrency);
    }
    let started = Instant::now();
    let n = returns.len();
    let queue = Arc::new(Mutex::new(returns.into_iter().rev().collect::<Vec<_>>()));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let o = Arc::new(o);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    let mut workers = Vec::new();
    for _ in 0..o.concurrency {
        let (queue, tally, o, client) = (queue.clone(), tally.clone(), o.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = lock(&queue).pop();
                let Some(r) = next else { break };
                if let Err(e) = one(&client, &o, &r, &tally).await {
                    tracing::warn!(error = %e, "replay request failed");
                    lock(&tally).report.errors += 1;
                }
            }
        }));
    }
    for w in workers {
        if let Err(e) = w.await {
            // The return it was sending is lost to the replay: say so and count it.
            tracing::error!(error = %e, "a replay worker stopped");
            lock(&tally).report.errors += 1;
        }
    }
    let mut t = std::mem::take(&mut *lock(&tally));
    t.latencies.sort_unstable();
    let pct = |p: f64| {
        t.latencies
            .get(((t.latencies.len() as f64 * p) as usize).min(t.latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(ReplayReport {
        returns: n as u64,
        advanced_value: Money::from_cents(t.advanced_cents).to_string(),
        loss_value: Money::from_cents(t.loss_cents).to_string(),
        seconds,
        requests_per_second: t.report.requests as f64 / seconds.max(1e-9),
        eligibility_p50_us: pct(0.5),
        eligibility_p99_us: pct(0.99),
        ..t.report
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a_return(id: u64, requested_at: i64) -> HistoryReturn {
        HistoryReturn {
            return_id: id,
            order_id: id,
            buyer_id: 100_001,
            merchant_id: 1,
            category: "shoes".into(),
            amount_cents: 5_990,
            reason: "no_reason".into(),
            delivered_at: 0,
            requested_at,
            tracking: true,
            advanced: false,
            shipped_at: None,
            outcome: None,
        }
    }

    #[test]
    fn a_time_out_of_range_names_the_return_and_is_never_the_epoch() {
        let r = a_return(7, i64::MAX);
        let e = rfc3339(&r, "requested_at", r.requested_at).unwrap_err();
        assert!(e.starts_with("return 7: requested_at"), "{e}");
        assert_eq!(
            rfc3339(&r, "delivered_at", 0).unwrap(),
            "1970-01-01T00:00:00+00:00"
        );
    }

    /// Every return that cannot be sent (here: no service listens, or its time is out of
    /// range) is counted in `errors`; the replay itself finishes.
    #[tokio::test]
    async fn returns_that_fail_are_counted_not_dropped() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let report = replay(
            vec![a_return(1, 1_000_000), a_return(2, i64::MAX)],
            ReplayOptions {
                base,
                token: "t".into(),
                concurrency: 2,
                not_shipping: HashSet::new(),
                outcomes: true,
            },
        )
        .await
        .unwrap();
        assert_eq!((report.returns, report.errors, report.requests), (2, 2, 0));
    }
}
