//! The child-process harness of the fleet tests: a parent test re-runs its own test binary as
//! child processes, each one an instance of the application, and talks to them through lines
//! on their stdout and files in a scratch directory.
//!
//! **The parent side.** [`Spawn`] describes one child: the test binary (`current_exe`) running
//! exactly one test (`--exact NAME --nocapture --test-threads=1`), a role variable telling that
//! test it is a child and what to do, and the environment of the instance. Every `BREAKER_*`
//! variable of the parent is removed first: a child has only the settings its test gives it.
//! [`Spawn::start`] gives an [`Instance`]: a thread of its own reads the child's stdout and keeps
//! every line with an `@` (from the `@` on, trimmed, with the instant it was read), so a pipe
//! never fills; the parent reads them in order with [`Instance::expect`] and
//! [`Instance::lines_until`] or [`Instance::next_line`] (each with a deadline, failing at once when the child has ended),
//! or looks at all of them ([`Instance::lines`], [`Instance::wait_until`]). An instance is
//! SIGKILLed when dropped (even when the test fails), [`Instance::kill`] does it earlier, and
//! [`Stopped`] holds any process (a child, a `redis-server`) under SIGSTOP until dropped.
//! [`serial`] runs the parent tests of a binary one at a time; [`Scratch`] is a directory for
//! the files that steer the children ([`touch`], [`remove`]).
//!
//! **The child side.** The child test returns at once unless its role variable is set
//! ([`role`]); it runs its async body with [`run`], reports with [`report`] (`@tag rest`, one
//! line, flushed), and waits for its go file with [`wait_for_file`]. Its time stamps, when the
//! parent compares them with its own moments, are [`unix_ms`] or [`unix_micros`].
//!
//! Lines: libtest may print `test NAME ... ` before the child's first line, on the same line,
//! hence "from the `@` on". A tag is the first word after the `@`; [`Line::is`] also accepts a
//! tag of several words (`transition HALF_OPEN OPEN`) as a prefix ending at a word boundary.

use std::ffi::{OsStr, OsString};
use std::fmt::Display;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------------
// Lines.
// ---------------------------------------------------------------------------------------------

/// One `@` line of a child, as the parent read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// When the parent's reader thread read it.
    pub at: Instant,
    /// The line from its `@` on, trimmed: `@tag rest`.
    pub text: String,
}

impl Line {
    /// The tag: the first word, without its `@`.
    #[must_use]
    pub fn tag(&self) -> &str {
        self.text[1..].split_whitespace().next().unwrap_or_default()
    }

    /// Whether the line is `@tag` or starts with `@tag ` (a tag may be several words).
    #[must_use]
    pub fn is(&self, tag: &str) -> bool {
        self.text
            .strip_prefix('@')
            .and_then(|t| t.strip_prefix(tag))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    }

    /// Everything after the tag (its first word), trimmed.
    #[must_use]
    pub fn rest(&self) -> &str {
        self.text[1..]
            .split_once(char::is_whitespace)
            .map_or("", |(_, rest)| rest.trim())
    }

    /// The words after the tag.
    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.rest().split_whitespace()
    }

    /// The value of a `key=value` word after the tag.
    #[must_use]
    pub fn field(&self, key: &str) -> Option<&str> {
        self.words()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    /// The value of a `key=value` word, parsed; panics with the line when it is missing or
    /// does not parse.
    #[must_use]
    pub fn num<T: std::str::FromStr>(&self, key: &str) -> T {
        self.field(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {key}= in `{}`", self.text))
    }
}

// ---------------------------------------------------------------------------------------------
// The parent side.
// ---------------------------------------------------------------------------------------------

/// Where a child's stderr goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stderr {
    /// The parent's own stderr (the default).
    Inherit,
    /// Nowhere.
    Null,
    /// Collected, for [`Instance::stderr`], [`Transcript::stderr`] and failure messages.
    Capture,
}

/// How to start one child: see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Spawn {
    test: String,
    role_var: String,
    role: String,
    label: String,
    env: Vec<(OsString, OsString)>,
    echo: bool,
    stdin: bool,
    stderr: Stderr,
}

impl Spawn {
    /// The child test `test` of this binary, with `role_var=role`.
    #[must_use]
    pub fn new(test: &str, role_var: &str, role: &str) -> Spawn {
        Spawn {
            test: test.to_owned(),
            role_var: role_var.to_owned(),
            role: role.to_owned(),
            label: role.to_owned(),
            env: Vec::new(),
            echo: false,
            stdin: false,
            stderr: Stderr::Inherit,
        }
    }

    /// Its name in messages (the role unless told).
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Spawn {
        self.label = label.into();
        self
    }

    /// One more variable of its environment.
    #[must_use]
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Spawn {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// More variables of its environment.
    #[must_use]
    pub fn envs<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        mut self,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Spawn {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Prints every `@` line as `[label] @line` on the parent's stdout as it is read (captured
    /// by libtest with the test's output, shown when it fails).
    #[must_use]
    pub fn echo(mut self) -> Spawn {
        self.echo = true;
        self
    }

    /// Gives it a stdin pipe, for [`Instance::send`].
    #[must_use]
    pub fn stdin(mut self) -> Spawn {
        self.stdin = true;
        self
    }

    /// Where its stderr goes.
    #[must_use]
    pub fn stderr(mut self, stderr: Stderr) -> Spawn {
        self.stderr = stderr;
        self
    }

    /// Starts it.
    ///
    /// # Panics
    /// When the test binary cannot be started.
    #[must_use]
    pub fn start(self) -> Instance {
        let exe = std::env::current_exe().expect("the test binary");
        let mut cmd = Command::new(exe);
        cmd.args(["--exact", &self.test, "--nocapture", "--test-threads=1"]);
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("BREAKER_")) {
                cmd.env_remove(k);
            }
        }
        cmd.env(&self.role_var, &self.role);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd.stdout(Stdio::piped());
        cmd.stdin(if self.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stderr(match self.stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::Null => Stdio::null(),
            Stderr::Capture => Stdio::piped(),
        });
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("[{}] cannot start: {e}", self.label));
        let shared = Arc::new(Shared::default());
        let stdout = child.stdout.take().expect("a stdout pipe");
        let sink = shared.clone();
        let (label, echo) = (self.label.clone(), self.echo);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find('@') {
                    let text = line[at..].trim().to_owned();
                    if echo {
                        println!("[{label}] {text}");
                    }
                    sink.record().lines.push(Line {
                        at: Instant::now(),
                        text,
                    });
                    sink.changed.notify_all();
                }
            }
            sink.record().ended = true;
            sink.changed.notify_all();
        });
        let stderr = child.stderr.take().map(|mut err| {
            let sink = shared.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    sink.record()
                        .stderr
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            })
        });
        Instance {
            label: self.label,
            stdin: child.stdin.take(),
            child,
            shared,
            readers: [Some(reader), stderr],
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    record: Mutex<Record>,
    /// Signalled on every new line and at the end of stdout.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct Record {
    lines: Vec<Line>,
    /// The lines before it were consumed by `expect` or `lines_until`.
    cursor: usize,
    /// The child's stdout ended.
    ended: bool,
    stderr: String,
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One child process: see the [module documentation](self). SIGKILLed when dropped.
#[derive(Debug)]
pub struct Instance {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    /// The stdout reader and the stderr reader (when captured).
    readers: [Option<JoinHandle<()>>; 2],
}

/// Everything a child printed, once it has ended ([`Instance::finish`]).
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// Its `@` lines.
    pub lines: Vec<Line>,
    /// Its stderr, when captured ([`Stderr::Capture`]); empty otherwise.
    pub stderr: String,
}

impl Instance {
    /// Its label.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `within` for `found` to find something among every `@` line so far (it is
    /// asked again at every new line); `None` when the time is up or the child's stdout ended
    /// without it.
    pub fn wait_until<T>(
        &self,
        within: Duration,
        mut found: impl FnMut(&[Line]) -> Option<T>,
    ) -> Option<T> {
        self.wait_record(within, |r| found(&r.lines))
    }

    fn wait_record<T>(
        &self,
        within: Duration,
        mut found: impl FnMut(&mut Record) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + within;
        let mut record = self.shared.record();
        loop {
            if let Some(t) = found(&mut record) {
                return Some(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if record.ended || left.is_zero() {
                return None;
            }
            record = self
                .shared
                .changed
                .wait_timeout(record, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Every line after the last one consumed, up to and with the next `@tag`, consumed; panics
    /// (with the last lines) when none comes within `within`.
    pub fn lines_until(&self, tag: &str, within: Duration) -> Vec<Line> {
        let got = self.wait_record(within, |r| {
            let from = r.cursor;
            let i = r.lines[from..].iter().position(|l| l.is(tag))?;
            r.cursor = from + i + 1;
            Some(r.lines[from..r.cursor].to_vec())
        });
        got.unwrap_or_else(|| self.missing(tag, within))
    }

    /// The next unconsumed `@tag` line, consumed with the lines before it; panics (with the
    /// last lines) when none comes within `within`.
    pub fn expect(&self, tag: &str, within: Duration) -> Line {
        self.lines_until(tag, within).pop().expect("the line found")
    }

    /// The next unconsumed line, whatever its tag, consumed; panics when none comes within
    /// `within`.
    pub fn next_line(&self, within: Duration) -> Line {
        let got = self.wait_record(within, |r| {
            let line = r.lines.get(r.cursor)?.clone();
            r.cursor += 1;
            Some(line)
        });
        got.unwrap_or_else(|| self.missing("(any line)", within))
    }

    fn missing(&self, tag: &str, within: Duration) -> ! {
        let ended = self.shared.record().ended;
        panic!(
            "[{}] no `@{tag}` within {within:?}{}; last lines: {:#?}{}",
            self.label,
            if ended { " (its stdout ended)" } else { "" },
            self.tail(12),
            self.stderr_note()
        )
    }

    /// The first `@tag` line read at or after `since`, consumed or not; panics (with the last
    /// lines) when none comes within `within`.
    pub fn expect_since(&self, tag: &str, since: Instant, within: Duration) -> Line {
        self.wait_until(within, |lines| {
            lines.iter().find(|l| l.at >= since && l.is(tag)).cloned()
        })
        .unwrap_or_else(|| self.missing(tag, within))
    }

    /// Every `@` line so far, consumed or not.
    #[must_use]
    pub fn lines(&self) -> Vec<Line> {
        self.shared.record().lines.clone()
    }

    /// The texts of the last `n` lines, for messages.
    #[must_use]
    pub fn tail(&self, n: usize) -> Vec<String> {
        let record = self.shared.record();
        let from = record.lines.len().saturating_sub(n);
        record.lines[from..]
            .iter()
            .map(|l| l.text.clone())
            .collect()
    }

    /// Its stderr so far, when captured.
    #[must_use]
    pub fn stderr(&self) -> String {
        self.shared.record().stderr.clone()
    }

    fn stderr_note(&self) -> String {
        let err = self.stderr();
        if err.is_empty() {
            String::new()
        } else {
            format!("\nstderr:\n{err}")
        }
    }

    /// Writes `line` and a newline to its stdin ([`Spawn::stdin`]).
    ///
    /// # Panics
    /// Without a stdin pipe, or when the write fails.
    pub fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("spawned with .stdin()");
        writeln!(stdin, "{line}").unwrap_or_else(|e| panic!("[{}] stdin: {e}", self.label));
    }

    /// SIGKILLs it now and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for it to end, asserts that it passed, and returns everything it printed.
    ///
    /// # Panics
    /// When it failed (with its last lines and its captured stderr).
    pub fn finish(mut self) -> Transcript {
        drop(self.stdin.take());
        let status = self.child.wait().expect("waiting for the child");
        for reader in self.readers.iter_mut().filter_map(Option::take) {
            let _ = reader.join();
        }
        assert!(
            status.success(),
            "[{}] failed: {status}; last lines: {:#?}{}",
            self.label,
            self.tail(12),
            self.stderr_note()
        );
        let record = self.shared.record();
        Transcript {
            lines: record.lines.clone(),
            stderr: record.stderr.clone(),
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Holds a process (by pid: an [`Instance`], a `redis-server`) under SIGSTOP; SIGCONT when
/// dropped, even when the test fails.
#[derive(Debug)]
pub struct Stopped {
    pid: String,
}

impl Stopped {
    /// Sends SIGSTOP to `pid`.
    ///
    /// # Panics
    /// When `kill -STOP` fails.
    #[must_use]
    pub fn new(pid: u32) -> Stopped {
        let pid = pid.to_string();
        assert!(signal("-STOP", &pid), "kill -STOP {pid}");
        Stopped { pid }
    }

    /// Sends SIGCONT now.
    ///
    /// # Panics
    /// When `kill -CONT` fails.
    pub fn resume(self) {
        let pid = self.pid.clone();
        std::mem::forget(self);
        assert!(signal("-CONT", &pid), "kill -CONT {pid}");
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = signal("-CONT", &self.pid);
    }
}

fn signal(sig: &str, pid: &str) -> bool {
    Command::new("kill")
        .args([sig, pid])
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the parent tests of this binary one at a time (hold the guard for the test's length):
/// each starts servers and several processes, and their time bounds are about the fleet, not
/// about a machine saturated by the other tests.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A scratch directory of the parent's for the files that steer its children (down, go,
/// stop files...), empty when made and removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    /// `<temp>/breaker-<name>-<pid>-<n>`, `n` counting the scratch directories of this process.
    ///
    /// # Panics
    /// When it cannot be made.
    #[must_use]
    pub fn new(name: &str) -> Scratch {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("breaker-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch { dir }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of file `name` in it.
    #[must_use]
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The path of file `name` in it, as text (for a child's environment).
    #[must_use]
    pub fn path_str(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// Creates file `name` (empty).
    pub fn touch(&self, name: &str) {
        touch(&self.path(name));
    }

    /// Removes file `name`, if it exists.
    pub fn remove(&self, name: &str) {
        remove(&self.path(name));
    }

    /// Writes `content` into file `name` at once: through a temporary file and a rename, so a
    /// child polling it never reads it half written.
    ///
    /// # Panics
    /// When it cannot be written.
    pub fn publish(&self, name: &str, content: &str) {
        let tmp = self.path(&format!("{name}.tmp"));
        std::fs::write(&tmp, content).expect("writing a scratch file");
        std::fs::rename(&tmp, self.path(name)).expect("renaming a scratch file");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Creates the (empty) file `path`.
///
/// # Panics
/// When it cannot be written.
pub fn touch(path: &Path) {
    std::fs::write(path, b"").unwrap_or_else(|e| panic!("touch {}: {e}", path.display()));
}

/// Removes the file `path`, if it exists.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

// ---------------------------------------------------------------------------------------------
// The child side, and both.
// ---------------------------------------------------------------------------------------------

/// The role the parent gave this process in `role_var`; `None` in a test run that is no child
/// (the child test then returns at once).
#[must_use]
pub fn role(role_var: &str) -> Option<String> {
    std::env::var(role_var).ok()
}

/// Runs a child's body on a current-thread runtime with every driver enabled.
///
/// # Panics
/// When the runtime cannot be built.
pub fn run<F: Future>(body: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(body)
}

/// Prints `@tag rest` (`@tag` when `rest` is empty) on one line of stdout and flushes it.
pub fn report(tag: &str, rest: impl Display) {
    let rest = rest.to_string();
    let mut out = std::io::stdout().lock();
    let _ = if rest.is_empty() {
        writeln!(out, "@{tag}")
    } else {
        writeln!(out, "@{tag} {rest}")
    };
    let _ = out.flush();
}

/// Waits (polling every ms, without blocking the runtime) until `path` exists.
///
/// # Panics
/// When it does not within `within`.
pub async fn wait_for_file(path: &Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "no {} within {within:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Milliseconds since the Unix epoch: the wall clock that parent and children share.
#[must_use]
pub fn unix_ms() -> u128 {
    since_epoch().as_millis()
}

/// Microseconds since the Unix epoch.
#[must_use]
pub fn unix_micros() -> u128 {
    since_epoch().as_micros()
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
}
