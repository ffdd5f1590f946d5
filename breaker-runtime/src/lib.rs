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

/// The Redis protocol `store = "redis"` breakers share, public so that operator tools
/// (`breakerctl`, a web console, a test) read and change a fleet exactly as its instances do.
///
/// - **Where**: [`Keys`](redis::Keys) and [`BreakerKeys`](redis::BreakerKeys) name every key and
///   channel of a fleet; [`Target`](redis::Target), [`connect`](redis::connect) and
///   [`connect_cluster`](redis::connect_cluster) reach one Redis or a Redis Cluster (TLS with
///   the `tls` feature) as a [`Conn`](redis::Conn).
/// - **What**: the events channel's [`Message`](redis::Message), the audit log's
///   [`AuditEntry`](redis::AuditEntry) (with [`AUDIT_KEEP`](redis::AUDIT_KEEP)).
/// - **How**: every change goes through a Lua script, called with a typed struct of its
///   arguments ([`Force`](redis::Force), [`WriteControl`](redis::WriteControl), ... through
///   [`ScriptCall`](redis::ScriptCall)); [`SCRIPTS`](redis::SCRIPTS) lists their sources.
/// - **Safely**: [`redact`](redis::redact) hides passwords in anything that may quote a URL;
///   [`is_connection_error`](redis::is_connection_error) tells "not answering" from "refused".
///
/// ```no_run
/// # async fn demo() -> redis::RedisResult<()> {
/// use breaker_runtime::Forced;
/// use breaker_runtime::redis::{AuditEntry, Force, Keys, RaiseHw, ScriptCall, connect};
///
/// let keys = Keys::new("breaker");
/// let mut conn = connect("redis://127.0.0.1:6379/").await?;
/// // Force `daum` open on every instance, as `breakerctl open daum` does.
/// let reply = Force {
///     keys: &keys.breaker("daum"),
///     forced: Some(Forced::Open),
///     channel: keys.events(),
///     name: "daum",
///     seen_generation: 0,
/// }
/// .invoke(&mut conn)
/// .await?;
/// // Instances that missed the message learn of the change from the fleet's marker.
/// RaiseHw { marker: keys.fleet(), generation: reply.generation }.invoke(&mut conn).await?;
/// AuditEntry::now("ana@ops-1", "open", "daum", "forced open").push(&mut conn, &keys).await?;
/// # Ok(()) }
/// ```
///
/// The store itself is [`RedisStore`] (with [`ENV_REDIS_URL`] and the other `ENV_*` settings),
/// at the crate root.
#[cfg(feature = "redis")]
pub mod redis {
    pub use crate::store::redis::{
        AUDIT_KEEP, Acquire, AuditEntry, BreakerKeys, Claim, ClaimMode, ClaimedAlert, Conn,
        ConnectOptions, ControlChange, Controls, DEFAULT_KEY_PREFIX, Delivered, FleetReply, Force,
        Keys, LeaseOutcome, Message, PREFIX_RULE, ProbeReply, Pushed, RaiseHw, ReadControls,
        Record, Release, SCRIPTS, ScriptCall, Subscription, Target, TargetError, WriteControl,
        connect, connect_cluster, hostname, is_connection_error, is_valid_prefix, redact,
    };
}

pub use crate::breaker::{Breaker, CounterSnapshot};
pub use crate::core::clock::{Clock, TokioClock};
pub use crate::core::config::{
    Config, ConfigError, HASH_TAG_CHARS, MAX_CONCURRENT, MAX_DURATION, MAX_HALF_OPEN_PROBES,
    MAX_NAME_LEN, MAX_QUORUM, MAX_THRESHOLD, Mode, NameError, OVERRIDE_KEYS, StoreKind, check_name,
    parse_duration,
};
pub use crate::core::error::BreakerError;
pub use crate::core::fault::{Fault, FaultError, parse_fault_list};
pub use crate::core::machine;
pub use crate::core::machine::{FleetState, Forced, Reason, State, Transition};
pub use crate::core::text::{
    MAX_NOTICE_CHARS, NoticeError, check_notice, escape_controls, is_unsafe_char,
};
#[cfg(feature = "telegram")]
pub use crate::notify::http::TelegramNotifier;
#[cfg(feature = "webhook")]
pub use crate::notify::http::WebhookNotifier;
pub use crate::notify::{
    Alert, AlertKind, Event, EventKind, FallbackReason, Notifier, Receipt, TracingNotifier,
    add_notifier, dropped_events, flush_notifications,
};
pub use crate::runtime::builder::{Runtime, RuntimeBuilder};
pub use crate::runtime::built::BreakerBuilder;
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
#[cfg(feature = "tower")]
pub use crate::runtime::layer;
pub use crate::runtime::lookup::{breaker, breakers, notice};
#[cfg(feature = "metrics")]
pub use crate::runtime::metrics as metrics_export;
#[cfg(feature = "reqwest-middleware")]
pub use crate::runtime::middleware;
#[cfg(feature = "redis")]
pub use crate::store::redis::{DEFAULT_STORE_DOWN_AFTER, RedisStore};
pub use crate::store::{Command, Control, MemoryStore, Store, StoreError, StoreFuture};

#[cfg(feature = "macros")]
pub use breaker_macros::circuit_breaker;
