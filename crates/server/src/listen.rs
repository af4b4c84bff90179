//! Serving HTTP/1.1 with limits against clients that hold connections open: a request's
//! headers must arrive within [`Limits::header_read`] (this also closes a kept-alive
//! connection that sends nothing more), and a body that stops sending for
//! [`Limits::body_idle`] is cut. A slow client therefore costs the server a socket for a few
//! seconds, never forever, and cannot starve devices that are syncing.
//!
//! `axum::serve` has no such limits, so connections are accepted here and served by
//! hyper-util's connection builder; shutdown is graceful (requests in flight finish).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

/// How long a client may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// From the connection's start (or its previous answer) to the end of the request's
    /// headers.
    pub header_read: Duration,
    /// The longest pause in a request body.
    pub body_idle: Duration,
}

impl Default for Limits {
    /// 15 s for headers, 60 s of silence in a body (a tablet on a poor connection sends a
    /// 1 MiB piece in well under a minute, or its upload resumes later).
    fn default() -> Self {
        Limits {
            header_read: Duration::from_secs(15),
            body_idle: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish.
///
/// # Errors
/// Never for a client's fault (a failed accept is logged and retried); only if the listener
/// itself is gone.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = app.layer(RequestBodyTimeoutLayer::new(limits.body_idle));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a moment rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = app
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that times out or hangs up ends its connection; nothing to report.
            let _ = connection.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
