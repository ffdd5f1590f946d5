//! The whole chain failing (the function and its fallback): noted once per episode for a chain
//! alert, re-armed after a served call.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::breaker::Breaker;
use crate::core::machine::dur_nanos;
use crate::notify::AlertKind;

/// How long after a chain failure a served call ends the episode (re-arms the alert).
pub(super) const CHAIN_REARM: Duration = Duration::from_secs(60);

pub(super) const CHAIN_OK: u8 = 0;

pub(super) const CHAIN_PENDING: u8 = 1;

pub(super) const CHAIN_REPORTED: u8 = 2;

impl Breaker {
    #[cold]
    #[inline(never)]
    pub(super) fn chain_failed<E>(&self, describe: fn(&E, &mut String), error: &E) {
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
            self.raise_chain_alert();
        }
    }

    /// The chain served a call after a failure: the episode ends (the next failure alerts
    /// again) once the failure is `CHAIN_REARM` old, so a flapping fallback does not alert on
    /// every flap.
    #[cold]
    #[inline(never)]
    pub(super) fn chain_served(&self) {
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
    #[cfg(feature = "redis")]
    #[must_use]
    pub(crate) fn chain_pending(&self) -> bool {
        self.chain.load(Ordering::Acquire) == CHAIN_PENDING
    }

    /// For shared stores: claims a chain failure to report (once).
    #[cfg(feature = "redis")]
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
    #[cfg(feature = "redis")]
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

    /// For shared stores: whether this instance has seen a failure of its own to describe in
    /// an alert.
    #[cfg(feature = "redis")]
    #[must_use]
    pub(crate) fn has_last_error(&self) -> bool {
        !self.controls().last_error.is_empty()
    }

    /// Alerts the whole chain failing, from this process (no shared store claims it).
    pub(super) fn raise_chain_alert(&self) {
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

    pub(super) fn note_error_text(&self, text: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        let mut c = self.controls();
        c.last_error.clear();
        let _ = c.last_error.write_fmt(text);
    }
}
