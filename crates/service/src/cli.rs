//! `serve` as a command: its options (shared by `fastrefund serve` and the service's own
//! binary, `fastrefund-serve`, which builds without polars), and running it.

use crate::config::{Overrides, Settings};
use std::path::PathBuf;

/// The options of `serve`. With none: the built-in sample snapshot and the default
/// policy on 127.0.0.1:8080.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Ratings snapshot folder (default: the sample built into the binary).
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// Policy file (TOML; default: the shipped policy).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Listen address.
    #[arg(long)]
    pub addr: Option<std::net::SocketAddr>,
    /// Serve `/metrics` on this admin address only, not on `--addr` (default: on
    /// `--addr` with the rest).
    #[arg(long)]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Ledger: a SQLite file (default: ./fastrefund-ledger.sqlite), or a PostgreSQL URL
    /// (`postgres://USER@HOST:PORT/DB`) shared by several replicas.
    #[arg(long)]
    pub ledger: Option<PathBuf>,
    /// Settings file (TOML): addr, snapshot, policy, ledger, api_token, admin_token, reviewer_token,
    /// webhook_urls, webhook_secret,
    /// metrics_addr, max_body_bytes, workers, durable_decisions, clock_skew_ms, and the
    /// connection
    /// limits.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Settings from the defaults, the file, the environment and then these options; tokens
/// not configured are made for the run and printed to standard error (as notebook
/// servers do: the operator needs them; a configured token is never shown). Then serves
/// until SIGINT/SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut s = Settings::layered(args.config.as_deref(), |k| std::env::var(k).ok())?;
    s.override_with(Overrides {
        snapshot: args.snapshot,
        policy: args.policy,
        addr: args.addr,
        ledger: args.ledger,
        metrics_addr: args.metrics_addr,
    });
    for (name, token) in s.with_made_tokens() {
        eprintln!("{name} not configured; made one for this run: {name}={token}");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(s.workers)
        .enable_all()
        .build()?;
    rt.block_on(crate::serve(s))?;
    Ok(())
}

/// Logs to standard error, filtered by `RUST_LOG` (default `info` when it is unset). A
/// `RUST_LOG` that does not parse is refused, naming it, as every other setting is: it
/// never quietly becomes `info`. With `stage_times`, each span logs its time as it
/// closes (`close time.busy=…`): where a batch run's time goes, without a profiler. The
/// service does not (it has /metrics).
pub fn init_logging(stage_times: bool) -> anyhow::Result<()> {
    use tracing_subscriber::fmt::format::FmtSpan;
    tracing_subscriber::fmt()
        .with_env_filter(log_filter(std::env::var("RUST_LOG"))?)
        .with_span_events(if stage_times {
            FmtSpan::CLOSE
        } else {
            FmtSpan::NONE
        })
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

/// The log filter of a `RUST_LOG` value: `info` when unset, else the value parsed, or
/// an error naming it.
fn log_filter(
    value: Result<String, std::env::VarError>,
) -> anyhow::Result<tracing_subscriber::EnvFilter> {
    use tracing_subscriber::EnvFilter;
    match value {
        Err(std::env::VarError::NotPresent) => Ok(EnvFilter::new("info")),
        Err(e) => anyhow::bail!("RUST_LOG: {e}"),
        Ok(v) => EnvFilter::try_new(&v).map_err(|e| anyhow::anyhow!("RUST_LOG={v:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn a_bad_rust_log_is_refused_naming_it_and_an_unset_one_is_info() {
        assert!(log_filter(Err(std::env::VarError::NotPresent)).is_ok());
        assert!(log_filter(Ok("fastrefund=debug,warn".into())).is_ok());
        let e = log_filter(Ok("fastrefund=loud".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("RUST_LOG=\"fastrefund=loud\""), "{e}");
    }
}
