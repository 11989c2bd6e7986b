#![allow(clippy::unwrap_used, clippy::expect_used)]
//! In-process cost of recording decisions, as the service does under load: 16 callers
//! at once on one runtime thread (so one group commit carries them), each a new return
//! of a new buyer that moves no money. `sequential` ids append to the `return_id`
//! index; `random` ids (as a refund service's may be) land on a random leaf each.
//! Run: `cargo bench -p fastrefund-ledger --bench record`.

use chrono::TimeZone;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastrefund_core::domain::{
    BuyerId, Category, MerchantId, OrderId, ReturnId, ReturnReason, ReturnRequest, Star,
};
use fastrefund_core::policy::Policy;
use fastrefund_ledger::Ledger;
use std::sync::Arc;

const CALLERS: u64 = 16;

fn request(id: u64) -> ReturnRequest {
    ReturnRequest {
        return_id: ReturnId(id),
        buyer_id: BuyerId(id),
        order_id: OrderId(id),
        merchant_id: MerchantId(1),
        category: Category::parse("shoes").unwrap(),
        amount: "59.90".parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: chrono::Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: chrono::Utc.with_ymd_and_hms(2026, 7, 1, 2, 0, 0).unwrap(),
        tracking_number: None,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let policy = Arc::new(Policy::default());
    let mut g = c.benchmark_group("record");
    g.throughput(Throughput::Elements(CALLERS));
    for (name, random) in [("sequential", false), ("random", true)] {
        let dir = tempfile::tempdir().unwrap();
        let ledger = rt.block_on(async { Ledger::open(&dir.path().join("l.sqlite")).unwrap() });
        let mut next = 1u64;
        g.bench_function(format!("16_new_decisions_{name}_ids"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let calls = (0..CALLERS).map(|_| {
                        next += 1;
                        // A multiplicative hash spreads the ids over the whole range.
                        let id = if random {
                            next.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1
                        } else {
                            next
                        };
                        let ledger = ledger.clone();
                        let policy = policy.clone();
                        tokio::spawn(async move {
                            let now = chrono::Utc::now();
                            ledger
                                .decide(
                                    request(id),
                                    Star::try_from(3u8).ok(),
                                    policy,
                                    "m".into(),
                                    now,
                                )
                                .await
                                .unwrap()
                        })
                    });
                    let handles: Vec<_> = calls.collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
