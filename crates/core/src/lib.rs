//! fastrefund's pure core: what batch and online share, with no file or network I/O.
//!
//! - [`domain`]: ids, money, stars, the enums of the data contract, return requests and
//!   decisions, all parsed at the edge;
//! - [`scoring`]: the scorecard model and how it scores a buyer's features into a score,
//!   a star and reasons (batch and the service score with the same code);
//! - [`policy`]: the eligibility rules, a pure function of a request, a star and the
//!   ledger's view of the buyer;
//! - [`ledger`]: the ledger's vocabulary shared by every store;
//! - [`cases`]: a person contests a decision and a reviewer decides it, as a pure
//!   state machine the stores step;
//! - [`cols`]: the column names of the data contract (spec §2) and of the feature table.
//!
//! Reading files is the callers' job: [`scoring::Model::from_json`] and
//! [`policy::Policy::from_toml`] take text.

pub mod cases;
pub mod domain;
pub mod ledger;
pub mod policy;
pub mod scoring;

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
