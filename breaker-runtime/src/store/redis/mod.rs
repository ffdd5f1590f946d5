//! `store = "redis"`: one breaker state for every instance, without a Redis round trip per call.
//!
//! Calls never touch Redis: they are decided by the local machine from atomics, as with the
//! memory store. A background thread (`breaker-redis`, with a current-thread tokio runtime of its
//! own, so it runs whatever the application's runtime is doing) keeps the local machines and
//! Redis in step:
//!
//! - **Flush.** Every 50 ms, and at once after a failure or a local verdict, each breaker's new
//!   successes and failures since the last flush go to Redis in one `RECORD` script, one request
//!   in flight at a time. The script adds them to the fleet's window, decides the trip from the
//!   fleet-wide counts with Redis's clock, and replies with the authoritative state, which the
//!   instance adopts: a lost message heals within one flush.
//! - **Push.** Every change of state is published on `<prefix>:events`; each instance applies it
//!   on receipt.
//! - **Time.** Only Redis's clock is used in Redis; instances exchange remaining durations.
//! - **Generations** only go forward: an instance ignores fleet news older than what it has seen,
//!   and a Redis that comes back empty is told the generation (and an OPEN state) back.
//! - **Redis down or slow** costs calls nothing: the local machine goes on deciding with the
//!   same thresholds, the store reports the switch to local mode (and back) as an event, and
//!   reconnects on its own.
//! - **HALF_OPEN across the fleet**: at most `half_open_probes` probes in flight over all
//!   instances, as leases in `<prefix>:{name}:p` (a sorted set scored by expiry). A call that
//!   finds HALF_OPEN without a lease here is rejected (served by its fallback) and the store asks
//!   for one at once; the next call probes. A lease that runs out (its holder crashed or hung) is
//!   a failed probe and its late report is ignored. While Redis is down, probing is local.
//! - **Redis Cluster** (`BREAKER_REDIS_CLUSTER`): a breaker's keys share the hash tag `{name}`,
//!   so its scripts are single-slot; classic `PUBLISH` reaches every node's subscribers.
//!
//! The files, each using only those listed before it:
//!
//! | file | holds |
//! | --- | --- |
//! | `protocol.rs` | keys, channels, the events message, audit entries, `redact` (public: `breaker_runtime::redis`) |
//! | `connection.rs` | `Conn`, `Target` (one Redis or a cluster, TLS), subscribing, timeouts, error classes (public) |
//! | `scripts.rs`, `scripts/*.lua` | the Lua scripts and a typed call for each (public) |
//! | `audit.rs` | writing and reading the audit log (public) |
//! | `shared.rs` | what the store's tasks share: attached breakers, Redis's health, applying fleet news |
//! | `probes.rs` | HALF_OPEN probe leases: asking for them (`ACQUIRE`) and giving them back (`RELEASE`) |
//! | `sync.rs` | the sync loop: flushes (`RECORD`), alerts, controls, the fleet marker |
//! | `pubsub.rs` | the subscription: state changes and control changes as they are published |
//! | `mod.rs` | [`RedisStore`] and its [`Store`] implementation |

mod audit;
mod connection;
mod probes;
mod protocol;
mod pubsub;
mod scripts;
mod shared;
mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

pub use connection::{
    Conn, ConnectOptions, Pushed, Subscription, Target, TargetError, connect, connect_cluster,
    is_connection_error,
};
pub use protocol::{
    AUDIT_KEEP, AuditEntry, BreakerKeys, DEFAULT_KEY_PREFIX, Keys, Message, PREFIX_RULE, hostname,
    is_valid_prefix, redact,
};
pub use scripts::{
    Acquire, Claim, ClaimMode, ClaimedAlert, ControlChange, Controls, Delivered, FleetReply, Force,
    LeaseOutcome, ProbeReply, RaiseHw, ReadControls, Record, Release, SCRIPTS, ScriptCall,
    WriteControl,
};

use crate::breaker::Breaker;
use crate::core::config::{ConfigError, StoreKind};
use crate::store::{Command, Control, Store, StoreError, StoreFuture};
use audit::audit_from_app;
use connection::bounded;
use shared::{Entry, Inner, apply, apply_controls, lock, process_nonce};

/// `redis://[user:password@]host:port[/db]` (or `rediss://` for TLS, with the `tls` feature): the
/// Redis every instance shares.
pub const ENV_REDIS_URL: &str = "BREAKER_REDIS_URL";
/// Prefix of every key and channel (default `breaker`).
pub const ENV_KEY_PREFIX: &str = "BREAKER_KEY_PREFIX";
/// Comma-separated node URLs of a Redis Cluster (`redis://h1:7000,redis://h2:7001`); used
/// instead of [`ENV_REDIS_URL`] when set.
pub const ENV_REDIS_CLUSTER: &str = "BREAKER_REDIS_CLUSTER";
/// Default of [`ENV_STORE_DOWN_AFTER`].
pub const DEFAULT_STORE_DOWN_AFTER: Duration = Duration::from_secs(1);
/// How long Redis must keep failing (every request and reconnection) before the store counts
/// it as down: breakers then judge probes locally and one `StoreHealth` event is raised (one
/// more when it is back). A stall shorter than this is slowness, not an outage. A duration
/// (`"1s"`, `"500ms"`); default 1 s.
pub const ENV_STORE_DOWN_AFTER: &str = "BREAKER_STORE_DOWN_AFTER";

/// How long starting the store waits for a first connection.
const START_WAIT: Duration = Duration::from_millis(300);
/// How long a new breaker waits for the fleet's state before its first call is decided.
const FIRST_SYNC_BUDGET: Duration = Duration::from_millis(300);
/// How long an operator command from application code may take, connecting included.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// The Redis store. Build it with [`RedisStore::connect`] (or set [`ENV_REDIS_URL`]) and install
/// it with [`crate::RuntimeBuilder::redis_store`].
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.keys.prefix())
            .field("healthy", &self.inner.healthy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Starts the store's background thread for the Redis at `url`, with keys under `prefix`.
    /// Waits up to 300 ms for a first connection; a Redis that is down is not an error (calls
    /// run locally until it is back).
    ///
    /// # Errors
    /// A malformed URL or prefix, or a thread that cannot be started.
    pub fn connect(url: &str, prefix: &str) -> Result<RedisStore, ConfigError> {
        let target =
            Target::single(url).map_err(|e| ConfigError::new(ENV_REDIS_URL, e.to_string()))?;
        Self::start(target, prefix)
    }

    /// As [`RedisStore::connect`], for a Redis Cluster given by some of its nodes' URLs.
    ///
    /// # Errors
    /// A malformed URL or prefix, or a thread that cannot be started.
    pub fn connect_cluster(urls: &[&str], prefix: &str) -> Result<RedisStore, ConfigError> {
        let target = Target::cluster(urls).map_err(|e| match e {
            TargetError::NotAUrl(detail) => ConfigError::new(
                ENV_REDIS_CLUSTER,
                format!("is not a list of Redis URLs: {detail}"),
            ),
            e => ConfigError::new(ENV_REDIS_CLUSTER, e.to_string()),
        })?;
        Self::start(target, prefix)
    }

    fn start(target: Target, prefix: &str) -> Result<RedisStore, ConfigError> {
        if !is_valid_prefix(prefix) {
            return Err(ConfigError::new(
                ENV_KEY_PREFIX,
                format!("{PREFIX_RULE}; it is {prefix:?}"),
            ));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("breaker-redis".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => {
                        let _ = tx.send(Ok(rt.handle().clone()));
                        rt.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| ConfigError::new("redis", format!("cannot start its thread: {e}")))?;
        let rt = rx
            .recv()
            .map_err(|e| ConfigError::new("redis", e.to_string()))?
            .map_err(|e| ConfigError::new("redis", format!("cannot start its runtime: {e}")))?;
        let nonce = process_nonce();
        let host = hostname().unwrap_or_else(|| "localhost".to_owned());
        let inner = Arc::new(Inner {
            keys: Keys::new(prefix),
            target,
            entries: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            healthy: AtomicBool::new(false),
            health_known: AtomicBool::new(false),
            failing_since: Mutex::new(None),
            down_after_ms: AtomicU64::new(
                u64::try_from(DEFAULT_STORE_DOWN_AFTER.as_millis()).unwrap_or(u64::MAX),
            ),
            conn: Mutex::new(None),
            acquire_wake: Notify::new(),
            next_heartbeat: Mutex::new(std::time::Instant::now()),
            next_fleet_check: Mutex::new(std::time::Instant::now()),
            fleet_inc: Mutex::new(None),
            max_seen: AtomicU64::new(0),
            checked_seen: AtomicU64::new(0),
            hw_dirty: AtomicBool::new(false),
            receipts: Mutex::new(Vec::new()),
            rtt_us: AtomicU64::new(0),
            rt,
            instance: format!("{host}:{}:{}", std::process::id(), &nonce[..8]),
            nonce,
            tokens: AtomicU64::new(0),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        inner.rt.spawn(sync::sync_loop(inner.clone(), ready_tx));
        inner.rt.spawn(pubsub::subscribe_loop(inner.clone()));
        inner.rt.spawn(probes::acquire_loop(inner.clone()));
        let _ = ready_rx.recv_timeout(START_WAIT);
        Ok(RedisStore { inner })
    }

    /// How long Redis must keep failing before the store counts it as down (see
    /// [`ENV_STORE_DOWN_AFTER`]; default [`DEFAULT_STORE_DOWN_AFTER`]).
    pub fn set_store_down_after(&self, after: Duration) {
        self.inner.down_after_ms.store(
            u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            Ordering::Release,
        );
    }

    /// Whether the last exchange with Redis succeeded.
    #[must_use]
    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Acquire)
    }

    /// Runs `work` on a connection of its own, on the store's runtime (the caller's future may
    /// be awaited on any executor), within [`COMMAND_TIMEOUT`].
    async fn on_own_connection<T, F>(
        &self,
        work: impl FnOnce(Arc<Inner>, Conn) -> F + Send + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = redis::RedisResult<T>> + Send,
    {
        let inner = self.inner.clone();
        let task = self.inner.rt.spawn(async move {
            bounded(COMMAND_TIMEOUT, async {
                let con = inner.target.connect().await?;
                work(inner.clone(), con).await
            })
            .await
        });
        task.await
            .map_err(|e| StoreError::new(format!("Redis task failed: {e}")))?
            .map_err(|e| StoreError::new(format!("Redis: {}", redact(&e.to_string()))))
    }
}

impl Store for RedisStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Redis
    }

    fn set_store_down_after(&self, after: Duration) {
        RedisStore::set_store_down_after(self, after);
    }

    fn attach(&self, breaker: &'static Breaker) {
        let inner = self.inner.clone();
        let synced = Arc::new(AtomicBool::new(false));
        lock(&inner.entries).insert(breaker.name(), Entry::new(breaker, synced.clone()));
        let waker = inner.clone();
        breaker.set_store_waker(Box::new(move || waker.wake.notify_one()));
        let probes = inner.clone();
        breaker.set_probe_waker(Box::new(move || probes.acquire_wake.notify_one()));
        breaker.set_fleet_gate(inner.healthy.load(Ordering::Acquire));
        inner.wake.notify_one();
        // A new instance learns the fleet's state before its first call is decided, within a
        // bounded wait (none while the store has no connection to Redis).
        let connected = lock(&inner.conn).is_some();
        if connected {
            let start = std::time::Instant::now();
            while !synced.load(Ordering::Acquire) && start.elapsed() < FIRST_SYNC_BUDGET {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    fn command(
        &self,
        breaker: &'static Breaker,
        command: Command,
    ) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let name = breaker.name();
            let forced = command.forced();
            let seen = breaker.fleet_generation();
            let reply = self
                .on_own_connection(move |inner, mut con| async move {
                    let keys = inner.keys.breaker(name);
                    let force = Force {
                        keys: &keys,
                        forced,
                        channel: inner.keys.events(),
                        name,
                        seen_generation: seen,
                    };
                    let reply = force.invoke(&mut con).await?;
                    let audited = match command {
                        Command::ForceOpen => "open",
                        Command::ForceClosed => "close",
                        Command::Reset => "reset",
                    };
                    audit_from_app(&mut con, &inner.keys, audited, name, "from the application")
                        .await;
                    Ok(reply)
                })
                .await?;
            let inner = &self.inner;
            // Outcomes counted before the command belong to the state it replaced.
            if let Some(e) = lock(&inner.entries).get_mut(name) {
                let c = breaker.counters();
                e.sent_successes = c.successes;
                e.sent_failures = c.failures;
            }
            if command == Command::Reset {
                // A reset ends even this instance's own episode.
                let fleet = reply.fleet_at().map(|(mut f, g)| {
                    f.reset = true;
                    (f, g)
                });
                apply(name, breaker, fleet, false);
                inner.queue_claim(name, reply.pending_alert);
            } else {
                inner.adopt(name, breaker, &reply, false);
            }
            Ok(())
        })
    }

    fn control(
        &self,
        breaker: &'static Breaker,
        control: Control,
    ) -> StoreFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let name = breaker.name();
            let ms = |d: &Option<Duration>| {
                d.map_or(0, |d| {
                    u64::try_from(d.as_millis().max(1)).unwrap_or(u64::MAX)
                })
            };
            let (op, value, for_ms) = match &control {
                Control::Swap(on) => ("swap", if *on { "1" } else { "0" }.to_owned(), 0),
                Control::Fault(f, for_) => (
                    "fault",
                    f.map(|f| f.to_string()).unwrap_or_default(),
                    ms(for_),
                ),
                Control::Notice(text, for_) => {
                    ("notice", text.clone().unwrap_or_default(), ms(for_))
                }
                Control::Shadow(mode) => (
                    "shadow",
                    match mode {
                        Some(true) => "shadow",
                        Some(false) => "enforce",
                        None => "",
                    }
                    .to_owned(),
                    0,
                ),
            };
            let detail = match (&control, for_ms) {
                (Control::Swap(on), _) => if *on { "swapped" } else { "order restored" }.to_owned(),
                (Control::Shadow(None), _) => "declared mode".to_owned(),
                (Control::Shadow(Some(_)), _) => value.clone(),
                (_, _) if value.is_empty() => "cleared".to_owned(),
                (_, 0) => format!("{value} until cleared"),
                (_, ms) => format!("{value} for {ms} ms"),
            };
            let swap = matches!(control, Control::Swap(true));
            let shadow = match control {
                Control::Shadow(mode) => mode,
                _ => None,
            };
            let reply = self
                .on_own_connection(move |inner, mut con| async move {
                    let keys = inner.keys.breaker(name);
                    let change = match op {
                        "swap" => ControlChange::Swap(swap),
                        "fault" => ControlChange::Fault(&value),
                        "shadow" => ControlChange::Shadow(shadow),
                        _ => ControlChange::Notice(&value),
                    };
                    let write = WriteControl {
                        keys: &keys,
                        change,
                        for_ms,
                        channel: inner.keys.controls(),
                        name,
                    };
                    let reply = write.invoke(&mut con).await?;
                    let audited = if op == "fault" { "inject" } else { op };
                    audit_from_app(&mut con, &inner.keys, audited, name, &detail).await;
                    Ok(reply)
                })
                .await?;
            let turned = apply_controls(breaker, &reply);
            if let Some(e) = lock(&self.inner.entries).get_mut(name) {
                e.cgen = Some(reply.cgen);
            }
            if turned {
                // The switch is made; an alert that cannot be claimed now is claimed by another
                // instance applying the same controls.
                let cgen = reply.cgen;
                let claimed = self
                    .on_own_connection(move |inner, mut con| async move {
                        sync::alert_now_enforcing(&inner, &mut con, name, breaker, cgen).await
                    })
                    .await;
                if let Err(e) = claimed {
                    tracing::warn!(
                        breaker = name,
                        "could not claim the alert of the switch: {e}"
                    );
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_with_braces_is_a_configuration_error_naming_the_variable() {
        for prefix in ["my{app", "my}app", "{app}", "", "my app"] {
            let e = RedisStore::connect("redis://127.0.0.1:1/", prefix).unwrap_err();
            assert_eq!(e.setting(), ENV_KEY_PREFIX, "{prefix}: {e}");
            let cluster =
                RedisStore::connect_cluster(&["redis://127.0.0.1:1/"], prefix).unwrap_err();
            assert_eq!(cluster.setting(), ENV_KEY_PREFIX, "{prefix}: {cluster}");
        }
        let e = RedisStore::connect("redis://127.0.0.1:1/", "my{app}").unwrap_err();
        assert!(e.to_string().contains("`{` or `}`"), "{e}");
    }
}
