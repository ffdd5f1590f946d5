//! What the HTTP notifiers send: which events, and the text of their messages.

use std::fmt::Write as _;

#[cfg(feature = "telegram")]
use serde_json::{Value, json};

use super::MAX_ERROR_CHARS;
#[cfg(feature = "telegram")]
use super::telegram::MAX_TELEGRAM_CHARS;
#[cfg(feature = "webhook")]
use super::webhook::webhook_json;
use crate::core::machine::Forced;
use crate::notify::instance::instance;
use crate::notify::{AlertKind, Event, EventKind};

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

/// The short human text of an alert, or `None` for an event these notifiers do not deliver.
pub(super) fn message(event: &Event) -> Option<String> {
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

/// At most `max` characters of `s`, with `…` when cut.
pub(super) fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
