use super::*;
use chrono::TimeZone;

fn bin(label: &str, lower: Option<f64>, upper: Option<f64>, points: i32) -> Bin {
    Bin {
        label: label.into(),
        lower,
        upper,
        categories: vec![],
        missing: false,
        special: vec![],
        other: false,
        woe: 0.0,
        points,
        count: 10,
        bads: 1,
    }
}

fn feature(name: &str, bins: Vec<Bin>) -> Feature {
    Feature {
        name: name.into(),
        kind: FeatureKind::Numeric,
        description: format!("{name} description"),
        reason: ReasonText {
            code: name.into(),
            message: format!("{name} costs points"),
            advice: format!("improve {name}"),
            missing_message: Some(format!("no {name} yet")),
            missing_advice: None,
            translations: Default::default(),
        },
        coefficient: -1.0,
        information_value: 0.1,
        monotone: Some(Trend::Increasing),
        on_return: None,
        honest_step: None,
        reads_category_norms: false,
        bins,
    }
}

/// A hand-made scorecard: two numeric features and a categorical one.
pub fn tiny_model() -> Model {
    let mut missing = bin("missing", None, None, 5);
    missing.missing = true;
    let mut cat_a = bin("a, b", None, None, 30);
    cat_a.categories = vec!["a".into(), "b".into()];
    let mut cat_other = bin("other", None, None, 10);
    cat_other.categories = vec!["c".into()];
    cat_other.other = true;
    let mut cat = feature("kind", vec![cat_a, cat_other]);
    cat.kind = FeatureKind::Categorical;
    cat.monotone = None;
    Model {
        schema_version: SCHEMA_VERSION,
        model_version: "test-1".into(),
        kind: "scorecard".into(),
        created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        training: TrainingInfo {
            data_fingerprint: "abc".into(),
            split: "random".into(),
            as_of: None,
            test_as_of: None,
            seed: Some(1),
            test_fraction: Some(0.3),
            label: "bad".into(),
            params: serde_json::json!({}),
        },
        scaling: Scaling {
            base_score: 600.0,
            base_odds: 50.0,
            pdo: 20.0,
        },
        intercept: -3.0,
        features: vec![
            feature(
                "losses",
                vec![
                    bin("[-inf, 1)", None, Some(1.0), 200),
                    bin("[1, 3)", Some(1.0), Some(3.0), 150),
                    bin("[3, inf)", Some(3.0), None, 100),
                    missing,
                ],
            ),
            feature(
                "age",
                vec![
                    bin("[-inf, 30)", None, Some(30.0), 120),
                    bin("[30, inf)", Some(30.0), None, 160),
                ],
            ),
            cat,
        ],
        stars: StarCutoffs {
            min_score: [300, 340, 370, 390],
        },
        volume_floor_star: None,
        category_norms: Default::default(),
        metrics: Metrics::default(),
    }
}

use chrono::Utc;

#[test]
fn points_come_from_the_bin_the_value_falls_in() {
    let s = tiny_model().check().unwrap();
    assert_eq!(s.points(0, Value::Num(0.0)), 200);
    assert_eq!(
        s.points(0, Value::Num(1.0)),
        150,
        "lower bound is inclusive"
    );
    assert_eq!(s.points(0, Value::Num(2.999)), 150);
    assert_eq!(s.points(0, Value::Num(3.0)), 100);
    assert_eq!(s.points(0, Value::Num(1e9)), 100);
    assert_eq!(s.points(0, Value::Num(f64::NAN)), 5, "NaN is missing");
    assert_eq!(s.points(0, Value::Missing), 5);
    assert_eq!(s.points(1, Value::Missing), 0, "no missing bin: neutral");
    assert_eq!(s.points(2, Value::Cat("b")), 30);
    assert_eq!(
        s.points(2, Value::Cat("zzz")),
        10,
        "unseen label goes to other"
    );
}

#[test]
fn score_is_the_sum_of_points_and_star_comes_from_cutoffs() {
    let s = tiny_model().check().unwrap();
    let best = s
        .score(&[Value::Num(0.0), Value::Num(40.0), Value::Cat("a")])
        .unwrap();
    assert_eq!(best.score, 390);
    assert_eq!(best.star.get(), 5);
    assert_eq!(best.reasons, [None; 4], "no points lost, no reasons");
    let worse = s
        .score(&[Value::Num(5.0), Value::Num(10.0), Value::Cat("c")])
        .unwrap();
    assert_eq!(worse.score, 100 + 120 + 10);
    assert_eq!(worse.star.get(), 1);
    // losses cost 100, age 40, kind 20: worst first.
    let r = |feature, missing| Some(ReasonRef { feature, missing });
    assert_eq!(worse.reasons, [r(0, false), r(1, false), r(2, false), None]);
}

#[test]
fn a_missing_value_gets_its_own_code_and_words() {
    let s = tiny_model().check().unwrap();
    // Feature 0's missing bin earns 5 points against a best of 200.
    let scored = s
        .score(&[Value::Missing, Value::Num(40.0), Value::Cat("a")])
        .unwrap();
    let first = scored.reasons[0].unwrap();
    assert!(first.missing);
    let code = first.code(&s);
    assert!(code.ends_with(MISSING_SUFFIX), "{code}");
    assert_eq!(s.reason_by_code(&code), Some(first));
    let words = first.words(&s);
    assert!(words.message.starts_with("no "), "{}", words.message);
    // No missing advice: the feature's advice stands.
    assert_eq!(words.advice, s.reason(0).advice);
    // The same feature with a bad value gets the plain code and words.
    let bad = s
        .score(&[Value::Num(5.0), Value::Num(40.0), Value::Cat("a")])
        .unwrap();
    let plain = bad.reasons[0].unwrap();
    assert!(!plain.missing);
    assert_eq!(s.reason_by_code(&plain.code(&s)), Some(plain));
    assert_eq!(plain.words(&s).message, s.reason(0).message);
    // Text that is not a number counts as missing too.
    let text = s
        .score(&[Value::Cat("n/a"), Value::Num(40.0), Value::Cat("a")])
        .unwrap();
    assert_eq!(text.reasons[0], Some(first));
    assert_eq!(s.reason_by_code("no_such_feature"), None);
}

#[test]
fn reason_codes_must_be_plain_words() {
    let mut m = tiny_model();
    m.features[0].reason.code = "losses:missing".into();
    let err = m.check().unwrap_err().to_string();
    assert!(err.contains("losses:missing"), "{err}");
}

#[test]
fn star_boundaries_are_inclusive_of_the_cutoff() {
    let c = StarCutoffs {
        min_score: [300, 340, 370, 390],
    };
    let stars: Vec<u8> = [299, 300, 339, 340, 369, 370, 389, 390]
        .iter()
        .map(|s| c.star_of(*s).get())
        .collect();
    assert_eq!(stars, vec![1, 2, 2, 3, 3, 4, 4, 5]);
}

#[test]
fn wrong_number_of_values_is_an_error() {
    let s = tiny_model().check().unwrap();
    assert!(matches!(
        s.score_numeric(&[1.0]),
        Err(ModelError::Arity {
            expected: 3,
            got: 1
        })
    ));
}

#[test]
fn model_survives_save_and_reload_and_scores_the_same() {
    let m = tiny_model();
    let back = Model::from_json(&m.to_json().unwrap(), "model.json").unwrap();
    assert_eq!(back, m);
    let a = m.check().unwrap();
    let b = back.check().unwrap();
    let v = [Value::Num(2.0), Value::Num(10.0), Value::Cat("a")];
    assert_eq!(a.score(&v).unwrap(), b.score(&v).unwrap());
}

#[test]
fn other_schema_versions_are_refused_by_name() {
    let mut m = tiny_model();
    m.schema_version = 99;
    let e = Model::from_json(&m.to_json().unwrap(), "x.json").unwrap_err();
    assert!(
        matches!(e, ModelError::SchemaVersion { found: 99, .. }),
        "{e}"
    );
}

#[test]
fn unknown_fields_and_broken_bins_are_refused() {
    let mut v: serde_json::Value = serde_json::from_str(&tiny_model().to_json().unwrap()).unwrap();
    v["surprise"] = serde_json::json!(1);
    assert!(Model::from_json(&v.to_string(), "x").is_err());

    let mut m = tiny_model();
    m.features[0].bins[1].lower = Some(1.5);
    let e = m.check().unwrap_err().to_string();
    assert!(e.contains("do not meet"), "{e}");

    let mut m = tiny_model();
    m.stars.min_score = [300, 300, 370, 390];
    assert!(m.check().is_err());
}

#[test]
fn probability_of_bad_falls_as_score_rises() {
    let s = tiny_model().check().unwrap();
    let p_lo = s.probability_bad(500.0);
    let p_hi = s.probability_bad(700.0);
    assert!(p_lo > p_hi);
    // At the base score the odds are base_odds:1.
    let p = s.probability_bad(600.0);
    assert!((p - 1.0 / 51.0).abs() < 1e-12, "{p}");
}

#[test]
fn scoring_from_points_is_scoring_from_values() {
    let s = tiny_model().check().unwrap();
    for losses in [f64::NAN, 0.0, 1.0, 2.5, 3.0, 7.0] {
        for age in [f64::NAN, 0.0, 29.0, 30.0, 100.0] {
            // The categorical feature read as a number goes to `other`.
            for kind in [0.0, 1.0] {
                let values = [losses, age, kind];
                let p = s.points_numeric(&values).unwrap();
                assert_eq!(
                    s.score_points(&p).unwrap(),
                    s.score_numeric(&values).unwrap(),
                    "{values:?}"
                );
            }
        }
    }
    assert!(s.points_numeric(&[1.0]).is_err(), "arity is checked");
    assert!(s.score_points(&Points::default()).is_err());
}

#[test]
fn a_struck_reason_earns_its_best_points_while_the_evidence_is_no_worse() {
    let s = tiny_model().check().unwrap();
    // 2 losses earn 150 of 200.
    let p = s.points_numeric(&[2.0, 40.0, 0.0]).unwrap();
    assert_eq!(p.points[0], 150);
    // The evidence the case saw: struck to the best bin, and no longer a reason.
    let mut same = p.clone();
    assert!(s.strike(&mut same, "losses", 150));
    assert_eq!(same.points[0], 200);
    let scored = s.score_points(&same).unwrap();
    assert_eq!(
        scored.score,
        s.score_numeric(&[0.0, 40.0, 0.0]).unwrap().score
    );
    assert!(scored.reasons.iter().flatten().all(|r| r.feature != 0));
    // Better evidence since is struck as well.
    let mut better = s.points_numeric(&[0.5, 40.0, 0.0]).unwrap();
    assert!(s.strike(&mut better, "losses", 150));
    // Worse evidence since (a third loss: 100 points) counts: nothing is struck.
    let mut worse = s.points_numeric(&[3.0, 40.0, 0.0]).unwrap();
    assert!(!s.strike(&mut worse, "losses", 150));
    assert_eq!(worse.points[0], 100);
    // A missing value struck is no longer missing; an unknown code strikes nothing.
    let mut missing = s.points_numeric(&[f64::NAN, 40.0, 0.0]).unwrap();
    assert!(s.strike(&mut missing, "losses:missing", 5));
    assert_eq!((missing.points[0], missing.missing[0]), (200, false));
    let mut unknown = p.clone();
    assert!(!s.strike(&mut unknown, "no_such_reason", 0));
    assert_eq!(unknown, p);
}
