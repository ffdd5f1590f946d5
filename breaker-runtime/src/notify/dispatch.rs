//! The dispatcher: the notifiers installed, and the `breaker-notify` thread that hands every event
//! to them off the call path through a bounded queue.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::notify::worker::Worker;
use crate::notify::{Alert, Event, EventKind, Notifier, TracingNotifier};

const QUEUE: usize = 4096;

static NOTIFIERS: RwLock<Vec<Arc<dyn Notifier>>> = RwLock::new(Vec::new());

static DEFAULT_INSTALLED: AtomicBool = AtomicBool::new(false);

pub(crate) static CALL_EVENTS: AtomicBool = AtomicBool::new(false);

static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Adds a notifier. The first call replaces the default [`TracingNotifier`]; add it back
/// explicitly to keep it.
pub fn add_notifier(notifier: Arc<dyn Notifier>) {
    let mut list = NOTIFIERS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if DEFAULT_INSTALLED.swap(false, Ordering::AcqRel) && !list.is_empty() {
        // The default is the first one; notifiers the environment configured stay.
        list.remove(0);
    }
    list.push(notifier);
    CALL_EVENTS.store(
        list.iter().any(|n| n.wants_call_events()),
        Ordering::Release,
    );
}

/// Adds a notifier without replacing the default one (for notifiers the environment configures).
#[cfg(any(feature = "webhook", feature = "telegram"))]
pub(crate) fn add_notifier_keeping_default(notifier: Arc<dyn Notifier>) {
    let mut list = NOTIFIERS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    list.push(notifier);
    CALL_EVENTS.store(
        list.iter().any(|n| n.wants_call_events()),
        Ordering::Release,
    );
}

pub(crate) fn install_default() {
    let mut list = NOTIFIERS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if list.is_empty() {
        list.push(Arc::new(TracingNotifier));
        DEFAULT_INSTALLED.store(true, Ordering::Release);
    }
}

/// Events dropped because the notifier queue was full.
#[must_use]
pub fn dropped_events() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Waits until every event raised before this call has been handed to every notifier, and each
/// notifier has delivered what it holds ([`Notifier::flush`]: the webhook and Telegram
/// notifiers' HTTP queues), or until `timeout` passes. Returns whether everything drained in
/// time. For tests and orderly shutdown: call it before the process exits.
pub fn flush_notifications(timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    if !WORKER.flush(timeout) {
        return false;
    }
    let list = NOTIFIERS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    list.iter()
        .all(|n| n.flush(deadline.saturating_duration_since(std::time::Instant::now())))
}

pub(crate) fn emit(breaker: &'static str, kind: EventKind) {
    emit_event(breaker, kind, false);
}

pub(crate) fn emit_event(breaker: &'static str, kind: EventKind, injected: bool) {
    let event = Event {
        breaker,
        at: SystemTime::now(),
        kind,
        injected,
    };
    if !send(event) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(breaker, "breaker notifier queue full; event dropped");
    }
}

/// The `breaker-notify` thread's queue.
static WORKER: Worker<Event> = Worker::new(QUEUE);

fn send(event: Event) -> bool {
    WORKER
        .try_push(
            event,
            || {
                install_default();
                "breaker-notify".to_owned()
            },
            || handle,
        )
        .is_ok()
}

/// Hands one event to every notifier, on the `breaker-notify` thread.
fn handle(event: Event) {
    let list = NOTIFIERS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for n in &list {
        // A panicking notifier must not take the others (or the thread) down.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            n.notify(&event);
        }));
        if r.is_err() {
            tracing::error!(notifier = ?n, "breaker notifier panicked");
        }
    }
    if let EventKind::Alert(Alert {
        receipt: Some(r), ..
    }) = &event.kind
    {
        r.dispatched();
    }
}
