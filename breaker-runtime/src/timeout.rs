//! A timeout that costs nothing for a call that finishes on its first poll.
//!
//! `tokio::time::timeout` reads the clock and builds a timer entry for every call (about 40 ns
//! here). This one polls the call first and only arms a `Sleep` when the call returns `Pending`,
//! so the deadline counts from the call's first suspension; the synchronous work before it is
//! not timed (it could not be interrupted anyway). The `Sleep` lives inside this future: no
//! allocation.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Sleep;

pin_project_lite::pin_project! {
    /// Resolves to `Some(output)`, or `None` when `after` (if any) elapsed first.
    #[derive(Debug)]
    pub struct MaybeTimeout<F> {
        #[pin]
        call: F,
        #[pin]
        sleep: Option<Sleep>,
        after: Option<Duration>,
    }
}

impl<F> MaybeTimeout<F> {
    /// Runs `call`, abandoning it after `after` if given.
    pub fn new(call: F, after: Option<Duration>) -> Self {
        MaybeTimeout {
            call,
            sleep: None,
            after,
        }
    }
}

impl<F: Future> Future for MaybeTimeout<F> {
    type Output = Option<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.call.poll(cx) {
            return Poll::Ready(Some(v));
        }
        match *this.after {
            None => Poll::Pending,
            Some(after) => poll_deadline(this.sleep, after, cx).map(|()| None),
        }
    }
}

/// Arms the timer at the call's first suspension and polls it. Out of line, so a call that
/// completes at once (or has no `timeout`) carries none of the timer's code in its poll.
#[cold]
#[inline(never)]
fn poll_deadline(
    mut sleep: Pin<&mut Option<Sleep>>,
    after: Duration,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if sleep.is_none() {
        sleep.set(Some(tokio::time::sleep(after)));
    }
    match sleep.as_pin_mut() {
        Some(s) => s.poll(cx),
        None => Poll::Pending,
    }
}
