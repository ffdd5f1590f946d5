//! Shared helpers for the workspace tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use breaker_runtime::{BreakerError, Event, EventKind, Notifier, State};

pub mod fleet;
pub mod proxy;

/// The error type of the test providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestError {
    /// The provider failed.
    Down(&'static str),
    /// The provider answered with an error that is not an outage.
    NotFound,
    /// The breaker rejected or timed out the call.
    Breaker(BreakerError),
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestError::Down(who) => write!(f, "{who} is down"),
            TestError::NotFound => f.write_str("not found"),
            TestError::Breaker(e) => write!(f, "{e}"),
        }
    }
}

impl From<BreakerError> for TestError {
    fn from(e: BreakerError) -> Self {
        TestError::Breaker(e)
    }
}

impl TestError {
    /// Whether this is a rejection by an open breaker.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self, TestError::Breaker(BreakerError::Open { .. }))
    }

    /// Whether this is a timeout.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, TestError::Breaker(BreakerError::Timeout { .. }))
    }
}

/// A call's result in one word, for instances that answer on stdout: what the function
/// returned (its `Ok` text, or `down` for its own error), `open` (rejected, no fallback) or
/// `other:..`.
#[must_use]
pub fn word(r: &Result<String, TestError>) -> String {
    match r {
        Ok(s) => s.clone(),
        Err(TestError::Down(_)) => "down".to_owned(),
        Err(TestError::Breaker(BreakerError::Open { .. })) => "open".to_owned(),
        Err(e) => format!("other:{}", format!("{e:?}").replace(' ', "_")),
    }
}

/// A notifier that records every event.
#[derive(Debug, Default)]
pub struct Recorder {
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// Installs a new recorder as a notifier of this process.
    #[must_use]
    pub fn install() -> Arc<Recorder> {
        let r = Arc::new(Recorder::default());
        breaker_runtime::add_notifier(r.clone());
        r
    }

    /// The transitions `(from, to)` recorded for `breaker`, after waiting for delivery.
    #[must_use]
    pub fn transitions(&self, breaker: &str) -> Vec<(State, State)> {
        assert!(
            breaker_runtime::flush_notifications(Duration::from_secs(10)),
            "notifier queue did not drain"
        );
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.breaker == breaker)
            .filter_map(|e| match e.kind {
                EventKind::Transition { from, to, .. } => Some((from, to)),
                _ => None,
            })
            .collect()
    }

    /// Every event recorded for `breaker`, after waiting for delivery.
    #[must_use]
    pub fn events(&self, breaker: &str) -> Vec<EventKind> {
        assert!(breaker_runtime::flush_notifications(Duration::from_secs(
            10
        )));
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.breaker == breaker)
            .map(|e| e.kind.clone())
            .collect()
    }
}

impl Notifier for Recorder {
    fn notify(&self, event: &Event) {
        self.events.lock().unwrap().push(event.clone());
    }

    fn wants_call_events(&self) -> bool {
        true
    }
}

/// A `redis-server` of the test's own on a free loopback port, stopped (by pid) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl RedisServer {
    /// Starts `redis-server` from `PATH`. Panics with how to install it when it is missing: a
    /// missing server fails the test, it never skips it.
    #[must_use]
    pub fn start() -> RedisServer {
        Self::start_on(free_port())
    }

    /// Starts `redis-server` on `port` (to restart one on the port it had).
    #[must_use]
    pub fn start_on(port: u16) -> RedisServer {
        Self::start_with(port, &[])
    }

    /// Starts `redis-server` on `port` with extra arguments.
    #[must_use]
    pub fn start_with(port: u16, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("breaker-redis-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir for redis-server");
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--enable-debug-command", "local", "--dir"])
            .arg(&dir)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): install it with `apt-get install redis-server` \
                     (the tests start their own servers on free ports)"
                )
            });
        let server = RedisServer { child, port, dir };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        // Up once it answers (a server with a password answers -NOAUTH).
        while !server
            .command("PING")
            .is_some_and(|r| r == "+PONG" || r.starts_with("-NOAUTH"))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server on {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// `redis://127.0.0.1:<port>/`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A field of a breaker's state hash (`<prefix>:{name}:s`) as it is (`None`: no such
    /// field), read with `redis-cli`.
    #[must_use]
    pub fn breaker_field(&self, prefix: &str, name: &str, field: &str) -> Option<String> {
        let state = breaker_runtime::redis::Keys::new(prefix)
            .breaker(name)
            .state;
        let reply = self
            .command(&format!(
                "EVAL \"return {{ok = redis.call('HGET', KEYS[1], ARGV[1]) or '(none)'}}\" 1 {state} {field}"
            ))
            .expect("an answer");
        match reply.strip_prefix('+') {
            Some("(none)") => None,
            Some(v) => Some(v.to_owned()),
            None => panic!("HGET {state} {field}: {reply}"),
        }
    }

    /// Runs the runtime's `WRITE_CONTROL` on breaker `name` as an operator's tool
    /// (`breakerctl`) does.
    pub fn write_control(
        &self,
        prefix: &str,
        name: &str,
        change: breaker_runtime::redis::ControlChange<'_>,
    ) {
        use breaker_runtime::redis::{Controls, Keys, ScriptCall, WriteControl, connect};
        let keys = Keys::new(prefix);
        fleet::run(async {
            let mut conn = connect(&self.url()).await.unwrap();
            let _: Controls = WriteControl {
                keys: &keys.breaker(name),
                change,
                for_ms: 0,
                channel: keys.controls(),
                name,
            }
            .invoke(&mut conn)
            .await
            .unwrap();
        });
    }

    /// Sends one inline command; the first line of the reply, or `None` when unreachable.
    #[must_use]
    pub fn command(&self, cmd: &str) -> Option<String> {
        use std::io::{BufRead, Write};
        let stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        (&stream).write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut line = String::new();
        std::io::BufReader::new(&stream).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }

    /// Stops the server (SIGKILL by pid) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nobody listens on right now.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A 3-node Redis Cluster (no replicas) of the test's own, stopped when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three `redis-server --cluster-enabled yes` and joins them with
    /// `redis-cli --cluster create`.
    #[must_use]
    pub fn start() -> RedisCluster {
        let nodes: Vec<RedisServer> = (0..3)
            .map(|_| {
                RedisServer::start_with(
                    free_port(),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let status = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-cli ({e}): install it with `apt-get install redis-tools`")
            });
        assert!(status.success(), "redis-cli --cluster create failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        for n in &nodes {
            loop {
                let ok = n
                    .command("CLUSTER INFO")
                    .is_some_and(|_| cluster_ok(n.port()));
                if ok {
                    break;
                }
                assert!(std::time::Instant::now() < deadline, "cluster did not form");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        RedisCluster { nodes }
    }

    /// `redis://127.0.0.1:<p1>/,redis://...` for `BREAKER_REDIS_CLUSTER`.
    #[must_use]
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(RedisServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn cluster_ok(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"CLUSTER INFO\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).contains("cluster_state:ok")
}

/// One request an [`HttpReceiver`] received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`, `GET`...
    pub method: String,
    /// The path, with its query.
    pub path: String,
    /// The body, as text.
    pub body: String,
    /// Whether it was answered (200); a held request is not.
    pub answered: bool,
}

/// A real HTTP/1.1 server on a free loopback port that records every request and answers
/// `200 {"ok":true}`: the stand-in for a webhook receiver and for the Telegram Bot API.
#[derive(Debug)]
pub struct HttpReceiver {
    port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl HttpReceiver {
    /// Starts the server on its own threads (they end with the test process).
    pub fn start() -> HttpReceiver {
        Self::start_holding(None)
    }

    /// As [`HttpReceiver::start`], but the first request whose path starts with `prefix` is
    /// recorded and never answered (its connection stays open): a receiver that hangs while
    /// the sender is killed. Later requests are answered.
    pub fn start_holding(prefix: Option<&str>) -> HttpReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().unwrap().port();
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = received.clone();
        let hold = std::sync::Arc::new(std::sync::Mutex::new(prefix.map(str::to_owned)));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = sink.clone();
                let hold = hold.clone();
                std::thread::spawn(move || serve_http(stream, &sink, &hold));
            }
        });
        HttpReceiver { port, received }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn serve_http(
    mut stream: std::net::TcpStream,
    sink: &std::sync::Mutex<Vec<Received>>,
    hold: &std::sync::Mutex<Option<String>>,
) {
    use std::io::{BufRead, BufReader, Read, Write};
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(clone);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_owned(), path.to_owned());
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let held = {
            let mut h = hold
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let held = h.as_deref().is_some_and(|p| path.starts_with(p));
            if held {
                *h = None;
            }
            held
        };
        sink.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Received {
                method,
                path,
                body: String::from_utf8_lossy(&body).into_owned(),
                answered: !held,
            });
        if held {
            // Never answered: the connection stays open until the sender goes away.
            let mut sink = [0u8; 64];
            while matches!(std::io::Read::read(&mut stream, &mut sink), Ok(n) if n > 0) {}
            return;
        }
        let reply = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}";
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Re-runs this test binary with only `test` selected, `child_var` set and `env` applied (the
/// other `BREAKER_*` setting variables removed), and asserts that the child passed and printed
/// `child checks passed`: for tests of settings read once per process from the environment.
pub fn run_child(test: &str, child_var: &str, env: &[(&str, &str)]) {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", test, "--nocapture"])
        .env(child_var, "1");
    for var in ["BREAKER_FAULTS", "BREAKER_OVERRIDES"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child checks passed"), "{stdout}");
}
