//! Binning and weight of evidence.
//!
//! Numeric features: sorted values are cut into pre-bins of about `1/max_prebins` of
//! the rows each, only where the value changes (so a feature that is 0 for 98% of
//! buyers gets one bin for the zeros and one for the rest, instead of losing its rare
//! but telling values). Adjacent bins are then merged by pool-adjacent-violators so
//! the bad rate follows the feature's trend (given, or whichever direction keeps more
//! information value), bins with too few rows are merged into the neighbour with the
//! closer bad rate, and the closest neighbours are merged until at most `max_bins`
//! remain. Each cut is placed at the roundest number between the two bins' values
//! (`1300` rather than `1297.43`), which changes no training row's bin.
//!
//! Categorical features: labels with too few rows are pooled into an `other` bin (which
//! also takes labels never seen in training); groups are ordered by bad rate and the
//! closest neighbours merged until at most `max_bins` remain.
//!
//! Missing values always have their own bin; a bin with no training rows gets a
//! weight of evidence of 0 (the population average). WOE = ln(%good / %bad) with 0.5
//! added to every count, so that a bin without bads does not get an infinite weight.

use fastrefund_core::scoring::Trend;

/// Binning parameters (see [`super::TrainParams`]).
#[derive(Debug, Clone, Copy)]
pub struct BinningParams {
    pub max_prebins: usize,
    pub max_bins: usize,
    pub min_bin_share: f64,
    pub min_bin_rows: usize,
}

/// Rows and bads in a bin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub count: u64,
    pub bads: u64,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.count += o.count;
        self.bads += o.bads;
    }
    /// Smoothed bad rate.
    pub fn rate(&self) -> f64 {
        (self.bads as f64 + 0.5) / (self.count as f64 + 1.0)
    }
    pub fn goods(&self) -> u64 {
        self.count - self.bads
    }
}

/// WOE of a bin given the totals; 0 for an empty bin.
pub fn woe(t: Tally, total: Tally) -> f64 {
    if t.count == 0 {
        return 0.0;
    }
    let g = (t.goods() as f64 + 0.5) / (total.goods() as f64 + 0.5);
    let b = (t.bads as f64 + 0.5) / (total.bads as f64 + 0.5);
    (g / b).ln()
}

/// Information value of a set of bins.
pub fn information_value(bins: &[Tally], total: Tally) -> f64 {
    bins.iter()
        .filter(|t| t.count > 0)
        .map(|t| {
            let g = t.goods() as f64 / total.goods().max(1) as f64;
            let b = t.bads as f64 / total.bads.max(1) as f64;
            (g - b) * woe(*t, total)
        })
        .sum()
}

/// A numeric bin under construction: its tally and the smallest and largest value in it.
#[derive(Debug, Clone, Copy)]
struct Run {
    tally: Tally,
    lo: f64,
    hi: f64,
}

impl Run {
    fn merge(self, o: Run) -> Run {
        let mut tally = self.tally;
        tally.add(o.tally);
        Run {
            tally,
            lo: self.lo.min(o.lo),
            hi: self.hi.max(o.hi),
        }
    }
}

/// The result of binning a numeric feature.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericBins {
    /// Cuts: bin `k` holds values in `[cuts[k-1], cuts[k])`.
    pub cuts: Vec<f64>,
    pub tallies: Vec<Tally>,
    pub missing: Tally,
    pub trend: Option<Trend>,
}

impl NumericBins {
    /// The bin of a (non-missing) value.
    pub fn bin_of(&self, x: f64) -> usize {
        self.cuts.partition_point(|c| *c <= x)
    }
}

/// Bins a numeric feature. `values` NaN = missing.
pub fn bin_numeric(
    values: &[f64],
    labels: &[u8],
    trend: Option<Trend>,
    p: &BinningParams,
) -> NumericBins {
    let mut missing = Tally::default();
    let mut pairs: Vec<(f64, u8)> = Vec::with_capacity(values.len());
    for (v, l) in values.iter().zip(labels) {
        if v.is_nan() {
            missing.count += 1;
            missing.bads += u64::from(*l);
        } else {
            pairs.push((*v, *l));
        }
    }
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let n = values.len();
    let min_rows = ((p.min_bin_share * n as f64).ceil() as usize).max(p.min_bin_rows) as u64;

    // Pre-bins: close a run at a change of value once it holds enough rows, or when
    // it and the next value are each big enough to stand alone (so that a count
    // feature keeps 0, 1 and 2 apart when each is common enough, instead of lumping
    // every non-zero value together).
    let target = (pairs.len() / p.max_prebins.max(1)).max(1) as u64;
    let mut runs: Vec<Run> = Vec::new();
    let mut i = 0;
    let mut value_runs: Vec<Run> = Vec::new();
    while i < pairs.len() {
        let v = pairs[i].0;
        let mut t = Tally::default();
        while i < pairs.len() && pairs[i].0 == v {
            t.count += 1;
            t.bads += u64::from(pairs[i].1);
            i += 1;
        }
        value_runs.push(Run {
            tally: t,
            lo: v,
            hi: v,
        });
    }
    for (k, run) in value_runs.iter().enumerate() {
        let next_stands_alone = value_runs.get(k).is_some_and(|r| r.tally.count >= min_rows);
        match runs.last_mut() {
            Some(last)
                if last.tally.count < target
                    && !(last.tally.count >= min_rows && next_stands_alone) =>
            {
                *last = last.merge(*run)
            }
            _ => runs.push(*run),
        }
    }

    let total = {
        let mut t = missing;
        for r in &runs {
            t.add(r.tally);
        }
        t
    };
    let (runs, trend) = match trend {
        Some(tr) => (monotone(runs, tr), Some(tr)),
        None => {
            let up = monotone(runs.clone(), Trend::Increasing);
            let down = monotone(runs, Trend::Decreasing);
            let iv = |r: &[Run]| {
                information_value(&r.iter().map(|x| x.tally).collect::<Vec<_>>(), total)
            };
            if iv(&up) >= iv(&down) {
                (up, Some(Trend::Increasing))
            } else {
                (down, Some(Trend::Decreasing))
            }
        }
    };
    let runs = merge_small(runs, min_rows);
    let runs = merge_to(runs, p.max_bins.max(1));
    let cuts = runs
        .windows(2)
        .map(|w| roundest_between(w[0].hi, w[1].lo))
        .collect();
    NumericBins {
        cuts,
        tallies: runs.iter().map(|r| r.tally).collect(),
        missing,
        trend,
    }
}

/// Pool adjacent violators: merge neighbours until the bad rate follows `trend`
/// strictly.
fn monotone(runs: Vec<Run>, trend: Trend) -> Vec<Run> {
    let violates = |a: &Run, b: &Run| match trend {
        Trend::Increasing => a.tally.rate() >= b.tally.rate(),
        Trend::Decreasing => a.tally.rate() <= b.tally.rate(),
    };
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for r in runs {
        let mut cur = r;
        while let Some(last) = out.last() {
            if violates(last, &cur) {
                cur = out.pop().map(|l| l.merge(cur)).unwrap_or(cur);
            } else {
                break;
            }
        }
        out.push(cur);
    }
    out
}

/// Merges bins with fewer than `min_rows` into the neighbour with the closer bad rate.
fn merge_small(mut runs: Vec<Run>, min_rows: u64) -> Vec<Run> {
    while runs.len() > 1 {
        let Some(k) = (0..runs.len())
            .filter(|k| runs[*k].tally.count < min_rows)
            .min_by_key(|k| runs[*k].tally.count)
        else {
            break;
        };
        let j = neighbour(&runs, k);
        let (a, b) = (k.min(j), k.max(j));
        runs[a] = runs[a].merge(runs[b]);
        runs.remove(b);
    }
    runs
}

/// The neighbour of `k` with the closer bad rate.
fn neighbour(runs: &[Run], k: usize) -> usize {
    let d = |j: usize| (runs[j].tally.rate() - runs[k].tally.rate()).abs();
    match (k.checked_sub(1), (k + 1 < runs.len()).then_some(k + 1)) {
        (Some(l), Some(r)) => {
            if d(l) <= d(r) {
                l
            } else {
                r
            }
        }
        (Some(l), None) => l,
        (None, Some(r)) => r,
        (None, None) => k,
    }
}

/// Merges the closest neighbours (by bad rate) until at most `max` bins remain.
fn merge_to(mut runs: Vec<Run>, max: usize) -> Vec<Run> {
    while runs.len() > max {
        let k = (0..runs.len() - 1)
            .min_by(|a, b| {
                let da = (runs[*a].tally.rate() - runs[a + 1].tally.rate()).abs();
                let db = (runs[*b].tally.rate() - runs[b + 1].tally.rate()).abs();
                da.total_cmp(&db)
            })
            .unwrap_or(0);
        runs[k] = runs[k].merge(runs[k + 1]);
        runs.remove(k + 1);
    }
    runs
}

/// The number with the fewest significant digits in `(a, b]`.
pub fn roundest_between(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() || a >= b {
        return b;
    }
    let mag = b.abs().max(a.abs()).max(f64::MIN_POSITIVE).log10().floor() as i32;
    for sig in 1..=15 {
        let scale = 10f64.powi(mag - sig + 1);
        let c = ((a / scale).floor() + 1.0) * scale;
        // Clean up the floating-point noise of the multiplication.
        let c = format!("{:.*e}", (sig - 1).max(0) as usize, c)
            .parse::<f64>()
            .unwrap_or(c);
        if c > a && c <= b {
            return c;
        }
    }
    b
}

/// The result of binning a categorical feature.
#[derive(Debug, Clone, PartialEq)]
pub struct CategoricalBins {
    /// Labels of each bin.
    pub groups: Vec<Vec<String>>,
    pub tallies: Vec<Tally>,
    /// The bin that takes rare and unseen labels.
    pub other: usize,
    pub missing: Tally,
}

/// Bins a categorical feature.
pub fn bin_categorical(
    values: &[Option<String>],
    labels: &[u8],
    p: &BinningParams,
) -> CategoricalBins {
    use std::collections::BTreeMap;
    let mut missing = Tally::default();
    let mut per: BTreeMap<&str, Tally> = BTreeMap::new();
    for (v, l) in values.iter().zip(labels) {
        let t = match v {
            None => &mut missing,
            Some(s) => per.entry(s.as_str()).or_default(),
        };
        t.count += 1;
        t.bads += u64::from(*l);
    }
    let n = values.len();
    let min_rows = ((p.min_bin_share * n as f64).ceil() as usize).max(p.min_bin_rows) as u64;
    // (labels, tally, holds the rare/unseen pool)
    let mut groups: Vec<(Vec<String>, Tally, bool)> = Vec::new();
    let mut rare = (Vec::new(), Tally::default(), true);
    for (k, t) in per {
        if t.count < min_rows {
            rare.0.push(k.to_string());
            rare.1.add(t);
        } else {
            groups.push((vec![k.to_string()], t, false));
        }
    }
    groups.push(rare);
    groups.sort_by(|a, b| a.1.rate().total_cmp(&b.1.rate()));
    // Merge an empty or too-small pool into its closest neighbour, then down to max bins.
    loop {
        let small = groups
            .iter()
            .position(|g| g.1.count < min_rows && groups.len() > 1 && g.1.count > 0);
        let over = groups.len() > p.max_bins.max(1);
        let k = match (small, over) {
            (Some(k), _) => k,
            (None, true) => (0..groups.len() - 1)
                .min_by(|a, b| {
                    let da = groups[a + 1].1.rate() - groups[*a].1.rate();
                    let db = groups[b + 1].1.rate() - groups[*b].1.rate();
                    da.total_cmp(&db)
                })
                .unwrap_or(0),
            (None, false) => break,
        };
        let j = if small.is_some() {
            let d = |j: usize| (groups[j].1.rate() - groups[k].1.rate()).abs();
            match (k.checked_sub(1), (k + 1 < groups.len()).then_some(k + 1)) {
                (Some(l), Some(r)) => {
                    if d(l) <= d(r) {
                        l
                    } else {
                        r
                    }
                }
                (Some(l), None) => l,
                (None, Some(r)) => r,
                (None, None) => break,
            }
        } else {
            k + 1
        };
        let (a, b) = (k.min(j), k.max(j));
        let g = groups.remove(b);
        groups[a].0.extend(g.0);
        groups[a].1.add(g.1);
        groups[a].2 |= g.2;
    }
    let other = groups.iter().position(|g| g.2).unwrap_or(0);
    CategoricalBins {
        groups: groups.iter().map(|g| g.0.clone()).collect(),
        tallies: groups.iter().map(|g| g.1).collect(),
        other,
        missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: BinningParams = BinningParams {
        max_prebins: 20,
        max_bins: 6,
        min_bin_share: 0.01,
        min_bin_rows: 5,
    };

    #[test]
    fn rare_but_telling_values_keep_their_own_bin() {
        // 980 zeros (1% bad), 20 ones (50% bad).
        let mut v = vec![0.0; 980];
        v.extend(vec![1.0; 20]);
        let mut l = vec![0u8; 1000];
        for i in (0..980).step_by(100) {
            l[i] = 1;
        }
        for x in l.iter_mut().take(990).skip(980) {
            *x = 1;
        }
        let b = bin_numeric(&v, &l, Some(Trend::Increasing), &P);
        assert_eq!(b.cuts, vec![1.0]);
        assert_eq!(
            b.tallies[1],
            Tally {
                count: 20,
                bads: 10
            }
        );
    }

    #[test]
    fn bins_follow_the_trend() {
        // Bad rate rises then dips: the dip is pooled away under an increasing trend.
        let v: Vec<f64> = (0..1000).map(|i| f64::from(i / 100)).collect();
        let l: Vec<u8> = (0..1000)
            .map(|i| {
                let bin = i / 100;
                let rate = [1, 2, 3, 4, 5, 6, 7, 3, 8, 9][bin];
                u8::from(i % 100 < rate * 5)
            })
            .collect();
        let b = bin_numeric(&v, &l, Some(Trend::Increasing), &P);
        let rates: Vec<f64> = b.tallies.iter().map(|t| t.rate()).collect();
        assert!(rates.windows(2).all(|w| w[0] < w[1]), "{rates:?}");
        assert!(b.tallies.len() <= 6);
        assert_eq!(b.tallies.iter().map(|t| t.count).sum::<u64>(), 1000);
    }

    #[test]
    fn missing_values_get_their_own_tally() {
        let v = vec![1.0, f64::NAN, 2.0, f64::NAN];
        let b = bin_numeric(&v, &[0, 1, 0, 1], None, &P);
        assert_eq!(b.missing, Tally { count: 2, bads: 2 });
    }

    #[test]
    fn cuts_are_round_numbers_between_neighbours() {
        assert_eq!(roundest_between(0.0, 1.0), 1.0);
        assert_eq!(roundest_between(1234.56, 1301.2), 1300.0);
        assert_eq!(roundest_between(0.31, 0.349), 0.32);
        assert_eq!(roundest_between(5.0, 5.0), 5.0);
        assert_eq!(roundest_between(-3.5, -1.2), -3.0);
    }

    #[test]
    fn woe_is_zero_for_an_empty_bin_and_finite_without_bads() {
        let total = Tally {
            count: 100,
            bads: 10,
        };
        assert_eq!(woe(Tally::default(), total), 0.0);
        assert!(woe(Tally { count: 50, bads: 0 }, total).is_finite());
        assert!(woe(Tally { count: 10, bads: 9 }, total) < 0.0);
    }

    #[test]
    fn rare_categories_pool_into_other() {
        let mut v: Vec<Option<String>> = vec![Some("a".into()); 500];
        v.extend(vec![Some("b".into()); 495]);
        v.extend(vec![Some("c".into()); 2]);
        v.extend(vec![None; 3]);
        let l: Vec<u8> = (0..1000)
            .map(|i| u8::from(i >= 500 && i % 3 == 0))
            .collect();
        let b = bin_categorical(&v, &l, &P);
        assert_eq!(b.missing.count, 3);
        let other = &b.groups[b.other];
        assert!(other.contains(&"c".to_string()), "{:?}", b.groups);
        assert_eq!(b.tallies.iter().map(|t| t.count).sum::<u64>(), 997);
    }
}
