//! The public lookups: [`breaker`], [`breakers`], [`notice`]. Breakers declared with
//! `#[circuit_breaker]` are registered from their link-time sites first, so they are listed from
//! program start, before their first call.

use crate::runtime::handle::Handle;
use crate::runtime::registry;
use crate::runtime::sites::{all, register_sites};

/// The user-facing notice an operator set for breaker `name` (`breakerctl notice`), to show
/// users while everything behind it is down; `None` when none is set or the process has no such
/// breaker.
#[must_use]
pub fn notice(name: &str) -> Option<String> {
    breaker(name).and_then(|h| h.notice())
}

/// The breaker named `name`, if this process has one.
///
/// Breakers declared with `#[circuit_breaker]` are known from program start (see [`breakers`]);
/// a method without an explicit `name` is known from its first call, since its name includes
/// its type.
#[must_use]
pub fn breaker(name: &str) -> Option<Handle> {
    register_sites();
    registry::find(name)
}

/// Every breaker of this process, sorted by name.
#[must_use]
pub fn breakers() -> Vec<Handle> {
    all()
}
