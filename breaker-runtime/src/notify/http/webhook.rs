//! [`WebhookNotifier`]: alerts POSTed as JSON (feature `webhook`).

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Url;

use super::delivery::{Delivery, Target};
use super::format::Format;
use super::{ENV_WEBHOOK_URL, parse_http_url};
use crate::core::config::ConfigError;
use crate::notify::{Event, Notifier};

/// Posts every alert as a JSON document to a URL (feature `webhook`; from the environment:
/// [`ENV_WEBHOOK_URL`]).
///
/// The body (`Content-Type: application/json`) has these fields:
///
/// | field | value |
/// | --- | --- |
/// | `breaker` | the breaker's name; `null` for a store event not tied to one breaker |
/// | `kind` | `opened`, `recovered`, `chain_failed`, `store_down` or `store_up` |
/// | `from`, `to` | `closed`, `open` or `half_open`; `null` for store events |
/// | `failures` | failures that opened the breaker (0 if not counted); `null` for store events |
/// | `last_error` | the last error seen (for `chain_failed`: the fallback's) as it is, cut to 300 characters (then `…`), or `null` |
/// | `fallback` | the fallback now serving calls, as written in the attribute, or `null` |
/// | `forced` | `open` or `closed` when an operator forced the change, else `null` |
/// | `detail` | for store events, what the store reported (300 characters at most); else `null` |
/// | `timestamp` | when, as RFC 3339 in UTC with milliseconds (`2026-03-21T09:30:00.125Z`) |
/// | `timestamp_ms` | the same, as milliseconds since the Unix epoch |
/// | `injected` | whether injected faults caused it (see [`Event::injected`]) |
/// | `instance` | `hostname:pid` of the process that sent it |
/// | `message` | a short human text, the one [`TelegramNotifier`](crate::notify::http::TelegramNotifier) sends, with `&`, `<`, `>` escaped as `&amp;`, `&lt;`, `&gt;` |
/// | `text` | the same text again, so Slack- and Mattermost-style incoming webhooks show it |
///
/// The human text quotes errors from providers, which may hold anything: in it an error is cut
/// to 300 characters, its control and bidirectional characters are written out (`\u{1b}`),
/// and `&`, `<`, `>` are escaped as Slack reads them, so an error saying `<!channel>` pings
/// nobody (other receivers show the entities or, rendering HTML, the characters).
///
/// Delivery is off the call path: [`Notifier::notify`] only queues the event for this
/// notifier's own worker thread (1024 at most; more are dropped and counted, see `dropped`) and
/// returns. The worker sends one request at a time (2 s connect timeout, 5 s in all), retries
/// 5xx, 429 (honouring `Retry-After`), timeouts and connection failures with exponential backoff
/// (200 ms doubling, at most 10 s; 6 attempts in all), does not retry other answers (redirects
/// are not followed), and logs and counts (`failed`) what it gave up on. Only
/// [`EventKind::Alert`](crate::notify::EventKind::Alert) and [`EventKind::StoreHealth`](crate::notify::EventKind::StoreHealth) events are sent; the others are ignored.
pub struct WebhookNotifier {
    delivery: Delivery,
}

impl WebhookNotifier {
    /// A notifier posting to `url` (`http` or `https`). Its worker thread starts with the first
    /// alert.
    ///
    /// # Errors
    /// When `url` is not an absolute `http` or `https` URL. The message never repeats the URL,
    /// which may carry a secret.
    pub fn new(url: &str) -> Result<Self, ConfigError> {
        let url = parse_http_url(ENV_WEBHOOK_URL, url.trim())?;
        let mut secrets = Vec::new();
        let tail = path_and_query(&url);
        if tail.len() > 1 {
            secrets.push(tail);
        }
        if let Some(pw) = url.password() {
            secrets.push(pw.to_owned());
        }
        let shown = redacted_origin(&url);
        Ok(WebhookNotifier {
            delivery: Delivery::new(Target {
                channel: "webhook",
                url,
                shown,
                secrets,
                format: Format::Webhook,
            }),
        })
    }

    /// Alerts dropped because the queue was full (or the worker thread could not start).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.delivery.stats.dropped.load(Ordering::Relaxed)
    }

    /// Alerts given up on: refused by the receiver, or still failing after every retry.
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.delivery.stats.failed.load(Ordering::Relaxed)
    }

    /// Alerts the receiver accepted (answered with a 2xx status).
    #[must_use]
    pub fn delivered(&self) -> u64 {
        self.delivery.stats.delivered.load(Ordering::Relaxed)
    }

    /// Waits until every alert queued before this call has been delivered or given up on, or
    /// until `timeout` passes; returns whether it finished in time. For tests and orderly
    /// shutdown.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.delivery.flush(timeout)
    }
}

impl fmt::Debug for WebhookNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookNotifier")
            .field("url", &self.delivery.target.shown)
            .field("dropped", &self.dropped())
            .field("failed", &self.failed())
            .field("delivered", &self.delivered())
            .finish()
    }
}

impl Notifier for WebhookNotifier {
    fn notify(&self, event: &Event) {
        self.delivery.push(event);
    }

    fn flush(&self, timeout: Duration) -> bool {
        WebhookNotifier::flush(self, timeout)
    }
}

/// The URL's path and query (`/` at least).
pub(super) fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `scheme://host:port`, and `/…` when the URL has more (a path or query that may be secret).
pub(super) fn redacted_origin(url: &Url) -> String {
    let origin = url.origin().ascii_serialization();
    if path_and_query(url).len() > 1 {
        format!("{origin}/…")
    } else {
        origin
    }
}
