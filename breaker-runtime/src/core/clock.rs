//! Where breakers read the time.

use std::fmt;

use tokio::time::Instant;

/// A monotonic clock. The default, [`TokioClock`], reads `tokio::time::Instant::now()`, so tests
/// on paused tokio time (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) drive
/// every breaker timer. Install another through [`crate::Runtime::builder`].
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// `tokio::time::Instant::now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}
