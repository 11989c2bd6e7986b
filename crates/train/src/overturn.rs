//! How often reviewers overturn what the rating held against buyers, as plain data (no
//! polars): the `cases` section of the evaluation report (`train --cases`, `evaluate
//! --cases`) and of the monitoring a snapshot carries (`rate --cases` writes
//! `cases.json` and `cases.svg`).
//!
//! A case is **overturned** when the buyer won it or it was split (`buyer_won`,
//! `split`): the loss, reason or refusal the buyer contested did not stand whole. The
//! overturn rate is overturned cases over decided cases, by the star the buyer had
//! when the case was opened and by the reason code of that star (`reason_code` of the
//! decided-cases file, docs/input-types.md). The batch side reads the file (Parquet or
//! CSV) into [`DecidedCase`]s; the report crate draws [`Overturns`].
//!
//! **A model whose losses are often overturned is wrong**, so a star whose cases are
//! overturned at [`HIGH_OVERTURN_RATE`] (25%) or more, over at least [`MIN_CASES`] (20)
//! decided cases, is called out in words ([`Overturns::findings`]). Why 25%: a case
//! reaches a reviewer only when someone disagreed, and the platforms this is modelled
//! on see a minority of contested outcomes go to the buyer; when one case in four
//! (or more) at a star is overturned, the losses that put buyers there are too often
//! not theirs to trust the star without a look. Fewer than 20 cases say too little
//! (a single case moves the rate by 5 points or more), so they are shown, not judged.

use fastrefund_core::cases::Verdict;
use fastrefund_core::domain::Star;
use serde::Serialize;
use std::collections::BTreeMap;

/// A star's cases overturned at this rate or more are called out (with [`MIN_CASES`]).
pub const HIGH_OVERTURN_RATE: f64 = 0.25;
/// Fewer decided cases than this at a star are shown but not called out.
pub const MIN_CASES: u64 = 20;

/// One decided case, as the overturn rates need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedCase {
    pub verdict: Verdict,
    /// The buyer's star when the case was opened (`None`: not known, e.g. exported
    /// without the snapshot that was in service).
    pub star: Option<Star>,
    /// The reason code of that star the case is counted under (`None`: not known).
    pub reason: Option<String>,
}

/// Decided cases of one group (a star, a reason code, or all of them).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverturnRow {
    /// `1★` … `5★`, `star unknown`, a reason code, `reason unknown`, or `all`.
    pub group: String,
    pub decided: u64,
    pub buyer_won: u64,
    pub split: u64,
    pub merchant_won: u64,
    /// (buyer_won + split) / decided, in [0, 1]; 0 when nothing was decided.
    pub overturn_rate: f64,
    /// At least [`HIGH_OVERTURN_RATE`] over at least [`MIN_CASES`] cases (stars only;
    /// reason codes are shown, not judged).
    pub high: bool,
}

impl OverturnRow {
    fn new(group: String) -> OverturnRow {
        OverturnRow {
            group,
            decided: 0,
            buyer_won: 0,
            split: 0,
            merchant_won: 0,
            overturn_rate: 0.0,
            high: false,
        }
    }

    fn add(&mut self, v: Verdict) {
        self.decided += 1;
        match v {
            Verdict::BuyerWon => self.buyer_won += 1,
            Verdict::Split => self.split += 1,
            Verdict::MerchantWon => self.merchant_won += 1,
        }
    }

    /// Cases the buyer won or that were split.
    pub fn overturned(&self) -> u64 {
        self.buyer_won + self.split
    }

    fn finish(&mut self, judged: bool) {
        self.overturn_rate = if self.decided == 0 {
            0.0
        } else {
            self.overturned() as f64 / self.decided as f64
        };
        self.high = judged && self.decided >= MIN_CASES && self.overturn_rate >= HIGH_OVERTURN_RATE;
    }
}

/// The `cases` section: overturn rates in total, by star at opening and by reason code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overturns {
    /// The decided-cases file it was read from.
    pub source: String,
    pub all: OverturnRow,
    /// 1★ to 5★ (every star, with 0 cases where none), then `star unknown` if any.
    pub by_star: Vec<OverturnRow>,
    /// By reason code, most cases first (then by code), then `reason unknown` if any.
    pub by_reason: Vec<OverturnRow>,
    pub high_overturn_rate: f64,
    pub min_cases: u64,
    /// What the rates say, in words ([`Overturns::findings`]).
    pub findings: Vec<String>,
}

impl Overturns {
    /// The overturn rates of `cases`, read from `source`.
    pub fn of(source: &str, cases: &[DecidedCase]) -> Overturns {
        let mut all = OverturnRow::new("all".into());
        let mut stars: Vec<OverturnRow> =
            (1..=5).map(|k| OverturnRow::new(format!("{k}★"))).collect();
        let mut star_unknown = OverturnRow::new("star unknown".into());
        let mut reasons: BTreeMap<&str, OverturnRow> = BTreeMap::new();
        let mut reason_unknown = OverturnRow::new("reason unknown".into());
        for c in cases {
            all.add(c.verdict);
            match c.star {
                Some(s) => stars[usize::from(s.get()) - 1].add(c.verdict),
                None => star_unknown.add(c.verdict),
            }
            match &c.reason {
                Some(r) => reasons
                    .entry(r.as_str())
                    .or_insert_with(|| OverturnRow::new(r.clone()))
                    .add(c.verdict),
                None => reason_unknown.add(c.verdict),
            }
        }
        all.finish(false);
        stars.iter_mut().for_each(|r| r.finish(true));
        star_unknown.finish(false);
        let mut by_reason: Vec<OverturnRow> = reasons.into_values().collect();
        by_reason.iter_mut().for_each(|r| r.finish(false));
        by_reason.sort_by(|a, b| b.decided.cmp(&a.decided).then(a.group.cmp(&b.group)));
        reason_unknown.finish(false);
        let mut by_star = stars;
        if star_unknown.decided > 0 {
            by_star.push(star_unknown);
        }
        if reason_unknown.decided > 0 {
            by_reason.push(reason_unknown);
        }
        let mut o = Overturns {
            source: source.to_string(),
            all,
            by_star,
            by_reason,
            high_overturn_rate: HIGH_OVERTURN_RATE,
            min_cases: MIN_CASES,
            findings: Vec::new(),
        };
        o.findings = o.words();
        o
    }

    /// The stars whose overturn rate is high.
    pub fn high_stars(&self) -> impl Iterator<Item = &OverturnRow> {
        self.by_star.iter().filter(|r| r.high)
    }

    fn words(&self) -> Vec<String> {
        let pct = |x: f64| format!("{:.0}%", 100.0 * x);
        let mut w = Vec::new();
        if self.all.decided == 0 {
            w.push(format!(
                "No decided case in {}: nothing to measure.",
                self.source
            ));
            return w;
        }
        w.push(format!(
            "{} decided cases: {} overturned ({} won by the buyer, {} split), {}.",
            self.all.decided,
            self.all.overturned(),
            self.all.buyer_won,
            self.all.split,
            pct(self.all.overturn_rate)
        ));
        for r in self.high_stars() {
            w.push(format!(
                "The model is wrong too often at {star}: {n} of {d} cases opened by buyers \
                 at {star} were overturned ({rate}, at or above {limit}): the losses and \
                 reasons held against them were often not theirs. Check the outcomes the \
                 model learns from (export-outcomes gives the corrected ones, export-cases \
                 the decided cases) before trusting {star} ratings.",
                star = r.group,
                n = r.overturned(),
                d = r.decided,
                rate = pct(r.overturn_rate),
                limit = pct(self.high_overturn_rate),
            ));
        }
        if self.high_stars().next().is_none() {
            w.push(format!(
                "No star's cases are overturned at {} or more (stars with at least {} decided cases are judged).",
                pct(self.high_overturn_rate),
                self.min_cases
            ));
        }
        let thin: Vec<&str> = self
            .by_star
            .iter()
            .filter(|r| r.decided > 0 && r.decided < self.min_cases && r.group.ends_with('★'))
            .map(|r| r.group.as_str())
            .collect();
        if !thin.is_empty() {
            w.push(format!(
                "Too few cases to judge at {} (fewer than {} each).",
                thin.join(", "),
                self.min_cases
            ));
        }
        if let Some(u) = self.by_star.iter().find(|r| r.group == "star unknown") {
            w.push(format!(
                "{} cases have no star at opening (exported without the snapshot in service).",
                u.decided
            ));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(v: Verdict, star: u8, reason: &str) -> DecidedCase {
        DecidedCase {
            verdict: v,
            star: Some(Star::try_from(star).unwrap()),
            reason: Some(reason.into()),
        }
    }

    #[test]
    fn buyer_won_and_split_are_overturned_and_merchant_won_is_not() {
        let cases = [
            case(Verdict::BuyerWon, 2, "days_since_last_bad"),
            case(Verdict::Split, 2, "days_since_last_bad"),
            case(Verdict::MerchantWon, 2, "returns_90"),
            case(Verdict::MerchantWon, 5, "returns_90"),
        ];
        let o = Overturns::of("cases.csv", &cases);
        assert_eq!((o.all.decided, o.all.overturned()), (4, 2));
        assert_eq!(o.all.overturn_rate, 0.5);
        let two = &o.by_star[1];
        assert_eq!(
            (two.group.as_str(), two.decided, two.buyer_won, two.split),
            ("2★", 3, 1, 1)
        );
        assert!((two.overturn_rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(o.by_star[4].overturn_rate, 0.0);
        assert_eq!(o.by_star.len(), 5, "every star, and no unknown row");
        let r: Vec<(&str, u64, u64)> = o
            .by_reason
            .iter()
            .map(|r| (r.group.as_str(), r.decided, r.overturned()))
            .collect();
        assert_eq!(r, [("days_since_last_bad", 2, 2), ("returns_90", 2, 0)]);
        // Too few cases to judge: shown, not called out.
        assert!(o.high_stars().next().is_none());
        assert!(
            o.findings
                .iter()
                .any(|f| f.contains("Too few cases to judge at 2★, 5★")),
            "{:?}",
            o.findings
        );
    }

    #[test]
    fn a_star_overturned_at_a_quarter_of_twenty_cases_is_called_wrong_in_words() {
        let mut cases = Vec::new();
        // 1★: 5 of 20 overturned (25%): high. 3★: 4 of 20 (20%): not. 4★: 19 cases, all overturned: too few.
        for i in 0..20 {
            let v = if i < 5 {
                Verdict::BuyerWon
            } else {
                Verdict::MerchantWon
            };
            cases.push(case(v, 1, "returns_90"));
            let v = if i < 4 {
                Verdict::Split
            } else {
                Verdict::MerchantWon
            };
            cases.push(case(v, 3, "returns_90"));
            if i < 19 {
                cases.push(case(Verdict::BuyerWon, 4, "returns_90"));
            }
        }
        cases.push(DecidedCase {
            verdict: Verdict::BuyerWon,
            star: None,
            reason: None,
        });
        let o = Overturns::of("x.parquet", &cases);
        let high: Vec<&str> = o.high_stars().map(|r| r.group.as_str()).collect();
        assert_eq!(high, ["1★"]);
        let said = o.findings.join("\n");
        assert!(
            said.contains("The model is wrong too often at 1★: 5 of 20 cases opened by buyers at 1★ were overturned (25%"),
            "{said}"
        );
        assert!(!said.contains("at 3★:"), "{said}");
        assert!(said.contains("Too few cases to judge at 4★"), "{said}");
        assert!(said.contains("1 cases have no star at opening"), "{said}");
        assert_eq!(o.by_star.last().unwrap().group, "star unknown");
        assert_eq!(o.by_reason.last().unwrap().group, "reason unknown");
    }

    #[test]
    fn no_case_is_nothing_to_measure_not_a_rate() {
        let o = Overturns::of("empty.csv", &[]);
        assert_eq!(o.all.decided, 0);
        assert_eq!(o.all.overturn_rate, 0.0);
        assert_eq!(
            o.findings,
            ["No decided case in empty.csv: nothing to measure."]
        );
    }
}
