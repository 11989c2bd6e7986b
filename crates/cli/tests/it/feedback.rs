//! The loop, closed: a history is rated, the service serves it, the return traffic of
//! the following weeks is replayed through it with a group of well-rated buyers who keep
//! not shipping after their refunds are advanced, the outcomes are exported and the
//! buyers re-rated. Those buyers fall below 3★ and lose instant release; the honest
//! heavy returners in the same traffic keep it.

use fastrefund_batch::features::date_micros;
use fastrefund_batch::history_returns::returns_in_window;
use fastrefund_batch::{rate, tables};
use fastrefund_core::domain::BuyerId;
use fastrefund_replay::{ReplayOptions, replay};
use fastrefund_testkit::*;
use std::collections::{HashMap, HashSet};

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyers_who_keep_not_shipping_lose_instant_release_and_heavy_honest_returners_keep_it() {
    let root = tempfile::tempdir().unwrap();
    let full_dir = root.path().join("full");
    fastrefund_synth::SynthParams {
        buyers: 20000,
        seed: 23,
        ..Default::default()
    }
    .check()
    .unwrap()
    .generate(&full_dir, &|_| {})
    .unwrap();
    let full = tables::load_history(&full_dir).unwrap();
    // The data team's history stops at S; the weeks after S happen live, through the service.
    let (s, e) = (day(2026, 5, 1), day(2026, 6, 30));
    let past_dir = root.path().join("past");
    let past = full.returns_before(date_micros(s)).unwrap();
    tables::write_history(&past, &past_dir).unwrap();
    let past = tables::load_history(&past_dir).unwrap();
    // A scorecard trained on that history rates them as of S.
    let trained =
        fastrefund_batch::training::train_history(&fastrefund_batch::training::HistoryTraining {
            data: past_dir.clone(),
            as_of: day(2026, 1, 1),
            test_as_of: None,
            out: root.path().join("model"),
            params: fastrefund_train::TrainParams::default(),
            challenger: None,
            sample_buyers: None,
            sample_seed: 1,
            plan: Default::default(),
            promise_sample: 2000,
            force: false,
        })
        .unwrap();
    let model = fastrefund_snapshot::load_checked_model(&trained.model_path).unwrap();
    let snap1 = root.path().join("snap1");
    rate::rate(
        rate::Source::Whole(&past),
        &model,
        s,
        &snap1,
        &Default::default(),
    )
    .unwrap();

    let live = returns_in_window(&full, date_micros(s), date_micros(e)).unwrap();
    let app = spawn_app_with(
        fastrefund_core::policy::Policy::default(),
        Some(snap1.clone()),
    )
    .await;
    let serving = app.state.serving().unwrap();
    let star = |b: u64| {
        serving
            .ratings
            .get(BuyerId(b))
            .map(|r| r.star.get())
            .unwrap_or(0)
    };
    // Returns that can get instant release: no-reason, programme category, in the window.
    let mut eligible: HashMap<u64, usize> = HashMap::new();
    for r in &live {
        let days = (r.requested_at - r.delivered_at) / 86_400_000_000;
        if r.reason == "no_reason"
            && ["womens_wear", "mens_wear", "accessories", "shoes"].contains(&r.category.as_str())
            && days < 7
        {
            *eligible.entry(r.buyer_id).or_default() += 1;
        }
    }
    let truth =
        fastrefund_batch::dataset_io::read_parquet(&full_dir.join("truth.parquet")).unwrap();
    let kinds: HashMap<u64, String> = truth
        .column("buyer_id")
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .flatten()
        .zip(
            truth
                .column("hidden_type")
                .unwrap()
                .str()
                .unwrap()
                .iter()
                .flatten()
                .map(str::to_string),
        )
        .collect();
    let mut honest: Vec<u64> = eligible
        .iter()
        .filter(|(b, n)| **n >= 3 && star(**b) >= 3 && kinds[*b] == "honest")
        .map(|(b, _)| *b)
        .collect();
    honest.sort_unstable();
    let bad: HashSet<u64> = honest.into_iter().take(15).collect();
    let heavy: Vec<u64> = eligible
        .iter()
        .filter(|(b, n)| **n >= 2 && star(**b) >= 3 && kinds[*b] == "heavy_honest")
        .map(|(b, _)| *b)
        .collect();
    assert!(
        bad.len() >= 10 && heavy.len() >= 10,
        "too few buyers to show anything: {} {}",
        bad.len(),
        heavy.len()
    );

    let report = replay(
        live,
        ReplayOptions {
            base: app.base.clone(),
            token: API.into(),
            concurrency: 8,
            not_shipping: bad.clone(),
            outcomes: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(report.errors, 0, "{report:?}");
    assert!(report.losses >= bad.len() as u64, "{report:?}");

    // The service's record of those weeks goes back into the history, and S..E is rated.
    let rows = fastrefund_ledger::export_returns(&app.dir.path().join("ledger.sqlite")).unwrap();
    std::fs::create_dir(past_dir.join("returns")).unwrap();
    fastrefund_batch::export::write_parquet(&rows, &past_dir.join("returns/live.parquet")).unwrap();
    let next = tables::load_history(&past_dir).unwrap();
    let snap2 = root.path().join("snap2");
    rate::rate(
        rate::Source::Whole(&next),
        &model,
        e,
        &snap2,
        &Default::default(),
    )
    .unwrap();
    app.state.reload(Some(Some(snap2)), None).await.unwrap();
    let serving = app.state.serving().unwrap();
    let star2 = |b: u64| {
        serving
            .ratings
            .get(BuyerId(b))
            .map(|r| r.star.get())
            .unwrap_or(0)
    };
    let fell = bad.iter().filter(|b| star2(**b) < 3).count();
    assert_eq!(
        fell,
        bad.len(),
        "buyers who kept not shipping and still have 3★+: {:?}",
        bad.iter().filter(|b| star2(**b) >= 3).collect::<Vec<_>>()
    );
    let kept = heavy.iter().filter(|b| star2(**b) >= 3).count();
    assert!(
        kept as f64 >= 0.9 * heavy.len() as f64,
        "{kept} of {} heavy honest returners kept 3★",
        heavy.len()
    );
    // And the service now answers them accordingly.
    let b = *bad.iter().next().unwrap();
    let (_, d) = json_of(
        app.post("/v1/eligibility", &request(9_000_000_001, b))
            .await,
    )
    .await;
    assert_eq!(d["instant_address_release"], false, "{d}");
    let h = heavy.iter().copied().find(|b| star2(*b) >= 3).unwrap();
    let (_, d) = json_of(
        app.post("/v1/eligibility", &request(9_000_000_002, h))
            .await,
    )
    .await;
    assert_eq!(d["instant_address_release"], true, "{d}");
}
