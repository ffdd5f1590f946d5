//! Shared by the benchmarks and the allocation test: the error type of the measured functions
//! and the one way every future is polled.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use breaker_runtime::BreakerError;

/// The error type of every measured function.
#[derive(Debug)]
pub enum E {
    Down,
    Breaker(BreakerError),
}

impl From<BreakerError> for E {
    fn from(e: BreakerError) -> Self {
        E::Breaker(e)
    }
}

/// Polls a future once, pinned on the stack, with a no-op waker. Every measured future
/// completes on its first poll.
#[inline(always)]
pub fn poll_once<F: Future>(f: F) -> F::Output {
    let f = pin!(f);
    match f.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a measured future returned Pending"),
    }
}
