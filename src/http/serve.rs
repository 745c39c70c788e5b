//! Serving connections: warp's routes on hyper, with the limits warp's own server does not
//! set. Past [`MAX_CONNECTIONS`] a new connection gets a 503 and is closed (never queued); a
//! client that has not sent a request's headers within [`HEADER_READ_TIMEOUT`] is dropped (the
//! body has its own limit, `request::BODY_READ_TIMEOUT`). A stop closes the listener and waits for
//! open connections to finish their requests. With TLS, each connection's handshake is done on
//! its own task, within the same header timeout, before HTTP is spoken on it.

use super::error::ApiError;
use crate::metrics::{Metrics, Open};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use slog::{warn, Logger};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::either::Either;
use warp::Filter;

/// Connections open at once. Each costs a task and buffers; agents and a few browser tabs use
/// a handful. Past it, clients get 503 instead of an unbounded pile of connections.
pub const MAX_CONNECTIONS: usize = 512;
/// How long a client may take to send a request's headers (a slow-loris client is dropped).
/// hyper also counts the wait for the next request on a kept-alive connection, so an idle
/// connection is closed after this long too (clients open a new one; Node's default is 5 s).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `routes` on `listener` until `shutdown` completes, then stops accepting and returns
/// once every open connection is done.
pub async fn serve<F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    routes: F,
    shutdown: impl Future<Output = ()>,
    metrics: Arc<Metrics>,
    logger: Logger,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    warn!(logger, "accept failed"; "error" => %e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            warn!(logger, "connection refused"; "reason" => "too many connections", "limit" => MAX_CONNECTIONS);
            metrics.refused(503);
            tokio::spawn(refuse(stream, tls.clone()));
            continue;
        };
        // Replies go out as written: with Nagle's algorithm a reply's last small write (the end
        // of a chunked body) waits for the client's delayed ACK, tens of milliseconds.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(warp::service(routes.clone()));
        let (watcher, open) = (graceful.watcher(), Open::new(&metrics.open_connections));
        let tls = tls.clone();
        tokio::spawn(async move {
            // Held while the connection is open.
            let _held = (permit, open);
            let stream = match tls {
                None => Either::Left(stream),
                // A client that does not finish its handshake in time is dropped, as one that
                // does not send its headers.
                Some(tls) => match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(stream)) => Either::Right(stream),
                    _ => return,
                },
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let _ = watcher.watch(connection.into_owned()).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers a connection over the limit with 503 (over TLS when the relay serves HTTPS) and
/// closes it.
async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>) {
    match tls {
        None => refuse_on(stream).await,
        Some(tls) => {
            if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(1), tls.accept(stream)).await {
                refuse_on(stream).await;
            }
        }
    }
}

async fn refuse_on(mut stream: impl tokio::io::AsyncWrite + Unpin) {
    let error =
        ApiError::Unavailable(format!("too many connections (limit {MAX_CONNECTIONS}); retry shortly"));
    let (status, body) = (error.status(), error.body().to_string());
    let reply = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(reply.as_bytes())).await;
    let _ = stream.shutdown().await;
}
