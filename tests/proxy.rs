//! [`FaultProxy`]: a fault-injecting TCP proxy on loopback, for partitioning an instance from
//! Redis (or slowing its link) while its connections stay open.
//!
//! Std threads only. Each accepted connection gets two pumps (client → upstream, upstream →
//! client), each a reader thread that timestamps the chunks it reads and a writer thread that
//! delivers them in order once they are due: `received + latency`, and only while the link is
//! not cut.
//!
//! **What a cut does with the bytes: it holds them.** Nothing is delivered in either direction
//! and nothing is dropped: what was read stays queued in the proxy, what was not read yet stays
//! in the kernel's socket buffers (a sender that fills them blocks, as TCP's window would make
//! it). At [`FaultProxy::heal`] everything held is delivered, in order, followed by any close
//! that was held behind it. That is what a real partition does to TCP: segments vanish, TCP
//! retransmits them, and whatever was written before or during the partition (even by a client
//! that has since given up and closed its socket) arrives when the network heals. A connection
//! accepted while cut is accepted (the client's `connect` succeeds) but not forwarded: the
//! upstream connection is opened only at heal, and the client's bytes wait until then.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long [`FaultProxy`]'s `Drop` waits for its threads to end.
const STOP_BUDGET: Duration = Duration::from_secs(2);

/// A TCP proxy from a free `127.0.0.1` port to `127.0.0.1:<upstream>` that can cut the link
/// (holding the bytes, see the module documentation) and add latency, while connections stay
/// open.
///
/// Every control takes effect at once on every connection, open or future, and can be used
/// from any thread. Dropping the proxy stops it: the listener and every socket it opened or
/// accepted are closed and its threads end.
#[derive(Debug)]
pub struct FaultProxy {
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream: u16,
    ctl: Mutex<Ctl>,
    /// Signalled on every change of `ctl`.
    changed: Condvar,
    /// Every socket of every connection, to close them when the proxy is dropped.
    sockets: Mutex<Vec<TcpStream>>,
    /// Threads still running (the accept thread excluded), and its signal.
    live: Mutex<usize>,
    ended: Condvar,
}

#[derive(Debug)]
struct Ctl {
    cut: bool,
    latency: Duration,
    stopped: bool,
}

enum Chunk {
    Data(Instant, Vec<u8>),
    Eof,
}

impl FaultProxy {
    /// Starts a proxy to `127.0.0.1:<upstream_port>` on a free loopback port ([`port`]),
    /// passing bytes through unchanged until told otherwise.
    ///
    /// # Panics
    /// When no loopback port can be bound or a thread cannot be started.
    ///
    /// [`port`]: FaultProxy::port
    #[must_use]
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("the bound address").port();
        let shared = Arc::new(Shared {
            upstream: upstream_port,
            ctl: Mutex::new(Ctl {
                cut: false,
                latency: Duration::ZERO,
                stopped: false,
            }),
            changed: Condvar::new(),
            sockets: Mutex::new(Vec::new()),
            live: Mutex::new(0),
            ended: Condvar::new(),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name(format!("fault-proxy-{port}"))
            .spawn(move || accept_loop(&listener, &s))
            .expect("start the proxy's accept thread");
        FaultProxy {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// The loopback port the proxy listens on: point clients at `127.0.0.1:<port>`.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Partitions the link: from now on nothing flows in either direction, on open connections
    /// and new ones, until [`FaultProxy::heal`]. Connections stay open; the bytes are held, not
    /// dropped (see the module documentation), and new connections are accepted but not
    /// forwarded.
    pub fn cut(&self) {
        self.shared.update(|c| c.cut = true);
    }

    /// Ends a [`FaultProxy::cut`]: everything held is delivered in order (after the latency,
    /// if one is set, counted from when the proxy read it) and bytes flow again.
    pub fn heal(&self) {
        self.shared.update(|c| c.cut = false);
    }

    /// Delays every chunk by `latency` in each direction (a round trip takes twice as long),
    /// counted from when the proxy read it; the order of the bytes is kept, and chunks in
    /// flight are not serialised behind each other's delays. `Duration::ZERO` removes it.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.update(|c| c.latency = latency);
    }
}

impl Drop for FaultProxy {
    /// Stops the proxy: no more connections are accepted, every socket is closed, and the
    /// proxy's threads end (waited for, up to two seconds).
    fn drop(&mut self) {
        self.shared.update(|c| c.stopped = true);
        // Wakes the accept thread, which sees `stopped` and ends (closing the listener).
        let _ = TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], self.port)),
            Duration::from_secs(1),
        );
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for s in lock(&self.shared.sockets).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let deadline = Instant::now() + STOP_BUDGET;
        let mut live = lock(&self.shared.live);
        while *live > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            live = self
                .shared
                .ended
                .wait_timeout(live, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Shared {
    fn update(&self, f: impl FnOnce(&mut Ctl)) {
        f(&mut lock(&self.ctl));
        self.changed.notify_all();
    }

    /// Blocks until bytes read at `at` may be delivered: the link is not cut and
    /// `at + latency` has passed. `false` once the proxy is stopped.
    fn wait_deliverable(&self, at: Instant) -> bool {
        let mut ctl = lock(&self.ctl);
        loop {
            if ctl.stopped {
                return false;
            }
            if ctl.cut {
                ctl = self
                    .changed
                    .wait(ctl)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let due = at + ctl.latency;
            let now = Instant::now();
            if now >= due {
                return true;
            }
            ctl = self
                .changed
                .wait_timeout(ctl, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn register(&self, s: &TcpStream) {
        if let Ok(c) = s.try_clone() {
            lock(&self.sockets).push(c);
        }
    }

    /// Runs `f` on a thread of its own, counted in `live`.
    fn spawn(self: &Arc<Self>, f: impl FnOnce(&Arc<Shared>) + Send + 'static) {
        *lock(&self.live) += 1;
        let s = self.clone();
        let started = std::thread::Builder::new()
            .name("fault-proxy-conn".into())
            .spawn(move || {
                f(&s);
                *lock(&s.live) -= 1;
                s.ended.notify_all();
            });
        if started.is_err() {
            *lock(&self.live) -= 1;
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for conn in listener.incoming() {
        if lock(&shared.ctl).stopped {
            return;
        }
        let Ok(client) = conn else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let _ = client.set_nodelay(true);
        shared.register(&client);
        shared.spawn(move |s| connect_upstream(s, client));
    }
}

/// Opens the upstream side of an accepted connection once the link is not cut, then starts the
/// two pumps.
fn connect_upstream(shared: &Arc<Shared>, client: TcpStream) {
    {
        let mut ctl = lock(&shared.ctl);
        while ctl.cut && !ctl.stopped {
            ctl = shared
                .changed
                .wait(ctl)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if ctl.stopped {
            return;
        }
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], shared.upstream));
    let Ok(upstream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        // Nothing listens upstream: the client sees its connection closed.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = upstream.set_nodelay(true);
    shared.register(&upstream);
    if lock(&shared.ctl).stopped {
        let _ = upstream.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
        return;
    }
    pump(shared, &client, &upstream);
    pump(shared, &upstream, &client);
}

/// Starts the reader and the writer of one direction, `from` → `to`.
fn pump(shared: &Arc<Shared>, from: &TcpStream, to: &TcpStream) {
    let (Ok(from), Ok(to), Ok(to_close), Ok(from_close)) = (
        from.try_clone(),
        to.try_clone(),
        to.try_clone(),
        from.try_clone(),
    ) else {
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
        return;
    };
    let (tx, rx) = channel();
    shared.spawn(move |_| read_side(from, &tx));
    shared.spawn(move |s| write_side(s, &rx, to, &to_close, &from_close));
}

fn read_side(mut from: TcpStream, tx: &Sender<Chunk>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send(Chunk::Eof);
                return;
            }
            Ok(n) => {
                if tx
                    .send(Chunk::Data(Instant::now(), buf[..n].to_vec()))
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

fn write_side(
    shared: &Arc<Shared>,
    rx: &Receiver<Chunk>,
    mut to: TcpStream,
    to_close: &TcpStream,
    from_close: &TcpStream,
) {
    while let Ok(chunk) = rx.recv() {
        match chunk {
            Chunk::Data(at, bytes) => {
                if !shared.wait_deliverable(at) || to.write_all(&bytes).is_err() {
                    break;
                }
            }
            Chunk::Eof => {
                // The close travels behind the bytes, held by a cut like them.
                if shared.wait_deliverable(Instant::now()) {
                    let _ = to_close.shutdown(Shutdown::Write);
                    return;
                }
                break;
            }
        }
    }
    // Stopped, or the receiving side is gone: close this direction for good.
    let _ = to_close.shutdown(Shutdown::Both);
    let _ = from_close.shutdown(Shutdown::Both);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    /// A tiny echo server on a free loopback port: every byte received is sent back; counts
    /// the bytes it received. Its threads end with the test process.
    fn echo_server() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = received.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let count = count.clone();
                std::thread::spawn(move || {
                    let _ = s.set_nodelay(true);
                    let mut w = s.try_clone().unwrap();
                    let mut r = s;
                    let mut buf = [0u8; 8192];
                    loop {
                        match r.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                count.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                                if w.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        (port, received)
    }

    /// A server that hands each accepted connection to the test, to write from upstream.
    fn handing_server() -> (u16, Receiver<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                if tx.send(s).is_err() {
                    return;
                }
            }
        });
        (port, rx)
    }

    fn connect(proxy: &FaultProxy) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", proxy.port())).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    fn read_exactly(s: &mut TcpStream, n: usize, within: Duration) -> Vec<u8> {
        s.set_read_timeout(Some(within)).unwrap();
        let mut buf = vec![0u8; n];
        s.read_exact(&mut buf).unwrap();
        buf
    }

    /// Asserts that nothing arrives on `s` for `quiet`.
    fn assert_silent(s: &mut TcpStream, quiet: Duration) {
        s.set_read_timeout(Some(quiet)).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    #[test]
    fn passes_bytes_through_both_ways_unchanged() {
        let (port, _) = echo_server();
        let proxy = FaultProxy::start(port);
        let mut s = connect(&proxy);
        s.write_all(b"hello").unwrap();
        assert_eq!(read_exactly(&mut s, 5, Duration::from_secs(5)), b"hello");
        // A large payload, written while it is read back: bytes and order intact.
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = s.try_clone().unwrap();
        let sent = payload.clone();
        let writer = std::thread::spawn(move || w.write_all(&sent).unwrap());
        assert_eq!(
            read_exactly(&mut s, payload.len(), Duration::from_secs(10)),
            payload
        );
        writer.join().unwrap();
        // Several connections at once.
        let mut others: Vec<_> = (0..4).map(|_| connect(&proxy)).collect();
        for (i, o) in others.iter_mut().enumerate() {
            o.write_all(format!("conn{i}").as_bytes()).unwrap();
        }
        for (i, o) in others.iter_mut().enumerate() {
            assert_eq!(
                read_exactly(o, 5, Duration::from_secs(5)),
                format!("conn{i}").as_bytes()
            );
        }
    }

    #[test]
    fn cut_holds_bytes_both_ways_and_heal_delivers_them_in_order() {
        let (port, accepted) = handing_server();
        let proxy = FaultProxy::start(port);
        let mut client = connect(&proxy);
        client.write_all(b"ping").unwrap();
        let mut server = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            read_exactly(&mut server, 4, Duration::from_secs(5)),
            b"ping"
        );
        proxy.cut();
        client.write_all(b"up-1").unwrap();
        client.write_all(b"up-2").unwrap();
        server.write_all(b"down").unwrap();
        assert_silent(&mut server, Duration::from_millis(300));
        assert_silent(&mut client, Duration::from_millis(50));
        // A connection made during the cut is accepted but not forwarded.
        let mut late = connect(&proxy);
        late.write_all(b"late").unwrap();
        assert!(
            accepted.recv_timeout(Duration::from_millis(200)).is_err(),
            "a connection reached upstream during the cut"
        );
        proxy.heal();
        assert_eq!(
            read_exactly(&mut server, 8, Duration::from_secs(5)),
            b"up-1up-2"
        );
        assert_eq!(
            read_exactly(&mut client, 4, Duration::from_secs(5)),
            b"down"
        );
        let mut late_server = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            read_exactly(&mut late_server, 4, Duration::from_secs(5)),
            b"late"
        );
        // Flowing again.
        client.write_all(b"after").unwrap();
        assert_eq!(
            read_exactly(&mut server, 5, Duration::from_secs(5)),
            b"after"
        );
    }

    #[test]
    fn a_close_during_the_cut_arrives_after_the_held_bytes() {
        let (port, accepted) = handing_server();
        let proxy = FaultProxy::start(port);
        let mut client = connect(&proxy);
        client.write_all(b"x").unwrap();
        let mut server = accepted.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(read_exactly(&mut server, 1, Duration::from_secs(5)), b"x");
        proxy.cut();
        client.write_all(b"last words").unwrap();
        drop(client);
        assert_silent(&mut server, Duration::from_millis(200));
        proxy.heal();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"last words");
    }

    #[test]
    fn latency_delays_each_direction_and_keeps_order() {
        let (port, _) = echo_server();
        let proxy = FaultProxy::start(port);
        let mut s = connect(&proxy);
        s.write_all(b"warm").unwrap();
        read_exactly(&mut s, 4, Duration::from_secs(5));
        let latency = Duration::from_millis(100);
        proxy.set_latency(latency);
        let t = Instant::now();
        s.write_all(b"one").unwrap();
        read_exactly(&mut s, 3, Duration::from_secs(5));
        let rtt = t.elapsed();
        println!("round trip with {latency:?} each way: {rtt:?}");
        assert!(rtt >= latency, "{rtt:?} < the latency set");
        assert!(rtt >= 2 * latency, "{rtt:?}: not delayed both ways");
        assert!(rtt < 2 * latency + Duration::from_millis(400), "{rtt:?}");
        // 20 chunks 5 ms apart: delivered in order, each about `latency` late, not queued
        // behind each other's delays.
        let t = Instant::now();
        let mut expected = Vec::new();
        for i in 0..20u8 {
            s.write_all(&[i]).unwrap();
            expected.push(i);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(read_exactly(&mut s, 20, Duration::from_secs(5)), expected);
        let all = t.elapsed();
        assert!(all >= 2 * latency, "{all:?}");
        assert!(all < 2 * latency + Duration::from_millis(600), "{all:?}");
        proxy.set_latency(Duration::ZERO);
        let t = Instant::now();
        s.write_all(b"fast").unwrap();
        read_exactly(&mut s, 4, Duration::from_secs(5));
        assert!(
            t.elapsed() < latency,
            "latency not removed: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn drop_closes_connections_and_the_port() {
        let (port, _) = echo_server();
        let proxy = FaultProxy::start(port);
        let proxy_port = proxy.port();
        let mut s = connect(&proxy);
        s.write_all(b"hi").unwrap();
        read_exactly(&mut s, 2, Duration::from_secs(5));
        // A connection held by a cut is closed too.
        proxy.cut();
        let mut held = connect(&proxy);
        held.write_all(b"held").unwrap();
        let t = Instant::now();
        drop(proxy);
        assert!(t.elapsed() < STOP_BUDGET, "drop waited {:?}", t.elapsed());
        for c in [&mut s, &mut held] {
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 16];
            match c.read(&mut buf) {
                Ok(0) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                other => panic!("connection not closed: {other:?}"),
            }
        }
        assert!(
            TcpStream::connect(("127.0.0.1", proxy_port)).is_err(),
            "still listening"
        );
    }

    #[test]
    fn unreachable_upstream_closes_the_client() {
        let proxy = FaultProxy::start(crate::free_port());
        let mut s = connect(&proxy);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4];
        match s.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected a close, got {other:?}"),
        }
    }
}
