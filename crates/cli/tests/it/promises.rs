//! The promises to honest buyers, held by `train` on a generated history: a model that
//! breaks them (the trainer of the first round, with the promises switched off) is
//! refused and nothing is written, unless forced; the default trainer's model keeps
//! them, and its evaluation says so, with a fairness table.

use fastrefund_batch::training::{HistoryTraining, WorkflowError, train_history};
use fastrefund_train::TrainParams;

fn day(y: i32, m: u32, d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn options(
    data: &std::path::Path,
    out: std::path::PathBuf,
    params: TrainParams,
) -> HistoryTraining {
    HistoryTraining {
        data: data.to_path_buf(),
        as_of: day(2026, 1, 1),
        test_as_of: None,
        out,
        params,
        challenger: None,
        sample_buyers: None,
        sample_seed: 1,
        plan: Default::default(),
        promise_sample: 2000,
        force: false,
    }
}

#[test]
fn train_refuses_a_model_that_makes_returning_pay_and_publishes_one_that_keeps_its_word() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("hist");
    fastrefund_synth::SynthParams {
        buyers: 8000,
        seed: 31,
        ..Default::default()
    }
    .check()
    .unwrap()
    .generate(&data, &|_| {})
    .unwrap();

    // The first round's trainer: shares and means of returns, unconstrained missing bins.
    let unsafe_params = TrainParams {
        return_safe: false,
        max_correlation: 0.7,
        ..TrainParams::default()
    };
    let out = root.path().join("unsafe");
    let e = train_history(&options(&data, out.clone(), unsafe_params.clone()))
        .expect_err("a model that makes returning pay is refused");
    let WorkflowError::Promises(broken) = &e else {
        panic!("refused for the wrong reason: {e}");
    };
    let text = e.to_string();
    assert!(text.contains("--force"), "{text}");
    assert!(
        broken
            .0
            .iter()
            .any(|b| b.contains("raised the score") || b.contains("missing value")),
        "{broken:?}"
    );
    assert!(!out.join("model.json").exists(), "nothing is published");

    // Forced, it is published, and the report says which promises it breaks.
    let mut forced = options(&data, out.clone(), unsafe_params);
    forced.force = true;
    let t = train_history(&forced).unwrap();
    let p = t.evaluation.promises.as_ref().unwrap();
    assert!(p.forced);
    assert!(!p.table_violations.is_empty() || !p.check.violations.is_empty());

    // The default trainer keeps every promise, on the same history; the challenger
    // beside it is tried the same way.
    let mut safe = options(&data, root.path().join("safe"), TrainParams::default());
    safe.challenger = Some(fastrefund_train::challenger::ChallengerParams {
        trees: 5,
        ..Default::default()
    });
    let t = train_history(&safe).unwrap();
    let ch = t.evaluation.challenger.as_ref().unwrap();
    let cp = ch
        .promises
        .as_ref()
        .expect("the challenger is held to the promises");
    assert_eq!(
        cp.variants.iter().map(|v| v.variant).collect::<Vec<_>>(),
        [
            "honest",
            "late_and_slow",
            "mismatch",
            "not_shipped",
            "claim",
            "merchant_fault"
        ]
    );
    assert!(cp.sampled_buyers > 0);
    // Its verdict is the same rule as the champion's, read off the same counts.
    for v in &cp.variants {
        assert_eq!(
            v.score_up > 0,
            cp.violations
                .iter()
                .any(|b| b.contains(&format!("`{}`", v.variant))),
            "{v:?} {:?}",
            cp.violations
        );
    }
    let p = t.evaluation.promises.as_ref().unwrap();
    assert_eq!(p.table_violations, Vec::<String>::new());
    assert_eq!(p.check.violations, Vec::<String>::new());
    assert!(!p.forced);
    let honest = p
        .check
        .variants
        .iter()
        .find(|v| v.variant == "honest")
        .unwrap();
    assert_eq!(honest.score_up, 0);
    assert_eq!(honest.stars_lost[2..].iter().sum::<u64>(), 0);
    assert_eq!(honest.fell_below_floor, 0);
    let fault = p
        .check
        .variants
        .iter()
        .find(|v| v.variant == "merchant_fault")
        .unwrap();
    assert_eq!(fault.score_moved, 0);
    assert!(
        p.check.corrected_tried > 0,
        "some sampled buyer had a bad outcome to correct"
    );
    // Every evaluation has its fairness table, by the three dimensions.
    for dim in ["tenure", "main_category", "orders_365"] {
        assert!(
            t.evaluation.fairness.iter().any(|r| r.dimension == dim),
            "no {dim} rows"
        );
    }
    assert!(
        t.evaluation
            .fairness
            .iter()
            .all(|r| r.adverse_impact_ratio <= 1.0 + 1e-12)
    );
}
