//! A `redis-server` of the benchmark's own on a free loopback port, stopped by pid when
//! dropped: shared by the Redis benchmarks (`redis`, `fleet_scale`).

#![allow(dead_code, unreachable_pub)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server; killed (and waited for) when dropped.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Server {
    /// Its URL.
    pub fn url(&self) -> String {
        url(self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` (no persistence) with `extra` arguments and waits until it answers.
pub fn start_redis(extra: &[&str]) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install redis-server)");
    let s = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis_cmd(port, &["PING"]).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    s
}

/// The URL of the Redis on `port` of 127.0.0.1.
pub fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/")
}

/// One command on a fresh connection.
pub fn redis_cmd(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(url(port))?;
    let mut con = client.get_connection()?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con)
}

/// The text of an `INFO` reply.
pub fn info_text(v: redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        redis::Value::SimpleString(s) => s,
        other => panic!("INFO: {other:?}"),
    }
}

/// `(all, of_these)`: the calls of every command in an `INFO commandstats` text (as
/// [`command_calls`]), and of the commands named in `of_these` alone.
pub fn command_totals(info: &str, of_these: &[&str]) -> (u64, u64) {
    let (mut all, mut some) = (0, 0);
    for (name, calls) in command_calls(info) {
        all += calls;
        if of_these.contains(&name) {
            some += calls;
        }
    }
    (all, some)
}

/// `(command, calls)` for every command in an `INFO commandstats` text (`INFO` itself left
/// out: the measuring reads it), commands run inside scripts included.
pub fn command_calls(info: &str) -> impl Iterator<Item = (&str, u64)> {
    info.lines().filter_map(|l| {
        let rest = l.strip_prefix("cmdstat_")?;
        let (name, stats) = rest.split_once(':')?;
        if name == "info" {
            return None;
        }
        let calls = stats
            .split("calls=")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Some((name, calls))
    })
}
