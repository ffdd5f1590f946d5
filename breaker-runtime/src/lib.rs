//! Circuit breakers declared with one attribute, checked by the compiler.
//!
//! ```
//! use breaker_runtime::{circuit_breaker, BreakerError};
//!
//! #[derive(Debug)]
//! enum SearchError { Provider(String), Breaker(BreakerError) }
//! impl From<BreakerError> for SearchError {
//!     fn from(e: BreakerError) -> Self { SearchError::Breaker(e) }
//! }
//!
//! #[circuit_breaker(name = "daum", fallback = juso, timeout = "3s", threshold = 5)]
//! async fn daum(query: &str) -> Result<Vec<String>, SearchError> {
//!     Err(SearchError::Provider(format!("daum is down for {query}")))
//! }
//!
//! async fn juso(query: &str) -> Result<Vec<String>, SearchError> {
//!     Ok(vec![format!("{query} (from juso)")])
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! assert_eq!(daum("Seoul").await.unwrap(), ["Seoul (from juso)"]);
//! let handle = breaker_runtime::breaker("daum").unwrap();
//! assert_eq!(handle.counters().failures, 1);
//! # }
//! ```
//!
//! The attribute rewrites the function's body so every call goes through a [`Breaker`]: one
//! per breaker name, created at the first call (or by [`breakers`]) and kept for the life of the
//! process. The state machine ([`machine`]) is pure and driven by timestamps from a [`Clock`];
//! [`Notifier`]s hear of transitions on their own thread; a [`Store`] shares state (memory by
//! default). See the README for the full attribute reference and the semantics.
//!
//! # Layers
//!
//! The source tree shows the layers; imports only point down (a test in the workspace fails on
//! an upward import or a cycle):
//!
//! | folder | holds | may use |
//! | --- | --- | --- |
//! | `core/` | configuration and its duration grammar, the state machine, counters, clock, faults, errors | nothing else of the crate |
//! | `notify/` | the [`Notifier`] trait, the dispatcher thread, the tracing notifier, `http/` (webhook, Telegram) | `core` |
//! | `breaker/` | the [`Breaker`]: admission word, permits, controls, chains, fleet hooks, call futures | `core`, `notify` |
//! | `store/` | the [`Store`] trait, [`MemoryStore`], `redis/` | `core`, `notify`, `breaker` |
//! | `runtime/` | the registry, [`Handle`], [`RuntimeBuilder`], the environment, link-time sites, metrics export | everything above |
//!
//! This file and `__private` (what generated code names) only re-export.

mod breaker;
mod core;
mod notify;
mod runtime;
mod store;

#[doc(hidden)]
pub mod __private;

/// The Redis protocol shared by every instance and by operator tools: keys, channels, messages,
/// audit entries, scripts, connecting.
#[cfg(feature = "redis")]
pub mod redis {
    pub use crate::store::redis::*;
}

pub use crate::breaker::{Breaker, CounterSnapshot};
pub use crate::core::clock::{Clock, TokioClock};
pub use crate::core::config::{
    Config, ConfigError, MAX_DURATION, MAX_HALF_OPEN_PROBES, MAX_QUORUM, MAX_THRESHOLD,
    OVERRIDE_KEYS, StoreKind, parse_duration,
};
pub use crate::core::error::BreakerError;
pub use crate::core::fault::{Fault, FaultError, parse_fault_list};
pub use crate::core::machine;
pub use crate::core::machine::{FleetState, Forced, Reason, State, Transition};
#[cfg(feature = "telegram")]
pub use crate::notify::http::TelegramNotifier;
#[cfg(feature = "webhook")]
pub use crate::notify::http::WebhookNotifier;
pub use crate::notify::{
    Alert, AlertKind, Event, EventKind, FallbackReason, Notifier, Receipt, TracingNotifier,
    add_notifier, dropped_events, flush_notifications,
};
pub use crate::runtime::builder::{Runtime, RuntimeBuilder};
pub use crate::runtime::env::{ENV_FAULTS, ENV_OVERRIDES};
#[cfg(feature = "redis")]
pub use crate::runtime::env::{
    ENV_KEY_PREFIX, ENV_REDIS_CLUSTER, ENV_REDIS_URL, ENV_STORE_DOWN_AFTER,
};
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub use crate::runtime::env::{
    ENV_TELEGRAM_API, ENV_TELEGRAM_CHAT, ENV_TELEGRAM_TOKEN, ENV_WEBHOOK_URL,
};
pub use crate::runtime::handle::{Handle, HandleError};
pub use crate::runtime::lookup::{breaker, breakers, notice};
#[cfg(feature = "metrics")]
pub use crate::runtime::metrics as metrics_export;
#[cfg(feature = "redis")]
pub use crate::store::redis::{DEFAULT_STORE_DOWN_AFTER, RedisStore};
pub use crate::store::{Command, Control, MemoryStore, Store, StoreError, StoreFuture};

#[cfg(feature = "macros")]
pub use breaker_macros::circuit_breaker;
