//! Notifier hooks: every state transition, and (on request) every rejection and fallback, handed
//! to user code on a dedicated thread so a slow notifier never slows a call.

mod dispatch;
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub(crate) mod http;
pub(crate) mod instance;
#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod tracing_notifier;
mod worker;

pub(crate) use dispatch::{CALL_EVENTS, emit, emit_event};
pub use dispatch::{add_notifier, dropped_events, flush_notifications};
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub(crate) use dispatch::{add_notifier_keeping_default, install_default};
pub(crate) use instance::process_id;
pub use tracing_notifier::TracingNotifier;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use crate::core::machine::{Forced, Reason, State};

/// Why a call did not get the function's own result.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The breaker rejected the call.
    Rejected,
    /// The function returned an error counted as a failure.
    Failed,
    /// The function did not finish within `timeout`.
    TimedOut,
    /// The breaker is swapped (`breakerctl swap`): the fallback is called first.
    Swapped,
    /// The breaker's bulkhead (`max_concurrent`) had no place for the call.
    Full,
}

/// What happened.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The breaker changed state.
    Transition {
        /// State before.
        from: State,
        /// State after.
        to: State,
        /// Why.
        reason: Reason,
        /// For a transition to OPEN: how long it stays open.
        open_for: Option<Duration>,
        /// The operator's forced state after the transition.
        forced: Option<Forced>,
    },
    /// A call was rejected (delivered only when a notifier asks for call events).
    Rejected {
        /// When the breaker may admit calls again, if known.
        retry_after: Option<Duration>,
    },
    /// A fallback served a call (delivered only when a notifier asks for call events).
    Fallback {
        /// Why the fallback ran.
        reason: FallbackReason,
    },
    /// Configuration from the environment or builder was refused.
    ConfigRejected {
        /// What was wrong.
        message: String,
    },
    /// A shared store became unreachable (breakers decide locally) or reachable again.
    StoreHealth {
        /// Whether the store is reachable now.
        healthy: bool,
        /// What happened.
        message: String,
    },
    /// A shared store refused or returned data it should not have (malformed or foreign data
    /// under the breaker's keys); the breaker goes on locally.
    StoreError {
        /// What was wrong.
        message: String,
    },
    /// Something the team must hear about at once: raised **once for the whole fleet** per
    /// transition (by the instance whose write to the shared store made it; in memory mode, by
    /// the process). The built-in `webhook` and `telegram` notifiers deliver these and
    /// [`EventKind::StoreHealth`].
    Alert(Alert),
}

/// What an [`EventKind::Alert`] is about.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// The breaker opened (from CLOSED): calls go to the fallback, if any.
    Opened,
    /// The breaker closed again after being OPEN or HALF_OPEN.
    Recovered,
    /// A call went through the whole chain and the last provider failed too: the breaker served
    /// its fallback and the fallback returned an error. Raised once per episode (again only
    /// after the fallback succeeded or the breaker recovered).
    ChainFailed,
    /// The shared store lost the breaker's state (Redis restarted empty or from an older
    /// snapshot, failed over to a replica that was behind, or was flushed) and the fleet's
    /// state, as the instances last saw it, was written back. Raised once per such event for
    /// the fleet (not per instance, nor per breaker within a minute).
    StoreReset,
}

impl AlertKind {
    /// `opened`, `recovered`, `chain_failed` or `store_reset`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Opened => "opened",
            AlertKind::Recovered => "recovered",
            AlertKind::ChainFailed => "chain_failed",
            AlertKind::StoreReset => "store_reset",
        }
    }
}

/// An alert: a breaker opened, recovered, or its whole chain failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// A stable id: `breaker:generation:kind` for a fleet alert (the same on whichever instance
    /// sends it, so a receiver can drop the rare duplicate: an instance that died between
    /// sending and marking it delivered), `breaker:local-<instance>-<n>:kind` for an alert this
    /// process raised on its own.
    pub id: String,
    /// What happened.
    pub kind: AlertKind,
    /// The fleet's state before.
    pub from: State,
    /// The fleet's state after.
    pub to: State,
    /// Failures that opened the breaker (the fleet's count in the window, when shared), or 0.
    pub failures: u64,
    /// The last error this instance saw from the function (or from the fallback, for
    /// [`AlertKind::ChainFailed`]), as its `Display` (else `Debug`) form.
    pub last_error: Option<String>,
    /// The fallback that now serves the calls, as written in the attribute.
    pub fallback: Option<&'static str>,
    /// The operator's forced state after the change, if the change was an operator's.
    pub forced: Option<Forced>,
    /// The breaker was in shadow mode when the alert was raised (`mode = "shadow"`,
    /// `breakerctl shadow`): it counts and alerts but acts on no call, so an `opened` alert
    /// says what it would have done. A fleet alert is marked only when, besides, no instance
    /// that acts on calls (enforcing, or forced open) recorded to the store in the last six
    /// minutes (three heartbeats): in a fleet whose instances differ, a real outage is never
    /// marked shadow.
    pub shadow: bool,
    /// For a shared store: learns when every notifier that delivers alerts is done with this
    /// one (see [`Receipt`]).
    pub receipt: Option<Receipt>,
}

/// Tracks the delivery of one alert: notifiers that deliver alerts somewhere (the webhook and
/// Telegram notifiers) [`Receipt::take`] it when they queue the alert and [`Receipt::done`]
/// it once the receiver answered 2xx or they gave up. A shared store marks a fleet alert
/// delivered only then: an instance that dies before leaves it to another instance.
#[derive(Clone, Default)]
pub struct Receipt(Arc<ReceiptState>);

#[derive(Default)]
struct ReceiptState {
    /// Notifiers still delivering it.
    pending: AtomicUsize,
    /// Every notifier has seen it.
    dispatched: AtomicBool,
    /// A notifier could not deliver it for now (its queue was full, or the receiver stayed
    /// down or slow through every retry): not done, ever; another instance sends it later.
    lost: AtomicBool,
}

impl Receipt {
    /// A notifier starts delivering the alert.
    pub fn take(&self) {
        self.0.pending.fetch_add(1, Ordering::AcqRel);
    }

    /// A notifier is done with the alert: delivered, or refused for good (a 4xx answer).
    pub fn done(&self) {
        self.0.pending.fetch_sub(1, Ordering::AcqRel);
    }

    /// A notifier could not deliver the alert now (queue full, receiver down through every
    /// retry): the alert is left for another try.
    pub fn lost(&self) {
        self.0.lost.store(true, Ordering::Release);
    }

    /// Every notifier has seen the alert and finished delivering it.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.0.dispatched.load(Ordering::Acquire)
            && self.0.pending.load(Ordering::Acquire) == 0
            && !self.is_lost()
    }

    /// A notifier could not deliver it: it is not going to be done.
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.0.lost.load(Ordering::Acquire)
    }

    fn dispatched(&self) {
        self.0.dispatched.store(true, Ordering::Release);
    }
}

impl fmt::Debug for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receipt")
            .field("done", &self.is_done())
            .finish()
    }
}

impl PartialEq for Receipt {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Receipt {}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The breaker's name.
    pub breaker: &'static str,
    /// Wall-clock time the event was raised.
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
    /// Whether the event was caused by injected faults (`BREAKER_FAULTS`, `breakerctl inject`)
    /// rather than by the provider.
    pub injected: bool,
}

/// A hook that receives breaker events.
///
/// Notifiers run one after another on the `breaker-notify` thread, fed by a bounded queue: a
/// notifier that blocks delays other notifiers, never a call. Events that do not fit in the queue
/// are dropped and counted ([`dropped_events`]).
pub trait Notifier: Send + Sync + fmt::Debug + 'static {
    /// Handles one event.
    fn notify(&self, event: &Event);

    /// Whether this notifier wants an event for every rejected call and every fallback. Off by
    /// default: delivering one per call costs a queue send per rejection (tens of nanoseconds)
    /// where counting costs one. Counters are always available from [`crate::Handle::counters`].
    fn wants_call_events(&self) -> bool {
        false
    }

    /// Waits until what this notifier holds (a delivery queue of its own) is delivered or given
    /// up, for at most `timeout`; whether it finished. Called by [`flush_notifications`].
    fn flush(&self, timeout: Duration) -> bool {
        let _ = timeout;
        true
    }
}
