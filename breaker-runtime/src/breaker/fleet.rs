//! The hooks a shared store drives: HALF_OPEN probe leases asked of the fleet ([`ProbeWait`] is
//! the future a call awaits for one), probe results to report, the fleet's state to adopt, and
//! the verdicts this instance reached alone.

use std::pin::Pin;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::bulkhead::Queued;
use super::permit::{AWAIT, HELD_OPEN, INJECT, PROBE, Permit, ProbeOutcome, Rejected};
use super::{CONTROLLED, FORCED_MASK, FORCED_OPEN, GENERATION_SHIFT, MODE_CLOSED, MODE_MASK};
use crate::breaker::Breaker;
use crate::breaker::future::Delay;
use crate::core::counters::Count;
#[cfg(feature = "redis")]
use crate::core::machine::FleetState;
use crate::core::machine::{Reason, State, Ticket, Transition, dur_nanos};

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
pub(super) struct FleetProbes {
    pub(super) gate: bool,
    /// Calls waiting for the fleet's answer, by local lease id.
    pub(super) waiting: std::collections::HashMap<u64, Waiting>,
    /// Fleet lease tokens held by probes running here, by local lease id.
    pub(super) in_use: std::collections::HashMap<u64, String>,
    /// The fleet said its probe slots are taken until then (cleared by fleet news).
    pub(super) denied_until: Option<std::time::Instant>,
    pub(super) work: ProbeWork,
}

#[derive(Debug, Default)]
pub(super) struct Waiting {
    pub(super) answer: Option<Result<String, Duration>>,
    pub(super) waker: Option<std::task::Waker>,
}

/// The wait of a call for the fleet's answer to its request for a probe lease
/// ([`Breaker::wait_for_probe`]), or for an injected `delay` before an admitted call
/// ([`Breaker::admission_wait`]). Dropping it gives the local slot (and any lease granted)
/// back, or counts the delayed call as cancelled.
#[derive(Debug)]
#[must_use = "a rejection may be a request for a probe lease: await it"]
pub struct ProbeWait {
    pub(super) breaker: &'static Breaker,
    pub(super) rejected: Rejected,
    pub(super) waiting: bool,
    /// An injected delay is slept out here ([`Breaker::admission_wait`]).
    sleeps_delay: bool,
    /// The injected delay to sleep out before a delayed call is admitted.
    pub(super) delay: Delay,
    /// Waiting for a place in the bulkhead (`max_wait`), before admission.
    queue: Option<Pin<Box<Queued>>>,
}

impl std::future::Future for ProbeWait {
    type Output = Result<Permit, Rejected>;

    #[inline]
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let waited = if self.waiting {
            self.poll_answer(cx)
        } else if let Some(ticket) = self.rejected.delayed_ticket() {
            self.poll_held(ticket, cx)
        } else {
            return std::task::Poll::Ready(Err(self.rejected));
        };
        match waited {
            // A wait that ended in a rejection (a denied lease, no place within `max_wait`):
            // counted and refused, or in shadow mode run anyway.
            std::task::Poll::Ready(Err(r)) => std::task::Poll::Ready(self.breaker.run_anyway(r)),
            other => other,
        }
    }
}

impl ProbeWait {
    /// An admitted call held here: for a place in the bulkhead if it has none yet, then for
    /// an injected `delay` (slept out if this wait sleeps delays; the delay runs while the
    /// call holds its place, as a slow provider's answer would). Its permit is marked `INJECT`
    /// after a delay, so that a `timeout` runs the delay instead.
    #[cold]
    fn poll_held(
        &mut self,
        ticket: u64,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<Permit, Rejected>> {
        let b = self.breaker;
        if self.rejected.wants_place() {
            match self.poll_place(cx) {
                std::task::Poll::Pending => return std::task::Poll::Pending,
                std::task::Poll::Ready(false) => {
                    self.rejected = b.refuse_admitted(ticket);
                    return std::task::Poll::Ready(Err(self.rejected));
                }
                std::task::Poll::Ready(true) => {
                    self.rejected = self.rejected.placed();
                    if !self.rejected.place_only() && self.sleeps_delay {
                        self.delay = b.injected_sleep(false);
                    }
                }
            }
        }
        let ticket = if self.rejected.place_only() {
            ticket
        } else {
            if let Some(d) = &mut self.delay {
                if d.as_mut().poll(cx).is_pending() {
                    return std::task::Poll::Pending;
                }
                self.delay = None;
            }
            ticket | INJECT
        };
        // Handed out: no longer this wait's to cancel.
        self.rejected = Rejected(HELD_OPEN);
        std::task::Poll::Ready(Ok(Permit { breaker: b, ticket }))
    }

    /// Takes a place in the bulkhead for the held call: at once, or after waiting up to
    /// `max_wait`; `Ready(false)` when there is none.
    #[cold]
    fn poll_place(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<bool> {
        let Some(bulkhead) = &self.breaker.bulkhead else {
            return std::task::Poll::Ready(true);
        };
        if self.queue.is_none() {
            if bulkhead.try_take() {
                return std::task::Poll::Ready(true);
            }
            match bulkhead.max_wait {
                Some(wait) => self.queue = Some(Queued::new(bulkhead, wait)),
                None => return std::task::Poll::Ready(false),
            }
        }
        let Some(queue) = &mut self.queue else {
            return std::task::Poll::Ready(false);
        };
        let placed = std::task::ready!(queue.as_mut().poll_place(cx));
        self.queue = None;
        std::task::Poll::Ready(placed)
    }

    #[cold]
    pub(super) fn poll_answer(
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
        match b.probe_answered(lease, answer) {
            // The fleet's probe: it takes its place now.
            Ok(permit) if b.bulkhead.is_some() => {
                let ticket = permit.into_ticket();
                self.rejected = Rejected::held_for_place(ticket);
                self.poll_held(ticket, cx)
            }
            // A QA drill's `delay` on the probe: held here as any delayed call.
            Err(r) if r.delayed_ticket().is_some() => {
                if b.bulkhead.is_some() {
                    self.rejected = r.wanting_place();
                } else {
                    self.rejected = r;
                    if self.sleeps_delay {
                        self.delay = b.injected_sleep(false);
                    }
                }
                let ticket = r.delayed_ticket().unwrap_or_default();
                self.poll_held(ticket, cx)
            }
            other => std::task::Poll::Ready(other),
        }
    }
}

impl Drop for ProbeWait {
    #[inline]
    fn drop(&mut self) {
        // A wait that ended (or never began) has nothing to give back: one test inline.
        if self.waiting || self.rejected.is_await() {
            self.dropped_while_waiting();
        }
    }
}

impl ProbeWait {
    #[cold]
    #[inline(never)]
    fn dropped_while_waiting(&mut self) {
        if self.waiting {
            self.breaker.probe_wait_dropped(self.rejected.0 & !AWAIT);
        } else if let Some(ticket) = self.rejected.delayed_ticket() {
            // Dropped while held: the call was admitted, so it is counted as one that was
            // cancelled (and a probe's slot is freed), as a dropped permit is; its place, if it
            // has one, goes back.
            if self.rejected.wants_place() {
                self.breaker.dropped(ticket);
            } else {
                drop(Permit {
                    breaker: self.breaker,
                    ticket,
                });
            }
        }
    }
}

/// A local verdict for a shared store: a probe succeeded (the breaker closed here).
pub(crate) const LOCAL_PROBE_OK: u8 = 1;

/// A local verdict for a shared store: a probe failed (the breaker re-opened here).
pub(crate) const LOCAL_PROBE_FAILED: u8 = 2;

/// A local verdict for a shared store: this instance's own failures opened the breaker.
pub(crate) const LOCAL_TRIP: u8 = 3;

/// How soon a call rejected for want of a fleet probe lease may try again.
pub(super) const FLEET_PROBE_RETRY: Duration = Duration::from_millis(50);

impl Breaker {
    pub(super) fn fleet_gate_on(&self) -> bool {
        self.fleet
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .gate
    }

    /// A probe's verdict reached on this instance is news for a shared store.
    pub(super) fn note_local_transition(&self, t: &Transition) {
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

    pub(super) fn wake_store(&self) {
        if let Some(wake) = self.store_waker.get() {
            wake();
        }
    }

    /// For shared stores: the last probe verdict or trip this instance reached on its own since
    /// the previous call (`LOCAL_*`, 0 for none).
    #[cfg(feature = "redis")]
    pub(crate) fn take_local_event(&self) -> u8 {
        self.local_event.swap(0, Ordering::AcqRel)
    }

    /// A call holding local probe lease `lease` in a HALF_OPEN judged by the fleet: asks the
    /// store for a fleet lease (the call waits for the answer in [`Breaker::wait_for_probe`]),
    /// unless the fleet said a moment ago that its probe slots are taken.
    pub(super) fn ask_fleet(&self, lease: u64) -> Result<u64, Rejected> {
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
    pub(super) fn cancel_lease(&self, lease: u64) {
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
    #[cfg(feature = "redis")]
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
            waiting: rejected.is_await() && rejected.delayed_ticket().is_none(),
            sleeps_delay: false,
            delay: None,
            queue: None,
        }
    }

    /// As [`Breaker::wait_for_probe`], for a function without `timeout`: a call held by an
    /// injected `delay` sleeps it out here before it is admitted. (With a `timeout`,
    /// `wait_for_probe` admits it at once and the delay runs inside the timeout.)
    #[doc(hidden)]
    #[inline]
    pub fn admission_wait(&'static self, rejected: Rejected) -> ProbeWait {
        let mut wait = self.wait_for_probe(rejected);
        wait.sleeps_delay = true;
        // A call that waits for a place first starts its delay once it has one.
        if rejected.delayed_ticket().is_some() && !rejected.place_only() && !rejected.wants_place()
        {
            wait.delay = self.injected_sleep(false);
        }
        wait
    }

    /// The call waiting for lease `lease` got its answer.
    pub(super) fn probe_answered(
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
    pub(super) fn probe_wait_dropped(&self, lease: u64) {
        self.counters.add(Count::Cancelled);
        self.release_wait(lease);
    }

    /// Ends the wait for lease `lease` unused: the local slot, and any fleet lease granted, go
    /// back.
    pub(super) fn release_wait(&self, lease: u64) {
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

    /// Reports how the call with permit ticket `ticket` ended, if it was a probe holding a fleet
    /// lease (the `PROBE` bit; the rest of the ticket, without `INJECT`, is the local lease).
    pub(super) fn fleet_report(&self, ticket: u64, outcome: ProbeOutcome) {
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
    #[cfg(feature = "redis")]
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
            self.raise_chain_alert();
        }
    }

    /// For shared stores: the fleet leases to give back since the last call, with their
    /// verdicts.
    #[cfg(feature = "redis")]
    pub(crate) fn take_probe_results(&self) -> Vec<(String, ProbeOutcome)> {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut f.work.results)
    }

    /// For shared stores: the fleet's state as this instance last saw it (never its own
    /// episode), with the time its OPEN has left: what a store that lost its data is told.
    #[cfg(feature = "redis")]
    #[must_use]
    pub(crate) fn fleet_view(&self) -> (State, Duration) {
        let now = self.now();
        self.machine().fleet_view(now)
    }

    /// For shared stores: the leases waiting calls want (taken, so each is asked for once).
    #[cfg(feature = "redis")]
    pub(crate) fn take_probe_requests(&self) -> Vec<u64> {
        let mut f = self.fleet.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut f.work.acquire)
    }

    /// For shared stores: whether a call still waits for the answer for lease `lease` (one
    /// that gave up needs no request).
    #[cfg(feature = "redis")]
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
    #[cfg(feature = "redis")]
    pub(crate) fn set_probe_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.probe_waker.set(wake);
    }

    /// For shared stores: puts back probe results that could not be delivered.
    #[cfg(feature = "redis")]
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
    #[cfg(feature = "redis")]
    pub(crate) fn set_store_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.store_waker.set(wake);
    }

    /// For shared stores: adopts the fleet's state (see [`Machine::apply_fleet`]).
    #[cfg(feature = "redis")]
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
    #[cfg(feature = "redis")]
    #[must_use]
    pub(crate) fn fleet_generation(&self) -> u64 {
        self.machine().fleet_generation()
    }

    /// Consecutive openings without a close (drives the backoff).
    #[cfg(feature = "redis")]
    #[must_use]
    pub(crate) fn opens_in_row(&self) -> u32 {
        self.machine().opens_in_row()
    }
}
