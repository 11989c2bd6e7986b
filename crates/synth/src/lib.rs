//! The seeded generator of synthetic purchase and return history (`synthetic.md`).
//!
//! Real histories are private, so the generator writes the four tables of the data
//! contract with a known truth: each buyer has a hidden behaviour type (honest, heavy
//! but honest, wardrober, opportunist, fraudster), some are new accounts, and some turn
//! bad (or reform) part-way through, so that an out-of-time test is harder than an
//! in-time one. Types overlap on purpose: honest buyers make mistakes now and then,
//! fraudsters often behave, merchants cause faults for everybody, and dispute
//! decisions are noisy.
//!
//! **Determinism.** Each buyer is simulated from its own ChaCha8 stream seeded by
//! (seed, buyer index), so the output does not depend on threads or chunking; ids are
//! assigned afterwards in buyer order. Same seed, same bytes.
//!
//! **Streaming.** Buyers are simulated in chunks (in parallel with rayon) and each
//! chunk is written as Parquet row groups, so memory stays flat however many buyers.

mod buyer;

use buyer::{BuyerOut, Kind};
use chrono::NaiveDate;
use fastrefund_core::cols;
use polars::prelude::*;
use rayon::prelude::*;
use std::fs::File;
use std::path::{Path, PathBuf};

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid generator parameter `{param}`: {message}")]
    Param {
        param: &'static str,
        message: String,
    },
    #[error("cannot write {path}: {message}")]
    Write { path: String, message: String },
}

/// Generator parameters; [`SynthParams::check`] validates them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SynthParams {
    /// Number of buyers (default 2,000).
    pub buyers: u64,
    /// Seed (default 7).
    pub seed: u64,
    /// First day of the history (default 2025-01-01).
    pub start: NaiveDate,
    /// Day after the last day of the history (default 2026-06-30).
    pub end: NaiveDate,
    /// Merchants (default: buyers / 40, at least 100, at most 5,000).
    pub merchants: Option<u32>,
    /// Shares of honest, heavy_honest, wardrober, opportunist, fraudster
    /// (default 0.78, 0.12, 0.05, 0.03, 0.02); normalised to sum to 1.
    pub shares: [f64; 5],
    /// Share of new accounts among non-fraudsters (default 0.10); fraudsters are new
    /// at four times this rate (capped at 0.6).
    pub new_share: f64,
    /// Buyers per chunk (default 20,000).
    pub chunk: u64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            buyers: 2_000,
            seed: 7,
            start: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default(),
            end: NaiveDate::from_ymd_opt(2026, 6, 30).unwrap_or_default(),
            merchants: None,
            shares: [0.78, 0.12, 0.05, 0.03, 0.02],
            new_share: 0.10,
            chunk: 20_000,
        }
    }
}

/// Checked parameters: only these can generate.
#[derive(Debug, Clone)]
pub struct CheckedSynth {
    p: SynthParams,
    merchants: u32,
    cum_shares: [f64; 5],
}

impl SynthParams {
    /// Validates the parameters.
    pub fn check(self) -> Result<CheckedSynth, SynthError> {
        let bad = |param, message: String| Err(SynthError::Param { param, message });
        if self.buyers == 0 || self.buyers > 50_000_000 {
            return bad(
                "buyers",
                format!("must be 1..=50,000,000, got {}", self.buyers),
            );
        }
        if self.end <= self.start + chrono::Duration::days(30) {
            return bad(
                "end",
                format!("must be at least 30 days after start ({})", self.start),
            );
        }
        if self.shares.iter().any(|s| !s.is_finite() || *s < 0.0)
            || self.shares.iter().sum::<f64>() <= 0.0
        {
            return bad("shares", "must be non-negative and not all zero".into());
        }
        if !(0.0..=1.0).contains(&self.new_share) {
            return bad(
                "new_share",
                format!("must be in [0, 1], got {}", self.new_share),
            );
        }
        if self.chunk == 0 {
            return bad("chunk", "must be at least 1".into());
        }
        let merchants = match self.merchants {
            Some(0) => return bad("merchants", "must be at least 1".into()),
            Some(m) => m,
            None => u32::try_from((self.buyers / 40).clamp(100, 5_000)).unwrap_or(5_000),
        };
        let total: f64 = self.shares.iter().sum();
        let mut cum = [0.0; 5];
        let mut acc = 0.0;
        for (c, s) in cum.iter_mut().zip(self.shares) {
            acc += s / total;
            *c = acc;
        }
        cum[4] = 1.0;
        Ok(CheckedSynth {
            p: self,
            merchants,
            cum_shares: cum,
        })
    }
}

/// Counts of what was written.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct SynthSummary {
    pub buyers: u64,
    pub orders: u64,
    pub returns: u64,
    pub disputes: u64,
}

struct Writers {
    orders: Sink,
    returns: Sink,
    disputes: Sink,
    buyers: Sink,
    truth: Sink,
}

struct Sink {
    path: PathBuf,
    writer: Option<polars::io::parquet::write::BatchedWriter<File>>,
}

impl Sink {
    fn new(dir: &Path, name: &str) -> Sink {
        Sink {
            path: dir.join(format!("{name}.parquet")),
            writer: None,
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> SynthError {
        SynthError::Write {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn write(&mut self, df: &DataFrame) -> Result<(), SynthError> {
        if self.writer.is_none() {
            let f = File::create(&self.path).map_err(|e| self.err(e))?;
            let w = ParquetWriter::new(f)
                .with_compression(ParquetCompression::Zstd(None))
                .batched(df.schema())
                .map_err(|e| self.err(e))?;
            self.writer = Some(w);
        }
        match &mut self.writer {
            Some(w) => w.write_batch(df).map_err(|e| SynthError::Write {
                path: self.path.display().to_string(),
                message: e.to_string(),
            }),
            None => Ok(()),
        }
    }

    fn finish(self) -> Result<(), SynthError> {
        match &self.writer {
            Some(w) => w.finish().map(|_| ()).map_err(|e| self.err(e)),
            None => Ok(()),
        }
    }
}

/// Columns of one chunk, ids assigned.
#[derive(Default)]
struct Columns {
    o_id: Vec<u64>,
    o_buyer: Vec<u64>,
    o_merchant: Vec<u64>,
    o_category: Vec<&'static str>,
    o_amount: Vec<i128>,
    o_ordered: Vec<i64>,
    o_delivered: Vec<Option<i64>>,
    o_status: Vec<&'static str>,
    r_id: Vec<u64>,
    r_order: Vec<u64>,
    r_buyer: Vec<u64>,
    r_requested: Vec<i64>,
    r_reason: Vec<&'static str>,
    r_amount: Vec<i128>,
    r_instant: Vec<bool>,
    r_advanced: Vec<bool>,
    r_shipped: Vec<Option<i64>>,
    r_outcome: Vec<&'static str>,
    r_outcome_at: Vec<Option<i64>>,
    d_id: Vec<u64>,
    d_order: Vec<u64>,
    d_buyer: Vec<u64>,
    d_opened: Vec<i64>,
    d_decided: Vec<Option<i64>>,
    d_decision: Vec<&'static str>,
    d_fraud: Vec<bool>,
    b_id: Vec<u64>,
    b_registered: Vec<i64>,
    t_type: Vec<&'static str>,
    t_new: Vec<bool>,
    t_bad_from: Vec<Option<i64>>,
}

/// The first buyer id; buyer `i` (0-based) is `FIRST_BUYER_ID + i`.
pub const FIRST_BUYER_ID: u64 = 100_001;

fn money(name: &str, v: Vec<i128>) -> PolarsResult<Column> {
    Ok(Series::new(name.into(), v)
        .into_decimal(12, 2)?
        .into_column())
}

fn time(name: &str, v: Vec<i64>) -> Column {
    Series::new(name.into(), v)
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

fn time_opt(name: &str, v: Vec<Option<i64>>) -> Column {
    Series::new(name.into(), v)
        .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
        .into_column()
}

fn u64s(name: &str, v: Vec<u64>) -> Column {
    Column::new(name.into(), v)
}

fn strs(name: &str, v: Vec<&'static str>) -> Column {
    Column::new(name.into(), v)
}

impl Columns {
    fn frames(self) -> PolarsResult<[DataFrame; 5]> {
        use cols::*;
        let orders = DataFrame::new_infer_height(vec![
            u64s(ORDER_ID, self.o_id),
            u64s(BUYER_ID, self.o_buyer),
            u64s(MERCHANT_ID, self.o_merchant),
            strs(CATEGORY, self.o_category),
            money(AMOUNT, self.o_amount)?,
            time(ORDERED_AT, self.o_ordered),
            time_opt(DELIVERED_AT, self.o_delivered),
            strs(STATUS, self.o_status),
        ])?;
        let returns = DataFrame::new_infer_height(vec![
            u64s(RETURN_ID, self.r_id),
            u64s(ORDER_ID, self.r_order),
            u64s(BUYER_ID, self.r_buyer),
            time(REQUESTED_AT, self.r_requested),
            strs(REASON, self.r_reason),
            money(AMOUNT, self.r_amount)?,
            Column::new(INSTANT.into(), self.r_instant),
            Column::new(ADVANCED.into(), self.r_advanced),
            time_opt(SHIPPED_AT, self.r_shipped),
            strs(OUTCOME, self.r_outcome),
            time_opt(OUTCOME_AT, self.r_outcome_at),
        ])?;
        let disputes = DataFrame::new_infer_height(vec![
            u64s(DISPUTE_ID, self.d_id),
            u64s(ORDER_ID, self.d_order),
            u64s(BUYER_ID, self.d_buyer),
            time(OPENED_AT, self.d_opened),
            time_opt(DECIDED_AT, self.d_decided),
            strs(DECISION, self.d_decision),
            Column::new(FRAUD_FLAG.into(), self.d_fraud),
        ])?;
        let buyers = DataFrame::new_infer_height(vec![
            u64s(BUYER_ID, self.b_id.clone()),
            time(REGISTERED_AT, self.b_registered),
        ])?;
        let truth = DataFrame::new_infer_height(vec![
            u64s(BUYER_ID, self.b_id),
            strs("hidden_type", self.t_type),
            Column::new("is_new".into(), self.t_new),
            time_opt("bad_from", self.t_bad_from),
        ])?;
        Ok([orders, returns, disputes, buyers, truth])
    }
}

struct Ids {
    order: u64,
    ret: u64,
    dispute: u64,
}

fn append(c: &mut Columns, ids: &mut Ids, buyer_id: u64, b: BuyerOut) {
    c.b_id.push(buyer_id);
    c.b_registered.push(b.registered_at);
    c.t_type.push(b.kind.name());
    c.t_new.push(b.is_new);
    c.t_bad_from.push(b.bad_from);
    for o in b.orders {
        let order_id = ids.order;
        ids.order += 1;
        c.o_id.push(order_id);
        c.o_buyer.push(buyer_id);
        c.o_merchant.push(o.merchant);
        c.o_category.push(o.category);
        c.o_amount.push(i128::from(o.cents));
        c.o_ordered.push(o.ordered_at);
        c.o_delivered.push(o.delivered_at);
        c.o_status.push(o.status);
        if let Some(r) = o.ret {
            c.r_id.push(ids.ret);
            ids.ret += 1;
            c.r_order.push(order_id);
            c.r_buyer.push(buyer_id);
            c.r_requested.push(r.requested_at);
            c.r_reason.push(r.reason);
            c.r_amount.push(i128::from(o.cents));
            c.r_instant.push(r.instant);
            c.r_advanced.push(r.advanced);
            c.r_shipped.push(r.shipped_at);
            c.r_outcome.push(r.outcome);
            c.r_outcome_at.push(r.outcome_at);
            if let Some(d) = r.dispute {
                c.d_id.push(ids.dispute);
                ids.dispute += 1;
                c.d_order.push(order_id);
                c.d_buyer.push(buyer_id);
                c.d_opened.push(d.opened_at);
                c.d_decided.push(d.decided_at);
                c.d_decision.push(d.decision);
                c.d_fraud.push(d.fraud_flag);
            }
        }
    }
}

impl CheckedSynth {
    /// The parameters.
    pub fn params(&self) -> &SynthParams {
        &self.p
    }

    /// Generates the history into `out` (created if needed): orders, returns,
    /// disputes, buyers and truth `.parquet`. `progress` is told how many buyers are done.
    pub fn generate(
        &self,
        out: &Path,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<SynthSummary, SynthError> {
        std::fs::create_dir_all(out).map_err(|e| SynthError::Write {
            path: out.display().to_string(),
            message: e.to_string(),
        })?;
        let world = buyer::World::new(&self.p, self.merchants, self.cum_shares);
        let mut w = Writers {
            orders: Sink::new(out, "orders"),
            returns: Sink::new(out, "returns"),
            disputes: Sink::new(out, "disputes"),
            buyers: Sink::new(out, "buyers"),
            truth: Sink::new(out, "truth"),
        };
        let mut ids = Ids {
            order: 1,
            ret: 1,
            dispute: 1,
        };
        let mut summary = SynthSummary::default();
        let mut lo = 0;
        while lo < self.p.buyers {
            let hi = (lo + self.p.chunk).min(self.p.buyers);
            let sims: Vec<BuyerOut> = (lo..hi)
                .into_par_iter()
                .map(|i| world.simulate(i))
                .collect();
            let mut c = Columns::default();
            for (i, b) in (lo..hi).zip(sims) {
                append(&mut c, &mut ids, FIRST_BUYER_ID + i, b);
            }
            let frames = c.frames().map_err(|e| w.orders.err(e))?;
            let [o, r, d, b, t] = frames;
            summary.buyers += b.height() as u64;
            summary.orders += o.height() as u64;
            summary.returns += r.height() as u64;
            summary.disputes += d.height() as u64;
            w.orders.write(&o)?;
            w.returns.write(&r)?;
            w.disputes.write(&d)?;
            w.buyers.write(&b)?;
            w.truth.write(&t)?;
            progress(hi);
            lo = hi;
        }
        w.orders.finish()?;
        w.returns.finish()?;
        w.disputes.finish()?;
        w.buyers.finish()?;
        w.truth.finish()?;
        Ok(summary)
    }
}

/// The name of each hidden type, for reports.
pub fn hidden_type_names() -> [&'static str; 5] {
    [
        Kind::Honest.name(),
        Kind::HeavyHonest.name(),
        Kind::Wardrober.name(),
        Kind::Opportunist.name(),
        Kind::Fraudster.name(),
    ]
}

#[cfg(test)]
mod tests;
