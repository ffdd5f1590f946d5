//! An operator's or QA's controls of one breaker, beside its state: swap, injected faults (and
//! the dice for `error:P`), the user-facing notice.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use super::permit::{INJECT, INJECTED_ERROR, INJECTED_TIMEOUT, Permit, Rejected};
use crate::breaker::Breaker;
use crate::core::counters::Count;
use crate::core::fault::Fault;
use crate::core::machine::{Nanos, dur_nanos};
use crate::core::text::shown_notice;

/// An operator's or QA's controls of one breaker.
#[derive(Debug, Default)]
pub(super) struct Controls {
    pub(super) swapped: bool,
    /// The operator's mode (`Some(true)`: shadow), over the declared one.
    pub(super) shadow: Option<bool>,
    /// From the fleet (`breakerctl inject`), with its end in clock nanoseconds.
    pub(super) fleet_fault: Option<(Fault, Option<Nanos>)>,
    /// From `BREAKER_FAULTS` or [`Breaker::set_local_fault`].
    pub(super) local_fault: Option<Fault>,
    pub(super) notice: Option<(Arc<str>, Option<Nanos>)>,
    /// The current episode (from opening to closing) began while a fault was injected.
    pub(super) episode_injected: bool,
    /// The last failure, described (empty: none yet). Rewritten in place: no allocation once
    /// its capacity fits.
    pub(super) last_error: String,
    /// The fallback's error when the whole chain failed.
    pub(super) chain_error: String,
    /// When the chain last failed (clock nanoseconds).
    pub(super) chain_failed_at: Option<Nanos>,
}

impl Controls {
    pub(super) fn fault(&self, now: Nanos) -> Option<Fault> {
        match self.fleet_fault {
            Some((f, until)) if until.is_none_or(|u| now < u) => Some(f),
            _ => self.local_fault,
        }
    }

    pub(super) fn controlled(&self, now: Nanos, has_fallback: bool) -> bool {
        (self.swapped && has_fallback) || self.fault(now).is_some()
    }
}

impl Breaker {
    /// Whether faults are injected now, or the current episode began with them.
    #[must_use]
    pub(crate) fn injected(&self) -> bool {
        let now = self.now();
        let c = self.controls();
        c.episode_injected || c.fault(now).is_some()
    }

    pub(super) fn controls(&self) -> MutexGuard<'_, Controls> {
        self.controls.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Sets (or clears) the user-facing notice, for `for_` (or until cleared). The text may
    /// come from Redis, written by anyone: what `check_notice` refuses is kept escaped and
    /// clipped (`shown_notice`), never as it is.
    pub(crate) fn set_notice(&self, text: Option<&str>, for_: Option<Duration>) {
        let now = self.now();
        let until = for_.map(|d| now.saturating_add(dur_nanos(d)));
        self.controls().notice = text
            .filter(|t| !t.is_empty())
            .map(|t| (Arc::from(shown_notice(t).as_ref()), until));
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
    pub(super) fn refresh_controlled(&self) {
        let now = self.now();
        // Computed and stored under the controls' lock, so two refreshes racing cannot leave
        // the flag of the older state; `update` then publishes whatever the flag is by then.
        let changed = {
            let c = self.controls();
            // In shadow mode a swap is dormant: it does not take calls off the fast path.
            let swappable = self.fallback.is_some() && !self.shadowed.load(Ordering::Acquire);
            let on = c.controlled(now, swappable);
            self.controlled.swap(on, Ordering::AcqRel) != on
        };
        if changed {
            self.update(|_, _| ((), None));
        }
    }

    /// An admitted call under an injected fault: failed at once, or marked to wait first.
    pub(super) fn with_fault(
        &'static self,
        permit: Permit,
        fault: Option<Fault>,
    ) -> Result<Permit, Rejected> {
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
            // Held in the admission wait, which sleeps it out (no `timeout`) or hands it to the
            // timeout to run (with one).
            Some(Fault::Delay(_)) => Err(Rejected::delayed(permit.into_ticket())),
            Some(Fault::Timeout) => Ok(Permit {
                breaker: self,
                ticket: permit.into_ticket() | INJECT,
            }),
            _ => Ok(permit),
        }
    }

    /// `true` with probability `rate`.
    pub(super) fn roll(&self, rate: f64) -> bool {
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

    #[cold]
    #[inline(never)]
    pub(super) fn injected_sleep(
        &self,
        timed: bool,
    ) -> Option<std::pin::Pin<Box<tokio::time::Sleep>>> {
        let wait = match self.fault()? {
            Fault::Delay(d) => d,
            // Longer than any `timeout`: the call's own timeout ends it, the function never runs.
            Fault::Timeout if timed => Duration::from_secs(86_400 * 365),
            _ => return None,
        };
        Some(Box::pin(tokio::time::sleep(wait)))
    }
}
