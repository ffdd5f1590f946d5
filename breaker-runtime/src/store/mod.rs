//! Where breaker state is shared.
//!
//! Every breaker keeps a local machine that decides each call (the hot path never waits on a
//! store). A store is the seam through which that local state is shared and steered: operator
//! commands go through it so a shared store can apply them to every instance; the Redis store
//! (`RedisStore`, feature `redis`) also feeds the local machine the fleet's view. [`MemoryStore`]
//! keeps state in the process and applies commands at once.
//!
//! Stores are handed the [`Breaker`] itself: they sit above it and below the registry, which
//! alone names concrete stores.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::breaker::Breaker;
use crate::core::config::StoreKind;
use crate::core::fault::Fault;
use crate::core::machine::Forced;

mod memory;
#[cfg(feature = "redis")]
pub(crate) mod redis;

pub use memory::MemoryStore;

/// A boxed future, as store methods return.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An operator command.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Reject every call until `Reset`.
    ForceOpen,
    /// Admit every call and never trip until `Reset`.
    ForceClosed,
    /// Clear any forced state; back to CLOSED with cleared counts.
    Reset,
}

impl Command {
    /// The forced state the command leaves (`None` for [`Command::Reset`]).
    #[must_use]
    pub fn forced(self) -> Option<Forced> {
        match self {
            Command::ForceOpen => Some(Forced::Open),
            Command::ForceClosed => Some(Forced::Closed),
            Command::Reset => None,
        }
    }
}

/// An operator's or QA's control of a breaker, beside its state.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Call the fallback first (`true`) or restore the order (`false`).
    Swap(bool),
    /// Inject a fault (or clear it), for a while (or until cleared).
    Fault(Option<Fault>, Option<Duration>),
    /// Set the user-facing notice (or clear it), for a while (or until cleared).
    Notice(Option<String>, Option<Duration>),
    /// The operator's mode: shadow (`Some(true)`), enforce (`Some(false)`), or back to the
    /// declared `mode` (`None`).
    Shadow(Option<bool>),
}

impl Control {
    /// Applies the control to this process's breaker.
    pub fn apply_local(&self, b: &Breaker) {
        match self {
            Control::Swap(on) => b.set_swapped(*on),
            Control::Fault(f, for_) => b.set_fleet_fault(*f, *for_),
            Control::Notice(text, for_) => b.set_notice(text.as_deref(), *for_),
            Control::Shadow(mode) => {
                let _ = b.set_shadow(*mode);
            }
        }
    }
}

/// A store could not carry out a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}

/// Where breaker state is kept and shared.
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// Which kind of store this is.
    fn kind(&self) -> StoreKind;

    /// Called once for each breaker that uses this store, when it is created.
    fn attach(&self, breaker: &'static Breaker) {
        let _ = breaker;
    }

    /// Carries out an operator command for `breaker` (for a shared store: on every instance).
    fn command(
        &self,
        breaker: &'static Breaker,
        command: Command,
    ) -> StoreFuture<'_, Result<(), StoreError>>;

    /// A shared store: how long its backend must keep failing before it counts as down (see
    /// [`crate::RuntimeBuilder::store_down_after`]). Others ignore it.
    fn set_store_down_after(&self, after: std::time::Duration) {
        let _ = after;
    }

    /// Carries out a [`Control`] for `breaker` (for a shared store: on every instance). The
    /// default applies it to this process only.
    fn control(
        &self,
        breaker: &'static Breaker,
        control: Control,
    ) -> StoreFuture<'_, Result<(), StoreError>> {
        control.apply_local(breaker);
        Box::pin(std::future::ready(Ok(())))
    }
}
