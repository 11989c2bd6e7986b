//! How a snapshot's stars fall for each hidden buyer type of a generated history.
//!
//! The batch side reads the truth and the ratings (`fastrefund_batch::judge`) and the
//! generator names its hidden types (`fastrefund_synth::hidden_type_names`); this
//! module only counts and draws, so the report crate needs neither polars nor them. A
//! hidden type that is not among the names given is an error naming it, never counted
//! as another type.

use super::{ReportError, io, plot};
use serde::Serialize;
use std::path::Path;

/// Stars per hidden type, and the figures the quality goals are stated in.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// Truth buyers with a rating.
    pub coverage: f64,
    /// Per hidden type: buyers and their share at each star.
    pub by_type: Vec<TypeRow>,
    /// Share of dishonest types (wardrober, opportunist, fraudster) at each star.
    pub dishonest_share_by_star: [f64; 5],
    pub dishonest_share_falls: bool,
    pub heavy_honest_3_plus: f64,
    pub fraudster_2_minus: f64,
    /// Share of buyers below 5★ that carry at least one reason code.
    pub below_5_with_reason: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeRow {
    pub hidden_type: String,
    pub buyers: u64,
    pub star_share: [f64; 5],
}

/// The judgement of every truth buyer's `(hidden type, star, has a reason)` (star
/// `None`: not rated), with the generator's hidden type `names` in its order (honest,
/// heavy honest, then the three dishonest types, fraudster last).
pub fn judge<'a>(
    buyers: impl IntoIterator<Item = (&'a str, Option<u8>, bool)>,
    names: [&str; 5],
) -> Result<Judgement, ReportError> {
    let mut count = [[0u64; 5]; 5];
    let (mut all, mut rated, mut below5, mut below5_reason) = (0u64, 0u64, 0u64, 0u64);
    for (t, star, has_reason) in buyers {
        all += 1;
        let Some(s) = star else {
            continue;
        };
        if !(1..=5).contains(&s) {
            return Err(ReportError::Invalid(format!(
                "a {t} buyer has star {s}, outside 1..=5"
            )));
        }
        let k = names.iter().position(|n| *n == t).ok_or_else(|| {
            ReportError::Invalid(format!(
                "hidden type {t:?} is none of the generator's {names:?}"
            ))
        })?;
        rated += 1;
        count[k][usize::from(s - 1)] += 1;
        if s < 5 {
            below5 += 1;
            below5_reason += u64::from(has_reason);
        }
    }
    let by_type: Vec<TypeRow> = names
        .iter()
        .zip(count)
        .map(|(n, c)| {
            let total: u64 = c.iter().sum();
            TypeRow {
                hidden_type: n.to_string(),
                buyers: total,
                star_share: c.map(|x| x as f64 / total.max(1) as f64),
            }
        })
        .collect();
    let mut dishonest_share_by_star = [0.0; 5];
    for (s, d) in dishonest_share_by_star.iter_mut().enumerate() {
        let all: u64 = (0..5).map(|k| count[k][s]).sum();
        let bad: u64 = (2..5).map(|k| count[k][s]).sum();
        *d = bad as f64 / all.max(1) as f64;
    }
    let share = |k: usize, stars: std::ops::RangeInclusive<usize>| {
        let total: u64 = count[k].iter().sum();
        stars.map(|s| count[k][s - 1]).sum::<u64>() as f64 / total.max(1) as f64
    };
    Ok(Judgement {
        coverage: rated as f64 / all.max(1) as f64,
        dishonest_share_falls: dishonest_share_by_star.windows(2).all(|w| w[0] > w[1]),
        dishonest_share_by_star,
        heavy_honest_3_plus: share(1, 3..=5),
        fraudster_2_minus: share(4, 1..=2),
        below_5_with_reason: below5_reason as f64 / below5.max(1) as f64,
        by_type,
    })
}

impl Judgement {
    /// A Markdown table of the star distribution per hidden type, and the goal figures.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "| hidden type | buyers | 1★ | 2★ | 3★ | 4★ | 5★ |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.by_type {
            s += &format!("| {} | {} |", r.hidden_type, r.buyers);
            for x in r.star_share {
                s += &format!(" {:.1}% |", 100.0 * x);
            }
            s.push('\n');
        }
        s += &format!(
            "\ncoverage {:.3} · heavy_honest ≥3★ {:.3} · fraudster ≤2★ {:.3} · below 5★ with a reason {:.3}\n\
             dishonest share by star {:?} (falls strictly: {})\n",
            self.coverage,
            self.heavy_honest_3_plus,
            self.fraudster_2_minus,
            self.below_5_with_reason,
            self.dishonest_share_by_star
                .map(|x| (x * 1000.0).round() / 1000.0),
            self.dishonest_share_falls
        );
        s
    }

    /// Writes `star-by-type.json`, `star-by-type.md` and `star-by-type.svg` into `out`.
    pub fn write(&self, out: &Path) -> Result<(), ReportError> {
        std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
        let w = |name: &str, body: String| {
            let p = out.join(name);
            std::fs::write(&p, body).map_err(|e| io(&p, e))
        };
        w(
            "star-by-type.json",
            serde_json::to_string_pretty(self)
                .map_err(|e| io(&out.join("star-by-type.json"), e))?,
        )?;
        w("star-by-type.md", self.table())?;
        let rows: Vec<(String, [f64; 5])> = self
            .by_type
            .iter()
            .map(|r| (format!("{} ({})", r.hidden_type, r.buyers), r.star_share))
            .collect();
        w(
            "star-by-type.svg",
            plot::stacked_star_bars("Stars by hidden buyer type", &rows)?,
        )
    }
}
