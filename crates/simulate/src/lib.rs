//! `fastrefund simulate`: replays the return requests of a history under the current
//! policy and model and under a candidate, side by side, so that a team sees what moving
//! the star threshold, a limit or the model would do before doing it.
//!
//! **How a scenario is replayed.** Buyers are rated with the scenario's model as of
//! `from`, and again every `rerate_days` (as the batch would republish), each time from
//! the history before that day only. Every return asked in `[from, to)` then goes, in
//! time order, through the service's own money rules: the core's ledger state machine
//! ([`fastrefund_core::ledger::MemoryLedger`], the same [`fastrefund_core::ledger::Book`]
//! and steps the durable ledger applies) with [`fastrefund_core::policy::decide`]. So
//! a simulated return meets the buyer's outstanding advances, the platform's advances of
//! the local day, the orders already refunded and the hold after a loss settled since
//! the rating in force, as online. A return that gets the address and has a tracking
//! number (the history shipped it, or advanced it on a number it never shipped) asks for
//! the advance when it shipped, as the service's tracking call does (the history has no
//! tracking numbers, so each return gets its own and none is reused); an advance stays
//! outstanding until the history's outcome, which settles it through the same rules.
//! Buyers the ratings do not know get the policy's default star, as online.
//!
//! **Refund without return** ([`refund_only`]): every offer the scenario's policy
//! makes is taken at once through the ledger's keep step (the buyer's 30-day cap and
//! the day's refund-only budget bind as online); reported per star, category and
//! merchant with the return shipping saved (`parcel_cost` a parcel) and the losses it
//! would have allowed (value kept on returns whose history outcome was a buyer loss).
//!
//! **Contested outcomes** ([`contested`], `--contested-out`): cases and their
//! decisions with a known truth (which losses were really the merchant's fault), in the
//! decided-cases file's shape, for the overturn rates of `train`, `evaluate` and `rate
//! --cases`.
//!
//! **What is reported**, in total, per star and per category: requests, the share
//! answered instantly (address released), with a pickup, and advanced; value advanced;
//! the **expected loss** on advances — each advance times the scenario model's
//! probability that the buyer turns bad (`Scaling::probability_bad` of their score; for
//! unrated buyers, the lowest score of the default star), i.e. the whole advance lost
//! with that probability, a deliberately cautious estimate; the **realised loss** — the
//! advances whose history outcome is `received_mismatch` or `not_shipped`, with the part
//! on returns the history did *not* advance shown apart (its outcome was observed
//! without an advance, so it is an estimate of what an advance would have lost); the
//! value still outstanding at `to`; refusals by the exposure limit and the daily budget;
//! and **hours of waiting saved**: for each instant release, the merchant's answer time
//! it skips (`merchant_wait_hours`, by default the policy's 72 h deadline, so an upper
//! bound), and for each advance later received, the time from shipping to the merchant's
//! check that the buyer no longer waits for their money (from the history).

use chrono::{DateTime, Duration, NaiveDate, Utc};
use fastrefund_batch::features::date_micros;
use fastrefund_batch::history_returns::{ReturnsError, returns_in_window};
use fastrefund_batch::rate::{RateError, score_history};
use fastrefund_batch::tables::History;
use fastrefund_core::cols::*;
use fastrefund_core::domain::{
    BuyerId, Category, HistoryReturn, MerchantId, Money, OrderId, Outcome, ReturnId, ReturnReason,
    ReturnRequest, Star,
};
use fastrefund_core::ledger::{
    KeepStep, MemoryError, MemoryLedger, Refusal, StarLookup, TrackStep,
};
use fastrefund_core::policy::Policy;
use fastrefund_core::scoring::Scorecard;
use fastrefund_report::{ReportError, plot};
use polars::prelude::*;
pub use refund_only::RefundOnlyTotals;
use rust_decimal::Decimal;
use rust_decimal::prelude::FromPrimitive;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

pub mod contested;
pub mod refund_only;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Polars(#[from] PolarsError),
    #[error(transparent)]
    Rate(#[from] RateError),
    #[error(transparent)]
    Returns(#[from] ReturnsError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot encode simulation.json: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A policy and a model to replay the history under.
#[derive(Debug, Clone, Copy)]
pub struct Scenario<'a> {
    pub name: &'a str,
    pub policy: &'a Policy,
    pub model: &'a Scorecard,
}

/// The window and assumptions.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateOptions {
    /// First day of the replayed window (the first rating date).
    pub from: NaiveDate,
    /// Day after the last; `None` = the end of the history.
    pub to: Option<NaiveDate>,
    /// Buyers are rated again every this many days.
    pub rerate_days: u32,
    /// Hours of merchant answer an instant release saves; `None` = each policy's
    /// `merchant_answer_hours`.
    pub merchant_wait_hours: Option<f64>,
    /// What one return parcel costs that a refund without return saves (courier,
    /// warehouse check, restocking); `fastrefund simulate --parcel-cost`, default 12.00.
    pub parcel_cost: Money,
}

impl SimulateOptions {
    /// Refuses options no replay can run with, naming the option: every check of the
    /// options is here, so the command line only parses them.
    pub fn check(&self) -> Result<(), SimulateError> {
        if self.rerate_days == 0 {
            return Err(SimulateError::Invalid(
                "rerate_days must be at least 1".into(),
            ));
        }
        if let Some(h) = self.merchant_wait_hours
            && !(h.is_finite() && h >= 0.0)
        {
            return Err(SimulateError::Invalid(format!(
                "merchant_wait_hours must be a number of hours ≥ 0, not {h}"
            )));
        }
        Ok(())
    }
}

/// Counts and amounts of one group of requests (all, one star, one category).
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Totals {
    pub requests: u64,
    /// Requests from buyers the ratings did not know (decided with the default star).
    pub unrated: u64,
    pub instant: u64,
    pub pickup: u64,
    pub advanced: u64,
    pub instant_share: f64,
    pub pickup_share: f64,
    pub advanced_share: f64,
    pub value_requested: Money,
    pub value_advanced: Money,
    pub expected_loss: Money,
    pub realised_loss: Money,
    /// The part of `realised_loss` on returns the history did not advance.
    pub realised_loss_not_advanced_in_history: Money,
    /// Realised loss / value advanced.
    pub loss_rate: f64,
    /// Advanced and still unsettled at the end of the window.
    pub outstanding_at_end: Money,
    pub refused_by_limit: u64,
    pub refused_by_budget: u64,
    pub hours_saved_address: f64,
    pub hours_saved_refund: f64,
    /// Refund without return: every offer taken ([`refund_only`]).
    pub refund_only: RefundOnlyTotals,
}

impl Totals {
    fn finish(&mut self) {
        let n = self.requests.max(1) as f64;
        self.instant_share = self.instant as f64 / n;
        self.pickup_share = self.pickup as f64 / n;
        self.advanced_share = self.advanced as f64 / n;
        let adv = self.value_advanced.to_f64_lossy();
        self.loss_rate = if adv > 0.0 {
            self.realised_loss.to_f64_lossy() / adv
        } else {
            0.0
        };
    }
}

/// One scenario's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub policy_version: String,
    pub model_version: String,
    pub min_star: u8,
    pub merchant_wait_hours: f64,
    pub total: Totals,
    /// Index 0 = 1★.
    pub by_star: Vec<Totals>,
    pub by_category: BTreeMap<String, Totals>,
    /// Refund without return per merchant (merchants with an offer only).
    pub refund_only_by_merchant: BTreeMap<u64, RefundOnlyTotals>,
}

/// The two scenarios over the same requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    /// The per-parcel return cost refund-only saves.
    pub parcel_cost: Money,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rating_dates: Vec<NaiveDate>,
    pub history_fingerprint: String,
    pub returns: usize,
    pub current: ScenarioReport,
    pub candidate: ScenarioReport,
}

/// Ratings of every buyer known at one date: buyer → (star, score).
type RatingMap = HashMap<u64, (Star, i32)>;

/// One rating of the schedule as the ledger sees a rating: each buyer's star, and the
/// instant it stopped seeing (losses since then hold instant release and advances).
struct RatingAt<'a> {
    stars: &'a RatingMap,
    as_of: Option<DateTime<Utc>>,
}

impl StarLookup for RatingAt<'_> {
    fn star(&self, buyer: BuyerId) -> Option<Star> {
        self.stars.get(&buyer.0).map(|x| x.0)
    }
    fn rated_as_of(&self) -> Option<DateTime<Utc>> {
        self.as_of
    }
}

/// Replays the history under both scenarios.
pub fn simulate(
    h: &History,
    current: Scenario<'_>,
    candidate: Scenario<'_>,
    opts: &SimulateOptions,
) -> Result<Simulation, SimulateError> {
    opts.check()?;
    let last = h
        .returns
        .column(REQUESTED_AT)?
        .i64()?
        .max()
        .ok_or_else(|| SimulateError::Invalid("the history has no returns".into()))?;
    let end_of_history = DateTime::from_timestamp_micros(last)
        .map(|t| t.date_naive() + Duration::days(1))
        .ok_or_else(|| {
            SimulateError::Invalid(format!(
                "the history's last return was asked at {last} µs since the epoch, out of range"
            ))
        })?;
    let to = opts.to.unwrap_or(end_of_history);
    if to <= opts.from {
        return Err(SimulateError::Invalid(format!(
            "the window {} .. {to} is empty (the history's returns end on {})",
            opts.from,
            end_of_history - Duration::days(1)
        )));
    }
    let (from_us, to_us) = (date_micros(opts.from), date_micros(to));
    let returns = returns_in_window(h, from_us, to_us)?;
    if returns.is_empty() {
        return Err(SimulateError::Invalid(format!(
            "no returns were asked between {} and {to}",
            opts.from
        )));
    }
    let mut rating_dates = Vec::new();
    let mut d = opts.from;
    while d < to {
        rating_dates.push(d);
        d += Duration::days(i64::from(opts.rerate_days));
    }

    // Ratings per (model, date), shared when both scenarios use the same model.
    let mut ratings: HashMap<(String, NaiveDate), Arc<RatingMap>> = HashMap::new();
    for card in [current.model, candidate.model] {
        for &day in &rating_dates {
            let key = (card.version().to_string(), day);
            if ratings.contains_key(&key) {
                continue;
            }
            let s = score_history(h, card, date_micros(day))?;
            let map: RatingMap = s
                .buyer_ids
                .iter()
                .zip(&s.scored)
                .map(|(id, x)| (*id, (x.star, x.score)))
                .collect();
            ratings.insert(key, Arc::new(map));
        }
    }
    let schedule = |card: &Scorecard| -> Vec<Arc<RatingMap>> {
        rating_dates
            .iter()
            .map(|d| ratings[&(card.version().to_string(), *d)].clone())
            .collect()
    };
    let requests: Vec<ReturnRequest> = returns.iter().map(to_request).collect::<Result<_, _>>()?;
    let ctx = Replay {
        returns: &returns,
        requests: &requests,
        from_us,
        to_us,
        rerate_us: i64::from(opts.rerate_days) * 86_400_000_000,
    };
    let (a, b) = rayon::join(
        || ctx.run(current, &schedule(current.model), opts),
        || ctx.run(candidate, &schedule(candidate.model), opts),
    );
    Ok(Simulation {
        parcel_cost: opts.parcel_cost,
        from: opts.from,
        to,
        rating_dates,
        history_fingerprint: h.fingerprint.clone(),
        returns: returns.len(),
        current: a?,
        candidate: b?,
    })
}

fn to_request(r: &HistoryReturn) -> Result<ReturnRequest, SimulateError> {
    let bad =
        |what: &str| SimulateError::Invalid(format!("return {}: {what} is not valid", r.return_id));
    Ok(ReturnRequest {
        return_id: ReturnId(r.return_id),
        buyer_id: BuyerId(r.buyer_id),
        order_id: OrderId(r.order_id),
        merchant_id: MerchantId(r.merchant_id),
        category: Category::parse(&r.category).map_err(|_| bad("the category"))?,
        amount: Money::from_cents(r.amount_cents),
        reason: r
            .reason
            .parse::<ReturnReason>()
            .map_err(|_| bad("the reason"))?,
        delivered_at: DateTime::from_timestamp_micros(r.delivered_at)
            .ok_or_else(|| bad("delivered_at"))?,
        requested_at: DateTime::from_timestamp_micros(r.requested_at)
            .ok_or_else(|| bad("requested_at"))?,
        tracking_number: None,
    })
}

struct Replay<'a> {
    returns: &'a [HistoryReturn],
    requests: &'a [ReturnRequest],
    from_us: i64,
    to_us: i64,
    rerate_us: i64,
}

/// Events of the replay, ordered by time, then settlements before requests before
/// tracking numbers at the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Settle,
    Request,
    Tracking,
}

/// The expected loss of one advance: its amount times the model's probability that the
/// buyer turns bad. A probability that is not a number in [0, 1] is an error naming the
/// return and the score, never a loss of 0.
fn expected_loss(
    return_id: u64,
    amount: Money,
    score: f64,
    p: f64,
) -> Result<Decimal, SimulateError> {
    match Decimal::from_f64(p) {
        Some(d) if (0.0..=1.0).contains(&p) => Ok(amount.value() * d),
        _ => Err(SimulateError::Invalid(format!(
            "return {return_id}: the model's probability of a loss at score {score} is {p}, not a probability"
        ))),
    }
}

/// A sum of expected losses as money (to the cent); one that is not money (negative or
/// too large) is an error naming what it is the loss of.
fn money(d: Decimal, of: &str) -> Result<Money, SimulateError> {
    Money::new(d.round_dp(2))
        .map_err(|e| SimulateError::Invalid(format!("the expected loss of {of}: {e}")))
}

/// A time of the history (µs since the epoch) as an instant; one out of range is an
/// error naming the return, not the epoch.
fn instant(return_id: u64, what: &str, micros: i64) -> Result<DateTime<Utc>, SimulateError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        SimulateError::Invalid(format!(
            "return {return_id}: {what} ({micros} µs since the epoch) is out of range"
        ))
    })
}

impl Replay<'_> {
    fn run(
        &self,
        s: Scenario<'_>,
        ratings: &[Arc<RatingMap>],
        opts: &SimulateOptions,
    ) -> Result<ScenarioReport, SimulateError> {
        let policy = s.policy;
        let card = s.model;
        let wait_hours = opts
            .merchant_wait_hours
            .unwrap_or(f64::from(policy.merchant_answer_hours));
        let cuts = card.model().stars.min_score;
        let default_score = match policy.unknown_buyer_star.get() {
            1 => cuts[0] - 1,
            k => cuts[usize::from(k) - 2],
        };

        let mut heap: BinaryHeap<Reverse<(i64, Event, usize)>> = self
            .returns
            .iter()
            .enumerate()
            .map(|(i, r)| Reverse((r.requested_at, Event::Request, i)))
            .collect();
        // The service's own money rules, in memory (the core's ledger state machine).
        let mut ledger = MemoryLedger::default();
        // The first command the ledger refused: a history the rules cannot replay.
        let mut failure: Option<SimulateError> = None;
        let rated_as_of = |k: usize| {
            DateTime::<Utc>::from_timestamp_micros(self.from_us + k as i64 * self.rerate_us)
        };
        // The rating in force at `t`: its index in the schedule.
        let rating_at = |t: i64| {
            usize::try_from((t - self.from_us) / self.rerate_us)
                .unwrap_or(0)
                .min(ratings.len() - 1)
        };
        // Per return: the star it was decided with, and the score (None when unrated).
        let mut rated: Vec<(Star, Option<i32>)> = vec![(Star::MIN, None); self.returns.len()];
        let mut total = Totals::default();
        let mut by_star: Vec<Totals> = vec![Totals::default(); 5];
        let mut by_category: BTreeMap<String, Totals> = BTreeMap::new();
        let mut expected: [Decimal; 7] = Default::default();
        let mut expected_cat: HashMap<String, Decimal> = HashMap::new();
        let mut by_merchant: BTreeMap<u64, RefundOnlyTotals> = BTreeMap::new();

        // Adds to the total, the star's and the category's tallies.
        macro_rules! tally {
            ($i:expr, |$t:ident| $body:expr) => {{
                let star = usize::from(rated[$i].0.get()) - 1;
                let cat = &self.returns[$i].category;
                for $t in [
                    &mut total,
                    &mut by_star[star],
                    by_category.entry(cat.clone()).or_default(),
                ] {
                    $body;
                }
            }};
        }

        while let Some(Reverse((t, ev, i))) = heap.pop() {
            let r = &self.returns[i];
            let req = &self.requests[i];
            match ev {
                Event::Request => {
                    let k = rating_at(t);
                    let found = ratings[k].get(&r.buyer_id).copied();
                    let d = match ledger.decide(
                        req,
                        found.map(|x| x.0),
                        rated_as_of(k),
                        policy,
                        req.requested_at,
                    ) {
                        Ok(d) => d,
                        Err(e) => {
                            failure.get_or_insert(SimulateError::Invalid(format!(
                                "return {}: {e}",
                                r.return_id
                            )));
                            continue;
                        }
                    };
                    rated[i] = (d.star, found.map(|x| x.1));
                    tally!(i, |x| {
                        x.requests += 1;
                        x.value_requested = x.value_requested + req.amount;
                        x.unrated += u64::from(found.is_none());
                        x.instant += u64::from(d.instant_address_release);
                        x.pickup += u64::from(d.courier_pickup);
                        if d.instant_address_release {
                            x.hours_saved_address += wait_hours;
                        }
                    });
                    // Refund without return: every offer is taken at once, through the
                    // ledger's keep step (the caps checked again and charged); a kept
                    // return ships nothing and settles nothing more.
                    let mut kept = false;
                    if d.refund_without_return {
                        match ledger.keep(r.return_id, policy, req.requested_at) {
                            Ok(KeepStep::Keep { amount }) => {
                                kept = true;
                                let loss = r.outcome.is_some_and(|(o, _)| o.is_buyer_loss());
                                let cost = opts.parcel_cost;
                                tally!(i, |x| x.refund_only.kept(amount, cost, loss));
                                by_merchant
                                    .entry(req.merchant_id.0)
                                    .or_default()
                                    .kept(amount, cost, loss);
                            }
                            Ok(KeepStep::Repeat { .. }) => kept = true,
                            Err(MemoryError::Refused(Refusal::RefundOnlyCaps {
                                reasons, ..
                            })) => tally!(i, |x| x.refund_only.refused(&reasons)),
                            Err(e) => {
                                failure.get_or_insert(SimulateError::Invalid(format!(
                                    "return {}: {e}",
                                    r.return_id
                                )));
                                continue;
                            }
                        }
                    } else {
                        tally!(i, |x| x.refund_only.refused(&d.reasons));
                    }
                    if !kept && d.instant_address_release && r.tracking {
                        let at = r.shipped_at.unwrap_or(r.requested_at).max(r.requested_at);
                        if at < self.to_us {
                            heap.push(Reverse((at, Event::Tracking, i)));
                        }
                    }
                }
                Event::Tracking => {
                    let at = match instant(r.return_id, "the tracking time", t) {
                        Ok(at) => at,
                        Err(e) => {
                            failure.get_or_insert(e);
                            continue;
                        }
                    };
                    let k = rating_at(t);
                    // The history has no tracking numbers: one per return, so none is
                    // ever reused.
                    let tracking = format!("replay-{}", r.return_id);
                    let rating = RatingAt {
                        stars: &ratings[k],
                        as_of: rated_as_of(k),
                    };
                    let step = ledger
                        .track(r.return_id, &tracking, Some(&rating), policy, at)
                        .map_err(|e| {
                            SimulateError::Invalid(format!("return {}: {e}", r.return_id))
                        });
                    // Tallied by the star the return was decided with.
                    let star = rated[i].0;
                    match step {
                        Ok(TrackStep::Advance { .. }) => {}
                        Ok(TrackStep::Refuse { reasons }) => {
                            let limit = reasons.iter().any(|c| c.code() == "exposure_limit");
                            let budget =
                                reasons.iter().any(|c| c.code() == "daily_budget_exhausted");
                            tally!(i, |x| {
                                x.refused_by_limit += u64::from(limit);
                                x.refused_by_budget += u64::from(budget);
                            });
                            continue;
                        }
                        Ok(TrackStep::Repeat { .. }) => continue,
                        Err(e) => {
                            failure.get_or_insert(e);
                            continue;
                        }
                    }
                    let score = f64::from(rated[i].1.unwrap_or(default_score));
                    let el = match expected_loss(
                        r.return_id,
                        req.amount,
                        score,
                        card.probability_bad(score),
                    ) {
                        Ok(el) => el,
                        Err(e) => {
                            failure.get_or_insert(e);
                            continue;
                        }
                    };
                    let star_ix = usize::from(star.get()) - 1;
                    expected[0] += el;
                    expected[1 + star_ix] += el;
                    *expected_cat.entry(r.category.clone()).or_default() += el;
                    let (loss, saved) = match r.outcome {
                        Some((o, _)) if o.is_buyer_loss() => (Some(req.amount), 0.0),
                        Some((Outcome::ReceivedOk | Outcome::MerchantFault, when)) => {
                            (None, (when - t).max(0) as f64 / 3_600_000_000.0)
                        }
                        _ => (None, 0.0),
                    };
                    tally!(i, |x| {
                        x.advanced += 1;
                        x.value_advanced = x.value_advanced + req.amount;
                        x.hours_saved_refund += saved;
                        if let Some(l) = loss {
                            x.realised_loss = x.realised_loss + l;
                            if !r.advanced {
                                x.realised_loss_not_advanced_in_history =
                                    x.realised_loss_not_advanced_in_history + l;
                            }
                        }
                    });
                    match r.outcome {
                        Some((o, when)) if when < self.to_us && o != Outcome::Pending => {
                            heap.push(Reverse((when.max(t), Event::Settle, i)));
                        }
                        _ => tally!(i, |x| {
                            x.outstanding_at_end = x.outstanding_at_end + req.amount;
                        }),
                    }
                }
                Event::Settle => {
                    if let Some((o, _)) = r.outcome {
                        let at = match instant(r.return_id, "the outcome time", t) {
                            Ok(at) => at,
                            Err(e) => {
                                failure.get_or_insert(e);
                                continue;
                            }
                        };
                        if let Err(e) = ledger.settle(r.return_id, o, at) {
                            failure.get_or_insert(SimulateError::Invalid(format!(
                                "return {}: {e}",
                                r.return_id
                            )));
                        }
                    }
                }
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        total.expected_loss = money(expected[0], "all advances")?;
        for (k, t) in by_star.iter_mut().enumerate() {
            t.expected_loss = money(expected[1 + k], &format!("{}★'s advances", k + 1))?;
        }
        for (c, t) in by_category.iter_mut() {
            // A category with no advance has no expected loss: zero, not a fallback.
            let el = expected_cat.get(c).copied().unwrap_or(Decimal::ZERO);
            t.expected_loss = money(el, &format!("{c}'s advances"))?;
        }
        total.finish();
        by_star.iter_mut().for_each(Totals::finish);
        by_category.values_mut().for_each(Totals::finish);
        Ok(ScenarioReport {
            name: s.name.to_string(),
            policy_version: policy.version.clone(),
            model_version: card.version().to_string(),
            min_star: policy.min_star.get(),
            merchant_wait_hours: wait_hours,
            total,
            by_star,
            by_category,
            refund_only_by_merchant: by_merchant,
        })
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn change_pct(a: f64, b: f64) -> String {
    format!("{:+.1} pp", 100.0 * (b - a))
}

fn change_money(a: Money, b: Money) -> String {
    let d = b.value() - a.value();
    if d.is_sign_negative() {
        format!("-{}", d.abs().round_dp(2))
    } else {
        format!("+{}", d.round_dp(2))
    }
}

fn hours(h: f64) -> String {
    if h >= 48.0 {
        format!("{:.0} h ({:.1} days)", h, h / 24.0)
    } else {
        format!("{h:.1} h")
    }
}

impl Simulation {
    /// The comparison as Markdown: totals, then per star and per category.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let (a, b) = (&self.current, &self.candidate);
        let (x, y) = (&a.total, &b.total);
        let mut s = String::new();
        let _ = writeln!(s, "# Policy simulation\n");
        let _ = writeln!(
            s,
            "{} return requests asked from {} to {} (exclusive), replayed under both \
             scenarios; buyers rated on {} from the history before each date.\n",
            self.returns,
            self.from,
            self.to,
            self.rating_dates
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(s, "| | current | candidate | change |");
        let _ = writeln!(s, "| --- | --- | --- | --- |");
        let mut row = |name: &str, c: String, d: String, e: String| {
            let _ = writeln!(s, "| {name} | {c} | {d} | {e} |");
        };
        row(
            "policy",
            a.policy_version.clone(),
            b.policy_version.clone(),
            String::new(),
        );
        row(
            "model",
            a.model_version.clone(),
            b.model_version.clone(),
            String::new(),
        );
        row(
            "minimum star",
            a.min_star.to_string(),
            b.min_star.to_string(),
            String::new(),
        );
        row(
            "requests (unrated buyers)",
            format!("{} ({})", x.requests, x.unrated),
            format!("{} ({})", y.requests, y.unrated),
            String::new(),
        );
        for (name, p, q) in [
            ("answered instantly", x.instant_share, y.instant_share),
            ("courier pickup", x.pickup_share, y.pickup_share),
            ("refund advanced", x.advanced_share, y.advanced_share),
        ] {
            row(name, pct(p), pct(q), change_pct(p, q));
        }
        for (name, p, q) in [
            ("value advanced", x.value_advanced, y.value_advanced),
            ("expected loss (model)", x.expected_loss, y.expected_loss),
            ("realised loss", x.realised_loss, y.realised_loss),
            (
                "… of which on returns the history did not advance",
                x.realised_loss_not_advanced_in_history,
                y.realised_loss_not_advanced_in_history,
            ),
            (
                "outstanding at the end",
                x.outstanding_at_end,
                y.outstanding_at_end,
            ),
        ] {
            row(name, p.to_string(), q.to_string(), change_money(p, q));
        }
        row(
            "realised loss / value advanced",
            format!("{:.3}%", 100.0 * x.loss_rate),
            format!("{:.3}%", 100.0 * y.loss_rate),
            String::new(),
        );
        row(
            "advances refused by the limit / the budget",
            format!("{} / {}", x.refused_by_limit, x.refused_by_budget),
            format!("{} / {}", y.refused_by_limit, y.refused_by_budget),
            String::new(),
        );
        row(
            &format!(
                "buyer hours saved: address (at {} h / {} h per instant answer)",
                a.merchant_wait_hours, b.merchant_wait_hours
            ),
            hours(x.hours_saved_address),
            hours(y.hours_saved_address),
            format!("{:+.0} h", y.hours_saved_address - x.hours_saved_address),
        );
        row(
            "buyer hours saved: refund before the merchant's check",
            hours(x.hours_saved_refund),
            hours(y.hours_saved_refund),
            format!("{:+.0} h", y.hours_saved_refund - x.hours_saved_refund),
        );
        let groups = |s: &mut String, title: &str, keys: Vec<(String, &Totals, &Totals)>| {
            let _ = writeln!(s, "\n## {title}\n");
            let _ = writeln!(
                s,
                "| | requests | instant (current → candidate) | advanced value | realised loss | expected loss |"
            );
            let _ = writeln!(s, "| --- | --- | --- | --- | --- | --- |");
            for (k, p, q) in keys {
                let _ = writeln!(
                    s,
                    "| {k} | {} → {} | {} → {} | {} → {} | {} → {} | {} → {} |",
                    p.requests,
                    q.requests,
                    pct(p.instant_share),
                    pct(q.instant_share),
                    p.value_advanced,
                    q.value_advanced,
                    p.realised_loss,
                    q.realised_loss,
                    p.expected_loss,
                    q.expected_loss
                );
            }
        };
        let stars = (0..5)
            .map(|k| (format!("{}★", k + 1), &a.by_star[k], &b.by_star[k]))
            .collect();
        groups(&mut s, "By star (each scenario's own star)", stars);
        let empty = Totals::default();
        let cats: Vec<&String> = a
            .by_category
            .keys()
            .chain(b.by_category.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let cats = cats
            .into_iter()
            .map(|c| {
                (
                    c.clone(),
                    a.by_category.get(c).unwrap_or(&empty),
                    b.by_category.get(c).unwrap_or(&empty),
                )
            })
            .collect();
        groups(&mut s, "By category", cats);
        s.push_str(&refund_only::markdown(
            self.parcel_cost,
            (
                &a.total.refund_only,
                &refund_only_of(&a.by_star),
                &refund_only_by(&a.by_category),
            ),
            (
                &b.total.refund_only,
                &refund_only_of(&b.by_star),
                &refund_only_by(&b.by_category),
            ),
            (&a.refund_only_by_merchant, &b.refund_only_by_merchant),
            20,
        ));
        let _ = writeln!(
            s,
            "\nFigures: `instant-by-star.svg`, `money-by-star.svg`, `instant-by-category.svg`, \
             `refund-only-by-star.svg`, `refund-only-by-category.svg`. \
             How each figure is computed: see `fastrefund simulate --help` and `crates/simulate/src/lib.rs`."
        );
        s
    }

    /// Writes `simulation.json`, `simulation.md` and the figures into `out`.
    pub fn write(&self, out: &std::path::Path) -> Result<(), SimulateError> {
        let io = |p: &std::path::Path, source: std::io::Error| SimulateError::Io {
            path: p.display().to_string(),
            source,
        };
        std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
        let write = |name: &str, text: &str| {
            let p = out.join(name);
            std::fs::write(&p, text).map_err(|e| io(&p, e))
        };
        write("simulation.json", &serde_json::to_string_pretty(self)?)?;
        write("simulation.md", &self.markdown())?;
        let (a, b) = (&self.current, &self.candidate);
        let stars: Vec<String> = (1..=5).map(|k| format!("{k}★")).collect();
        let share = |r: &ScenarioReport| -> Vec<f64> {
            r.by_star.iter().map(|t| 100.0 * t.instant_share).collect()
        };
        let (sa, sb) = (share(a), share(b));
        write(
            "instant-by-star.svg",
            &plot::grouped_bars(
                "Requests answered instantly, by star",
                &stars,
                &[("current", &sa), ("candidate", &sb)],
                "% of requests",
            )?,
        )?;
        let m = |r: &ScenarioReport, f: fn(&Totals) -> Money| -> Vec<f64> {
            r.by_star.iter().map(|t| f(t).to_f64_lossy()).collect()
        };
        let (va, vb) = (m(a, |t| t.value_advanced), m(b, |t| t.value_advanced));
        let (la, lb) = (m(a, |t| t.realised_loss), m(b, |t| t.realised_loss));
        write(
            "money-by-star.svg",
            &plot::grouped_bars(
                "Advanced, realised and expected loss, by star",
                &stars,
                &[
                    ("advanced, current", &va),
                    ("advanced, candidate", &vb),
                    ("realised loss, current", &la),
                    ("realised loss, candidate", &lb),
                ],
                "amount",
            )?,
        )?;
        let cats: Vec<String> = a.by_category.keys().cloned().collect();
        let cs = |r: &ScenarioReport| -> Vec<f64> {
            cats.iter()
                .map(|c| {
                    r.by_category
                        .get(c)
                        .map_or(0.0, |t| 100.0 * t.instant_share)
                })
                .collect()
        };
        let (ca, cb) = (cs(a), cs(b));
        write(
            "instant-by-category.svg",
            &plot::grouped_bars(
                "Requests answered instantly, by category",
                &cats,
                &[("current", &ca), ("candidate", &cb)],
                "% of requests",
            )?,
        )?;
        let ro = |r: &ScenarioReport, f: fn(&RefundOnlyTotals) -> Money| -> Vec<f64> {
            r.by_star
                .iter()
                .map(|t| f(&t.refund_only).to_f64_lossy())
                .collect()
        };
        let (va, vb) = (ro(a, |t| t.value), ro(b, |t| t.value));
        let sb = ro(b, |t| t.shipping_saved);
        let lb = ro(b, |t| t.losses_allowed_value);
        write(
            "refund-only-by-star.svg",
            &plot::grouped_bars(
                "Refund without return by star: value refunded, shipping saved, losses allowed",
                &stars,
                &[
                    ("refunded, current", &va),
                    ("refunded, candidate", &vb),
                    ("shipping saved, candidate", &sb),
                    ("losses allowed, candidate", &lb),
                ],
                "amount",
            )?,
        )?;
        let rc = |r: &ScenarioReport| -> Vec<f64> {
            cats.iter()
                .map(|c| {
                    r.by_category
                        .get(c)
                        .map_or(0.0, |t| t.refund_only.value.to_f64_lossy())
                })
                .collect()
        };
        let (rca, rcb) = (rc(a), rc(b));
        write(
            "refund-only-by-category.svg",
            &plot::grouped_bars(
                "Value refunded without return, by category",
                &cats,
                &[("current", &rca), ("candidate", &rcb)],
                "amount",
            )?,
        )?;
        Ok(())
    }
}

/// Each group's refund-only figures.
fn refund_only_of(t: &[Totals]) -> Vec<RefundOnlyTotals> {
    t.iter().map(|x| x.refund_only.clone()).collect()
}

fn refund_only_by(t: &BTreeMap<String, Totals>) -> BTreeMap<String, RefundOnlyTotals> {
    t.iter()
        .map(|(k, x)| (k.clone(), x.refund_only.clone()))
        .collect()
}
