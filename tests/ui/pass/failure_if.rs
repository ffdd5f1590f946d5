//! `failure_if` decides which errors count as failures: here, only outages do.
use breaker_runtime::{BreakerError, State, circuit_breaker};

#[derive(Debug, PartialEq)]
enum ApiError {
    NotFound,
    Outage,
    Breaker(BreakerError),
}

impl From<BreakerError> for ApiError {
    fn from(e: BreakerError) -> Self {
        ApiError::Breaker(e)
    }
}

fn is_outage(e: &ApiError) -> bool {
    matches!(e, ApiError::Outage)
}

mod rules {
    pub(crate) fn any(_: &std::io::Error) -> bool {
        true
    }
}

#[circuit_breaker(name = "lookup", threshold = 2, failure_if = is_outage)]
async fn lookup(id: u32) -> Result<u32, ApiError> {
    match id {
        0 => Err(ApiError::NotFound),
        1 => Err(ApiError::Outage),
        n => Ok(n),
    }
}

/// A path to a function in another module; with a fallback, the error type needs no
/// `From<BreakerError>`.
#[circuit_breaker(threshold = 2, failure_if = rules::any, fallback = read_cached)]
async fn read(ok: bool) -> Result<u8, std::io::Error> {
    if ok {
        Ok(1)
    } else {
        Err(std::io::Error::other("disk"))
    }
}

async fn read_cached(_ok: bool) -> Result<u8, std::io::Error> {
    Ok(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    // Not-found errors are returned but do not count.
    for _ in 0..5 {
        assert_eq!(lookup(0).await, Err(ApiError::NotFound));
    }
    let h = breaker_runtime::breaker("lookup").expect("registered");
    assert_eq!(h.state(), State::Closed);
    assert_eq!(lookup(1).await, Err(ApiError::Outage));
    assert_eq!(lookup(1).await, Err(ApiError::Outage));
    assert_eq!(h.state(), State::Open);
    assert!(matches!(
        lookup(5).await,
        Err(ApiError::Breaker(BreakerError::Open { .. }))
    ));
    assert_eq!(read(true).await.ok(), Some(1));
    assert_eq!(read(false).await.ok(), Some(0));
}
