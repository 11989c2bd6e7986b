//! The trainer's per-feature options as a command line spells them, parsed by
//! themselves (`FromStr`, so `clap` reads them with its value parsers): `FEATURE=TREND`
//! for [`TrainParams::monotonic_trend`](crate::TrainParams::monotonic_trend) and
//! `FEATURE=V1,V2,…` for `special_codes` and `user_splits`. What the values may be
//! (split points increasing, and so on) is checked where every parameter is, by
//! [`TrainParams::check`](crate::TrainParams::check).

use crate::TrendChoice;
use std::str::FromStr;

/// `FEATURE=VALUE`: one feature's option.
#[derive(Debug, Clone, PartialEq)]
pub struct PerFeature<T> {
    pub feature: String,
    pub value: T,
}

/// Comma-separated numbers, e.g. `1,5,10` or `-999`.
#[derive(Debug, Clone, PartialEq)]
pub struct Numbers(pub Vec<f64>);

impl FromStr for Numbers {
    type Err = String;
    fn from_str(s: &str) -> Result<Numbers, String> {
        s.split(',')
            .map(|x| {
                x.trim()
                    .parse::<f64>()
                    .map_err(|_| format!("{x:?} is not a number"))
            })
            .collect::<Result<_, _>>()
            .map(Numbers)
    }
}

impl<T: FromStr<Err = String>> FromStr for PerFeature<T> {
    type Err = String;
    fn from_str(s: &str) -> Result<PerFeature<T>, String> {
        match s.split_once('=') {
            Some((f, v)) if !f.trim().is_empty() => Ok(PerFeature {
                feature: f.trim().to_string(),
                value: v.trim().parse()?,
            }),
            _ => Err(format!("{s:?}: expected FEATURE=VALUE")),
        }
    }
}

/// `--trend FEATURE=TREND`.
pub type FeatureTrend = PerFeature<TrendChoice>;
/// `--special FEATURE=V1,V2` and `--splits FEATURE=S1,S2`.
pub type FeatureNumbers = PerFeature<Numbers>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_feature_options_parse_and_name_what_is_wrong() {
        let t: FeatureTrend = "returns_365 = peak".parse().unwrap();
        assert_eq!(
            (t.feature.as_str(), t.value),
            ("returns_365", TrendChoice::Peak)
        );
        let n: FeatureNumbers = "*=-999, 0".parse().unwrap();
        assert_eq!((n.feature.as_str(), n.value.0), ("*", vec![-999.0, 0.0]));
        let e = "x=1,a".parse::<FeatureNumbers>().unwrap_err();
        assert!(e.contains("\"a\" is not a number"), "{e}");
        let e = "=1".parse::<FeatureNumbers>().unwrap_err();
        assert!(e.contains("expected FEATURE=VALUE"), "{e}");
        let e = "x=sideways".parse::<FeatureTrend>().unwrap_err();
        assert!(e.contains("unknown trend"), "{e}");
        assert_eq!(TrendChoice::AutoAscDesc.to_string(), "auto_asc_desc");
    }
}
