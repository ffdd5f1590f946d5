//! Built-in alert notifiers that deliver over HTTP: [`WebhookNotifier`] (feature `webhook`) posts
//! a JSON document, [`TelegramNotifier`] (feature `telegram`) sends a Telegram message.
//!
//! Both deliver only [`EventKind::Alert`] (a breaker opened, recovered, or its whole chain
//! failed) and [`EventKind::StoreHealth`] (an instance lost or regained the shared store); every
//! other event is ignored. HALF_OPEN is never alerted.
//!
//! Delivery is off the call path twice over: notifiers already run on the `breaker-notify`
//! thread, and [`Notifier::notify`] here only pushes the event onto a bounded queue (1024 events)
//! of the notifier's own worker thread and returns. A full queue drops the event and counts it
//! (`dropped()`). The worker sends one request at a time, each with a 2 s connect timeout and a
//! 5 s overall timeout; it retries server errors (5xx), 429, timeouts and connection failures
//! with exponential backoff (200 ms doubling, at most 10 s, honouring `Retry-After`, at most 6
//! attempts), does not retry other answers (nor follow redirects), and logs and counts
//! (`failed()`) what it gave up on.
//!
//! Secrets never reach a log line, an error or `Debug` output: the Telegram token is replaced by
//! `<redacted>` everywhere, and so are the path and query of a webhook URL (which often carry a
//! secret of their own).

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
#[cfg(feature = "webhook")]
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};

use crate::core::config::ConfigError;
use crate::core::machine::Forced;
#[cfg(feature = "webhook")]
use crate::core::machine::State;
use crate::notify::{AlertKind, Event, EventKind, Notifier};

/// Environment variable: the URL [`WebhookNotifier`] posts alerts to (feature `webhook`).
pub const ENV_WEBHOOK_URL: &str = "BREAKER_WEBHOOK_URL";
/// Environment variable: the Telegram bot token of [`TelegramNotifier`] (feature `telegram`).
pub const ENV_TELEGRAM_TOKEN: &str = "BREAKER_TELEGRAM_TOKEN";
/// Environment variable: the Telegram chat alerts go to, a numeric id or `@channel` (feature
/// `telegram`).
pub const ENV_TELEGRAM_CHAT: &str = "BREAKER_TELEGRAM_CHAT";
/// Environment variable: the Telegram Bot API's base URL (default `https://api.telegram.org`;
/// an `http://host:port/prefix` works too, for a local Bot API server or a test).
pub const ENV_TELEGRAM_API: &str = "BREAKER_TELEGRAM_API";

#[cfg(feature = "telegram")]
const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

/// Events a notifier's worker holds while it is busy; more are dropped.
const QUEUE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
const ATTEMPTS: u32 = 6;
/// Longest error text (from the breaker's function or a receiver) put into a message or a log.
const MAX_ERROR_CHARS: usize = 300;
/// Telegram refuses messages longer than 4096 characters.
#[cfg(feature = "telegram")]
const MAX_TELEGRAM_CHARS: usize = 4000;
const REDACTED: &str = "<redacted>";

/// The notifiers the variables `get` reads configure (see `runtime::env::alert_notifiers_from`).
pub(crate) fn from_vars(
    get: impl Fn(&str) -> Option<String>,
) -> (Vec<Arc<dyn Notifier>>, Vec<ConfigError>) {
    let var = |key: &str| {
        get(key)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let mut notifiers: Vec<Arc<dyn Notifier>> = Vec::new();
    let mut errors = Vec::new();

    if let Some(url) = var(ENV_WEBHOOK_URL) {
        #[cfg(feature = "webhook")]
        match WebhookNotifier::new(&url) {
            Ok(n) => notifiers.push(Arc::new(n)),
            Err(e) => errors.push(e),
        }
        #[cfg(not(feature = "webhook"))]
        {
            let _ = url;
            errors.push(ConfigError::new(
                ENV_WEBHOOK_URL,
                "is set, but breaker-runtime was built without its `webhook` feature: no webhook \
                 alerts are sent",
            ));
        }
    }

    match (var(ENV_TELEGRAM_TOKEN), var(ENV_TELEGRAM_CHAT)) {
        (None, None) => {}
        (Some(_), None) => errors.push(ConfigError::new(
            ENV_TELEGRAM_CHAT,
            "is not set, but `BREAKER_TELEGRAM_TOKEN` is: Telegram alerts need both (none are \
             sent)",
        )),
        (None, Some(_)) => errors.push(ConfigError::new(
            ENV_TELEGRAM_TOKEN,
            "is not set, but `BREAKER_TELEGRAM_CHAT` is: Telegram alerts need both (none are \
             sent)",
        )),
        #[cfg(feature = "telegram")]
        (Some(token), Some(chat)) => {
            let built =
                TelegramNotifier::new(&token, &chat).and_then(|n| match var(ENV_TELEGRAM_API) {
                    Some(api) => n.api(&api),
                    None => Ok(n),
                });
            match built {
                Ok(n) => notifiers.push(Arc::new(n)),
                Err(e) => errors.push(e),
            }
        }
        #[cfg(not(feature = "telegram"))]
        (Some(_), Some(_)) => errors.push(ConfigError::new(
            ENV_TELEGRAM_TOKEN,
            "is set, but breaker-runtime was built without its `telegram` feature: no Telegram \
             alerts are sent",
        )),
    }
    (notifiers, errors)
}

// ---------------------------------------------------------------------------------------------
// Webhook

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

// ---------------------------------------------------------------------------------------------
// Telegram

/// Sends every alert as a Telegram message through the Bot API's `sendMessage` (feature
/// `telegram`; from the environment: [`ENV_TELEGRAM_TOKEN`], [`ENV_TELEGRAM_CHAT`],
/// [`ENV_TELEGRAM_API`]).
///
/// Messages are plain text, one line each, for example:
///
/// ```text
/// 🔴 daum opened after 5 failures (last error: connection reset); juso now serves
/// 🟢 daum recovered
/// ⚠️ every provider failed behind daum (juso: 503 Service Unavailable)
/// ⚠️ Redis unreachable from web-1:4242; breakers decide locally (connection refused)
/// ```
///
/// with ` [injected]` at the end when injected faults caused the alert. The token is never
/// shown: not by `Debug`, not in errors, not in logs.
///
/// Delivery is off the call path: [`Notifier::notify`] only queues the event for this
/// notifier's own worker thread (1024 at most; more are dropped and counted, see `dropped`) and
/// returns. The worker sends one request at a time (2 s connect timeout, 5 s in all), retries
/// 5xx, 429 (honouring `Retry-After`), timeouts and connection failures with exponential backoff
/// (200 ms doubling, at most 10 s; 6 attempts in all), does not retry other answers (redirects
/// are not followed), and logs and counts (`failed`) what it gave up on. Only
/// [`EventKind::Alert`] and [`EventKind::StoreHealth`] events are sent; the others are ignored.
#[cfg(feature = "telegram")]
pub struct TelegramNotifier {
    token: String,
    chat: String,
    api: String,
    delivery: Delivery,
}

#[cfg(feature = "telegram")]
impl TelegramNotifier {
    /// A notifier sending to `chat` (a numeric chat id such as `-1001234567890`, or
    /// `@channelname`) with the bot `token`, through `https://api.telegram.org`. Its worker
    /// thread starts with the first alert.
    ///
    /// # Errors
    /// An empty or malformed token (the message never repeats it) or chat.
    pub fn new(token: &str, chat: &str) -> Result<Self, ConfigError> {
        Self::build(token.trim(), chat.trim(), DEFAULT_TELEGRAM_API)
    }

    /// Uses another Bot API server: `base` is its URL, `http` or `https`, with an optional path
    /// prefix (`http://127.0.0.1:8081/telegram` sends to
    /// `http://127.0.0.1:8081/telegram/bot<token>/sendMessage`).
    ///
    /// # Errors
    /// When `base` is not an absolute `http` or `https` URL without query or fragment.
    pub fn api(self, base: &str) -> Result<Self, ConfigError> {
        Self::build(&self.token, &self.chat, base.trim())
    }

    fn build(token: &str, chat: &str, api: &str) -> Result<Self, ConfigError> {
        check_token(token)?;
        let chat_id = parse_chat(chat)?;
        let base = parse_http_url(ENV_TELEGRAM_API, api)?;
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ConfigError::new(
                ENV_TELEGRAM_API,
                "must not have a query or fragment: give the base URL the Bot API paths are \
                 appended to",
            ));
        }
        let base = base.as_str().trim_end_matches('/').to_owned();
        let url = Url::parse(&format!("{base}/bot{token}/sendMessage")).map_err(|_| {
            ConfigError::new(
                ENV_TELEGRAM_API,
                "does not make a valid URL with the token appended",
            )
        })?;
        Ok(TelegramNotifier {
            token: token.to_owned(),
            chat: chat.to_owned(),
            api: base.clone(),
            delivery: Delivery::new(Target {
                channel: "telegram",
                url,
                shown: format!("{base}/bot{REDACTED}/sendMessage"),
                secrets: vec![token.to_owned()],
                format: Format::Telegram { chat_id },
            }),
        })
    }

    /// Alerts dropped because the queue was full (or the worker thread could not start).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.delivery.stats.dropped.load(Ordering::Relaxed)
    }

    /// Alerts given up on: refused by the Bot API, or still failing after every retry.
    #[must_use]
    pub fn failed(&self) -> u64 {
        self.delivery.stats.failed.load(Ordering::Relaxed)
    }

    /// Alerts the Bot API accepted (answered with a 2xx status).
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

#[cfg(feature = "telegram")]
impl fmt::Debug for TelegramNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TelegramNotifier")
            .field("api", &self.api)
            .field("chat", &self.chat)
            .field("token", &REDACTED)
            .field("dropped", &self.dropped())
            .field("failed", &self.failed())
            .field("delivered", &self.delivered())
            .finish()
    }
}

#[cfg(feature = "telegram")]
impl Notifier for TelegramNotifier {
    fn notify(&self, event: &Event) {
        self.delivery.push(event);
    }

    fn flush(&self, timeout: Duration) -> bool {
        TelegramNotifier::flush(self, timeout)
    }
}

#[cfg(feature = "telegram")]
fn check_token(token: &str) -> Result<(), ConfigError> {
    if token.is_empty() {
        return Err(ConfigError::new(ENV_TELEGRAM_TOKEN, "is empty"));
    }
    let ok = token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            ENV_TELEGRAM_TOKEN,
            "is not a Telegram bot token: expected `<bot id>:<secret>` made of letters, digits, \
             `_` and `-` (the value is not shown)",
        ))
    }
}

/// `chat_id` as Telegram takes it: an integer for a numeric id, else the `@channel` string.
#[cfg(feature = "telegram")]
fn parse_chat(chat: &str) -> Result<Value, ConfigError> {
    if let Ok(id) = chat.parse::<i64>() {
        return Ok(Value::from(id));
    }
    let name = chat.strip_prefix('@').unwrap_or("");
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Ok(Value::from(chat));
    }
    Err(ConfigError::new(
        ENV_TELEGRAM_CHAT,
        if chat.is_empty() {
            "is empty".to_owned()
        } else {
            format!("`{chat}` is neither a numeric chat id nor an `@channel` name")
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// What is sent

/// How an event becomes a request body.
enum Format {
    #[cfg(feature = "webhook")]
    Webhook,
    #[cfg(feature = "telegram")]
    Telegram { chat_id: Value },
}

/// Whether the HTTP notifiers deliver this event.
fn wanted(event: &Event) -> bool {
    matches!(
        event.kind,
        EventKind::Alert(_) | EventKind::StoreHealth { .. }
    )
}

/// The request body for `event`, or `None` for an event these notifiers do not deliver.
fn body(format: &Format, event: &Event) -> Option<Vec<u8>> {
    let value = match format {
        #[cfg(feature = "webhook")]
        Format::Webhook => webhook_json(event)?,
        #[cfg(feature = "telegram")]
        Format::Telegram { chat_id } => {
            json!({ "chat_id": chat_id, "text": clip(&message(event)?, MAX_TELEGRAM_CHARS) })
        }
    };
    serde_json::to_vec(&value).ok()
}

#[cfg(feature = "webhook")]
fn webhook_json(event: &Event) -> Option<Value> {
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

/// The short human text of an alert, or `None` for an event these notifiers do not deliver.
fn message(event: &Event) -> Option<String> {
    let b = event.breaker;
    let mut s = String::new();
    match &event.kind {
        EventKind::Alert(a) => match a.kind {
            AlertKind::Opened => {
                let _ = write!(s, "🔴 {b} opened");
                if a.forced == Some(Forced::Open) {
                    s.push_str(" by an operator");
                } else if a.failures > 0 {
                    let plural = if a.failures == 1 { "" } else { "s" };
                    let _ = write!(s, " after {} failure{plural}", a.failures);
                }
                if let Some(e) = &a.last_error {
                    let _ = write!(s, " (last error: {})", clip(e, MAX_ERROR_CHARS));
                }
                match a.fallback {
                    Some(f) => {
                        let _ = write!(s, "; {f} now serves");
                    }
                    None => s.push_str("; calls are rejected"),
                }
            }
            AlertKind::Recovered => {
                let _ = write!(s, "🟢 {b} recovered");
                if a.forced == Some(Forced::Closed) {
                    s.push_str(" (forced closed by an operator)");
                }
            }
            AlertKind::StoreReset => {
                let _ = write!(
                    s,
                    "♻️ Redis lost the state of {b} (restarted, restored from an older snapshot, \
                     failed over or flushed); the fleet's state was written back: {}",
                    a.to.as_str()
                );
            }
            AlertKind::ChainFailed => {
                let _ = write!(s, "⚠️ every provider failed behind {b}");
                match (a.fallback, &a.last_error) {
                    (Some(f), Some(e)) => {
                        let _ = write!(s, " ({f}: {})", clip(e, MAX_ERROR_CHARS));
                    }
                    (None, Some(e)) => {
                        let _ = write!(s, " (last error: {})", clip(e, MAX_ERROR_CHARS));
                    }
                    (Some(f), None) => {
                        let _ = write!(s, " ({f} failed too)");
                    }
                    (None, None) => {}
                }
            }
        },
        EventKind::StoreHealth { healthy, message } => {
            let inst = instance();
            if *healthy {
                let _ = write!(s, "🟢 Redis reachable again from {inst}");
            } else {
                let _ = write!(
                    s,
                    "⚠️ Redis unreachable from {inst}; breakers decide locally"
                );
                if !message.is_empty() {
                    let _ = write!(s, " ({})", clip(message, MAX_ERROR_CHARS));
                }
            }
        }
        _ => return None,
    }
    if event.injected {
        s.push_str(" [injected]");
    }
    Some(s)
}

#[cfg(feature = "webhook")]
fn state_str(state: State) -> &'static str {
    match state {
        State::Closed => "closed",
        State::Open => "open",
        State::HalfOpen => "half_open",
    }
}

#[cfg(feature = "webhook")]
fn forced_str(forced: Forced) -> &'static str {
    match forced {
        Forced::Open => "open",
        Forced::Closed => "closed",
    }
}

/// At most `max` characters of `s`, with `…` when cut.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

#[cfg(feature = "webhook")]
fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `ms` since the Unix epoch as RFC 3339 in UTC, with milliseconds.
#[cfg(feature = "webhook")]
fn rfc3339(ms: u64) -> String {
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
fn civil_from_days(days: u64) -> (u64, u64, u64) {
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

/// `hostname:pid` of this process.
fn instance() -> &'static str {
    static INSTANCE: OnceLock<String> = OnceLock::new();
    INSTANCE.get_or_init(|| format!("{}:{}", hostname(), std::process::id()))
}

fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .chain(
            ["HOSTNAME", "COMPUTERNAME"]
                .iter()
                .filter_map(|k| std::env::var(k).ok()),
        )
        .map(|h| h.trim().to_owned())
        .find(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

// ---------------------------------------------------------------------------------------------
// Delivery: a bounded queue and one worker thread per notifier

/// Where and how one notifier sends.
struct Target {
    /// `webhook` or `telegram`, for logs and the thread's name.
    channel: &'static str,
    url: Url,
    /// The URL as it may be shown.
    shown: String,
    /// Strings that must never be shown.
    secrets: Vec<String>,
    format: Format,
}

impl Target {
    fn redact(&self, text: &str) -> String {
        self.secrets
            .iter()
            .filter(|s| !s.is_empty())
            .fold(text.to_owned(), |t, s| t.replace(s.as_str(), REDACTED))
    }
}

#[derive(Default)]
struct Stats {
    dropped: AtomicU64,
    failed: AtomicU64,
    delivered: AtomicU64,
}

enum Msg {
    Event(Box<Event>),
    Flush(mpsc::Sender<()>),
}

struct Delivery {
    target: Arc<Target>,
    stats: Arc<Stats>,
    /// Started with the first alert; `None` when the thread could not be started.
    tx: OnceLock<Option<SyncSender<Msg>>>,
}

impl Delivery {
    fn new(target: Target) -> Self {
        Delivery {
            target: Arc::new(target),
            stats: Arc::default(),
            tx: OnceLock::new(),
        }
    }

    fn sender(&self) -> Option<&SyncSender<Msg>> {
        self.tx
            .get_or_init(|| {
                let (tx, rx) = mpsc::sync_channel(QUEUE);
                let target = Arc::clone(&self.target);
                let stats = Arc::clone(&self.stats);
                std::thread::Builder::new()
                    .name(format!("breaker-{}", self.target.channel))
                    .spawn(move || run(&rx, &target, &stats))
                    .map_err(|e| {
                        tracing::error!(
                            notifier = self.target.channel,
                            error = %e,
                            "cannot start the alert delivery thread; alerts are dropped"
                        );
                    })
                    .ok()
                    .map(|_| tx)
            })
            .as_ref()
    }

    /// Queues `event` if it is an alert; never blocks.
    fn push(&self, event: &Event) {
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
        let queued = self
            .sender()
            .is_some_and(|tx| tx.try_send(Msg::Event(Box::new(event.clone()))).is_ok());
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

    fn flush(&self, timeout: Duration) -> bool {
        let Some(Some(tx)) = self.tx.get() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        let (done, wait) = mpsc::channel();
        let mut msg = Msg::Flush(done);
        loop {
            match tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return true,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }
}

fn run(rx: &Receiver<Msg>, target: &Target, stats: &Stats) {
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
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Event(event) => match &client {
                Some(client) => deliver(client, target, &event, stats),
                None => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
            },
            Msg::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

enum Outcome {
    Delivered,
    /// Worth another try, after at least this long if the receiver said so.
    Retry(String, Option<Duration>),
    GiveUp(String),
}

/// Delivers one event, then tells its receipt (if any): done when the receiver answered 2xx
/// or refused it for good, lost when it stayed unreachable (another instance tries later).
fn deliver(client: &Client, target: &Target, event: &Event, stats: &Stats) {
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
enum Sent {
    Delivered,
    Refused,
    Unreachable,
}

fn deliver_body(client: &Client, target: &Target, event: &Event, stats: &Stats) -> Sent {
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

fn send(client: &Client, target: &Target, body: &[u8]) -> Outcome {
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
            let answer = clip(answer.trim(), MAX_ERROR_CHARS);
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
fn error_chain(e: &reqwest::Error) -> String {
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

// ---------------------------------------------------------------------------------------------
// URLs

fn parse_http_url(setting: &'static str, raw: &str) -> Result<Url, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(setting, "is empty"));
    }
    let url = Url::parse(raw)
        .map_err(|e| ConfigError::new(setting, format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(
            setting,
            format!(
                "must be an `http` or `https` URL, not `{}`",
                clip(url.scheme(), 20)
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(setting, "has no host"));
    }
    Ok(url)
}

/// The URL's path and query (`/` at least).
#[cfg(feature = "webhook")]
fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// `scheme://host:port`, and `/…` when the URL has more (a path or query that may be secret).
#[cfg(feature = "webhook")]
fn redacted_origin(url: &Url) -> String {
    let origin = url.origin().ascii_serialization();
    if path_and_query(url).len() > 1 {
        format!("{origin}/…")
    } else {
        origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(vars: &[(&str, &str)]) -> (Vec<Arc<dyn Notifier>>, Vec<ConfigError>) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_configured_is_nothing() {
        let (n, e) = env(&[(ENV_WEBHOOK_URL, "  "), (ENV_TELEGRAM_API, "http://x")]);
        assert!(n.is_empty() && e.is_empty(), "{n:?} {e:?}");
    }

    #[cfg(all(feature = "webhook", feature = "telegram"))]
    #[test]
    fn env_builds_both_and_reports_halves() {
        let (n, e) = env(&[
            (
                ENV_WEBHOOK_URL,
                "https://hooks.example.com/services/T0/B0/s3cr3t",
            ),
            (ENV_TELEGRAM_TOKEN, "123456:AAbb-cc_DD"),
            (ENV_TELEGRAM_CHAT, "-1001234"),
            (ENV_TELEGRAM_API, "http://127.0.0.1:9/prefix/"),
        ]);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(n.len(), 2);
        let shown = format!("{n:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("AAbb"),
            "{shown}"
        );
        assert!(shown.contains("https://hooks.example.com/…"), "{shown}");
        assert!(shown.contains("http://127.0.0.1:9/prefix"), "{shown}");

        let (n, e) = env(&[(ENV_TELEGRAM_TOKEN, "123456:AAbb")]);
        assert!(n.is_empty());
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].setting(), ENV_TELEGRAM_CHAT);
        let (n, e) = env(&[(ENV_TELEGRAM_CHAT, "@ops")]);
        assert!(n.is_empty());
        assert_eq!(e[0].setting(), ENV_TELEGRAM_TOKEN);

        let (n, e) = env(&[
            (ENV_WEBHOOK_URL, "hooks.example.com/x"),
            (ENV_TELEGRAM_TOKEN, "123456:AAbb"),
            (ENV_TELEGRAM_CHAT, "@ops"),
            (ENV_TELEGRAM_API, "ftp://x"),
        ]);
        assert!(n.is_empty());
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(e[0].setting(), ENV_WEBHOOK_URL);
        assert_eq!(e[1].setting(), ENV_TELEGRAM_API);
        assert!(!format!("{e:?}").contains("AAbb"));
    }

    #[cfg(feature = "telegram")]
    #[test]
    fn telegram_config_errors_never_show_the_token() {
        for token in ["123:ab/cd", "123:ab cd", "123:ab?x", "123:ab#x"] {
            let e = TelegramNotifier::new(token, "1").unwrap_err();
            assert_eq!(e.setting(), ENV_TELEGRAM_TOKEN);
            assert!(!e.to_string().contains("ab"), "{e}");
        }
        assert!(TelegramNotifier::new("", "1").is_err());
        assert!(TelegramNotifier::new("1:a", "").is_err());
        assert!(TelegramNotifier::new("1:a", "ops").is_err());
        assert!(TelegramNotifier::new("1:a", "@").is_err());
        let make = || TelegramNotifier::new("1:SeCrEt", "@ops").unwrap();
        for bad in [
            "",
            "not a url",
            "/relative",
            "ftp://x",
            "http://x/?q=1",
            "http://x/#f",
        ] {
            let e = make().api(bad).unwrap_err();
            assert_eq!(e.setting(), ENV_TELEGRAM_API, "{bad}");
            assert!(!e.to_string().contains("SeCrEt"), "{e}");
        }
        let n = make().api("http://127.0.0.1:8/p/").unwrap();
        assert_eq!(
            n.delivery.target.url.as_str(),
            "http://127.0.0.1:8/p/bot1:SeCrEt/sendMessage"
        );
        assert_eq!(
            n.delivery.target.shown,
            "http://127.0.0.1:8/p/bot<redacted>/sendMessage"
        );
        assert_eq!(
            n.delivery.target.redact("x /p/bot1:SeCrEt/sendMessage"),
            "x /p/bot<redacted>/sendMessage"
        );
    }

    #[cfg(feature = "webhook")]
    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn clip_counts_characters() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé…");
    }
}
