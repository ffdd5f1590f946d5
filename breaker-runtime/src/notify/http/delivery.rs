//! Delivery: a bounded queue and one worker thread per notifier, retries with backoff, redaction
//! of secrets in what is logged.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::REDACTED;
use super::format::{Format, body, error_text, wanted};
use crate::notify::worker::Worker;
use crate::notify::{Event, EventKind};

/// Events a notifier's worker holds while it is busy; more are dropped.
pub(super) const QUEUE: usize = 1024;

pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) const FIRST_BACKOFF: Duration = Duration::from_millis(200);

pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(super) const ATTEMPTS: u32 = 6;

/// Where and how one notifier sends.
pub(super) struct Target {
    /// `webhook` or `telegram`, for logs and the thread's name.
    pub(super) channel: &'static str,
    pub(super) url: Url,
    /// The URL as it may be shown.
    pub(super) shown: String,
    /// Strings that must never be shown.
    pub(super) secrets: Vec<String>,
    pub(super) format: Format,
}

impl Target {
    pub(super) fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), REDACTED))
    }
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) dropped: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) delivered: AtomicU64,
}

pub(super) struct Delivery {
    pub(super) target: Arc<Target>,
    pub(super) stats: Arc<Stats>,
    /// The queue, and the thread started with the first alert.
    pub(super) worker: Worker<Box<Event>>,
}

impl Delivery {
    pub(super) fn new(target: Target) -> Self {
        Delivery {
            target: Arc::new(target),
            stats: Arc::default(),
            worker: Worker::new(QUEUE),
        }
    }

    /// Queues `event` if it is an alert; never blocks.
    pub(super) fn push(&self, event: &Event) {
        if !wanted(event) {
            return;
        }
        let receipt = match &event.kind {
            EventKind::Alert(a) => a.receipt.clone(),
            _ => None,
        };
        if let Some(r) = &receipt {
            r.take();
        }
        let target = Arc::clone(&self.target);
        let stats = Arc::clone(&self.stats);
        let queued = self
            .worker
            .try_push(
                Box::new(event.clone()),
                || format!("breaker-{}", self.target.channel),
                move || worker(target, stats),
            )
            .is_ok();
        if !queued {
            if let Some(r) = &receipt {
                r.lost();
                r.done();
            }
            let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Once per power of two: a flood of alerts into a dead receiver must not flood logs.
            if dropped.is_power_of_two() {
                tracing::warn!(
                    notifier = self.target.channel,
                    breaker = event.breaker,
                    dropped,
                    "alert queue full (the receiver is slow or down); alert dropped"
                );
            }
        }
    }

    pub(super) fn flush(&self, timeout: Duration) -> bool {
        self.worker.flush(timeout)
    }
}

/// The delivery thread's handler: one HTTP client, each event sent with retries.
fn worker(target: Arc<Target>, stats: Arc<Stats>) -> impl FnMut(Box<Event>) {
    let client = Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("breaker-runtime/", env!("CARGO_PKG_VERSION")))
        // A redirect would be logged with its URLs (secrets included) and turns a POST into a
        // GET on 301/302: receivers are expected to answer where they are configured.
        .redirect(reqwest::redirect::Policy::none())
        .build();
    let client = match client {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(
                notifier = target.channel,
                error = %target.redact(&error_chain(&e.without_url())),
                "cannot build the HTTP client; alerts are not delivered"
            );
            None
        }
    };
    move |event| match &client {
        Some(client) => deliver(client, &target, &event, &stats),
        None => {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

pub(super) enum Outcome {
    Delivered,
    /// Worth another try, after at least this long if the receiver said so.
    Retry(String, Option<Duration>),
    GiveUp(String),
}

/// Delivers one event, then tells its receipt (if any): done when the receiver answered 2xx
/// or refused it for good, lost when it stayed unreachable (another instance tries later).
pub(super) fn deliver(client: &Client, target: &Target, event: &Event, stats: &Stats) {
    let receipt = match &event.kind {
        EventKind::Alert(a) => a.receipt.clone(),
        _ => None,
    };
    let outcome = deliver_body(client, target, event, stats);
    if let Some(r) = receipt {
        if outcome == Sent::Unreachable {
            r.lost();
        }
        r.done();
    }
}

#[derive(PartialEq, Eq)]
pub(super) enum Sent {
    Delivered,
    Refused,
    Unreachable,
}

pub(super) fn deliver_body(client: &Client, target: &Target, event: &Event, stats: &Stats) -> Sent {
    let Some(body) = body(&target.format, event) else {
        return Sent::Delivered;
    };
    let kind = match &event.kind {
        EventKind::Alert(a) => a.kind.as_str(),
        EventKind::StoreHealth { healthy: true, .. } => "store_up",
        _ => "store_down",
    };
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let (error, retry_after) = match send(client, target, &body) {
            Outcome::Delivered => {
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                return Sent::Delivered;
            }
            Outcome::Retry(error, retry_after) if attempt < ATTEMPTS => (error, retry_after),
            outcome @ (Outcome::Retry(..) | Outcome::GiveUp(_)) => {
                let (sent, error) = match outcome {
                    Outcome::GiveUp(error) => (Sent::Refused, error),
                    Outcome::Retry(error, _) => (Sent::Unreachable, error),
                    Outcome::Delivered => (Sent::Delivered, String::new()),
                };
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    notifier = target.channel,
                    url = %target.shown,
                    breaker = event.breaker,
                    kind,
                    attempts = attempt,
                    error = %error,
                    "alert not delivered; giving up on it"
                );
                return sent;
            }
        };
        let wait = retry_after.map_or(backoff, |r| r.clamp(backoff, MAX_BACKOFF));
        tracing::debug!(
            notifier = target.channel,
            url = %target.shown,
            breaker = event.breaker,
            kind,
            attempt,
            error = %error,
            retry_in = ?wait,
            "alert delivery failed; will retry"
        );
        std::thread::sleep(wait);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    // Unreachable: the last attempt returns above.
    Sent::Unreachable
}

pub(super) fn send(client: &Client, target: &Target, body: &[u8]) -> Outcome {
    let sent = client
        .post(target.url.clone())
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send();
    match sent {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                // Read the (small) answer so the connection can be reused.
                let _ = resp.bytes();
                return Outcome::Delivered;
            }
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let answer = resp.text().unwrap_or_default();
            // The receiver's words go to the logs: bounded, controls written out.
            let answer = error_text(answer.trim());
            let error = if answer.is_empty() {
                format!("HTTP {status}")
            } else {
                target.redact(&format!("HTTP {status}: {answer}"))
            };
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Outcome::Retry(error, retry_after)
            } else {
                Outcome::GiveUp(error)
            }
        }
        Err(e) => {
            let e = e.without_url();
            let error = target.redact(&error_chain(&e));
            if e.is_builder() || e.is_redirect() {
                Outcome::GiveUp(error)
            } else {
                // Timeouts, refused or reset connections, DNS failures: the receiver may be back
                // in a moment.
                Outcome::Retry(error, None)
            }
        }
    }
}

/// The error and its sources (give it an error `without_url()`: the URL may hold a secret).
pub(super) fn error_chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            let _ = write!(s, ": {text}");
        }
        source = cause.source();
    }
    s
}
