//! The ledger a name points at, opened: a `postgres://` or `postgresql://` URL is the
//! PostgreSQL store shared by replicas (`fastrefund-pg`); anything else is the path of
//! the embedded SQLite ledger (`fastrefund-ledger`). The one place that choice is made,
//! for the service (which serves the store) and the command line (which exports from
//! it); both then speak to it through `fastrefund-store`'s trait.

pub mod csv;

use fastrefund_core::cases::Case;
use fastrefund_store::{ExportRow, LedgerError, LedgerStore};
use std::path::Path;
use std::sync::Arc;

pub use fastrefund_ledger::LedgerOptions;
pub use fastrefund_pg::PgOptions;

/// Whether `name` names a PostgreSQL ledger (a URL) rather than a SQLite file.
pub fn is_url(name: &str) -> bool {
    fastrefund_pg::is_url(name)
}

/// How to open either store.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    pub sqlite: LedgerOptions,
    pub postgres: PgOptions,
}

/// Opens the ledger `name` names, to record in.
pub async fn open(name: &Path, options: OpenOptions) -> Result<Arc<dyn LedgerStore>, LedgerError> {
    let text = name.to_string_lossy();
    if is_url(&text) {
        let pg = fastrefund_pg::PgLedger::connect(&text, options.postgres).await?;
        return Ok(Arc::new(pg));
    }
    Ok(Arc::new(fastrefund_ledger::Ledger::open_with(
        name,
        options.sqlite,
    )?))
}

/// Every decided return of the ledger `name` names, in the `returns` table's shape,
/// read without taking the ledger from a service that has it open.
pub async fn export_returns(name: &Path) -> Result<Vec<ExportRow>, LedgerError> {
    let text = name.to_string_lossy();
    if is_url(&text) {
        let pg = fastrefund_pg::PgLedger::connect(&text, PgOptions::default()).await?;
        return pg.export_returns().await;
    }
    fastrefund_ledger::export_returns(name)
}

/// Every decided case of the ledger `name` names, oldest first.
pub async fn export_cases(name: &Path) -> Result<Vec<Case>, LedgerError> {
    let text = name.to_string_lossy();
    if is_url(&text) {
        let pg = fastrefund_pg::PgLedger::connect(&text, PgOptions::default()).await?;
        return pg.export_cases().await;
    }
    fastrefund_ledger::export_cases(name)
}
