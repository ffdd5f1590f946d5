//! [`WebhookNotifier`]: alerts POSTed as JSON (feature `webhook`).

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Url;
use serde_json::{Value, json};

use super::delivery::{Delivery, Target};
use super::format::{Format, message};
use super::{ENV_WEBHOOK_URL, parse_http_url};
use crate::core::config::ConfigError;
use crate::core::machine::{Forced, State};
use crate::notify::instance::instance;
use crate::notify::{Event, EventKind, Notifier};

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
/// | `last_error` | the last error seen (for `chain_failed`: the fallback's), or `null` |
/// | `fallback` | the fallback now serving calls, as written in the attribute, or `null` |
/// | `forced` | `open` or `closed` when an operator forced the change, else `null` |
/// | `detail` | for store events, what the store reported; else `null` |
/// | `timestamp` | when, as RFC 3339 in UTC with milliseconds (`2026-03-21T09:30:00.125Z`) |
/// | `timestamp_ms` | the same, as milliseconds since the Unix epoch |
/// | `injected` | whether injected faults caused it (see [`Event::injected`]) |
/// | `instance` | `hostname:pid` of the process that sent it |
/// | `message` | a short human text, the one [`TelegramNotifier`] sends |
/// | `text` | the same text again, so Slack- and Mattermost-style incoming webhooks show it |
///
/// Delivery is off the call path: [`Notifier::notify`] only queues the event for this
/// notifier's own worker thread (1024 at most; more are dropped and counted, see `dropped`) and
/// returns. The worker sends one request at a time (2 s connect timeout, 5 s in all), retries
/// 5xx, 429 (honouring `Retry-After`), timeouts and connection failures with exponential backoff
/// (200 ms doubling, at most 10 s; 6 attempts in all), does not retry other answers (redirects
/// are not followed), and logs and counts (`failed`) what it gave up on. Only
/// [`EventKind::Alert`] and [`EventKind::StoreHealth`] events are sent; the others are ignored.
#[cfg(feature = "webhook")]
pub struct WebhookNotifier {
    delivery: Delivery,
}

#[cfg(feature = "webhook")]
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

#[cfg(feature = "webhook")]
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

#[cfg(feature = "webhook")]
impl Notifier for WebhookNotifier {
    fn notify(&self, event: &Event) {
        self.delivery.push(event);
    }

    fn flush(&self, timeout: Duration) -> bool {
        WebhookNotifier::flush(self, timeout)
    }
}

#[cfg(feature = "webhook")]
pub(super) fn webhook_json(event: &Event) -> Option<Value> {
    let text = message(event)?;
    let ms = unix_ms(event.at);
    let breaker = (!event.breaker.is_empty()).then_some(event.breaker);
    let mut doc = json!({
        "id": null,
        "breaker": breaker,
        "from": null,
        "to": null,
        "failures": null,
        "last_error": null,
        "fallback": null,
        "forced": null,
        "detail": null,
        "timestamp": rfc3339(ms),
        "timestamp_ms": ms,
        "injected": event.injected,
        "instance": instance(),
        "message": text,
        "text": text,
    });
    match &event.kind {
        EventKind::Alert(a) => {
            doc["id"] = json!(a.id);
            doc["kind"] = json!(a.kind.as_str());
            doc["from"] = json!(state_str(a.from));
            doc["to"] = json!(state_str(a.to));
            doc["failures"] = json!(a.failures);
            doc["last_error"] = json!(a.last_error);
            doc["fallback"] = json!(a.fallback);
            doc["forced"] = json!(a.forced.map(forced_str));
        }
        EventKind::StoreHealth { healthy, message } => {
            doc["kind"] = json!(if *healthy { "store_up" } else { "store_down" });
            doc["detail"] = json!(message);
        }
        _ => return None,
    }
    Some(doc)
}

#[cfg(feature = "webhook")]
pub(super) fn state_str(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half_open",
    }
}

#[cfg(feature = "webhook")]
pub(super) fn forced_str(forced: Forced) -> &'static str {
    match forced {
        Forced::Open => "open",
        Forced::Closed => "closed",
    }
}

#[cfg(feature = "webhook")]
pub(super) fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `ms` since the Unix epoch as RFC 3339 in UTC, with milliseconds.
#[cfg(feature = "webhook")]
pub(super) fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
#[cfg(feature = "webhook")]
pub(super) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// The URL's path and query (`/` at least).
#[cfg(feature = "webhook")]
pub(super) fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `scheme://host:port`, and `/…` when the URL has more (a path or query that may be secret).
#[cfg(feature = "webhook")]
pub(super) fn redacted_origin(url: &Url) -> String {
    let origin = url.origin().ascii_serialization();
    if path_and_query(url).len() > 1 {
        format!("{origin}/…")
    } else {
        origin
    }
}
