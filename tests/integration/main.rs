#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Integration tests, in one binary (each test binary re-links polars): the service
//! started for real on 127.0.0.1:0, the batch commands end to end, batch/online parity,
//! and the ledger's kill tests against the real `fastrefund` process.

mod api;
mod batch;
mod faults;
mod feedback;
mod hostile;
mod kill;
mod parity;
mod simulate;
mod support;
