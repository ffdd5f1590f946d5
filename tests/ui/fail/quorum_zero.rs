use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(quorum = 0, store = "redis")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
