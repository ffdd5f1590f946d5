//! One breaker: the machine behind a mutex for the rare paths, and two atomic words that the hot
//! path reads.
//!
//! CLOSED admission is one atomic load; counting a success is a load and a store on a cache line
//! this thread owns ([`crate::counters`]). Only failures, HALF_OPEN probes, expiry of OPEN and
//! operator commands take the mutex.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::__private::BreakerResult;
use crate::clock::Clock;
use crate::config::Config;
use crate::counters::{Count, Counters};
use crate::error::BreakerError;
use crate::machine::{
    Admit, FleetState, Forced, Machine, Nanos, Reason, State, Ticket, Transition, dur_nanos,
    rate_epoch,
};
use crate::notifier::{self, CALL_EVENTS, EventKind, FallbackReason};

const MODE_MASK: u64 = 0b11;
const MODE_CLOSED: u64 = 0;
const MODE_OPEN: u64 = 1;
const MODE_HALF_OPEN: u64 = 2;
const FORCED_SHIFT: u32 = 2;
const FORCED_MASK: u64 = 0b11 << FORCED_SHIFT;
const FORCED_OPEN: u64 = 1 << FORCED_SHIFT;
const FORCED_CLOSED: u64 = 2 << FORCED_SHIFT;
const GENERATION_SHIFT: u32 = 4;

/// A circuit breaker. Reached through [`crate::Handle`]; generated code uses it directly.
pub struct Breaker {
    name: &'static str,
    config: Config,
    /// `generation << 4 | forced << 2 | mode`, published after every change of the machine.
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
    /// HALF_OPEN probe leases held from a shared store.
    fleet: Mutex<FleetProbes>,
    clock: Arc<dyn Clock>,
    origin: Instant,
}

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
    pub(crate) fn new(name: &'static str, config: Config, clock: Arc<dyn Clock>) -> Self {
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
            fleet: Mutex::new(FleetProbes::default()),
            clock,
            origin,
        }
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
            crate::metrics_export::transition(self.name, &t);
            notifier::emit(
                self.name,
                EventKind::Transition {
                    from: t.from,
                    to: t.to,
                    reason: t.reason,
                    open_for: t.open_for,
                    forced,
                },
            );
        }
        out
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
            let unused: Vec<_> = f.granted.drain(..).map(|(t, _)| t).collect();
            f.work
                .results
                .extend(unused.into_iter().map(|t| (t, ProbeOutcome::Abandoned)));
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
    pub fn take_local_event(&self) -> u8 {
        self.local_event.swap(0, Ordering::AcqRel)
    }

    fn fleet_lease_for(&self, lease: u64) -> bool {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if !f.gate {
            return true;
        }
        match f.granted.pop() {
            Some((token, _)) => {
                f.in_use.insert(lease, token);
                true
            }
            None => {
                // Wake the store only for the first call that wants a lease since the last
                // flush: a busy HALF_OPEN must not turn into a storm of requests.
                let first = !f.work.wanted;
                f.work.wanted = true;
                drop(f);
                if first {
                    self.wake_store();
                }
                false
            }
        }
    }

    /// Reports how the probe holding local lease `lease` ended, if it held a fleet lease.
    fn fleet_report(&self, ticket: u64, outcome: ProbeOutcome) {
        if ticket & PROBE == 0 {
            return;
        }
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = f.in_use.remove(&(ticket & !PROBE)) {
            f.work.results.push((token, outcome));
            drop(f);
            self.wake_store();
        }
    }

    /// For shared stores: turns fleet-wide probing on (the store is reachable) or off (probing
    /// goes on locally). Turning it off abandons the leases held.
    pub fn set_fleet_gate(&self, on: bool) {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if f.gate == on {
            return;
        }
        f.gate = on;
        if !on {
            let unused: Vec<_> = f.granted.drain(..).map(|(t, _)| t).collect();
            f.work
                .results
                .extend(unused.into_iter().map(|t| (t, ProbeOutcome::Abandoned)));
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
    }

    /// For shared stores: a probe lease granted by the fleet.
    pub fn grant_probe(&self, token: String) {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        if f.gate && self.published_state() == State::HalfOpen {
            f.granted.push((token, std::time::Instant::now()));
        } else {
            // Not probing here any more: give it back at once rather than let it expire (an
            // expired lease counts as a failed probe).
            f.work.results.push((token, ProbeOutcome::Abandoned));
        }
    }

    /// For shared stores: the probe work accumulated since the last call. A granted lease no
    /// call has used within `unused_after` is handed back (as abandoned), so an idle instance
    /// does not sit on the fleet's probe budget or let it expire as a failure.
    pub fn take_probe_work(&self, unused_after: Duration) -> ProbeWork {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        let (stale, fresh): (Vec<_>, Vec<_>) = f
            .granted
            .drain(..)
            .partition(|(_, at)| now.duration_since(*at) >= unused_after);
        f.granted = fresh;
        f.work
            .results
            .extend(stale.into_iter().map(|(t, _)| (t, ProbeOutcome::Abandoned)));
        std::mem::take(&mut f.work)
    }

    /// For shared stores: puts back probe results that could not be delivered.
    pub fn restore_probe_results(&self, results: Vec<(String, ProbeOutcome)>) {
        if results.is_empty() {
            return;
        }
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        let newer = std::mem::take(&mut f.work.results);
        f.work.results = results;
        f.work.results.extend(newer);
    }

    /// For shared stores: puts back a verdict that could not be delivered (unless a newer one
    /// arrived meanwhile).
    pub fn restore_local_event(&self, event: u8) {
        let _ = self
            .local_event
            .compare_exchange(0, event, Ordering::AcqRel, Ordering::Acquire);
    }

    /// For shared stores: called on every failure and local verdict, to flush at once.
    pub fn set_store_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.store_waker.set(wake);
    }

    /// For shared stores: adopts the fleet's state (see [`Machine::apply_fleet`]).
    pub fn apply_fleet(&self, fleet: FleetState, generation: u64, unflushed_failures: bool) {
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
    pub fn fleet_generation(&self) -> u64 {
        self.machine().fleet_generation()
    }

    /// Consecutive openings without a close (drives the backoff).
    #[must_use]
    pub fn opens_in_row(&self) -> u32 {
        self.machine().opens_in_row()
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
        self.open_until.store(m.open_until(), Ordering::Release);
        self.word.store(
            (m.generation() << GENERATION_SHIFT) | forced | mode,
            Ordering::Release,
        );
    }

    /// Asks to run a call: a permit, or a rejection (counted already) that
    /// [`Breaker::rejection`] turns into the error to report.
    ///
    /// # Errors
    /// [`Rejected`] when the breaker is OPEN, forced open, or HALF_OPEN with every probe slot
    /// taken.
    #[inline]
    pub fn admit(&'static self) -> Result<Permit, Rejected> {
        let w = self.word.load(Ordering::Acquire);
        if w & MODE_MASK == MODE_CLOSED {
            return Ok(Permit {
                breaker: self,
                ticket: w >> GENERATION_SHIFT,
            });
        }
        self.admit_slow(w)
    }

    #[inline(never)]
    fn admit_slow(&'static self, w: u64) -> Result<Permit, Rejected> {
        let decided = if w & FORCED_MASK == FORCED_OPEN {
            Err(None)
        } else if w & MODE_MASK == MODE_OPEN
            && let now = self.now()
            && let until = self.open_until.load(Ordering::Acquire)
            && now < until
        {
            Err(Some(until - now))
        } else {
            match self.update(|m, now| m.acquire(now)) {
                Admit::Call { generation } => Ok(generation),
                Admit::Probe { lease, .. } if self.fleet_lease_for(lease) => Ok(PROBE | lease),
                Admit::Probe { lease, .. } => {
                    // HALF_OPEN across the fleet: no lease held here yet. Give the local slot
                    // back, ask the store for a lease, and reject this call.
                    self.update(|m, _| {
                        m.on_cancel(Ticket {
                            generation: m.generation(),
                            lease: Some(lease),
                        });
                        ((), None)
                    });
                    Err(Some(dur_nanos(FLEET_PROBE_RETRY)))
                }
                Admit::Reject { retry_after } => Err(retry_after.map(dur_nanos)),
            }
        };
        match decided {
            Ok(ticket) => Ok(Permit {
                breaker: self,
                ticket,
            }),
            Err(retry_after) => {
                self.counters.add(Count::Rejections);
                let r = Rejected(retry_after.unwrap_or(HELD_OPEN));
                if CALL_EVENTS.load(Ordering::Relaxed) {
                    notifier::emit(
                        self.name,
                        EventKind::Rejected {
                            retry_after: r.retry_after(),
                        },
                    );
                }
                Err(r)
            }
        }
    }

    /// The error for a call [`Breaker::admit`] rejected.
    #[cold]
    #[must_use]
    pub fn rejection(&self, rejected: Rejected) -> BreakerError {
        BreakerError::Open {
            breaker: self.name,
            retry_after: rejected.retry_after(),
        }
    }

    /// The call's `timeout`.
    #[inline]
    #[must_use]
    pub fn timeout(&self) -> Option<Duration> {
        self.config.timeout
    }

    /// The start time a `slow_call` rule needs (no clock read without one).
    #[inline]
    #[must_use]
    pub fn started(&self) -> Option<Instant> {
        self.config.slow_call.map(|_| self.clock.now())
    }

    /// Counts a call served by the fallback.
    pub fn note_fallback(&self, reason: FallbackReason) {
        self.counters.add(Count::Fallbacks);
        if CALL_EVENTS.load(Ordering::Relaxed) {
            notifier::emit(self.name, EventKind::Fallback { reason });
        }
    }

    /// The machine's view of a permit's ticket.
    fn ticket(m: &Machine, ticket: u64) -> Ticket {
        if ticket & PROBE == 0 {
            Ticket {
                generation: ticket,
                lease: None,
            }
        } else {
            // Leases live only in the current generation (the machine drops them on every
            // transition), so the lease id alone identifies a live probe.
            Ticket {
                generation: m.generation(),
                lease: Some(ticket & !PROBE),
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
            && self.clock.now().saturating_duration_since(started) > limit
        {
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
        if std::thread::panicking() && crate::timeout::take_body_panicked() {
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
pub enum ProbeOutcome {
    /// The probe succeeded.
    Succeeded,
    /// The probe failed (or its lease ran out).
    Failed,
    /// The probe's future was dropped: no verdict.
    Abandoned,
}

/// Work for a shared store about fleet probe leases.
#[derive(Debug, Default)]
pub struct ProbeWork {
    /// A call found HALF_OPEN without a lease here: ask the fleet for one.
    pub wanted: bool,
    /// Leases to give back, with their verdict.
    pub results: Vec<(String, ProbeOutcome)>,
}

#[derive(Debug, Default)]
struct FleetProbes {
    gate: bool,
    granted: Vec<(String, std::time::Instant)>,
    in_use: std::collections::HashMap<u64, String>,
    work: ProbeWork,
}

/// A local verdict for a shared store: a probe succeeded (the breaker closed here).
pub const LOCAL_PROBE_OK: u8 = 1;
/// A local verdict for a shared store: a probe failed (the breaker re-opened here).
pub const LOCAL_PROBE_FAILED: u8 = 2;
/// A local verdict for a shared store: this instance's own failures opened the breaker.
pub const LOCAL_TRIP: u8 = 3;

/// A rejected call: nanoseconds until a call may be admitted, or "held open" (`u64::MAX`). Eight bytes, so
/// `Result<Permit, Rejected>` stays in two registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(u64);

const HELD_OPEN: u64 = u64::MAX;

impl Rejected {
    /// When a call may be admitted again; `None` while an operator holds the breaker open.
    #[must_use]
    pub fn retry_after(self) -> Option<Duration> {
        (self.0 != HELD_OPEN).then(|| Duration::from_nanos(self.0))
    }
}

/// How soon a call rejected for want of a fleet probe lease may try again.
const FLEET_PROBE_RETRY: Duration = Duration::from_millis(50);

/// Marks a probe's ticket (the rest is the lease id); a normal call's ticket is its generation.
const PROBE: u64 = 1 << 63;

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
    ) -> bool {
        let (b, ticket) = (self.breaker, self.ticket);
        std::mem::forget(self);
        let failed = match result.err_ref() {
            Some(e) => failure_if.is_none_or(|f| f(e)),
            None => false,
        };
        if !failed && b.plain && ticket & PROBE == 0 {
            b.counters.add(Count::Successes);
            return false;
        }
        b.settle_slow(ticket, failed, started);
        failed
    }

    /// Records that the call was abandoned after `timeout`; returns the error to report.
    #[cold]
    #[must_use]
    pub fn timed_out(self) -> BreakerError {
        let (b, ticket) = (self.breaker, self.ticket);
        std::mem::forget(self);
        b.failed(ticket, Some(Count::Timeouts));
        BreakerError::Timeout {
            breaker: b.name,
            after: b.config.timeout.unwrap_or_default(),
        }
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        self.breaker.dropped(self.ticket);
    }
}
