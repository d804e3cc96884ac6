//! The HTTP/1.1 server loop. axum's `serve` sets no timer, so a client that
//! opens a connection and never sends a request would hold it forever; this
//! loop gives every connection a header-read timeout, bounds the request head
//! (size and header count: 431 above), caps the connections served at once
//! (one more gets a fast 503 and is closed, never left hanging), and shuts
//! down gracefully (in-flight requests finish, idle connections close).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How long a client may take to send a request's headers (also bounds idle
/// keep-alive connections).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds on what clients may hold.
#[derive(Clone, Copy, Debug)]
pub struct ServeOptions {
    pub header_timeout: Duration,
    /// Largest request head in bytes (at least 8192).
    pub max_header_bytes: usize,
    pub max_headers: usize,
    /// Connections served at once.
    pub max_connections: usize,
}

impl ServeOptions {
    pub fn new(header_timeout: Duration) -> ServeOptions {
        let l = crate::config::Limits::default();
        ServeOptions {
            header_timeout,
            max_header_bytes: l.max_header_bytes,
            max_headers: l.max_headers,
            max_connections: l.max_connections,
        }
    }

    pub fn from_limits(header_timeout: Duration, l: &crate::config::Limits) -> ServeOptions {
        ServeOptions {
            header_timeout,
            max_header_bytes: l.max_header_bytes,
            max_headers: l.max_headers,
            max_connections: l.max_connections,
        }
    }
}

/// What a connection over the cap is told before it is closed.
fn busy_reply() -> Vec<u8> {
    let body = r#"{"error":{"code":"too_many_connections","message":"too many connections at once (api.limits.max_connections); try again","details":[]}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serve `app` on `listener` until `shutdown` resolves, then wait for the
/// connections in flight (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, app, ServeOptions::new(header_timeout), shutdown).await
}

/// HTTP/1.1 with the limits of `options`: the header read timeout, header
/// size and count, keep-alive.
fn http1_builder(options: &ServeOptions) -> hyper::server::conn::http1::Builder {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_timeout)
        .max_buf_size(options.max_header_bytes.max(8192) + 8192)
        .max_header_size(options.max_header_bytes)
        .max_headers(options.max_headers)
        .keep_alive(true);
    builder
}

/// [`serve`] with explicit limits.
pub async fn serve_with(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = http1_builder(&options);
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let mut stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, don't spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!("connection refused: api.limits.max_connections reached");
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            stream.write_all(&busy_reply()).await?;
                            stream.shutdown().await
                        })
                        .await;
                    });
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(e) = watched.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The remote listener's loop: [`serve_with`]'s limits, and every request
/// carries the peer's address ([`super::remote::ClientAddr`], for the rate
/// limit); with `tls`, the connection is TLS (the handshake bounded by the
/// header timeout too). A connection over the cap is closed at once (on TLS
/// no plain 503 can be written before the handshake).
pub async fn serve_remote(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = http1_builder(&options);
    let slots = Arc::new(Semaphore::new(options.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (mut stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "remote: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%peer, "remote: connection refused: api.limits.max_connections reached");
                    let plain = tls.is_none();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            if plain {
                                stream.write_all(&busy_reply()).await?;
                            }
                            stream.shutdown().await
                        })
                        .await;
                    });
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let app = app
                    .clone()
                    .layer(axum::Extension(super::remote::ClientAddr(peer)));
                let service = TowerToHyperService::new(app);
                let watcher = graceful.watcher();
                let builder = builder.clone();
                let tls = tls.clone();
                let handshake_timeout = options.header_timeout;
                tokio::spawn(async move {
                    let result = match tls {
                        Some(acceptor) => {
                            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "remote: TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "remote: TLS handshake timed out");
                                    return;
                                }
                            };
                            watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await
                        }
                        None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "remote: connection ended with an error");
                    }
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_silent_client_is_disconnected_and_shutdown_waits_for_requests_in_flight() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "done"
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, Duration::from_millis(200), async {
            let _ = stopped.await;
        }));

        // Sends nothing: closed after the header timeout, not held forever.
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "connection closed by the server");

        // A request in flight when shutdown starts still gets its answer.
        let mut busy = tokio::net::TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.send(()).unwrap();
        let mut reply = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), busy.read_to_end(&mut reply))
            .await
            .unwrap()
            .unwrap();
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("done"), "{reply}");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener closed"
        );
    }
}
