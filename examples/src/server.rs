//! The HTTP server running as a task of the caller's runtime: the service's and each mock
//! provider's.
//!
//! Connections are served by hyper's HTTP/1 connection directly (not `axum::serve`, which has no
//! header-read timeout): each gets a header-read timeout (which also closes idle keep-alive
//! connections), the peer address as [`ConnectInfo`] for the handlers and the per-client limits,
//! and a place among at most `max_connections`, of which one client may hold at most
//! `max_connections_per_client`. HTTP/1.1 only: browsers speak HTTP/2 only over
//! TLS, which a proxy in front terminates, and hyper-util's HTTP/1-or-2 sniffing waits for the
//! first bytes without a timeout of its own.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tower::Layer as _;

use crate::limits::client_key;

/// How long shutdown waits for the requests in flight before closing their connections.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The largest buffer of one connection: the request head must fit in it (hyper's default is
/// about 400 KiB; 1024 connections of that would be 400 MiB).
const MAX_CONNECTION_BUFFER: usize = 64 * 1024;

/// How a server treats connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Transport {
    /// How long a client may take to send a request head (and how long an idle keep-alive
    /// connection stays open).
    pub(crate) header_read_timeout: Duration,
    /// Most connections open at once; over it, new ones wait in the listen queue.
    pub(crate) max_connections: usize,
    /// Most connections open at once from one client; over it, a new one is closed at once.
    pub(crate) max_connections_per_client: usize,
}

impl Transport {
    /// The mock providers': the service's defaults. Their clients are the service's instances,
    /// but a mock must not be held open forever by a stray client either.
    const MOCK: Transport = Transport {
        header_read_timeout: Duration::from_secs(5),
        max_connections: 1024,
        // The mocks' clients are the service's instances, each with its connection pool.
        max_connections_per_client: 1024,
    };
}

/// The longest a mock provider request may take: past its longest `slow` delay (60 s).
const MOCK_REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

/// A running server. Dropping it stops accepting connections (those open finish within
/// [`SHUTDOWN_GRACE`]); [`Server::shutdown`] also waits for them.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    url: String,
    stop: watch::Sender<()>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves a mock provider's `router` on `listener` until stopped, with [`Transport::MOCK`]
    /// and a request timeout past the mock's longest delay.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub(crate) fn spawn(listener: TcpListener, router: Router) -> io::Result<Server> {
        let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            MOCK_REQUEST_TIMEOUT,
        ));
        Server::spawn_with(listener, router, Transport::MOCK)
    }

    /// Serves `router` on `listener` with `transport`'s limits until stopped.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub(crate) fn spawn_with(
        listener: TcpListener,
        router: Router,
        transport: Transport,
    ) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(());
        let task = tokio::spawn(serve(listener, router, transport, stopped));
        Ok(Server {
            addr,
            url: base_url(addr),
            stop,
            task: Some(task),
        })
    }

    /// The bound address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, see [`base_url`].
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Stops accepting connections and lets requests in flight finish, waiting at most
    /// [`SHUTDOWN_GRACE`]; connections still open then are closed.
    pub(crate) async fn shutdown(mut self) {
        let _ = self.stop.send(());
        if let Some(task) = self.task.take() {
            join_bounded(task).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// `http://IP:PORT` for a bound address; loopback for an unspecified (all interfaces) address.
#[must_use]
pub fn base_url(addr: SocketAddr) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The accept loop, then the graceful stop: accepts while a place is free, serves each
/// connection as a task of its own, and on `stopped` stops accepting, asks every connection to
/// finish its request in flight and close, and closes those still open after
/// [`SHUTDOWN_GRACE`].
async fn serve(
    listener: TcpListener,
    router: Router,
    transport: Transport,
    mut stopped: watch::Receiver<()>,
) {
    let places = Arc::new(Semaphore::new(transport.max_connections));
    let per_client = Arc::new(PerClient::default());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(transport.header_read_timeout)
        .max_buf_size(MAX_CONNECTION_BUFFER);
    let graceful = GracefulShutdown::new();
    // Owned by this task: aborting it (a shutdown that outwaits its bound) closes them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // Resolves on a send and when the sender is dropped.
            _ = stopped.changed() => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = accept(&listener, &places) => match accepted {
                Ok((stream, peer, place)) => {
                    let client = client_key(peer.ip());
                    let client_place = match per_client.enter(client, transport.max_connections_per_client) {
                        Entered::Place(p) => p,
                        Entered::Refused { warn } => {
                            if warn {
                                // Once a minute per client: behind a proxy this is the proxy.
                                tracing::warn!(
                                    %peer,
                                    max = transport.max_connections_per_client,
                                    "closing new connections of a client with too many open \
                                     (--max-connections-per-client); next warning in a minute"
                                );
                            } else {
                                tracing::debug!(%peer, "connection closed: its client has too many open");
                            }
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = TowerToHyperService::new(
                        axum::Extension(ConnectInfo(peer)).layer(router.clone()),
                    );
                    let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    connections.spawn(async move {
                        if let Err(e) = connection.await {
                            // Header-read timeouts, resets, clients gone: theirs, not ours.
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                        drop((place, client_place));
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let open = graceful.count();
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!(
                open,
                "connections still busy {} after shutdown began; closing them",
                humantime::format_duration(SHUTDOWN_GRACE)
            );
        }
    }
    connections.shutdown().await;
}

/// How many connections each client has open, and when it was last warned about.
#[derive(Debug, Default)]
struct PerClient {
    open: Mutex<HashMap<IpAddr, Open>>,
}

#[derive(Debug, Default)]
struct Open {
    count: usize,
    warned: Option<std::time::Instant>,
}

/// What [`PerClient::enter`] decided.
enum Entered {
    /// A place: the connection is served.
    Place(ClientPlace),
    /// None: the connection is closed; `warn` once a minute per client.
    Refused { warn: bool },
}

/// How often a client over its connection cap is warned about in the log.
const WARN_EVERY: Duration = Duration::from_secs(60);

impl PerClient {
    /// A place for one more connection of `client`, unless it has `max` open.
    fn enter(self: &Arc<Self>, client: IpAddr, max: usize) -> Entered {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = open.entry(client).or_default();
        if entry.count >= max {
            let warn = entry.warned.is_none_or(|t| t.elapsed() >= WARN_EVERY);
            if warn {
                entry.warned = Some(std::time::Instant::now());
            }
            return Entered::Refused { warn };
        }
        entry.count += 1;
        Entered::Place(ClientPlace {
            per_client: Arc::clone(self),
            client,
        })
    }
}

/// One open connection of a client; given back when dropped.
#[derive(Debug)]
struct ClientPlace {
    per_client: Arc<PerClient>,
    client: IpAddr,
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut open = self
            .per_client
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = open.get_mut(&self.client) {
            entry.count -= 1;
            if entry.count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// Waits for a free place, then for a connection. Over the cap nothing is accepted: new
/// connections wait in the kernel's listen queue (and time out there, at the client, if no place
/// frees); the global cap closes none that was accepted (the per-client one does).
async fn accept(
    listener: &TcpListener,
    places: &Arc<Semaphore>,
) -> io::Result<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    let place = Arc::clone(places)
        .acquire_owned()
        .await
        .map_err(|_| io::Error::other("the connection places are closed"))?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, place))
}

/// Waits for a server task: its own stop is bounded by [`SHUTDOWN_GRACE`]; this waits a little
/// longer, then abandons it.
async fn join_bounded(task: JoinHandle<()>) {
    let abort = task.abort_handle();
    match tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_millis(500), task).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
        Err(_) => {
            tracing::warn!("server did not stop in time; abandoning it");
            abort.abort();
        }
    }
}
