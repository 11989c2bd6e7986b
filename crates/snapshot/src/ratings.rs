//! `ratings.parquet`, the table of a snapshot: its columns, named once here. The batch
//! side writes it (with polars, `fastrefund_batch::rate::ratings_frame`) and
//! [`crate::Ratings::load`] reads it (with the `parquet` crate); both take the names
//! and the order from this module, so the writer and the reader cannot drift apart.
//!
//! | column | values | Parquet physical type |
//! |---|---|---|
//! | `buyer_id` | u64 | INT64 |
//! | `star` | u8, 1–5 | INT32 |
//! | `score` | i32 | INT32 |
//! | `reason_1` … `reason_4` | the reason codes, worst first (null: fewer reasons) | BYTE_ARRAY |
//! | `as_of` | the rating's date | INT32 (date) |
//! | `model_version` | the scoring model's version | BYTE_ARRAY |
//! | `challenger_star` | u8, 1–5, only when rated with a challenger | INT32 |
//! | `points_<feature>` … | one per model feature, in model order: the points the buyer's value earned before any strike (null: the value was missing, which earns the feature's missing points) | INT32 |
//!
//! The points columns let the service score a buyer again with a reason struck by a
//! rating case the buyer won (`fastrefund_core::cases::Strike`), the same way the next
//! `rate` does; `star`, `score` and the reasons are the rating after the strikes `rate`
//! was given. A snapshot without them (written before they existed) still loads; its
//! buyers cannot have a reason struck until it is rated again.

use fastrefund_core::scoring::MAX_REASONS;

pub const BUYER_ID: &str = fastrefund_core::cols::BUYER_ID;
pub const STAR: &str = "star";
pub const SCORE: &str = "score";
pub const AS_OF: &str = "as_of";
pub const MODEL_VERSION: &str = "model_version";
pub const CHALLENGER_STAR: &str = "challenger_star";

/// The prefix of the points columns: `points_<feature name>`.
pub const POINTS_PREFIX: &str = "points_";

/// The column of feature `name`'s points.
pub fn points_column(name: &str) -> String {
    format!("{POINTS_PREFIX}{name}")
}

/// The column of the `k`-th reason, `k` in `1..=MAX_REASONS`: `reason_1` … `reason_4`.
pub fn reason_column(k: usize) -> String {
    debug_assert!((1..=MAX_REASONS).contains(&k));
    format!("reason_{k}")
}
