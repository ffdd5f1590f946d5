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
//! Secrets never reach a log line, an error or `Debug` output: the Telegram token and the
//! credentials of its API base (`https://user:password@…`) are replaced by `<redacted>`
//! everywhere, and so are the path and query of a webhook URL (which often carry a secret of
//! their own). HTTP errors are logged without their URL (`reqwest::Error::without_url`), and
//! whatever still quotes a secret is redacted.

mod delivery;
mod format;
#[cfg(feature = "telegram")]
mod telegram;
#[cfg(feature = "webhook")]
mod webhook;

use std::sync::Arc;

use reqwest::Url;

#[cfg(feature = "telegram")]
pub use telegram::TelegramNotifier;
#[cfg(feature = "webhook")]
pub use webhook::WebhookNotifier;

use crate::core::config::ConfigError;
use crate::core::text::clip;
use crate::notify::Notifier;

/// Environment variable: the URL [`WebhookNotifier`] posts alerts to (feature `webhook`).
pub const ENV_WEBHOOK_URL: &str = "BREAKER_WEBHOOK_URL";
/// Environment variable: the Telegram bot token of [`TelegramNotifier`] (feature `telegram`).
pub const ENV_TELEGRAM_TOKEN: &str = "BREAKER_TELEGRAM_TOKEN";
/// Environment variable: the Telegram chat alerts go to, a numeric id or `@channel` (feature
/// `telegram`).
pub const ENV_TELEGRAM_CHAT: &str = "BREAKER_TELEGRAM_CHAT";
/// Environment variable: the Telegram Bot API's base URL (default `https://api.telegram.org`),
/// `https://host[:port][/prefix]`; plain `http` only to this machine (`localhost`,
/// 127.0.0.0/8, `[::1]`: a local Bot API server, a test), since the bot token travels in the
/// path. Anything else is a configuration error naming the variable.
pub const ENV_TELEGRAM_API: &str = "BREAKER_TELEGRAM_API";

/// Longest error text (from the breaker's function or a receiver) put into a message or a log.
pub(super) const MAX_ERROR_CHARS: usize = 300;
pub(super) const REDACTED: &str = "<redacted>";

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

pub(super) fn parse_http_url(setting: &'static str, raw: &str) -> Result<Url, ConfigError> {
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

#[cfg(test)]
mod tests {
    #[cfg(feature = "webhook")]
    use super::format::rfc3339;
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

    #[cfg(feature = "telegram")]
    #[test]
    fn the_telegram_api_from_the_environment_must_be_https_off_this_machine() {
        let vars = |api: &'static str| {
            env(&[
                (ENV_TELEGRAM_TOKEN, "123456:AAbb"),
                (ENV_TELEGRAM_CHAT, "@ops"),
                (ENV_TELEGRAM_API, api),
            ])
        };
        let (n, e) = vars("http://api.example.com/bot-api");
        assert!(n.is_empty());
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].setting(), ENV_TELEGRAM_API);
        assert!(e[0].to_string().contains("`https`"), "{}", e[0]);
        for ok in [
            "https://api.example.com",
            "http://localhost:8081",
            "http://[::1]:1/p",
        ] {
            let (n, e) = vars(ok);
            assert!(e.is_empty() && n.len() == 1, "{ok}: {e:?}");
        }
        let n = TelegramNotifier::new("1:SeCrEt", "@ops")
            .unwrap()
            .api("https://u:p%40ss@tg.example.com:8443/p/")
            .unwrap();
        assert_eq!(
            n.delivery.target.shown,
            "https://<redacted>@tg.example.com:8443/p/bot<redacted>/sendMessage"
        );
        assert_eq!(
            n.delivery
                .target
                .redact("at https://u:p%40ss@tg.example.com/p/bot1:SeCrEt/x"),
            "at https://<redacted>@tg.example.com/p/bot<redacted>/x"
        );
    }

    #[cfg(feature = "webhook")]
    #[test]
    fn store_details_are_bounded_and_markup_escaped_in_the_text() {
        use crate::notify::{Event, EventKind};
        let event = Event {
            breaker: "",
            at: std::time::UNIX_EPOCH,
            kind: EventKind::StoreHealth {
                healthy: false,
                message: format!("<!here> \x1b{}", "z".repeat(5000)),
            },
            injected: false,
        };
        let doc = format::webhook_json(&event).unwrap();
        let detail = doc["detail"].as_str().unwrap();
        assert_eq!(detail.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(detail.starts_with("<!here> \x1b") && detail.ends_with("z…"));
        let text = doc["text"].as_str().unwrap();
        assert!(text.contains("(&lt;!here&gt; \\u{1b}zz"), "{text}");
        assert!(
            text.ends_with("z…)") && !text.contains(['<', '\x1b']),
            "{text}"
        );
    }

    #[cfg(feature = "webhook")]
    #[test]
    fn channel_wide_mentions_mention_nobody_in_the_webhook_text() {
        use crate::notify::{Event, EventKind};
        let event = Event {
            breaker: "",
            at: std::time::UNIX_EPOCH,
            kind: EventKind::StoreHealth {
                healthy: false,
                message: "@channel @HERE @all, @everyone! but @alice and a@b.example".to_owned(),
            },
            injected: false,
        };
        let doc = format::webhook_json(&event).unwrap();
        let text = doc["text"].as_str().unwrap();
        for word in ["channel", "HERE", "all,", "everyone!"] {
            assert!(text.contains(&format!("@\u{200b}{word}")), "{word}: {text}");
            assert!(!text.contains(&format!(" @{word}")), "{word}: {text}");
        }
        assert!(text.contains("@alice and a@b.example"), "{text}");
        // The structured field keeps the text as it came (bounded).
        assert!(
            doc["detail"]
                .as_str()
                .unwrap()
                .starts_with("@channel @HERE")
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
}
