//! The environment: every `BREAKER_*` variable the runtime reads is read here, and only here.
//!
//! | variable | read by | meaning |
//! | --- | --- | --- |
//! | [`ENV_OVERRIDES`] | the registry | per-breaker settings: `daum.threshold=10,daum.open_for=1m` |
//! | [`ENV_FAULTS`] | the registry | faults for this process: `daum=error:0.5,juso=delay:2s` |
//! | `BREAKER_REDIS_URL`, `BREAKER_REDIS_CLUSTER`, `BREAKER_KEY_PREFIX`, `BREAKER_STORE_DOWN_AFTER` | the Redis store (feature `redis`) | where the fleet's state lives |
//! | `BREAKER_WEBHOOK_URL`, `BREAKER_TELEGRAM_TOKEN`, `BREAKER_TELEGRAM_CHAT`, `BREAKER_TELEGRAM_API` | the alert notifiers (features `webhook`, `telegram`) | where alerts go |
//!
//! The names of the Redis and alert variables are defined beside the constructors whose errors
//! name them, and re-exported here.

#[cfg(any(feature = "webhook", feature = "telegram"))]
use std::sync::Arc;

#[cfg(any(feature = "webhook", feature = "telegram", feature = "redis"))]
use crate::core::config::ConfigError;
use crate::core::fault::{Fault, parse_fault_list};
#[cfg(any(feature = "webhook", feature = "telegram"))]
use crate::notify::Notifier;

#[cfg(any(feature = "webhook", feature = "telegram"))]
pub use crate::notify::http::{
    ENV_TELEGRAM_API, ENV_TELEGRAM_CHAT, ENV_TELEGRAM_TOKEN, ENV_WEBHOOK_URL,
};
#[cfg(feature = "redis")]
pub use crate::store::redis::{
    ENV_KEY_PREFIX, ENV_REDIS_CLUSTER, ENV_REDIS_URL, ENV_STORE_DOWN_AFTER,
};

/// Environment variable with per-breaker configuration overrides:
/// `BREAKER_OVERRIDES="daum.threshold=10,daum.open_for=1m"`.
pub const ENV_OVERRIDES: &str = "BREAKER_OVERRIDES";

/// Environment variable with faults for this process:
/// `BREAKER_FAULTS="daum=error:0.5,juso=delay:2s,kakao=open"`.
pub const ENV_FAULTS: &str = "BREAKER_FAULTS";

fn var(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// `BREAKER_OVERRIDES`, raw.
pub(crate) fn overrides() -> Option<String> {
    var(ENV_OVERRIDES)
}

/// `BREAKER_FAULTS`, raw.
pub(crate) fn faults() -> Option<String> {
    var(ENV_FAULTS)
}

/// `BREAKER_FAULTS`, parsed: the good entries, and a message (naming the variable) for each bad
/// one.
pub(crate) fn faults_lenient() -> (Vec<(String, Fault)>, Vec<String>) {
    let Some(raw) = faults() else {
        return (Vec::new(), Vec::new());
    };
    let (good, bad) = parse_fault_list(&raw);
    let bad = bad
        .into_iter()
        .map(|m| format!("{ENV_FAULTS}: {m}"))
        .collect();
    (good, bad)
}

/// The alert notifiers configured by the environment (see [`alert_notifiers_from`]).
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub(crate) fn alert_notifiers() -> (Vec<Arc<dyn Notifier>>, Vec<ConfigError>) {
    alert_notifiers_from(var)
}

/// [`ENV_WEBHOOK_URL`] builds a webhook notifier, [`ENV_TELEGRAM_TOKEN`] with
/// [`ENV_TELEGRAM_CHAT`] (and optionally [`ENV_TELEGRAM_API`]) a Telegram notifier. Empty
/// variables count as unset. A malformed value, a token without a chat (or the reverse), or a
/// variable whose feature is not compiled in is an error; the notifiers that are well
/// configured are returned all the same.
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub(crate) fn alert_notifiers_from(
    get: impl Fn(&str) -> Option<String>,
) -> (Vec<Arc<dyn Notifier>>, Vec<ConfigError>) {
    crate::notify::http::from_vars(get)
}

/// The Redis store configured by `BREAKER_REDIS_CLUSTER` or `BREAKER_REDIS_URL` (with
/// `BREAKER_KEY_PREFIX`, default `breaker`, and `BREAKER_STORE_DOWN_AFTER`), if either is set.
///
/// # Errors
/// As [`RedisStore::connect`](crate::store::redis::RedisStore::connect). A malformed
/// `BREAKER_STORE_DOWN_AFTER` is pushed to `rejected` and the default applies: a typo there
/// must not turn the fleet's shared state off.
#[cfg(feature = "redis")]
pub(crate) fn redis_store(
    rejected: &mut Vec<String>,
) -> Result<Option<crate::store::redis::RedisStore>, ConfigError> {
    use crate::core::config::parse_duration;
    use crate::store::redis::{DEFAULT_KEY_PREFIX, DEFAULT_STORE_DOWN_AFTER, RedisStore};

    let prefix = var(ENV_KEY_PREFIX).unwrap_or_else(|| DEFAULT_KEY_PREFIX.to_owned());
    let down_after = match var(ENV_STORE_DOWN_AFTER) {
        Some(v) => match parse_duration(v.trim()) {
            Ok(d) => Some(d),
            Err(m) => {
                let message = ConfigError::new(
                    ENV_STORE_DOWN_AFTER,
                    format!("{m}; the default ({DEFAULT_STORE_DOWN_AFTER:?}) applies"),
                )
                .to_string();
                tracing::error!("{message}");
                rejected.push(message);
                None
            }
        },
        None => None,
    };
    let store = if let Some(nodes) = var(ENV_REDIS_CLUSTER) {
        let urls: Vec<&str> = nodes
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        RedisStore::connect_cluster(&urls, &prefix)?
    } else {
        let Some(url) = var(ENV_REDIS_URL) else {
            return Ok(None);
        };
        RedisStore::connect(&url, &prefix)?
    };
    if let Some(d) = down_after {
        store.set_store_down_after(d);
    }
    Ok(Some(store))
}
