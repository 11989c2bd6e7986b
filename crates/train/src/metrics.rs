//! Discrimination and calibration metrics: AUC (rank-based, ties averaged), KS, Gini,
//! Brier score, a calibration table by score band, and population and bad rate by star.

use fastrefund_core::scoring::{Scorecard, SplitMetrics, StarCutoffs, StarRow};
use serde::{Deserialize, Serialize};

/// Area under the ROC curve of `risk` (higher = more likely bad) against `labels`.
/// 0.5 when either class is absent.
pub fn auc(risk: &[f64], labels: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..risk.len()).collect();
    idx.sort_unstable_by(|a, b| risk[*a].total_cmp(&risk[*b]));
    let (mut rank_sum, mut pos) = (0.0, 0u64);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && risk[idx[j + 1]] == risk[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &idx[i..=j] {
            if labels[*k] == 1 {
                rank_sum += avg_rank;
                pos += 1;
            }
        }
        i = j + 1;
    }
    let neg = risk.len() as u64 - pos;
    if pos == 0 || neg == 0 {
        return 0.5;
    }
    (rank_sum - (pos * (pos + 1)) as f64 / 2.0) / (pos as f64 * neg as f64)
}

/// Kolmogorov–Smirnov statistic: the largest gap between the cumulative shares of
/// bads and goods over thresholds of `risk`.
pub fn ks(risk: &[f64], labels: &[u8]) -> f64 {
    let mut idx: Vec<usize> = (0..risk.len()).collect();
    idx.sort_unstable_by(|a, b| risk[*b].total_cmp(&risk[*a]));
    let bads = labels.iter().filter(|l| **l == 1).count() as f64;
    let goods = labels.len() as f64 - bads;
    if bads == 0.0 || goods == 0.0 {
        return 0.0;
    }
    let (mut cb, mut cg, mut best) = (0.0, 0.0, 0.0f64);
    let mut i = 0;
    while i < idx.len() {
        let v = risk[idx[i]];
        while i < idx.len() && risk[idx[i]] == v {
            if labels[idx[i]] == 1 {
                cb += 1.0;
            } else {
                cg += 1.0;
            }
            i += 1;
        }
        best = best.max((cb / bads - cg / goods).abs());
    }
    best
}

/// Mean squared error of the predicted probabilities.
pub fn brier(p: &[f64], labels: &[u8]) -> f64 {
    if p.is_empty() {
        return 0.0;
    }
    p.iter()
        .zip(labels)
        .map(|(p, l)| (p - f64::from(*l)).powi(2))
        .sum::<f64>()
        / p.len() as f64
}

/// One band of the calibration table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationRow {
    pub min_score: i32,
    pub max_score: i32,
    pub count: u64,
    pub predicted_bad_rate: f64,
    pub observed_bad_rate: f64,
}

/// Predicted vs observed bad rate in `bands` bands of equal population by score.
pub fn calibration(scores: &[i32], p: &[f64], labels: &[u8], bands: usize) -> Vec<CalibrationRow> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by_key(|i| scores[*i]);
    let n = idx.len();
    let bands = bands.max(1).min(n.max(1));
    (0..bands)
        .filter_map(|b| {
            let part = &idx[b * n / bands..(b + 1) * n / bands];
            if part.is_empty() {
                return None;
            }
            let c = part.len() as f64;
            Some(CalibrationRow {
                min_score: scores[part[0]],
                max_score: scores[part[part.len() - 1]],
                count: part.len() as u64,
                predicted_bad_rate: part.iter().map(|i| p[*i]).sum::<f64>() / c,
                observed_bad_rate: part.iter().map(|i| f64::from(labels[*i])).sum::<f64>() / c,
            })
        })
        .collect()
}

/// Population and bad rate per star of the scores under these cut-offs.
pub fn star_table(cuts: &StarCutoffs, scores: &[i32], labels: &[u8]) -> Vec<StarRow> {
    let mut count = [0u64; 5];
    let mut bads = [0u64; 5];
    for (s, l) in scores.iter().zip(labels) {
        let k = cuts.star_of(*s).index();
        count[k] += 1;
        bads[k] += u64::from(*l);
    }
    let n = scores.len().max(1) as f64;
    (0..5)
        .map(|k| StarRow {
            star: k as u8 + 1,
            count: count[k],
            bads: bads[k],
            bad_rate: if count[k] > 0 {
                bads[k] as f64 / count[k] as f64
            } else {
                0.0
            },
            share: count[k] as f64 / n,
            min_score: (k > 0).then(|| cuts.min_score[k - 1]),
        })
        .collect()
}

/// True when the bad rate falls strictly from 1★ to 5★ (every star populated).
pub fn strictly_falling(rows: &[StarRow]) -> bool {
    rows.iter().all(|r| r.count > 0) && rows.windows(2).all(|w| w[0].bad_rate > w[1].bad_rate)
}

/// All metrics of a scored split.
pub fn split_metrics(card: &Scorecard, scores: &[i32], labels: &[u8]) -> SplitMetrics {
    let risk: Vec<f64> = scores.iter().map(|s| -f64::from(*s)).collect();
    let p: Vec<f64> = scores
        .iter()
        .map(|s| card.probability_bad(f64::from(*s)))
        .collect();
    let a = auc(&risk, labels);
    SplitMetrics {
        rows: labels.len() as u64,
        bads: labels.iter().map(|l| u64::from(*l)).sum(),
        auc: a,
        ks: ks(&risk, labels),
        gini: 2.0 * a - 1.0,
        brier: brier(&p, labels),
        stars: star_table(&card.model().stars, scores, labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_a_random_and_a_reversed_ranking() {
        let l = [0, 0, 1, 1];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &l), 1.0);
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &l), 0.0);
        assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &l), 0.5);
        // One of four pairs mis-ordered.
        assert_eq!(auc(&[0.1, 0.6, 0.5, 0.9], &l), 0.75);
    }

    #[test]
    fn ks_is_the_largest_gap_between_cumulative_shares() {
        assert_eq!(ks(&[0.1, 0.2, 0.8, 0.9], &[0, 0, 1, 1]), 1.0);
        assert_eq!(ks(&[0.5, 0.5], &[0, 1]), 0.0);
    }

    #[test]
    fn brier_of_certain_right_and_wrong_answers() {
        assert_eq!(brier(&[0.0, 1.0], &[0, 1]), 0.0);
        assert_eq!(brier(&[1.0, 0.0], &[0, 1]), 1.0);
    }
}

/// Walks `order` in runs of equal `key`, counting bads and goods as it goes, and keeps
/// the running counts `(key, bads, goods)` after about every `len / max_points` items
/// and after the last; `already` points are counted as kept before the first.
fn cumulative_counts<K: PartialEq + Copy>(
    order: &[usize],
    key: impl Fn(usize) -> K,
    labels: &[u8],
    max_points: usize,
    already: usize,
) -> Vec<(K, f64, f64)> {
    let (mut bads, mut goods) = (0.0, 0.0);
    let step = (order.len() / max_points.max(1)).max(1);
    let mut out = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let k = key(order[i]);
        while i < order.len() && key(order[i]) == k {
            if labels[order[i]] == 1 {
                bads += 1.0;
            } else {
                goods += 1.0;
            }
            i += 1;
        }
        if (already + out.len()) * step <= i || i == order.len() {
            out.push((k, bads, goods));
        }
    }
    out
}

/// Points of the ROC curve (false positive rate, true positive rate) of `risk`,
/// at most `max_points` of them, from (0, 0) to (1, 1).
pub fn roc_points(risk: &[f64], labels: &[u8], max_points: usize) -> Vec<[f64; 2]> {
    let mut idx: Vec<usize> = (0..risk.len()).collect();
    idx.sort_unstable_by(|a, b| risk[*b].total_cmp(&risk[*a]));
    let p = labels.iter().filter(|l| **l == 1).count().max(1) as f64;
    let n = (labels.len() as f64 - p).max(1.0);
    let mut pts = vec![[0.0, 0.0]];
    pts.extend(
        cumulative_counts(&idx, |i| risk[i], labels, max_points, 1)
            .into_iter()
            .map(|(_, tp, fp)| [fp / n, tp / p]),
    );
    pts
}

/// Cumulative shares of bads and goods at or below each score (for the KS plot):
/// `[score, share of bads, share of goods]`, ascending by score, at most `max_points`.
pub fn ks_curve(scores: &[i32], labels: &[u8], max_points: usize) -> Vec<[f64; 3]> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_unstable_by_key(|i| scores[*i]);
    let b = labels.iter().filter(|l| **l == 1).count().max(1) as f64;
    let g = (labels.len() as f64 - b).max(1.0);
    cumulative_counts(&idx, |i| scores[i], labels, max_points, 0)
        .into_iter()
        .map(|(s, cb, cg)| [f64::from(s), cb / b, cg / g])
        .collect()
}

/// The score distribution of goods and bads: `bins` equal-width bins over the score
/// range; each class's counts as shares of that class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreDistribution {
    /// Bin edges (`bins + 1` of them).
    pub edges: Vec<f64>,
    pub goods: Vec<f64>,
    pub bads: Vec<f64>,
}

pub fn score_distribution(scores: &[i32], labels: &[u8], bins: usize) -> ScoreDistribution {
    let lo = scores.iter().copied().min().unwrap_or(0) as f64;
    let hi = scores.iter().copied().max().unwrap_or(1) as f64 + 1.0;
    let w = (hi - lo) / bins.max(1) as f64;
    let mut goods = vec![0.0; bins.max(1)];
    let mut bads = vec![0.0; bins.max(1)];
    for (s, l) in scores.iter().zip(labels) {
        let k = (((f64::from(*s) - lo) / w) as usize).min(bins.max(1) - 1);
        if *l == 1 {
            bads[k] += 1.0;
        } else {
            goods[k] += 1.0;
        }
    }
    let (tb, tg) = (
        bads.iter().sum::<f64>().max(1.0),
        goods.iter().sum::<f64>().max(1.0),
    );
    ScoreDistribution {
        edges: (0..=bins.max(1)).map(|k| lo + w * k as f64).collect(),
        goods: goods.iter().map(|v| v / tg).collect(),
        bads: bads.iter().map(|v| v / tb).collect(),
    }
}

#[cfg(test)]
mod curve_tests {
    use super::*;

    #[test]
    fn roc_runs_from_origin_to_one_one() {
        let pts = roc_points(&[0.9, 0.8, 0.3, 0.1], &[1, 0, 1, 0], 100);
        assert_eq!(pts.first(), Some(&[0.0, 0.0]));
        assert_eq!(pts.last(), Some(&[1.0, 1.0]));
    }

    #[test]
    fn score_distribution_shares_sum_to_one_per_class() {
        let d = score_distribution(&[500, 520, 600, 640], &[1, 1, 0, 0], 4);
        assert!((d.goods.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((d.bads.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(d.edges.len(), 5);
    }
}
