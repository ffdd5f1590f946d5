//! The futures the generated code wraps a call's body in.
//!
//! [`Guarded`] notes, at no cost on the normal path, that the body panicked while being polled,
//! so a permit dropped during that unwinding counts a panic, and one dropped while the thread
//! was already unwinding for another reason (a runtime torn down on a panicking thread) counts a
//! cancellation.
//!
//! [`MaybeTimeout`] adds the `timeout`. `tokio::time::timeout` reads the clock and builds a timer
//! entry for every call (about 40 ns here); this one polls the call first and only arms a
//! `Sleep` when the call returns `Pending`, so the deadline counts from the call's first
//! suspension (the synchronous work before it could not be interrupted anyway). The `Sleep`
//! lives inside the future (no allocation) and is polled outside tokio's cooperative budget, so
//! a body that exhausts its budget cannot hold the timeout off.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::task::Unconstrained;
use tokio::time::Sleep;

use crate::breaker::permit::{Permit, UnwindFlag};

/// An injected delay (`BREAKER_FAULTS`, `breakerctl inject`): boxed, so a call without one
/// carries a null pointer, not a 112-byte timer.
pub(crate) type Delay = Option<Pin<Box<Sleep>>>;

/// Waits out an injected delay, if any: `Pending` until it elapsed.
#[inline]
fn poll_delay(delay: &mut Delay, cx: &mut Context<'_>) -> Poll<()> {
    if delay.is_none() {
        return Poll::Ready(());
    }
    poll_delay_slow(delay, cx)
}

#[cold]
#[inline(never)]
fn poll_delay_slow(delay: &mut Delay, cx: &mut Context<'_>) -> Poll<()> {
    if let Some(d) = delay
        && d.as_mut().poll(cx).is_pending()
    {
        return Poll::Pending;
    }
    *delay = None;
    Poll::Ready(())
}

#[inline]
fn poll_noting_panic<F: Future>(call: Pin<&mut F>, cx: &mut Context<'_>) -> Poll<F::Output> {
    let flag = UnwindFlag;
    let r = call.poll(cx);
    std::mem::forget(flag);
    r
}

pin_project_lite::pin_project! {
    /// Polls the body, noting a panic.
    #[derive(Debug)]
    pub struct Guarded<F> {
        #[pin]
        call: F,
    }
}

impl<F> Guarded<F> {
    /// Wraps `call`.
    pub fn new(call: F) -> Self {
        Guarded { call }
    }
}

impl<F: Future> Future for Guarded<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_noting_panic(self.project().call, cx)
    }
}

pin_project_lite::pin_project! {
    /// Resolves to `Some(output)`, or `None` when the breaker's `timeout` (if any) elapsed
    /// first. In shadow mode the deadline counts the timeout and the call runs on
    /// (`Some(output)` when it ends, its permit unjudged).
    pub struct MaybeTimeout<'p, F> {
        #[pin]
        call: F,
        #[pin]
        sleep: Option<Unconstrained<Sleep>>,
        permit: &'p mut Permit,
        delay: Delay,
    }
}

impl<F> std::fmt::Debug for MaybeTimeout<'_, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaybeTimeout")
            .field("permit", &self.permit)
            .field("armed", &self.sleep.is_some())
            .finish_non_exhaustive()
    }
}

impl<'p, F> MaybeTimeout<'p, F> {
    /// Runs `call` (after the permit's injected delay, a fault, if any), abandoning it after
    /// the breaker's `timeout` if it has one.
    #[inline(always)]
    pub fn new(call: F, permit: &'p mut Permit) -> Self {
        let delay = permit.injected_delay();
        MaybeTimeout {
            call,
            sleep: None,
            permit,
            delay,
        }
    }
}

impl<F: Future> Future for MaybeTimeout<'_, F> {
    type Output = Option<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if poll_delay(this.delay, cx).is_ready()
            && let Poll::Ready(v) = poll_noting_panic(this.call, cx)
        {
            return Poll::Ready(Some(v));
        }
        match poll_deadline(this.sleep, this.permit, this.delay, cx) {
            Poll::Ready(()) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Arms the timer at the call's first suspension and polls it. Out of line, so a call that
/// completes at once carries none of the timer's code in its poll.
#[cold]
#[inline(never)]
fn poll_deadline(
    mut sleep: Pin<&mut Option<Unconstrained<Sleep>>>,
    permit: &mut Permit,
    delay: &mut Delay,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let Some(after) = permit.deadline() else {
        return Poll::Pending;
    };
    if sleep.is_none() {
        sleep.set(Some(tokio::task::unconstrained(tokio::time::sleep(after))));
    }
    if let Some(s) = sleep.as_mut().as_pin_mut()
        && s.poll(cx).is_ready()
    {
        if permit.deadline_ends_call() {
            return Poll::Ready(());
        }
        // Shadow: the call runs on without a deadline, and without an injected delay still
        // to sleep (an injected `timeout` is such a delay: the function runs now).
        sleep.set(None);
        if delay.take().is_some() {
            cx.waker().wake_by_ref();
        }
    }
    Poll::Pending
}
