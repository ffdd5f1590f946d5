//! The demo's child processes: `redis-server`, the mock providers and the two instances, each
//! killed by its pid at the end, on an error, on a panic and on Ctrl-C.

use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::Result;

/// What the instances of the fleet share.
#[derive(Debug)]
pub(crate) struct Fleet {
    /// Base URL of the daum-like mock provider.
    pub(crate) daum: String,
    /// Base URL of the juso-like mock provider.
    pub(crate) juso: String,
    /// The admin token of every instance.
    pub(crate) token: String,
    /// `redis://127.0.0.1:PORT/`.
    pub(crate) redis: String,
    /// `BREAKER_KEY_PREFIX`, unique to the run.
    pub(crate) prefix: String,
}

/// The demo's child processes; each is killed by its pid when this is dropped (at the end, on an
/// error, during a panic's unwinding, after Ctrl-C).
#[derive(Debug)]
pub(crate) struct Processes {
    /// Where their logs (and Redis's working directory) go.
    dir: PathBuf,
    /// Name and process, in start order.
    children: Vec<(String, Child)>,
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in self.children.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Processes {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Processes {
            dir,
            children: Vec::new(),
        }
    }

    /// Starts `command` as `name`, its stderr and stdout appended to `<dir>/<name>.log`; returns
    /// the stdout lines as they come (a thread drains the pipe to the end).
    fn spawn(
        &mut self,
        name: &str,
        mut command: Command,
    ) -> Result<(mpsc::Receiver<String>, PathBuf)> {
        let log_path = self.dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone()?));
        let mut child = command.spawn().map_err(|e| {
            let program = command.get_program().to_string_lossy().into_owned();
            if e.kind() == std::io::ErrorKind::NotFound && program == "redis-server" {
                format!(
                    "cannot start redis-server ({e}): install it with `apt-get install redis-server` \
                     (or `brew install redis`); the demo starts its own on a free port"
                )
            } else {
                format!("cannot start {program} ({name}): {e}")
            }
        })?;
        let stdout = child.stdout.take();
        self.children.push((name.to_owned(), child));
        let stdout = stdout.ok_or_else(|| format!("{name}: no stdout pipe"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || drain(stdout, log, &tx));
        Ok((rx, log_path))
    }

    /// `redis-server` on `port`, without persistence; waits until it answers PING.
    pub(crate) fn start_redis(&mut self, port: u16) -> Result<String> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&self.dir);
        let (_, log) = self.spawn("redis", command)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while redis_command(port, "PING").as_deref() != Some("+PONG") {
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer within 10 s; see {}",
                    log.display()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(format!("redis://127.0.0.1:{port}/"))
    }

    /// `address-search --mock-providers-only`; returns the daum and juso base URLs it prints.
    pub(crate) fn start_providers(
        &mut self,
        binary: &Path,
        token: &str,
    ) -> Result<(String, String)> {
        let mut command = Command::new(binary);
        command.arg("--mock-providers-only");
        clean_env(&mut command);
        command.env("BREAKER_MOCK_TOKEN", token);
        let (lines, log) = self.spawn("providers", command)?;
        let (mut daum, mut juso) = (None, None);
        let found = wait_for_line(&lines, "the mock providers", &log, |line| {
            let line = strip_ansi(line);
            let mut words = line.split_whitespace();
            match (words.next(), url_in(&line)) {
                (Some("daum"), Some(url)) => daum = Some(url),
                (Some("juso"), Some(url)) => juso = Some(url),
                _ => {}
            }
            daum.clone().zip(juso.clone())
        })?;
        Ok(found)
    }

    /// One service instance of `fleet` on a free port; returns its base URL.
    pub(crate) fn start_instance(
        &mut self,
        binary: &Path,
        name: &str,
        fleet: &Fleet,
    ) -> Result<String> {
        let mut command = Command::new(binary);
        command.args([
            "--port",
            "0",
            "--daum-url",
            &fleet.daum,
            "--juso-url",
            &fleet.juso,
        ]);
        // The demo is one client (one address) sending hundreds of searches a second and
        // polling both admin APIs every 5 ms: far over the per-client limits meant for people.
        // It measures the breakers' failover, not the per-client limits, so it lifts them.
        command.args([
            "--search-rate-limit",
            "0",
            "--admin-rate-limit",
            "0",
            "--max-connections-per-client",
            "1024",
        ]);
        clean_env(&mut command);
        // The token through the environment (`--admin-token`'s fallback), not visible in `ps`.
        command
            .env("BREAKER_ADMIN_TOKEN", &fleet.token)
            .env("BREAKER_MOCK_TOKEN", &fleet.token)
            .env("BREAKER_REDIS_URL", &fleet.redis)
            .env("BREAKER_KEY_PREFIX", &fleet.prefix);
        let (lines, log) = self.spawn(name, command)?;
        wait_for_line(&lines, name, &log, |line| {
            let line = strip_ansi(line);
            if line.contains("listening on") {
                url_in(&line)
            } else {
                None
            }
        })
    }
}

/// Removes the variables that would change the service's behaviour behind the demo's back.
fn clean_env(command: &mut Command) {
    command.env_remove("PORT");
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("BREAKER_") {
            command.env_remove(var);
        }
    }
}

/// Copies a child's stdout to its log and to `tx`, line by line, until the pipe closes.
fn drain(stdout: impl Read, mut log: std::fs::File, tx: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let _ = log.write_all(&buf);
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                // The receiver stops listening once it found its line; keep draining anyway.
                let _ = tx.send(line);
            }
        }
    }
}

/// Waits (30 s at most) until `parse` returns something for the lines read so far.
fn wait_for_line<T>(
    lines: &mpsc::Receiver<String>,
    what: &str,
    log: &Path,
    mut parse: impl FnMut(&str) -> Option<T>,
) -> Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(found) = parse(&line) {
                    return Ok(found);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(
                    format!("{what} printed no URL within 30 s; see {}", log.display()).into(),
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(format!(
                    "{what} exited before printing its URL; see {}",
                    log.display()
                )
                .into());
            }
        }
    }
}

/// The first `http://...` word of a line, without a trailing slash or punctuation.
fn url_in(line: &str) -> Option<String> {
    let start = line.find("http://")?;
    let word = line[start..].split_whitespace().next()?;
    Some(
        word.trim_end_matches(['/', ',', ';', ')', '"', '\''])
            .to_owned(),
    )
}

/// A line without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_port() -> Result<u16> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))?;
    Ok(port)
}

/// Sends one inline command to the Redis on `port`; the first line of its reply.
pub(crate) fn redis_command(port: u16, command: &str) -> Option<String> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    (&stream)
        .write_all(format!("{command}\r\n").as_bytes())
        .ok()?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).ok()?;
    Some(line.trim_end().to_owned())
}

/// Distinguishes this run's token and key prefix from any other's.
pub(crate) fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}
