//! `#[circuit_breaker]` in a crate whose `breaker-runtime` lacks the `redis` feature.

use breaker_runtime::{BreakerError, circuit_breaker};

/// The breakers' error type.
#[derive(Debug)]
pub enum Error {
    /// Rejected or timed out by the breaker.
    Breaker(BreakerError),
}

impl From<BreakerError> for Error {
    fn from(e: BreakerError) -> Self {
        Error::Breaker(e)
    }
}

/// Builds without the feature: the memory store is always there.
///
/// # Errors
/// When the breaker rejects the call.
#[circuit_breaker(store = "memory")]
pub async fn memory() -> Result<(), Error> {
    Ok(())
}

/// Must not build: `store = "redis"` needs the feature.
///
/// # Errors
/// When the breaker rejects the call.
#[cfg(feature = "redis-breaker")]
#[circuit_breaker(store = "redis")]
pub async fn redis() -> Result<(), Error> {
    Ok(())
}
