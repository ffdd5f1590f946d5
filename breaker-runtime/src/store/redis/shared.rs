//! What the store's tasks (the sync loop, the subscription, the probe requests, operator
//! commands) share: the breakers attached, Redis's health, and how fleet news is applied to a
//! breaker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::connection::{Conn, Target};
use super::protocol::{Keys, redact};
use super::scripts::{Controls, FleetReply};
use crate::breaker::Breaker;
use crate::core::fault::Fault;
use crate::core::machine::FleetState;
use crate::notify::{self as notifier, EventKind};

/// A breaker attached to the store, with what has been sent of its counters.
pub(super) struct Entry {
    pub(super) handle: &'static Breaker,
    pub(super) sent_successes: u64,
    pub(super) sent_failures: u64,
    pub(super) synced: Arc<AtomicBool>,
    /// Redis refused this breaker's data on the last flush (reported once, not every flush).
    pub(super) refused: bool,
    /// The control generation last read (`None`: never).
    pub(super) cgen: Option<u64>,
    /// A control message arrived: read the controls at the next flush.
    pub(super) controls_stale: bool,
    /// Generations of alert-worthy transitions to claim (the claim is atomic: one sender).
    pub(super) claims: Vec<u64>,
    /// This instance set the fleet's `chain_failed` flag (cleared when the chain works again).
    pub(super) chain_flagged: bool,
    /// Exchange a `RECORD` at the next flush even with nothing to send: the breaker is new, the
    /// connection or subscription was re-made, or Redis looked behind what the instance saw.
    pub(super) needs_sync: bool,
    /// When this breaker last exchanged a `RECORD` (for the idle heartbeat).
    pub(super) last_record: std::time::Instant,
    /// `<prefix>:breakers` lists it since the last (re)connection.
    pub(super) listed: bool,
    /// Since when this breaker's requests fail while others' are answered.
    pub(super) failing_since: Option<std::time::Instant>,
    /// The last operator reset applied (its generation; `None` before the first reply).
    pub(super) reset_seen: Option<u64>,
}

impl Entry {
    /// A breaker just attached: its counts so far are its own (never sent), and it exchanges a
    /// `RECORD` at the next flush.
    pub(super) fn new(handle: &'static Breaker, synced: Arc<AtomicBool>) -> Entry {
        let c = handle.counters();
        Entry {
            handle,
            sent_successes: c.successes,
            sent_failures: c.failures,
            synced,
            refused: false,
            cgen: None,
            controls_stale: false,
            claims: Vec::new(),
            chain_flagged: false,
            needs_sync: true,
            last_record: std::time::Instant::now(),
            listed: false,
            failing_since: None,
            reset_seen: None,
        }
    }
}

/// A breaker and the generation of one of its alerts.
pub(super) type AlertRef = (&'static str, u64);

pub(super) struct Inner {
    pub(super) keys: Keys,
    pub(super) target: Target,
    pub(super) entries: Mutex<HashMap<&'static str, Entry>>,
    pub(super) wake: Notify,
    pub(super) healthy: AtomicBool,
    /// Whether the store has reported its health yet (so a Redis down at start is reported).
    pub(super) health_known: AtomicBool,
    /// Since when every request and reconnection failed (`None`: the last one succeeded).
    pub(super) failing_since: Mutex<Option<std::time::Instant>>,
    /// `BREAKER_STORE_DOWN_AFTER`, in milliseconds.
    pub(super) down_after_ms: AtomicU64,
    /// The sync loop's connection while it is up, shared with the probe-lease requests.
    pub(super) conn: Mutex<Option<Conn>>,
    /// Wakes the task that asks the fleet for probe leases.
    pub(super) acquire_wake: Notify,
    /// No idle heartbeat is sent before this (one per `HEARTBEAT_SPACING`).
    pub(super) next_heartbeat: Mutex<std::time::Instant>,
    /// The fleet marker's check (see `sync::fleet_marker`): when next, the incarnation last
    /// read, the highest generation seen, and whether a reply raised it (to write as `hw`).
    pub(super) next_fleet_check: Mutex<std::time::Instant>,
    pub(super) fleet_inc: Mutex<Option<String>>,
    pub(super) max_seen: AtomicU64,
    pub(super) checked_seen: AtomicU64,
    pub(super) hw_dirty: AtomicBool,
    /// Fleet alerts this instance claimed and raised, until every notifier is done with them.
    /// With when its claim was last renewed.
    pub(super) receipts: Mutex<Vec<(&'static str, u64, notifier::Receipt, std::time::Instant)>>,
    /// The round trip of `RECORD`, averaged, in microseconds (0: none yet).
    pub(super) rtt_us: AtomicU64,
    pub(super) rt: tokio::runtime::Handle,
    /// `host:pid:nonce`, in `<prefix>:{name}:i`.
    pub(super) instance: String,
    /// Random per process: lease tokens must differ across hosts (every container's pid is 1).
    pub(super) nonce: String,
    pub(super) tokens: AtomicU64,
}

impl Inner {
    /// A request or reconnection failed: Redis is down once that has gone on for the
    /// configured time; before that it is slow, and nothing changes for the breakers.
    /// `started`: when the request that failed was sent (a timeout is a failure from then on).
    pub(super) fn note_failure(&self, detail: &str, started: std::time::Instant) {
        let now = std::time::Instant::now();
        let since = *lock(&self.failing_since).get_or_insert(started);
        let after = Duration::from_millis(self.down_after_ms.load(Ordering::Acquire));
        if now.duration_since(since) >= after {
            self.set_healthy(false, detail);
        }
    }

    pub(super) fn note_success(&self) {
        *lock(&self.failing_since) = None;
        self.set_healthy(true, "");
    }

    /// Whether any breaker has counts not sent yet, or an alert is being delivered; always
    /// with a rate-rule breaker (its successes must reach the window as promptly as another
    /// instance's failures, which wake the loop at once).
    pub(super) fn busy(&self) -> bool {
        if !lock(&self.receipts).is_empty() {
            return true;
        }
        lock(&self.entries).values().any(|e| {
            let c = e.handle.counters();
            e.handle.config().failure_rate.is_some()
                || c.successes != e.sent_successes
                || c.failures != e.sent_failures
                || e.needs_sync
        })
    }

    /// Every breaker exchanges a `RECORD` at the next flush (news may have been missed).
    pub(super) fn resync_all(&self) {
        for e in lock(&self.entries).values_mut() {
            e.needs_sync = true;
        }
        self.wake.notify_one();
    }

    fn set_healthy(&self, healthy: bool, detail: &str) {
        let changed = self.healthy.swap(healthy, Ordering::AcqRel) != healthy;
        let first = !self.health_known.swap(true, Ordering::AcqRel);
        if changed || first {
            // Probes are judged by the fleet while Redis answers, locally while it does not.
            for e in lock(&self.entries).values() {
                e.handle.set_fleet_gate(healthy);
            }
            let prefix = self.keys.prefix();
            if first && healthy {
                // Reachable from the start: news for the log, not for the team's alerts.
                tracing::info!(prefix = %prefix, "Redis reachable: breakers share the fleet's state");
                return;
            }
            let message = if healthy {
                "Redis reachable: breakers share the fleet's state again".to_owned()
            } else {
                format!(
                    "Redis unreachable ({detail}): breakers decide locally with the same thresholds"
                )
            };
            tracing::warn!(prefix = %prefix, "{message}");
            notifier::emit("", EventKind::StoreHealth { healthy, message });
        }
    }

    /// Adopts a script's reply: the fleet's state, and the alert nobody has claimed yet.
    pub(super) fn adopt(
        &self,
        name: &str,
        handle: &'static Breaker,
        reply: &FleetReply,
        unflushed: bool,
    ) {
        let mut fleet = reply.fleet_at();
        if let Some(e) = lock(&self.entries).get_mut(name)
            && e.reset_seen.is_none_or(|r| reply.reset_gen > r)
        {
            // An operator reset this instance has not applied yet (its message was lost); the
            // first reply only tells where the breaker stands.
            if e.reset_seen.is_some()
                && let Some((f, _)) = fleet.as_mut()
            {
                f.reset = true;
            }
            e.reset_seen = Some(reply.reset_gen);
        }
        if let Some((_, generation)) = fleet
            && generation > self.max_seen.fetch_max(generation, Ordering::AcqRel)
        {
            // A generation this instance had not seen: most likely its own script made it.
            self.hw_dirty.store(true, Ordering::Release);
        }
        if let Some((_, generation)) = fleet
            && generation < handle.fleet_generation()
            && let Some(e) = lock(&self.entries).get_mut(name)
        {
            // Redis is behind what this instance saw (it lost data): the next flush's `RECORD`
            // writes the fleet's state back.
            e.needs_sync = true;
            self.wake.notify_one();
        }
        if let Some(e) = lock(&self.entries).get_mut(name)
            && e.cgen.is_some_and(|c| c != reply.cgen)
        {
            // The controls changed (and their message may have been lost): read them.
            e.controls_stale = true;
        }
        apply(name, handle, fleet, unflushed);
        self.queue_claim(name, reply.pending_alert);
    }

    /// Notes an alert a reply says nobody has claimed yet: this instance claims it at once (in
    /// the same flush), so the instance whose write made the transition almost always sends
    /// it; if its reply was lost or it died, another instance's next flush claims it.
    pub(super) fn queue_claim(&self, name: &str, generation: u64) {
        if generation == 0 {
            return;
        }
        if let Some(e) = lock(&self.entries).get_mut(name)
            && !e.claims.contains(&generation)
        {
            e.claims.push(generation);
        }
        self.wake.notify_one();
    }

    /// Redis refused this breaker's data (malformed or foreign data under its keys, a
    /// read-only replica, out of memory...): reported once, and the breaker decides locally
    /// (probes too) until Redis accepts its data again.
    pub(super) fn refused(
        &self,
        name: &'static str,
        handle: &'static Breaker,
        e: &redis::RedisError,
    ) {
        let first = lock(&self.entries)
            .get_mut(name)
            .is_some_and(|en| !std::mem::replace(&mut en.refused, true));
        if first {
            handle.set_fleet_gate(false);
            let message = format!("Redis refused breaker data: {}", redact(&e.to_string()));
            tracing::error!(breaker = name, "{message}");
            notifier::emit(handle.name(), EventKind::StoreError { message });
        }
    }
}

/// Applies the fleet's state to the breaker; stale news (an older generation) is dropped under
/// the machine's lock.
pub(super) fn apply(
    name: &str,
    handle: &'static Breaker,
    fleet: Option<(FleetState, u64)>,
    unflushed: bool,
) {
    let Some((fleet, generation)) = fleet else {
        let message = "Redis replied with a state this version does not know".to_owned();
        tracing::error!(breaker = name, "{message}");
        notifier::emit(handle.name(), EventKind::StoreError { message });
        return;
    };
    handle.apply_fleet(fleet, generation, unflushed);
}

/// Applies a breaker's controls (swap, fault, notice, mode) as Redis holds them. Whether they
/// turned shadow off while the breaker is OPEN or HALF_OPEN (an alert is due: the caller
/// claims it for the fleet, [`super::sync::alert_now_enforcing`]).
#[must_use]
pub(super) fn apply_controls(handle: &'static Breaker, c: &Controls) -> bool {
    let b = handle;
    let left = |ms: Option<u64>| ms.map(Duration::from_millis);
    b.set_swapped(c.swapped);
    let turned = b.shadow_override() != c.shadow && b.set_shadow(c.shadow);
    let fault = match c.fault.as_deref().map(str::parse::<Fault>) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            let message = format!("Redis holds a malformed fault for this breaker: {e}");
            tracing::error!(breaker = handle.name(), "{message}");
            notifier::emit(handle.name(), EventKind::StoreError { message });
            None
        }
    };
    b.set_fleet_fault(fault, left(c.fault_ms_left));
    b.set_notice(
        Some(c.notice.as_deref().unwrap_or_default()),
        left(c.notice_ms_left),
    );
    turned
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// 128 random bits from the standard library's per-process hash keys, the clock and the pid.
pub(super) fn process_nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        *w = h.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}
