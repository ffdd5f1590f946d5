//! Support for the code `#[circuit_breaker]` generates: re-exports only. Not public API: anything
//! here may change in any release.

pub use linkme;

pub use crate::breaker::contract::{
    BreakerResult, Describe, DescribeDebug, DescribeDisplay, DescribeOther, FallbackArg,
    FallbackOutput, FromBreakerError, assert_result, clone_arg, describe_opaque, fallback_output,
    is_err, reject,
};
pub use crate::breaker::future::{Guarded, MaybeTimeout};
pub use crate::breaker::{Breaker, Permit, Rejected, Started};
pub use crate::core::config::{Config, Mode, StoreKind};
pub use crate::notify::FallbackReason;
pub use crate::runtime::sites::{SITES, Site, method_name};

/// For benchmarks that simulate many instances in one process: a breaker outside the
/// registry, attached to one store only.
pub use crate::runtime::registry::standalone as standalone_breaker;

// The macros generated code calls, defined here since they expand to `$crate::__private` paths.

/// Expands to nothing when the `redis` feature is on; otherwise to a compile error, at the
/// attribute, that names the feature to enable.
#[cfg(feature = "redis")]
#[doc(hidden)]
#[macro_export]
macro_rules! __breaker_require_redis {
    () => {};
}

/// See the other definition.
#[cfg(not(feature = "redis"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __breaker_require_redis {
    () => {
        ::core::compile_error!(
            "`store = \"redis\"` needs the `redis` feature of `breaker-runtime`: \
             `breaker-runtime = { version = \"0.1\", features = [\"redis\"] }`"
        );
    };
}

/// Expands to a closure (coercible to `fn(&E, &mut String)`) describing errors of the concrete
/// type `E`.
#[doc(hidden)]
#[macro_export]
macro_rules! __breaker_describer {
    ($e:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::{DescribeDebug as _, DescribeDisplay as _, DescribeOther as _};
        // A closure without captures: zero bytes in the caller's future (a `fn` pointer would
        // be eight), turned into a `fn` pointer where it is passed.
        |e: &$e, out: &mut ::std::string::String| (&&&$crate::__private::Describe(e)).describe(out)
    }};
}

pub use crate::__breaker_describer as describer;
pub use crate::__breaker_require_redis as require_redis;
