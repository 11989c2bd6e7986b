//! Told, not polled: every case event reaches the configured receivers (the refund
//! service, the merchant's system) as JSON, at least once.
//!
//! A move writes its events to the ledger's outbox in the same transaction as the move
//! (`fastrefund_ledger::cases`), so an event exists exactly when its move does. This
//! worker claims due events (a lease, so replicas rarely send the same one at once),
//! POSTs each to every receiver, and marks it delivered once every receiver answered
//! 2xx; otherwise it is tried again after a backoff that doubles from
//! [`WebhookSettings::retry_base`] up to an hour. A receiver that was down gets every
//! event once it is back; one that got an event already may get it again, and
//! deduplicates by its `event_id`.
//!
//! Each request is signed as Stripe documents its scheme: the header
//! `Fastrefund-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`;
//! a receiver recomputes it over the raw body and refuses a stale `t`.

use crate::AppState;
use chrono::Utc;
use fastrefund_store::{CaseAnswer, CaseCall, OutboxEvent};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::time::Duration;

/// Where and how events are sent.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The receivers (`http://` or `https://`).
    pub urls: Vec<String>,
    /// The HMAC key that signs every request.
    pub secret: String,
    /// How often the outbox is looked at (default 1 s).
    pub poll: Duration,
    /// The first retry's delay, doubled on every failure up to an hour (default 2 s).
    pub retry_base: Duration,
}

/// `t=…,v1=…`: the signature of `body` sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    m.update(format!("{t}.").as_bytes());
    m.update(body.as_bytes());
    format!("t={t},v1={}", hex::encode(m.finalize().into_bytes()))
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

fn client() -> Result<HttpsClient, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("the system's root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(hyper_util::rt::TokioExecutor::new()).build(https))
}

/// Starts the delivery worker (a task; it ends with the runtime).
pub fn spawn(state: AppState, settings: WebhookSettings) -> Result<(), String> {
    let client = client()?;
    tokio::spawn(async move {
        loop {
            let delivered = deliver_due(&state, &client, &settings).await;
            if delivered == 0 {
                tokio::time::sleep(settings.poll).await;
            }
        }
    });
    Ok(())
}

/// One round: claims the due events and tries each once. Returns how many were
/// delivered.
async fn deliver_due(state: &AppState, client: &HttpsClient, s: &WebhookSettings) -> usize {
    let deadlines = state.policy().cases;
    let call = CaseCall::OutboxDue {
        limit: 50,
        lease: chrono::Duration::seconds(30),
    };
    let due = match state.ledger().cases(call, deadlines, Utc::now()).await {
        Ok(CaseAnswer::Outbox(due)) => due,
        Ok(_) => return 0,
        Err(e) => {
            tracing::warn!(error = %e, "webhooks: the outbox cannot be read now");
            return 0;
        }
    };
    let mut delivered = 0;
    for event in due {
        let ok = send_everywhere(client, s, &event).await;
        let backoff = s
            .retry_base
            .saturating_mul(1 << event.attempts.min(16))
            .min(Duration::from_secs(3600));
        let retry_at = Utc::now() + chrono::Duration::from_std(backoff).unwrap_or_default();
        let done = CaseCall::OutboxDone {
            event_id: event.event_id.clone(),
            delivered: ok,
            retry_at,
        };
        metrics::counter!("fastrefund_webhook_deliveries_total", "result" => if ok { "delivered" } else { "retried" })
            .increment(1);
        if let Err(e) = state.ledger().cases(done, deadlines, Utc::now()).await {
            tracing::warn!(error = %e, event = %event.event_id, "webhooks: a delivery could not be recorded (it will be sent again)");
        }
        delivered += usize::from(ok);
    }
    delivered
}

/// POSTs `event` to every receiver; whether every one answered 2xx in time.
async fn send_everywhere(client: &HttpsClient, s: &WebhookSettings, event: &OutboxEvent) -> bool {
    let t = Utc::now().timestamp();
    let sig = signature(&s.secret, t, &event.body);
    let mut all = true;
    for url in &s.urls {
        let req = hyper::Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header("fastrefund-signature", &sig)
            .header("fastrefund-event-id", &event.event_id)
            .body(Full::new(Bytes::from(event.body.clone())));
        let ok = match req {
            Ok(req) => matches!(
                tokio::time::timeout(Duration::from_secs(5), client.request(req)).await,
                Ok(Ok(r)) if r.status().is_success()
            ),
            Err(_) => false,
        };
        if !ok {
            tracing::debug!(url, event = %event.event_id, attempts = event.attempts, "webhook not delivered; will retry");
        }
        all &= ok;
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_over_the_time_and_the_body() {
        // `printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }
}
