//! `fastrefund simulate`: the replay under a current and a candidate scenario, in
//! process on the shipped sample (consistency, direction of each lever, the ledger's
//! limits) and through the command line (files written, bad input named).

use crate::batch::run;
use fastrefund_batch::tables::load_history;
use fastrefund_core::domain::{Money, Star};
use fastrefund_core::policy::Policy;
use fastrefund_core::scoring::Scorecard;
use fastrefund_simulate::{
    RefundOnlyTotals, Scenario, ScenarioReport, SimulateOptions, Totals, simulate,
};
use std::path::PathBuf;

fn root() -> PathBuf {
    fastrefund_testkit::repo_root()
}

fn champion() -> Scorecard {
    let r = fastrefund_snapshot::registry::Registry::new(root().join("models"));
    fastrefund_snapshot::load_model(&r.champion_model().unwrap())
        .unwrap()
        .check()
        .unwrap()
}

fn opts() -> SimulateOptions {
    SimulateOptions {
        from: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        to: None,
        rerate_days: 30,
        merchant_wait_hours: None,
        parcel_cost: "12.00".parse().unwrap(),
    }
}

fn run_pair(current: &Policy, candidate: &Policy) -> (ScenarioReport, ScenarioReport) {
    let h = load_history(&root().join("data/sample")).unwrap();
    let card = champion();
    let s = simulate(
        &h,
        Scenario {
            name: "current",
            policy: current,
            model: &card,
        },
        Scenario {
            name: "candidate",
            policy: candidate,
            model: &card,
        },
        &opts(),
    )
    .unwrap();
    assert!(s.returns > 1000, "the sample's 2026 returns: {}", s.returns);
    assert_eq!(
        s.rating_dates.len(),
        6,
        "rated monthly: {:?}",
        s.rating_dates
    );
    (s.current, s.candidate)
}

fn sum(parts: &[&Totals]) -> (u64, u64, u64, Money, Money) {
    parts
        .iter()
        .fold((0, 0, 0, Money::ZERO, Money::ZERO), |(r, i, a, v, l), t| {
            (
                r + t.requests,
                i + t.instant,
                a + t.advanced,
                v + t.value_advanced,
                l + t.realised_loss,
            )
        })
}

fn whole(t: &Totals) -> (u64, u64, u64, Money, Money) {
    (
        t.requests,
        t.instant,
        t.advanced,
        t.value_advanced,
        t.realised_loss,
    )
}

fn consistent(r: &ScenarioReport) {
    let t = &r.total;
    let stars: Vec<&Totals> = r.by_star.iter().collect();
    let cats: Vec<&Totals> = r.by_category.values().collect();
    assert_eq!(sum(&stars), whole(t), "stars add up to the total");
    assert_eq!(sum(&cats), whole(t), "categories add up to the total");
    assert!(t.advanced <= t.instant && t.pickup <= t.instant);
    assert!(t.realised_loss <= t.value_advanced);
    assert!(t.realised_loss_not_advanced_in_history <= t.realised_loss);
    assert!(t.outstanding_at_end <= t.value_advanced);
    assert!(t.instant > 0 && t.advanced > 0, "{t:?}");
    // Below the minimum star nothing is instant.
    for (k, s) in r.by_star.iter().enumerate() {
        if (k as u8 + 1) < r.min_star {
            assert_eq!(s.instant, 0, "{}★ under min star {}", k + 1, r.min_star);
        }
    }
    // Hours saved on the address: one merchant deadline per instant answer.
    assert_eq!(
        t.hours_saved_address,
        t.instant as f64 * r.merchant_wait_hours
    );
}

#[test]
fn the_same_scenario_twice_gives_the_same_numbers() {
    let p = Policy::default();
    let (a, b) = run_pair(&p, &p);
    consistent(&a);
    assert_eq!(a.total, b.total);
    assert_eq!(a.by_star, b.by_star);
}

#[test]
fn a_higher_minimum_star_answers_fewer_instantly_and_advances_less() {
    let current = Policy::default();
    let mut candidate = current.clone();
    candidate.min_star = Star::try_from(4u8).unwrap();
    let (a, b) = run_pair(&current, &candidate);
    consistent(&a);
    consistent(&b);
    assert!(b.total.instant < a.total.instant);
    assert!(b.total.value_advanced < a.total.value_advanced);
    assert!(b.total.expected_loss < a.total.expected_loss);
    assert!(b.total.realised_loss <= a.total.realised_loss);
    // The 3★ buyers lose the benefit; 4★ and 5★ keep exactly what they had (the
    // limits are per buyer and the budget is not reached).
    assert!(a.by_star[2].instant > 0);
    assert_eq!(b.by_star[2].instant, 0);
    assert_eq!(a.by_star[3..], b.by_star[3..]);
}

#[test]
fn limits_and_the_daily_budget_refuse_advances_but_not_the_address() {
    let current = Policy::default();
    let mut no_limit = current.clone();
    no_limit.limits = [Money::ZERO; 5];
    let (a, b) = run_pair(&current, &no_limit);
    // Limits refuse advances, not the address; but with no advance there is no loss,
    // and a loss settled since the rating holds a buyer's instant release, so without
    // advances at least as many returns get the address, never fewer.
    assert!(
        b.total.instant >= a.total.instant,
        "no limit took an address away: {} vs {}",
        b.total.instant,
        a.total.instant
    );
    assert_eq!(b.total.advanced, 0);
    assert_eq!(b.total.value_advanced, Money::ZERO);
    assert!(
        b.total.refused_by_limit >= a.total.advanced,
        "{:?}",
        b.total
    );
    assert_eq!(b.total.hours_saved_refund, 0.0);

    let mut tight_budget = current.clone();
    tight_budget.daily_budget = "500".parse().unwrap();
    let (_, c) = run_pair(&current, &tight_budget);
    consistent(&c);
    assert!(c.total.refused_by_budget > 0);
    assert!(c.total.value_advanced < a.total.value_advanced);
}

#[test]
fn simulate_writes_its_report_and_names_bad_input() {
    let out = tempfile::tempdir().unwrap();
    let data = root().join("data/sample");
    let (data, o) = (data.to_str().unwrap(), out.path().to_str().unwrap());
    let ran = run(&[
        "simulate",
        "--data",
        data,
        "--from",
        "2026-03-01",
        "--candidate-min-star",
        "4",
        "--out",
        o,
    ]);
    assert!(
        ran.status.success(),
        "{}",
        String::from_utf8_lossy(&ran.stderr)
    );
    let md = String::from_utf8_lossy(&ran.stdout);
    assert!(md.contains("| answered instantly |"), "{md}");
    for f in [
        "simulation.json",
        "simulation.md",
        "instant-by-star.svg",
        "money-by-star.svg",
        "instant-by-category.svg",
        "refund-only-by-star.svg",
        "refund-only-by-category.svg",
    ] {
        assert!(out.path().join(f).is_file(), "{f}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("simulation.json")).unwrap())
            .unwrap();
    assert_eq!(json["candidate"]["min_star"], 4);
    assert_eq!(json["from"], "2026-03-01");

    let fails = |args: &[&str], says: &str| {
        let r = run(args);
        assert!(!r.status.success(), "{args:?}");
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(e.contains(says), "{args:?}: {e}");
    };
    // Nothing to compare: clap names the candidate's options.
    fails(
        &["simulate", "--data", data, "--from", "2026-03-01"],
        "--candidate-policy <CANDIDATE_POLICY>|--candidate-model <CANDIDATE_MODEL>|--candidate-min-star <CANDIDATE_MIN_STAR>",
    );
    fails(
        &[
            "simulate",
            "--data",
            data,
            "--from",
            "2027-01-01",
            "--candidate-min-star",
            "4",
        ],
        "is empty",
    );
    fails(
        &[
            "simulate",
            "--data",
            data,
            "--from",
            "2026-03-01",
            "--candidate-min-star",
            "6",
        ],
        "candidate-min-star",
    );
    fails(
        &[
            "simulate",
            "--data",
            data,
            "--from",
            "2026-03-01",
            "--candidate-model",
            "/nonexistent/model.json",
        ],
        "/nonexistent/model.json",
    );
    // Checked by simulate itself (SimulateOptions::check), not by the command line.
    for hours in ["--merchant-wait-hours=-1", "--merchant-wait-hours=NaN"] {
        fails(
            &[
                "simulate",
                "--data",
                data,
                "--from",
                "2026-03-01",
                "--candidate-min-star",
                "4",
                hours,
            ],
            "merchant_wait_hours must be a number of hours",
        );
    }
}

#[test]
fn a_refund_only_table_is_replayed_per_star_category_and_merchant() {
    let mut current = Policy::default();
    current.refund_only.enabled = false;
    let mut candidate = Policy::default();
    // A wider table than the shipped 30.00, so that the sample's cheap items qualify.
    candidate.refund_only.max_amount = "60.00".parse().unwrap();
    let (a, b) = run_pair(&current, &candidate);
    consistent(&a);
    consistent(&b);
    assert_eq!(a.total.refund_only.kept, 0, "switched off: no offer");
    let t = &b.total.refund_only;
    assert!(t.kept > 0, "{t:?}");
    // Shipping saved: one parcel per refund without return.
    assert_eq!(t.shipping_saved, Money::from_cents(1200 * t.kept));
    assert!(t.losses_allowed_value <= t.value);
    // Below its minimum star, nobody is refunded without return.
    for s in &b.by_star[..3] {
        assert_eq!(s.refund_only.kept, 0);
    }
    // Stars, categories and merchants add up to the total.
    let kept = |it: &mut dyn Iterator<Item = &RefundOnlyTotals>| {
        it.fold((0, Money::ZERO), |(n, v), x| (n + x.kept, v + x.value))
    };
    let whole = (t.kept, t.value);
    assert_eq!(kept(&mut b.by_star.iter().map(|x| &x.refund_only)), whole);
    assert_eq!(
        kept(&mut b.by_category.values().map(|x| &x.refund_only)),
        whole
    );
    assert_eq!(kept(&mut b.refund_only_by_merchant.values()), whole);
    // What is kept is not shipped: the candidate advances no more than the current.
    assert!(b.total.value_advanced <= a.total.value_advanced);
}
