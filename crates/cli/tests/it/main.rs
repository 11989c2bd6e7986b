#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `fastrefund` command end to end, in one binary (each test binary links polars):
//! the batch commands as a data team runs them, batch/online parity, the feedback loop
//! from the service's ledger back into training, reasons struck by reviewers carried
//! into the next `rate` (overrides), and simulate.

mod batch;
mod export;
mod feedback;
mod overrides;
mod overturn;
mod parity;
mod promises;
mod shards;
mod simulate;
