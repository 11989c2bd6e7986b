//! TLS to PostgreSQL, with rustls: what the URL's `sslmode` and `sslrootcert` ask for.
//!
//! | `sslmode` | transport | the server's certificate |
//! | --- | --- | --- |
//! | absent, `disable` | plain TCP | — |
//! | `prefer` | TLS when the server offers it | verified when TLS is used |
//! | `require`, `verify-ca`, `verify-full` | TLS, or no connection | verified: chain and host name |
//!
//! Unlike libpq, `require` and `verify-ca` verify the certificate fully too: a ledger
//! of money does not talk to a server it has not authenticated. The roots are the CA
//! in `sslrootcert=PATH` (PEM), or the system's. tokio-postgres parses neither
//! `verify-*` nor `sslrootcert`, so they are taken out of the URL before it does.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// What the URL asks of TLS, and the URL left for tokio-postgres to parse.
pub(crate) struct TlsSettings {
    /// The URL without `sslrootcert`, and with `verify-*` said as `require`.
    pub url: String,
    /// `None`: plain TCP.
    pub connector: Option<MakeRustlsConnect>,
}

/// Reads `sslmode` and `sslrootcert` from `url` and builds the connector they ask for.
pub(crate) fn settings(url: &str) -> Result<TlsSettings, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut root = None;
    let mut kept = Vec::new();
    for kv in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "sslmode" => {
                mode = Some(match v {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" | "verify-ca" | "verify-full" => SslMode::Require,
                    other => {
                        return Err(format!(
                            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
                        ));
                    }
                });
            }
            "sslrootcert" => {
                root = Some(
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                );
            }
            _ => kept.push(kv),
        }
    }
    let mode = mode.unwrap_or(SslMode::Disable);
    if mode != SslMode::Disable {
        kept.push(match mode {
            SslMode::Prefer => "sslmode=prefer",
            _ => "sslmode=require",
        });
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let connector = match mode {
        SslMode::Disable => None,
        _ => Some(connector(root.as_deref())?),
    };
    Ok(TlsSettings { url, connector })
}

/// A rustls connector trusting the CA in `root` (PEM), or the system's roots.
fn connector(root: Option<&str>) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    match root {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect())
                .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            if certs.is_empty() {
                return Err(format!("sslrootcert {path}: no certificate in it"));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| format!("sslrootcert {path}: {e}"))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "a system root certificate could not be read");
            }
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(
                    "TLS asked for, but the system has no root certificates: give the server's CA as sslrootcert=PATH"
                        .into(),
                );
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(
        rustls::crypto::ring::default_provider().into(),
    )
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_and_the_root_leave_the_url_for_tokio_postgres() {
        let s = settings("postgres://u@h/db?sslmode=disable&application_name=x").unwrap();
        assert_eq!(s.url, "postgres://u@h/db?application_name=x");
        assert!(s.connector.is_none());
        let s = settings("postgres://u@h/db").unwrap();
        assert_eq!(s.url, "postgres://u@h/db");
        assert!(s.connector.is_none());
        let e = settings("postgres://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent%20ca.pem")
            .err()
            .unwrap();
        assert!(e.contains("sslrootcert /nonexistent ca.pem"), "{e}");
        let e = settings("postgres://u@h/db?sslmode=allow").err().unwrap();
        assert!(e.contains("sslmode=allow"), "{e}");
    }
}
