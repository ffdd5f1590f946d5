//! The error a breaker produces when it does not let a call run to completion.

use std::fmt;
use std::time::Duration;

/// A call rejected or abandoned by a breaker.
///
/// A function without a `fallback` returns this through its own error type, which must implement
/// `From<BreakerError>`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakerError {
    /// The breaker is OPEN (or HALF_OPEN with every probe slot taken): the function was not called.
    Open {
        /// The breaker's name.
        breaker: &'static str,
        /// When a call may be admitted again; `None` while an operator holds it open.
        retry_after: Option<Duration>,
    },
    /// A fault injected by QA (`BREAKER_FAULTS`, `breakerctl inject ... error`) failed the call
    /// without calling the function.
    Injected {
        /// The breaker's name.
        breaker: &'static str,
    },
    /// The breaker's bulkhead (`max_concurrent`) had no place for the call (within `max_wait`,
    /// if given): the function was not called.
    Full {
        /// The breaker's name.
        breaker: &'static str,
        /// Its `max_concurrent`.
        max_concurrent: u32,
    },
    /// The call did not finish within the breaker's `timeout` and was abandoned (or an injected
    /// `timeout` fault failed it: `after` is then the breaker's `timeout`, or zero without one).
    Timeout {
        /// The breaker's name.
        breaker: &'static str,
        /// The timeout that elapsed.
        after: Duration,
    },
}

impl BreakerError {
    /// The breaker rejected the call because it is OPEN (or HALF_OPEN and busy, or held open).
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self, BreakerError::Open { .. })
    }

    /// The breaker's name.
    #[must_use]
    pub fn breaker(&self) -> &'static str {
        match self {
            BreakerError::Open { breaker, .. }
            | BreakerError::Full { breaker, .. }
            | BreakerError::Timeout { breaker, .. }
            | BreakerError::Injected { breaker } => breaker,
        }
    }
}

impl fmt::Display for BreakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerError::Open {
                breaker,
                retry_after: Some(d),
            } => write!(f, "circuit breaker `{breaker}` is open; retry after {d:?}"),
            BreakerError::Open {
                breaker,
                retry_after: None,
            } => write!(f, "circuit breaker `{breaker}` is held open by an operator"),
            BreakerError::Injected { breaker } => {
                write!(
                    f,
                    "call through circuit breaker `{breaker}` failed by an injected fault"
                )
            }
            BreakerError::Full {
                breaker,
                max_concurrent,
            } => write!(
                f,
                "circuit breaker `{breaker}` has {max_concurrent} calls in flight, its \
                 `max_concurrent`; try again shortly"
            ),
            BreakerError::Timeout { breaker, after } => {
                write!(
                    f,
                    "call through circuit breaker `{breaker}` timed out after {after:?}"
                )
            }
        }
    }
}

impl std::error::Error for BreakerError {}
