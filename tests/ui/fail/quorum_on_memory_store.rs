use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(quorum = 2, store = "memory")]
async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

// Without `store`, a breaker keeps its state in memory too.
#[circuit_breaker(quorum = 2)]
async fn juso(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
