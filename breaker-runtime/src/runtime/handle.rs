//! [`Handle`]: what applications and operators hold of a breaker.

use std::fmt;
use std::time::Duration;

use crate::breaker::{Breaker, CounterSnapshot};
use crate::core::config::Config;
use crate::core::fault::{Fault, FaultError};
use crate::core::machine::{Forced, State};
use crate::core::text::{NoticeError, check_notice};
use crate::runtime::builder::settings;
use crate::store::{Command, Control, StoreError};

/// A handle to one breaker, from [`breaker`](crate::runtime::lookup::breaker) or
/// [`breakers`](crate::runtime::lookup::breakers). Cheap to copy.
#[derive(Clone, Copy)]
pub struct Handle {
    pub(crate) breaker: &'static Breaker,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("name", &self.name())
            .field("state", &self.breaker.published_state())
            .field("forced", &self.forced())
            .finish()
    }
}

impl Handle {
    /// The breaker's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.breaker.name()
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> Config {
        *self.breaker.config()
    }

    /// With a bulkhead (`max_concurrent`): the calls in flight in this instance now, and the
    /// most it lets in.
    #[must_use]
    pub fn bulkhead_load(&self) -> Option<(u32, u32)> {
        self.breaker.bulkhead_load()
    }

    /// The current state (an OPEN breaker whose open period is over reports HALF_OPEN).
    #[must_use]
    pub fn state(&self) -> State {
        self.breaker.state()
    }

    /// Whether this OPEN's rejections are decided on the coarse clock, without a clock read
    /// (tests and benchmarks; see the README's "Performance").
    #[doc(hidden)]
    #[must_use]
    pub fn is_armed(&self) -> bool {
        self.breaker.is_armed()
    }

    /// The operator's forced state, if any.
    #[must_use]
    pub fn forced(&self) -> Option<Forced> {
        self.breaker.forced()
    }

    /// Time until an OPEN breaker lets a probe through (`None` unless OPEN and not forced).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.breaker.retry_after()
    }

    /// Failures inside the sliding window now.
    #[must_use]
    pub fn failures_in_window(&self) -> usize {
        self.breaker.failures_in_window()
    }

    /// Counters since the process started.
    #[must_use]
    pub fn counters(&self) -> CounterSnapshot {
        self.breaker.counters()
    }

    /// Rejects every call until [`Handle::reset`]; never drifts into HALF_OPEN.
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn force_open(&self) -> Result<(), HandleError> {
        self.command(Command::ForceOpen).await
    }

    /// Calls the function whatever fails, never tripping, until [`Handle::reset`].
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn force_closed(&self) -> Result<(), HandleError> {
        self.command(Command::ForceClosed).await
    }

    /// Clears any forced state and returns to CLOSED with cleared counts.
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn reset(&self) -> Result<(), HandleError> {
        self.command(Command::Reset).await
    }

    /// Swaps the breaker (`true`: its fallback is called first and the function becomes the
    /// fallback's fallback, through this breaker) or restores the order (`false`), on every
    /// instance sharing its store.
    ///
    /// # Errors
    /// When the breaker has no fallback, or its store cannot carry out the command.
    pub async fn swap(&self, swapped: bool) -> Result<(), HandleError> {
        if self.breaker.fallback().is_none() {
            return Err(HandleError::NoFallback {
                breaker: self.name(),
            });
        }
        self.control(Control::Swap(swapped)).await
    }

    /// Injects `fault` (or clears the injected fault with `None`) for `for_` (or until cleared),
    /// on every instance sharing the breaker's store.
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    pub async fn inject(
        &self,
        fault: Option<Fault>,
        for_: Option<Duration>,
    ) -> Result<(), HandleError> {
        if let Some(f) = &fault {
            f.check().map_err(HandleError::Fault)?;
        }
        self.control(Control::Fault(fault, for_)).await
    }

    /// Sets the user-facing notice (or clears it with `None`) for `for_` (or until cleared), on
    /// every instance sharing the breaker's store; read it with
    /// [`notice`](crate::runtime::lookup::notice).
    ///
    /// A notice is one line of plain text of at most
    /// [`MAX_NOTICE_CHARS`](crate::core::text::MAX_NOTICE_CHARS) characters, without control
    /// characters (newline and tab included) or Unicode bidirectional controls: see
    /// [`check_notice`].
    ///
    /// # Errors
    /// [`HandleError::InvalidNotice`] for a text [`check_notice`] refuses (nothing is changed);
    /// otherwise when the breaker's store cannot carry out the command.
    pub async fn set_notice(
        &self,
        text: Option<String>,
        for_: Option<Duration>,
    ) -> Result<(), HandleError> {
        if let Some(t) = &text {
            check_notice(t).map_err(HandleError::InvalidNotice)?;
        }
        self.control(Control::Notice(text, for_)).await
    }

    /// Switches the breaker's mode on every instance sharing its store: `Some(true)` shadow
    /// (count, open and alert, but never reject a call or serve the fallback), `Some(false)`
    /// enforce, `None` back to the declared `mode` (the attribute's or the builder's). The
    /// switch applies to calls that start after it; a call already running keeps its
    /// admission, and its deadline acts by the mode in force when it passes.
    ///
    /// # Errors
    /// When the breaker's store cannot carry out the command.
    /// Switching shadow off while the breaker is OPEN or HALF_OPEN starts rejecting calls at
    /// once: an `opened` alert says so then, unmarked (the one the breaker raised when it
    /// opened was marked shadow), once for the fleet with Redis, whoever switched it
    /// (`breakerctl shadow`, the console, any instance).
    pub async fn set_shadow(&self, mode: Option<bool>) -> Result<(), HandleError> {
        self.control(Control::Shadow(mode)).await
    }

    /// Whether the breaker is in shadow mode now (the operator's mode, else the declared one).
    #[must_use]
    pub fn is_shadow(&self) -> bool {
        self.breaker.is_shadow()
    }

    /// The operator's mode, if one is set (`None`: the declared `mode` is in force).
    #[must_use]
    pub fn shadow_override(&self) -> Option<bool> {
        self.breaker.shadow_override()
    }

    /// Whether the breaker is swapped.
    #[must_use]
    pub fn swapped(&self) -> bool {
        self.breaker.swapped()
    }

    /// The fault injected now, if any.
    #[must_use]
    pub fn fault(&self) -> Option<Fault> {
        self.breaker.fault()
    }

    /// The user-facing notice, if set.
    #[must_use]
    pub fn notice(&self) -> Option<String> {
        self.breaker.notice().map(|n| n.to_string())
    }

    /// The fallback, as written in the attribute.
    #[must_use]
    pub fn fallback(&self) -> Option<&'static str> {
        self.breaker.fallback()
    }

    /// How long the injected fault lasts, if it was injected for a while.
    #[must_use]
    pub fn fault_remaining(&self) -> Option<Duration> {
        self.breaker.fault_remaining()
    }

    async fn control(&self, control: Control) -> Result<(), HandleError> {
        settings()
            .store(self.breaker.config().store)
            .control(self.breaker, control)
            .await
            .map_err(HandleError::Store)
    }

    async fn command(&self, command: Command) -> Result<(), HandleError> {
        settings()
            .store(self.breaker.config().store)
            .command(self.breaker, command)
            .await
            .map_err(HandleError::Store)
    }

    /// The breaker itself (what the generated code and stores work with).
    #[doc(hidden)]
    #[must_use]
    pub fn breaker(&self) -> &'static Breaker {
        self.breaker
    }
}

/// Why a [`Handle`] could not carry out an operator's request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum HandleError {
    /// [`Handle::swap`] on a breaker declared without a `fallback`.
    NoFallback {
        /// The breaker.
        breaker: &'static str,
    },
    /// [`Handle::inject`] with a fault that can never be carried out (a rate outside 0..=1, a
    /// delay beyond the longest duration).
    Fault(FaultError),
    /// [`Handle::set_notice`] with a text [`check_notice`] refuses: too long, or with a control
    /// or bidirectional character (named as `U+XXXX` with its position).
    InvalidNotice(NoticeError),
    /// The breaker's store could not carry out the request (for Redis: on every instance).
    Store(StoreError),
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::NoFallback { breaker } => {
                write!(f, "breaker `{breaker}` has no fallback to swap with")
            }
            HandleError::Fault(e) => write!(f, "{e}"),
            HandleError::InvalidNotice(e) => write!(f, "{e}"),
            HandleError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for HandleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandleError::NoFallback { .. } => None,
            HandleError::Fault(e) => Some(e),
            HandleError::InvalidNotice(e) => Some(e),
            HandleError::Store(e) => Some(e),
        }
    }
}

impl From<StoreError> for HandleError {
    fn from(e: StoreError) -> Self {
        HandleError::Store(e)
    }
}
