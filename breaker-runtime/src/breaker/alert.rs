//! Alerts a breaker raises on its transitions: locally (memory store, or alone while the store
//! is away) or once for the whole fleet (claimed through a shared store).

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;

use super::chain::CHAIN_OK;
use crate::breaker::Breaker;
use crate::core::machine::{Forced, State, Transition};
use crate::notify::{self as notifier, Alert, AlertKind, EventKind};

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

impl Breaker {
    /// Whether the episode this transition belongs to was caused by injected faults (and
    /// remembers it until the breaker closes).
    pub(super) fn note_episode(&self, t: &Transition) -> bool {
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
        let shadow = !self.acts_on_calls();
        self.emit_alert(kind, from, to, failures, forced, injected, shadow, id, None);
    }

    /// Shadow mode was switched off while the breaker is OPEN or HALF_OPEN (not forced): it
    /// refuses calls from now on, so an unmarked `opened` alert says so (the one raised when it
    /// opened was marked shadow). Raised by [`Breaker::set_shadow`] without a shared store, by
    /// the store's one claimant with one.
    pub(crate) fn now_enforcing(&self) {
        let state = self.state();
        if state == State::Closed || self.forced().is_some() {
            return;
        }
        let failures = u64::try_from(self.failures_in_window()).unwrap_or(u64::MAX);
        self.raise_alert(
            AlertKind::Opened,
            State::Closed,
            state,
            failures,
            None,
            self.injected(),
        );
    }

    /// For shared stores: raises the fleet's alert of the transition to `generation`, which
    /// this instance claimed; `receipt` tells when it is delivered. Marked shadow only when
    /// this instance is in shadow mode and no instance that acts on calls recorded lately
    /// (`enforcing`): in a fleet whose instances differ, a real outage is never muted.
    #[cfg(feature = "redis")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn raise_fleet_alert(
        &self,
        kind: AlertKind,
        from: State,
        to: State,
        failures: u64,
        generation: u64,
        enforcing: bool,
        receipt: notifier::Receipt,
    ) {
        let id = format!("{}:{generation}:{}", self.name, kind.as_str());
        let (forced, injected) = (self.forced(), self.injected());
        let shadow = !self.acts_on_calls() && !enforcing;
        self.emit_alert(
            kind,
            from,
            to,
            failures,
            forced,
            injected,
            shadow,
            id,
            Some(receipt),
        );
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_alert(
        &self,
        kind: AlertKind,
        from: State,
        to: State,
        failures: u64,
        forced: Option<Forced>,
        injected: bool,
        shadow: bool,
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
                shadow,
                receipt,
            }),
            injected,
        );
    }
}
