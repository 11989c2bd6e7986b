use super::*;
use rand::{Rng, SeedableRng};

/// A synthetic table: x1 raises risk, x2 lowers it, x3 is noise, c is categorical.
fn toy(n: usize, seed: u64) -> Dataset {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (mut x1, mut x2, mut x3, mut c, mut y) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let a: f64 = rng.random::<f64>() * 10.0;
        let b: f64 = rng.random::<f64>() * 5.0;
        let cat = ["red", "green", "blue"][rng.random_range(0..3)];
        let z = -3.0 + 0.4 * a - 0.5 * b + if cat == "red" { 1.0 } else { 0.0 };
        let p = 1.0 / (1.0 + (-z).exp());
        y.push(u8::from(rng.random::<f64>() < p));
        x1.push(if rng.random::<f64>() < 0.05 {
            f64::NAN
        } else {
            a
        });
        x2.push(b);
        x3.push(rng.random::<f64>());
        c.push(Some(cat.to_string()));
    }
    Dataset {
        names: vec!["x1".into(), "x2".into(), "x3".into(), "c".into()],
        columns: vec![
            FeatureData::Num(x1),
            FeatureData::Num(x2),
            FeatureData::Num(x3),
            FeatureData::Cat(c),
        ],
        labels: y,
    }
}

fn info() -> TrainingInfo {
    TrainingInfo {
        data_fingerprint: "toy".into(),
        split: "random".into(),
        as_of: None,
        test_as_of: None,
        seed: Some(1),
        test_fraction: Some(0.3),
        label: "y".into(),
        params: serde_json::json!({}),
    }
}

fn fit(ds: &Dataset) -> Fitted {
    let meta: Vec<FeatureMeta> = ds.names.iter().map(|n| generic_meta(n)).collect();
    fit_scorecard(
        ds,
        &meta,
        &TrainParams::default().check().unwrap(),
        info(),
        "toy-1".into(),
    )
    .unwrap()
}

#[test]
fn scorecard_learns_the_signal_and_ignores_noise() {
    let train = toy(20_000, 1);
    let f = fit(&train);
    let names: Vec<&str> = f.card.feature_names().collect();
    assert!(
        names.contains(&"x1") && names.contains(&"x2") && names.contains(&"c"),
        "{names:?}"
    );
    assert!(!names.contains(&"x3"), "noise kept: {:?}", f.candidates);
    let test = toy(10_000, 2);
    let cols = model_columns(&f.card, &test).unwrap();
    let scores = score_columns(&f.card, &cols, test.rows()).unwrap();
    let m = metrics::split_metrics(&f.card, &scores, &test.labels);
    assert!(m.auc > 0.75, "{m:?}");
    assert!(metrics::strictly_falling(&m.stars), "{:?}", m.stars);
}

/// Rows the model cannot score (here: a column short) are an error naming the row,
/// never scores of 0 that would move the metrics published with the model.
#[test]
fn rows_the_model_cannot_score_are_an_error_not_a_zero_score() {
    let f = fit(&toy(20_000, 1));
    let test = toy(100, 2);
    let mut cols = model_columns(&f.card, &test).unwrap();
    cols.pop();
    let e = score_columns(&f.card, &cols, test.rows()).unwrap_err();
    assert!(e.to_string().contains("scoring row"), "{e}");
}

#[test]
fn points_rise_with_woe_and_respect_the_trend() {
    let f = fit(&toy(20_000, 3));
    for feat in &f.card.model().features {
        assert!(feat.coefficient < 0.0, "{} {}", feat.name, feat.coefficient);
        for a in &feat.bins {
            for b in &feat.bins {
                if a.woe < b.woe {
                    assert!(a.points <= b.points, "{}: {a:?} {b:?}", feat.name);
                }
            }
        }
    }
    let x1 = &f.card.model().features[0];
    assert_eq!(x1.monotone, Some(Trend::Increasing), "x1 raises risk");
}

#[test]
fn training_is_reproducible() {
    let ds = toy(5_000, 4);
    let a = fit(&ds);
    let b = fit(&ds);
    assert_eq!(a.card.model().features, b.card.model().features);
    assert_eq!(a.card.model().stars, b.card.model().stars);
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let e = TrainParams {
        max_bins: 1,
        ..TrainParams::default()
    }
    .check()
    .unwrap_err()
    .to_string();
    assert!(e.contains("max_bins"), "{e}");
    let e = TrainParams {
        star_shares: [0.5, 0.5, 0.1, 0.1],
        ..TrainParams::default()
    }
    .check()
    .unwrap_err()
    .to_string();
    assert!(e.contains("star_shares"), "{e}");
}

fn fit_with(ds: &Dataset, p: TrainParams) -> Fitted {
    let meta: Vec<FeatureMeta> = ds.names.iter().map(|n| generic_meta(n)).collect();
    fit_scorecard(ds, &meta, &p.check().unwrap(), info(), "toy-2".into()).unwrap()
}

#[test]
fn the_optbinning_options_reach_the_model() {
    let mut ds = toy(6000, 3);
    // x2 = -1 means "not asked": a special value with a bin of its own.
    if let FeatureData::Num(x2) = &mut ds.columns[1] {
        for v in x2.iter_mut().step_by(10) {
            *v = -1.0;
        }
    }
    let mut p = TrainParams::default();
    p.special_codes.insert("x2".into(), vec![-1.0]);
    p.user_splits.insert("x1".into(), vec![2.5, 5.0, 7.5]);
    p.monotonic_trend.insert("x3".into(), TrendChoice::None);
    p.unseen_category = UnseenCategory::Worst;
    p.min_iv = 0.0;
    p.max_correlation = 1.0;
    let f = fit_with(&ds, p);
    let m = f.card.model();
    let feat = |n: &str| m.features.iter().position(|x| x.name == n).unwrap();
    let x1 = &m.features[feat("x1")];
    let cuts: Vec<f64> = x1.bins.iter().filter_map(|b| b.upper).collect();
    assert!(
        cuts.iter().all(|c| [2.5, 5.0, 7.5].contains(c)),
        "cuts at the user's split points only: {cuts:?}"
    );
    let j2 = feat("x2");
    let special = m.features[j2]
        .bins
        .iter()
        .position(|b| b.special == vec![-1.0])
        .expect("a special bin");
    assert_eq!(f.card.numeric_bin(j2, -1.0), Some(special));
    assert_eq!(
        f.card
            .points(j2, fastrefund_core::scoring::Value::Num(-1.0)),
        m.features[j2].bins[special].points
    );
    // An unseen category gets the points of the worst bin.
    let jc = feat("c");
    let worst = m.features[jc]
        .bins
        .iter()
        .filter(|b| !b.missing)
        .map(|b| b.points)
        .min()
        .unwrap();
    assert_eq!(
        f.card
            .points(jc, fastrefund_core::scoring::Value::Cat("purple")),
        worst
    );
    // Top-k by quality score.
    let p = TrainParams {
        selection: Selection::Quality,
        max_features: Some(2),
        min_iv: 0.0,
        ..TrainParams::default()
    };
    let f = fit_with(&toy(6000, 3), p);
    assert_eq!(f.card.n_features(), 2, "{:?}", f.notes);
    assert!(f.notes.iter().any(|n| n.contains("kept the 2 best")));
}

#[test]
fn bad_option_values_are_named() {
    let mut p = TrainParams::default();
    p.user_splits.insert("x1".into(), vec![5.0, 2.0]);
    let e = p.check().unwrap_err().to_string();
    assert!(e.contains("user_splits") && e.contains("x1"), "{e}");
    let p = TrainParams {
        min_bad_rate_diff: 1.5,
        ..TrainParams::default()
    };
    assert!(
        p.check()
            .unwrap_err()
            .to_string()
            .contains("min_bad_rate_diff")
    );
}

#[test]
fn the_pre_binning_and_the_grouping_search_reach_the_model() {
    let ds = toy(6000, 3);
    let cuts = |prebinning: Prebinning, binning: BinningSearch| {
        let p = TrainParams {
            min_iv: 0.0,
            max_correlation: 1.0,
            prebinning,
            binning,
            ..TrainParams::default()
        };
        let f = fit_with(&ds, p);
        let m = f.card.model();
        m.features
            .iter()
            .map(|x| x.bins.iter().filter_map(|b| b.upper).collect::<Vec<f64>>())
            .collect::<Vec<_>>()
    };
    let default = cuts(Prebinning::Quantile, BinningSearch::Greedy);
    let both = cuts(Prebinning::Cart, BinningSearch::Optimal);
    assert_ne!(default, both, "the options changed no cut");
    // Left out of the serialised parameters at their defaults (a model's version is a
    // hash of them), written when chosen.
    let json = |p: &TrainParams| serde_json::to_string(p).unwrap();
    assert!(!json(&TrainParams::default()).contains("prebinning"));
    let chosen = TrainParams {
        prebinning: Prebinning::Cart,
        binning: BinningSearch::Optimal,
        ..TrainParams::default()
    };
    assert!(json(&chosen).contains("\"prebinning\":\"cart\""));
    assert!(json(&chosen).contains("\"binning\":\"optimal\""));
}

/// A suppressor: `x2` alone says the same as `x1` (both rise with the risk), but the
/// best model subtracts it (`2·x1 − x2` is the signal), so its coefficient has the
/// wrong sign. By default it is dropped, so points rise with every kept feature's
/// evidence; `WrongSigns::Keep` keeps it, as optbinning does.
#[test]
fn wrong_signed_features_are_dropped_or_kept_as_asked() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let (mut x1, mut x2, mut y) = (vec![], vec![], vec![]);
    let normal =
        |rng: &mut rand_chacha::ChaCha8Rng| (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
    for _ in 0..20_000 {
        let (s, n) = (normal(&mut rng), normal(&mut rng));
        let p = 1.0 / (1.0 + (-(2.5 * s - 1.0)).exp());
        y.push(u8::from(rng.random::<f64>() < p));
        x1.push(s + n);
        x2.push(s + 2.0 * n);
    }
    let ds = Dataset {
        names: vec!["x1".into(), "x2".into()],
        columns: vec![FeatureData::Num(x1), FeatureData::Num(x2)],
        labels: y,
    };
    let fit = |wrong_signs: WrongSigns| {
        fit_with(
            &ds,
            TrainParams {
                min_iv: 0.0,
                max_correlation: 1.0,
                wrong_signs,
                ..TrainParams::default()
            },
        )
    };
    let names = |f: &Fitted| {
        f.card
            .model()
            .features
            .iter()
            .map(|x| x.name.clone())
            .collect::<Vec<_>>()
    };
    let dropped = fit(WrongSigns::Drop);
    assert_eq!(names(&dropped), ["x1"]);
    assert!(
        dropped
            .notes
            .iter()
            .any(|n| n.contains("`x2`") && n.contains("wrong sign")),
        "{:?}",
        dropped.notes
    );
    let kept = fit(WrongSigns::Keep);
    assert_eq!(names(&kept), ["x1", "x2"]);
    // Left out of the serialised parameters at its default, written when chosen.
    let json = |w: WrongSigns| {
        serde_json::to_string(&TrainParams {
            wrong_signs: w,
            ..TrainParams::default()
        })
        .unwrap()
    };
    assert!(!json(WrongSigns::Drop).contains("wrong_signs"));
    assert!(json(WrongSigns::Keep).contains("\"wrong_signs\":\"keep\""));
}

/// Every option's command-line name is its serialised name, both ways, and an unknown
/// one is refused naming it.
#[test]
fn option_names_parse_as_they_serialise() {
    fn round_trip<T>(names: &[&str])
    where
        T: std::str::FromStr<Err = String> + Serialize,
    {
        for name in names {
            let v: T = name.parse().unwrap();
            assert_eq!(serde_json::to_value(&v).unwrap(), *name);
        }
        let e = "sideways".parse::<T>().err().unwrap();
        assert!(e.contains("\"sideways\""), "{e}");
    }
    round_trip::<TrendChoice>(&[
        "auto_asc_desc",
        "auto",
        "ascending",
        "descending",
        "peak",
        "valley",
        "none",
    ]);
    round_trip::<Prebinning>(&["quantile", "cart"]);
    round_trip::<BinningSearch>(&["greedy", "optimal"]);
    round_trip::<UnseenCategory>(&["other", "missing", "worst"]);
    round_trip::<WrongSigns>(&["drop", "keep"]);
    round_trip::<Selection>(&["iv", "quality"]);
}
