//! The HTTP server under the router: hyper's HTTP/1 connections, with the limits an
//! edge service needs so that no client, slow, stuck or hostile, can wear it down
//! (`axum::serve` runs hyper without a timer, which silently turns off its header
//! timeout, and has no cap on connections).
//!
//! - **Header read / idle**: a connection must send a request's whole head within
//!   [`Limits::header_read_timeout`] of starting to wait for one, or it is closed (hyper
//!   answers 408 when part of a head had come). The clock also runs while a keep-alive
//!   connection waits for its next request, so it is the idle timeout as well.
//! - **Answers not read**: an answer the client takes none of for
//!   [`Limits::write_timeout`] closes the connection ([`WriteTimeout`]); a connection
//!   ends after [`Limits::max_requests_per_connection`] answers (the last says
//!   `Connection: close`); and hyper buffers at most [`MAX_BUF_BYTES`] of a
//!   connection's input and as much of its output, so pipelined requests past that wait
//!   in the kernel's buffers, unread, until the answers before them are taken. A
//!   client that pipelines requests and never reads holds a connection, and a bounded
//!   amount of memory, for the write timeout, not for ever.
//! - **Connections**: at most [`Limits::max_connections`] open; one more is answered
//!   503 with `Retry-After` and closed, instead of piling up until file descriptors run
//!   out. Those refusals are themselves bounded.
//! - **Requests in flight, body and handler timeouts**: in the router's middleware
//!   ([`super::router`]): 503 + `Retry-After` past [`Limits::max_in_flight`], 408 for a
//!   body that stalls, 503 for a handler past [`Limits::handler_timeout`].
//! - **Graceful shutdown**: on the shutdown signal the listener closes, requests in
//!   flight get [`Limits::shutdown_grace`] to finish, then every connection is closed.

use crate::config::Limits;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Most connections being refused (answered 503 and drained) at once; past it a new
/// connection over the cap is closed at once.
const MAX_REFUSING: usize = 256;

/// Most bytes hyper buffers per connection, each way (its default is ~400 KB): enough
/// for any request head, and for the answers of the requests read ahead.
pub const MAX_BUF_BYTES: usize = 64 * 1024;

/// What a connection over the cap is told.
const OVER_CAPACITY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 100\r\n\r\n\
{\"error\":{\"code\":\"overloaded\",\"message\":\"too many open connections; retry after the given seconds\"}}";

/// Serves `app` on `listener` until `shutdown` completes, then drains as [`Limits`] say.
pub async fn run(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_BUF_BYTES)
        .keep_alive(true);
    // Every connection's task, so that the ones still open when the grace is over can
    // be closed (a dropped task drops its connection).
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors or a connection reset before it was
                    // accepted: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            over_capacity(stream, &refusing);
            continue;
        };
        let service = PerConnection {
            inner: TowerToHyperService::new(app.clone()),
            served: AtomicU32::new(0),
            max: limits.max_requests_per_connection,
        };
        let io = TokioIo::new(WriteTimeout::new(stream, limits.write_timeout));
        let conn = graceful.watch(http.serve_connection(io, service));
        tasks.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        grace_ms = limits.shutdown_grace.as_millis() as u64,
        "no longer accepting; letting requests in flight finish"
    );
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tasks.len(),
            "shutdown grace over; closing the remaining connections"
        );
    }
    tasks.shutdown().await;
}

/// The router as one connection's service: counts its requests, and marks the answer
/// to the last one it may serve `Connection: close` (hyper then closes the connection
/// once it is written).
struct PerConnection {
    inner: TowerToHyperService<Router>,
    served: AtomicU32,
    max: u32,
}

type Request = hyper::Request<hyper::body::Incoming>;

impl hyper::service::Service<Request> for PerConnection {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: Request) -> Self::Future {
        let n = self
            .served
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let answer = self.inner.call(req);
        let last = n >= self.max;
        Box::pin(async move {
            let mut r = answer.await?;
            if last {
                r.headers_mut().insert(
                    axum::http::header::CONNECTION,
                    axum::http::HeaderValue::from_static("close"),
                );
            }
            Ok(r)
        })
    }
}

/// A connection's socket whose writes give up after `timeout` without progress: an
/// answer the client does not take (it stopped reading, its window is shut) fails with
/// `TimedOut`, and hyper closes the connection. The clock starts when a write or flush
/// first finds the socket full and stops at the next one that goes through; reads are
/// untouched (the header and body timeouts cover them).
pub struct WriteTimeout {
    io: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl WriteTimeout {
    pub fn new(io: TcpStream, timeout: Duration) -> WriteTimeout {
        WriteTimeout {
            io,
            timeout,
            stalled: None,
        }
    }

    /// Passes on a write's outcome; while it is pending, runs the clock.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if r.is_ready() {
            self.stalled = None;
            return r;
        }
        let timeout = self.timeout;
        let clock = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match clock.as_mut().poll(cx) {
            Poll::Ready(()) => {
                metrics::counter!("fastrefund_http_write_timeouts_total").increment(1);
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the client took none of its answer within the write timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl tokio::io::AsyncRead for WriteTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for WriteTimeout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_shutdown(cx);
        self.watch(cx, r)
    }
}

/// Answers a connection over the cap with 503 and `Retry-After`, reads what it sent for
/// a moment (so that closing does not reset the answer away), and closes it.
fn over_capacity(mut stream: TcpStream, refusing: &Arc<Semaphore>) {
    metrics::counter!("fastrefund_http_connections_refused_total").increment(1);
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return; // dropped: closed at once
    };
    tokio::spawn(async move {
        let answer = async {
            stream.write_all(OVER_CAPACITY).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            std::io::Result::Ok(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_over_capacity_answer_declares_its_length() {
        let text = std::str::from_utf8(super::OVER_CAPACITY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            v["error"]["code"],
            crate::error::ErrorCode::Overloaded.as_str()
        );
    }
}
