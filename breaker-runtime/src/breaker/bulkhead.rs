//! A bulkhead (`max_concurrent`, `max_wait`): at most N admitted calls of one breaker in flight
//! in this process. Every permit of a breaker with a bulkhead holds a place from admission
//! until the call ends (settled, timed out, dropped), so a slow provider cannot hold more than N
//! of the service's tasks.
//!
//! A call that finds no place is rejected at once, or, with `max_wait`, waits for one in the
//! admission wait (a boxed wait, allocated only by a call that has to queue). A breaker without
//! a bulkhead pays nothing: its admission word never carries the `LIMITED` bit, so its calls
//! stay on the one-load fast path.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::sync::futures::Notified;
use tokio::time::Sleep;

/// The places of one breaker.
#[derive(Debug)]
pub(super) struct Bulkhead {
    max: u32,
    pub(super) max_wait: Option<Duration>,
    in_flight: AtomicU32,
    /// Calls waiting for a place: a release wakes one only when there is one.
    queued: AtomicU32,
    freed: Notify,
}

impl Bulkhead {
    pub(super) fn new(max: u32, max_wait: Option<Duration>) -> Self {
        Bulkhead {
            max,
            max_wait,
            in_flight: AtomicU32::new(0),
            queued: AtomicU32::new(0),
            freed: Notify::new(),
        }
    }

    /// Takes a place if one is free.
    pub(super) fn try_take(&self) -> bool {
        self.in_flight
            .fetch_update(SeqCst, SeqCst, |n| (n < self.max).then_some(n + 1))
            .is_ok()
    }

    /// Takes a place even past `max`: a shadow breaker's call (its bulkhead counts, never
    /// refuses). It holds the place like any call, so switching back to enforcing sees the calls
    /// still running.
    pub(super) fn force_take(&self) {
        self.in_flight.fetch_add(1, SeqCst);
    }

    /// Gives a place back and wakes a call waiting for one.
    pub(super) fn release(&self) {
        let _ = self
            .in_flight
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1));
        if self.queued.load(SeqCst) > 0 {
            self.freed.notify_one();
        }
    }

    /// Calls in flight now.
    pub(super) fn in_flight(&self) -> u32 {
        self.in_flight.load(SeqCst)
    }

    pub(super) fn max(&self) -> u32 {
        self.max
    }
}

pin_project_lite::pin_project! {
    /// A call waiting up to `max_wait` for a place.
    pub(super) struct Queued {
        bulkhead: &'static Bulkhead,
        #[pin]
        notified: Notified<'static>,
        #[pin]
        deadline: Sleep,
    }

    impl PinnedDrop for Queued {
        fn drop(this: Pin<&mut Self>) {
            this.bulkhead.queued.fetch_sub(1, SeqCst);
        }
    }
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued").finish_non_exhaustive()
    }
}

impl Queued {
    /// Starts waiting; the caller found no place.
    pub(super) fn new(bulkhead: &'static Bulkhead, max_wait: Duration) -> Pin<Box<Queued>> {
        bulkhead.queued.fetch_add(1, SeqCst);
        Box::pin(Queued {
            bulkhead,
            notified: bulkhead.freed.notified(),
            deadline: tokio::time::sleep(max_wait),
        })
    }

    /// `Ready(true)` with a place taken, `Ready(false)` when `max_wait` ran out first.
    pub(super) fn poll_place(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        let mut this = self.project();
        loop {
            if this.bulkhead.try_take() {
                return Poll::Ready(true);
            }
            // Registered as a waiter before the second look, so a release between the two
            // wakes it (`queued` was counted before the first).
            if this.notified.as_mut().poll(cx).is_ready() {
                this.notified.set(this.bulkhead.freed.notified());
                continue;
            }
            if this.bulkhead.try_take() {
                return Poll::Ready(true);
            }
            return match this.deadline.poll(cx) {
                Poll::Ready(()) => Poll::Ready(false),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
