//! One buyer's simulated life: hidden type, registration, drift, orders, returns,
//! outcomes and disputes. All figures are defaults chosen to look like the published
//! programme's categories; see `synthetic.md`.

use super::SynthParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Poisson};

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
/// The platform's time zone offset (Asia/Shanghai, no DST) for counting local days.
const LOCAL_OFFSET: i64 = 8 * HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Honest,
    HeavyHonest,
    Wardrober,
    Opportunist,
    Fraudster,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Honest => "honest",
            Kind::HeavyHonest => "heavy_honest",
            Kind::Wardrober => "wardrober",
            Kind::Opportunist => "opportunist",
            Kind::Fraudster => "fraudster",
        }
    }
    const ALL: [Kind; 5] = [
        Kind::Honest,
        Kind::HeavyHonest,
        Kind::Wardrober,
        Kind::Opportunist,
        Kind::Fraudster,
    ];
}

struct Cat {
    name: &'static str,
    /// Popularity weight.
    weight: f64,
    /// Median price in yuan, and log-normal sigma.
    median: f64,
    sigma: f64,
    /// Normal return rate of an honest buyer.
    rate: f64,
    /// Returnable without a reason.
    no_reason_ok: bool,
    apparel: bool,
}

const fn cat(
    name: &'static str,
    weight: f64,
    median: f64,
    sigma: f64,
    rate: f64,
    no_reason_ok: bool,
    apparel: bool,
) -> Cat {
    Cat {
        name,
        weight,
        median,
        sigma,
        rate,
        no_reason_ok,
        apparel,
    }
}

const CATS: [Cat; 10] = [
    cat("womens_wear", 0.18, 120.0, 0.6, 0.30, true, true),
    cat("mens_wear", 0.10, 150.0, 0.6, 0.16, true, true),
    cat("accessories", 0.08, 60.0, 0.7, 0.14, true, true),
    cat("shoes", 0.10, 260.0, 0.5, 0.27, true, true),
    cat("electronics", 0.08, 900.0, 0.8, 0.05, true, false),
    cat("beauty", 0.12, 110.0, 0.6, 0.04, true, false),
    cat("home", 0.12, 160.0, 0.7, 0.06, true, false),
    cat("grocery", 0.14, 45.0, 0.6, 0.02, true, false),
    cat("made_to_order", 0.03, 400.0, 0.6, 0.01, false, false),
    cat("fresh_food", 0.05, 70.0, 0.5, 0.01, false, false),
];
const ELECTRONICS: usize = 4;
const BEAUTY: usize = 5;

/// Behaviour at a point in time (a drifting buyer behaves honestly before turning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Honest,
    Heavy,
    Wardrober,
    Opportunist,
    Fraudster,
}

pub struct DisputeOut {
    pub opened_at: i64,
    pub decided_at: Option<i64>,
    pub decision: &'static str,
    pub fraud_flag: bool,
}

pub struct ReturnOut {
    pub requested_at: i64,
    pub reason: &'static str,
    pub instant: bool,
    pub advanced: bool,
    pub shipped_at: Option<i64>,
    pub outcome: &'static str,
    pub outcome_at: Option<i64>,
    pub dispute: Option<DisputeOut>,
}

pub struct OrderOut {
    pub merchant: u64,
    pub category: &'static str,
    pub cents: i64,
    pub ordered_at: i64,
    pub delivered_at: Option<i64>,
    pub status: &'static str,
    pub ret: Option<ReturnOut>,
}

pub struct BuyerOut {
    pub kind: Kind,
    pub is_new: bool,
    pub registered_at: i64,
    pub bad_from: Option<i64>,
    pub orders: Vec<OrderOut>,
}

/// What every buyer shares: the calendar, the merchants of each category, the shares.
pub struct World {
    seed: u64,
    start: i64,
    end: i64,
    programme_start: i64,
    cum_shares: [f64; 5],
    new_share: f64,
    /// Merchants selling each category.
    merchants_of: Vec<Vec<u64>>,
}

fn mix(a: u64, b: u64) -> u64 {
    // splitmix64 of the pair: independent streams per buyer.
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn micros(d: chrono::NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|x| x.and_utc().timestamp_micros())
        .unwrap_or(0)
}

fn local_day(t: i64) -> i64 {
    (t + LOCAL_OFFSET).div_euclid(DAY)
}

/// Order intensity multiplier: weekends, the November sale, 618, the New Year lull.
fn seasonal(t: i64) -> f64 {
    use chrono::{Datelike, Weekday};
    let Some(dt) = chrono::DateTime::from_timestamp_micros(t + LOCAL_OFFSET) else {
        return 1.0;
    };
    let d = dt.date_naive();
    let week = match d.weekday() {
        Weekday::Sat | Weekday::Sun => 1.25,
        _ => 0.9,
    };
    let season = match (d.month(), d.day()) {
        (11, 1..=11) => 2.6,
        (11, _) => 1.2,
        (12, _) => 1.15,
        (6, 1..=18) => 1.6,
        (2, _) => 0.75,
        _ => 1.0,
    };
    week * season
}
const SEASONAL_MAX: f64 = 1.25 * 2.6;
/// How much harder a fraud account orders in its first 45 days.
const BURST: f64 = 2.5;
/// The history's legacy rule withheld instant release this many days after a known
/// bad outcome.
const LEGACY_COOLDOWN_DAYS: i64 = 30;

impl World {
    pub fn new(p: &SynthParams, merchants: u32, cum_shares: [f64; 5]) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(p.seed, u64::MAX));
        let mut merchants_of = vec![Vec::new(); CATS.len()];
        for m in 1..=u64::from(merchants) {
            let a = pick_weighted(&mut rng, CATS.iter().map(|c| c.weight));
            merchants_of[a].push(m);
            if rng.random::<f64>() < 0.3 {
                let b = pick_weighted(&mut rng, CATS.iter().map(|c| c.weight));
                if b != a {
                    merchants_of[b].push(m);
                }
            }
        }
        // Every category needs a merchant.
        for (i, list) in merchants_of.iter_mut().enumerate() {
            if list.is_empty() {
                list.push(1 + (i as u64 % u64::from(merchants)));
            }
        }
        World {
            seed: p.seed,
            start: micros(p.start),
            end: micros(p.end),
            programme_start: micros(p.start) + 59 * DAY,
            cum_shares,
            new_share: p.new_share,
            merchants_of,
        }
    }

    /// Simulates buyer number `i` (0-based).
    pub fn simulate(&self, i: u64) -> BuyerOut {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, i));
        let u: f64 = rng.random();
        let kind = Kind::ALL[self.cum_shares.iter().position(|c| u < *c).unwrap_or(4)];
        // Fraud accounts are young: they are opened all through the history (new ones
        // keep coming), so at any date most fraudsters have short histories.
        let (is_new, registered_at) = if kind == Kind::Fraudster {
            let r = uniform(&mut rng, self.start - 60 * DAY, self.end - 10 * DAY);
            (r >= self.end - 180 * DAY, r)
        } else if rng.random::<f64>() < self.new_share {
            (
                true,
                uniform(&mut rng, self.end - 180 * DAY, self.end - 10 * DAY),
            )
        } else {
            (
                false,
                uniform(&mut rng, self.start - 3 * 365 * DAY, self.end - 180 * DAY),
            )
        };
        let active_from = registered_at.max(self.start);
        let active_until = self.end;

        // Drift: some bad buyers behaved honestly until `bad_from`; some reform later.
        let turns = match kind {
            Kind::Opportunist => rng.random::<f64>() < 0.4,
            Kind::Wardrober => rng.random::<f64>() < 0.2,
            _ => false,
        };
        let bad_from = match kind {
            Kind::Honest | Kind::HeavyHonest => None,
            _ if turns => {
                Some(uniform(&mut rng, active_from, self.end - 30 * DAY).max(active_from))
            }
            _ => Some(registered_at),
        };
        let reform_at = match kind {
            Kind::Wardrober | Kind::Opportunist if rng.random::<f64>() < 0.12 => {
                let from = bad_from.unwrap_or(active_from).max(self.start);
                Some(uniform(&mut rng, from + 60 * DAY, self.end + 60 * DAY))
            }
            _ => None,
        };
        let act_at = |t: i64| -> Act {
            let bad = bad_from.is_some_and(|b| t >= b) && reform_at.is_none_or(|r| t < r);
            match kind {
                Kind::Honest => Act::Honest,
                Kind::HeavyHonest => Act::Heavy,
                _ if !bad => Act::Honest,
                Kind::Wardrober => Act::Wardrober,
                Kind::Opportunist => Act::Opportunist,
                Kind::Fraudster => Act::Fraudster,
            }
        };

        // Orders per month, with heterogeneity between buyers.
        let monthly = match kind {
            Kind::Honest => 1.0,
            Kind::HeavyHonest => 1.9,
            Kind::Wardrober => 1.6,
            Kind::Opportunist => 1.1,
            Kind::Fraudster => 2.2,
        };
        let sigma: f64 = if kind == Kind::Fraudster { 0.35 } else { 0.6 };
        let hetero = LogNormal::new(-sigma * sigma / 2.0, sigma)
            .map(|d| d.sample(&mut rng))
            .unwrap_or(1.0);
        let per_day = monthly * hetero / 30.4;

        // Category preferences: the type's tilt times a personal one.
        let weights: Vec<f64> = CATS
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let tilt = match kind {
                    Kind::HeavyHonest if c.apparel => 2.5,
                    Kind::Wardrober if c.apparel => 2.5,
                    Kind::Fraudster if j == ELECTRONICS => 4.0,
                    Kind::Fraudster if j == BEAUTY => 1.8,
                    _ => 1.0,
                };
                let personal = LogNormal::new(0.0, 0.5)
                    .map(|d| d.sample(&mut rng))
                    .unwrap_or(1.0);
                c.weight * tilt * personal
            })
            .collect();
        // How often this buyer returns relative to the type's norm.
        let returniness = LogNormal::new(0.0, 0.35)
            .map(|d| d.sample(&mut rng))
            .unwrap_or(1.0);
        // Some people (and some places) are slower to get a parcel to the courier.
        let shipping_pace = LogNormal::new(0.0, 0.4)
            .map(|d| d.sample(&mut rng))
            .unwrap_or(1.0);

        // Order times: a Poisson process thinned by the seasonal intensity.
        let days = (active_until - active_from) as f64 / DAY as f64;
        let mut times: Vec<i64> = Vec::new();
        // A fraud account is exploited hardest in its first weeks.
        let burst = |t: i64| {
            if kind == Kind::Fraudster && t < registered_at + 45 * DAY {
                BURST
            } else {
                1.0
            }
        };
        if days > 0.0 {
            let lambda = per_day * SEASONAL_MAX * BURST * days;
            let n = if lambda > 0.0 {
                Poisson::new(lambda)
                    .map(|d| d.sample(&mut rng) as u64)
                    .unwrap_or(0)
            } else {
                0
            };
            for _ in 0..n {
                let t = uniform(&mut rng, active_from, active_until);
                if rng.random::<f64>() * SEASONAL_MAX * BURST < seasonal(t) * burst(t) {
                    times.push(t);
                }
            }
            times.sort_unstable();
        }

        let mut bad_known: Vec<i64> = Vec::new();
        let mut orders = Vec::with_capacity(times.len());
        for t in times {
            let j = pick_weighted(&mut rng, weights.iter().copied());
            let c = &CATS[j];
            let merchants = &self.merchants_of[j];
            let merchant = merchants[rng.random_range(0..merchants.len())];
            let price = LogNormal::new(c.median.ln(), c.sigma)
                .map(|d| d.sample(&mut rng))
                .unwrap_or(c.median)
                .clamp(1.0, 200_000.0);
            let cents = (price * 100.0).round() as i64;
            let cancelled = rng.random::<f64>() < 0.03;
            let delivered = t + uniform(&mut rng, DAY, 5 * DAY);
            let (delivered_at, status) = if cancelled {
                (None, "cancelled")
            } else if delivered >= self.end {
                (
                    None,
                    if t + DAY >= self.end {
                        "paid"
                    } else {
                        "shipped"
                    },
                )
            } else if delivered + 15 * DAY < self.end {
                (Some(delivered), "completed")
            } else {
                (Some(delivered), "delivered")
            };
            let ret = delivered_at.and_then(|d| {
                let act = act_at(d);
                self.maybe_return(
                    &mut rng,
                    act,
                    kind,
                    c,
                    j,
                    d,
                    returniness,
                    shipping_pace,
                    &mut bad_known,
                )
            });
            orders.push(OrderOut {
                merchant,
                category: c.name,
                cents,
                ordered_at: t,
                delivered_at,
                status,
                ret,
            });
        }
        BuyerOut {
            kind,
            is_new,
            registered_at,
            bad_from,
            orders,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn maybe_return(
        &self,
        rng: &mut ChaCha8Rng,
        act: Act,
        kind: Kind,
        c: &Cat,
        j: usize,
        delivered: i64,
        returniness: f64,
        shipping_pace: f64,
        bad_known: &mut Vec<i64>,
    ) -> Option<ReturnOut> {
        // Probability of any return of this order.
        let base = c.rate * returniness;
        let p = match act {
            Act::Honest => base,
            Act::Heavy if c.apparel => (base * 2.6).min(0.85),
            Act::Heavy => base * 1.2,
            Act::Wardrober if c.apparel => (base * 1.9).min(0.8),
            Act::Wardrober => base,
            Act::Opportunist => base * 1.3,
            Act::Fraudster if j == ELECTRONICS => 0.45,
            Act::Fraudster => (base * 2.0).min(0.8),
        };
        // Dishonest non-receipt claims, made on top of ordinary returns.
        let claim_p = match act {
            Act::Opportunist => 0.05,
            Act::Fraudster => 0.08,
            _ => 0.003,
        };
        let r: f64 = rng.random();
        let claim = r < claim_p;
        if !claim && r >= claim_p + p {
            return None;
        }
        let dishonest_claim = claim && matches!(act, Act::Opportunist | Act::Fraudster);

        let reason = if claim {
            "not_received"
        } else if !c.no_reason_ok {
            if rng.random::<f64>() < 0.6 {
                "quality"
            } else {
                "not_as_described"
            }
        } else {
            let no_reason_p = match act {
                Act::Wardrober => 0.9,
                Act::Fraudster => 0.75,
                _ => 0.7,
            };
            let x: f64 = rng.random();
            if x < no_reason_p {
                "no_reason"
            } else if x < no_reason_p + 0.12 {
                "quality"
            } else if x < no_reason_p + 0.2 {
                "not_as_described"
            } else if x < no_reason_p + 0.25 {
                "wrong_item"
            } else {
                "other"
            }
        };
        let delay = match (act, reason) {
            (_, "not_received") => uniform(rng, DAY / 2, 3 * DAY),
            (Act::Wardrober, "no_reason") => uniform(rng, 5 * DAY, 7 * DAY + 12 * HOUR),
            (Act::Fraudster, _) => exp_micros(rng, 1.5 * DAY as f64).min(6 * DAY),
            (_, "no_reason") => exp_micros(rng, 2.0 * DAY as f64).min(7 * DAY),
            _ => exp_micros(rng, 3.0 * DAY as f64).min(14 * DAY),
        };
        let requested_at = delivered + delay;
        if requested_at >= self.end {
            return None;
        }

        // The platform's own legacy rule decided instant release in this history:
        // programme categories, no-reason, within the window, no bad outcome it knew of
        // in the last LEGACY_COOLDOWN_DAYS days, and (budget, merchant opt-outs) nine times
        // in ten. The cool-down is short, as a crude rule would have it: losses recur in
        // the history, so a model can learn what repeated losses mean.
        let within_window = local_day(requested_at) - local_day(delivered) <= 7;
        let clean = !bad_known
            .iter()
            .any(|b| *b < requested_at && *b >= requested_at - LEGACY_COOLDOWN_DAYS * DAY);
        let instant = reason == "no_reason"
            && c.apparel
            && within_window
            && requested_at >= self.programme_start
            && clean
            && rng.random::<f64>() < 0.9;

        // Merchant faults happen to everybody alike, more for quality complaints.
        let fault_p = match reason {
            "quality" | "wrong_item" | "not_as_described" => 0.3,
            "not_received" if !dishonest_claim => 0.8,
            _ => 0.02,
        };
        let merchant_fault = !dishonest_claim && rng.random::<f64>() < fault_p;

        // Does the parcel go back, and in what state?
        let (ships, mismatch) = if merchant_fault {
            (reason != "not_received", false)
        } else if dishonest_claim {
            (false, false)
        } else {
            let (never, wrong) = match (act, instant) {
                (Act::Honest | Act::Heavy, _) => (0.0005, 0.0008),
                (Act::Wardrober, _) => (0.01, 0.14),
                (Act::Opportunist, true) => (0.10, 0.04),
                (Act::Opportunist, false) => (0.03, 0.03),
                (Act::Fraudster, true) => (0.35, 0.35),
                (Act::Fraudster, false) => (0.10, 0.30),
            };
            let x: f64 = rng.random();
            (x >= never, x >= never && x < never + wrong)
        };
        // The refund is advanced once a tracking number is entered; a fraudster
        // enters a fake one. A few advances were not made (budget).
        let enters_tracking = ships || matches!(act, Act::Fraudster | Act::Opportunist);
        let advanced = instant && enters_tracking && rng.random::<f64>() < 0.95;
        let ship_median_days = shipping_pace
            * match act {
                Act::Honest | Act::Heavy => 0.8,
                Act::Wardrober => 1.2,
                Act::Opportunist => 1.0,
                Act::Fraudster => 1.5,
            };
        let shipped_at = ships.then(|| {
            let d = LogNormal::new((ship_median_days * DAY as f64).ln(), 0.7)
                .map(|d| d.sample(rng))
                .unwrap_or(DAY as f64);
            requested_at + (d as i64).clamp(HOUR, 20 * DAY)
        });
        let (outcome, at) = if merchant_fault {
            (
                "merchant_fault",
                shipped_at.unwrap_or(requested_at) + uniform(rng, 2 * DAY, 6 * DAY),
            )
        } else if let Some(s) = shipped_at {
            let at = s + uniform(rng, 2 * DAY, 5 * DAY);
            (
                if mismatch {
                    "received_mismatch"
                } else {
                    "received_ok"
                },
                at,
            )
        } else {
            ("not_shipped", requested_at + 10 * DAY)
        };
        let (outcome, outcome_at) = if at >= self.end {
            ("pending", None)
        } else {
            (outcome, Some(at))
        };
        if matches!(outcome, "received_mismatch" | "not_shipped")
            && !dishonest_claim
            && let Some(a) = outcome_at
        {
            bad_known.push(a);
        }

        // Disputes: from mismatches, unshipped advances, non-receipt claims and faults.
        let dishonest = match act {
            Act::Honest | Act::Heavy => false,
            _ => mismatch || (!ships && !merchant_fault) || dishonest_claim,
        };
        let open_p = if merchant_fault {
            0.2
        } else if dishonest_claim || reason == "not_received" {
            0.6
        } else if mismatch {
            if advanced { 0.8 } else { 0.5 }
        } else if !ships {
            if advanced { 0.6 } else { 0.1 }
        } else {
            0.01
        };
        let dispute = (rng.random::<f64>() < open_p)
            .then(|| {
                let opened_at =
                    outcome_at.unwrap_or(requested_at + 3 * DAY) + uniform(rng, 0, 2 * DAY);
                if opened_at >= self.end {
                    return None;
                }
                let x: f64 = rng.random();
                let decision = if merchant_fault {
                    if x < 0.9 { "buyer_won" } else { "split" }
                } else if dishonest {
                    if x < 0.85 {
                        "merchant_won"
                    } else if x < 0.93 {
                        "split"
                    } else {
                        "buyer_won"
                    }
                } else if x < 0.5 {
                    "buyer_won"
                } else if x < 0.8 {
                    "split"
                } else {
                    "merchant_won"
                };
                let flag_p = match (decision, dishonest, kind) {
                    ("merchant_won", true, Kind::Fraudster) => 0.8,
                    ("merchant_won", true, Kind::Opportunist) => 0.5,
                    ("merchant_won", true, _) => 0.25,
                    ("merchant_won", false, _) => 0.03,
                    _ => 0.0,
                };
                let fraud_flag = rng.random::<f64>() < flag_p;
                let decided = opened_at + uniform(rng, 2 * DAY, 10 * DAY);
                let (decision, decided_at) = if decided >= self.end {
                    ("open", None)
                } else {
                    (decision, Some(decided))
                };
                if fraud_flag && let Some(d) = decided_at {
                    bad_known.push(d);
                }
                Some(DisputeOut {
                    opened_at,
                    decided_at,
                    decision,
                    fraud_flag: fraud_flag && decided_at.is_some(),
                })
            })
            .flatten();
        Some(ReturnOut {
            requested_at,
            reason,
            instant,
            advanced,
            shipped_at,
            outcome,
            outcome_at,
            dispute,
        })
    }
}

fn uniform(rng: &mut ChaCha8Rng, lo: i64, hi: i64) -> i64 {
    if hi <= lo {
        lo
    } else {
        rng.random_range(lo..hi)
    }
}

fn exp_micros(rng: &mut ChaCha8Rng, mean: f64) -> i64 {
    Exp::new(1.0 / mean)
        .map(|d| d.sample(rng) as i64)
        .unwrap_or(mean as i64)
}

fn pick_weighted(rng: &mut ChaCha8Rng, w: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = w.clone().sum();
    let mut x = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, v) in w.enumerate() {
        last = i;
        if x < v {
            return i;
        }
        x -= v;
    }
    last
}
