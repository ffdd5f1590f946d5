//! [`TelegramNotifier`]: alerts sent as Telegram messages (feature `telegram`).

use std::fmt;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;

use super::delivery::{Delivery, Target};
use super::format::Format;
use super::{ENV_TELEGRAM_API, ENV_TELEGRAM_CHAT, ENV_TELEGRAM_TOKEN, REDACTED, parse_http_url};
use crate::core::config::ConfigError;
use crate::notify::{Event, Notifier};

pub(super) const DEFAULT_TELEGRAM_API: &str = "https://api.telegram.org";

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
/// with ` [injected]` at the end when injected faults caused the alert. Plain text (no
/// `parse_mode`), so nothing in it is markup; errors in it are cut to 300 characters, with
/// control and bidirectional characters written out (`\u{1b}`). The token is never shown: not
/// by `Debug`, not in errors, not in logs.
///
/// Delivery is off the call path: [`Notifier::notify`] only queues the event for this
/// notifier's own worker thread (1024 at most; more are dropped and counted, see `dropped`) and
/// returns. The worker sends one request at a time (2 s connect timeout, 5 s in all), retries
/// 5xx, 429 (honouring `Retry-After`), timeouts and connection failures with exponential backoff
/// (200 ms doubling, at most 10 s; 6 attempts in all), does not retry other answers (redirects
/// are not followed), and logs and counts (`failed`) what it gave up on. Only
/// [`EventKind::Alert`](crate::notify::EventKind::Alert) and [`EventKind::StoreHealth`](crate::notify::EventKind::StoreHealth) events are sent; the others are ignored.
pub struct TelegramNotifier {
    token: String,
    chat: String,
    api: String,
    pub(super) delivery: Delivery,
}

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

    /// Uses another Bot API server: `base` is its URL, with an optional path prefix
    /// (`https://tg.example.com/telegram` sends to
    /// `https://tg.example.com/telegram/bot<token>/sendMessage`). The token travels in the
    /// path, so the URL must be `https`, except on this machine: plain `http` is accepted for
    /// `localhost`, 127.0.0.0/8 and `[::1]` (a local Bot API server, a test). Credentials in it
    /// (`https://user:password@host`) are never shown.
    ///
    /// # Errors
    /// When `base` is not an absolute `https` URL (or `http` on loopback) without query or
    /// fragment.
    pub fn api(self, base: &str) -> Result<Self, ConfigError> {
        Self::build(&self.token, &self.chat, base.trim())
    }

    fn build(token: &str, chat: &str, api: &str) -> Result<Self, ConfigError> {
        check_token(token)?;
        let chat_id = parse_chat(chat)?;
        let base = parse_http_url(ENV_TELEGRAM_API, api)?;
        if base.scheme() != "https" && !is_loopback(&base) {
            return Err(ConfigError::new(
                ENV_TELEGRAM_API,
                "must be an `https` URL: the bot token travels in its path (plain `http` only \
                 to this machine: `localhost`, 127.0.0.0/8, `[::1]`)",
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ConfigError::new(
                ENV_TELEGRAM_API,
                "must not have a query or fragment: give the base URL the Bot API paths are \
                 appended to",
            ));
        }
        // Secrets: the token, and the base's password (a proxy's, say), alone and with its
        // user, as a URL in an error would quote them.
        let mut secrets = vec![token.to_owned()];
        if let Some(pw) = base.password() {
            secrets.push(format!("{}:{pw}", base.username()));
            secrets.push(pw.to_owned());
        }
        let shown_base = without_userinfo(&base);
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
            api: shown_base.clone(),
            delivery: Delivery::new(Target {
                channel: "telegram",
                url,
                shown: format!("{shown_base}/bot{REDACTED}/sendMessage"),
                secrets,
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

impl Notifier for TelegramNotifier {
    fn notify(&self, event: &Event) {
        self.delivery.push(event);
    }

    fn flush(&self, timeout: Duration) -> bool {
        TelegramNotifier::flush(self, timeout)
    }
}

/// Whether `url` points at this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
pub(super) fn is_loopback(url: &Url) -> bool {
    // The URL parser has normalised the host: lowercase names, `127.1` as `127.0.0.1`, IPv6
    // in brackets.
    url.host_str().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// `url` without a trailing `/`, its user and password (if any) replaced by `<redacted>`: what
/// `Debug` and the logs show of the base.
pub(super) fn without_userinfo(url: &Url) -> String {
    let mut shown = url.clone();
    let had = !shown.username().is_empty() || shown.password().is_some();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    let shown = shown.as_str().trim_end_matches('/');
    if had {
        shown.replacen("://", &format!("://{REDACTED}@"), 1)
    } else {
        shown.to_owned()
    }
}

pub(super) fn check_token(token: &str) -> Result<(), ConfigError> {
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
pub(super) fn parse_chat(chat: &str) -> Result<Value, ConfigError> {
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
