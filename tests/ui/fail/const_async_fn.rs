use breaker_runtime::{BreakerError, circuit_breaker};

#[circuit_breaker(threshold = 5)]
const async fn daum(query: &str) -> Result<usize, BreakerError> {
    Ok(query.len())
}

fn main() {}
