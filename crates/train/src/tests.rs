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
    let scores = score_columns(&f.card, &cols, test.rows());
    let m = metrics::split_metrics(&f.card, &scores, &test.labels);
    assert!(m.auc > 0.75, "{m:?}");
    assert!(metrics::strictly_falling(&m.stars), "{:?}", m.stars);
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
