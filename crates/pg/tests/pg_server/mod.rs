//! The PostgreSQL server the tests use: the one `FASTREFUND_TEST_PG` names
//! (`postgres://USER@HOST:PORT/DB`, a user that may create databases;
//! `scripts/pg-test-server.sh` starts a throwaway one, as `.ci/run` does). Without it
//! the PostgreSQL tests say they were skipped and pass.

use std::sync::atomic::{AtomicU32, Ordering};

pub struct Server {
    url: String,
}

/// The server, or `None` (and a line saying the tests were skipped) when none is set.
pub fn server() -> Option<Server> {
    match std::env::var("FASTREFUND_TEST_PG") {
        Ok(url) if !url.is_empty() => Some(Server { url }),
        _ => {
            eprintln!("skipped: FASTREFUND_TEST_PG is not set, so no PostgreSQL test ran");
            None
        }
    }
}

impl Server {
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
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        drop(client);
        let _ = task.await;
        let base = self.url.split('?').next().unwrap_or(&self.url);
        let cut = base.rfind('/').expect("a URL with a database");
        format!("{}/{name}", &base[..cut])
    }
}
