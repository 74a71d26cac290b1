//! The accept loop under the routes: hyper's HTTP/1 with a header-read timeout (a slow-drip
//! client, or an idle one that sends no next request, is closed after it), at most a set number
//! of connections open (past it the listener is not polled, so new clients wait in the kernel's
//! backlog and no descriptor or task is spent on them), and a graceful stop: on the signal the
//! listener closes, idle connections close, in-flight requests are answered, then it returns.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::metrics::Metrics;

/// How many connections, and how slow they may be.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers, from the connection's start or the end of
    /// its previous request.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max: usize,
}

/// Descriptors kept for everything but connections (model files, logs, the runtime).
const RESERVED_DESCRIPTORS: u64 = 256;

impl ConnectionLimits {
    /// `max`, or what the open-file limit allows once raised to its hard limit.
    pub fn new(header_timeout: Duration, max: Option<usize>) -> ConnectionLimits {
        let max = max.unwrap_or_else(|| {
            let open_files = raise_open_file_limit();
            open_files.saturating_sub(RESERVED_DESCRIPTORS).clamp(16, 1 << 20) as usize
        });
        ConnectionLimits { header_timeout, max }
    }
}

/// Raises the soft limit on open files to the hard one (as Go's runtime and nginx do) and
/// returns the limit in force.
fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the one struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Serves `router` on `listener` until `stop` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    metrics: &Metrics,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(stop);
    let mut warned_full = false;
    loop {
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot.expect("the connection semaphore is never closed"),
        };
        if slots.available_permits() == 0 && !warned_full {
            tracing::warn!(max = limits.max, "connection limit reached: new clients wait in the backlog");
            warned_full = true;
        }
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // out of descriptors or memory: wait for some to free rather than spin
                    tracing::warn!(error = %e, "accepting a connection failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone())));
        let (open, header_timeouts) = (metrics.connections.clone(), metrics.header_timeouts.clone());
        open.inc();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                if e.is_timeout() {
                    header_timeouts.inc();
                }
                tracing::debug!(%peer, error = %e, "connection ended");
            }
            open.dec();
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors of one connection (the client gave up before it was accepted), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}
