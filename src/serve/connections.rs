//! The accept loop under the routes: hyper's HTTP/1 with a header-read timeout (a slow-drip
//! client, or an idle one that sends no next request, is closed after it), at most a set number
//! of connections open (past it the listener is not polled, so new clients wait in the kernel's
//! backlog and no descriptor or task is spent on them), a lingering close after a refused body
//! (see [`Lingering`]), and a graceful stop: on the signal the listener closes, idle connections
//! close, in-flight requests are answered, then it returns.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tower::ServiceExt;

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
        // a 413 leaves the request's body unread: that connection's close lingers
        let refused = Arc::new(AtomicBool::new(false));
        let flag = refused.clone();
        let service = ServiceExt::<hyper::Request<hyper::body::Incoming>>::map_response(
            router.clone(),
            move |response: Response| {
                if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    flag.store(true, Ordering::Relaxed);
                }
                response
            },
        );
        let io = TokioIo::new(Lingering::new(stream, refused));
        let connection = graceful.watch(http.serve_connection(io, TowerToHyperService::new(service)));
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

/// How long, and how much, a lingering close reads and drops before closing.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 << 20;

/// A connection's socket whose close lingers where a request's body was refused unread (as
/// nginx's `lingering_close`): the write half is shut (the client sees the answer and its end),
/// then what the client still sends is read and dropped until it closes, for at most
/// `LINGER_TIME` and `LINGER_BYTES`. Closing a socket with unread input makes the kernel
/// send a reset, which can reach the client before it has read the answer: a 413 sent before
/// the body was read would be lost to a client still writing it.
pub struct Lingering {
    stream: TcpStream,
    /// Set once this connection answered 413.
    refused: Arc<AtomicBool>,
    linger: Option<Linger>,
}

/// Where a lingering close is.
struct Linger {
    write_shut: bool,
    drained: usize,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl Lingering {
    pub fn new(stream: TcpStream, refused: Arc<AtomicBool>) -> Self {
        Lingering { stream, refused, linger: None }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.refused.load(Ordering::Relaxed) {
            return Pin::new(&mut this.stream).poll_shutdown(cx);
        }
        let linger = this.linger.get_or_insert_with(|| Linger {
            write_shut: false,
            drained: 0,
            deadline: Box::pin(tokio::time::sleep(LINGER_TIME)),
        });
        if !linger.write_shut {
            ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
            linger.write_shut = true;
        }
        let mut scratch = [0u8; 8192];
        while linger.drained < LINGER_BYTES {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                // the client closed (or reset): nothing left to lose
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => linger.drained += buf.filled().len(),
                Poll::Pending => {
                    ready!(linger.deadline.as_mut().poll(cx));
                    return Poll::Ready(Ok(()));
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Errors of one connection (the client gave up before it was accepted), not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}
