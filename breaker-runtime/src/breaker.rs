//! One breaker: the machine behind a mutex for the rare paths, and two atomic words that the hot
//! path reads.
//!
//! CLOSED admission is one atomic load; counting a success is a load and a store on a cache line
//! this thread owns ([`crate::counters`]). Only failures, HALF_OPEN probes, expiry of OPEN and
//! operator commands take the mutex.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::Config;
use crate::counters::{Count, Counters};
use crate::error::BreakerError;
use crate::machine::{Admit, Forced, Machine, Nanos, State, Ticket, Transition, rate_epoch};
use crate::notifier::{self, CALL_EVENTS, EventKind, FallbackReason};
use crate::timeout::Timeout;

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
#[derive(Debug)]
pub struct Breaker {
    name: &'static str,
    config: Config,
    /// `generation << 4 | forced << 2 | mode`, published after every change of the machine.
    word: AtomicU64,
    /// End of OPEN in clock nanoseconds, published before `word`.
    open_until: AtomicU64,
    machine: Mutex<Machine>,
    counters: Counters,
    clock: Arc<dyn Clock>,
    origin: Instant,
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

    /// Asks to run a call: a permit, or the rejection to report.
    ///
    /// # Errors
    /// [`BreakerError::Open`] when the breaker is OPEN, forced open, or HALF_OPEN with every probe
    /// slot taken.
    #[inline]
    pub fn acquire(&'static self) -> Result<Permit, BreakerError> {
        let w = self.word.load(Ordering::Acquire);
        if w & MODE_MASK == MODE_CLOSED {
            return Ok(Permit {
                breaker: self,
                ticket: Ticket {
                    generation: w >> GENERATION_SHIFT,
                    lease: None,
                },
                armed: true,
            });
        }
        self.acquire_slow(w)
    }

    #[inline(never)]
    fn acquire_slow(&'static self, w: u64) -> Result<Permit, BreakerError> {
        if w & FORCED_MASK == FORCED_OPEN {
            return Err(self.reject(None));
        }
        if w & MODE_MASK == MODE_OPEN {
            let until = self.open_until.load(Ordering::Acquire);
            let now = self.now();
            if now < until {
                return Err(self.reject(Some(Duration::from_nanos(until - now))));
            }
        }
        match self.update(|m, now| m.acquire(now)) {
            Admit::Call { generation } => Ok(self.permit(generation, None)),
            Admit::Probe { generation, lease } => Ok(self.permit(generation, Some(lease))),
            Admit::Reject { retry_after } => Err(self.reject(retry_after)),
        }
    }

    fn permit(&'static self, generation: u64, lease: Option<u64>) -> Permit {
        Permit {
            breaker: self,
            ticket: Ticket { generation, lease },
            armed: true,
        }
    }

    fn reject(&self, retry_after: Option<Duration>) -> BreakerError {
        self.counters.add(Count::Rejections);
        if CALL_EVENTS.load(Ordering::Relaxed) {
            notifier::emit(self.name, EventKind::Rejected { retry_after });
        }
        BreakerError::Open {
            breaker: self.name,
            retry_after,
        }
    }

    /// Counts a call served by the fallback.
    pub fn note_fallback(&self, reason: FallbackReason) {
        self.counters.add(Count::Fallbacks);
        if CALL_EVENTS.load(Ordering::Relaxed) {
            notifier::emit(self.name, EventKind::Fallback { reason });
        }
    }

    fn record_failure(&self, ticket: Ticket) {
        let rate = self.config.failure_rate.is_some();
        self.update(|m, now| {
            let successes = if rate {
                let epoch = rate_epoch(self.config.window, now);
                self.counters.window_successes(epoch, m.window_floor())
            } else {
                0
            };
            ((), m.on_failure(now, ticket, successes))
        });
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
            .then(|| Duration::from_nanos(m.open_until() - now))
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

/// The result of a call that was admitted.
#[derive(Debug)]
pub enum Completed<R> {
    /// The function's result, counted as a success (this includes errors `failure_if` rejects,
    /// and slow successes, which count as failures but still return their result).
    Ok(R),
    /// The function's error, counted as a failure.
    Failed(R),
    /// The call was abandoned after `timeout`.
    TimedOut(BreakerError),
}

/// Permission to run one call. Dropping it without an outcome (the call's future was dropped,
/// or it panicked) settles it: a panic counts as a failure, a cancellation frees a probe slot.
#[derive(Debug)]
pub struct Permit {
    breaker: &'static Breaker,
    ticket: Ticket,
    armed: bool,
}

impl Permit {
    /// Runs the call under the breaker's `timeout` and `slow_call` rules and records its outcome.
    /// `failure_if` decides which errors count as failures (all of them when `None`).
    pub async fn run<T, E, F>(
        mut self,
        call: F,
        failure_if: Option<fn(&E) -> bool>,
    ) -> Completed<Result<T, E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let b = self.breaker;
        let started = b.config.slow_call.map(|_| b.clock.now());
        let result = match b.config.timeout {
            None => call.await,
            Some(after) => match Timeout::new(call, after).await {
                Some(r) => r,
                None => {
                    self.failed(Some(Count::Timeouts));
                    return Completed::TimedOut(BreakerError::Timeout {
                        breaker: b.name,
                        after,
                    });
                }
            },
        };
        let failed = match &result {
            Ok(_) => false,
            Err(e) => failure_if.is_none_or(|f| f(e)),
        };
        if failed {
            self.failed(None);
            return Completed::Failed(result);
        }
        if let (Some(limit), Some(started)) = (b.config.slow_call, started)
            && b.clock.now().saturating_duration_since(started) > limit
        {
            self.failed(Some(Count::SlowCalls));
        } else {
            self.succeeded();
        }
        Completed::Ok(result)
    }

    #[inline]
    fn succeeded(&mut self) {
        self.armed = false;
        let b = self.breaker;
        b.counters.add(Count::Successes);
        if b.config.failure_rate.is_some() {
            b.counters
                .add_window_success(rate_epoch(b.config.window, b.now()));
        }
        if self.ticket.lease.is_some() {
            let ticket = self.ticket;
            b.update(|m, now| ((), m.on_success(now, ticket)));
        }
    }

    fn failed(&mut self, kind: Option<Count>) {
        self.armed = false;
        let b = self.breaker;
        b.counters.add(Count::Failures);
        if let Some(kind) = kind {
            b.counters.add(kind);
        }
        b.record_failure(self.ticket);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if std::thread::panicking() {
            self.failed(Some(Count::Panics));
        } else {
            self.armed = false;
            let b = self.breaker;
            b.counters.add(Count::Cancelled);
            if self.ticket.lease.is_some() {
                let ticket = self.ticket;
                b.update(|m, _| {
                    m.on_cancel(ticket);
                    ((), None)
                });
            }
        }
    }
}
