//! The PostgreSQL server the tests use: the one `FASTREFUND_TEST_PG` names
//! (`postgres://USER@HOST:PORT/DB`, a user that may create databases;
//! `scripts/pg-test-server.sh` starts a throwaway one, as `.ci/run` does). Without it
//! the PostgreSQL tests say they were skipped and pass.

use std::sync::atomic::{AtomicU32, Ordering};

/// Says on standard error that (part of) a test was skipped, and why. Straight to the
/// file descriptor: the test harness captures `eprintln!` of a passing test, and a
/// skip must be seen.
pub fn say_skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {why}");
}

pub struct Server {
    url: String,
}

/// The server, or `None` (and a line saying the tests were skipped) when none is set.
pub fn server() -> Option<Server> {
    match std::env::var("FASTREFUND_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(Server { url }),
        _ => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                say_skipped(
                    "FASTREFUND_TEST_PG is not set, so this PostgreSQL test did not run \
                     (scripts/pg-test-server.sh starts a server)",
                )
            });
            None
        }
    }
}

impl Server {
    /// Restarts the server as a crash would (`pg_ctl restart -m immediate`): only when
    /// it is the throwaway one `scripts/pg-test-server.sh` started
    /// (`FASTREFUND_TEST_PG_DIR`). Returns whether it did.
    pub fn crash_restart(&self) -> bool {
        self.control("restart")
    }

    /// Runs `pg-test-server.sh VERB DIR` on the throwaway server, if there is one
    /// (`FASTREFUND_TEST_PG_DIR`); `false` when there is none to act on.
    pub fn control(&self, verb: &str) -> bool {
        let Ok(dir) = std::env::var("FASTREFUND_TEST_PG_DIR") else {
            return false;
        };
        let script = crate::repo_root().join("scripts/pg-test-server.sh");
        let ok = std::process::Command::new(script)
            .args([verb, &dir])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pg-test-server.sh {verb} failed");
        true
    }

    /// A new, empty database on the server, and its URL.
    pub async fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros()
                % 1_000_000_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("FASTREFUND_TEST_PG does not answer");
        let task = tokio::spawn(conn);
        client
            // FILE_COPY: PostgreSQL 15's default (WAL_LOG) writes the whole template into
            // the WAL, ~5 MB a database, which a crash-restart test then replays.
            .batch_execute(&format!("CREATE DATABASE {name} STRATEGY = FILE_COPY"))
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
        let base = self.url.split('?').next().unwrap_or(&self.url);
        let cut = base.rfind('/').expect("a URL with a database");
        format!("{}/{name}", &base[..cut])
    }
}
