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

use fastrefund_core::scoring::MAX_REASONS;

pub const BUYER_ID: &str = fastrefund_core::cols::BUYER_ID;
pub const STAR: &str = "star";
pub const SCORE: &str = "score";
pub const AS_OF: &str = "as_of";
pub const MODEL_VERSION: &str = "model_version";
pub const CHALLENGER_STAR: &str = "challenger_star";

/// The column of the `k`-th reason, `k` in `1..=MAX_REASONS`: `reason_1` … `reason_4`.
pub fn reason_column(k: usize) -> String {
    debug_assert!((1..=MAX_REASONS).contains(&k));
    format!("reason_{k}")
}
