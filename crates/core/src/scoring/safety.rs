//! The rating's promises to honest buyers, as properties of a scorecard that can be
//! read off its points table (issue 14). They hold for every buyer, not only for the
//! ones a test happened to try:
//!
//! 1. **Returning never pays.** Every feature a return can move is declared with its
//!    [`ReturnEffect`]; a feature that one more return can only raise
//!    ([`Rises`](ReturnEffect::Rises), [`Volume`](ReturnEffect::Volume)) must give
//!    points that never rise along its bins, one that it can only lower
//!    ([`Falls`](ReturnEffect::Falls)) points that never fall, and a missing value
//!    ("no returns yet", "never") must earn at least every bin. A share or mean of
//!    returns ([`Mixed`](ReturnEffect::Mixed)) can move either way, so a return-safe
//!    model has none. The volume floor keeps the property (see [`crate::scoring`]).
//! 2. **One honest return costs at most one star, and never the floor star.** An honest
//!    return moves only volume features, each by at most its `honest_step`; the most
//!    points that can cost ([`honest_cost_bound`]) must not exceed the width of any
//!    star band above the floor, so no score jumps a whole band; and the floor keeps a
//!    buyer at or above the floor star there.
//! 3. **A merchant-fault return, or an outcome corrected in the buyer's favour, changes
//!    nothing**: the features drop such returns before counting anything, a property
//!    of the feature definitions, which the trainer's metamorphic check tries on the
//!    training history (as it does 1 and 2).

use super::{Feature, FeatureKind, Model, ReturnEffect, Scorecard};

/// One broken promise, in words.
pub type Violation = String;

/// Whether the model is a buyer model, whose features declare how returns move them.
pub fn applies(model: &Model) -> bool {
    model.features.iter().any(|f| f.on_return.is_some())
}

/// The promises the model's points table breaks (empty: it keeps them all). A model of
/// a generic table, whose columns are not about returns, breaks none.
pub fn violations(card: &Scorecard) -> Vec<Violation> {
    let model = card.model();
    if !applies(model) {
        return vec![];
    }
    let mut out = Vec::new();
    for f in &model.features {
        let Some(effect) = f.on_return else {
            out.push(format!(
                "feature `{}` does not say how a return moves it",
                f.name
            ));
            continue;
        };
        if f.kind == FeatureKind::Categorical && effect != ReturnEffect::Unmoved {
            out.push(format!(
                "feature `{}` is categorical but moves with returns",
                f.name
            ));
            continue;
        }
        let ranged: Vec<i32> = f
            .bins
            .iter()
            .filter(|b| b.is_range())
            .map(|b| b.points)
            .collect();
        let best = ranged.iter().copied().max().unwrap_or(0);
        let missing = f.bins.iter().find(|b| b.missing).map(|b| b.points);
        if f.reads_category_norms
            && effect != ReturnEffect::Mixed
            && model.category_norms.is_empty()
        {
            out.push(format!(
                "feature `{}` reads the category norms, which the model does not freeze: when other buyers return more, its value falls",
                f.name
            ));
        }
        match effect {
            ReturnEffect::Unmoved => {}
            ReturnEffect::Mixed => out.push(format!(
                "feature `{}` is a share or mean of returns: one more return can raise its points",
                f.name
            )),
            ReturnEffect::Rises | ReturnEffect::Volume | ReturnEffect::Falls => {
                let rising = effect == ReturnEffect::Falls;
                if let Some(w) = ranged
                    .windows(2)
                    .find(|w| if rising { w[1] < w[0] } else { w[1] > w[0] })
                {
                    out.push(format!(
                        "feature `{}`: points go {} → {} along its bins, so one more return can raise the score",
                        f.name, w[0], w[1]
                    ));
                }
                if let Some(m) = missing
                    && m < best
                {
                    out.push(format!(
                        "feature `{}`: a missing value (no returns yet) earns {m} points, fewer than {best} with returns",
                        f.name
                    ));
                }
            }
        }
    }
    let volume = model
        .features
        .iter()
        .any(|f| f.on_return == Some(ReturnEffect::Volume));
    if volume {
        match model.volume_floor_star {
            None => out.push(
                "the model reads return volume but has no volume floor: volume alone could take an honest buyer below the instant-release star".into(),
            ),
            Some(floor) => {
                let cost = honest_cost_bound(model);
                let (band, width) = narrowest_band_above(model, floor);
                if let Some(width) = width
                    && cost > width
                {
                    out.push(format!(
                        "one honest return can cost up to {cost} points, more than the {width} points of the {band}★ band: it could cost two stars"
                    ));
                }
            }
        }
    }
    out
}

/// The narrowest star band strictly between the floor star and 5★ (star, width), the
/// one an honest return must not jump. `None` width: there is no such band.
pub fn narrowest_band_above(model: &Model, floor: u8) -> (u8, Option<i32>) {
    let c = &model.stars.min_score;
    // Star k (2..=4) spans [c[k-2], c[k-1]).
    (floor.saturating_add(1).max(2)..=4)
        .map(|k| (k, c[usize::from(k) - 1] - c[usize::from(k) - 2]))
        .min_by_key(|(_, w)| *w)
        .map_or((5, None), |(k, w)| (k, Some(w)))
}

/// The most points one honest return can cost: the sum, over the volume features, of
/// the largest drop from a bin to a bin within `honest_step` above it (a missing value
/// may become any value). Features without a step may fall from their best bin to
/// their worst.
pub fn honest_cost_bound(model: &Model) -> i32 {
    model
        .features
        .iter()
        .filter(|f| f.on_return == Some(ReturnEffect::Volume))
        .map(feature_honest_cost)
        .sum()
}

/// [`honest_cost_bound`] for one feature.
pub fn feature_honest_cost(f: &Feature) -> i32 {
    let all: Vec<i32> = f.bins.iter().map(|b| b.points).collect();
    let worst = all.iter().copied().min().unwrap_or(0);
    let Some(step) = f.honest_step else {
        return all.iter().copied().max().unwrap_or(0) - worst;
    };
    let ranged: Vec<_> = f.bins.iter().filter(|b| b.is_range()).collect();
    let mut cost = f
        .bins
        .iter()
        .find(|b| b.missing)
        .map_or(0, |b| b.points - worst);
    for (i, b) in ranged.iter().enumerate() {
        let reach = b.upper.map_or(f64::INFINITY, |u| u + step);
        let lowest = ranged[i..]
            .iter()
            .take_while(|n| n.lower.is_none_or(|l| l < reach))
            .map(|n| n.points)
            .min()
            .unwrap_or(b.points);
        cost = cost.max(b.points - lowest);
    }
    cost.max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::{Bin, Metrics, Scaling, StarCutoffs, TrainingInfo};

    fn bin(lower: Option<f64>, upper: Option<f64>, points: i32) -> Bin {
        Bin {
            label: String::new(),
            lower,
            upper,
            categories: vec![],
            missing: false,
            special: vec![],
            other: false,
            woe: 0.0,
            points,
            count: 0,
            bads: 0,
        }
    }

    fn feature(name: &str, effect: ReturnEffect, step: Option<f64>, bins: Vec<Bin>) -> Feature {
        Feature {
            name: name.into(),
            kind: FeatureKind::Numeric,
            description: String::new(),
            reason: crate::scoring::ReasonText {
                code: name.into(),
                message: String::new(),
                advice: String::new(),
                missing_message: None,
                missing_advice: None,
                translations: Default::default(),
            },
            coefficient: -1.0,
            information_value: 0.1,
            monotone: None,
            on_return: Some(effect),
            honest_step: step,
            reads_category_norms: false,
            bins,
        }
    }

    fn model(features: Vec<Feature>, floor: Option<u8>) -> Model {
        Model {
            schema_version: crate::scoring::SCHEMA_VERSION,
            model_version: "t".into(),
            kind: "scorecard".into(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            training: TrainingInfo {
                data_fingerprint: String::new(),
                split: "random".into(),
                as_of: None,
                test_as_of: None,
                seed: None,
                test_fraction: None,
                label: String::new(),
                params: serde_json::Value::Null,
            },
            scaling: Scaling {
                base_score: 600.0,
                base_odds: 50.0,
                pdo: 20.0,
            },
            intercept: 0.0,
            features,
            stars: StarCutoffs {
                min_score: [10, 20, 30, 40],
            },
            volume_floor_star: floor,
            category_norms: Default::default(),
            metrics: Metrics::default(),
        }
    }

    fn counts(points: [i32; 3]) -> Vec<Bin> {
        vec![
            bin(None, Some(1.0), points[0]),
            bin(Some(1.0), Some(3.0), points[1]),
            bin(Some(3.0), None, points[2]),
        ]
    }

    #[test]
    fn a_count_whose_points_rise_breaks_the_promise() {
        let ok = model(
            vec![feature("a", ReturnEffect::Rises, None, counts([9, 5, 0]))],
            None,
        );
        assert!(violations(&ok.check().unwrap()).is_empty());
        let bad = model(
            vec![feature("a", ReturnEffect::Rises, None, counts([9, 5, 7]))],
            None,
        );
        let v = violations(&bad.check().unwrap());
        assert!(v[0].contains("5 → 7"), "{v:?}");
    }

    #[test]
    fn a_missing_bin_worth_less_than_having_returns_breaks_it() {
        let days_since = |missing_points| {
            let mut m = bin(None, None, missing_points);
            m.missing = true;
            let bins = vec![bin(None, Some(30.0), 0), bin(Some(30.0), None, 4), m];
            violations(
                &model(vec![feature("d", ReturnEffect::Falls, None, bins)], None)
                    .check()
                    .unwrap(),
            )
        };
        assert!(days_since(6).is_empty());
        let v = days_since(2);
        assert!(v[0].contains("missing"), "{v:?}");
    }

    #[test]
    fn a_rate_against_category_norms_needs_them_frozen_in_the_model() {
        let mut f = feature("relative", ReturnEffect::Rises, None, counts([9, 5, 0]));
        f.reads_category_norms = true;
        let mut m = model(vec![f], None);
        let v = violations(&m.clone().check().unwrap());
        assert!(v[0].contains("does not freeze"), "{v:?}");
        m.category_norms.insert("shoes".into(), 300_000_000);
        assert!(violations(&m.check().unwrap()).is_empty());
    }

    #[test]
    fn shares_of_returns_are_refused() {
        let m = model(
            vec![feature("s", ReturnEffect::Mixed, None, counts([0, 0, 0]))],
            None,
        );
        assert_eq!(violations(&m.check().unwrap()).len(), 1);
    }

    #[test]
    fn volume_needs_a_floor_and_a_cost_under_a_band() {
        let v = |pts, floor| {
            violations(
                &model(
                    vec![feature("r", ReturnEffect::Volume, Some(1.0), counts(pts))],
                    floor,
                )
                .check()
                .unwrap(),
            )
        };
        assert_eq!(v([9, 5, 0], None).len(), 1, "no floor");
        // Bands above the floor (3★): 4★ is [30, 40), 10 wide.
        assert!(v([9, 5, 0], Some(3)).is_empty());
        // From [1, 3) a step of 1 reaches [3, ∞): 11 points, more than 10.
        let w = v([12, 11, 0], Some(3));
        assert!(w[0].contains("11 points"), "{w:?}");
    }

    #[test]
    fn the_cost_bound_follows_the_step() {
        let f = feature("r", ReturnEffect::Volume, Some(1.0), counts([9, 5, 0]));
        assert_eq!(feature_honest_cost(&f), 5);
        let f = feature("r", ReturnEffect::Volume, Some(2.5), counts([9, 5, 0]));
        // From [0, 1) up to 3.5: into [3, ∞).
        assert_eq!(feature_honest_cost(&f), 9);
        let f = feature("r", ReturnEffect::Volume, None, counts([9, 5, 0]));
        assert_eq!(feature_honest_cost(&f), 9);
    }

    #[test]
    fn the_floor_holds_volume_at_the_floor_star_and_never_raises_a_score() {
        // Cut-offs 10, 20, 30, 40: 3★ from 20. Volume costs 0 / 5 / 12.
        let card = |base: i32| {
            model(
                vec![
                    feature(
                        "base",
                        ReturnEffect::Unmoved,
                        None,
                        vec![bin(None, None, base)],
                    ),
                    feature("r", ReturnEffect::Volume, Some(1.0), counts([0, -5, -12])),
                ],
                Some(3),
            )
            .check()
            .unwrap()
        };
        let s = |base: i32, x: f64| card(base).score_numeric(&[0.0, x]).unwrap().score;
        assert_eq!(s(23, 0.0), 23);
        assert_eq!(s(23, 2.0), 20, "18 raw, held at the 3★ cut-off");
        assert_eq!(s(23, 5.0), 20);
        assert_eq!(s(33, 2.0), 28, "above the floor volume costs as usual");
        assert_eq!(s(15, 5.0), 3, "below the floor without volume: no floor");
    }

    fn falls_bins(p: [i32; 3], missing: i32) -> Vec<Bin> {
        let mut m = bin(None, None, missing);
        m.missing = true;
        vec![
            bin(None, Some(30.0), p[0]),
            bin(Some(30.0), Some(90.0), p[1]),
            bin(Some(90.0), None, p[2]),
            m,
        ]
    }

    proptest::proptest! {
        /// Over random points tables that pass [`violations`] and random buyers: one
        /// more return of any kind never raises the score; one more honest return costs
        /// at most one star and never the floor star.
        #[test]
        fn a_table_that_passes_keeps_its_promises_for_every_buyer(
            gaps in proptest::array::uniform4(1i32..40),
            base in -40i32..160,
            vdrops in proptest::array::uniform3(0i32..12),
            rdrops in proptest::array::uniform2(0i32..30),
            frise in proptest::array::uniform3(0i32..20),
            v in 0u32..10, r in 0u32..5, f in proptest::option::of(0u32..200),
            add_v in proptest::bool::ANY, add_r in proptest::bool::ANY,
            new_f in proptest::option::of(0u32..200),
        ) {
            let mut cut = [0i32; 4];
            let mut acc = 0;
            for (c, g) in cut.iter_mut().zip(gaps) {
                acc += g;
                *c = acc;
            }
            let vp = [0, -vdrops[0], -vdrops[0] - vdrops[1], -vdrops[0] - vdrops[1] - vdrops[2]];
            let rp = [0, -rdrops[0], -rdrops[0] - rdrops[1]];
            let fp = [0, frise[0], frise[0] + frise[1]];
            let fmiss = fp[2] + frise[2];
            let vol = vec![
                bin(None, Some(1.0), vp[0]),
                bin(Some(1.0), Some(3.0), vp[1]),
                bin(Some(3.0), Some(6.0), vp[2]),
                bin(Some(6.0), None, vp[3]),
            ];
            let rises = vec![
                bin(None, Some(1.0), rp[0]),
                bin(Some(1.0), Some(2.0), rp[1]),
                bin(Some(2.0), None, rp[2]),
            ];
            let mut m = model(
                vec![
                    feature("base", ReturnEffect::Unmoved, None, vec![bin(None, None, base)]),
                    feature("v", ReturnEffect::Volume, Some(1.0), vol),
                    feature("r", ReturnEffect::Rises, None, rises),
                    feature("f", ReturnEffect::Falls, None, falls_bins(fp, fmiss)),
                ],
                Some(3),
            );
            m.stars = StarCutoffs { min_score: cut };
            let card = m.check().unwrap();
            proptest::prop_assume!(violations(&card).is_empty());
            let fv = |x: Option<u32>| x.map_or(f64::NAN, f64::from);
            let rate = |v: u32, r: u32, f: Option<u32>| {
                card.score_numeric(&[0.0, f64::from(v), f64::from(r), fv(f)]).unwrap()
            };
            let before = rate(v, r, f);
            // Any return: volume and rises counts up by 0 or 1; days since the last bad
            // outcome can only shrink (a bad return just now), or stay.
            let f2 = match (f, new_f) {
                (_, None) => f,
                (None, Some(n)) => Some(n),
                (Some(o), Some(n)) => Some(o.min(n)),
            };
            let after = rate(v + u32::from(add_v), r + u32::from(add_r), f2);
            proptest::prop_assert!(after.score <= before.score, "{} -> {}", before.score, after.score);
            // An honest return: volume up by one, nothing else.
            let honest = rate(v + 1, r, f);
            let (b, h) = (before.star.get(), honest.star.get());
            proptest::prop_assert!(b <= h + 1, "{b}★ -> {h}★");
            proptest::prop_assert!(b < 3 || h >= 3, "{b}★ -> {h}★ below the floor");
        }
    }
}
