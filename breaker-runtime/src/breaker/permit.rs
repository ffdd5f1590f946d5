//! What admission hands out: a [`Permit`] (an admitted call; settling or dropping it counts the
//! outcome) or a [`Rejected`] code.

use std::time::Duration;

use crate::breaker::Breaker;
use crate::breaker::contract::BreakerResult;
use crate::core::counters::Count;
use crate::core::error::BreakerError;
use crate::core::machine::{Machine, Ticket, rate_epoch};

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

/// A rejected call: nanoseconds until a call may be admitted, or "held open" (`u64::MAX`). Eight bytes, so
/// `Result<Permit, Rejected>` stays in two registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub(super) u64);

pub(super) const HELD_OPEN: u64 = u64::MAX;

/// Rejection codes above any real wait: the breaker is swapped (call the fallback first), or a
/// fault was injected.
pub(super) const SWAPPED: u64 = u64::MAX - 1;

pub(super) const INJECTED_ERROR: u64 = u64::MAX - 2;

pub(super) const INJECTED_TIMEOUT: u64 = u64::MAX - 3;

pub(super) const INJECTED_OPEN: u64 = u64::MAX - 4;

/// The bulkhead (`max_concurrent`) had no place for the call. The lowest of the codes above
/// any real wait.
pub(super) const FULL: u64 = u64::MAX - 5;

/// Marks a rejection that is a request for a fleet probe lease (the rest is the local lease
/// id); below it, a rejection is the nanoseconds until a call may be admitted (146 years and
/// more read as "held open").
pub(super) const AWAIT: u64 = 1 << 62;

/// With [`AWAIT`]: not a lease request but an admitted call that an injected `delay` fault
/// holds first; the rest is its ticket ([`DELAYED_PROBE`] for a probe's, then the lease id or
/// the generation, both below 2^60). Goes through the same wait as a lease request, so the
/// generated function has one await before its body, not two.
pub(super) const DELAYED: u64 = 1 << 61;

/// In a [`DELAYED`] code: the ticket is a probe's.
const DELAYED_PROBE: u64 = 1 << 60;

/// In a [`DELAYED`] code: the call holds no place in its bulkhead yet; the wait takes one (for
/// up to `max_wait`) before it hands out the permit.
const WANTS_PLACE: u64 = 1 << 59;

/// In a [`DELAYED`] code: held for a place only, no injected delay.
const PLACE_ONLY: u64 = 1 << 58;

/// In a place-only [`DELAYED`] code: the ticket has [`INJECT`].
const HELD_INJECT: u64 = 1 << 57;

/// The ticket's bits in a [`DELAYED`] code: a generation (far below 2^57) or a lease id.
const HELD_TICKET: u64 = HELD_INJECT - 1;

impl Rejected {
    /// When a call may be admitted again; `None` while an operator holds the breaker open (or
    /// for an injected fault).
    #[must_use]
    pub fn retry_after(self) -> Option<Duration> {
        (self.0 < AWAIT).then(|| Duration::from_nanos(self.0))
    }

    /// The call is to go through [`Breaker::wait_for_probe`] (or
    /// [`Breaker::admission_wait`]): the fleet's answer to a probe-lease request, or an injected
    /// `delay` before an admitted call.
    #[inline]
    #[must_use]
    pub fn is_await(self) -> bool {
        self.0 & AWAIT != 0 && self.0 < FULL
    }

    /// An admitted call held by an injected `delay`: its ticket.
    #[inline]
    pub(super) fn delayed_ticket(self) -> Option<u64> {
        (self.is_await() && self.0 & DELAYED != 0).then(|| {
            let probe = if self.0 & DELAYED_PROBE != 0 {
                PROBE
            } else {
                0
            };
            let inject = if self.0 & HELD_INJECT != 0 { INJECT } else { 0 };
            (self.0 & HELD_TICKET) | probe | inject
        })
    }

    /// The rejection code that holds an admitted call with `ticket` for an injected `delay`.
    pub(super) fn delayed(ticket: u64) -> Rejected {
        Rejected(AWAIT | DELAYED | Self::held(ticket))
    }

    /// The rejection code that holds an admitted call with `ticket` until it has a place in
    /// the bulkhead.
    pub(super) fn held_for_place(ticket: u64) -> Rejected {
        let inject = if ticket & INJECT != 0 { HELD_INJECT } else { 0 };
        Rejected(AWAIT | DELAYED | PLACE_ONLY | WANTS_PLACE | inject | Self::held(ticket))
    }

    fn held(ticket: u64) -> u64 {
        let probe = if ticket & PROBE != 0 {
            DELAYED_PROBE
        } else {
            0
        };
        probe | (ticket & HELD_TICKET)
    }

    /// A held call that still needs a place in the bulkhead (a delay hold found it full).
    pub(super) fn wanting_place(self) -> Rejected {
        Rejected(self.0 | WANTS_PLACE)
    }

    /// The same hold, its place taken.
    pub(super) fn placed(self) -> Rejected {
        Rejected(self.0 & !WANTS_PLACE)
    }

    /// A held call without a place in its bulkhead yet.
    pub(super) fn wants_place(self) -> bool {
        self.delayed_ticket().is_some() && self.0 & WANTS_PLACE != 0
    }

    /// A call held for a place only (no injected delay to sleep).
    pub(super) fn place_only(self) -> bool {
        self.delayed_ticket().is_some() && self.0 & PLACE_ONLY != 0
    }

    /// The breaker is swapped: the fallback is to be called first.
    #[inline]
    #[must_use]
    pub fn is_swapped(self) -> bool {
        self.0 == SWAPPED
    }
}

/// When an admitted call started, for a `slow_call` rule: the breaker's clock in nanoseconds
/// (never 0: readings start a day after the breaker's origin), or 0 without the rule. Eight
/// bytes where an `Option<Instant>` takes sixteen: it is held in every annotated function's
/// future across the call.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Started(pub(super) u64);

impl Started {
    /// No start time: for a breaker without a `slow_call` rule.
    pub const NONE: Started = Started(0);
}

/// Marks a probe's ticket (the rest is the lease id); a normal call's ticket is its generation.
pub(super) const PROBE: u64 = 1 << 63;

/// Marks a ticket whose call waits for an injected delay (or an injected timeout) first.
pub(super) const INJECT: u64 = 1 << 62;

/// The ticket of a call a breaker in shadow mode would have rejected (or whose deadline passed)
/// and runs anyway: nothing of its end is counted, its place (if any) goes back. The whole
/// ticket: no generation, no lease.
pub(super) const UNJUDGED: u64 = 1 << 61;

/// Permission to run one call: 16 bytes, so it travels in registers. Settling it records the
/// outcome; dropping it unsettled (the call's future was dropped, or it panicked) counts a
/// cancellation, which frees a probe slot, or a panic, which is a failure.
#[derive(Debug)]
pub struct Permit {
    pub(super) breaker: &'static Breaker,
    pub(super) ticket: u64,
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
        started: Started,
        describe: fn(&R::Error, &mut String),
    ) -> bool {
        let (b, ticket) = (self.breaker, self.ticket);
        std::mem::forget(self);
        let failed = match result.err_ref() {
            Some(e) => {
                let failed = failure_if.is_none_or(|f| f(e));
                // An unjudged call's error is not the breaker's last error either.
                if failed && ticket & UNJUDGED == 0 {
                    b.note_error(describe, e);
                }
                failed
            }
            None => false,
        };
        if !failed && b.plain && ticket & (PROBE | UNJUDGED) == 0 {
            b.counters.add(Count::Successes);
            return false;
        }
        b.settle_slow(ticket, failed, started)
    }

    /// The permit's ticket; the permit is consumed without being settled.
    pub(super) fn into_ticket(self) -> u64 {
        let ticket = self.ticket;
        std::mem::forget(self);
        ticket
    }

    /// The injected delay a function with `timeout` waits inside its timeout before the call
    /// runs (`None`, at the cost of one bit test, unless a `delay` or `timeout` fault is
    /// injected). Without a `timeout`, a `delay` is slept out in
    /// [`Breaker::admission_wait`] instead.
    #[inline]
    #[must_use]
    pub fn injected_delay(&self) -> Option<std::pin::Pin<Box<tokio::time::Sleep>>> {
        if self.ticket & INJECT == 0 {
            return None;
        }
        self.breaker.injected_sleep(true)
    }

    /// Records that the call was abandoned after `timeout`; returns the error to report.
    #[cold]
    #[must_use]
    pub fn timed_out(self) -> BreakerError {
        let (b, ticket) = (self.breaker, self.ticket);
        std::mem::forget(self);
        b.release_place();
        let after = b.config.timeout.unwrap_or_default();
        if ticket & UNJUDGED == 0 {
            b.note_error_text(format_args!("timed out after {after:?}"));
            b.failed(ticket, Some(Count::Timeouts));
        }
        BreakerError::Timeout {
            breaker: b.name,
            after,
        }
    }
}

impl Permit {
    /// The call's deadline passed with the breaker in shadow mode: the timeout is counted now
    /// (a hung provider trips a shadow breaker as it would a real one; a probe fails), and the
    /// call runs on, unjudged: its late result is the caller's, not counted again.
    #[cold]
    #[inline(never)]
    pub(super) fn shadow_timed_out(&mut self) {
        let (b, ticket) = (self.breaker, self.ticket);
        self.ticket = UNJUDGED;
        if ticket & UNJUDGED == 0 {
            let after = b.config.timeout.unwrap_or_default();
            b.note_error_text(format_args!("timed out after {after:?} (shadow: ran on)"));
            b.failed(ticket, Some(Count::Timeouts));
        }
    }

    /// A call the deadline would end now: `false` while it runs unjudged or the breaker is in
    /// shadow mode (then the timeout is counted and the call runs on).
    #[cold]
    pub(super) fn deadline_ends_call(&mut self) -> bool {
        if self.ticket & UNJUDGED != 0 {
            return false;
        }
        if self.breaker.is_shadow() {
            self.shadow_timed_out();
            return false;
        }
        true
    }

    /// The breaker's `timeout` for this call: none for a call that runs unjudged.
    #[inline]
    pub(super) fn deadline(&self) -> Option<Duration> {
        if self.ticket & UNJUDGED != 0 {
            return None;
        }
        self.breaker.config.timeout
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        self.breaker.permit_dropped(self.ticket);
    }
}

thread_local! {
    static BODY_PANICKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Dropped only when a call's body unwinds while polled (`future::poll_noting_panic`), so a
/// permit dropped during that unwinding counts a panic.
pub(super) struct UnwindFlag;

impl Drop for UnwindFlag {
    fn drop(&mut self) {
        BODY_PANICKED.with(|c| c.set(true));
    }
}

/// Whether a body's poll unwound since the last call (and clears the note).
fn take_body_panicked() -> bool {
    BODY_PANICKED.with(|c| c.replace(false))
}

impl Breaker {
    /// The machine's view of a permit's ticket.
    pub(super) fn ticket(m: &Machine, ticket: u64) -> Ticket {
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
    pub(super) fn failed(&self, ticket: u64, kind: Option<Count>) {
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

    /// Everything but a plain success: failures, slow calls, the rate rule's window, probes,
    /// unjudged calls. Whether the caller is to act on a failure (serve the fallback): never in
    /// shadow mode.
    #[cold]
    #[inline(never)]
    pub(super) fn settle_slow(&self, ticket: u64, failed: bool, started: Started) -> bool {
        self.release_place();
        if ticket & UNJUDGED != 0 {
            return false;
        }
        if failed {
            self.failed(ticket, None);
            return !self.is_shadow();
        }
        if let Some(limit) = self.config.slow_call
            && started.0 != 0
            && let took = Duration::from_nanos(self.now().saturating_sub(started.0))
            && took > limit
        {
            self.note_error_text(format_args!("slow call: took {took:?}, over {limit:?}"));
            self.failed(ticket, Some(Count::SlowCalls));
            return false;
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
        false
    }

    /// A permit dropped unsettled: its place goes back, and the call ended without a verdict.
    #[cold]
    #[inline(never)]
    pub(super) fn permit_dropped(&self, ticket: u64) {
        self.release_place();
        self.dropped(ticket);
    }

    /// An admitted call that ended without a verdict (its place, if any, is the caller's to
    /// give back).
    #[cold]
    #[inline(never)]
    pub(super) fn dropped(&self, ticket: u64) {
        let panicked = std::thread::panicking() && take_body_panicked();
        if ticket & UNJUDGED != 0 {
            return;
        }
        if panicked {
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
}
