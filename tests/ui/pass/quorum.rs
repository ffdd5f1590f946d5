//! `quorum` on a shared breaker (without `BREAKER_REDIS_URL` it runs on the memory store, with
//! a warning, and the quorum has no fleet to count).
use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(name = "pass.quorum", threshold = 3, quorum = 2, store = "redis")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(daum("seoul").await, Ok(5));
    let h = breaker_runtime::breaker("pass.quorum").expect("registered");
    assert_eq!(h.config().quorum, 2);
}
