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
    /// Resolves to `Some(output)`, or `None` when `after` elapsed first.
    #[derive(Debug)]
    pub(crate) struct Timeout<F> {
        #[pin]
        call: F,
        #[pin]
        sleep: Option<Sleep>,
        after: Duration,
    }
}

impl<F> Timeout<F> {
    pub(crate) fn new(call: F, after: Duration) -> Self {
        Timeout {
            call,
            sleep: None,
            after,
        }
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(v) = this.call.poll(cx) {
            return Poll::Ready(Some(v));
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.after)));
        }
        match this.sleep.as_pin_mut() {
            Some(sleep) => sleep.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    }
}
