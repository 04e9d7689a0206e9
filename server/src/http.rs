//! The accept loop: HTTP/1.1 connections with the limits a server on an open network needs and
//! `axum::serve` does not offer. Every connection has a deadline for its request headers, a
//! write timeout (a client that stops reading, say in the middle of an export, is
//! disconnected instead of holding the response's memory), and counts against a server-wide
//! and a per-address cap, so slow or idle clients cannot exhaust sockets or memory. With
//! `--tls-cert` each connection is a TLS session first ([`crate::tls`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_io_timeout::TimeoutStream;
use tower::ServiceExt;

use crate::settings::Settings;
use crate::tls::Tls;

/// The address a request came from: the peer's, or the client's behind a trusted proxy
/// (see [`Settings::client_address`]).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// How long a graceful shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// Open connections, by client address.
#[derive(Debug, Default)]
struct Connections {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; leaving gives its place back.
struct Admitted {
    table: Arc<Mutex<Connections>>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap_or_else(|p| p.into_inner());
        t.total = t.total.saturating_sub(1);
        metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).decrement(1.0);
        if let Some(n) = t.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                t.by_address.remove(&self.ip);
            }
        }
    }
}

fn admit(table: &Arc<Mutex<Connections>>, ip: IpAddr, settings: &Settings) -> Option<Admitted> {
    let mut t = table.lock().unwrap_or_else(|p| p.into_inner());
    let mine = t.by_address.get(&ip).copied().unwrap_or(0);
    // A trusted proxy carries many clients' connections: only the server-wide cap holds it.
    let crowded = mine >= settings.max_connections_per_address && !settings.is_trusted_proxy(ip);
    if t.total >= settings.max_connections || crowded {
        metrics::counter!(crate::metrics::CONNECTIONS_REFUSED).increment(1);
        return None;
    }
    metrics::gauge!(crate::metrics::CONNECTIONS_OPEN).increment(1.0);
    t.total += 1;
    *t.by_address.entry(ip).or_insert(0) += 1;
    Some(Admitted {
        table: table.clone(),
        ip,
    })
}

/// Serve `app` on `listener` until `shutdown` resolves (over TLS when `tls` is given); then
/// stop accepting and give requests in flight up to [`DRAIN`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: Arc<Settings>,
    tls: Option<Arc<Tls>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let table = Arc::new(Mutex::new(Connections::default()));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors or similar: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Some(place) = admit(&table, addr.ip(), &settings) else {
            tracing::debug!(%addr, "connection refused: at the connection limit");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut io = TimeoutStream::new(stream);
        io.set_write_timeout(Some(settings.send_timeout));
        let io = Box::pin(io);
        let client_settings = settings.clone();
        let service = app.clone().map_request(move |mut req: Request<Incoming>| {
            let client = client_settings.client_address(addr.ip(), req.headers());
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
            req.extensions_mut().insert(ClientAddr(client));
            req
        });
        let service = TowerToHyperService::new(service);
        let (builder, watcher) = (builder.clone(), graceful.watcher());
        // The handshake runs in the connection's task, so a slow client cannot hold the
        // accept loop; it has the header timeout to finish.
        let handshake = tls.as_ref().map(|t| t.acceptor());
        let handshake_timeout = settings.header_timeout;
        tokio::spawn(async move {
            let result = match handshake {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                        Ok(Ok(tls_io)) => {
                            let conn = builder.serve_connection(TokioIo::new(tls_io), service);
                            watcher.watch(conn).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%addr, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%addr, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%addr, error = %e, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain period; stopping anyway");
    }
    Ok(())
}
