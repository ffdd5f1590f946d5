//! One breaker: the machine behind a mutex for the rare paths, and two atomic words that the hot
//! path reads.
//!
//! CLOSED admission is one atomic load; counting a success is a load and a store on a cache line
//! this thread owns ([`crate::core::counters`]). Only failures, HALF_OPEN probes, expiry of OPEN and
//! operator commands take the mutex.

mod alert;
mod bulkhead;
mod chain;
mod coarse;
pub(crate) mod contract;
mod controls;
mod fleet;
pub(crate) mod future;
mod permit;

use chain::CHAIN_OK;
use controls::Controls;
use fleet::{FLEET_PROBE_RETRY, FleetProbes};
use permit::{
    AWAIT, FULL, HELD_OPEN, INJECTED_ERROR, INJECTED_OPEN, INJECTED_TIMEOUT, PROBE, SWAPPED,
    UNJUDGED,
};

pub(crate) use alert::alert_kind;
#[cfg(feature = "redis")]
pub(crate) use permit::ProbeOutcome;
pub use permit::{Permit, Rejected, Started};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::breaker::contract::BreakerResult;
use crate::core::clock::{Clock, TokioClock};
use crate::core::config::{Config, Mode};
use crate::core::counters::{Count, Counters};
use crate::core::error::BreakerError;
use crate::core::fault::Fault;
use crate::core::machine::{Admit, Forced, Machine, Nanos, Reason, State, Transition, dur_nanos};
use crate::notify::{self as notifier, CALL_EVENTS, EventKind, FallbackReason};

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
/// The breaker has a bulkhead (`max_concurrent`): every call takes the slow path, which takes
/// a place. Set for the breaker's whole life, so one without a bulkhead never sees it.
const LIMITED: u64 = 1 << 5;
/// The breaker is in shadow mode (`mode = "shadow"`, `breakerctl shadow`): it counts but never
/// acts on a call. Outside the CLOSED mask (a CLOSED shadow breaker's calls stay on the one-load
/// fast path, judged as usual), inside the armed-rejection mask (an OPEN shadow breaker's calls
/// take the slow path, which runs them).
const SHADOW: u64 = 1 << 6;
const GENERATION_SHIFT: u32 = 7;

/// A circuit breaker. Reached through [`crate::Handle`]; generated code uses it directly.
pub struct Breaker {
    name: &'static str,
    config: Config,
    /// `generation << 7 | shadow << 6 | limited << 5 | controlled << 4 | forced << 2 | mode`,
    /// published after
    /// every change of the machine or the controls.
    word: AtomicU64,
    /// End of OPEN in clock nanoseconds, published before `word`.
    open_until: AtomicU64,
    /// While OPEN and armed: when rejections stop being decided on the coarse clock (its scale,
    /// `GUARD` before OPEN ends); 0 otherwise. Published before `word`.
    armed_until: AtomicU64,
    /// `generation + 1` of the OPEN that arming was decided for (armed or declined), written
    /// under the machine's lock; 0 for none.
    armed_for: AtomicU64,
    /// The clock is the tokio clock: rejections may be armed.
    armable: bool,
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
    /// `max_concurrent`: the places calls in flight hold.
    bulkhead: Option<bulkhead::Bulkhead>,
    /// Mirrors the mode in force (the operator's, else the declared one) for
    /// [`Breaker::publish`].
    shadowed: std::sync::atomic::AtomicBool,
    /// Calls a shadow breaker would have rejected and ran.
    shadow_rejections: AtomicU64,
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
    /// Calls a breaker in shadow mode would have rejected (OPEN, HALF_OPEN without a free
    /// probe slot, a full bulkhead, an injected `open` fault) and ran anyway, unjudged: their
    /// results are not counted. Not in `rejections`, which counts calls refused for real.
    pub shadow_rejections: u64,
}

impl Breaker {
    pub(crate) fn new(
        name: &'static str,
        config: Config,
        fallback: Option<&'static str>,
        clock: Option<Arc<dyn Clock>>,
    ) -> Self {
        let armable = clock.is_none();
        let clock = clock.unwrap_or_else(|| Arc::new(TokioClock));
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
            armed_until: AtomicU64::new(0),
            armed_for: AtomicU64::new(0),
            armable,
            machine: Mutex::new(Machine::new(config, seed)),
            counters: Counters::new(config.failure_rate.is_some()),
            plain: config.slow_call.is_none()
                && config.failure_rate.is_none()
                && config.max_concurrent.is_none(),
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
            bulkhead: config
                .max_concurrent
                .map(|n| bulkhead::Bulkhead::new(n, config.max_wait)),
            shadowed: std::sync::atomic::AtomicBool::new(config.mode == Mode::Shadow),
            shadow_rejections: AtomicU64::new(0),
        }
        .published_once()
    }

    /// With the word's constant bits set (`LIMITED`) and the declared mode.
    fn published_once(self) -> Self {
        let limited = if self.bulkhead.is_some() { LIMITED } else { 0 };
        let shadow = if self.config.mode == Mode::Shadow {
            SHADOW
        } else {
            0
        };
        self.word.store(limited | shadow, Ordering::Release);
        self
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
        // An arming holds for its own OPEN only: not after a transition (a new generation), an
        // operator's force, or the fleet moving the end of OPEN (arming is tried again then).
        let armed_for = self.armed_for.load(Ordering::Relaxed);
        if armed_for != 0
            && (armed_for != m.generation() + 1
                || mode != MODE_OPEN
                || forced != 0
                || m.open_until() != self.open_until.load(Ordering::Relaxed))
        {
            self.armed_until.store(0, Ordering::Release);
            self.armed_for.store(0, Ordering::Relaxed);
        }
        let limited = if self.bulkhead.is_some() { LIMITED } else { 0 };
        let shadow = if self.shadowed.load(Ordering::Acquire) {
            SHADOW
        } else {
            0
        };
        self.open_until.store(m.open_until(), Ordering::Release);
        self.word.store(
            (m.generation() << GENERATION_SHIFT) | shadow | limited | controlled | forced | mode,
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
        if w & (MODE_MASK | CONTROLLED | LIMITED) == 0 {
            return Ok(Permit {
                breaker: self,
                ticket: w >> GENERATION_SHIFT,
            });
        }
        if w & (MODE_MASK | FORCED_MASK | CONTROLLED | SHADOW) == MODE_OPEN
            && let Some(r) = self.armed_rejection()
        {
            return Err(r);
        }
        self.admission(self.admit_slow(w, false))
    }

    /// Admission of the primary itself while the breaker is swapped (its fallback, called
    /// first, failed).
    ///
    /// # Errors
    /// As [`Breaker::admit`].
    #[doc(hidden)]
    pub fn admit_primary(&'static self) -> Result<Permit, Rejected> {
        let w = self.word.load(Ordering::Acquire);
        match self.admission(self.admit_slow(w, true)) {
            // No place in the bulkhead yet: the caller waits for one in the admission wait
            // (the only waiting code this returns).
            Err(r) if r.wants_place() => Err(r),
            Err(r) if r.is_await() => match r.delayed_ticket() {
                // An injected `delay`: the swapped path has kept its caller waiting for the
                // fallback already; the primary is tried at once.
                Some(ticket) => Ok(Permit {
                    breaker: self,
                    ticket,
                }),
                // The swapped path does not wait for a fleet probe lease: it has served its
                // fallback's answer already.
                None => {
                    self.release_wait(r.0 & !AWAIT);
                    self.run_anyway(self.rejected(Some(dur_nanos(FLEET_PROBE_RETRY))))
                }
            },
            other => other,
        }
    }

    /// [`Breaker::admit_slow`]'s answer as `(admitted, ticket or rejection code)`: two
    /// registers, where a `Result<Permit, Rejected>` is returned through memory.
    #[inline(always)]
    fn admission(&'static self, (admitted, v): (bool, u64)) -> Result<Permit, Rejected> {
        if admitted {
            Ok(Permit {
                breaker: self,
                ticket: v,
            })
        } else {
            Err(Rejected(v))
        }
    }

    /// Everything but a CLOSED admission and an armed OPEN rejection.
    #[inline(never)]
    fn admit_slow(&'static self, w: u64, primary: bool) -> (bool, u64) {
        match self.admit_general(w, primary) {
            Ok(permit) => (true, permit.into_ticket()),
            Err(r) => match self.run_anyway(r) {
                Ok(permit) => (true, permit.into_ticket()),
                Err(r) => (false, r.0),
            },
        }
    }

    /// Where every rejection is decided and counted, once (the armed OPEN fast path, which
    /// counts its own, aside). In shadow mode the call runs anyway under an unjudged permit (its
    /// result is not counted: a breaker acting on its verdict would not have seen it), counted
    /// in `shadow_rejections`; otherwise it is refused, counted in `rejections`. Every
    /// rejection source comes here: OPEN, HALF_OPEN without a slot, a denied fleet lease, a
    /// full bulkhead or its `max_wait` running out, injected `open`, `error` and `timeout`
    /// faults (the last two counted as failures already, not as rejections). Not a wait (a
    /// lease request, a held call: their end comes back here), and not a swap (the swapped
    /// path serves it). An operator's force-open is refused even in shadow: an order to stop
    /// calling, which shadow does not overrule.
    #[cold]
    #[inline(never)]
    pub(super) fn run_anyway(&'static self, r: Rejected) -> Result<Permit, Rejected> {
        if r.is_await() || r.is_swapped() {
            return Err(r);
        }
        let counted = !matches!(r.0, INJECTED_ERROR | INJECTED_TIMEOUT);
        let w = self.word.load(Ordering::Acquire);
        if w & SHADOW == 0 || w & FORCED_MASK == FORCED_OPEN {
            if counted {
                self.counters.add(Count::Rejections);
                if CALL_EVENTS.load(Ordering::Relaxed) {
                    self.emit_rejected(r);
                }
            }
            return Err(r);
        }
        if counted {
            self.shadow_rejections.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(b) = &self.bulkhead {
            b.force_take();
        }
        Ok(Permit {
            breaker: self,
            ticket: UNJUDGED,
        })
    }

    /// Whether this breaker refuses calls when its verdict says so: not in shadow mode, or
    /// forced open by an operator (which shadow does not overrule). What a fleet alert's
    /// shadow mark goes by.
    #[must_use]
    pub(crate) fn acts_on_calls(&self) -> bool {
        let w = self.word.load(Ordering::Acquire);
        w & SHADOW == 0 || w & FORCED_MASK == FORCED_OPEN
    }

    /// Whether the breaker is in shadow mode now (the operator's mode, else the declared one).
    #[must_use]
    pub fn is_shadow(&self) -> bool {
        self.word.load(Ordering::Acquire) & SHADOW != 0
    }

    /// An operator's mode (`Some(true)`: shadow, `Some(false)`: enforce), or `None` to go back
    /// to the declared `mode`. Applies to this process; [`crate::Handle::set_shadow`] goes
    /// through the store.
    ///
    /// Whether the switch turned shadow off while the breaker is OPEN or HALF_OPEN (not
    /// forced): calls are refused from now on, so an unmarked `opened` alert is due. Without a
    /// reachable shared store it is raised here; with one, the store raises it once for the
    /// fleet.
    pub(crate) fn set_shadow(&self, mode: Option<bool>) -> bool {
        let was_acting = self.acts_on_calls();
        let on = {
            let mut c = self.controls();
            c.shadow = mode;
            let on = mode.unwrap_or(self.config.mode == Mode::Shadow);
            // Stored under the controls' lock, so two switches racing cannot leave the older.
            self.shadowed.store(on, Ordering::Release);
            on
        };
        // A swap is dormant in shadow: the controlled flag follows.
        self.refresh_controlled();
        if self.is_shadow() != on {
            self.update(|_, _| ((), None));
        }
        let turned = !was_acting
            && self.acts_on_calls()
            && self.state() != State::Closed
            && self.forced().is_none();
        if turned && !self.fleet_gate_on() {
            self.now_enforcing();
        }
        turned
    }

    /// The operator's mode, if one was set (`None`: the declared `mode` is in force).
    #[must_use]
    pub fn shadow_override(&self) -> Option<bool> {
        self.controls().shadow
    }

    /// OPEN and armed: a rejection decided on the coarse clock, no clock read (see `coarse`);
    /// `None` when not armed, the coarse clock is stopped, or the armed end has come.
    #[inline(always)]
    fn armed_rejection(&self) -> Option<Rejected> {
        let until = self.armed_until.load(Ordering::Acquire);
        let now = coarse::now();
        if now == 0 || now >= until {
            return None;
        }
        if self
            .counters
            .add_counted(Count::Rejections)
            .is_multiple_of(64)
        {
            coarse::used();
        }
        let r = Rejected(until.saturating_add(dur_nanos(coarse::GUARD)) - now);
        if CALL_EVENTS.load(Ordering::Relaxed) {
            self.emit_rejected(r);
        }
        Some(r)
    }

    fn admit_general(&'static self, w: u64, primary: bool) -> Result<Permit, Rejected> {
        if w & LIMITED != 0 {
            return self.admit_limited(w, primary);
        }
        self.admit_controlled(w, primary)
    }

    /// A breaker with a bulkhead: admission as usual, then a place for the admitted call (a
    /// refused call never takes one, so it never crowds out one that would run). No place: a
    /// rejection (`Full`), or with `max_wait` the call is held in the admission wait until it
    /// has one.
    #[cold]
    fn admit_limited(&'static self, w: u64, primary: bool) -> Result<Permit, Rejected> {
        let Some(b) = &self.bulkhead else {
            return self.admit_controlled(w, primary);
        };
        match self.admit_controlled(w, primary) {
            Ok(permit) => {
                if b.try_take() {
                    Ok(permit)
                } else if w & SHADOW != 0 && b.max_wait.is_some() {
                    // Shadow: a call that would have waited for a place (and may have found
                    // one) runs at once, judged, over the limit.
                    b.force_take();
                    Ok(permit)
                } else if b.max_wait.is_some() {
                    Err(Rejected::held_for_place(permit.into_ticket()))
                } else {
                    Err(self.refuse_admitted(permit.into_ticket()))
                }
            }
            // Held for an injected delay: its place is taken now, or waited for after the
            // delay.
            Err(r) if r.delayed_ticket().is_some() => {
                if b.try_take() {
                    Err(r)
                } else if w & SHADOW != 0 && b.max_wait.is_some() {
                    b.force_take();
                    Err(r)
                } else if b.max_wait.is_some() {
                    Err(r.wanting_place())
                } else {
                    Err(self.refuse_admitted(r.delayed_ticket().unwrap_or_default()))
                }
            }
            // Refused, or waiting for a fleet lease (the place is taken with the lease).
            Err(r) => Err(r),
        }
    }

    /// An admitted call that finds no place in the bulkhead: the admission is undone (a
    /// probe's slot and fleet lease go back) and the call is counted as rejected.
    #[cold]
    pub(super) fn refuse_admitted(&self, ticket: u64) -> Rejected {
        if ticket & PROBE != 0 {
            self.fleet_report(ticket, permit::ProbeOutcome::Abandoned);
            self.update(|m, _| {
                let t = Self::ticket(m, ticket);
                m.on_cancel(t);
                ((), None)
            });
        }
        self.rejected(Some(FULL))
    }

    /// Gives back the place of a call that ended (no-op without a bulkhead).
    #[inline]
    pub(super) fn release_place(&self) {
        if let Some(b) = &self.bulkhead {
            b.release();
        }
    }

    /// Calls of this breaker in flight now and its `max_concurrent`, with a bulkhead.
    #[must_use]
    pub fn bulkhead_load(&self) -> Option<(u32, u32)> {
        self.bulkhead.as_ref().map(|b| (b.in_flight(), b.max()))
    }

    fn admit_controlled(&'static self, w: u64, primary: bool) -> Result<Permit, Rejected> {
        if w & CONTROLLED == 0 {
            return self.admit_state(w);
        }
        let now = self.now();
        let (swapped, fault) = {
            let c = self.controls();
            // Shadow wins over a swap: no call goes to the fallback, first or last.
            let swapped = c.swapped && self.fallback.is_some() && w & SHADOW == 0;
            (swapped, c.fault(now))
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

    /// A rejection with `code`, or "held open". Not counted yet: [`Breaker::run_anyway`]
    /// decides, once, whether it refuses the call (counted in `rejections`) or runs it in
    /// shadow mode (counted in `shadow_rejections`).
    fn rejected(&self, code: Option<u64>) -> Rejected {
        Rejected(code.unwrap_or(HELD_OPEN))
    }

    #[cold]
    fn emit_rejected(&self, r: Rejected) {
        notifier::emit_event(
            self.name,
            EventKind::Rejected {
                retry_after: r.retry_after(),
            },
            self.injected(),
        );
    }

    /// After a rejection decided on the real clock: arms the breaker's OPEN for the coarse
    /// clock, or wakes the coarse clock if it is armed already.
    ///
    /// Armed only on a multi-threaded tokio runtime with the tokio clock: tokio's time can be
    /// paused only on a current-thread runtime, and a paused test must see OPEN end exactly at
    /// `open_until`; a custom clock is not on the coarse clock's timeline. Decided once per OPEN.
    #[cold]
    #[inline(never)]
    fn arm(&self, w: u64) {
        let armed_for = (w >> GENERATION_SHIFT) + 1;
        if self.armed_for.load(Ordering::Relaxed) == armed_for {
            if self.armed_until.load(Ordering::Relaxed) != 0 && coarse::now() == 0 {
                coarse::start();
            }
            return;
        }
        let eligible = self.armable
            && tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
            && coarse::start();
        let m = self.machine();
        if m.generation() + 1 != armed_for
            || m.state() != State::Open
            || m.forced().is_some()
            || self.armed_for.load(Ordering::Relaxed) == armed_for
        {
            return;
        }
        // The coarse reading first, the breaker's second: `left` is then never more than what
        // is really left, so neither is a `retry_after` computed from the armed end.
        let real = coarse::real_now();
        let left = m.open_until().saturating_sub(self.now());
        let guard = dur_nanos(coarse::GUARD);
        if eligible && left > guard + dur_nanos(coarse::TICK) {
            self.armed_until
                .store(real.saturating_add(left - guard), Ordering::Release);
        }
        self.armed_for.store(armed_for, Ordering::Relaxed);
    }

    /// Whether OPEN rejections are decided on the coarse clock now (for tests and benchmarks).
    #[doc(hidden)]
    #[must_use]
    pub fn is_armed(&self) -> bool {
        self.armed_until.load(Ordering::Acquire) != 0
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
            self.arm(w);
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
            FULL => BreakerError::Full {
                breaker: self.name,
                max_concurrent: self.config.max_concurrent.unwrap_or(0),
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
            FULL => FallbackReason::Full,
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
    pub fn started(&self) -> Started {
        Started(if self.config.slow_call.is_some() {
            self.now()
        } else {
            0
        })
    }

    /// Counts a call served by the fallback.
    #[doc(hidden)]
    pub fn note_fallback(&self, reason: FallbackReason) {
        self.counters.add(Count::Fallbacks);
        if CALL_EVENTS.load(Ordering::Relaxed) {
            notifier::emit_event(self.name, EventKind::Fallback { reason }, self.injected());
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
        let shadow_rejections = self.shadow_rejections.load(Ordering::Relaxed);
        CounterSnapshot {
            calls: successes + failures + rejections + cancelled + shadow_rejections,
            successes,
            failures,
            timeouts: c.get(Count::Timeouts),
            slow_calls: c.get(Count::SlowCalls),
            panics: c.get(Count::Panics),
            rejections,
            fallbacks: c.get(Count::Fallbacks),
            cancelled,
            shadow_rejections,
        }
    }
}

#[cfg(test)]
mod armed_tests;
