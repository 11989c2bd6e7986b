#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The service's integration tests, in one binary: the router on a real socket with the
//! sample snapshot, hostile clients, and the ledger's kill tests against the real
//! `fastrefund-serve` process. None of them links polars.

mod api;
mod cases;
mod hostile;
mod keep;
mod kill;
