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

/// Settings given on the command line, which win over the file and the environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub snapshot: Option<PathBuf>,
    pub policy: Option<PathBuf>,
    pub addr: Option<SocketAddr>,
    pub ledger: Option<PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
}

/// Everything `serve` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Listen address (default `127.0.0.1:8080`).
    pub addr: SocketAddr,
    /// `metrics_addr`: where `/metrics` is served, apart from the API (an admin
    /// address, e.g. `127.0.0.1:9090`, since it counts the business); `None` (the
    /// default) = on `addr` with the rest.
    pub metrics_addr: Option<SocketAddr>,
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
    /// Bearer token of reviewers (`FASTREFUND_REVIEWER_TOKEN`): `/review…` only;
    /// random when unset.
    pub reviewer_token: Option<String>,
    /// Where case events are sent (`webhook_urls`, or `FASTREFUND_WEBHOOK_URLS`
    /// comma-separated); none by default.
    pub webhook_urls: Vec<String>,
    /// The key that signs them (`webhook_secret` / `FASTREFUND_WEBHOOK_SECRET`, at least
    /// 16 characters; required with `webhook_urls`).
    pub webhook_secret: Option<String>,
    /// Largest request body accepted, in bytes (default 16 KiB).
    pub max_body_bytes: usize,
    /// Runtime threads serving HTTP (default: one per core).
    pub workers: usize,
    /// Wait for the fdatasync before answering every decision, not only those that
    /// move money (default false; see `ledger::LedgerOptions`).
    pub durable_decisions: bool,
    /// What a client may hold of the server: timeouts and caps (see [`Limits`]).
    pub limits: Limits,
    /// `clock_skew_ms` (default 300,000, 5 minutes; at most a day): how far a client's
    /// clock may run ahead of the server's. A `requested_at`, an outcome's `at` or a
    /// tracking call's `shipped_at` later than now plus this is refused.
    pub clock_skew: std::time::Duration,
}

/// The limits that keep slow, stuck or hostile clients from wearing the service down.
/// Each is a setting (file key and `FASTREFUND_` variable in capitals); every duration
/// is in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `header_read_timeout_ms` (default 10,000): a connection must send a request's
    /// whole head within this time of starting to wait for it. hyper starts that clock
    /// whenever the connection waits for a request, so it also closes a keep-alive
    /// connection left idle this long: it is the idle timeout too.
    pub header_read_timeout: std::time::Duration,
    /// `body_timeout_ms` (default 3,000): longest wait for the next part of a request
    /// body (a body that stalls is answered 408). Must be shorter than the handler
    /// timeout, whose clock also runs while the body is read: otherwise a stalled body
    /// would always meet the handler's 503 first and never get its 408.
    pub body_timeout: std::time::Duration,
    /// `handler_timeout_ms` (default 5,000): longest a request may take once its head is
    /// read, reading its body included; past it the client gets 503 and the slot is
    /// freed. Work that must finish (a ledger commit) runs in tasks of its own and is
    /// not cut short by it. Longer than `body_timeout_ms`, which is checked.
    pub handler_timeout: std::time::Duration,
    /// `max_connections` (default 4,096): open connections; past it a new connection
    /// is answered 503 with `Retry-After` and closed.
    pub max_connections: usize,
    /// `max_in_flight` (default 1,024): requests being handled at once; past it a
    /// request is answered 503 with `Retry-After` at once instead of queueing.
    pub max_in_flight: usize,
    /// `shutdown_grace_ms` (default 10,000): on SIGTERM, how long requests in flight
    /// get to finish before the connections are closed.
    pub shutdown_grace: std::time::Duration,
    /// `write_timeout_ms` (default 10,000): longest an answer may wait for the client
    /// to take any of it; past it the connection is closed. A client that pipelines
    /// requests and never reads its answers holds a connection this long, no longer.
    pub write_timeout: std::time::Duration,
    /// `max_requests_per_connection` (default 10,000): the answer to this many-th
    /// request of a connection says `Connection: close`, and the connection ends
    /// after it, so no client keeps one connection for ever.
    pub max_requests_per_connection: u32,
}

impl Default for Limits {
    fn default() -> Self {
        let ms = std::time::Duration::from_millis;
        Limits {
            header_read_timeout: ms(10_000),
            body_timeout: ms(3_000),
            handler_timeout: ms(5_000),
            max_connections: 4_096,
            max_in_flight: 1_024,
            shutdown_grace: ms(10_000),
            write_timeout: ms(10_000),
            max_requests_per_connection: 10_000,
        }
    }
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
            metrics_addr: None,
            snapshot: None,
            policy: None,
            ledger: PathBuf::from("fastrefund-ledger.sqlite"),
            api_token: None,
            admin_token: None,
            reviewer_token: None,
            webhook_urls: Vec::new(),
            webhook_secret: None,
            max_body_bytes: 16 * 1024,
            workers: default_workers(),
            durable_decisions: false,
            limits: Limits::default(),
            clock_skew: std::time::Duration::from_millis(
                crate::dto::CLOCK_SKEW.num_milliseconds().unsigned_abs(),
            ),
        }
    }
}

/// The config file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    addr: Option<String>,
    metrics_addr: Option<String>,
    snapshot: Option<PathBuf>,
    policy: Option<PathBuf>,
    ledger: Option<PathBuf>,
    api_token: Option<String>,
    admin_token: Option<String>,
    reviewer_token: Option<String>,
    webhook_urls: Option<Vec<String>>,
    webhook_secret: Option<String>,
    max_body_bytes: Option<usize>,
    workers: Option<usize>,
    durable_decisions: Option<bool>,
    header_read_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    handler_timeout_ms: Option<u64>,
    max_connections: Option<usize>,
    max_in_flight: Option<usize>,
    shutdown_grace_ms: Option<u64>,
    write_timeout_ms: Option<u64>,
    max_requests_per_connection: Option<u32>,
    clock_skew_ms: Option<u64>,
}

/// A boolean from the environment: `true`/`false` or `1`/`0`, nothing else (a typo such
/// as `ture` or an `on` is refused, not read as false).
fn parse_bool(key: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(ConfigError::Invalid {
            key,
            message: format!("{v:?} is not a boolean; write true or false"),
        }),
    }
}

/// A whole number from the environment.
fn parse_number<T: std::str::FromStr>(key: &'static str, v: &str) -> Result<T, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::Invalid {
        key,
        message: format!("{v:?} is not a whole number"),
    })
}

/// Checks that `v` is within `range`, naming `key`.
fn within<T: PartialOrd + std::fmt::Display + Copy>(
    key: &'static str,
    v: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, ConfigError> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ConfigError::Invalid {
            key,
            message: format!(
                "must be {} to {}{unit}, got {v}",
                range.start(),
                range.end()
            ),
        })
    }
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

impl Limits {
    /// Overrides the limits that are given (durations in milliseconds).
    fn apply(
        &mut self,
        header_read_ms: Option<u64>,
        body_ms: Option<u64>,
        handler_ms: Option<u64>,
        max_connections: Option<usize>,
        max_in_flight: Option<usize>,
        shutdown_grace_ms: Option<u64>,
    ) {
        let ms = std::time::Duration::from_millis;
        if let Some(v) = header_read_ms {
            self.header_read_timeout = ms(v);
        }
        if let Some(v) = body_ms {
            self.body_timeout = ms(v);
        }
        if let Some(v) = handler_ms {
            self.handler_timeout = ms(v);
        }
        if let Some(v) = max_connections {
            self.max_connections = v;
        }
        if let Some(v) = max_in_flight {
            self.max_in_flight = v;
        }
        if let Some(v) = shutdown_grace_ms {
            self.shutdown_grace = ms(v);
        }
    }

    /// Refuses a limit that would turn a protection off or stop all service.
    pub fn check(&self) -> Result<(), ConfigError> {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        within(
            "header_read_timeout_ms",
            ms(self.header_read_timeout),
            100..=600_000,
            " ms",
        )?;
        within(
            "body_timeout_ms",
            ms(self.body_timeout),
            100..=600_000,
            " ms",
        )?;
        within(
            "handler_timeout_ms",
            ms(self.handler_timeout),
            100..=600_000,
            " ms",
        )?;
        within(
            "shutdown_grace_ms",
            ms(self.shutdown_grace),
            0..=600_000,
            " ms",
        )?;
        if self.body_timeout >= self.handler_timeout {
            return Err(ConfigError::Invalid {
                key: "body_timeout_ms",
                message: format!(
                    "must be shorter than `handler_timeout_ms` ({} ms), got {} ms: the \
                     handler's clock runs while the body is read, so a stalled body would \
                     get 503 `handler_timeout` instead of 408 `body_timeout`",
                    ms(self.handler_timeout),
                    ms(self.body_timeout)
                ),
            });
        }
        within(
            "write_timeout_ms",
            ms(self.write_timeout),
            100..=600_000,
            " ms",
        )?;
        within(
            "max_requests_per_connection",
            self.max_requests_per_connection,
            1..=100_000_000,
            "",
        )?;
        within("max_connections", self.max_connections, 1..=1_000_000, "")?;
        within("max_in_flight", self.max_in_flight, 1..=1_000_000, "")?;
        Ok(())
    }
}

pub(crate) fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl Settings {
    /// Fills each missing token with a random one made for this run, and returns the
    /// names and values of the tokens it made (for the operator to see; a configured
    /// token is never among them, so never shown).
    pub fn with_made_tokens(&mut self) -> Vec<(&'static str, String)> {
        let mut made = Vec::new();
        for (name, slot) in [
            ("FASTREFUND_API_TOKEN", &mut self.api_token),
            ("FASTREFUND_ADMIN_TOKEN", &mut self.admin_token),
            ("FASTREFUND_REVIEWER_TOKEN", &mut self.reviewer_token),
        ] {
            if slot.is_none() {
                let t = random_token();
                *slot = Some(t.clone());
                made.push((name, t));
            }
        }
        made
    }

    /// The command line's word over the file's and the environment's: each option given
    /// replaces its setting; an option not given leaves it as it was.
    pub fn override_with(&mut self, o: Overrides) {
        if let Some(v) = o.snapshot {
            self.snapshot = Some(v);
        }
        if let Some(v) = o.policy {
            self.policy = Some(v);
        }
        if let Some(v) = o.addr {
            self.addr = v;
        }
        if let Some(v) = o.ledger {
            self.ledger = v;
        }
        if let Some(v) = o.metrics_addr {
            self.metrics_addr = Some(v);
        }
    }

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
            if let Some(a) = f.metrics_addr {
                s.metrics_addr = Some(parse_addr("metrics_addr", &a)?);
            }
            s.snapshot = f.snapshot.or(s.snapshot);
            s.policy = f.policy.or(s.policy);
            s.ledger = f.ledger.unwrap_or(s.ledger);
            s.api_token = f.api_token.map(|t| token("api_token", t)).transpose()?;
            s.admin_token = f.admin_token.map(|t| token("admin_token", t)).transpose()?;
            s.reviewer_token = f
                .reviewer_token
                .map(|t| token("reviewer_token", t))
                .transpose()?;
            if let Some(urls) = f.webhook_urls {
                s.webhook_urls = urls;
            }
            s.webhook_secret = f.webhook_secret.or(s.webhook_secret);
            s.max_body_bytes = f.max_body_bytes.unwrap_or(s.max_body_bytes);
            s.workers = f.workers.unwrap_or(s.workers);
            s.durable_decisions = f.durable_decisions.unwrap_or(s.durable_decisions);
            if let Some(v) = f.clock_skew_ms {
                s.clock_skew = std::time::Duration::from_millis(v);
            }
            s.limits.apply(
                f.header_read_timeout_ms,
                f.body_timeout_ms,
                f.handler_timeout_ms,
                f.max_connections,
                f.max_in_flight,
                f.shutdown_grace_ms,
            );
            if let Some(v) = f.write_timeout_ms {
                s.limits.write_timeout = std::time::Duration::from_millis(v);
            }
            if let Some(v) = f.max_requests_per_connection {
                s.limits.max_requests_per_connection = v;
            }
        }
        if let Some(a) = env("FASTREFUND_ADDR") {
            s.addr = parse_addr("FASTREFUND_ADDR", &a)?;
        }
        if let Some(a) = env("FASTREFUND_METRICS_ADDR") {
            s.metrics_addr = Some(parse_addr("FASTREFUND_METRICS_ADDR", &a)?);
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
        if let Some(v) = env("FASTREFUND_REVIEWER_TOKEN").filter(|v| !v.is_empty()) {
            s.reviewer_token = Some(token("FASTREFUND_REVIEWER_TOKEN", v)?);
        }
        if let Some(v) = env("FASTREFUND_WEBHOOK_URLS").filter(|v| !v.is_empty()) {
            s.webhook_urls = v.split(',').map(|u| u.trim().to_string()).collect();
        }
        if let Some(v) = env("FASTREFUND_WEBHOOK_SECRET").filter(|v| !v.is_empty()) {
            s.webhook_secret = Some(v);
        }
        for url in &s.webhook_urls {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url
                    .parse::<axum::http::Uri>()
                    .is_ok_and(|u| u.host().is_some());
            if !ok {
                return Err(ConfigError::Invalid {
                    key: "webhook_urls",
                    message: format!("{url:?} is not an http:// or https:// URL"),
                });
            }
        }
        match &s.webhook_secret {
            Some(k) if k.len() < 16 => {
                return Err(ConfigError::Invalid {
                    key: "webhook_secret",
                    message: "needs at least 16 characters".into(),
                });
            }
            None if !s.webhook_urls.is_empty() => {
                return Err(ConfigError::Invalid {
                    key: "webhook_secret",
                    message: "is needed to sign the events sent to webhook_urls".into(),
                });
            }
            _ => {}
        }
        if let Some(v) = env("FASTREFUND_WORKERS") {
            s.workers = v.parse().map_err(|_| ConfigError::Invalid {
                key: "FASTREFUND_WORKERS",
                message: format!("{v:?} is not a number of threads"),
            })?;
        }
        if let Some(v) = env("FASTREFUND_DURABLE_DECISIONS") {
            s.durable_decisions = parse_bool("FASTREFUND_DURABLE_DECISIONS", &v)?;
        }
        let num = |key: &'static str| env(key).map(|v| parse_number(key, &v)).transpose();
        s.limits.apply(
            num("FASTREFUND_HEADER_READ_TIMEOUT_MS")?,
            num("FASTREFUND_BODY_TIMEOUT_MS")?,
            num("FASTREFUND_HANDLER_TIMEOUT_MS")?,
            num("FASTREFUND_MAX_CONNECTIONS")?.map(|n: u64| n as usize),
            num("FASTREFUND_MAX_IN_FLIGHT")?.map(|n: u64| n as usize),
            num("FASTREFUND_SHUTDOWN_GRACE_MS")?,
        );
        if let Some(v) = num("FASTREFUND_WRITE_TIMEOUT_MS")? {
            s.limits.write_timeout = std::time::Duration::from_millis(v);
        }
        if let Some(v) = env("FASTREFUND_MAX_REQUESTS_PER_CONNECTION") {
            s.limits.max_requests_per_connection =
                parse_number("FASTREFUND_MAX_REQUESTS_PER_CONNECTION", &v)?;
        }
        if let Some(v) = num("FASTREFUND_CLOCK_SKEW_MS")? {
            s.clock_skew = std::time::Duration::from_millis(v);
        }
        s.limits.check()?;
        within(
            "clock_skew_ms",
            s.clock_skew.as_millis() as u64,
            0..=86_400_000,
            " ms",
        )?;
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

    #[test]
    fn only_missing_tokens_are_made_and_only_those_are_shown() {
        let mut s = Settings::layered(None, |k| {
            (k == "FASTREFUND_API_TOKEN").then(|| "configured-api-token".to_string())
        })
        .unwrap();
        let made = s.with_made_tokens();
        assert_eq!(made.len(), 2);
        assert_eq!(made[0].0, "FASTREFUND_ADMIN_TOKEN");
        assert_eq!(s.admin_token.as_deref(), Some(made[0].1.as_str()));
        assert_eq!(made[1].0, "FASTREFUND_REVIEWER_TOKEN");
        assert_eq!(s.reviewer_token.as_deref(), Some(made[1].1.as_str()));
        assert!(!made.iter().any(|(_, t)| t.contains("configured")));
        assert_eq!(s.api_token.as_deref(), Some("configured-api-token"));
    }

    #[test]
    fn a_boolean_that_is_not_a_boolean_is_refused_naming_its_key() {
        for bad in ["ture", "on", "yes", "", "TRUE1"] {
            let e = Settings::layered(None, |k| {
                (k == "FASTREFUND_DURABLE_DECISIONS").then(|| bad.to_string())
            })
            .unwrap_err()
            .to_string();
            assert!(e.contains("FASTREFUND_DURABLE_DECISIONS"), "{bad:?}: {e}");
        }
        for (good, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
            let s = Settings::layered(None, |k| {
                (k == "FASTREFUND_DURABLE_DECISIONS").then(|| good.to_string())
            })
            .unwrap();
            assert_eq!(s.durable_decisions, want);
        }
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "durable_decisions = \"on\"\n").unwrap();
        let e = Settings::layered(Some(&f), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("durable_decisions"), "{e}");
    }

    #[test]
    fn limits_come_from_the_file_and_the_environment_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "header_read_timeout_ms = 2000\nmax_connections = 10\nwrite_timeout_ms = 1500\n",
        )
        .unwrap();
        let s = Settings::layered(Some(&f), |k| match k {
            "FASTREFUND_MAX_IN_FLIGHT" => Some("7".to_string()),
            "FASTREFUND_MAX_REQUESTS_PER_CONNECTION" => Some("99".to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            s.limits.write_timeout,
            std::time::Duration::from_millis(1500)
        );
        assert_eq!(s.limits.max_requests_per_connection, 99);
        let e = Settings::layered(None, |k| {
            (k == "FASTREFUND_MAX_REQUESTS_PER_CONNECTION").then(|| "0".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("max_requests_per_connection"), "{e}");
        assert_eq!(
            s.limits.header_read_timeout,
            std::time::Duration::from_secs(2)
        );
        assert_eq!((s.limits.max_connections, s.limits.max_in_flight), (10, 7));
        assert_eq!(s.limits.handler_timeout, Limits::default().handler_timeout);
        let e = Settings::layered(None, |k| {
            (k == "FASTREFUND_HANDLER_TIMEOUT_MS").then(|| "0".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("handler_timeout_ms"), "{e}");
        let e = Settings::layered(None, |k| {
            (k == "FASTREFUND_MAX_CONNECTIONS").then(|| "many".to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("FASTREFUND_MAX_CONNECTIONS"), "{e}");
    }

    #[test]
    fn the_clock_skew_is_a_setting_with_a_bound() {
        let d = Settings::layered(None, |_| None).unwrap();
        assert_eq!(d.clock_skew, std::time::Duration::from_secs(300));
        let s = Settings::layered(None, |k| {
            (k == "FASTREFUND_CLOCK_SKEW_MS").then(|| "60000".to_string())
        })
        .unwrap();
        assert_eq!(s.clock_skew, std::time::Duration::from_secs(60));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "clock_skew_ms = 999999999\n").unwrap();
        let e = Settings::layered(Some(&f), |_| None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("clock_skew_ms"), "{e}");
    }

    #[test]
    fn the_body_timeout_must_be_shorter_than_the_handler_timeout() {
        // The defaults keep the order, so a stalled body gets its 408.
        let d = Settings::layered(None, |_| None).unwrap().limits;
        assert!(d.body_timeout < d.handler_timeout, "{d:?}");
        assert_eq!(d.check().map_err(|e| e.to_string()), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        for text in [
            "body_timeout_ms = 6000\n",
            "handler_timeout_ms = 2000\n",
            "body_timeout_ms = 4000\nhandler_timeout_ms = 4000\n",
        ] {
            std::fs::write(&f, text).unwrap();
            let e = Settings::layered(Some(&f), |_| None)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("body_timeout_ms") && e.contains("handler_timeout_ms"),
                "{text}: {e}"
            );
        }
        std::fs::write(&f, "body_timeout_ms = 6000\nhandler_timeout_ms = 7000\n").unwrap();
        let s = Settings::layered(Some(&f), |_| None).unwrap();
        assert_eq!(s.limits.body_timeout, std::time::Duration::from_secs(6));
    }
}
