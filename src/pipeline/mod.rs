//! The batch pipeline (polars): read and check the input tables ([`tables`]), compute
//! per-buyer features and labels as of a date ([`features`]), and score every buyer
//! into a ratings snapshot ([`rate`]).

pub mod drift;
pub mod export;
pub mod features;
pub mod rate;
pub mod tables;

/// Column names of the data contract (spec §2) and of the feature table.
pub mod cols {
    pub const ORDER_ID: &str = "order_id";
    pub const BUYER_ID: &str = "buyer_id";
    pub const MERCHANT_ID: &str = "merchant_id";
    pub const CATEGORY: &str = "category";
    pub const AMOUNT: &str = "amount";
    pub const ORDERED_AT: &str = "ordered_at";
    pub const DELIVERED_AT: &str = "delivered_at";
    pub const STATUS: &str = "status";
    pub const RETURN_ID: &str = "return_id";
    pub const REQUESTED_AT: &str = "requested_at";
    pub const REASON: &str = "reason";
    pub const INSTANT: &str = "instant";
    pub const ADVANCED: &str = "advanced";
    pub const SHIPPED_AT: &str = "shipped_at";
    pub const OUTCOME: &str = "outcome";
    pub const OUTCOME_AT: &str = "outcome_at";
    pub const DISPUTE_ID: &str = "dispute_id";
    pub const OPENED_AT: &str = "opened_at";
    pub const DECIDED_AT: &str = "decided_at";
    pub const DECISION: &str = "decision";
    pub const FRAUD_FLAG: &str = "fraud_flag";
    pub const REGISTERED_AT: &str = "registered_at";
    /// The training label: 1 = bad in (T, T+90 days].
    pub const LABEL: &str = "bad_90d";
}
