//! Support for the code `#[circuit_breaker]` generates: re-exports only. Not public API: anything
//! here may change in any release.

pub use linkme;

pub use crate::breaker::contract::{
    BreakerResult, Describe, DescribeDebug, DescribeDisplay, DescribeOther, FallbackArg,
    FallbackOutput, FromBreakerError, assert_result, clone_arg, describe_opaque, fallback_output,
    is_err, reject,
};
pub use crate::breaker::future::{Guarded, MaybeTimeout};
pub use crate::breaker::{Breaker, Permit, Rejected};
pub use crate::core::config::{Config, StoreKind};
pub use crate::notify::FallbackReason;
pub use crate::runtime::sites::{SITES, Site, method_name};

/// For benchmarks that simulate many instances in one process: a breaker outside the
/// registry, attached to one store only.
pub use crate::runtime::registry::standalone as standalone_breaker;

pub use crate::__breaker_describer as describer;
pub use crate::__breaker_require_redis as require_redis;
