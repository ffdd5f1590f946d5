//! An axum server running as a task of the caller's runtime: the service's and each mock
//! provider's.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running server. Dropping it stops accepting connections; [`Server::shutdown`] also waits for
/// the requests in flight.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    url: String,
    stop: watch::Sender<()>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Server {
    /// Serves `router` on `listener` until stopped.
    ///
    /// # Errors
    /// When the listener's address cannot be read.
    pub(crate) fn spawn(listener: TcpListener, router: Router) -> io::Result<Server> {
        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // Resolves on a send and when the sender is dropped.
                    let _ = stopped.changed().await;
                })
                .await
        });
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

    /// Stops accepting connections and lets requests in flight finish, waiting at most 2 s.
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

/// Waits for a server task, at most 2 s, then abandons it.
async fn join_bounded(task: JoinHandle<io::Result<()>>) {
    let abort = task.abort_handle();
    match tokio::time::timeout(Duration::from_secs(2), task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server ended with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "server task failed"),
        Err(_) => {
            tracing::warn!("server did not stop within 2 s; abandoning it");
            abort.abort();
        }
    }
}
