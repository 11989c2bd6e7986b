//! The service's settings: defaults, then an optional TOML file, then the environment
//! (`FASTREFUND_*`), then command-line flags — each layer overriding the one before.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {message}")]
    Read { path: String, message: String },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("`{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Everything `serve` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Listen address (default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// Ratings snapshot folder; `None` = the sample snapshot built into the binary.
    pub snapshot: Option<PathBuf>,
    /// Policy file; `None` = the shipped default policy.
    pub policy: Option<PathBuf>,
    /// Ledger database (default `fastrefund-ledger.sqlite` in the working directory).
    pub ledger: PathBuf,
    /// Bearer token of refund services (`FASTREFUND_API_TOKEN`); random when unset.
    pub api_token: Option<String>,
    /// Bearer token of admin calls (`FASTREFUND_ADMIN_TOKEN`); random when unset.
    pub admin_token: Option<String>,
    /// Largest request body accepted, in bytes (default 16 KiB).
    pub max_body_bytes: usize,
    /// Runtime threads serving HTTP (default: one per core).
    pub workers: usize,
    /// Wait for the fdatasync before answering every decision, not only those that
    /// move money (default false; see `ledger::LedgerOptions`).
    pub durable_decisions: bool,
}

fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            snapshot: None,
            policy: None,
            ledger: PathBuf::from("fastrefund-ledger.sqlite"),
            api_token: None,
            admin_token: None,
            max_body_bytes: 16 * 1024,
            workers: default_workers(),
            durable_decisions: false,
        }
    }
}

/// The config file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    addr: Option<String>,
    snapshot: Option<PathBuf>,
    policy: Option<PathBuf>,
    ledger: Option<PathBuf>,
    api_token: Option<String>,
    admin_token: Option<String>,
    max_body_bytes: Option<usize>,
    workers: Option<usize>,
    durable_decisions: Option<bool>,
}

fn parse_addr(key: &'static str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse().map_err(|_| ConfigError::Invalid {
        key,
        message: format!("{v:?} is not HOST:PORT, e.g. 127.0.0.1:8080"),
    })
}

fn token(key: &'static str, v: String) -> Result<String, ConfigError> {
    if v.len() < 8 || v.chars().any(char::is_whitespace) {
        return Err(ConfigError::Invalid {
            key,
            message: "a token needs at least 8 characters and no spaces".into(),
        });
    }
    Ok(v)
}

impl Settings {
    /// Defaults, then `file` (if given), then the environment `env` (a lookup, so tests
    /// need not touch the process environment).
    pub fn layered(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            let f: File = toml::from_str(&text).map_err(|e| ConfigError::Parse {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            if let Some(a) = f.addr {
                s.addr = parse_addr("addr", &a)?;
            }
            s.snapshot = f.snapshot.or(s.snapshot);
            s.policy = f.policy.or(s.policy);
            s.ledger = f.ledger.unwrap_or(s.ledger);
            s.api_token = f.api_token.map(|t| token("api_token", t)).transpose()?;
            s.admin_token = f.admin_token.map(|t| token("admin_token", t)).transpose()?;
            s.max_body_bytes = f.max_body_bytes.unwrap_or(s.max_body_bytes);
            s.workers = f.workers.unwrap_or(s.workers);
            s.durable_decisions = f.durable_decisions.unwrap_or(s.durable_decisions);
        }
        if let Some(a) = env("FASTREFUND_ADDR") {
            s.addr = parse_addr("FASTREFUND_ADDR", &a)?;
        }
        if let Some(v) = env("FASTREFUND_SNAPSHOT") {
            s.snapshot = Some(v.into());
        }
        if let Some(v) = env("FASTREFUND_POLICY") {
            s.policy = Some(v.into());
        }
        if let Some(v) = env("FASTREFUND_LEDGER") {
            s.ledger = v.into();
        }
        if let Some(v) = env("FASTREFUND_API_TOKEN").filter(|v| !v.is_empty()) {
            s.api_token = Some(token("FASTREFUND_API_TOKEN", v)?);
        }
        if let Some(v) = env("FASTREFUND_ADMIN_TOKEN").filter(|v| !v.is_empty()) {
            s.admin_token = Some(token("FASTREFUND_ADMIN_TOKEN", v)?);
        }
        if let Some(v) = env("FASTREFUND_WORKERS") {
            s.workers = v.parse().map_err(|_| ConfigError::Invalid {
                key: "FASTREFUND_WORKERS",
                message: format!("{v:?} is not a number of threads"),
            })?;
        }
        if let Some(v) = env("FASTREFUND_DURABLE_DECISIONS") {
            s.durable_decisions = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if !(1..=256).contains(&s.workers) {
            return Err(ConfigError::Invalid {
                key: "workers",
                message: format!("must be 1 to 256, got {}", s.workers),
            });
        }
        if !(1024..=1 << 24).contains(&s.max_body_bytes) {
            return Err(ConfigError::Invalid {
                key: "max_body_bytes",
                message: format!("must be 1 KiB to 16 MiB, got {}", s.max_body_bytes),
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "addr = \"0.0.0.0:9000\"\nledger = \"/tmp/l.sqlite\"\napi_token = \"file-token-1\"\n",
        )
        .unwrap();
        let s = Settings::layered(Some(&f), |k| {
            (k == "FASTREFUND_API_TOKEN").then(|| "env-token-12".to_string())
        })
        .unwrap();
        assert_eq!(s.addr.to_string(), "0.0.0.0:9000");
        assert_eq!(s.ledger, PathBuf::from("/tmp/l.sqlite"));
        assert_eq!(s.api_token.as_deref(), Some("env-token-12"));
        assert_eq!(s.max_body_bytes, 16 * 1024);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "adress = \"x\"\n").unwrap();
        let e = Settings::layered(Some(&f), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("adress"), "{e}");
        let e = Settings::layered(None, |k| (k == "FASTREFUND_ADDR").then(|| "nowhere".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("FASTREFUND_ADDR"), "{e}");
        let e = Settings::layered(None, |k| {
            (k == "FASTREFUND_API_TOKEN").then(|| "short".into())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("at least 8"), "{e}");
    }
}
