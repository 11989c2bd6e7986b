#![allow(clippy::unwrap_used, clippy::expect_used)]
//! In-process speed of what every request does: `policy::decide`, a snapshot lookup,
//! and scoring one buyer. Run: `cargo bench --bench hot_path`.

use chrono::TimeZone;
use criterion::{Criterion, criterion_group, criterion_main};
use fastrefund_core::domain::{
    BuyerId, Category, MerchantId, OrderId, ReturnId, ReturnReason, ReturnRequest, Star,
};
use fastrefund_core::policy::{LedgerView, Policy, decide};
use std::hint::black_box;

fn request(tracking: bool) -> ReturnRequest {
    ReturnRequest {
        return_id: ReturnId(1),
        buyer_id: BuyerId(100_001),
        order_id: OrderId(7),
        merchant_id: MerchantId(3),
        category: Category::parse("womens_wear").unwrap(),
        amount: "199.00".parse().unwrap(),
        reason: ReturnReason::NoReason,
        delivered_at: chrono::Utc.with_ymd_and_hms(2026, 6, 30, 2, 0, 0).unwrap(),
        requested_at: chrono::Utc.with_ymd_and_hms(2026, 7, 2, 2, 0, 0).unwrap(),
        tracking_number: tracking.then(|| "SF1234567".to_string()),
    }
}

fn bench(c: &mut Criterion) {
    let policy = Policy::default();
    let view = LedgerView::default();
    let now = chrono::Utc.with_ymd_and_hms(2026, 7, 2, 2, 0, 1).unwrap();
    let instant = request(true);
    let refused = ReturnRequest {
        reason: ReturnReason::Quality,
        ..request(false)
    };
    let mut g = c.benchmark_group("decide");
    g.bench_function("instant_release_pickup_and_advance", |b| {
        b.iter(|| {
            decide(
                black_box(&instant),
                Some(Star::try_from(4u8).unwrap()),
                &view,
                &policy,
                now,
            )
        })
    });
    g.bench_function("refused_with_reasons", |b| {
        b.iter(|| {
            decide(
                black_box(&refused),
                Some(Star::try_from(2u8).unwrap()),
                &view,
                &policy,
                now,
            )
        })
    });
    g.finish();

    let ratings = fastrefund_service::embedded_snapshot().unwrap();
    let ids: Vec<u64> = ratings.sample_ids(ratings.len()).to_vec();
    let mut i = 0usize;
    c.bench_function("snapshot_lookup_2000_buyers", |b| {
        b.iter(|| {
            i = (i + 7) % ids.len();
            ratings.get(black_box(BuyerId(ids[i])))
        })
    });
    let card = ratings.model();
    let values: Vec<f64> = (0..card.n_features()).map(|j| j as f64 * 0.7).collect();
    c.bench_function("score_one_buyer", |b| {
        b.iter(|| card.score_numeric(black_box(&values)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
