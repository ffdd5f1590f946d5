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

#[cfg(any(feature = "webhook", feature = "telegram"))]
mod alert_http;
mod breaker;
mod clock;
mod config;
mod counters;
mod error;
mod fault;
pub mod machine;
#[cfg(feature = "metrics")]
pub mod metrics_export;
mod notifier;
#[cfg(feature = "redis")]
mod redis_store;
mod registry;
mod store;
mod timeout;

#[doc(hidden)]
pub mod __private;

#[cfg(feature = "telegram")]
pub use alert_http::TelegramNotifier;
#[cfg(feature = "webhook")]
pub use alert_http::WebhookNotifier;
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub use alert_http::{ENV_TELEGRAM_API, ENV_TELEGRAM_CHAT, ENV_TELEGRAM_TOKEN, ENV_WEBHOOK_URL};
pub use breaker::{
    Breaker, CounterSnapshot, LOCAL_PROBE_FAILED, LOCAL_PROBE_OK, LOCAL_TRIP, ProbeOutcome,
    ProbeWork,
};
pub use clock::{Clock, TokioClock};
pub use config::{
    Config, ConfigError, MAX_DURATION, MAX_HALF_OPEN_PROBES, MAX_QUORUM, MAX_THRESHOLD, SETTINGS,
    StoreKind, parse_duration,
};
pub use error::BreakerError;
pub use fault::{ENV_FAULTS, Fault, FaultError, parse_fault_list};
pub use machine::{FleetState, Forced, Reason, State, Transition};
pub use notifier::{
    Alert, AlertKind, Event, EventKind, FallbackReason, Notifier, Receipt, TracingNotifier,
    add_notifier, dropped_events, flush_notifications,
};
pub use registry::{ENV_OVERRIDES, Handle, Runtime, RuntimeBuilder, breaker, breakers, notice};
pub use store::{Command, Control, MemoryStore, Store, StoreError, StoreFuture};

#[cfg(feature = "redis")]
pub use redis_store::{
    DEFAULT_STORE_DOWN_AFTER, ENV_KEY_PREFIX, ENV_REDIS_CLUSTER, ENV_REDIS_URL,
    ENV_STORE_DOWN_AFTER, RedisStore,
};

#[cfg(feature = "macros")]
pub use breaker_macros::circuit_breaker;
