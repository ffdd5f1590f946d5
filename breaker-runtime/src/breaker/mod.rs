//! One breaker: the machine behind a mutex for the rare paths, and two atomic words that the hot
//! path reads.
//!
//! CLOSED admission is one atomic load; counting a success is a load and a store on a cache line
//! this thread owns ([`crate::core::counters`]). Only failures, HALF_OPEN probes, expiry of OPEN and
//! operator commands take the mutex.

pub(crate) mod contract;
pub(crate) mod future;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::contract::BreakerResult;
use crate::core::clock::Clock;
use crate::core::config::Config;
use crate::core::counters::{Count, Counters};
use crate::core::error::BreakerError;
use crate::core::fault::Fault;
use crate::core::machine::{
    Admit, FleetState, Forced, Machine, Nanos, Reason, State, Ticket, Transition, dur_nanos,
    rate_epoch,
};
use crate::notify::{self as notifier, Alert, AlertKind, CALL_EVENTS, EventKind, FallbackReason};

const MODE_MASK: u64 = 0b11;
const MODE_CLOSED: u64 = 0;
const MODE_OPEN: u64 = 1;
const MODE_HALF_OPEN: u64 = 2;
const FORCED_SHIFT: u32 = 2;
const FORCED_MASK: u64 = 0b11 << FORCED_SHIFT;
const FORCED_OPEN: u64 = 1 << FORCED_SHIFT;
const FORCED_CLOSED: u64 = 2 << FORCED_SHIFT;
/// A fault is injected or the breaker is swapped: every call takes the slow path.
const CONTROLLED: u64 = 1 << 4;
const GENERATION_SHIFT: u32 = 5;

/// A circuit breaker. Reached through [`crate::Handle`]; generated code uses it directly.
pub struct Breaker {
    name: &'static str,
    config: Config,
    /// `generation << 5 | controlled << 4 | forced << 2 | mode`, published after every change of
    /// the machine or the controls.
    word: AtomicU64,
    /// End of OPEN in clock nanoseconds, published before `word`.
    open_until: AtomicU64,
    machine: Mutex<Machine>,
    counters: Counters,
    /// No `slow_call` and no rate rule: a success is one counter bump.
    plain: bool,
    /// A verdict for a shared store to report (`LOCAL_*`).
    local_event: std::sync::atomic::AtomicU8,
    store_waker: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Wakes the shared store's task that asks the fleet for probe leases.
    probe_waker: std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// HALF_OPEN probe leases held from a shared store.
    fleet: Mutex<FleetProbes>,
    clock: Arc<dyn Clock>,
    origin: Instant,
    /// The fallback, as written in the attribute.
    fallback: Option<&'static str>,
    /// Swap, injected faults, notice; the last error seen (for alerts).
    controls: Mutex<Controls>,
    /// The fallback failed and that has not been reported yet (for a shared store to claim), or
    /// has been (`CHAIN_REPORTED`).
    chain: std::sync::atomic::AtomicU8,
    /// xorshift state for `error:P` faults.
    rng: AtomicU64,
    /// Mirrors [`Controls::controlled`] for [`Breaker::publish`].
    controlled: std::sync::atomic::AtomicBool,
}

/// An operator's or QA's controls of one breaker.
#[derive(Debug, Default)]
struct Controls {
    swapped: bool,
    /// From the fleet (`breakerctl inject`), with its end in clock nanoseconds.
    fleet_fault: Option<(Fault, Option<Nanos>)>,
    /// From `BREAKER_FAULTS` or [`Breaker::set_local_fault`].
    local_fault: Option<Fault>,
    notice: Option<(Arc<str>, Option<Nanos>)>,
    /// The current episode (from opening to closing) began while a fault was injected.
    episode_injected: bool,
    /// The last failure, described (empty: none yet). Rewritten in place: no allocation once
    /// its capacity fits.
    last_error: String,
    /// The fallback's error when the whole chain failed.
    chain_error: String,
    /// When the chain last failed (clock nanoseconds).
    chain_failed_at: Option<Nanos>,
}

impl Controls {
    fn fault(&self, now: Nanos) -> Option<Fault> {
        match self.fleet_fault {
            Some((f, until)) if until.is_none_or(|u| now < u) => Some(f),
            _ => self.local_fault,
        }
    }

    fn controlled(&self, now: Nanos, has_fallback: bool) -> bool {
        (self.swapped && has_fallback) || self.fault(now).is_some()
    }
}

/// How long after a chain failure a served call ends the episode (re-arms the alert).
const CHAIN_REARM: Duration = Duration::from_secs(60);

const CHAIN_OK: u8 = 0;
const CHAIN_PENDING: u8 = 1;
const CHAIN_REPORTED: u8 = 2;

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.name)
            .field("state", &self.published_state())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Counters of one breaker since the process started.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSnapshot {
    /// Every call: admitted or rejected.
    pub calls: u64,
    /// Admitted calls counted as successes (including errors `failure_if` did not count).
    pub successes: u64,
    /// Admitted calls counted as failures (errors, timeouts, slow calls, panics).
    pub failures: u64,
    /// Failures that were timeouts.
    pub timeouts: u64,
    /// Failures that were slow successes.
    pub slow_calls: u64,
    /// Failures that were panics.
    pub panics: u64,
    /// Calls rejected without calling the function.
    pub rejections: u64,
    /// Calls served by the fallback.
    pub fallbacks: u64,
    /// Admitted calls whose future was dropped before it finished.
    pub cancelled: u64,
}

impl Breaker {
    pub(crate) fn new(
        name: &'static str,
        config: Config,
        fallback: Option<&'static str>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        }) ^ u64::from(std::process::id());
        // Timestamps are nanoseconds since `origin`. It is set a day before the first reading
        // so that readings of another clock that started a little earlier (a paused test
        // runtime created before this breaker) still land after it.
        let now = clock.now();
        let origin = [86_400, 3_600, 60, 0]
            .into_iter()
            .find_map(|s| now.checked_sub(Duration::from_secs(s)))
            .unwrap_or(now);
        Breaker {
            name,
            config,
            word: AtomicU64::new(MODE_CLOSED),
            open_until: AtomicU64::new(0),
            machine: Mutex::new(Machine::new(config, seed)),
            counters: Counters::new(config.failure_rate.is_some()),
            plain: config.slow_call.is_none() && config.failure_rate.is_none(),
            local_event: std::sync::atomic::AtomicU8::new(0),
            store_waker: std::sync::OnceLock::new(),
            probe_waker: std::sync::OnceLock::new(),
            fleet: Mutex::new(FleetProbes::default()),
            clock,
            origin,
            fallback,
            controls: Mutex::new(Controls::default()),
            chain: std::sync::atomic::AtomicU8::new(CHAIN_OK),
            rng: AtomicU64::new(seed | 1),
            controlled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The fallback, as written in the attribute (`None` without one).
    #[must_use]
    pub fn fallback(&self) -> Option<&'static str> {
        self.fallback
    }

    /// The breaker's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration in force (the attribute's, with any overrides applied).
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn now(&self) -> Nanos {
        let d = self.clock.now().saturating_duration_since(self.origin);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    fn machine(&self) -> MutexGuard<'_, Machine> {
        // The machine is left consistent at every point a panic could unwind from (it does not
        // call out), so a poisoned lock still holds a valid machine.
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `f` to the machine, publishes the result for the hot path and reports the
    /// transition, if any, outside the lock.
    fn update<T>(&self, f: impl FnOnce(&mut Machine, Nanos) -> (T, Option<Transition>)) -> T {
        let now = self.now();
        let (out, transition, forced) = {
            let mut m = self.machine();
            let (out, t) = f(&mut m, now);
            self.publish(&m);
            (out, t, m.forced())
        };
        if let Some(t) = transition {
            self.note_local_transition(&t);
            #[cfg(feature = "metrics")]
            crate::notify::metrics::transition(self.name, &t);
            let injected = self.note_episode(&t);
            notifier::emit_event(
                self.name,
                EventKind::Transition {
                    from: t.from,
                    to: t.to,
                    reason: t.reason,
                    open_for: t.open_for,
                    forced,
                },
                injected,
            );
            // With a shared store reachable, the fleet's alerts are the store's to raise (once
            // for the fleet); otherwise this process is its own fleet.
            if !self.fleet_gate_on()
                && let Some(kind) = alert_kind(t.from, t.to)
            {
                let failures = match t.reason {
                    Reason::Threshold { failures } => u64::from(failures),
                    Reason::FailureRate { failures, .. } => failures,
                    _ => 0,
                };
                self.raise_alert(kind, t.from, t.to, failures, forced, injected);
            }
        }
        out
    }

    /// Whether the episode this transition belongs to was caused by injected faults (and
    /// remembers it until the breaker closes).
    fn note_episode(&self, t: &Transition) -> bool {
        let now = self.now();
        let mut c = self.controls();
        let injected = c.episode_injected || c.fault(now).is_some();
        if t.from == State::Closed && t.to != State::Closed {
            c.episode_injected = c.fault(now).is_some();
        } else if t.to == State::Closed {
            c.episode_injected = false;
            self.chain.store(CHAIN_OK, Ordering::Release);
        }
        injected
    }

    /// Raises an alert this process decided on its own (no shared store reachable, or a memory
    /// store).
    pub(crate) fn raise_alert(
        &self,
        kind: AlertKind,
        from: State,
        to: State,
        failures: u64,
        forced: Option<Forced>,
        injected: bool,
    ) {
        static LOCAL: AtomicU64 = AtomicU64::new(0);
        let n = LOCAL.fetch_add(1, Ordering::Relaxed);
        let id = format!(
            "{}:local-{}-{n}:{}",
            self.name,
            notifier::process_id(),
            kind.as_str()
        );
        self.emit_alert(kind, from, to, failures, forced, injected, id, None);
    }

    /// For shared stores: raises the fleet's alert of the transition to `generation`, which
    /// this instance claimed; `receipt` tells when it is delivered.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn raise_fleet_alert(
        &self,
        kind: AlertKind,
        from: State,
        to: State,
        failures: u64,
        generation: u64,
        receipt: notifier::Receipt,
    ) {
        let id = format!("{}:{generation}:{}", self.name, kind.as_str());
        let (forced, injected) = (self.forced(), self.injected());
        self.emit_alert(
            kind,
            from,
            to,
            failures,
            forced,
            injected,
            id,
            Some(receipt),
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_alert(
        &self,
        kind: AlertKind,
        from: State,
        to: State,
        failures: u64,
        forced: Option<Forced>,
        injected: bool,
        id: String,
        receipt: Option<notifier::Receipt>,
    ) {
        let last_error = match kind {
            AlertKind::ChainFailed => Some(self.controls().chain_error.clone()),
            AlertKind::Opened => Some(self.controls().last_error.clone()),
            _ => None,
        }
        .filter(|e| !e.is_empty());
        notifier::emit_event(
            self.name,
            EventKind::Alert(Alert {
                id,
                kind,
                from,
                to,
                failures,
                last_error,
                fallback: self.fallback,
                forced,
                receipt,
            }),
            injected,
        );
    }

    /// Whether faults are injected now, or the current episode began with them.
    #[must_use]
    pub(crate) fn injected(&self) -> bool {
        let now = self.now();
        let c = self.controls();
        c.episode_injected || c.fault(now).is_some()
    }

    fn fleet_gate_on(&self) -> bool {
        self.fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .gate
    }

    fn controls(&self) -> MutexGuard<'_, Controls> {
        self.controls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A probe's verdict reached on this instance is news for a shared store.
    fn note_local_transition(&self, t: &Transition) {
        if t.from == State::HalfOpen {
            // Leases held for probes of the episode that just ended: a lease that ran out is a
            // failed probe, the others have no verdict.
            let outcome = if t.reason == Reason::ProbeExpired {
                ProbeOutcome::Failed
            } else {
                ProbeOutcome::Abandoned
            };
            let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
            let held: Vec<_> = f.in_use.drain().map(|(_, t)| t).collect();
            f.work
                .results
                .extend(held.into_iter().map(|t| (t, outcome)));
            if f.gate {
                // The fleet judges probes: RELEASE carries the verdicts.
                drop(f);
                self.wake_store();
                return;
            }
        }
        // Only verdicts on the provider: operator commands and fleet news are not.
        let event = match t.reason {
            Reason::ProbesSucceeded => LOCAL_PROBE_OK,
            Reason::ProbeFailed | Reason::ProbeExpired => LOCAL_PROBE_FAILED,
            Reason::Threshold { .. } | Reason::FailureRate { .. } => LOCAL_TRIP,
            _ => return,
        };
        self.local_event.store(event, Ordering::Release);
        self.wake_store();
    }

    fn wake_store(&self) {
        if let Some(wake) = self.store_waker.get() {
            wake();
        }
    }

    /// For shared stores: the last probe verdict or trip this instance reached on its own since
    /// the previous call (`LOCAL_*`, 0 for none).
    pub(crate) fn take_local_event(&self) -> u8 {
        self.local_event.swap(0, Ordering::AcqRel)
    }

    /// A call holding local probe lease `lease` in a HALF_OPEN judged by the fleet: asks the
    /// store for a fleet lease (the call waits for the answer in [`Breaker::wait_for_probe`]),
    /// unless the fleet said a moment ago that its probe slots are taken.
    fn ask_fleet(&self, lease: u64) -> Result<u64, Rejected> {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if !f.gate {
            // The store went away between the machine's decision and here: probe locally.
            return Ok(PROBE | lease);
        }
        let now = std::time::Instant::now();
        if let Some(until) = f.denied_until.filter(|u| *u > now) {
            drop(f);
            self.cancel_lease(lease);
            return Err(self.rejected(Some(dur_nanos(until - now))));
        }
        f.waiting.insert(lease, Waiting::default());
        f.work.acquire.push(lease);
        drop(f);
        if let Some(wake) = self.probe_waker.get() {
            wake();
        }
        Err(Rejected(AWAIT | lease))
    }

    /// Gives a local probe slot back (its call will not run as a probe).
    fn cancel_lease(&self, lease: u64) {
        self.update(|m, _| {
            m.on_cancel(Ticket {
                generation: m.generation(),
                lease: Some(lease),
            });
            ((), None)
        });
    }

    /// For shared stores: the fleet's answer to the request for a probe lease for the call
    /// holding local lease `lease`: a lease token, or a refusal with how long the fleet's probe
    /// slots stay taken at most (no call here asks again before that, unless fleet news
    /// arrives first). An answer for a call that gave up is handed back.
    pub(crate) fn answer_probe(
        &self,
        lease: u64,
        answer: Result<String, Duration>,
        generation: u64,
    ) {
        // A refusal older than fleet news already applied (a lease given back since) says
        // nothing about the slots now.
        let stale = generation < self.fleet_generation();
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if let Err(wait) = &answer
            && !wait.is_zero()
            && !stale
        {
            let until = std::time::Instant::now() + *wait;
            f.denied_until = Some(f.denied_until.map_or(until, |u| u.max(until)));
        }
        match f.waiting.get_mut(&lease) {
            Some(w) => {
                w.answer = Some(answer);
                if let Some(waker) = w.waker.take() {
                    waker.wake();
                }
            }
            None => {
                if let Ok(token) = answer {
                    f.work.results.push((token, ProbeOutcome::Abandoned));
                    drop(f);
                    self.wake_store();
                }
            }
        }
    }

    /// Waits, if `rejected` says so, for the fleet's answer to this call's request for a probe
    /// lease: a probe permit, or the rejection to serve. Any other rejection is returned at
    /// once. Every rejection [`Breaker::admit`] returns must go through here.
    #[doc(hidden)]
    #[inline]
    pub fn wait_for_probe(&'static self, rejected: Rejected) -> ProbeWait {
        ProbeWait {
            breaker: self,
            rejected,
            waiting: rejected.is_await(),
        }
    }

    /// The call waiting for lease `lease` got its answer.
    fn probe_answered(
        &'static self,
        lease: u64,
        answer: Result<String, Duration>,
    ) -> Result<Permit, Rejected> {
        let token = match answer {
            Ok(token) => token,
            Err(wait) => {
                self.cancel_lease(lease);
                // The reply may have closed the breaker here: then this is a normal call.
                let w = self.word.load(Ordering::Acquire);
                if w & (MODE_MASK | CONTROLLED) == MODE_CLOSED && w & FORCED_MASK != FORCED_OPEN {
                    return Ok(Permit {
                        breaker: self,
                        ticket: w >> GENERATION_SHIFT,
                    });
                }
                let retry = if wait.is_zero() {
                    FLEET_PROBE_RETRY
                } else {
                    wait
                };
                return Err(self.rejected(Some(dur_nanos(retry))));
            }
        };
        let live = self.machine().holds_lease(lease);
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if live && f.gate {
            f.in_use.insert(lease, token);
            drop(f);
            let permit = Permit {
                breaker: self,
                ticket: PROBE | lease,
            };
            if !self.controlled.load(Ordering::Acquire) {
                return Ok(permit);
            }
            // A QA drill's fault applies to probes too.
            let fault = self.controls().fault(self.now());
            return self.with_fault(permit, fault);
        }
        // The episode ended while the call waited: the lease goes back unused.
        f.work.results.push((token, ProbeOutcome::Abandoned));
        drop(f);
        self.wake_store();
        self.cancel_lease(lease);
        Err(self.rejected(Some(dur_nanos(FLEET_PROBE_RETRY))))
    }

    /// The call waiting for lease `lease` was dropped before its answer was used.
    fn probe_wait_dropped(&self, lease: u64) {
        self.counters.add(Count::Cancelled);
        self.release_wait(lease);
    }

    /// Ends the wait for lease `lease` unused: the local slot, and any fleet lease granted, go
    /// back.
    fn release_wait(&self, lease: u64) {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        // Not asked yet: it never will be.
        f.work.acquire.retain(|l| *l != lease);
        if let Some(Waiting {
            answer: Some(Ok(token)),
            ..
        }) = f.waiting.remove(&lease)
        {
            f.work.results.push((token, ProbeOutcome::Abandoned));
            drop(f);
            self.wake_store();
        } else {
            drop(f);
        }
        self.cancel_lease(lease);
    }

    /// Reports how the probe holding local lease `lease` ended, if it held a fleet lease.
    fn fleet_report(&self, ticket: u64, outcome: ProbeOutcome) {
        if ticket & PROBE == 0 {
            return;
        }
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = f.in_use.remove(&(ticket & !(PROBE | INJECT))) {
            f.work.results.push((token, outcome));
            drop(f);
            self.wake_store();
        }
    }

    /// For shared stores: turns fleet-wide probing on (the store is reachable) or off (probing
    /// goes on locally). Turning it off abandons the leases held.
    pub(crate) fn set_fleet_gate(&self, on: bool) {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if f.gate == on {
            return;
        }
        f.gate = on;
        f.denied_until = None;
        if !on {
            // Calls waiting for a fleet lease are refused at once (the next ones probe here).
            for w in f.waiting.values_mut() {
                if w.answer.is_none() {
                    w.answer = Some(Err(Duration::ZERO));
                    if let Some(waker) = w.waker.take() {
                        waker.wake();
                    }
                }
            }
            f.work.acquire.clear();
            let held: Vec<_> = f.in_use.drain().map(|(_, t)| t).collect();
            f.work
                .results
                .extend(held.into_iter().map(|t| (t, ProbeOutcome::Abandoned)));
        }
        drop(f);
        self.update(|m, _| {
            m.set_fleet_probes(on);
            ((), None)
        });
        // A chain failure the store had not claimed yet is this process's to report now.
        if !on && self.take_chain_failure() {
            let state = self.published_state();
            self.raise_alert(
                AlertKind::ChainFailed,
                state,
                state,
                0,
                self.forced(),
                self.injected(),
            );
        }
    }

    /// For shared stores: the fleet leases to give back since the last call, with their
    /// verdicts.
    pub(crate) fn take_probe_results(&self) -> Vec<(String, ProbeOutcome)> {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut f.work.results)
    }

    /// For shared stores: the fleet's state as this instance last saw it (never its own
    /// episode), with the time its OPEN has left: what a store that lost its data is told.
    #[must_use]
    pub(crate) fn fleet_view(&self) -> (State, Duration) {
        let now = self.now();
        self.machine().fleet_view(now)
    }

    /// For shared stores: the leases waiting calls want (taken, so each is asked for once).
    pub(crate) fn take_probe_requests(&self) -> Vec<u64> {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut f.work.acquire)
    }

    /// For shared stores: whether a call still waits for the answer for lease `lease` (one
    /// that gave up needs no request).
    #[must_use]
    pub(crate) fn probe_wanted(&self, lease: u64) -> bool {
        self.fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiting
            .get(&lease)
            .is_some_and(|w| w.answer.is_none())
    }

    /// For shared stores: called when a call waits for a probe lease (the store answers it
    /// with [`Breaker::answer_probe`] within its command timeout).
    pub(crate) fn set_probe_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.probe_waker.set(wake);
    }

    /// For shared stores: puts back probe results that could not be delivered.
    pub(crate) fn restore_probe_results(&self, results: Vec<(String, ProbeOutcome)>) {
        if results.is_empty() {
            return;
        }
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        let newer = std::mem::take(&mut f.work.results);
        f.work.results = results;
        f.work.results.extend(newer);
    }

    /// For shared stores: called on every failure and local verdict, to flush at once.
    pub(crate) fn set_store_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.store_waker.set(wake);
    }

    /// For shared stores: adopts the fleet's state (see [`Machine::apply_fleet`]).
    pub(crate) fn apply_fleet(&self, fleet: FleetState, generation: u64, unflushed_failures: bool) {
        if generation > self.fleet_generation() {
            // News from the fleet (a probe ended, a lease came back): its probe slots may be
            // free again.
            self.fleet
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .denied_until = None;
        }
        self.update(|m, now| {
            (
                (),
                m.apply_fleet(now, fleet, generation, unflushed_failures),
            )
        });
    }

    /// For shared stores: the highest fleet generation applied (sent back to the store so
    /// generations never go backwards).
    #[must_use]
    pub(crate) fn fleet_generation(&self) -> u64 {
        self.machine().fleet_generation()
    }

    /// Consecutive openings without a close (drives the backoff).
    #[must_use]
    pub(crate) fn opens_in_row(&self) -> u32 {
        self.machine().opens_in_row()
    }

    /// Swaps the breaker (its fallback is called first, the function second) or restores the
    /// order. Applies to this process; [`crate::Handle::swap`] goes through the store.
    pub(crate) fn set_swapped(&self, on: bool) {
        self.controls().swapped = on;
        self.refresh_controlled();
    }

    /// Whether the breaker is swapped.
    #[must_use]
    pub fn swapped(&self) -> bool {
        self.controls().swapped
    }

    /// A fault injected by the fleet (`breakerctl inject`), for `for_` (or until cleared).
    pub(crate) fn set_fleet_fault(&self, fault: Option<Fault>, for_: Option<Duration>) {
        let now = self.now();
        let until = for_.map(|d| now.saturating_add(dur_nanos(d)));
        self.controls().fleet_fault = fault.map(|f| (f, until));
        self.refresh_controlled();
    }

    /// A fault injected in this process only (`BREAKER_FAULTS`); a fleet fault takes precedence.
    pub(crate) fn set_local_fault(&self, fault: Option<Fault>) {
        self.controls().local_fault = fault;
        self.refresh_controlled();
    }

    /// The fault injected now, if any.
    #[must_use]
    pub fn fault(&self) -> Option<Fault> {
        let now = self.now();
        self.controls().fault(now)
    }

    /// Time left of a fleet fault that expires.
    #[must_use]
    pub fn fault_remaining(&self) -> Option<Duration> {
        let now = self.now();
        match self.controls().fleet_fault {
            Some((_, Some(until))) if until > now => Some(Duration::from_nanos(until - now)),
            _ => None,
        }
    }

    /// Sets (or clears) the user-facing notice, for `for_` (or until cleared).
    pub(crate) fn set_notice(&self, text: Option<&str>, for_: Option<Duration>) {
        let now = self.now();
        let until = for_.map(|d| now.saturating_add(dur_nanos(d)));
        self.controls().notice = text
            .filter(|t| !t.is_empty())
            .map(|t| (Arc::from(t), until));
    }

    /// The user-facing notice, if one is set and has not expired.
    #[must_use]
    pub fn notice(&self) -> Option<Arc<str>> {
        let now = self.now();
        match &self.controls().notice {
            Some((text, until)) if until.is_none_or(|u| now < u) => Some(text.clone()),
            _ => None,
        }
    }

    /// Re-publishes the hot path's word after a change of controls.
    fn refresh_controlled(&self) {
        let now = self.now();
        // Computed and stored under the controls' lock, so two refreshes racing cannot leave
        // the flag of the older state; `update` then publishes whatever the flag is by then.
        let changed = {
            let c = self.controls();
            let on = c.controlled(now, self.fallback.is_some());
            self.controlled.swap(on, Ordering::AcqRel) != on
        };
        if changed {
            self.update(|_, _| ((), None));
        }
    }

    fn publish(&self, m: &Machine) {
        let mode = match m.state() {
            State::Closed => MODE_CLOSED,
            State::Open => MODE_OPEN,
            State::HalfOpen => MODE_HALF_OPEN,
        };
        let forced = match m.forced() {
            None => 0,
            Some(Forced::Open) => FORCED_OPEN,
            Some(Forced::Closed) => FORCED_CLOSED,
        };
        let controlled = if self.controlled.load(Ordering::Acquire) {
            CONTROLLED
        } else {
            0
        };
        self.open_until.store(m.open_until(), Ordering::Release);
        self.word.store(
            (m.generation() << GENERATION_SHIFT) | controlled | forced | mode,
            Ordering::Release,
        );
    }

    /// Asks to run a call: a permit, or a rejection (counted already) that
    /// [`Breaker::rejection`] turns into the error to report.
    ///
    /// # Errors
    /// [`Rejected`] when the breaker is OPEN, forced open, or HALF_OPEN with every probe slot
    /// taken.
    #[doc(hidden)]
    #[inline]
    pub fn admit(&'static self) -> Result<Permit, Rejected> {
        let w = self.word.load(Ordering::Acquire);
        if w & (MODE_MASK | CONTROLLED) == 0 {
            return Ok(Permit {
                breaker: self,
                ticket: w >> GENERATION_SHIFT,
            });
        }
        self.admit_slow(w, false)
    }

    /// Admission of the primary itself while the breaker is swapped (its fallback, called
    /// first, failed).
    ///
    /// # Errors
    /// As [`Breaker::admit`].
    #[doc(hidden)]
    pub fn admit_primary(&'static self) -> Result<Permit, Rejected> {
        let w = self.word.load(Ordering::Acquire);
        self.admit_slow(w, true).map_err(|r| {
            // The swapped path does not wait for a fleet probe lease: it has served its
            // fallback's answer already.
            if r.is_await() {
                self.release_wait(r.0 & !AWAIT);
                return self.rejected(Some(dur_nanos(FLEET_PROBE_RETRY)));
            }
            r
        })
    }

    #[inline(never)]
    fn admit_slow(&'static self, w: u64, primary: bool) -> Result<Permit, Rejected> {
        if w & CONTROLLED == 0 {
            return self.admit_state(w);
        }
        let now = self.now();
        let (swapped, fault) = {
            let c = self.controls();
            (c.swapped && self.fallback.is_some(), c.fault(now))
        };
        if fault.is_none() && !swapped {
            // A fault that ran out: back to the fast path.
            self.refresh_controlled();
            return self.admit_state(w & !CONTROLLED);
        }
        if swapped && !primary {
            return Err(Rejected(SWAPPED));
        }
        if fault == Some(Fault::Open) {
            return Err(self.rejected(Some(INJECTED_OPEN)));
        }
        let permit = self.admit_state(w & !CONTROLLED)?;
        self.with_fault(permit, fault)
    }

    /// An admitted call under an injected fault: failed at once, or marked to wait first.
    fn with_fault(&'static self, permit: Permit, fault: Option<Fault>) -> Result<Permit, Rejected> {
        match fault {
            Some(Fault::Error { rate }) if self.roll(rate) => {
                self.note_error_text(format_args!("injected fault: error"));
                let ticket = permit.into_ticket();
                self.failed(ticket, None);
                Err(Rejected(INJECTED_ERROR))
            }
            Some(Fault::Timeout) if self.config.timeout.is_none() => {
                self.note_error_text(format_args!("injected fault: timeout"));
                let ticket = permit.into_ticket();
                self.failed(ticket, Some(Count::Timeouts));
                Err(Rejected(INJECTED_TIMEOUT))
            }
            Some(Fault::Timeout | Fault::Delay(_)) => Ok(Permit {
                breaker: self,
                ticket: permit.into_ticket() | INJECT,
            }),
            _ => Ok(permit),
        }
    }

    /// `true` with probability `rate`.
    fn roll(&self, rate: f64) -> bool {
        if rate >= 1.0 {
            return true;
        }
        // xorshift64*: races between threads only lose randomness, never correctness.
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.store(x, Ordering::Relaxed);
        let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        #[allow(clippy::cast_precision_loss)]
        let u = r as f64 / (1u64 << 53) as f64;
        u < rate
    }

    /// A rejection, counted, with `code` or the time until OPEN ends.
    fn rejected(&self, code: Option<u64>) -> Rejected {
        self.counters.add(Count::Rejections);
        let r = Rejected(code.unwrap_or(HELD_OPEN));
        if CALL_EVENTS.load(Ordering::Relaxed) {
            notifier::emit_event(
                self.name,
                EventKind::Rejected {
                    retry_after: r.retry_after(),
                },
                self.injected(),
            );
        }
        r
    }

    fn admit_state(&'static self, w: u64) -> Result<Permit, Rejected> {
        if w & MODE_MASK == MODE_CLOSED && w & FORCED_MASK != FORCED_OPEN {
            return Ok(Permit {
                breaker: self,
                ticket: w >> GENERATION_SHIFT,
            });
        }
        let decided = if w & FORCED_MASK == FORCED_OPEN {
            Err(None)
        } else if w & MODE_MASK == MODE_OPEN
            && let now = self.now()
            && let until = self.open_until.load(Ordering::Acquire)
            && now < until
        {
            Err(Some(until - now))
        } else {
            let decided = self.update(|m, now| {
                let (admit, t) = m.acquire(now);
                ((admit, m.probes_judged_by_fleet()), t)
            });
            match decided {
                (Admit::Call { generation }, _) => Ok(generation),
                (Admit::Probe { lease, .. }, false) => Ok(PROBE | lease),
                // HALF_OPEN across the fleet: this call is the probe if the fleet has a free
                // slot; it waits one store round trip for the answer.
                (Admit::Probe { lease, .. }, true) => {
                    return self.ask_fleet(lease).map(|ticket| Permit {
                        breaker: self,
                        ticket,
                    });
                }
                (Admit::Reject { retry_after }, _) => Err(retry_after.map(dur_nanos)),
            }
        };
        match decided {
            Ok(ticket) => Ok(Permit {
                breaker: self,
                ticket,
            }),
            Err(retry_after) => Err(self.rejected(Some(retry_after.unwrap_or(HELD_OPEN)))),
        }
    }

    /// The error for a call [`Breaker::admit`] rejected.
    #[cold]
    #[doc(hidden)]
    #[must_use]
    pub fn rejection(&self, rejected: Rejected) -> BreakerError {
        match rejected.0 {
            INJECTED_ERROR => BreakerError::Injected { breaker: self.name },
            INJECTED_TIMEOUT => BreakerError::Timeout {
                breaker: self.name,
                after: Duration::ZERO,
            },
            _ => BreakerError::Open {
                breaker: self.name,
                retry_after: rejected.retry_after(),
            },
        }
    }

    /// Counts a call served by the fallback after [`Breaker::admit`] refused it.
    #[cold]
    #[doc(hidden)]
    pub fn note_fallback_for(&self, rejected: Rejected) {
        self.note_fallback(match rejected.0 {
            INJECTED_ERROR => FallbackReason::Failed,
            INJECTED_TIMEOUT => FallbackReason::TimedOut,
            _ => FallbackReason::Rejected,
        });
    }

    /// After a fallback ran: an error means the whole chain failed (alerted once per episode);
    /// a success ends such an episode.
    #[doc(hidden)]
    #[inline]
    pub fn fallback_result<R: BreakerResult>(
        &self,
        result: &R,
        describe: fn(&R::Error, &mut String),
    ) {
        match result.err_ref() {
            Some(e) => self.chain_failed(describe, e),
            None => {
                if self.chain.load(Ordering::Relaxed) != CHAIN_OK {
                    self.chain_served();
                }
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn chain_failed<E>(&self, describe: fn(&E, &mut String), error: &E) {
        if self
            .chain
            .compare_exchange(CHAIN_OK, CHAIN_PENDING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        {
            let mut c = self.controls();
            c.chain_error.clear();
            describe(error, &mut c.chain_error);
            c.chain_failed_at = Some(self.now());
        }
        if self.fleet_gate_on() {
            // The fleet decides who alerts: the store claims it.
            self.wake_store();
        } else {
            self.chain.store(CHAIN_REPORTED, Ordering::Release);
            let state = self.published_state();
            self.raise_alert(
                AlertKind::ChainFailed,
                state,
                state,
                0,
                self.forced(),
                self.injected(),
            );
        }
    }

    /// The chain served a call after a failure: the episode ends (the next failure alerts
    /// again) once the failure is `CHAIN_REARM` old, so a flapping fallback does not alert on
    /// every flap.
    #[cold]
    #[inline(never)]
    fn chain_served(&self) {
        let now = self.now();
        let quiet = self
            .controls()
            .chain_failed_at
            .is_none_or(|at| now.saturating_sub(at) >= dur_nanos(CHAIN_REARM));
        if quiet {
            self.chain.store(CHAIN_OK, Ordering::Release);
        }
    }

    /// For shared stores: whether a chain failure waits to be claimed for the fleet.
    #[must_use]
    pub(crate) fn chain_pending(&self) -> bool {
        self.chain.load(Ordering::Acquire) == CHAIN_PENDING
    }

    /// For shared stores: claims a chain failure to report (once).
    #[must_use]
    pub(crate) fn take_chain_failure(&self) -> bool {
        self.chain
            .compare_exchange(
                CHAIN_PENDING,
                CHAIN_REPORTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// For shared stores: whether the chain works again after a reported failure.
    #[must_use]
    pub(crate) fn chain_ok(&self) -> bool {
        self.chain.load(Ordering::Acquire) == CHAIN_OK
    }

    /// Records the description of the last failure, for alerts.
    #[cold]
    #[inline(never)]
    pub(crate) fn note_error<E>(&self, describe: fn(&E, &mut String), error: &E) {
        let mut c = self.controls();
        c.last_error.clear();
        describe(error, &mut c.last_error);
    }

    fn note_error_text(&self, text: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        let mut c = self.controls();
        c.last_error.clear();
        let _ = c.last_error.write_fmt(text);
    }

    /// The call's `timeout`.
    #[inline]
    #[doc(hidden)]
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.config.timeout
    }

    /// The start time a `slow_call` rule needs (no clock read without one).
    #[inline]
    #[doc(hidden)]
    #[must_use]
    pub fn started(&self) -> Option<Instant> {
        self.config.slow_call.map(|_| self.clock.now())
    }

    #[cold]
    #[inline(never)]
    fn injected_sleep(&self, timed: bool) -> Option<std::pin::Pin<Box<tokio::time::Sleep>>> {
        let wait = match self.fault()? {
            Fault::Delay(d) => d,
            // Longer than any `timeout`: the call's own timeout ends it, the function never runs.
            Fault::Timeout if timed => Duration::from_secs(86_400 * 365),
            _ => return None,
        };
        Some(Box::pin(tokio::time::sleep(wait)))
    }

    /// Counts a call served by the fallback.
    #[doc(hidden)]
    pub fn note_fallback(&self, reason: FallbackReason) {
        self.counters.add(Count::Fallbacks);
        if CALL_EVENTS.load(Ordering::Relaxed) {
            notifier::emit_event(self.name, EventKind::Fallback { reason }, self.injected());
        }
    }

    /// The machine's view of a permit's ticket.
    fn ticket(m: &Machine, ticket: u64) -> Ticket {
        if ticket & PROBE == 0 {
            Ticket {
                generation: ticket & !INJECT,
                lease: None,
            }
        } else {
            // Leases live only in the current generation (the machine drops them on every
            // transition), so the lease id alone identifies a live probe.
            Ticket {
                generation: m.generation(),
                lease: Some(ticket & !(PROBE | INJECT)),
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn failed(&self, ticket: u64, kind: Option<Count>) {
        self.counters.add(Count::Failures);
        self.wake_store();
        if let Some(kind) = kind {
            self.counters.add(kind);
        }
        self.fleet_report(ticket, ProbeOutcome::Failed);
        let rate = self.config.failure_rate.is_some();
        self.update(|m, now| {
            let successes = if rate {
                let epoch = rate_epoch(self.config.window, now);
                self.counters.window_successes(epoch, m.window_floor())
            } else {
                0
            };
            let t = Self::ticket(m, ticket);
            ((), m.on_failure(now, t, successes))
        });
    }

    /// Everything but a plain success: failures, slow calls, the rate rule's window, probes.
    #[cold]
    #[inline(never)]
    fn settle_slow(&self, ticket: u64, failed: bool, started: Option<Instant>) {
        if failed {
            return self.failed(ticket, None);
        }
        if let (Some(limit), Some(started)) = (self.config.slow_call, started)
            && let took = self.clock.now().saturating_duration_since(started)
            && took > limit
        {
            self.note_error_text(format_args!("slow call: took {took:?}, over {limit:?}"));
            return self.failed(ticket, Some(Count::SlowCalls));
        }
        self.counters.add(Count::Successes);
        if self.config.failure_rate.is_some() {
            self.counters
                .add_window_success(rate_epoch(self.config.window, self.now()));
        }
        if ticket & PROBE != 0 {
            self.fleet_report(ticket, ProbeOutcome::Succeeded);
            self.update(|m, now| {
                let t = Self::ticket(m, ticket);
                ((), m.on_success(now, t))
            });
        }
    }

    #[cold]
    #[inline(never)]
    fn dropped(&self, ticket: u64) {
        if std::thread::panicking() && crate::breaker::future::take_body_panicked() {
            self.note_error_text(format_args!("the call panicked"));
            self.failed(ticket, Some(Count::Panics));
            return;
        }
        self.counters.add(Count::Cancelled);
        self.fleet_report(ticket, ProbeOutcome::Abandoned);
        if ticket & PROBE != 0 {
            self.update(|m, _| {
                let t = Self::ticket(m, ticket);
                m.on_cancel(t);
                ((), None)
            });
        }
    }

    /// The current state, with the passage of time applied (an OPEN breaker whose time is up
    /// reports HALF_OPEN).
    #[must_use]
    pub fn state(&self) -> State {
        self.update(|m, now| {
            let t = m.tick(now);
            (m.state(), t)
        })
    }

    /// The state as last published for the hot path, without letting time pass (no lock, no
    /// transition).
    #[must_use]
    pub fn published_state(&self) -> State {
        match self.word.load(Ordering::Acquire) & MODE_MASK {
            MODE_OPEN => State::Open,
            MODE_HALF_OPEN => State::HalfOpen,
            _ => State::Closed,
        }
    }

    /// The operator's forced state, if any.
    #[must_use]
    pub fn forced(&self) -> Option<Forced> {
        self.machine().forced()
    }

    /// Time left in OPEN (`None` unless OPEN and not forced).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        let now = self.now();
        let m = self.machine();
        (m.state() == State::Open && m.forced().is_none() && m.open_until() > now)
            .then(|| m.retry_after(now))
            .flatten()
    }

    /// Failures currently inside the window.
    #[must_use]
    pub fn failures_in_window(&self) -> usize {
        let now = self.now();
        self.machine().failures_in_window(now)
    }

    /// Applies an operator command locally.
    pub fn apply(&self, forced: Option<Forced>) {
        self.update(|m, now| ((), m.force(now, forced)));
    }

    /// The counters.
    #[must_use]
    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.counters;
        let successes = c.get(Count::Successes);
        let failures = c.get(Count::Failures);
        let rejections = c.get(Count::Rejections);
        let cancelled = c.get(Count::Cancelled);
        CounterSnapshot {
            calls: successes + failures + rejections + cancelled,
            successes,
            failures,
            timeouts: c.get(Count::Timeouts),
            slow_calls: c.get(Count::SlowCalls),
            panics: c.get(Count::Panics),
            rejections,
            fallbacks: c.get(Count::Fallbacks),
            cancelled,
        }
    }
}

/// How a probe held under a fleet lease ended.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    /// The probe succeeded.
    Succeeded,
    /// The probe failed (or its lease ran out).
    Failed,
    /// The probe's future was dropped: no verdict.
    Abandoned,
}

/// Work for a shared store about fleet probe leases.
#[derive(Debug, Default)]
pub(crate) struct ProbeWork {
    /// Calls waiting for a fleet lease, by local lease id: ask the fleet for one each, and
    /// answer with [`Breaker::answer_probe`].
    pub acquire: Vec<u64>,
    /// Leases to give back, with their verdict.
    pub results: Vec<(String, ProbeOutcome)>,
}

#[derive(Debug, Default)]
struct FleetProbes {
    gate: bool,
    /// Calls waiting for the fleet's answer, by local lease id.
    waiting: std::collections::HashMap<u64, Waiting>,
    /// Fleet lease tokens held by probes running here, by local lease id.
    in_use: std::collections::HashMap<u64, String>,
    /// The fleet said its probe slots are taken until then (cleared by fleet news).
    denied_until: Option<std::time::Instant>,
    work: ProbeWork,
}

#[derive(Debug, Default)]
struct Waiting {
    answer: Option<Result<String, Duration>>,
    waker: Option<std::task::Waker>,
}

/// The wait of a call for the fleet's answer to its request for a probe lease
/// ([`Breaker::wait_for_probe`]). Dropping it gives the local slot (and any lease granted) back.
#[derive(Debug)]
#[must_use = "a rejection may be a request for a probe lease: await it"]
pub struct ProbeWait {
    breaker: &'static Breaker,
    rejected: Rejected,
    waiting: bool,
}

impl std::future::Future for ProbeWait {
    type Output = Result<Permit, Rejected>;

    #[inline]
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if !self.waiting {
            return std::task::Poll::Ready(Err(self.rejected));
        }
        self.poll_answer(cx)
    }
}

impl ProbeWait {
    #[cold]
    fn poll_answer(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Permit, Rejected>> {
        let b = self.breaker;
        let lease = self.rejected.0 & !AWAIT;
        let answer = {
            let mut f = b.fleet.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(w) = f.waiting.get_mut(&lease) else {
                // Cannot happen (only this future removes its entry); refuse rather than hang.
                self.waiting = false;
                return std::task::Poll::Ready(Err(b.rejected(Some(dur_nanos(FLEET_PROBE_RETRY)))));
            };
            match w.answer.take() {
                Some(answer) => {
                    f.waiting.remove(&lease);
                    answer
                }
                None => {
                    w.waker = Some(cx.waker().clone());
                    return std::task::Poll::Pending;
                }
            }
        };
        self.waiting = false;
        std::task::Poll::Ready(b.probe_answered(lease, answer))
    }
}

impl Drop for ProbeWait {
    #[inline]
    fn drop(&mut self) {
        if self.waiting {
            self.breaker.probe_wait_dropped(self.rejected.0 & !AWAIT);
        }
    }
}

/// A local verdict for a shared store: a probe succeeded (the breaker closed here).
pub(crate) const LOCAL_PROBE_OK: u8 = 1;
/// A local verdict for a shared store: a probe failed (the breaker re-opened here).
pub(crate) const LOCAL_PROBE_FAILED: u8 = 2;
/// A local verdict for a shared store: this instance's own failures opened the breaker.
pub(crate) const LOCAL_TRIP: u8 = 3;

/// A rejected call: nanoseconds until a call may be admitted, or "held open" (`u64::MAX`). Eight bytes, so
/// `Result<Permit, Rejected>` stays in two registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(u64);

const HELD_OPEN: u64 = u64::MAX;

/// Rejection codes above any real wait: the breaker is swapped (call the fallback first), or a
/// fault was injected.
const SWAPPED: u64 = u64::MAX - 1;
const INJECTED_ERROR: u64 = u64::MAX - 2;
const INJECTED_TIMEOUT: u64 = u64::MAX - 3;
const INJECTED_OPEN: u64 = u64::MAX - 4;
/// Marks a rejection that is a request for a fleet probe lease (the rest is the local lease
/// id); below it, a rejection is the nanoseconds until a call may be admitted (146 years and
/// more read as "held open").
const AWAIT: u64 = 1 << 62;

impl Rejected {
    /// When a call may be admitted again; `None` while an operator holds the breaker open (or
    /// for an injected fault).
    #[must_use]
    pub fn retry_after(self) -> Option<Duration> {
        (self.0 < AWAIT).then(|| Duration::from_nanos(self.0))
    }

    /// The call is to wait for the fleet's answer to a probe-lease request
    /// ([`Breaker::wait_for_probe`]).
    #[inline]
    #[must_use]
    pub fn is_await(self) -> bool {
        self.0 & AWAIT != 0 && self.0 < INJECTED_OPEN
    }

    /// The breaker is swapped: the fallback is to be called first.
    #[inline]
    #[must_use]
    pub fn is_swapped(self) -> bool {
        self.0 == SWAPPED
    }
}

/// How soon a call rejected for want of a fleet probe lease may try again.
const FLEET_PROBE_RETRY: Duration = Duration::from_millis(50);

/// Marks a probe's ticket (the rest is the lease id); a normal call's ticket is its generation.
const PROBE: u64 = 1 << 63;
/// Marks a ticket whose call waits for an injected delay (or an injected timeout) first.
const INJECT: u64 = 1 << 62;

/// Permission to run one call: 16 bytes, so it travels in registers. Settling it records the
/// outcome; dropping it unsettled (the call's future was dropped, or it panicked) counts a
/// cancellation, which frees a probe slot, or a panic, which is a failure.
#[derive(Debug)]
pub struct Permit {
    breaker: &'static Breaker,
    ticket: u64,
}

impl Permit {
    /// Records the outcome of a call that returned; `true` when it counts as a failure (the
    /// caller then serves the fallback, if any). `failure_if` decides which errors count (all
    /// of them when `None`); a success slower than `slow_call` counts as a failure but its
    /// result is still the caller's to return.
    #[inline(always)]
    pub fn settle<R: BreakerResult>(
        self,
        result: &R,
        failure_if: Option<fn(&R::Error) -> bool>,
        started: Option<Instant>,
        describe: fn(&R::Error, &mut String),
    ) -> bool {
        let (b, ticket) = (self.breaker, self.ticket);
        std::mem::forget(self);
        let failed = match result.err_ref() {
            Some(e) => {
                let failed = failure_if.is_none_or(|f| f(e));
                if failed {
                    b.note_error(describe, e);
                }
                failed
            }
            None => false,
        };
        if !failed && b.plain && ticket & PROBE == 0 {
            b.counters.add(Count::Successes);
            return false;
        }
        b.settle_slow(ticket, failed, started);
        failed
    }

    /// The permit's ticket; the permit is consumed without being settled.
    fn into_ticket(self) -> u64 {
        let ticket = self.ticket;
        std::mem::forget(self);
        ticket
    }

    /// An injected delay to wait before the call runs (`None`, at the cost of one bit test,
    /// unless a `delay` or `timeout` fault is injected). `timed`: the function declares a
    /// `timeout`; without one (its breaker may be shared with a function that has one) only a
    /// `delay` fault waits: a `timeout` fault cannot time it out, so it runs.
    #[inline]
    #[must_use]
    pub fn injected_delay(&self, timed: bool) -> Option<std::pin::Pin<Box<tokio::time::Sleep>>> {
        if self.ticket & INJECT == 0 {
            return None;
        }
        self.breaker.injected_sleep(timed)
    }

    /// Records that the call was abandoned after `timeout`; returns the error to report.
    #[cold]
    #[must_use]
    pub fn timed_out(self) -> BreakerError {
        let (b, ticket) = (self.breaker, self.ticket);
        std::mem::forget(self);
        let after = b.config.timeout.unwrap_or_default();
        b.note_error_text(format_args!("timed out after {after:?}"));
        b.failed(ticket, Some(Count::Timeouts));
        BreakerError::Timeout {
            breaker: b.name,
            after,
        }
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        self.breaker.dropped(self.ticket);
    }
}

/// The alert a change of state raises, if any: CLOSED to OPEN is `opened`, anything to CLOSED
/// `recovered`; HALF_OPEN is logged, not alerted.
#[must_use]
pub(crate) fn alert_kind(from: State, to: State) -> Option<AlertKind> {
    match (from, to) {
        (State::Closed, State::Open) => Some(AlertKind::Opened),
        (State::Open | State::HalfOpen, State::Closed) => Some(AlertKind::Recovered),
        _ => None,
    }
}
