//! fastrefund: buyer star ratings and fast-refund eligibility.
//!
//! The batch side reads purchase, return and dispute history, computes per-buyer
//! features as of a date, trains a credit-risk scorecard and scores every buyer into a
//! 1–5 star ratings snapshot. The service side loads that snapshot and a policy and
//! answers, in microseconds, whether a return gets instant address release, a courier
//! pickup and a platform-advanced refund, recording every advance in a durable ledger.
//!
//! `domain`, `scoring` and `policy` are pure and shared: batch and online score with
//! the same code. The batch modules (`pipeline`, `train`, `synth`) need the `batch`
//! feature (polars, linfa); the service builds without them.

pub mod config;
pub mod domain;
pub mod ledger;
pub mod policy;
pub mod registry;
pub mod scoring;
pub mod service;
pub mod snapshot;

#[cfg(feature = "batch")]
pub mod dataset_io;
#[cfg(feature = "batch")]
pub mod pipeline;
#[cfg(feature = "batch")]
pub mod progress;
#[cfg(feature = "batch")]
pub mod replay;
#[cfg(feature = "batch")]
pub mod report;
#[cfg(feature = "batch")]
pub mod simulate;
#[cfg(feature = "batch")]
pub mod synth;
#[cfg(feature = "batch")]
pub mod train;
