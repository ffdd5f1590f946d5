//! What the service's test files share: the lock on the process-wide breakers, their reset, an
//! HTTP client and JSON answers. (Each test file is its own crate: not every one uses all.)
#![allow(dead_code)]

use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use breaker_examples::Limits;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Held by every test that searches or changes breakers: they are process-wide.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Clears everything an earlier test may have left on the process-wide breakers.
pub(crate) async fn fresh() {
    for h in breaker_runtime::breakers() {
        h.reset().await.expect("reset");
        h.inject(None, None).await.expect("clear the fault");
        if h.fallback().is_some() {
            h.swap(false).await.expect("unswap");
        }
        h.set_notice(None, None).await.expect("clear the notice");
        h.set_shadow(None).await.expect("the declared mode");
    }
}

/// The default limits without the per-client ones, for tests that act as one client far faster
/// than a person, with up to 200 connections at once (tests/limits.rs tests those limits).
pub(crate) fn unlimited() -> Limits {
    let defaults = Limits::default();
    Limits {
        search_rate: None,
        admin_rate: None,
        failed_logins: None,
        max_connections_per_client: defaults.max_connections,
        ..defaults
    }
}

/// An HTTP client (no proxy, a 10 s deadline), its connections from `local` when given.
pub(crate) fn client_from(local: Option<IpAddr>, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(local)
        .timeout(timeout)
        .build()
        .expect("an HTTP client")
}

/// An HTTP client (no proxy, a 10 s deadline).
pub(crate) fn client() -> reqwest::Client {
    client_from(None, Duration::from_secs(10))
}

/// The status, headers and JSON body of `response`; panics with the body when it is not JSON.
pub(crate) async fn read_all(response: reqwest::Response) -> (StatusCode, HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("reading the body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "a JSON body ({e}), got HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, headers, body)
}

/// The status and JSON body of `response`.
pub(crate) async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let (status, _, body) = read_all(response).await;
    (status, body)
}

/// The `address-search` binary as a command, without any inherited `BREAKER_*` variable or
/// `PORT` (each would change what it does: tokens, Redis, overrides, faults, alerts; a rejected
/// one stops its start), logging warnings only, with no input.
pub(crate) fn address_search() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_address-search"));
    command.env_remove("PORT");
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("BREAKER_") {
            command.env_remove(var);
        }
    }
    command.env("RUST_LOG", "warn").stdin(Stdio::null());
    command
}

/// The base URL `address-search` prints first (`address-search listening on URL`), read from its
/// `stdout`; the rest of its output is drained on a thread of its own, so the child never blocks
/// on a full pipe.
pub(crate) async fn listening_url(stdout: std::process::ChildStdout) -> String {
    use std::io::BufRead as _;
    let first = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let first = lines.next();
        std::thread::spawn(move || lines.for_each(drop));
        first
    })
    .await
    .expect("the reading task")
    .expect("a first line")
    .expect("a readable line");
    first
        .strip_prefix("address-search listening on ")
        .unwrap_or_else(|| panic!("the listening line, got {first:?}"))
        .to_owned()
}

/// A child process, killed (and waited for) when dropped, whether the test passed or panicked.
pub(crate) struct Killed(pub(crate) std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
