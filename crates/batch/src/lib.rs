//! The batch side (polars), everything that reads a history or a table:
//!
//! - [`tables`]: read and check the contract's tables, naming the file, column and row;
//! - [`features`]: per-buyer features and labels as of a date (lazy expressions), and
//!   [`feature_table`], the `features` command's table of them;
//! - [`training`]: train and evaluate a scorecard on a history (out of time) or on any
//!   table, through [`frame`] (polars frames to the trainer's plain data); the
//!   evaluation comes back as data, and the caller renders the report;
//! - [`rate`]: score every buyer ([`scores`]) and publish a ratings snapshot, refusing
//!   one that drifted too far (`fastrefund_snapshot::drift`);
//! - [`shards`]: a history too big to hold, split by buyer into shards on disk, which
//!   `rate`, `features` and training work through one at a time;
//! - [`sql`]: the whole rating as one SQL query for Spark or DuckDB (`export-sql`);
//! - [`cases`]: the decided-cases file (the `disputes` shape and what the overturn
//!   rates need), written by `export-cases` and `simulate`, read by `--cases`;
//! - [`overrides`]: the reasons reviewers struck from buyers' stars (rating cases the
//!   buyer won), written by `export-cases --overrides`, applied by `rate --overrides`;
//! - [`export`]: the ledger's returns as Parquet; [`history_returns`]: a history's
//!   returns as the replay client (`fastrefund-replay`, no polars) and `simulate` take
//!   them; [`judge`]: a generated history's hidden truth beside a snapshot's stars;
//!   [`dataset_io`], [`progress`]: small helpers.

pub mod cases;
pub mod dataset_io;
pub mod error;
pub mod export;
pub mod fairness;
pub mod feature_table;
pub mod features;
pub mod frame;
pub mod history_returns;
pub mod judge;
pub mod overrides;
pub mod progress;
pub mod promises;
pub mod rate;
pub mod sample;
pub mod scores;
pub mod shards;
pub mod sql;
pub mod tables;
pub mod training;
pub mod words_zh;
