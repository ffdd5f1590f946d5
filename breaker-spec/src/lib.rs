//! Internal to `breaker-runtime`; not public API. Depend on `breaker-runtime` instead.
//!
//! What `#[circuit_breaker(...)]` accepts, written down once and used by both halves of the
//! attribute: `breaker-macros` checks the arguments against it at compile time, and
//! `breaker-runtime` checks configuration that arrives at run time (`BREAKER_OVERRIDES`,
//! `RuntimeBuilder::setting`) against the same rules. The two crates cannot share code any other
//! way: a proc-macro crate cannot be a dependency of the runtime, nor the runtime of the macro.
//!
//! - [`ARGUMENTS`]: every argument, its kind of value, a one-line description, an example, and
//!   whether it can be overridden at run time ([`OVERRIDE_KEYS`]);
//! - the defaults ([`DEFAULT_THRESHOLD`], ...) and the limits ([`MAX_THRESHOLD`], ...);
//! - [`parse_duration`], the grammar of `"3s"`, `"250ms"`, `"1m"`;
//! - [`check_name`], what a breaker's name may be (no `{` or `}`: [`HASH_TAG_CHARS`]).
//!
//! No dependencies, so it costs the macro crate's build nothing.

#![forbid(unsafe_code)]

mod arguments;
mod duration;
mod limits;
mod name;

pub use arguments::{ARGUMENTS, Argument, Kind, OVERRIDE_KEYS, argument};
pub use duration::parse_duration;
pub use limits::{
    DEFAULT_HALF_OPEN_PROBES, DEFAULT_MIN_CALLS, DEFAULT_OPEN_FOR, DEFAULT_QUORUM,
    DEFAULT_THRESHOLD, DEFAULT_WINDOW, MAX_CONCURRENT, MAX_DURATION, MAX_FAILURE_RATE,
    MAX_HALF_OPEN_PROBES, MAX_NAME_LEN, MAX_QUORUM, MAX_THRESHOLD,
};
pub use name::{HASH_TAG_CHARS, NameError, check_name};
