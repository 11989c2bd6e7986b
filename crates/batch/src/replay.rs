//! Replaying the return requests of a history against a running service, as the
//! refund services would send them: eligibility, then the tracking number (with the
//! history's shipping time), then the outcome (with the history's outcome time). A
//! group of buyers can be made to keep not shipping after their refunds are advanced,
//! to show the loop close: their losses are recorded, exported and lower their next
//! rating. It doubles as a load generator.

use crate::tables::History;
use fastrefund_core::cols::*;
use fastrefund_core::domain::{Money, Outcome};
use polars::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One return of the history, as a refund service would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayReturn {
    pub return_id: u64,
    pub order_id: u64,
    pub buyer_id: u64,
    pub merchant_id: u64,
    pub category: String,
    /// Cents.
    pub amount_cents: u64,
    pub reason: String,
    pub delivered_at: i64,
    pub requested_at: i64,
    /// The buyer entered a tracking number (shipped, or advanced on a fake one).
    pub tracking: bool,
    /// The history advanced the refund.
    pub advanced: bool,
    pub shipped_at: Option<i64>,
    /// The history's outcome and when it was known (`None` = pending).
    pub outcome: Option<(Outcome, i64)>,
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default()
}

/// The returns asked in `[from, to)` (µs), oldest first, with their order's details.
pub fn returns_in_window(h: &History, from: i64, to: i64) -> PolarsResult<Vec<ReplayReturn>> {
    let df = h
        .returns
        .clone()
        .lazy()
        .filter(
            col(REQUESTED_AT)
                .gt_eq(lit(from))
                .and(col(REQUESTED_AT).lt(lit(to))),
        )
        .join(
            h.orders.clone().lazy().select([
                col(ORDER_ID),
                col(MERCHANT_ID),
                col(CATEGORY),
                col(DELIVERED_AT),
            ]),
            [col(ORDER_ID)],
            [col(ORDER_ID)],
            JoinArgs::new(JoinType::Inner),
        )
        .filter(col(DELIVERED_AT).is_not_null())
        .sort([REQUESTED_AT], SortMultipleOptions::default())
        .collect()?;
    let u = |c: &str| -> PolarsResult<Vec<u64>> {
        Ok(df
            .column(c)?
            .u64()?
            .iter()
            .map(|v| v.unwrap_or(0))
            .collect())
    };
    let t =
        |c: &str| -> PolarsResult<Vec<Option<i64>>> { Ok(df.column(c)?.i64()?.iter().collect()) };
    let s = |c: &str| -> PolarsResult<Vec<String>> {
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let (rid, oid, bid, mid) = (u(RETURN_ID)?, u(ORDER_ID)?, u(BUYER_ID)?, u(MERCHANT_ID)?);
    let (cat, reason, outcome) = (s(CATEGORY)?, s(REASON)?, s(OUTCOME)?);
    let (delivered, requested, shipped, outcome_at) = (
        t(DELIVERED_AT)?,
        t(REQUESTED_AT)?,
        t(SHIPPED_AT)?,
        t(OUTCOME_AT)?,
    );
    let amount: Vec<f64> = df
        .column(AMOUNT)?
        .f64()?
        .iter()
        .map(|v| v.unwrap_or(0.0))
        .collect();
    let advanced: Vec<bool> = df
        .column(ADVANCED)?
        .bool()?
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect();
    Ok((0..df.height())
        .map(|i| ReplayReturn {
            return_id: rid[i],
            order_id: oid[i],
            buyer_id: bid[i],
            merchant_id: mid[i],
            category: cat[i].clone(),
            amount_cents: (amount[i] * 100.0).round() as u64,
            reason: reason[i].clone(),
            delivered_at: delivered[i].unwrap_or(0),
            requested_at: requested[i].unwrap_or(0),
            tracking: advanced[i] || shipped[i].is_some(),
            advanced: advanced[i],
            shipped_at: shipped[i],
            outcome: outcome[i]
                .parse::<Outcome>()
                .ok()
                .filter(|o| *o != Outcome::Pending)
                .zip(outcome_at[i]),
        })
        .collect())
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
    r: &ReplayReturn,
    t: &Mutex<Tally>,
) -> Result<(), String> {
    let amount = Money::from_cents(r.amount_cents).to_string();
    let started = Instant::now();
    let (s, d) = post(
        client,
        o,
        "/v1/eligibility",
        json!({
            "return_id": r.return_id, "buyer_id": r.buyer_id, "order_id": r.order_id,
            "merchant_id": r.merchant_id, "category": r.category, "amount": amount,
            "reason": r.reason, "delivered_at": rfc3339(r.delivered_at), "requested_at": rfc3339(r.requested_at)
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
    let (s, tr) = post(
        client,
        o,
        &format!("/v1/returns/{}/tracking", r.return_id),
        json!({"tracking_number": format!("R{}", r.return_id), "shipped_at": rfc3339(shipped)}),
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
    let (s, out) = post(
        client,
        o,
        &format!("/v1/returns/{}/outcome", r.return_id),
        json!({"outcome": outcome.as_str(), "at": rfc3339(at)}),
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

/// Sends every return through the service with `concurrency` requests in flight.
pub async fn replay(returns: Vec<ReplayReturn>, o: ReplayOptions) -> ReplayReport {
    let started = Instant::now();
    let n = returns.len();
    let queue = Arc::new(Mutex::new(returns.into_iter().rev().collect::<Vec<_>>()));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let o = Arc::new(o);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency.max(1))
        .build()
        .unwrap_or_default();
    let mut workers = Vec::new();
    for _ in 0..o.concurrency.max(1) {
        let (queue, tally, o, client) = (queue.clone(), tally.clone(), o.clone(), client.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop());
                let Some(r) = next else { break };
                if let Err(e) = one(&client, &o, &r, &tally).await {
                    tracing::warn!(error = %e, "replay request failed");
                    if let Ok(mut t) = tally.lock() {
                        t.report.errors += 1;
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let mut t = match Arc::try_unwrap(tally) {
        Ok(m) => m.into_inner().unwrap_or_default(),
        Err(a) => a
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default(),
    };
    t.latencies.sort_unstable();
    let pct = |p: f64| {
        t.latencies
            .get(((t.latencies.len() as f64 * p) as usize).min(t.latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    let seconds = started.elapsed().as_secs_f64();
    ReplayReport {
        returns: n as u64,
        advanced_value: Money::from_cents(t.advanced_cents).to_string(),
        loss_value: Money::from_cents(t.loss_cents).to_string(),
        seconds,
        requests_per_second: t.report.requests as f64 / seconds.max(1e-9),
        eligibility_p50_us: pct(0.5),
        eligibility_p99_us: pct(0.99),
        ..t.report
    }
}
