//! What the HTTP notifiers send: which events, and the text of their messages.
//!
//! Error texts come from providers (a breaker's last error) and from Redis: whatever they hold,
//! an alert shows at most [`MAX_ERROR_CHARS`] characters of them, with control and bidi
//! characters written out (`\u{1b}`). The webhook's human text is also escaped for chat
//! receivers (`&`, `<`, `>` as Slack reads them), so `<!channel>` in an error pings nobody.

#[cfg(feature = "webhook")]
use std::borrow::Cow;
use std::fmt::Write as _;
#[cfg(feature = "webhook")]
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::MAX_ERROR_CHARS;
use crate::core::machine::Forced;
#[cfg(feature = "webhook")]
use crate::core::machine::State;
use crate::core::text::{clip, escape_controls};
use crate::notify::instance::instance;
use crate::notify::{Alert, AlertKind, Event, EventKind};

/// How an event becomes a request body.
pub(super) enum Format {
    #[cfg(feature = "webhook")]
    Webhook,
    #[cfg(feature = "telegram")]
    Telegram { chat_id: Value },
}

/// Whether the HTTP notifiers deliver this event.
pub(super) fn wanted(event: &Event) -> bool {
    matches!(
        event.kind,
        EventKind::Alert(_) | EventKind::StoreHealth { .. }
    )
}

/// The request body for `event`, or `None` for an event these notifiers do not deliver.
pub(super) fn body(format: &Format, event: &Event) -> Option<Vec<u8>> {
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

/// Text from elsewhere (an error), as an alert shows it: controls written out, at most
/// [`MAX_ERROR_CHARS`] characters.
pub(super) fn error_text(text: &str) -> String {
    clip(&escape_controls(text), MAX_ERROR_CHARS).into_owned()
}

/// `text` for chat receivers that read `&`, `<` and `>` as markup (Slack: `<!channel>`,
/// `<@user>`, `<url|label>`; Mattermost, HTML): escaped as `&amp;`, `&lt;`, `&gt;`, which those
/// show as the characters and others show as they are. The plain-text mentions that notify a
/// whole channel in Mattermost and Discord (`@channel`, `@here`, `@all`, `@everyone`) get a
/// zero-width space after the `@`, which shows the same and mentions nobody.
#[cfg(feature = "webhook")]
pub(super) fn markup_escaped(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '@']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for (i, c) in text.char_indices() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' if is_channel_mention(&text[i + 1..]) => out.push_str("@\u{200b}"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether the text after an `@` starts with a word that mentions a whole channel.
#[cfg(feature = "webhook")]
fn is_channel_mention(after: &str) -> bool {
    let word: String = after
        .chars()
        .take_while(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    matches!(word.as_str(), "channel" | "here" | "all" | "everyone")
}

/// The short human text of an alert, or `None` for an event these notifiers do not deliver.
/// Plain text, one line: what Telegram receives as it is (no `parse_mode`).
pub(super) fn message(event: &Event) -> Option<String> {
    let b = event.breaker;
    let mut s = String::new();
    match &event.kind {
        EventKind::Alert(a) => match a.kind {
            AlertKind::Opened if a.shadow && a.forced != Some(Forced::Open) => {
                let _ = write!(s, "🔴 {b} would have opened");
                if a.failures > 0 {
                    let plural = if a.failures == 1 { "" } else { "s" };
                    let _ = write!(s, " after {} failure{plural}", a.failures);
                }
                if let Some(e) = &a.last_error {
                    let _ = write!(s, " (last error: {})", error_text(e));
                }
                s.push_str("; shadow mode: every call still runs");
            }
            AlertKind::Opened => {
                let _ = write!(s, "🔴 {b} opened");
                if a.forced == Some(Forced::Open) {
                    s.push_str(" by an operator");
                } else if a.failures > 0 {
                    let plural = if a.failures == 1 { "" } else { "s" };
                    let _ = write!(s, " after {} failure{plural}", a.failures);
                }
                if let Some(e) = &a.last_error {
                    let _ = write!(s, " (last error: {})", error_text(e));
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
                        let _ = write!(s, " ({f}: {})", error_text(e));
                    }
                    (None, Some(e)) => {
                        let _ = write!(s, " (last error: {})", error_text(e));
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
                    let _ = write!(s, " ({})", error_text(message));
                }
            }
        }
        _ => return None,
    }
    if let EventKind::Alert(Alert { shadow: true, .. }) = &event.kind {
        s.push_str(" [shadow]");
    }
    if event.injected {
        s.push_str(" [injected]");
    }
    // Names come from the attribute and carry no controls; this keeps it so whatever changes.
    Some(escape_controls(&s).into_owned())
}

/// Telegram refuses messages longer than 4096 characters.
#[cfg(feature = "telegram")]
pub(super) const MAX_TELEGRAM_CHARS: usize = 4000;

#[cfg(feature = "webhook")]
pub(super) fn webhook_json(event: &Event) -> Option<Value> {
    let text = markup_escaped(&message(event)?).into_owned();
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
        "shadow": false,
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
            // As it is (JSON escapes it), but bounded: a provider's error page can be megabytes.
            doc["last_error"] = json!(a.last_error.as_deref().map(|e| clip(e, MAX_ERROR_CHARS)));
            doc["fallback"] = json!(a.fallback);
            doc["forced"] = json!(a.forced.map(forced_str));
            doc["shadow"] = json!(a.shadow);
        }
        EventKind::StoreHealth { healthy, message } => {
            doc["kind"] = json!(if *healthy { "store_up" } else { "store_down" });
            doc["detail"] = json!(clip(message, MAX_ERROR_CHARS));
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
    let at = UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(at).to_string()
}
